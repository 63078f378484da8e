//! Sign in with Apple end to end (README.md#provider-presets, docs/oidc.md#sign-in-with-apple) against an emulated
//! Apple on 127.0.0.1: its authorize endpoint answers with a page that posts the response back (form_post, with
//! the `user` JSON on first consent only), its token endpoint accepts only a client-secret JWT that verifies with
//! the `.p8` key's public half and says what Apple requires (alg, kid, iss, sub, aud, exp), and its ID tokens are
//! signed ES256 or RS256 under keys its JWKS publishes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use latchkey::clock::Clock;
use latchkey::config::DeclaredProvider;
use latchkey::crypto::jose::{generate, public_key, PublicKey, Signer, SigningAlg};
use reqwest::{Client, StatusCode};
use serde_json::{json, Map, Value};

use crate::common::{browser, hidden_inputs, unescape, Server, TestServer};

const SERVICES_ID: &str = "com.example.web";
const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "KEY7654321";
const SUB: &str = "001234.5f2d0e6a.0102";
const FIRST_CONSENT: &str = r#"{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"jane@privaterelay.appleid.com"}"#;

/// The emulated Apple: its keys, what it knows of Latchkey, and how its next answers look.
struct Apple {
    url: String,
    clock: Clock,
    /// The `.p8` key's public half, which client secrets must verify with.
    p8_public: jsonwebtoken::DecodingKey,
    /// The ID-token keys it publishes, by algorithm.
    signers: Vec<(SigningAlg, Signer)>,
    jwks: Value,
    /// The algorithm of the next ID token.
    alg: SigningAlg,
    /// The nonce and redirect URI of the authorization in flight.
    nonce: String,
    redirect_uri: String,
    /// The `user` JSON goes with the next answer (Apple sends it on first consent only).
    first_consent: bool,
    /// Changes to the next ID token's claims.
    edit: fn(&mut Map<String, Value>),
    /// Signs the next ID token with an unpublished key under a published kid.
    rogue: bool,
    /// The next token response has no `id_token`.
    no_id_token: bool,
    /// Every client secret the token endpoint accepted.
    secrets: Vec<String>,
}

type Shared = Arc<Mutex<Apple>>;

fn p8_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Starts an emulated Apple that knows the `.p8` key `p8` (PKCS#8 DER); its clock is `clock`.
async fn emulated_apple(clock: Clock, p8: &[u8]) -> Shared {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let PublicKey::Ec { x, y } = public_key(SigningAlg::Es256, p8).unwrap() else {
        unreachable!("an ES256 key")
    };
    let mut signers = Vec::new();
    let mut keys = Vec::new();
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let der = generate(alg);
        let public = public_key(alg, &der).unwrap();
        let kid = public.thumbprint();
        keys.push(public.jwk(alg, &kid));
        signers.push((alg, Signer::new(kid, alg, &der).unwrap()));
    }
    let apple = Arc::new(Mutex::new(Apple {
        url,
        clock,
        p8_public: jsonwebtoken::DecodingKey::from_ec_components(&b64url(&x), &b64url(&y)).unwrap(),
        signers,
        jwks: json!({ "keys": keys }),
        alg: SigningAlg::Es256,
        nonce: String::new(),
        redirect_uri: String::new(),
        first_consent: true,
        edit: |_| {},
        rogue: false,
        no_id_token: false,
        secrets: Vec::new(),
    }));
    let app = Router::new()
        .route("/auth/authorize", get(authorize))
        .route("/auth/token", post(token))
        .route("/auth/keys", get(keys_of))
        .with_state(apple.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    apple
}

/// Apple's consent, already given: a page whose form posts the response back to the redirect URI.
async fn authorize(
    State(apple): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let want = [
        ("response_type", "code"),
        ("response_mode", "form_post"),
        ("scope", "name email"),
        ("client_id", SERVICES_ID),
    ];
    for (k, v) in want {
        if q.get(k).map(String::as_str) != Some(v) {
            return (StatusCode::BAD_REQUEST, format!("{k} is not {v}")).into_response();
        }
    }
    if q.contains_key("code_challenge") {
        return (StatusCode::BAD_REQUEST, "Apple takes no PKCE").into_response();
    }
    let mut a = apple.lock().unwrap();
    a.nonce = q["nonce"].clone();
    a.redirect_uri = q["redirect_uri"].clone();
    let mut fields = vec![
        ("code", "apple-code".to_owned()),
        ("state", q["state"].clone()),
    ];
    if std::mem::take(&mut a.first_consent) {
        fields.push(("user", FIRST_CONSENT.to_owned()));
    }
    let esc = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;");
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
        .collect();
    Html(format!(
        r#"<form method="post" action="{}">{inputs}</form><script>document.forms[0].submit()</script>"#,
        esc(&a.redirect_uri)
    ))
    .into_response()
}

/// Why a client secret is refused, or `None`.
fn client_secret_refusal(a: &Apple, secret: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(secret).ok()?;
    if header.alg != jsonwebtoken::Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
        return Some("alg or kid".into());
    }
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let Ok(c) = jsonwebtoken::decode::<Map<String, Value>>(secret, &a.p8_public, &v) else {
        return Some("signature".into());
    };
    let c = c.claims;
    let now = a.clock.now_ms() / 1000;
    let (iat, exp) = (c["iat"].as_i64()?, c["exp"].as_i64()?);
    let claims_ok = c["iss"] == TEAM_ID
        && c["sub"] == SERVICES_ID
        && c["aud"] == "https://appleid.apple.com"
        && iat <= now
        && now < exp
        && exp - iat <= 15_777_000;
    (!claims_ok).then(|| format!("claims {c:?}"))
}

async fn token(State(apple): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut a = apple.lock().unwrap();
    let secret = f.get("client_secret").cloned().unwrap_or_default();
    if f.get("client_id").map(String::as_str) != Some(SERVICES_ID)
        || client_secret_refusal(&a, &secret).is_some()
        || secret.is_empty()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if f.get("code").map(String::as_str) != Some("apple-code")
        || f.get("redirect_uri") != Some(&a.redirect_uri)
        || f.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    a.secrets.push(secret);
    let now = a.clock.now_ms() / 1000;
    // As Apple sends them: the flags as strings.
    let mut claims = json!({"iss": a.url, "aud": SERVICES_ID, "exp": now + 600, "iat": now, "sub": SUB,
        "nonce": a.nonce, "nonce_supported": true, "email": "jane@privaterelay.appleid.com",
        "email_verified": "true", "is_private_email": "true", "auth_time": now, "real_user_status": 2});
    (a.edit)(claims.as_object_mut().unwrap());
    let signer = &a.signers.iter().find(|(alg, _)| *alg == a.alg).unwrap().1;
    let id_token = if a.rogue {
        Signer::new(signer.kid().into(), a.alg, &generate(a.alg))
            .unwrap()
            .sign("JWT", &claims)
    } else {
        signer.sign("JWT", &claims)
    };
    let mut answer = json!({"access_token": "apple-access", "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": "apple-refresh"});
    if !a.no_id_token {
        answer["id_token"] = json!(id_token);
    }
    Json(answer).into_response()
}

async fn keys_of(State(apple): State<Shared>) -> Json<Value> {
    Json(apple.lock().unwrap().jwks.clone())
}

/// The `[[providers]]` entry of Apple at `url` with the `.p8` key `pem` and `options`.
fn declared(url: &str, pem: &str, options: &[(&str, &str)]) -> DeclaredProvider {
    DeclaredProvider {
        preset: "apple".into(),
        client_id: SERVICES_ID.into(),
        client_secret: pem.into(),
        url: url.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

const OPTIONS: [(&str, &str); 2] = [("team_id", TEAM_ID), ("key_id", KEY_ID)];

/// Latchkey on `clock` with Apple at `apple` (its `.p8` key `p8`).
async fn latchkey_at(apple: &Shared, clock: Clock, p8: &[u8]) -> Server {
    let d = declared(&apple.lock().unwrap().url, &p8_pem(p8), &OPTIONS);
    TestServer::new()
        .clock(clock)
        .config(move |c| c.providers = vec![d])
        .start()
        .await
}

/// A sign-in through Apple in browser `b`: start, Apple's page, its post back. Returns the callback's answer.
async fn sign_in(s: &Server, b: &Client) -> reqwest::Response {
    let r = b
        .get(format!("{}/login/apple?return_to=/login", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let at_apple = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(&at_apple).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(unescape)
        .unwrap();
    assert_eq!(action, format!("{}/_oauth/apple", s.url));
    b.post(action)
        .form(&hidden_inputs(&page))
        .send()
        .await
        .unwrap()
}

async fn links_and_users(s: &Server) -> (usize, usize) {
    let store = &s.running.as_ref().unwrap().state.store;
    (
        store.list_links().await.unwrap().len(),
        store.list_users().await.unwrap().len(),
    )
}

async fn name_of_apple_user(s: &Server) -> String {
    let store = &s.running.as_ref().unwrap().state.store;
    let link = &store.list_links().await.unwrap()[0];
    assert_eq!(
        (link.account_id.as_str(), link.provider_type.as_str()),
        (SUB, "apple")
    );
    store
        .get_user(&link.user_id)
        .await
        .unwrap()
        .unwrap()
        .name
        .clone()
}

#[tokio::test]
async fn the_first_consent_names_the_user_and_later_sign_ins_keep_the_name() {
    let clock = Clock::manual(Clock::system().now_ms());
    let p8 = generate(SigningAlg::Es256);
    let apple = emulated_apple(clock.clone(), &p8).await;
    let s = latchkey_at(&apple, clock.clone(), &p8).await;

    let r = sign_in(&s, &browser()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(links_and_users(&s).await, (1, 2));
    assert_eq!(name_of_apple_user(&s).await, "Jane Appleseed");
    let store = &s.running.as_ref().unwrap().state.store;
    let link = &store.list_links().await.unwrap()[0];
    assert_eq!(
        link.email.as_deref(),
        Some("jane@privaterelay.appleid.com"),
        "the ID token's email"
    );

    // No `user` any more, an RS256 ID token, a minute later: the same user, the name kept.
    {
        let mut a = apple.lock().unwrap();
        assert!(!a.first_consent);
        a.alg = SigningAlg::Rs256;
    }
    clock.advance(60 * 1000);
    let r = sign_in(&s, &browser()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(links_and_users(&s).await, (1, 2));
    assert_eq!(name_of_apple_user(&s).await, "Jane Appleseed");

    // The client secret is kept while it has more than two of its ten minutes left, then rebuilt.
    clock.advance(7 * 60 * 1000);
    let r = sign_in(&s, &browser()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let secrets = apple.lock().unwrap().secrets.clone();
    assert_eq!(secrets.len(), 3);
    assert_eq!(secrets[0], secrets[1], "kept");
    assert_ne!(secrets[1], secrets[2], "rebuilt near its expiry");
    assert_eq!(links_and_users(&s).await, (1, 2));
}

#[tokio::test]
async fn the_pending_cookie_reaches_a_cross_site_post_and_only_a_post_finishes() {
    let p8 = generate(SigningAlg::Es256);
    let apple = emulated_apple(Clock::system(), &p8).await;
    let url = apple.lock().unwrap().url.clone();
    let pem = p8_pem(&p8);
    // An https issuer: the pending cookie of a form_post provider is SameSite=None (with Secure), others' Lax.
    let d = declared(&url, &pem, &OPTIONS);
    let https = TestServer::new()
        .config(move |c| {
            c.issuer = "https://latchkey.test".into();
            c.providers = vec![d];
        })
        .start()
        .await;
    let r = browser()
        .get(format!("{}/login/apple", https.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; SameSite=None;")
            && cookie.ends_with("; Secure")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Over http it stays Lax (a browser refuses SameSite=None without Secure).
    let s = latchkey_at(&apple, Clock::system(), &p8).await;
    let b = browser();
    let r = b
        .get(format!("{}/login/apple", s.url))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );
    // Apple's code by redirect is refused: Apple answers by form post only.
    let state = crate::common::query_of(r.headers()["location"].to_str().unwrap())["state"].clone();
    let r = b
        .get(format!(
            "{}/_oauth/apple?code=apple-code&state={state}",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("answers by form post (POST)"));
    // A form body past the limit is refused before it is read.
    let big = "x".repeat(2 << 20);
    let r = b
        .post(format!("{}/_oauth/apple", s.url))
        .form(&[("code", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(links_and_users(&s).await, (0, 1));
}

#[tokio::test]
async fn each_bad_answer_ends_on_an_error_page_that_names_it_and_changes_nothing() {
    let clock = Clock::manual(Clock::system().now_ms());
    let p8 = generate(SigningAlg::Es256);
    let apple = emulated_apple(clock.clone(), &p8).await;
    let s = latchkey_at(&apple, clock.clone(), &p8).await;
    type Setup = fn(&mut Apple);
    let cases: [(&str, Setup); 6] = [
        ("bad signature", |a| a.rogue = true),
        ("wrong audience", |a| {
            a.edit = |c| {
                c.insert("aud".into(), json!("com.example.other"));
            }
        }),
        ("wrong issuer", |a| {
            a.edit = |c| {
                c.insert("iss".into(), json!("https://appleid.apple.com"));
            }
        }),
        ("nonce mismatch", |a| {
            a.edit = |c| {
                c.insert("nonce".into(), json!("another-sign-in"));
            }
        }),
        ("has expired", |a| {
            a.edit = |c| {
                let iat = c["iat"].as_i64().unwrap();
                c.insert("exp".into(), json!(iat - 61));
            }
        }),
        ("no id_token", |a| a.no_id_token = true),
    ];
    for (what, setup) in cases {
        {
            let mut a = apple.lock().unwrap();
            a.edit = |_| {};
            (a.rogue, a.no_id_token, a.first_consent) = (false, false, true);
            setup(&mut a);
        }
        let r = sign_in(&s, &browser()).await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{what}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Sign-in failed") && page.contains(what),
            "{what}: {page}"
        );
        assert_eq!(links_and_users(&s).await, (0, 1), "{what} changed nothing");
    }

    // Apple refuses a client secret signed with another key: its invalid_client is on the page.
    let other = latchkey_at(&apple, clock.clone(), &generate(SigningAlg::Es256)).await;
    apple.lock().unwrap().edit = |_| {};
    let r = sign_in(&other, &browser()).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(r.text().await.unwrap().contains("invalid_client"));
    assert_eq!(links_and_users(&other).await, (0, 1));
}

#[tokio::test]
async fn client_secret_settings_it_cannot_be_built_from_stop_the_start() {
    let p8 = generate(SigningAlg::Es256);
    let apple = emulated_apple(Clock::system(), &p8).await;
    let url = apple.lock().unwrap().url.clone();
    let pem = p8_pem(&p8);
    let ed25519 = p8_pem(&generate(SigningAlg::EdDsa));
    let cases = [
        (
            declared(&url, &pem, &[("key_id", KEY_ID)]),
            "no team id (Accounts_OAuth_Apple_iss)",
        ),
        (
            declared(&url, &pem, &[("team_id", TEAM_ID)]),
            "no key id (Accounts_OAuth_Apple_kid)",
        ),
        (declared(&url, "", &OPTIONS), "is not a .p8 key"),
        (
            declared(&url, "MIGTAgEAMBMGByqGSM49", &OPTIONS),
            "is not a .p8 key",
        ),
        (declared(&url, &ed25519, &OPTIONS), "is not a .p8 key"),
    ];
    for (d, says) in cases {
        let s = TestServer::new()
            .config(move |c| c.providers = vec![d])
            .start()
            .await;
        let r = browser()
            .get(format!("{}/login/apple", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{says}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Provider not configured") && page.contains(says),
            "{says}: {page}"
        );
        assert!(!page.contains("PRIVATE KEY"), "the key is never shown");
    }
}
