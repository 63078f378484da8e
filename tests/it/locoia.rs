//! docs/endpoints.md#locoia: Locoia's connector `custom_auth`, its bearer auth and errors, and its link to RC's `-id`/`-secret`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_of, spawn, spawn_with, Server, ADMIN_PASSWORD};
use crate::providers::{add, get_value, set, PREFIX};

const URL: &str = "/v1/connectors/myidp/custom_auth";

/// A PUT with the admin's password as the second factor, as RC's settings writes send it.
async fn put(s: &Server, token: &str, url: &str, body: Value) -> (u16, Value) {
    put_with(
        s,
        token,
        url,
        body,
        &[("x-2fa-code", ADMIN_PASSWORD), ("x-2fa-method", "password")],
    )
    .await
}

async fn put_with(
    s: &Server,
    token: &str,
    url: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = s.req(Method::PUT, url).bearer_auth(token).json(&body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    json_of(r.send().await.unwrap()).await
}

async fn get(s: &Server, token: &str, url: &str) -> (u16, Value) {
    json_of(
        s.req(Method::GET, url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn put_then_get_never_echoes_secrets_and_feeds_rc_settings() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "My IdP").await;
    assert_eq!(get(&s, &a.token, URL).await, (200, json!({"oauth2": []})));
    let body = json!({"oauth2": [
        {"client_id": "main-client", "client_secret": "main-secret", "name": "Production"},
        {"client_id": "ro-client", "client_secret": "ro-secret", "name": "Read only", "scopes": ["read", "profile"]},
    ]});
    let want = json!({"oauth2": [
        {"client_id": "main-client", "name": "Production"},
        {"client_id": "ro-client", "name": "Read only", "scopes": ["read", "profile"]},
    ]});
    let (st, v) = put(&s, &a.token, URL, body).await;
    assert_eq!((st, &v), (200, &want));
    assert!(!v.to_string().contains("secret"));
    assert_eq!(get(&s, &a.token, URL).await, (200, want));

    // The first entry is RC's -id/-secret.
    assert_eq!(
        get_value(&s, &a, &format!("{PREFIX}Myidp-id")).await,
        "main-client"
    );
    assert_eq!(
        get_value(&s, &a, &format!("{PREFIX}Myidp-secret")).await,
        "********"
    );
    let state = &s.running.as_ref().unwrap().state;
    let p = latchkey::core::provider::get(&state.store, "myidp")
        .await
        .unwrap();
    assert_eq!(
        latchkey::core::provider::client_secret(&state.sealer, &p)
            .unwrap()
            .as_deref(),
        Some("main-secret")
    );
    assert_eq!(
        latchkey::core::provider::credential_secret(&state.sealer, &p, "Read only")
            .unwrap()
            .as_deref(),
        Some("ro-secret")
    );
    assert_eq!(
        p.sign_in_scope(),
        "openid",
        "no scopes on the first entry: -scope applies"
    );

    // And RC's settings write through to the first entry.
    assert_eq!(
        set(&s, &a, &format!("{PREFIX}Myidp-id"), json!("rotated"))
            .await
            .0,
        200
    );
    assert_eq!(
        set(
            &s,
            &a,
            &format!("{PREFIX}Myidp-secret"),
            json!("rotated-secret")
        )
        .await
        .0,
        200
    );
    let (_, v) = get(&s, &a.token, URL).await;
    assert_eq!(
        v["oauth2"][0],
        json!({"client_id": "rotated", "name": "Production"})
    );
    let p = latchkey::core::provider::get(&state.store, "myidp")
        .await
        .unwrap();
    assert_eq!(
        latchkey::core::provider::client_secret(&state.sealer, &p)
            .unwrap()
            .as_deref(),
        Some("rotated-secret")
    );

    // A PUT replaces the whole list.
    let (st, v) = put(
        &s,
        &a.token,
        URL,
        json!({"oauth2": [{"client_id": "only", "client_secret": "s", "name": "Only", "scopes": ["openid"]}]}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["oauth2"].as_array().unwrap().len(), 1);
    let p = latchkey::core::provider::get(&state.store, "myidp")
        .await
        .unwrap();
    assert_eq!(p.sign_in_scope(), "openid");
    state.store.verify().unwrap();
}

#[tokio::test]
async fn errors_use_locoias_body() {
    let s = spawn_with(|c| c.limits.body_bytes = 4096).await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    let entry = json!({"client_id": "c", "client_secret": "s", "name": "n"});

    for (url, method) in [
        ("/v1/connectors/nope/custom_auth", Method::GET),
        ("/v1/connectors/nope/custom_auth", Method::PUT),
    ] {
        let r = s
            .req(method, url)
            .bearer_auth(&a.token)
            .json(&json!({"oauth2": [entry.clone()]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            json_of(r).await,
            (
                404,
                json!({"error": "not_found", "message": "connector not found"})
            )
        );
    }

    for (body, message) in [
        (json!({}), "oauth2 is required"),
        (json!({"oauth2": {}}), "oauth2 must be an array"),
        (json!({"oauth2": [1]}), "oauth2[0] must be an object"),
        (
            json!({"oauth2": [{"client_id": "c", "name": "n"}]}),
            "oauth2[0].client_secret is required",
        ),
        (
            json!({"oauth2": [{"client_secret": "s", "name": "n"}]}),
            "oauth2[0].client_id is required",
        ),
        (
            json!({"oauth2": [{"client_id": "c", "client_secret": "s"}]}),
            "oauth2[0].name is required",
        ),
        (
            json!({"oauth2": [{"client_id": 1, "client_secret": "s", "name": "n"}]}),
            "oauth2[0].client_id must be a string",
        ),
        (
            json!({"oauth2": [{"client_id": "c", "client_secret": "s", "name": "n", "scopes": "read"}]}),
            "oauth2[0].scopes must be an array of strings",
        ),
    ] {
        let (st, v) = put(&s, &a.token, URL, body.clone()).await;
        assert_eq!(
            (st, v),
            (400, json!({"error": "invalid_request", "message": message})),
            "{body}"
        );
    }
    let (st, v) = put(
        &s,
        &a.token,
        URL,
        json!({"oauth2": [entry.clone(), entry.clone()]}),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_request")),
        "duplicate names"
    );
    let r = s
        .req(Method::PUT, URL)
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.1["error"], "invalid_request");
    let r = s
        .req(Method::PUT, URL)
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"oauth2\": [], \"pad\": \"{}\"}}",
            "x".repeat(8192)
        ))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!((st, v["error"].as_str()), (413, Some("payload_too_large")));

    let unauthorized =
        json!({"error": "unauthorized", "message": "a valid bearer token is required"});
    let r = s.req(Method::GET, URL).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(json_of(r).await, (401, unauthorized.clone()));
    assert_eq!(
        get(&s, "not-a-token", URL).await,
        (401, unauthorized.clone())
    );
    let r = s
        .req(Method::GET, URL)
        .header("X-User-Id", &a.user_id)
        .header("X-Auth-Token", &a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.0, 401, "RC headers are not Locoia's auth");
    let (st, v) = put(&s, "bogus", URL, json!({"oauth2": []})).await;
    assert_eq!((st, v), (401, unauthorized));

    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "jane", "email": "jane@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(st, 200);
    let jane = s.login("jane", "pw").await;
    let (st, v) = get(&s, &jane.token, URL).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")));
    let (st, _) = put(&s, &jane.token, URL, json!({"oauth2": [entry]})).await;
    assert_eq!(st, 403);
    assert_eq!(
        get(&s, &a.token, URL).await,
        (200, json!({"oauth2": []})),
        "nothing changed"
    );
}

/// The same change through RC's settings API is a *2FA* route: Locoia's PUT asks for the same second factor,
/// answered in Locoia's body, and changes nothing without it.
#[tokio::test]
async fn put_needs_the_second_factor_like_rc_settings() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "My IdP").await;
    let body = json!({"oauth2": [{"client_id": "evil", "client_secret": "evil-secret", "name": "Production"}]});
    let (st, v) = put_with(&s, &a.token, URL, body.clone(), &[]).await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["error"], "totp-required");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("x-2fa-method: password"),
        "{v}"
    );
    let wrong = [
        ("x-2fa-code", "not-the-password"),
        ("x-2fa-method", "password"),
    ];
    let (st, v) = put_with(&s, &a.token, URL, body.clone(), &wrong).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("totp-invalid")));
    assert_eq!(
        get(&s, &a.token, URL).await,
        (200, json!({"oauth2": []})),
        "nothing changed"
    );

    // A bad body is refused before the second factor is asked for.
    let (st, v) = put_with(&s, &a.token, URL, json!({"oauth2": 1}), &[]).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));

    let (st, _) = put(&s, &a.token, URL, body).await;
    assert_eq!(st, 200);
    assert_eq!(
        get_value(&s, &a, &format!("{PREFIX}Myidp-id")).await,
        "evil"
    );
}

/// With the password fallback off (as under `--dev`), a user without TOTP changes credentials with the session
/// alone, exactly as through RC's settings API.
#[tokio::test]
async fn without_the_fallback_the_session_is_enough_as_in_rc() {
    let s = spawn_with(|c| c.two_factor.enforce_password_fallback = Some(false)).await;
    let a = s.admin().await;
    let (st, _) = s
        .post(
            "/api/v1/settings.addCustomOAuth",
            &a,
            json!({"name": "My IdP"}),
        )
        .await;
    assert_eq!(st, 200);
    let body = json!({"oauth2": [{"client_id": "c", "client_secret": "s", "name": "P"}]});
    let (st, _) = put_with(&s, &a.token, URL, body, &[]).await;
    assert_eq!(st, 200);
}
