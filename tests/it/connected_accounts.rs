//! docs/endpoints.md#connected-accounts: Stack's `POST /api/v1/connected-accounts/{user_id}/{provider_id}/access-token`
//! over a link made by a real federated sign-in at an emulated upstream (authorize, token with rotating refresh
//! tokens, identity), on a manual clock: a fresh token as is, an expired one refreshed once for concurrent
//! callers, Stack's refusals (each changing nothing), and no upstream token in plaintext under the data dir.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::steps::create_user;
use crate::common::{browser, files_under, query_of, Auth, Server, TestServer};
use crate::oauth_flow::{authorize_url, make_app, redeem, sign_in, TestApp};
use crate::providers::{add, set, PREFIX};

const PROJECT: &str = "0e5d8f3a-6c1b-4d2e-9f7a-8b3c4d5e6f70";
const SERVER_KEY: &str = "connected-server-key-cccccccccccccccccccccc";
const SERVICE: &str = "upstream";
const CLIENT_ID: &str = "latchkey-at-upstream";
const CLIENT_SECRET: &str = "upstream-client-secret-d41d8cd98f";
/// The upstream's access tokens live this long.
const LIFETIME_SECS: i64 = 3600;
/// Stack's margin: a token with less to live is refreshed.
const MARGIN_MS: i64 = 5 * 60 * 1000;

fn access(n: usize) -> String {
    format!("upstream-access-{n}-5b1e0c7d9a")
}

fn refresh(n: usize) -> String {
    format!("upstream-refresh-{n}-9a4f2e61bc")
}

/// The emulated upstream: its token endpoint rotates refresh tokens (a stale one is `invalid_grant`, as a double
/// refresh would meet) and takes its time over a refresh, so concurrent callers really overlap.
#[derive(Default)]
struct Upstream {
    /// Refresh grants answered with a new token set.
    refreshes: AtomicUsize,
    /// The one refresh token the upstream accepts now.
    current: Mutex<String>,
    /// Whether the code exchange issues a refresh token.
    no_refresh_token: AtomicBool,
    /// Whether the next refreshes are refused (`invalid_grant`), as after the user revoked the grant.
    revoked: AtomicBool,
}

async fn authorize(Query(q): Query<std::collections::HashMap<String, String>>) -> Redirect {
    Redirect::to(&format!(
        "{}?code=upstream-code&state={}",
        q["redirect_uri"], q["state"]
    ))
}

async fn token(
    State(up): State<Arc<Upstream>>,
    Form(f): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let bad =
        |status: StatusCode, error: &str| (status, Json(json!({ "error": error }))).into_response();
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let n = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => 0,
        Some("refresh_token") => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut current = up.current.lock().unwrap();
            if up.revoked.load(Ordering::SeqCst) || f.get("refresh_token") != Some(&*current) {
                return bad(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let n = up.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            *current = refresh(n);
            n
        }
        _ => return bad(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let mut answer =
        json!({"access_token": access(n), "token_type": "Bearer", "expires_in": LIFETIME_SECS});
    if n == 0 {
        answer["scope"] = json!("read write");
        if !up.no_refresh_token.load(Ordering::SeqCst) {
            *up.current.lock().unwrap() = refresh(0);
            answer["refresh_token"] = json!(refresh(0));
        }
    } else {
        answer["refresh_token"] = json!(refresh(n));
    }
    Json(answer).into_response()
}

async fn me() -> Json<Value> {
    Json(json!({"id": "upstream-account-1", "username": "ulla", "email": "ulla@upstream.example"}))
}

async fn upstream() -> (String, Arc<Upstream>) {
    let up = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/me", get(me))
        .with_state(up.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, up)
}

/// D (on a manual clock, with a Stack project and the custom provider "Upstream" pointing at the emulated
/// upstream), ulla signed in through it, and Stack sessions for ulla and for bob (a local user).
struct Env {
    d: Server,
    admin: Auth,
    clock: Clock,
    up: Arc<Upstream>,
    ulla: String,
    ulla_token: String,
    bob_token: String,
}

async fn env(no_refresh_token: bool) -> Env {
    let (url, up) = upstream().await;
    up.no_refresh_token
        .store(no_refresh_token, Ordering::SeqCst);
    let clock = Clock::manual(Clock::system().now_ms());
    let d = TestServer::new()
        .clock(clock.clone())
        .config(|c| {
            c.stack.project_id = PROJECT.into();
            c.stack.server_key = SERVER_KEY.into();
        })
        .start()
        .await;
    let admin = d.admin().await;
    add(&d, &admin, "Upstream").await;
    for (suffix, value) in [
        ("-url", json!(url)),
        ("-authorize_path", json!("/authorize")),
        ("-token_path", json!("/token")),
        ("-identity_path", json!("/me")),
        ("-scope", json!("read write")),
        ("-token_sent_via", json!("payload")),
        ("-identity_token_sent_via", json!("header")),
        ("-id", json!(CLIENT_ID)),
        ("-secret", json!(CLIENT_SECRET)),
        ("", json!(true)),
    ] {
        let (st, v) = set(&d, &admin, &format!("{PREFIX}Upstream{suffix}"), value).await;
        assert_eq!(st, 200, "{suffix}: {v}");
    }
    // Stack user sessions are access tokens granted `latchkey:api`.
    let app = make_app(
        &d,
        json!({"grantTypes": ["authorization_code"], "skipConsent": true, "scopes": "openid latchkey:api"}),
    )
    .await;
    let (ulla, ulla_token) = federated_sign_in(&d, &app).await;
    create_user(&d, &admin, "bob").await;
    let r = sign_in(&d, &browser(), &authorize_url(&d, &app, &[]), "bob", "pw").await;
    let (_, v) = redeem(&d, &app, &code_of(&r)).await;
    Env {
        d,
        admin,
        clock,
        up,
        ulla,
        ulla_token,
        bob_token: v["access_token"].as_str().unwrap().to_owned(),
    }
}

fn code_of(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    query_of(r.headers()["location"].to_str().unwrap())["code"].clone()
}

/// Signs ulla in at D through the upstream, then lets D's authorize page issue her a code: (her id, her token).
async fn federated_sign_in(d: &Server, app: &TestApp) -> (String, String) {
    let b = browser();
    let follow = async |url: String| {
        let r = b.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{url}");
        r.headers()["location"].to_str().unwrap().to_owned()
    };
    let at_upstream = follow(format!("{}/login/{SERVICE}?return_to=/login", d.url)).await;
    let callback = follow(at_upstream).await;
    assert!(
        callback.starts_with(&format!("{}/_oauth/{SERVICE}?", d.url)),
        "{callback}"
    );
    assert_eq!(follow(callback).await, "/login");
    let r = b.get(authorize_url(d, app, &[])).send().await.unwrap();
    let (st, v) = redeem(d, app, &code_of(&r)).await;
    assert_eq!(st, 200, "{v}");
    let links = state(d).store.list_links().await.unwrap();
    assert_eq!(links.len(), 1);
    assert!(links[0].allow_connected_accounts);
    (
        links[0].user_id.clone(),
        v["access_token"].as_str().unwrap().to_owned(),
    )
}

fn state(s: &Server) -> &latchkey::state::AppState {
    &s.running.as_ref().unwrap().state
}

/// Who calls: a client with a user session, or the server.
#[derive(Clone, Copy)]
enum As<'a> {
    Client(&'a str),
    Server,
}

struct Reply {
    status: u16,
    known: Option<String>,
    text: String,
    json: Value,
}

impl Env {
    async fn token_of(&self, who: As<'_>, user: &str, provider: &str, body: Value) -> Reply {
        let url = format!(
            "{}/api/v1/connected-accounts/{user}/{provider}/access-token",
            self.d.url
        );
        let rb = self
            .d
            .http
            .request(Method::POST, url)
            .header("X-Stack-Project-Id", PROJECT)
            .json(&body);
        let rb = match who {
            As::Client(t) => rb
                .header("X-Stack-Access-Type", "client")
                .header("X-Stack-Access-Token", t),
            As::Server => rb
                .header("X-Stack-Access-Type", "server")
                .header("X-Stack-Secret-Server-Key", SERVER_KEY),
        };
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let known = r
            .headers()
            .get("x-stack-known-error")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            known,
            text,
            json,
        }
    }

    /// Ulla's token at the upstream, asked for by the server.
    async fn ullas(&self, scope: &str) -> Reply {
        self.token_of(As::Server, &self.ulla, SERVICE, json!({ "scope": scope }))
            .await
    }

    /// Moves D's clock to where the upstream's first token is within Stack's margin of expiring.
    fn expire(&self) {
        self.clock.advance(LIFETIME_SECS * 1000 - MARGIN_MS + 1);
    }

    async fn sealed(&self) -> Option<Vec<u8>> {
        state(&self.d).store.list_links().await.unwrap()[0]
            .upstream
            .clone()
    }
}

impl Reply {
    #[track_caller]
    fn token(&self) -> &str {
        assert_eq!(self.status, 201, "{}", self.text);
        assert_eq!(self.json.as_object().unwrap().len(), 1, "{}", self.text);
        self.json["access_token"].as_str().unwrap()
    }

    #[track_caller]
    fn known(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.known.as_deref()),
            (status, Some(code)),
            "{}",
            self.text
        );
        assert_eq!(self.json["code"], code);
    }
}

#[tokio::test]
async fn a_fresh_token_is_returned_as_is_and_an_expired_one_is_refreshed_once() {
    let e = env(false).await;
    assert_eq!(e.ullas("read").await.token(), access(0));
    assert_eq!(e.ullas("").await.token(), access(0));
    let own = e
        .token_of(
            As::Client(&e.ulla_token),
            "me",
            SERVICE,
            json!({"scope": "write"}),
        )
        .await;
    assert_eq!(own.token(), access(0));
    assert_eq!(e.up.refreshes.load(Ordering::SeqCst), 0);

    // Expired: two concurrent callers, one refresh at the upstream, both get its token.
    e.expire();
    let (a, b) = tokio::join!(
        e.ullas("read"),
        e.token_of(As::Client(&e.ulla_token), "me", SERVICE, json!({}))
    );
    assert_eq!(
        (a.token(), b.token()),
        (access(1).as_str(), access(1).as_str())
    );
    assert_eq!(e.up.refreshes.load(Ordering::SeqCst), 1);
    // The new set is stored: still fresh, and its rotated refresh token is the one used next time.
    assert_eq!(e.ullas("read write").await.token(), access(1));
    e.clock.advance(LIFETIME_SECS * 1000);
    assert_eq!(e.ullas("read").await.token(), access(2));
    assert_eq!(e.up.refreshes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn refusals_are_stacks_known_errors_and_change_nothing() {
    let e = env(false).await;
    let before = e.sealed().await;
    e.ullas("read admin")
        .await
        .known(400, "OAUTH_CONNECTION_DOES_NOT_HAVE_REQUIRED_SCOPE");
    e.token_of(As::Server, &e.ulla, "nope", json!({}))
        .await
        .known(400, "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED");
    // Bob has no link; as a client he cannot reach ulla's.
    e.token_of(As::Client(&e.bob_token), "me", SERVICE, json!({}))
        .await
        .known(400, "OAUTH_CONNECTION_NOT_CONNECTED_TO_USER");
    let r = e
        .token_of(As::Client(&e.bob_token), &e.ulla, SERVICE, json!({}))
        .await;
    assert_eq!(
        (r.status, r.known.as_deref(), r.text.as_str()),
        (
            403,
            None,
            "Client can only access its own connected accounts"
        )
    );
    let r = e
        .token_of(As::Server, &e.ulla, SERVICE, json!({"scope": 1, "x": true}))
        .await;
    r.known(400, "SCHEMA_ERROR");

    // The upstream no longer accepts the refresh token: the user must connect again.
    e.expire();
    e.up.revoked.store(true, Ordering::SeqCst);
    e.ullas("read")
        .await
        .known(400, "OAUTH_CONNECTION_DOES_NOT_HAVE_REQUIRED_SCOPE");
    // The upstream is down: retry later.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (st, _) = set(
        &e.d,
        &e.admin,
        &format!("{PREFIX}Upstream-url"),
        json!(format!("http://{closed}")),
    )
    .await;
    assert_eq!(st, 200);
    e.ullas("read")
        .await
        .known(503, "OAUTH_PROVIDER_TEMPORARILY_UNAVAILABLE");
    assert_eq!(
        e.sealed().await,
        before,
        "no refusal touched the stored tokens"
    );

    // A link that does not allow connected accounts is not one.
    let path = format!("/api/v1/oauth-providers/{}/{SERVICE}", e.ulla);
    let r =
        e.d.http
            .patch(format!("{}{path}", e.d.url))
            .header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
            .json(&json!({"allow_connected_accounts": false}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    e.ullas("read")
        .await
        .known(400, "OAUTH_CONNECTION_NOT_CONNECTED_TO_USER");
    assert_eq!(e.up.refreshes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_expired_token_without_a_refresh_token_is_not_available() {
    let e = env(true).await;
    assert_eq!(e.ullas("read").await.token(), access(0));
    e.expire();
    e.ullas("read")
        .await
        .known(400, "OAUTH_CONNECTION_DOES_NOT_HAVE_REQUIRED_SCOPE");
}

#[tokio::test]
async fn upstream_tokens_are_never_in_plaintext_under_the_data_dir() {
    let e = env(false).await;
    e.expire();
    assert_eq!(e.ullas("read").await.token(), access(1));
    state(&e.d).store.flush_blocking().unwrap();
    for f in files_under(e.d.dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for secret in [
            access(0),
            refresh(0),
            access(1),
            refresh(1),
            CLIENT_SECRET.to_owned(),
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                f.display()
            );
        }
    }
}

/// A token endpoint that streams an endless JSON answer without announcing its length: the refresh reads at most
/// `limits.upstream_body_bytes` of it, answers 503 at once, and stores nothing.
#[tokio::test]
async fn an_oversized_refresh_answer_is_cut_off_and_changes_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let e = env(false).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = c.read(&mut [0u8; 4096]).await;
                let _ = c
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"access_token\":\"")
                    .await;
                let pad = vec![b'a'; 64 * 1024];
                while c.write_all(&pad).await.is_ok() {}
            });
        }
    });
    let (st, _) = set(&e.d, &e.admin, &format!("{PREFIX}Upstream-url"), json!(url)).await;
    assert_eq!(st, 200);
    let before = e.sealed().await;
    e.expire();
    let started = std::time::Instant::now();
    e.ullas("read")
        .await
        .known(503, "OAUTH_PROVIDER_TEMPORARILY_UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.sealed().await, before);
}
