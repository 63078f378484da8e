//! docs/endpoints.md#oauth through the real pages and endpoints: the code flow with PKCE, refresh rotation, introspection,
//! revocation, userinfo, and every negative case as its own test. This file holds the shared steps (register an
//! app, sign in, consent, redeem); the tests are grouped by what they exercise.

mod code_flow;
mod grants;
mod lifecycle;
mod node;
mod trust;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub use crate::common::steps::{code_grant, make_app, submit_sign_in, TestApp, REDIRECT, VERIFIER};
use crate::common::{
    browser, hidden_inputs, json_of, page_text, query_of, s256, spawn, spawn_with, Server,
    TestServer,
};

pub fn authorize_url(s: &Server, app: &TestApp, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", REDIRECT);
    q.append_pair("state", "xyz-state")
        .append_pair("code_challenge", &s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("{}/oauth/authorize?{}", s.url, q.finish())
}

/// The authorization server's metadata document: status and body.
pub async fn metadata(s: &Server) -> (u16, Value) {
    json_of(
        s.req(Method::GET, "/.well-known/oauth-authorization-server")
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Signs in through the login form that `/oauth/authorize` shows; returns the next location.
pub async fn sign_in(
    s: &Server,
    b: &Client,
    authorize: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let r = b.get(authorize).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"username\"") && page.contains("name=\"password\""),
        "{page}"
    );
    let r = submit_sign_in(s, b, &page, user, password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with("/oauth/authorize?"), "{next}");
    b.get(format!("{}{}", s.url, next)).send().await.unwrap()
}

/// Answers the consent page with `decision`; returns the redirect Location.
pub async fn consent(s: &Server, b: &Client, page: reqwest::Response, decision: &str) -> String {
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Test App"), "consent names the app");
    assert!(html.contains("value=\"allow\"") && html.contains("value=\"deny\""));
    let mut form = hidden_inputs(&html);
    form.push(("decision".into(), decision.into()));
    let r = b
        .post(format!("{}/oauth/authorize", s.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs the whole browser part and returns the authorization code.
pub async fn get_code(s: &Server, app: &TestApp, extra: &[(&str, &str)]) -> String {
    let b = browser();
    let page = sign_in(
        s,
        &b,
        &authorize_url(s, app, extra),
        "admin",
        "admin-password",
    )
    .await;
    let loc = consent(s, &b, page, "allow").await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["state"], "xyz-state");
    assert_eq!(q["iss"], s.url);
    q["code"].clone()
}

pub async fn token(
    s: &Server,
    app: &TestApp,
    form: &[(&str, &str)],
    basic: bool,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = s.http.post(format!("{}/oauth/token", s.url));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match (&app.secret, basic) {
        (Some(secret), true) => req = req.basic_auth(&app.client_id, Some(secret)),
        (Some(secret), false) => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", secret));
        }
        (None, _) => form.push(("client_id", &app.client_id)),
    }
    let r = req.form(&form).send().await.unwrap();
    let headers = r.headers().clone();
    let (st, v) = json_of(r).await;
    (st, v, headers)
}

pub async fn redeem(s: &Server, app: &TestApp, code: &str) -> (u16, Value) {
    let (st, v, _) = token(s, app, &code_grant(code), true).await;
    (st, v)
}

pub async fn introspect(s: &Server, app: &TestApp, tok: &str) -> Value {
    let r = s
        .http
        .post(format!("{}/oauth/introspect", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    json_of(r).await.1
}

async fn get_code_skip(s: &Server, app: &TestApp) -> String {
    let b = browser();
    let r = sign_in(
        s,
        &b,
        &authorize_url(s, app, &[]),
        "admin",
        "admin-password",
    )
    .await;
    let loc = r.headers()["location"].to_str().unwrap();
    query_of(loc)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .clone()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
