//! JWT access tokens (RFC 9068) as a per-client choice: a `jwt` client's tokens on every grant verify against the
//! published JWKS with `typ: at+jwt` and RFC 9068's claims; introspection stays authoritative (revocation, an epoch
//! bump, a tampered or foreign token); client_credentials JWTs are never stored, and a revoked one stays revoked
//! across a restart; the opaque default, and tokens issued before a client switched format, are unchanged.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use latchkey::clock::Clock;
use latchkey::crypto::jose::{self, SigningAlg};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::steps::{make_app, TestApp, REDIRECT};
use crate::common::{spawn, spawn_with, Server, TestServer, ADMIN_PASSWORD};
use crate::oauth_flow::{get_code, introspect, redeem, token};

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

async fn jwt_app(s: &Server, extra: Value) -> TestApp {
    let mut body = json!({
        "grantTypes": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes": "openid profile offline_access api.read",
        "accessTokenFormat": "jwt",
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    make_app(s, body).await
}

/// A client_credentials access token of `app`.
async fn client_token(s: &Server, app: &TestApp) -> String {
    let (st, v, _) = token(s, app, &CC, true).await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// The header and claims of `tok`, verified with the key its `kid` names in the published JWKS (RFC 9068 §4).
async fn verified(s: &Server, tok: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: JwkSet = s
        .req(Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(tok).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[&s.url]);
    v.set_issuer(&[&s.url]);
    let claims = jsonwebtoken::decode::<Value>(tok, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims;
    (header, claims)
}

/// The claims every JWT access token has, checked; returns the claims.
async fn check_common(s: &Server, app: &TestApp, tok: &str, alg: &str) -> Value {
    let (h, c) = verified(s, tok).await;
    assert_eq!(h.typ.as_deref(), Some("at+jwt"));
    assert_eq!(format!("{:?}", h.alg), alg);
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str()),
        (Some(&*s.url), Some(&*s.url))
    );
    assert_eq!(c["client_id"], app.client_id);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["jti"].as_str().unwrap().len(), 43);
    c
}

async fn revoke(s: &Server, app: &TestApp, tok: &str) {
    let r = s
        .http
        .post(format!("{}/oauth/revoke", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Records per store tree (a backup's trailer counts them).
async fn tree_sizes(s: &Server) -> BTreeMap<String, u64> {
    let store = &s.running.as_ref().unwrap().state.store;
    store.export(std::io::sink(), 0, None).await.unwrap().trees
}

#[tokio::test]
async fn every_grant_of_a_jwt_client_verifies_against_the_jwks_with_rfc_9068_claims() {
    let s = spawn().await;
    let app = jwt_app(&s, json!({})).await;
    let admin = s.login("admin", ADMIN_PASSWORD).await;

    let code = get_code(&s, &app, &[("scope", "openid offline_access")]).await;
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(st, 200, "{v}");
    let access = v["access_token"].as_str().unwrap();
    let c = check_common(&s, &app, access, "RS256").await;
    assert_eq!(c["sub"], admin.user_id);
    assert_eq!(c["scope"], "offline_access openid");
    assert_eq!(c["amr"], json!(["pwd"]));
    assert!(c["auth_time"].as_i64().unwrap() <= c["iat"].as_i64().unwrap());
    let signed_in = (c["auth_time"].clone(), c["amr"].clone());
    assert!(c.get("token_epoch").is_none(), "a stored token: {c}");
    // A stored JWT is a bearer token as an opaque one is.
    let r = s.req(Method::GET, "/oauth/userinfo").bearer_auth(access);
    assert_eq!(r.send().await.unwrap().status(), 200);
    let i = introspect(&s, &app, access).await;
    assert_eq!((i["active"].as_bool(), &i["sub"]), (Some(true), &c["sub"]));
    assert_eq!(
        (&i["aud"], &i["username"]),
        (&json!(s.url), &json!("admin"))
    );

    let refresh = v["refresh_token"].as_str().unwrap();
    assert!(!refresh.contains('.'), "refresh tokens stay opaque");
    let (st, v, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        true,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let refreshed = v["access_token"].as_str().unwrap();
    let c = check_common(&s, &app, refreshed, "RS256").await;
    assert_eq!(c["sub"], admin.user_id);
    // RFC 9068 §2.2.1: a refreshed token carries the grant's sign-in, not a new one.
    assert_eq!((c["auth_time"].clone(), c["amr"].clone()), signed_in);
    assert_eq!(introspect(&s, &app, refreshed).await["active"], true);
    revoke(&s, &app, refreshed).await;
    assert_eq!(
        introspect(&s, &app, refreshed).await,
        json!({"active": false})
    );

    let cc = client_token(&s, &app).await;
    let c = check_common(&s, &app, &cc, "RS256").await;
    assert_eq!(c["sub"], app.client_id);
    assert_eq!(c["scope"], "api.read offline_access openid profile");
    assert!(
        c.get("auth_time").is_none() && c.get("amr").is_none(),
        "{c}"
    );

    // The client's signing algorithm signs its access tokens too.
    let es = jwt_app(&s, json!({"idTokenSignedResponseAlg": "ES256"})).await;
    check_common(&s, &es, &client_token(&s, &es).await, "ES256").await;
}

#[tokio::test]
async fn client_credentials_jwts_are_not_stored_and_a_revoked_one_stays_revoked_after_a_restart() {
    // A fixed issuer: the restarted server listens on another port, and a token names its issuer.
    let issuer = |c: &mut latchkey::config::Config| c.issuer = "http://latchkey.test".into();
    let s = spawn_with(issuer).await;
    let app = jwt_app(&s, json!({})).await;
    client_token(&s, &app).await; // warm: anything a first request writes (nothing, today)
    let before = tree_sizes(&s).await;
    let (a, b) = (client_token(&s, &app).await, client_token(&s, &app).await);
    assert_eq!(tree_sizes(&s).await, before, "issuing wrote nothing");
    for t in [&a, &b] {
        let i = introspect(&s, &app, t).await;
        assert_eq!(
            (i["active"].as_bool(), &i["sub"]),
            (Some(true), &json!(app.client_id))
        );
        assert_eq!(i["token_type"], "Bearer");
    }
    revoke(&s, &app, &a).await;
    assert_eq!(introspect(&s, &app, &a).await, json!({"active": false}));
    assert_eq!(
        tree_sizes(&s).await["revoked_jti"],
        before["revoked_jti"] + 1
    );
    // Another client can neither revoke nor see it.
    let other = jwt_app(&s, json!({})).await;
    revoke(&s, &other, &b).await;
    assert_eq!(introspect(&s, &other, &b).await, json!({"active": false}));

    let dir = s.stop().await;
    let s = TestServer::new().config(issuer).data_dir(dir).start().await;
    assert_eq!(introspect(&s, &app, &a).await, json!({"active": false}));
    assert_eq!(introspect(&s, &app, &b).await["active"], true);
}

#[tokio::test]
async fn an_epoch_bump_expiry_a_tampered_or_foreign_jwt_and_a_wrong_typ_are_inactive() {
    let clock = Clock::manual(1_800_000_000_000);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let app = jwt_app(&s, json!({})).await;
    let tok = client_token(&s, &app).await;
    assert_eq!(introspect(&s, &app, &tok).await["active"], true);

    let mut tampered = tok.clone().into_bytes();
    let mid = tok.find('.').unwrap() + 3;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        introspect(&s, &app, &tampered).await,
        json!({"active": false})
    );

    // Claims like ours, under a key the JWKS does not publish, and under ours with the wrong `typ`.
    let (_, claims) = verified(&s, &tok).await;
    let der = jose::generate(SigningAlg::EdDsa);
    let kid = jose::public_key(SigningAlg::EdDsa, &der)
        .unwrap()
        .thumbprint();
    let foreign = jose::Signer::new(kid, SigningAlg::EdDsa, &der).unwrap();
    let foreign = foreign.sign("at+jwt", &claims);
    assert_eq!(
        introspect(&s, &app, &foreign).await,
        json!({"active": false})
    );
    let state = &s.running.as_ref().unwrap().state;
    let ours = state
        .keys
        .load()
        .signer(SigningAlg::Rs256)
        .unwrap()
        .sign("JWT", &claims);
    assert_eq!(introspect(&s, &app, &ours).await, json!({"active": false}));

    // Deactivated and reactivated: a new epoch, the old tokens are dead; a new one lives.
    let admin = s.admin().await;
    for active in [false, true] {
        let body =
            json!({"appId": app.id, "name": "Test App", "active": active, "redirectUri": REDIRECT});
        let (st, v) = s.post("/api/v1/oauth-apps.update", &admin, body).await;
        assert_eq!(st, 200, "{v}");
    }
    assert_eq!(introspect(&s, &app, &tok).await, json!({"active": false}));
    let fresh = client_token(&s, &app).await;
    assert_eq!(introspect(&s, &app, &fresh).await["active"], true);
    clock.advance(3_600_000);
    let expired = introspect(&s, &app, &fresh).await;
    assert_eq!(expired, json!({"active": false}));
}

#[tokio::test]
async fn the_opaque_default_is_unchanged_and_switching_format_keeps_issued_tokens_live() {
    let s = spawn().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let opaque = client_token(&s, &app).await;
    assert!(!opaque.contains('.') && opaque.len() == 43, "{opaque}");
    let before = tree_sizes(&s).await;
    client_token(&s, &app).await;
    assert_eq!(
        tree_sizes(&s).await["tokens"],
        before["tokens"] + 1,
        "opaque ones are stored"
    );

    let admin = s.admin().await;
    let switch = |format: &str| {
        json!({"appId": app.id, "name": "Test App", "active": true, "redirectUri": REDIRECT,
               "accessTokenFormat": format})
    };
    let (st, v) = s
        .post("/api/v1/oauth-apps.update", &admin, switch("jwt"))
        .await;
    assert_eq!(st, 200, "{v}");
    let jwt = client_token(&s, &app).await;
    assert_eq!(jwt.split('.').count(), 3);
    let (st, v) = s
        .post("/api/v1/oauth-apps.update", &admin, switch("opaque"))
        .await;
    assert_eq!(st, 200, "{v}");
    for t in [&opaque, &jwt] {
        assert_eq!(introspect(&s, &app, t).await["active"], true, "{t}");
    }
    assert!(!client_token(&s, &app).await.contains('.'));
}
