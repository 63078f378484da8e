//! docs/oidc.md#latchkey-as-a-relying-party end to end: Latchkey A signs in through an OpenID Connect issuer.
//! First through Latchkey B as a generic issuer (two real servers); then through an emulated issuer (an axum
//! server in this file that signs with a key it holds) that answers each way A must refuse: every refusal ends on
//! A's sign-in error page naming what failed, and leaves A's store as it was.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey::clock::Clock;
use latchkey::crypto::jose::{generate, public_key, Signer, SigningAlg};
use reqwest::Client;
use serde_json::{json, Map, Value};

use crate::common::{browser, hidden_inputs, page_text, query_of, Auth, Server, TestServer};
use crate::providers::{add, set, PREFIX};

const SERVICE: &str = "issuer";
const CLIENT_ID: &str = "a-at-the-issuer";

/// Adds the custom provider "Issuer" on `a`, an OpenID Connect upstream at `issuer` (`-oidc`).
async fn oidc_provider(a: &Server, admin: &Auth, issuer: &str, client_id: &str, secret: &str) {
    add(a, admin, "Issuer").await;
    let (st, v) = set(a, admin, &format!("{PREFIX}Issuer-url"), json!(issuer)).await;
    assert_eq!(st, 200, "{v}");
    settings(a, admin, client_id, secret).await;
}

/// The settings of A's provider but its `-url`: the client at the issuer, OIDC, enabled.
async fn settings(a: &Server, admin: &Auth, client_id: &str, secret: &str) {
    for (suffix, value) in [
        ("-scope", json!("openid profile email")),
        ("-token_sent_via", json!("header")),
        ("-identity_token_sent_via", json!("header")),
        ("-id", json!(client_id)),
        ("-secret", json!(secret)),
        ("-oidc", json!(true)),
        ("", json!(true)),
    ] {
        let (st, v) = set(a, admin, &format!("{PREFIX}Issuer{suffix}"), value).await;
        assert_eq!(st, 200, "{suffix}: {v}");
    }
}

/// Starts a sign-in at A: (browser, the issuer's authorize URL A redirected to).
async fn start(a: &Server) -> (Client, String) {
    let b = browser();
    let r = b
        .get(format!("{}/login/{SERVICE}?return_to=/login", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    (b, r.headers()["location"].to_str().unwrap().to_owned())
}

async fn links_and_users(a: &Server) -> (usize, usize) {
    let store = &a.running.as_ref().unwrap().state.store;
    (
        store.list_links().await.unwrap().len(),
        store.list_users().await.unwrap().len(),
    )
}

#[tokio::test]
async fn a_latchkey_signs_in_through_another_latchkey_as_a_generic_oidc_issuer() {
    let issuer_b = TestServer::new().start().await;
    let a = TestServer::new().start().await;
    // B: user ulla and a client whose redirect URI is A's callback.
    let b_admin = issuer_b.admin().await;
    let (st, user) = issuer_b
        .post("/api/v1/users.create", &b_admin, json!({"username": "ulla", "email": "ulla@b.example", "password": "ulla-pw", "name": "Ulla B", "verified": true}))
        .await;
    assert_eq!(st, 200, "{user}");
    let ulla_at_b = user["user"]["_id"].as_str().unwrap().to_owned();
    let (st, app) = issuer_b
        .post("/api/v1/oauth-apps.create", &b_admin, json!({"name": "A", "active": true, "redirectUri": format!("{}/_oauth/{SERVICE}", a.url), "skipConsent": true}))
        .await;
    assert_eq!(st, 200, "{app}");
    let app = &app["application"];
    let issuer = issuer_b.running.as_ref().unwrap().state.issuer.to_string();
    let a_admin = a.admin().await;
    oidc_provider(
        &a,
        &a_admin,
        &issuer,
        app["clientId"].as_str().unwrap(),
        app["clientSecret"].as_str().unwrap(),
    )
    .await;

    for round in 0..2 {
        let (b, at_b) = start(&a).await;
        assert!(
            at_b.starts_with(&format!("{issuer}/oauth/authorize?")),
            "{at_b}"
        );
        let q = query_of(&at_b);
        assert_eq!(q["code_challenge_method"], "S256", "B advertises S256");
        assert!(q["nonce"].len() >= 32, "a fresh nonce per sign-in");
        // B's sign-in page; B sends the browser back to A's callback with `iss` (RFC 9207).
        let mut form = hidden_inputs(&page_text(&b, &at_b).await);
        form.push(("username".into(), "ulla".into()));
        form.push(("password".into(), "ulla-pw".into()));
        let r = b
            .post(format!("{}/login", issuer_b.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let next = r.headers()["location"].to_str().unwrap().to_owned();
        let r = b
            .get(format!("{}{next}", issuer_b.url))
            .send()
            .await
            .unwrap();
        let callback = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(query_of(&callback)["iss"], issuer);
        let r = b.get(&callback).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "round {round}: {:?}",
            r.text().await
        );
        assert_eq!(r.headers()["location"], "/login");
        // One user, one link keyed on B's subject (its user id), however often ulla signs in.
        let store = &a.running.as_ref().unwrap().state.store;
        let links = store.list_links().await.unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].account_id, ulla_at_b);
        assert_eq!(links[0].provider, SERVICE);
        assert_eq!(
            store.list_users().await.unwrap().len(),
            2,
            "A's admin and ulla"
        );
    }
    let (st, info) = a.get("/api/v1/users.info?username=ulla", &a_admin).await;
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["user"]["name"], "Ulla B");
}

/// How the emulated issuer misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Hostile {
    No,
    Huge,
    NotJson,
    Slow,
    Redirect,
    WrongIssuer,
}

/// The emulated issuer's state: its keys, what its next ID token looks like, how its documents misbehave.
struct Emu {
    url: String,
    clock: Clock,
    signer: Arc<Signer>,
    /// The JWKS it publishes.
    jwks: Value,
    /// The nonce of the sign-in in flight (the test copies it from the authorize URL).
    nonce: String,
    /// Changes to the next ID token's claims.
    edit: fn(&mut Map<String, Value>),
    /// Signs the next ID token with this ES256 key (PKCS#8 DER) instead, under the published key's kid.
    rogue: Option<Vec<u8>>,
    userinfo_sub: &'static str,
    discovery: Hostile,
    jwks_hostile: Hostile,
    iss_parameter: bool,
}

type Shared = Arc<Mutex<Emu>>;

fn key(alg: SigningAlg) -> (Arc<Signer>, Value) {
    let der = generate(alg);
    let public = public_key(alg, &der).unwrap();
    let kid = public.thumbprint();
    (
        Arc::new(Signer::new(kid.clone(), alg, &der).unwrap()),
        public.jwk(alg, &kid),
    )
}

/// Starts an emulated issuer on 127.0.0.1 whose clock is `clock`.
async fn emulated_issuer(clock: Clock) -> Shared {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (signer, jwk) = key(SigningAlg::Es256);
    let emu = Arc::new(Mutex::new(Emu {
        url,
        clock,
        signer,
        jwks: json!({"keys": [jwk]}),
        nonce: String::new(),
        edit: |_| {},
        rogue: None,
        userinfo_sub: "alice-sub",
        discovery: Hostile::No,
        jwks_hostile: Hostile::No,
        iss_parameter: false,
    }));
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(emu.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    emu
}

/// A misbehaving answer, or `None` for the real one.
async fn hostile(how: Hostile) -> Option<Response> {
    match how {
        Hostile::No | Hostile::WrongIssuer => None,
        Hostile::Huge => Some(vec![b'{'; 2 << 20].into_response()),
        Hostile::NotJson => Some("<html>maintenance</html>".into_response()),
        Hostile::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Some(StatusCode::NO_CONTENT.into_response())
        }
        Hostile::Redirect => Some(
            (
                StatusCode::FOUND,
                [(header::LOCATION, "http://elsewhere.example/")],
            )
                .into_response(),
        ),
    }
}

async fn discovery(State(emu): State<Shared>) -> Response {
    let (how, url, iss) = {
        let e = emu.lock().unwrap();
        (e.discovery, e.url.clone(), e.iss_parameter)
    };
    if let Some(r) = hostile(how).await {
        return r;
    }
    let issuer = if how == Hostile::WrongIssuer {
        format!("{url}/other")
    } else {
        url.clone()
    };
    Json(json!({"issuer": issuer, "authorization_endpoint": format!("{url}/authorize"),
                "token_endpoint": format!("{url}/token"), "userinfo_endpoint": format!("{url}/userinfo"),
                "jwks_uri": format!("{url}/jwks"), "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": iss}))
    .into_response()
}

async fn jwks(State(emu): State<Shared>) -> Response {
    let (how, doc) = {
        let e = emu.lock().unwrap();
        (e.jwks_hostile, e.jwks.clone())
    };
    match hostile(how).await {
        Some(r) => r,
        None => Json(doc).into_response(),
    }
}

async fn token(State(emu): State<Shared>) -> Response {
    let e = emu.lock().unwrap();
    let now = e.clock.now_ms() / 1000;
    let mut claims = json!({"iss": e.url, "sub": "alice-sub", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                            "nonce": e.nonce, "email": "alice@issuer.example", "email_verified": true});
    (e.edit)(claims.as_object_mut().unwrap());
    let id_token = match &e.rogue {
        Some(der) => Signer::new(e.signer.kid().into(), SigningAlg::Es256, der)
            .unwrap()
            .sign("JWT", &claims),
        None => e.signer.sign("JWT", &claims),
    };
    Json(json!({"access_token": "issuer-access", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn userinfo(State(emu): State<Shared>) -> Response {
    let sub = emu.lock().unwrap().userinfo_sub;
    Json(json!({"sub": sub, "name": "Alice", "preferred_username": "alice"})).into_response()
}

/// Back to a well-behaved issuer.
fn reset(e: &mut Emu) {
    e.edit = |_| {};
    e.rogue = None;
    e.userinfo_sub = "alice-sub";
}

/// A sign-in at A through the emulated issuer, whose answer comes back with `iss` when given: (status, page).
async fn sign_in(a: &Server, emu: &Shared, iss: Option<&str>) -> (StatusCode, String) {
    let (b, at) = start(a).await;
    let q = query_of(&at);
    emu.lock().unwrap().nonce = q["nonce"].clone();
    let mut callback = url::Url::parse(&format!("{}/_oauth/{SERVICE}", a.url)).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", "c")
        .append_pair("state", &q["state"]);
    if let Some(iss) = iss {
        callback.query_pairs_mut().append_pair("iss", iss);
    }
    let r = b.get(callback).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A on `clock` with its provider at the emulated issuer `emu`.
async fn a_at(emu: &Shared, clock: Clock) -> Server {
    let a = TestServer::new().clock(clock).start().await;
    let url = emu.lock().unwrap().url.clone();
    oidc_provider(&a, &a.admin().await, &url, CLIENT_ID, "secret").await;
    a
}

#[tokio::test]
async fn each_bad_answer_ends_on_an_error_page_that_names_it_and_changes_nothing() {
    let clock = Clock::manual(Clock::system().now_ms());
    let emu = emulated_issuer(clock.clone()).await;
    let a = a_at(&emu, clock.clone()).await;
    let url = emu.lock().unwrap().url.clone();
    type Setup = fn(&mut Emu);
    let cases: [(&str, Setup); 6] = [
        ("bad signature", |e| {
            e.rogue = Some(generate(SigningAlg::Es256))
        }),
        ("wrong issuer", |e| {
            e.edit = |c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }
        }),
        ("wrong audience", |e| {
            e.edit = |c| {
                c.insert("aud".into(), json!("someone-else"));
            }
        }),
        ("nonce mismatch", |e| {
            e.edit = |c| {
                c.insert("nonce".into(), json!("replayed-nonce"));
            }
        }),
        ("expired", |e| {
            e.edit = |c| {
                let iat = c["iat"].as_i64().unwrap();
                c.insert("exp".into(), json!(iat - 61));
            }
        }),
        ("userinfo sub mismatch", |e| e.userinfo_sub = "mallory-sub"),
    ];
    for (what, setup) in cases {
        {
            let mut e = emu.lock().unwrap();
            reset(&mut e);
            setup(&mut e);
        }
        let (st, page) = sign_in(&a, &emu, None).await;
        assert_eq!(st, StatusCode::BAD_GATEWAY, "{what}: {page}");
        assert!(
            page.contains("Sign-in failed") && page.contains(what),
            "{what}: {page}"
        );
        assert_eq!(links_and_users(&a).await, (0, 1), "{what} changed nothing");
    }
    reset(&mut emu.lock().unwrap());

    // RFC 9207: once the issuer promises `iss` (its document refetched after the TTL), the answer must carry it.
    clock.advance(16 * 60 * 1000);
    emu.lock().unwrap().iss_parameter = true;
    let (st, page) = sign_in(&a, &emu, None).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{page}");
    assert!(page.contains("has no iss"), "{page}");
    let (_, page) = sign_in(&a, &emu, Some("https://evil.example")).await;
    assert!(page.contains("wrong issuer"), "{page}");
    assert_eq!(links_and_users(&a).await, (0, 1));

    // A good answer links alice by her subject.
    let (st, page) = sign_in(&a, &emu, Some(&url)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let store = &a.running.as_ref().unwrap().state.store;
    assert_eq!(store.list_links().await.unwrap()[0].account_id, "alice-sub");

    // The issuer rotates its key: the cached JWKS lacks the new kid and is refetched, but at most once per 30 s.
    let (signer, jwk) = key(SigningAlg::EdDsa);
    {
        let mut e = emu.lock().unwrap();
        e.signer = signer;
        e.jwks = json!({"keys": [jwk]});
    }
    let (st, page) = sign_in(&a, &emu, Some(&url)).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{page}");
    assert!(page.contains("a key the issuer does not publish"), "{page}");
    clock.advance(31 * 1000);
    let (st, page) = sign_in(&a, &emu, Some(&url)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(
        links_and_users(&a).await,
        (1, 2),
        "the same link signed in again"
    );
}

#[tokio::test]
async fn hostile_documents_fail_cleanly_within_bounds() {
    let a = TestServer::new()
        .config(|c| c.limits.request_timeout_secs = 2)
        .start()
        .await;
    let admin = a.admin().await;
    let key = format!("{PREFIX}Issuer-url");
    add(&a, &admin, "Issuer").await;
    settings(&a, &admin, CLIENT_ID, "secret").await;
    let discovery_cases = [
        (
            Hostile::Huge,
            "discovery document is larger than 1048576 bytes",
        ),
        (Hostile::NotJson, "discovery document is not JSON"),
        (Hostile::Redirect, "discovery document answered 302 Found"),
        (Hostile::WrongIssuer, "wrong issuer"),
        (
            Hostile::Slow,
            "discovery document is unreachable (timed out)",
        ),
    ];
    for (how, says) in discovery_cases {
        let emu = emulated_issuer(Clock::system()).await;
        emu.lock().unwrap().discovery = how;
        let url = emu.lock().unwrap().url.clone();
        assert_eq!(set(&a, &admin, &key, json!(url)).await.0, 200);
        let started = Instant::now();
        let r = browser()
            .get(format!("{}/login/{SERVICE}", a.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let page = r.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
        assert!(started.elapsed() < Duration::from_secs(2), "{says}");
    }
    for (how, says) in [
        (Hostile::Huge, "JWKS is larger than 1048576 bytes"),
        (Hostile::NotJson, "JWKS is not JSON"),
    ] {
        let emu = emulated_issuer(Clock::system()).await;
        emu.lock().unwrap().jwks_hostile = how;
        let url = emu.lock().unwrap().url.clone();
        assert_eq!(set(&a, &admin, &key, json!(url)).await.0, 200);
        let (st, page) = sign_in(&a, &emu, None).await;
        assert_eq!(st, StatusCode::BAD_GATEWAY, "{page}");
        assert!(page.contains(says), "{says}: {page}");
    }
    assert_eq!(links_and_users(&a).await, (0, 1));
}
