//! Signing keys over HTTP: the JWKS and its caching headers, a rotation under a manual clock (the successor is
//! published before it signs, the old key stays published while tokens it signed live, then goes), keys that
//! survive a restart, and `latchkey keys list|rotate` through the real binary.

use std::path::Path;
use std::time::{Duration, Instant};

use latchkey::clock::Clock;
use latchkey::crypto::jose::SigningAlg;
use serde_json::{json, Value};

use crate::common::binary::{self, run_to_exit, Latchkey};
use crate::common::{Server, TestServer};

const JWKS: &str = "/.well-known/jwks.json";
const HOUR: i64 = 3_600_000;

async fn jwks(s: &Server) -> Value {
    let r = s.req(reqwest::Method::GET, JWKS).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn signing_kid(s: &Server, alg: SigningAlg) -> String {
    let state = &s.running.as_ref().unwrap().state;
    state.keys.load().signer(alg).unwrap().kid().to_owned()
}

/// Polls (bounded) until `done` holds of the server: the key refresher runs every few milliseconds here.
async fn eventually(s: &Server, what: &str, done: impl Fn(&Server, &Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let j = jwks(s).await;
        if done(s, &j) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: JWKS {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_jwks_lists_every_algorithm_rs256_first_with_caching_headers() {
    let s = TestServer::new().start().await;
    let r = s.req(reqwest::Method::GET, JWKS).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(h["cache-control"], "public, max-age=3600");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let j: Value = r.json().await.unwrap();
    let keys = j["keys"].as_array().unwrap();
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, ["RS256", "ES256", "EdDSA"]);
    let kty: Vec<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
    assert_eq!(kty, ["RSA", "EC", "OKP"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "{k}");
        }
    }
    assert_eq!(keys[0]["e"], "AQAB");
    assert_eq!(keys[1]["crv"], "P-256");
    assert_eq!(keys[2]["crv"], "Ed25519");
    assert_eq!(kids(&j)[0], signing_kid(&s, SigningAlg::Rs256));

    let again = s
        .req(reqwest::Method::GET, JWKS)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = s
        .req(reqwest::Method::GET, JWKS)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_rotation_publishes_ahead_and_retires_the_old_key_after_its_tokens_expire() {
    let clock = Clock::manual(1_800_000_000_000);
    let s = TestServer::new()
        .clock(clock.clone())
        .config(|c| {
            c.keys.algorithms = vec!["EdDSA".into()];
            c.keys.rotate_after_days = 1;
            c.keys.publish_ahead_secs = 3600;
            c.keys.refresh_interval_ms = 10;
            c.tokens.access_ttl_secs = 600;
            c.tokens.id_token_ttl_secs = 900;
        })
        .start()
        .await;
    let j = jwks(&s).await;
    assert_eq!(kids(&j).len(), 2, "RS256 always, and EdDSA");
    assert_eq!(
        s.running
            .as_ref()
            .unwrap()
            .state
            .keys
            .policy()
            .jwks_max_age_secs(),
        900
    );
    let old = signing_kid(&s, SigningAlg::EdDsa);
    let state = s.running.as_ref().unwrap().state.clone();
    let token = state
        .keys
        .load()
        .signer(SigningAlg::EdDsa)
        .unwrap()
        .sign("JWT", &json!({"sub": "u1"}));

    clock.advance(24 * HOUR);
    eventually(&s, "a successor per algorithm is published", |_, j| {
        kids(j).len() == 4
    })
    .await;
    assert_eq!(
        signing_kid(&s, SigningAlg::EdDsa),
        old,
        "published, not signing yet"
    );

    clock.advance(HOUR);
    eventually(&s, "the successor signs", |s, _| {
        signing_kid(s, SigningAlg::EdDsa) != old
    })
    .await;
    let j = jwks(&s).await;
    assert!(kids(&j).contains(&old), "the old key stays published");
    let claims: Value = state
        .keys
        .load()
        .verify(&token, &[SigningAlg::EdDsa])
        .unwrap();
    assert_eq!(claims["sub"], "u1");

    // Tokens live at most 900 s; the old key goes 900 s + the margin (10 min) + one refresh after it stopped.
    clock.advance(900_000 + 10 * 60_000 - 1_000);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        kids(&jwks(&s).await).contains(&old),
        "still inside the retention"
    );
    clock.advance(1_100);
    eventually(&s, "the old key is pruned", |_, j| !kids(j).contains(&old)).await;
    assert_eq!(kids(&jwks(&s).await).len(), 2);
    assert!(state
        .keys
        .load()
        .verify::<Value>(&token, &[SigningAlg::EdDsa])
        .is_err());
    s.stop().await;
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let s = TestServer::new().start().await;
    let before = kids(&jwks(&s).await);
    let dir = s.stop().await;
    let s = TestServer::new().data_dir(dir).start().await;
    assert_eq!(kids(&jwks(&s).await), before);
}

fn keys_command(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = binary::latchkey(dir);
    cmd.args(["keys"]).args(args).arg("--data-dir").arg(dir);
    let out = run_to_exit(cmd, Duration::from_secs(60));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_list_and_rotate_through_the_binary_on_a_stopped_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Latchkey::start(binary::serve(dir.path()));
    let (ok, _, err) = keys_command(dir.path(), &["list"]);
    assert!(!ok && err.contains("stop the server first"), "{err}");
    server.kill();

    let (ok, out, err) = keys_command(dir.path(), &["list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, alg) in lines.iter().zip(["RS256", "ES256", "EdDSA"]) {
        assert!(line.contains(&format!(" {alg} signing created ")), "{line}");
        assert!(line.ends_with("retires -"), "{line}");
    }

    let (ok, out, err) = keys_command(dir.path(), &["rotate", "--alg", "EdDSA"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("EdDSA key "), "{out}");
    assert!(out.contains(" EdDSA next "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" EdDSA signing ") && !l.ends_with("retires -")),
        "{out}"
    );

    let (ok, out, err) = keys_command(dir.path(), &["rotate", "--alg", "ES256", "--now"]);
    assert!(ok, "{err}");
    assert!(out.contains(" ES256 retiring "), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains(" ES256 signing "))
            .count(),
        1,
        "{out}"
    );

    let (ok, _, err) = keys_command(dir.path(), &["rotate", "--alg", "HS256"]);
    assert!(!ok && err.contains("RS256, ES256, EdDSA"), "{err}");
}
