//! The failure paths through a preset: the upstream refuses, the state does not match, the identity has no id,
//! and an unverified email meets `merge_users` by email. Each ends on an error page that says what failed, and
//! the store has no user and no link more than before.

use reqwest::{Client, StatusCode};
use serde_json::json;

use super::{authorize_url, to_callback, upstream_for};
use crate::common::upstream::Spec;
use crate::common::{browser, Server, TestServer};
use crate::oauth_flow::make_app;

/// (users, links) in the store.
async fn counts(s: &Server) -> (usize, usize) {
    let store = &s.running.as_ref().unwrap().state.store;
    (
        store.list_users().await.unwrap().len(),
        store.list_links().await.unwrap().len(),
    )
}

/// Follows `callback` in `b`; asserts the error page has `status` and says `says`, and that nothing was written.
async fn fails(s: &Server, b: &Client, callback: &str, status: StatusCode, says: &str) {
    let before = counts(s).await;
    let r = b.get(callback).send().await.unwrap();
    assert_eq!(r.status(), status, "{callback}");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Sign-in failed") && page.contains(says),
        "{says}: {page}"
    );
    assert_eq!(counts(s).await, before, "{says}: the store is unchanged");
}

#[tokio::test]
async fn each_failure_ends_on_a_page_that_says_what_failed_and_changes_nothing() {
    let userinfo = |verified: bool| json!({"sub": "7", "preferred_username": "jane.up", "email": "jane@example.com", "email_verified": verified});
    let denied = Spec {
        deny: true,
        ..Spec::new("github", json!({"id": 1}))
    };
    let (_u1, d1) = upstream_for("denied", denied).await;
    let (_u2, d2) = upstream_for("noid", Spec::new("google", json!({"name": "no id here"}))).await;
    let (_u3, mut d3) = upstream_for("unverified", Spec::new("google", userinfo(false))).await;
    d3.merge_users = true;
    d3.key_field = "email".into();
    let (_u4, d4) = upstream_for("fine", Spec::new("google", userinfo(true))).await;
    let s = TestServer::new()
        .user("jane", "jane-pw")
        .config(move |c| c.providers = vec![d1, d2, d3, d4])
        .start()
        .await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let authorize = authorize_url(&s, &app.client_id);

    let b = browser();
    let cb = to_callback(&s, &b, &authorize, "denied").await;
    fails(
        &s,
        &b,
        &cb,
        StatusCode::BAD_GATEWAY,
        "Denied answered access_denied (The user said no)",
    )
    .await;

    let b = browser();
    let cb = to_callback(&s, &b, &authorize, "fine").await;
    let forged = cb.replace("state=", "state=x");
    fails(
        &s,
        &b,
        &forged,
        StatusCode::BAD_REQUEST,
        "the state parameter does not match",
    )
    .await;

    let b = browser();
    let cb = to_callback(&s, &b, &authorize, "noid").await;
    fails(
        &s,
        &b,
        &cb,
        StatusCode::BAD_GATEWAY,
        "the identity has no account id (sub)",
    )
    .await;

    let b = browser();
    let cb = to_callback(&s, &b, &authorize, "unverified").await;
    fails(&s, &b, &cb, StatusCode::FORBIDDEN, "verified").await;

    // The same browser path through a working provider does sign in: the failures above were the cases' own.
    let b = browser();
    let cb = to_callback(&s, &b, &authorize, "fine").await;
    let r = b.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
}
