//! docs/endpoints.md#federation end to end with two real servers: U is the upstream identity provider (an OAuth app on U whose
//! redirect URI is D's `/_oauth/<service>`), D has a custom provider pointing at U. A client of D completes the
//! code flow by signing in at U; D creates the user and the link; a second sign-in reuses the link.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{browser, hidden_inputs, page_text, query_of, spawn, spawn_with, Auth, Server};
use crate::oauth_flow::{make_app, redeem, REDIRECT};
use crate::providers::{add, set, PREFIX};

const SERVICE: &str = "upstreamidp";

/// Creates user `ulla` on U (whose userinfo says `email_verified: verified`) and an app whose redirect URI is D's
/// callback; returns (client_id, secret).
async fn upstream_app(u: &Server, d_url: &str, verified: bool) -> (String, String) {
    let a = u.admin().await;
    let (st, _) = u.post("/api/v1/users.create", &a, json!({"username": "ulla", "email": "ulla@upstream.example", "password": "ulla-pw", "name": "Ulla Upstream", "verified": verified})).await;
    assert_eq!(st, 200);
    let (st, v) = u
        .post("/api/v1/oauth-apps.create", &a, json!({"name": "Downstream", "active": true, "redirectUri": format!("{d_url}/_oauth/{SERVICE}"), "skipConsent": true}))
        .await;
    assert_eq!(st, 200, "{v}");
    let app = &v["application"];
    (
        app["clientId"].as_str().unwrap().into(),
        app["clientSecret"].as_str().unwrap().into(),
    )
}

/// Configures the custom provider "Upstream IdP" on D, pointing at `upstream_url`.
async fn provider_on_d(
    d: &Server,
    a: &Auth,
    upstream_url: &str,
    client_id: &str,
    secret: &str,
    extra: &[(&str, Value)],
) {
    add(d, a, "Upstream IdP").await;
    let name = format!("{PREFIX}Upstreamidp");
    let mut settings: Vec<(String, Value)> = vec![
        ("-url".into(), json!(upstream_url)),
        ("-token_path".into(), json!("/oauth/token")),
        ("-identity_path".into(), json!("/oauth/userinfo")),
        ("-authorize_path".into(), json!("/oauth/authorize")),
        ("-scope".into(), json!("openid profile email")),
        ("-token_sent_via".into(), json!("header")),
        ("-identity_token_sent_via".into(), json!("header")),
        ("-id".into(), json!(client_id)),
        ("-secret".into(), json!(secret)),
    ];
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    settings.push(("".into(), json!(true)));
    for (suffix, value) in settings {
        let (st, v) = set(d, a, &format!("{name}{suffix}"), value).await;
        assert_eq!(st, 200, "{suffix}: {v}");
    }
}

struct Pair {
    u: Server,
    d: Server,
    d_admin: Auth,
    /// U's client secret, which D holds (sealed) as the provider's `-secret`.
    secret: String,
}

impl Pair {
    /// Sets the setting `suffix` of D's provider to `value`.
    async fn set_on_d(&self, suffix: &str, value: Value) {
        let name = format!("{PREFIX}Upstreamidp{suffix}");
        let (st, v) = set(&self.d, &self.d_admin, &name, value).await;
        assert_eq!(st, 200, "{v}");
    }
}

async fn pair(extra: &[(&str, Value)]) -> Pair {
    pair_verified(extra, false).await
}

/// A pair whose upstream vouches for ulla's email (`email_verified`) when `verified`.
async fn pair_verified(extra: &[(&str, Value)], verified: bool) -> Pair {
    let u = spawn().await;
    let d = spawn().await;
    let (cid, secret) = upstream_app(&u, &d.url, verified).await;
    let d_admin = d.admin().await;
    provider_on_d(&d, &d_admin, &u.url, &cid, &secret, extra).await;
    Pair {
        u,
        d,
        d_admin,
        secret,
    }
}

/// Signs in as `ulla` on U's sign-in page at `at_u`; returns where U sends the browser back (D's callback).
async fn sign_in_at_u(p: &Pair, b: &Client, at_u: &str) -> String {
    let html = page_text(b, at_u).await;
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "ulla".into()));
    form.push(("password".into(), "ulla-pw".into()));
    let r = b
        .post(format!("{}/login", p.u.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(format!("{}{next}", p.u.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// From D's authorize URL through U's sign-in back to D; returns the final response at D's return_to.
async fn federated_sign_in(p: &Pair, b: &Client, authorize: &str) -> reqwest::Response {
    let page = page_text(b, authorize).await;
    assert!(
        page.contains("Sign in with Upstreamidp"),
        "the login page shows the provider button"
    );
    let start = page
        .split(&format!("href=\"/login/{SERVICE}"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("button href");
    let start = format!(
        "{}/login/{SERVICE}{}",
        p.d.url,
        crate::common::unescape(start)
    );
    let r = b.get(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let at_u = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        at_u.starts_with(&format!("{}/oauth/authorize?", p.u.url)),
        "{at_u}"
    );
    let q = query_of(&at_u);
    assert_eq!(q["redirect_uri"], format!("{}/_oauth/{SERVICE}", p.d.url));
    assert_eq!(q["code_challenge_method"], "S256");
    // U's sign-in page, then U redirects back to D's callback.
    let callback = sign_in_at_u(p, b, &at_u).await;
    assert!(
        callback.starts_with(&format!("{}/_oauth/{SERVICE}?", p.d.url)),
        "{callback}"
    );
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    b.get(format!("{}{back}", p.d.url)).send().await.unwrap()
}

fn d_authorize(p: &Pair, client_id: &str) -> String {
    format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&state=fed&code_challenge={}&code_challenge_method=S256",
        p.d.url,
        crate::common::s256(crate::oauth_flow::VERIFIER)
    )
}

async fn users_named(s: &Server, a: &Auth, name: &str) -> u16 {
    s.get(&format!("/api/v1/users.info?username={name}"), a)
        .await
        .0
}

#[tokio::test]
async fn sign_in_through_another_latchkey_creates_then_reuses_the_link() {
    let p = pair(&[]).await;
    let client = make_app(&p.d, json!({"skipConsent": true})).await;
    let b = browser();
    let r = federated_sign_in(&p, &b, &d_authorize(&p, &client.client_id)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let landed = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(landed.starts_with(REDIRECT), "{landed}");
    let code = query_of(&landed)["code"].clone();
    let (st, tokens) = redeem(&p.d, &client, &code).await;
    assert_eq!(st, 200, "{tokens}");

    // D created the local user from U's identity.
    let (st, info) =
        p.d.get("/api/v1/users.info?username=ulla", &p.d_admin)
            .await;
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["user"]["name"], "Ulla Upstream");
    assert_eq!(
        info["user"]["emails"][0]["address"],
        "ulla@upstream.example"
    );
    let links =
        p.d.running
            .as_ref()
            .unwrap()
            .state
            .store
            .links_of_user(info["user"]["_id"].as_str().unwrap())
            .await
            .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].provider, SERVICE);
    assert!(links[0].allow_sign_in);

    // A second sign-in in a fresh browser reuses the link: no second user.
    let b2 = browser();
    let r = federated_sign_in(&p, &b2, &d_authorize(&p, &client.client_id)).await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    assert_eq!(
        users_named(&p.d, &p.d_admin, "ulla-2").await,
        400,
        "no duplicate user"
    );
    let links =
        p.d.running
            .as_ref()
            .unwrap()
            .state
            .store
            .list_links()
            .await
            .unwrap();
    assert_eq!(links.len(), 1);
    p.d.running.as_ref().unwrap().state.store.verify().unwrap();
}

/// A local user on D; returns its id.
async fn local_user(p: &Pair, username: &str, roles: &[&str]) -> String {
    let (st, v) =
        p.d.post(
            "/api/v1/users.create",
            &p.d_admin,
            json!({"username": username, "email": "ulla@upstream.example", "password": "local-pw", "roles": roles}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["user"]["_id"].as_str().unwrap().to_owned()
}

/// Ulla signs in at U through D's provider and D refuses to merge: the page says why, and D has no link and no
/// user beyond the `users` it had.
async fn merge_refused(p: &Pair, because: &str, users: usize) {
    let (b, at_u) = start_at_d(&p.d).await;
    let callback = sign_in_at_u(p, &b, &at_u).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Sign-in failed") && page.contains(because),
        "{page}"
    );
    let store = &p.d.running.as_ref().unwrap().state.store;
    assert!(store.list_links().await.unwrap().is_empty());
    assert_eq!(store.list_users().await.unwrap().len(), users);
}

async fn links_of(p: &Pair, user_id: &str) -> usize {
    let store = &p.d.running.as_ref().unwrap().state.store;
    store.links_of_user(user_id).await.unwrap().len()
}

#[tokio::test]
async fn merge_by_email_needs_an_email_the_upstream_verified() {
    let merge = [
        ("-merge_users", json!(true)),
        ("-key_field", json!("email")),
        ("-merge_users_with_password", json!(true)),
    ];
    let p = pair_verified(&merge, false).await;
    let local = local_user(&p, "ulla.local", &["user"]).await;
    merge_refused(&p, "verified", 2).await;
    assert_eq!(links_of(&p, &local).await, 0);

    // The same upstream account with a verified email is linked to the existing user.
    let p = pair_verified(&merge, true).await;
    let local = local_user(&p, "ulla.local", &["user"]).await;
    let client = make_app(&p.d, json!({"skipConsent": true})).await;
    let r = federated_sign_in(&p, &browser(), &d_authorize(&p, &client.client_id)).await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    assert_eq!(
        links_of(&p, &local).await,
        1,
        "the existing user was linked"
    );
    assert_eq!(
        users_named(&p.d, &p.d_admin, "ulla").await,
        400,
        "no new user"
    );
}

#[tokio::test]
async fn merge_never_takes_over_an_admin() {
    let p = pair_verified(
        &[
            ("-merge_users", json!(true)),
            ("-key_field", json!("email")),
            ("-merge_users_with_password", json!(true)),
        ],
        true,
    )
    .await;
    // By verified email...
    let boss = local_user(&p, "ulla", &["admin"]).await;
    merge_refused(&p, "administrator", 2).await;
    // ... and by username (`ulla` upstream, `ulla` here).
    p.set_on_d("-key_field", json!("username")).await;
    merge_refused(&p, "administrator", 2).await;
    assert_eq!(links_of(&p, &boss).await, 0);
}

#[tokio::test]
async fn merge_into_an_account_with_a_password_needs_merge_users_with_password() {
    let p = pair_verified(
        &[
            ("-merge_users", json!(true)),
            ("-key_field", json!("email")),
        ],
        true,
    )
    .await;
    let local = local_user(&p, "ulla.local", &["user"]).await;
    merge_refused(&p, "password", 2).await;

    p.set_on_d("-merge_users_with_password", json!(true)).await;
    let client = make_app(&p.d, json!({"skipConsent": true})).await;
    let r = federated_sign_in(&p, &browser(), &d_authorize(&p, &client.client_id)).await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    assert_eq!(links_of(&p, &local).await, 1, "linked once configured");
}

/// Starts a sign-in at D and returns (browser, the URL of U's authorize page, D's state cookie set).
async fn start_at_d(d: &Server) -> (Client, String) {
    let b = browser();
    let r = b
        .get(format!("{}/login/{SERVICE}?return_to=/login", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    (b, r.headers()["location"].to_str().unwrap().to_owned())
}

/// D's provider callback, as browser `b` follows it back from U with `query`: the status and the page.
async fn callback(d: &Server, b: &Client, query: &str) -> (StatusCode, String) {
    let r = b
        .get(format!("{}/_oauth/{SERVICE}?{query}", d.url))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn assert_nothing_changed(p: &Pair) {
    let store = &p.d.running.as_ref().unwrap().state.store;
    assert!(store.list_links().await.unwrap().is_empty());
    assert_eq!(store.list_users().await.unwrap().len(), 1, "only D's admin");
}

#[tokio::test]
async fn a_bad_state_ends_on_an_error_page() {
    let p = pair(&[]).await;
    let (b, _) = start_at_d(&p.d).await;
    let (st, page) = callback(&p.d, &b, "code=x&state=forged").await;
    assert_eq!(st, 400);
    assert!(page.contains("state"), "{page}");
    // No cookie at all: also refused.
    let r = browser()
        .get(format!("{}/_oauth/{SERVICE}?code=x&state=y", p.d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_nothing_changed(&p).await;
}

#[tokio::test]
async fn an_upstream_error_response_ends_on_an_error_page() {
    let p = pair(&[]).await;
    let (b, at_u) = start_at_d(&p.d).await;
    let state = query_of(&at_u)["state"].clone();
    let (st, page) = callback(&p.d, &b, &format!("error=access_denied&state={state}")).await;
    assert_eq!(st, 502);
    assert!(page.contains("access_denied"), "{page}");
    // A code U never issued: U's token endpoint refuses it.
    let (b, at_u) = start_at_d(&p.d).await;
    let state = query_of(&at_u)["state"].clone();
    let (st, page) = callback(&p.d, &b, &format!("code=not-a-code&state={state}")).await;
    assert_eq!(st, 502);
    assert!(page.contains("invalid_grant"), "{page}");
    assert_nothing_changed(&p).await;
}

#[tokio::test]
async fn an_unreachable_upstream_ends_on_an_error_page() {
    let p = pair(&[]).await;
    let (b, at_u) = start_at_d(&p.d).await;
    let state = query_of(&at_u)["state"].clone();
    // Point the provider at a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    p.set_on_d("-url", json!(format!("http://{closed}"))).await;
    let (st, page) = callback(&p.d, &b, &format!("code=x&state={state}")).await;
    assert_eq!(st, 502);
    assert!(page.contains("unreachable"), "{page}");
    assert_nothing_changed(&p).await;
}

#[tokio::test]
async fn an_identity_without_an_id_ends_on_an_error_page() {
    // U's metadata document is JSON without any id claim.
    let p = pair(&[(
        "-identity_path",
        json!("/.well-known/oauth-authorization-server"),
    )])
    .await;
    let client = make_app(&p.d, json!({"skipConsent": true})).await;
    let b = browser();
    let page = b
        .get(d_authorize(&p, &client.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let r = b
        .get(format!("{}/login/{SERVICE}?return_to=/login", p.d.url))
        .send()
        .await
        .unwrap();
    let at_u = r.headers()["location"].to_str().unwrap().to_owned();
    let callback = sign_in_at_u(&p, &b, &at_u).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("no account id"));
    assert_nothing_changed(&p).await;
}

#[tokio::test]
async fn no_upstream_secret_is_stored_in_plaintext() {
    let p = pair(&[]).await;
    let client = make_app(&p.d, json!({"skipConsent": true})).await;
    let r = federated_sign_in(&p, &browser(), &d_authorize(&p, &client.client_id)).await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    let secret = &p.secret;
    p.d.running
        .as_ref()
        .unwrap()
        .state
        .store
        .flush_blocking()
        .unwrap();
    for f in crate::common::files_under(p.d.dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in {}",
            f.display()
        );
    }
}

/// An upstream on 127.0.0.1 that misbehaves: its token endpoint answers after `delay`, its identity endpoint
/// streams a valid JSON document of `identity_bytes` (without announcing its length). Serves 8 connections.
async fn hostile_upstream(delay: Duration, identity_bytes: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match c.read(&mut buf).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).to_lowercase();
                let length: usize = text
                    .split("content-length:")
                    .nth(1)
                    .and_then(|r| r.split("\r\n").next())
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                let header_end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                let mut have = head.len().saturating_sub(header_end);
                while have < length.min(65536) {
                    match c.read(&mut buf).await {
                        Ok(n) if n > 0 => have += n,
                        _ => return,
                    }
                }
                if text.starts_with("post /oauth/token") {
                    tokio::time::sleep(delay).await;
                    let body = r#"{"access_token":"upstream-token","token_type":"Bearer"}"#;
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = c.write_all(answer.as_bytes()).await;
                } else {
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"sub\":\"big\",\"pad\":\"").await;
                    let pad = vec![b'a'; 64 * 1024];
                    for _ in 0..identity_bytes / pad.len() {
                        if c.write_all(&pad).await.is_err() {
                            return;
                        }
                    }
                    let _ = c.write_all(b"\"}").await;
                }
            });
        }
    });
    url
}

/// D with its provider pointing at `upstream`; a sign-in started and called back with a code: (status, page).
async fn sign_in_against(d: &Server, upstream: &str) -> (StatusCode, String) {
    let a = d.admin().await;
    provider_on_d(d, &a, upstream, "client", "secret", &[]).await;
    let (b, at_u) = start_at_d(d).await;
    let state = query_of(&at_u)["state"].clone();
    callback(d, &b, &format!("code=x&state={state}")).await
}

#[tokio::test]
async fn a_slow_upstream_ends_on_the_sign_in_error_page_before_the_request_timeout() {
    let d = spawn_with(|c| c.limits.request_timeout_secs = 2).await;
    let upstream = hostile_upstream(Duration::from_secs(20), 0).await;
    let started = Instant::now();
    let (st, page) = sign_in_against(&d, &upstream).await;
    assert_eq!(st, StatusCode::GATEWAY_TIMEOUT, "{page}");
    assert!(
        page.contains("Sign-in failed") && page.contains("did not answer within 1.6 s"),
        "{page}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let store = &d.running.as_ref().unwrap().state.store;
    assert!(store.list_links().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_oversized_identity_document_is_refused_without_buffering_it() {
    let d = spawn().await;
    let upstream = hostile_upstream(Duration::ZERO, 64 << 20).await;
    let started = Instant::now();
    let (st, page) = sign_in_against(&d, &upstream).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{page}");
    assert!(
        page.contains("identity response is larger than 1048576 bytes"),
        "{page}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let store = &d.running.as_ref().unwrap().state.store;
    assert!(store.list_links().await.unwrap().is_empty());
    assert_eq!(store.list_users().await.unwrap().len(), 1, "only D's admin");
}
