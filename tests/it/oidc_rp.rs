//! Relying parties written by others against a live server: the `openidconnect` crate (it verifies with its own
//! RSA/ECDSA/Ed25519 code, not the jsonwebtoken/ring Latchkey signs with) and panva's openid-client + jose
//! (tests/node/oidc.mjs). Discovery, the code flow with nonce and PKCE through the real pages, the ID token
//! verified against the published JWKS (nonce, at_hash), userinfo's `sub` equal to the ID token's, refresh
//! returning an ID token of the same sign-in, for each algorithm and a pairwise client; a key rotation that breaks
//! no relying party; and the ID token's absence (no `openid`) and its `nonce`'s (no nonce asked).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey::clock::Clock;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};
use serde_json::{json, Value};

use crate::common::steps::{make_app, TestApp, REDIRECT};
use crate::common::{browser, query_of, Server, TestServer};
use crate::oauth_flow::{consent, get_code, redeem, sign_in, token};

const HOUR: i64 = 3_600_000;

/// The HTTP client the relying party uses: redirects are not followed (openidconnect's advice against SSRF).
fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The ID token's payload as JSON, for the claims openidconnect's core types do not carry (`sid`).
fn payload(id_token: &str) -> Value {
    let part = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The browser part of a code flow started at `url` as the admin: sign-in and consent pages; the callback URL.
async fn browse(s: &Server, url: &str) -> String {
    let b = browser();
    let page = sign_in(s, &b, url, "admin", "admin-password").await;
    let callback = consent(s, &b, page, "allow").await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    callback
}

/// What one relying-party run saw: the ID token's subject and sign-in time, the userinfo subject.
struct Seen {
    sub: String,
    auth_time: i64,
    id_token: String,
}

/// The whole relying-party run with openidconnect for a client signing with `alg`: discovery, code flow (nonce,
/// PKCE), the ID token verified (signature by the JWKS, iss, aud, exp, nonce, at_hash), userinfo with the ID
/// token's `sub` expected, then a refresh whose ID token asserts the same sign-in.
async fn openidconnect_flow(s: &Server, app: &TestApp, alg: CoreJwsSigningAlgorithm) -> Seen {
    let http = rp_http();
    let issuer = IssuerUrl::new(s.url.clone()).unwrap();
    let meta = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(app.client_id.clone()),
        app.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let callback = query_of(&browse(s, url.as_str()).await);
    assert_eq!(&callback["state"], state.secret());
    let tokens = client
        .exchange_code(AuthorizationCode::new(callback["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is redeemed");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier().set_allowed_algs([alg.clone()]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(
        claims.authorized_party().map(|p| p.as_str()),
        Some(app.client_id.as_str())
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("admin@localhost.localdomain")
    );
    let sub = claims.subject().clone();
    let auth_time = claims.auth_time().expect("auth_time is always there");
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, ["pwd"]);
    let first = payload(&id_token.to_string());
    assert_eq!(first["sid"].as_str().map(str::len), Some(22), "{first}");

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(sub.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo's sub is the ID token's");
    assert_eq!(info.subject(), &sub);

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("offline_access"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let again = refreshed.id_token().expect("a refresh ID token");
    let no_nonce = |n: Option<&Nonce>| match n {
        None => Ok(()),
        Some(_) => Err("a refresh ID token has no nonce".to_owned()),
    };
    let claims2 = again
        .claims(&id_verifier, no_nonce)
        .expect("the refresh ID token verifies");
    assert_eq!(claims2.subject(), &sub);
    assert_eq!(claims2.auth_time(), Some(auth_time));
    assert_eq!(claims2.issuer(), claims.issuer());
    assert_eq!(claims2.audiences(), claims.audiences());
    assert_eq!(claims2.authorized_party(), claims.authorized_party());
    let at_hash2 = AccessTokenHash::from_token(
        refreshed.access_token(),
        again.signing_alg().unwrap(),
        again.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims2.access_token_hash(), Some(&at_hash2));
    let second = payload(&again.to_string());
    assert_eq!(
        (&second["sid"], &second["amr"]),
        (&first["sid"], &first["amr"])
    );
    Seen {
        sub: sub.to_string(),
        auth_time: auth_time.timestamp(),
        id_token: id_token.to_string(),
    }
}

async fn server() -> Server {
    TestServer::new().start().await
}

#[tokio::test]
async fn openidconnect_verifies_every_algorithm_and_refresh() {
    let s = server().await;
    let admin = s.admin().await;
    for (name, alg) in [
        ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let app = make_app(&s, json!({"idTokenSignedResponseAlg": name})).await;
        let seen = openidconnect_flow(&s, &app, alg).await;
        assert_eq!(seen.sub, admin.user_id, "{name}: a public subject");
        let header = payload_header(&seen.id_token);
        assert_eq!(header["alg"], name);
        assert_eq!(header["typ"], "JWT");
        let now = Clock::system().now_ms() / 1000;
        assert!((now - 60..=now).contains(&seen.auth_time), "{name}");
    }
}

fn payload_header(id_token: &str) -> Value {
    let part = id_token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_pairwise_client_sees_its_own_subject_in_the_id_token_and_userinfo() {
    let s = server().await;
    let admin = s.admin().await;
    let app = make_app(&s, json!({"subjectType": "pairwise"})).await;
    let seen = openidconnect_flow(&s, &app, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await;
    assert_ne!(seen.sub, admin.user_id);
    assert_eq!(seen.sub.len(), 43);
}

/// The JWKS as a relying party fetches it.
async fn jwks(s: &Server) -> CoreJsonWebKeySet {
    let url =
        openidconnect::JsonWebKeySetUrl::new(format!("{}/.well-known/jwks.json", s.url)).unwrap();
    CoreJsonWebKeySet::fetch_async(&url, &rp_http())
        .await
        .unwrap()
}

fn kids(set: &CoreJsonWebKeySet) -> Vec<String> {
    set.keys()
        .iter()
        .filter_map(|k| openidconnect::JsonWebKey::key_id(k).map(|k| k.to_string()))
        .collect()
}

/// `token`'s claims as a relying party holding `set` verifies them (no nonce was asked).
fn verify_with(
    s: &Server,
    app: &TestApp,
    set: CoreJsonWebKeySet,
    token: &str,
) -> Result<Value, String> {
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(app.client_id.clone()),
        ClientSecret::new(app.secret.clone().unwrap()),
        IssuerUrl::new(s.url.clone()).unwrap(),
        set,
    )
    .set_allowed_algs([CoreJwsSigningAlgorithm::EdDsa]);
    let parsed: CoreIdToken = token.parse().map_err(|e| format!("{e}"))?;
    parsed
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map(|_| payload(token))
        .map_err(|e| format!("{e}"))
}

/// An ID token from the plain code flow (no nonce) for `app`.
async fn id_token_of(s: &Server, app: &TestApp, scope: &str) -> Value {
    let code = get_code(s, app, &[("scope", scope)]).await;
    let (st, v) = redeem(s, app, &code).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Polls (bounded) until the published JWKS satisfies `done`: the key refresher runs every few milliseconds here.
async fn jwks_until(s: &Server, what: &str, done: impl Fn(&[String]) -> bool) -> CoreJsonWebKeySet {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let set = jwks(s).await;
        if done(&kids(&set)) {
            return set;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", kids(&set));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A rotation breaks no relying party: the successor is in the JWKS an RP cached before it signed anything, and a
/// token signed before the rotation still verifies against the JWKS after it.
#[tokio::test]
async fn a_key_rotation_breaks_no_relying_party() {
    let clock = Clock::manual(Clock::system().now_ms());
    let s = TestServer::new()
        .clock(clock.clone())
        .config(|c| {
            c.keys.algorithms = vec!["EdDSA".into()];
            c.keys.rotate_after_days = 1;
            c.keys.publish_ahead_secs = 3600;
            c.keys.refresh_interval_ms = 10;
        })
        .start()
        .await;
    let app = make_app(&s, json!({"idTokenSignedResponseAlg": "EdDSA"})).await;
    let before = id_token_of(&s, &app, "openid").await;
    let old_token = before["id_token"].as_str().unwrap().to_owned();
    let old_kid = payload_header(&old_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let initial = kids(&jwks(&s).await);

    clock.advance(24 * HOUR);
    let cached = jwks_until(&s, "the successors are published", |k| k.len() == 4).await;
    let after = id_token_of(&s, &app, "openid").await;
    assert_eq!(
        payload_header(after["id_token"].as_str().unwrap())["kid"],
        old_kid.as_str(),
        "published, not signing yet"
    );

    clock.advance(HOUR);
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_token = loop {
        let v = id_token_of(&s, &app, "openid").await;
        let t = v["id_token"].as_str().unwrap().to_owned();
        if payload_header(&t)["kid"] != old_kid.as_str() {
            break t;
        }
        assert!(Instant::now() < deadline, "the successor never signed");
    };
    let new_kid = payload_header(&new_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!initial.contains(&new_kid));
    assert!(
        kids(&cached).contains(&new_kid),
        "published before it signed"
    );
    verify_with(&s, &app, cached, &new_token).expect("an RP's cached JWKS knows the new key");

    let current = jwks(&s).await;
    assert!(
        kids(&current).contains(&old_kid),
        "the old key stays published"
    );
    let claims = verify_with(&s, &app, current, &old_token).expect("the old token still verifies");
    assert_eq!(claims["aud"], app.client_id.as_str());
}

#[tokio::test]
async fn no_openid_no_id_token_and_no_nonce_asked_none_given() {
    let s = server().await;
    let app = make_app(&s, json!({"scopes": "openid profile email offline_access"})).await;
    let plain = id_token_of(&s, &app, "profile email").await;
    assert!(plain.get("id_token").is_none(), "{plain}");
    let refresh = plain["refresh_token"].as_str().unwrap();
    let (st, v, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        true,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(v.get("id_token").is_none(), "{v}");

    let v = id_token_of(&s, &app, "openid").await;
    let claims = payload(v["id_token"].as_str().unwrap());
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(
        claims.get("email").is_none(),
        "the scope's claims only: {claims}"
    );
    let code = get_code(
        &s,
        &app,
        &[("scope", "openid email"), ("nonce", "n-0S6_WzA2Mj")],
    )
    .await;
    let (_, v) = redeem(&s, &app, &code).await;
    let claims = payload(v["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["email"], "admin@localhost.localdomain");
    assert_eq!(claims["iss"], s.url.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // A client whose ID tokens carry no scope claims (userinfo still has them).
    let bare = make_app(&s, json!({"idTokenClaims": false})).await;
    let code = get_code(&s, &bare, &[("scope", "openid email")]).await;
    let (_, v) = redeem(&s, &bare, &code).await;
    let claims = payload(v["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none(), "{claims}");
}

// ---------------------------------------------------------------------------------------------------------------
// openid-client + jose (Node)

/// The Node relying party's directory, or `None` (skip) when node or its modules are missing outside CI.
fn node_rp() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let node = Command::new("node").arg("--version").output().is_ok();
    if node && dir.join("node_modules/openid-client").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "node and tests/node's modules are required under CI (npm ci --prefix tests/node)"
    );
    eprintln!("skipping the openid-client test: needs node and `npm ci --prefix tests/node`");
    None
}

/// Runs tests/node/oidc.mjs for `app`: it prints the authorization URL, this drives the pages and answers with
/// the callback URL, then it prints what it verified (one JSON line).
async fn openid_client(s: &Server, app: &TestApp, alg: &str, dir: PathBuf) -> Value {
    let mut child = Command::new("node")
        .current_dir(&dir)
        .args([
            "oidc.mjs",
            &s.url,
            &app.client_id,
            app.secret.as_deref().unwrap(),
            REDIRECT,
            alg,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::task::block_in_place(|| lines.next())
        .expect("the script prints the authorization URL")
        .unwrap();
    let callback = browse(s, &url).await;
    writeln!(stdin, "{callback}").unwrap();
    drop(stdin);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let result = lines.next().transpose().unwrap();
            (result, child.wait_with_output().unwrap())
        }),
    )
    .await
    .expect("node finished")
    .unwrap();
    let (result, status) = out;
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{alg}: {stderr}");
    serde_json::from_str(&result.expect("a result line")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_and_jose_accept_the_id_tokens() {
    let Some(dir) = node_rp() else {
        return;
    };
    let s = server().await;
    let admin = s.admin().await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let app = make_app(&s, json!({"idTokenSignedResponseAlg": alg})).await;
        let seen = openid_client(&s, &app, alg, dir.clone()).await;
        assert_eq!(seen["sub"], admin.user_id.as_str(), "{alg}: {seen}");
        assert_eq!(seen["userinfo_sub"], seen["sub"], "{alg}");
        assert_eq!(seen["refreshed_sub"], seen["sub"], "{alg}");
        assert_eq!(seen["jose_refreshed_sub"], seen["sub"], "{alg}");
        assert_eq!(seen["refreshed_auth_time"], seen["auth_time"], "{alg}");
        assert_eq!(seen["jose_alg"], alg);
        assert_eq!(seen["refreshed_nonce"], Value::Null, "{alg}");
    }
}
