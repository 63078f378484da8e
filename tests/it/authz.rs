//! Who may act: an OAuth access token reaches the admin APIs (RC's `/api/v1/*`, Locoia's, Stack's user sessions)
//! only when granted `latchkey:api`; with `openid`/`profile` it reads its own user and nothing else. And
//! `users.info` shows another user in full only with `view-full-other-user-info`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{browser, json_of, query_of, spawn_with, unescape, Auth, Server};
use crate::oauth_flow::{authorize_url, get_code, make_app, redeem, sign_in, TestApp, REDIRECT};
use crate::providers::add;

const PROJECT: &str = "0b9f6a52-3c1d-4e8f-9a7b-2d4c6e8f0a1b";
const API_SCOPES: &str = "openid profile email offline_access latchkey:api";

/// A server with a Stack project, provider `myidp`, and an app that may be granted `latchkey:api`.
async fn env() -> (Server, Auth, TestApp) {
    let s = spawn_with(|c| {
        c.stack.project_id = PROJECT.into();
        c.stack.server_key = "authz-server-key-cccccccccccccccccccccccccccc".into();
        c.stack.admin_key = "authz-admin-key-ddddddddddddddddddddddddddddd".into();
    })
    .await;
    let admin = s.admin().await;
    add(&s, &admin, "Myidp").await;
    let app = make_app(&s, json!({"scopes": API_SCOPES})).await;
    (s, admin, app)
}

/// The admin's access token for `scope`, through the consent page and the token endpoint.
async fn admin_token(s: &Server, app: &TestApp, scope: &str) -> String {
    let code = get_code(s, app, &[("scope", scope)]).await;
    let (st, v) = redeem(s, app, &code).await;
    assert_eq!((st, v["scope"].as_str()), (200, Some(scope)), "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn bearer(
    s: &Server,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = s.req(m, path).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    json_of(rb.send().await.unwrap()).await
}

/// Stack client access with `token` as the user session; the status and the known-error code.
async fn stack_client(s: &Server, token: &str) -> (u16, Value) {
    let r = s
        .req(Method::GET, "/api/v1/oauth-providers?user_id=me")
        .header("X-Stack-Project-Id", PROJECT)
        .header("X-Stack-Access-Type", "client")
        .header("X-Stack-Access-Token", token)
        .send()
        .await
        .unwrap();
    let code = r.headers().get("x-stack-known-error").cloned();
    let (st, v) = json_of(r).await;
    assert_eq!(
        code.as_ref().map(|c| c.to_str().unwrap()),
        v["code"].as_str()
    );
    (st, v)
}

const RC_401: &str = "You must be logged in to do this.";

#[tokio::test]
async fn an_openid_profile_token_reads_its_own_user_and_nothing_else() {
    let (s, admin, app) = env().await;
    let token = admin_token(&s, &app, "openid profile").await;

    let (st, me) = bearer(&s, Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")), "{me}");

    let new_admin = json!({"username": "mallory", "email": "m@example.com", "password": "pw", "roles": ["admin"]});
    for (m, path, body) in [
        (Method::POST, "/api/v1/users.create", Some(new_admin)),
        (Method::GET, "/api/v1/oauth-apps.list", None),
        (Method::GET, "/api/v1/users.info?username=admin", None),
        (Method::POST, "/api/v1/logout", None),
    ] {
        let (st, v) = bearer(&s, m, path, &token, body).await;
        assert_eq!(
            (st, v["status"].as_str(), v["message"].as_str()),
            (401, Some("error"), Some(RC_401)),
            "{path}: {v}"
        );
    }
    // Nothing changed: no admin was created.
    let (st, v) = s.get("/api/v1/users.info?username=mallory", &admin).await;
    assert_eq!((st, v["success"].as_bool()), (400, Some(false)), "{v}");

    let (st, v) = bearer(
        &s,
        Method::GET,
        "/v1/connectors/myidp/custom_auth",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (401, Some("unauthorized")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("latchkey:api"),
        "{v}"
    );

    let (st, v) = stack_client(&s, &token).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (401, Some("INVALID_ACCESS_TOKEN")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("latchkey:api"), "{v}");

    // The same token keeps working where openid/profile are meant for.
    let r = s
        .req(Method::GET, "/oauth/userinfo")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_admins_openid_only_token_cannot_create_an_admin() {
    let (s, admin, app) = env().await;
    let token = admin_token(&s, &app, "openid").await;
    let (st, v) = bearer(
        &s,
        Method::POST,
        "/api/v1/users.create",
        &token,
        Some(json!({"username": "eve", "email": "eve@example.com", "password": "pw", "roles": ["admin"]})),
    )
    .await;
    assert_eq!((st, v["message"].as_str()), (401, Some(RC_401)), "{v}");
    let (st, _) = s.get("/api/v1/users.info?username=eve", &admin).await;
    assert_eq!(st, 400, "eve was not created");
}

#[tokio::test]
async fn a_token_granted_latchkey_api_works_on_every_api() {
    let (s, admin, app) = env().await;
    let token = admin_token(&s, &app, "latchkey:api openid").await;

    let (st, me) = bearer(&s, Method::GET, "/api/v1/me", &token, None).await;
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")));
    let (st, v) = bearer(
        &s,
        Method::POST,
        "/api/v1/users.create",
        &token,
        Some(json!({"username": "jane", "email": "jane@example.com", "password": "pw"})),
    )
    .await;
    assert_eq!(
        (st, v["user"]["username"].as_str()),
        (200, Some("jane")),
        "{v}"
    );
    let (st, v) = bearer(&s, Method::GET, "/api/v1/oauth-apps.list", &token, None).await;
    assert_eq!(
        (st, v["oauthApps"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{v}"
    );
    let (st, v) = bearer(
        &s,
        Method::GET,
        "/v1/connectors/myidp/custom_auth",
        &token,
        None,
    )
    .await;
    assert_eq!((st, v), (200, json!({"oauth2": []})));
    let (st, v) = stack_client(&s, &token).await;
    assert_eq!((st, v), (200, json!({"items": [], "is_paginated": false})));

    // RC login tokens work as they did.
    let (st, _) = s.get("/api/v1/oauth-apps.list", &admin).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn the_consent_page_names_the_api_scope_plainly() {
    let (s, _, app) = env().await;
    let b = browser();
    let url = authorize_url(&s, &app, &[("scope", "openid latchkey:api")]);
    let page = sign_in(&s, &b, &url, "admin", "admin-password").await;
    assert_eq!(page.status(), 200);
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("<code>latchkey:api</code>"), "{html}");
    assert!(
        html.contains("Act as you on this server's admin APIs"),
        "{html}"
    );
}

#[tokio::test]
async fn an_app_gets_latchkey_api_only_when_it_lists_it() {
    let (s, admin, _) = env().await;
    let plain = make_app(&s, json!({})).await;
    let r = s
        .http
        .get(authorize_url(
            &s,
            &plain,
            &[("scope", "openid latchkey:api")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(query_of(loc)["error"], "invalid_scope");

    // Other scopes in Latchkey's namespace are refused rather than kept as scopes that grant nothing.
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &admin,
            json!({"name": "Typo", "redirectUri": REDIRECT, "active": true, "scopes": "openid latchkey:admin"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str(), v["details"]["field"].as_str()),
        (400, Some("error-invalid-arguments"), Some("scopes")),
        "{v}"
    );
    assert!(
        v["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("latchkey:admin"),
        "{v}"
    );
    let (_, v) = s.get("/api/v1/oauth-apps.list", &admin).await;
    assert!(
        v["oauthApps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "Typo"),
        "{v}"
    );
}

#[tokio::test]
async fn users_info_shows_another_user_in_full_only_to_those_allowed() {
    let (s, admin, _) = env().await;
    for name in ["jane", "bob"] {
        let (st, v) = s
            .post(
                "/api/v1/users.create",
                &admin,
                json!({"username": name, "email": format!("{name}@example.com"), "password": "pw"}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let jane = s.login("jane", "pw").await;

    let (st, v) = s.get("/api/v1/users.info?username=bob", &jane).await;
    assert_eq!(st, 200, "{v}");
    let user = v["user"].as_object().unwrap();
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["_id", "active", "name", "status", "type", "username"],
        "{v}"
    );
    let (_, v) = s
        .get(
            &format!("/api/v1/users.info?userId={}", admin.user_id),
            &jane,
        )
        .await;
    assert!(
        v["user"].get("roles").is_none() && v["user"].get("emails").is_none(),
        "{v}"
    );

    // Her own record, and anyone's for an admin, in full.
    let (_, v) = s.get("/api/v1/users.info?username=jane", &jane).await;
    assert_eq!(v["user"]["emails"][0]["address"], "jane@example.com");
    assert_eq!(v["user"]["roles"], json!(["user"]));
    let (_, v) = s.get("/api/v1/users.info?username=bob", &admin).await;
    assert_eq!(v["user"]["emails"][0]["address"], "bob@example.com");
    assert_eq!(v["user"]["roles"], json!(["user"]));
}

/// RFC 6750 §2.1 with RFC 9110 §11.1: the scheme name is case-insensitive, so `bearer` and `BEARER` work on every
/// endpoint that takes a Bearer token (RC, Locoia, Stack's user session, userinfo), as `Bearer` does.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_everywhere() {
    let (s, _admin, app) = env().await;
    let token = admin_token(&s, &app, "latchkey:api openid profile").await;
    for scheme in ["bearer", "BEARER"] {
        let auth = format!("{scheme} {token}");
        let send = |m: Method, path: &str| s.req(m, path).header("Authorization", auth.as_str());
        let (st, v) = json_of(send(Method::GET, "/api/v1/me").send().await.unwrap()).await;
        assert_eq!(
            (st, v["username"].as_str()),
            (200, Some("admin")),
            "RC, {scheme}: {v}"
        );
        let r = send(Method::GET, "/v1/connectors/myidp/custom_auth");
        let (st, v) = json_of(r.send().await.unwrap()).await;
        assert_eq!(st, 200, "Locoia, {scheme}: {v}");
        let r = send(Method::GET, "/api/v1/oauth-providers?user_id=me")
            .header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "client");
        let (st, v) = json_of(r.send().await.unwrap()).await;
        assert_eq!(st, 200, "Stack, {scheme}: {v}");
        let (st, v) = json_of(send(Method::GET, "/oauth/userinfo").send().await.unwrap()).await;
        assert_eq!(
            (st, v["preferred_username"].as_str()),
            (200, Some("admin")),
            "userinfo, {scheme}: {v}"
        );
    }
}

/// A header naming Bearer without a token is bad credentials, not none: Stack answers `INVALID_ACCESS_TOKEN`
/// rather than serving the request without a user, and userinfo `invalid_token` rather than a bare challenge.
#[tokio::test]
async fn a_bearer_header_without_a_token_is_bad_credentials() {
    let (s, _admin, _app) = env().await;
    let r = s
        .req(Method::GET, "/api/v1/oauth-providers?user_id=me")
        .header("X-Stack-Project-Id", PROJECT)
        .header("X-Stack-Access-Type", "client")
        .header("Authorization", "Bearer")
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (401, Some("INVALID_ACCESS_TOKEN")),
        "{v}"
    );
    let r = s
        .req(Method::GET, "/oauth/userinfo")
        .header("Authorization", "Bearer")
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        (r.status(), challenge.as_str()),
        (StatusCode::UNAUTHORIZED, "Bearer error=\"invalid_token\"")
    );
}
