//! What happens to tokens over time and when their app or user changes; metadata; the session cookie.

use super::*;

#[tokio::test]
async fn inactive_tokens_introspect_as_exactly_active_false() {
    let s = spawn().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let other = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let (_, v, _) = token(&s, &app, &[("grant_type", "client_credentials")], true).await;
    let tok = v["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&s, &other, tok).await,
        json!({"active": false}),
        "foreign"
    );
    assert_eq!(
        introspect(&s, &app, "unknown-token").await,
        json!({"active": false}),
        "unknown"
    );
    let r = s
        .http
        .post(format!("{}/oauth/revoke", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect(&s, &app, tok).await,
        json!({"active": false}),
        "revoked"
    );
}

#[tokio::test]
async fn codes_and_tokens_expire_on_the_injected_clock() {
    let clock = latchkey::clock::Clock::manual(1_800_000_000_000);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let app = make_app(&s, json!({"skipConsent": true, "grantTypes": ["authorization_code", "refresh_token", "client_credentials"]})).await;
    let code = get_code_skip(&s, &app).await;
    clock.advance(601_000);
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "codes live at most 10 minutes"
    );

    let (_, v, _) = token(&s, &app, &[("grant_type", "client_credentials")], true).await;
    let tok = v["access_token"].as_str().unwrap().to_owned();
    clock.advance(3_599_000);
    assert_eq!(introspect(&s, &app, &tok).await["active"], true);
    clock.advance(2_000);
    assert_eq!(introspect(&s, &app, &tok).await, json!({"active": false}));
}

#[tokio::test]
async fn deleting_or_deactivating_an_app_and_deleting_a_user_revoke_at_once() {
    let s = spawn().await;
    let a = s.admin().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let (_, v, _) = token(&s, &app, &[("grant_type", "client_credentials")], true).await;
    let tok = v["access_token"].as_str().unwrap().to_owned();
    let (st, _) = s
        .post(
            "/api/v1/oauth-apps.update",
            &a,
            json!({"appId": app.id, "name": "x", "active": false, "redirectUri": REDIRECT}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(
            "/api/v1/oauth-apps.update",
            &a,
            json!({"appId": app.id, "name": "x", "active": true, "redirectUri": REDIRECT}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        introspect(&s, &app, &tok).await,
        json!({"active": false}),
        "deactivation revoked it"
    );
    let (_, v, _) = token(&s, &app, &[("grant_type", "client_credentials")], true).await;
    let tok2 = v["access_token"].as_str().unwrap().to_owned();
    let other = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let (st, _) = s
        .post("/api/v1/oauth-apps.delete", &a, json!({"appId": app.id}))
        .await;
    assert_eq!(st, 200);
    let r = s
        .http
        .get(format!("{}/oauth/userinfo", s.url))
        .bearer_auth(&tok2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _ = other;

    // A user's tokens die with the user.
    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "u1", "email": "u1@example.com", "password": "pw1"}),
        )
        .await;
    assert_eq!(st, 200);
    let app2 = make_app(&s, json!({"skipConsent": true})).await;
    let b = browser();
    let r = sign_in(&s, &b, &authorize_url(&s, &app2, &[]), "u1", "pw1").await;
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (_, v) = redeem(&s, &app2, &code).await;
    let access = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&s, &app2, &access).await["active"], true);
    let uid = introspect(&s, &app2, &access).await["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = s
        .post("/api/v1/users.delete", &a, json!({"userId": uid}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        introspect(&s, &app2, &access).await,
        json!({"active": false})
    );
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn metadata_lists_the_endpoints() {
    let s = spawn().await;
    let (st, m) = metadata(&s).await;
    assert_eq!(st, 200);
    assert_eq!(m["issuer"], s.url);
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", s.url));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
}

#[tokio::test]
async fn the_session_cookie_is_named_per_issuer_and_http_only() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let b = browser();
    let r = b.get(authorize_url(&s, &app, &[])).send().await.unwrap();
    let html = r.text().await.unwrap();
    let r = submit_sign_in(&s, &b, &html, "admin", "admin-password").await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    use sha2::Digest;
    let want = format!(
        "latchkey_{}=",
        &hex(&sha2::Sha256::digest(s.url.as_bytes()))[..8]
    );
    assert!(cookie.starts_with(&want), "{cookie} vs {want}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    // A login POST without the CSRF token does not sign in.
    let r = browser()
        .post(format!("{}/login", s.url))
        .form(&[("username", "admin"), ("password", "admin-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_code_records_when_its_user_signed_in_not_when_it_was_made() {
    let t0 = 1_800_000_000_000;
    let clock = latchkey::clock::Clock::manual(t0);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let b = browser();
    let url = authorize_url(&s, &app, &[]);
    sign_in(&s, &b, &url, "admin", "admin-password").await;
    clock.advance(5 * 60_000);
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let store = &s.running.as_ref().unwrap().state.store;
    let rec = store
        .peek_code(&latchkey::crypto::sha256(code.as_bytes()))
        .await
        .unwrap()
        .expect("the code is stored");
    assert_eq!(
        rec.grant.auth_time, t0,
        "auth_time is the sign-in, not the code"
    );
}
