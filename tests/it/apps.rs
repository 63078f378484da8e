//! docs/endpoints.md#apps: every `oauth-apps.*` row, its shapes and its errors.

use reqwest::Method;
use serde_json::json;

use crate::common::{spawn, Auth, Server};

async fn create(s: &Server, a: &Auth, body: serde_json::Value) -> serde_json::Value {
    let (st, v) = s.post("/api/v1/oauth-apps.create", a, body).await;
    assert_eq!(st, 200, "{v}");
    v["application"].clone()
}

fn basic() -> serde_json::Value {
    json!({"name": "My App", "redirectUri": "https://app.example.com/cb", "active": true})
}

#[tokio::test]
async fn create_returns_the_secret_once_and_get_never_does() {
    let s = spawn().await;
    let a = s.admin().await;
    let app = create(&s, &a, basic()).await;
    let (id, client_id) = (
        app["_id"].as_str().unwrap(),
        app["clientId"].as_str().unwrap(),
    );
    assert_eq!(id.len(), 17);
    assert_eq!(client_id.len(), 17);
    assert_eq!(app["clientSecret"].as_str().unwrap().len(), 43);
    assert_eq!(app["name"], "My App");
    assert_eq!(app["active"], true);
    assert_eq!(app["redirectUri"], "https://app.example.com/cb");
    assert_eq!(app["_createdBy"]["username"], "admin");
    assert_eq!(app["clientType"], "confidential");
    assert_eq!(
        app["grantTypes"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(app["scopes"], "openid profile email offline_access");
    assert_eq!(app["skipConsent"], false);
    let created = app["_createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");

    for q in [
        format!("_id={id}"),
        format!("clientId={client_id}"),
        format!("appId={id}"),
    ] {
        let (st, v) = s.get(&format!("/api/v1/oauth-apps.get?{q}"), &a).await;
        assert_eq!(st, 200);
        assert_eq!(v["success"], true);
        assert_eq!(v["oauthApp"]["_id"], id);
        assert!(v["oauthApp"].get("clientSecret").is_none());
    }
    let (st, v) = s.get("/api/v1/oauth-apps.list", &a).await;
    assert_eq!(st, 200);
    assert_eq!(v["oauthApps"].as_array().unwrap().len(), 1);
    assert!(v["oauthApps"][0].get("clientSecret").is_none());
}

#[tokio::test]
async fn get_errors() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, v) = s.get("/api/v1/oauth-apps.get?_id=nope", &a).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"success": false, "error": "OAuth app not found."})
        )
    );
    let (st, v) = s.get("/api/v1/oauth-apps.get", &a).await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "invalid-params");
    let (st, _) = s.get("/api/v1/oauth-apps.get?_id=a&clientId=b", &a).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn create_validation_errors_match_rc() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"redirectUri": "https://a.example/cb", "active": true}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        json!({"success": false, "error": "must have required property 'name' [invalid-params]", "errorType": "invalid-params"})
    );
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"name": " ", "redirectUri": "https://a.example/cb", "active": true}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["error"], "Invalid name [error-invalid-name]");
    assert_eq!(v["errorType"], "error-invalid-name");
    assert_eq!(v["details"]["method"], "addOAuthApp");
    for bad in [
        "",
        "javascript:alert(1)",
        "http://evil.example/cb",
        "https://a.example/cb#x",
        "data:text/html,x",
    ] {
        let (st, v) = s
            .post(
                "/api/v1/oauth-apps.create",
                &a,
                json!({"name": "x", "redirectUri": bad, "active": true}),
            )
            .await;
        assert_eq!(st, 400, "{bad}");
        assert_eq!(v["errorType"], "error-invalid-redirectUri", "{bad}");
        assert_eq!(
            v["error"],
            "Invalid redirectUri [error-invalid-redirectUri]"
        );
    }
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"name": "x", "redirectUri": "https://a.example/cb", "active": "yes"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "invalid-params");
    let (st, v) = s.post("/api/v1/oauth-apps.create", &a, json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true, "grantTypes": ["password"]})).await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "error-invalid-arguments");
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true, "extra": 1}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"],
        "must NOT have additional properties [invalid-params]"
    );
    // Nothing was created by any of the rejected requests.
    let (_, v) = s.get("/api/v1/oauth-apps.list", &a).await;
    assert_eq!(v["oauthApps"], json!([]));
}

#[tokio::test]
async fn redirect_lists_and_latchkey_fields() {
    let s = spawn().await;
    let a = s.admin().await;
    let app = create(
        &s,
        &a,
        json!({"name": "SPA", "active": true, "redirectUri": " http://127.0.0.1:3000/cb ,\ncom.example.app:/cb\n",
               "clientType": "public", "grantTypes": ["authorization_code"], "scopes": "openid email", "skipConsent": true}),
    )
    .await;
    assert_eq!(
        app["redirectUri"],
        "http://127.0.0.1:3000/cb,com.example.app:/cb"
    );
    assert_eq!(app["clientType"], "public");
    assert!(
        app.get("clientSecret").is_none(),
        "public clients have no secret"
    );
    assert_eq!(app["grantTypes"], json!(["authorization_code"]));
    assert_eq!(app["scopes"], "openid email");
    assert_eq!(app["skipConsent"], true);
    let (st, v) = s.post("/api/v1/oauth-apps.create", &a, json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true, "clientType": "public", "grantTypes": ["client_credentials"]})).await;
    assert_eq!(st, 400, "{v}");
}

#[tokio::test]
async fn update_delete_and_regenerate() {
    let s = spawn().await;
    let a = s.admin().await;
    let app = create(&s, &a, basic()).await;
    let id = app["_id"].as_str().unwrap();
    let old_secret = app["clientSecret"].as_str().unwrap().to_owned();

    let (st, v) = s
        .post("/api/v1/oauth-apps.update", &a, json!({"appId": id, "name": "Renamed", "active": false, "redirectUri": "https://b.example/cb"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["name"], "Renamed");
    assert_eq!(v["active"], false);
    assert_eq!(v["redirectUri"], "https://b.example/cb");
    assert_eq!(v["clientId"], app["clientId"]);
    assert!(v.get("clientSecret").is_none());

    let (st, v) = s
        .post("/api/v1/oauth-apps.update", &a, json!({"appId": "missing", "name": "x", "active": true, "redirectUri": "https://b.example/cb"}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"],
        "Application not found [error-application-not-found]"
    );
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.update",
            &a,
            json!({"appId": id, "name": "x", "active": true, "redirectUri": "ftp://x"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-invalid-redirectUri"))
    );
    let (_, v) = s.get(&format!("/api/v1/oauth-apps.get?_id={id}"), &a).await;
    assert_eq!(
        v["oauthApp"]["name"], "Renamed",
        "a rejected update changes nothing"
    );

    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.regenerateSecret",
            &a,
            json!({"appId": id}),
        )
        .await;
    assert_eq!(st, 200);
    let new_secret = v["application"]["clientSecret"].as_str().unwrap();
    assert_eq!(new_secret.len(), 43);
    assert_ne!(new_secret, old_secret);

    let (st, v) = s
        .post("/api/v1/oauth-apps.delete", &a, json!({"appId": id}))
        .await;
    assert_eq!((st, v), (200, json!(true)));
    let (st, v) = s
        .post("/api/v1/oauth-apps.delete", &a, json!({"appId": id}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "error-application-not-found");
    assert_eq!(v["details"]["method"], "deleteOAuthApp");
}

#[tokio::test]
async fn permissions_and_authentication() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "bob", "email": "bob@example.com", "password": "bob-pw"}),
        )
        .await;
    assert_eq!(st, 200);
    let bob = s.login("bob", "bob-pw").await;
    let app = create(&s, &a, basic()).await;

    let forbidden = json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]", "errorType": "error-unauthorized"});
    let (st, v) = s.post("/api/v1/oauth-apps.create", &bob, basic()).await;
    assert_eq!((st, &v), (403, &forbidden));
    let (st, v) = s.get("/api/v1/oauth-apps.list", &bob).await;
    assert_eq!((st, &v), (403, &forbidden));
    // Any signed-in user may read one app.
    let (st, _) = s
        .get(
            &format!(
                "/api/v1/oauth-apps.get?clientId={}",
                app["clientId"].as_str().unwrap()
            ),
            &bob,
        )
        .await;
    assert_eq!(st, 200);

    let unauthorized = json!({"success": false, "status": "error", "message": "You must be logged in to do this.", "error": "You must be logged in to do this."});
    let r = s
        .req(Method::GET, "/api/v1/oauth-apps.list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), unauthorized);
    let wrong = Auth {
        user_id: a.user_id.clone(),
        token: "x".repeat(43),
    };
    let (st, v) = s.get("/api/v1/oauth-apps.list", &wrong).await;
    assert_eq!((st, v), (401, unauthorized.clone()));
    let swapped = Auth {
        user_id: bob.user_id.clone(),
        token: a.token.clone(),
    };
    let (st, _) = s.get("/api/v1/oauth-apps.list", &swapped).await;
    assert_eq!(st, 401, "a token only works with its own user id");
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_large_are_rejected_in_rc_format() {
    let s = spawn().await;
    let a = s.admin().await;
    let r = s
        .authed(Method::POST, "/api/v1/oauth-apps.create", &a)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "invalid-params");
    let big = json!({"name": "x".repeat(70 * 1024), "redirectUri": "https://a.example/cb", "active": true});
    let r = s
        .authed(Method::POST, "/api/v1/oauth-apps.create", &a)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["errorType"], "error-payload-too-large");
}
