//! What the peers' own test suites expect of the wire, beyond the shapes: ajv's reasons, JSON content types, and
//! the redirect URIs local test setups use.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::json;

use crate::common::{json_of, spawn, spawn_with};

#[tokio::test]
async fn invalid_params_reasons_read_as_ajv_messages() {
    let s = spawn().await;
    let a = s.admin().await;
    for (body, reason) in [
        (
            json!({"name": 1, "redirectUri": "https://a.example/cb", "active": true}),
            "must be string",
        ),
        (
            json!({"name": "x", "redirectUri": "https://a.example/cb", "active": "yes"}),
            "must be boolean",
        ),
        (
            json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true, "grantTypes": "client_credentials"}),
            "must be array",
        ),
        (
            json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true, "grantTypes": [1]}),
            "must be string",
        ),
    ] {
        let (st, v) = s.post("/api/v1/oauth-apps.create", &a, body).await;
        assert_eq!(st, 400);
        assert_eq!(v["error"], format!("{reason} [invalid-params]"), "{v}");
        assert_eq!(v["errorType"], "invalid-params");
    }
    let (_, v) = s.get("/api/v1/oauth-apps.list", &a).await;
    assert_eq!(v["oauthApps"], json!([]), "nothing was created");
}

#[tokio::test]
async fn json_answers_say_charset_utf8() {
    let s = spawn().await;
    let a = s.admin().await;
    for r in [
        s.authed(Method::GET, "/api/v1/oauth-apps.list", &a),
        s.authed(Method::GET, "/api/v1/me", &a),
        // RC's own error answers too.
        s.req(Method::GET, "/api/v1/oauth-apps.list"),
        s.req(Method::GET, "/.well-known/oauth-authorization-server"),
        s.req(Method::POST, "/oauth/token")
            .form(&[("grant_type", "client_credentials")]),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "application/json; charset=utf-8",
            "{}",
            r.url()
        );
    }
}

#[tokio::test]
async fn rc_routes_refuse_a_json_body_sent_as_text() {
    let s = spawn().await;
    let a = s.admin().await;
    let body =
        json!({"name": "x", "redirectUri": "https://a.example/cb", "active": true}).to_string();
    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
    ] {
        let (st, v) = json_of(
            s.authed(Method::POST, "/api/v1/oauth-apps.create", &a)
                .header(CONTENT_TYPE, ct)
                .body(body.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("invalid-params")),
            "{ct}: {v}"
        );
    }
    let (_, v) = s.get("/api/v1/oauth-apps.list", &a).await;
    assert_eq!(v["oauthApps"], json!([]), "nothing was created");
    // JSON with parameters, and JSON with no content type at all, still work.
    for ct in [Some("application/json; charset=utf-8"), None] {
        let mut r = s.authed(Method::POST, "/api/v1/oauth-apps.create", &a);
        if let Some(ct) = ct {
            r = r.header(CONTENT_TYPE, ct);
        }
        let (st, v) = json_of(r.body(body.clone()).send().await.unwrap()).await;
        assert_eq!(st, 200, "{ct:?}: {v}");
    }
}

#[tokio::test]
async fn http_redirect_uris_on_other_hosts_need_the_switch() {
    let app = |uri: &str| json!({"name": "Local", "redirectUri": uri, "active": true});
    let s = spawn().await;
    let a = s.admin().await;
    for uri in ["http://web:3000/cb", "http://myapp.local/callback"] {
        let (st, v) = s.post("/api/v1/oauth-apps.create", &a, app(uri)).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("error-invalid-redirectUri")),
            "{v}"
        );
    }
    let s = spawn_with(|c| c.apps.allow_http_redirect_uris = Some(true)).await;
    let a = s.admin().await;
    for uri in ["http://web:3000/cb", "http://myapp.local/callback"] {
        let (st, v) = s.post("/api/v1/oauth-apps.create", &a, app(uri)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["application"]["redirectUri"], uri);
    }
    // The switch opens http only: the other rules hold.
    let (st, _) = s
        .post("/api/v1/oauth-apps.create", &a, app("javascript://web/x"))
        .await;
    assert_eq!(st, 400);
}
