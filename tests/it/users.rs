//! docs/endpoints.md#users: login, logout, me, users.*, permissions and login rate limiting.

use reqwest::Method;
use serde_json::json;

use crate::common::{json_of, spawn, spawn_with, Auth};

#[tokio::test]
async fn login_shape_me_and_logout() {
    let s = spawn().await;
    let r = s
        .req(Method::POST, "/api/v1/login")
        .json(&json!({"username": "admin", "password": "admin-password"}))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    let me = &v["data"]["me"];
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["_id"], v["data"]["userId"]);
    let auth = Auth {
        user_id: v["data"]["userId"].as_str().unwrap().into(),
        token: v["data"]["authToken"].as_str().unwrap().into(),
    };
    assert_eq!(auth.token.len(), 43);

    let (st, v) = s.get("/api/v1/me", &auth).await;
    assert_eq!(st, 200);
    assert_eq!(v["success"], true);
    assert_eq!(v["username"], "admin");
    assert!(v.get("password_hash").is_none() && !v.to_string().contains("argon2"));

    let (st, v) = s.post("/api/v1/logout", &auth, json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"status": "success", "data": {"message": "You've been logged out!"}})
    );
    let (st, _) = s.get("/api/v1/me", &auth).await;
    assert_eq!(st, 401, "the token died with logout");
}

#[tokio::test]
async fn bad_credentials_get_rc_401() {
    let s = spawn().await;
    for body in [
        json!({"user": "admin", "password": "wrong"}),
        json!({"user": "nobody", "password": "x"}),
    ] {
        let r = s
            .req(Method::POST, "/api/v1/login")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(
            (st, v),
            (
                401,
                json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
            )
        );
    }
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_even_for_the_right_password() {
    let s = spawn_with(|c| c.login.max_failures_per_user = 3).await;
    for _ in 0..3 {
        let r = s
            .req(Method::POST, "/api/v1/login")
            .json(&json!({"user": "admin", "password": "bad"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = s
        .req(Method::POST, "/api/v1/login")
        .json(&json!({"user": "admin", "password": "admin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-limit"], "3");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "error-too-many-requests");
    assert_eq!(v["success"], false);
}

#[tokio::test]
async fn create_info_delete_users() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, v) = s
        .post("/api/v1/users.create", &a, json!({"username": "jane", "email": "Jane@Example.com", "password": "pw", "name": "Jane D"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    let u = &v["user"];
    assert_eq!(u["username"], "jane");
    assert_eq!(u["emails"][0]["address"], "jane@example.com");
    assert_eq!(u["roles"], json!(["user"]));
    let id = u["_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 17);

    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "JANE", "email": "other@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "error-field-unavailable");
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "jo", "email": "bad", "password": "pw"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-invalid-email"))
    );
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "jo", "password": "pw"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"],
        "must have required property 'email' [invalid-params]"
    );

    let (st, v) = s.get(&format!("/api/v1/users.info?userId={id}"), &a).await;
    assert_eq!((st, v["user"]["username"].as_str()), (200, Some("jane")));
    let (st, v) = s.get("/api/v1/users.info?username=jane", &a).await;
    assert_eq!((st, v["user"]["_id"].as_str()), (200, Some(id.as_str())));
    let (st, _) = s.get("/api/v1/users.info?username=ghost", &a).await;
    assert_eq!(st, 400);

    let jane = s.login("jane", "pw").await;
    let (st, v) = s
        .post("/api/v1/users.delete", &jane, json!({"userId": a.user_id}))
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (403, Some("error-unauthorized"))
    );
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &jane,
            json!({"username": "x", "email": "x@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (403, Some("error-unauthorized"))
    );

    let (st, v) = s
        .post("/api/v1/users.delete", &a, json!({"userId": id}))
        .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let (st, _) = s.get("/api/v1/me", &jane).await;
    assert_eq!(st, 401, "deleting a user ends its sessions");
    let (st, v) = s
        .post("/api/v1/users.delete", &a, json!({"userId": id}))
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-invalid-user"))
    );
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, v) = s
        .post("/api/v1/users.delete", &a, json!({"userId": a.user_id}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "error-action-not-allowed");
    let (st, _) = s.get("/api/v1/me", &a).await;
    assert_eq!(st, 200);
}

/// 60 simultaneous wrong passwords for one user, half by username and half by email: each is counted before
/// argon2 runs, and both names count against the one user, so exactly the limit (10) are checked (401) and the
/// rest are refused unchecked (429). Before: all 60 were checked.
#[tokio::test]
async fn simultaneous_guesses_stay_within_the_limit_whatever_the_name() {
    // Real argon2 cost, so the guesses are all in flight together.
    let s = spawn_with(|c| c.argon2 = latchkey::crypto::Argon2Params::default()).await;
    let a = s.admin().await;
    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "jane", "email": "jane@example.com", "password": "right"}),
        )
        .await;
    assert_eq!(st, 200);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let user = if i % 2 == 0 {
                "jane"
            } else {
                "Jane@Example.com"
            };
            let rb = s
                .req(Method::POST, "/api/v1/login")
                .json(&json!({"user": user, "password": format!("guess-{i}")}));
            tokio::spawn(async move { rb.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (10, 50), "{statuses:?}");
    let r = s
        .req(Method::POST, "/api/v1/login")
        .json(&json!({"user": "jane@example.com", "password": "right"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "the window is full for every name of the user"
    );
}
