//! The authorization-code flow through the pages: confidential and public clients, PKCE, redirect URI rules,
//! consent.

use super::*;

#[tokio::test]
async fn confidential_client_full_flow_refresh_introspect_revoke() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let code = get_code(&s, &app, &[("scope", "openid profile offline_access")]).await;
    let (st, v, h) = token(&s, &app, &code_grant(&code), true).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "offline_access openid profile");
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(access.len(), 43);

    let i = introspect(&s, &app, &access).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], app.client_id);
    assert_eq!(i["username"], "admin");
    assert_eq!(i["token_type"], "Bearer");

    let r = s
        .http
        .get(format!("{}/oauth/userinfo", s.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let (st, u) = json_of(r).await;
    assert_eq!(st, 200);
    assert_eq!(u["preferred_username"], "admin");
    assert!(u["sub"].as_str().unwrap().len() == 17);

    // The access token also authenticates Latchkey's own RC API as its user.
    let r = s
        .http
        .get(format!("{}/api/v1/me", s.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Refresh rotates; scope may narrow.
    let (st, v2, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("scope", "openid"),
        ],
        false,
    )
    .await;
    assert_eq!(st, 200, "{v2}");
    assert_eq!(v2["scope"], "openid");
    let refresh2 = v2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    let (st, v3, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("scope", "openid profile email"),
        ],
        true,
    )
    .await;
    assert_eq!(
        (st, v3["error"].as_str()),
        (400, Some("invalid_scope")),
        "scope can only narrow"
    );

    // Revoking the refresh token kills the grant family, including access tokens.
    let access2 = v2["access_token"].as_str().unwrap().to_owned();
    let r = s
        .http
        .post(format!("{}/oauth/revoke", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", &refresh2)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        introspect(&s, &app, &access2).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&s, &app, &access).await,
        json!({"active": false})
    );
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn public_client_uses_pkce_and_no_secret() {
    let s = spawn().await;
    let app = make_app(&s, json!({"clientType": "public"})).await;
    assert!(app.secret.is_none());
    let code = get_code(&s, &app, &[]).await;
    let (st, v, _) = token(&s, &app, &code_grant(&code), false).await;
    assert_eq!(st, 200, "{v}");
    let refresh = v["refresh_token"].as_str().unwrap();
    let (st, _, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        false,
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn public_client_without_pkce_gets_an_error_redirect() {
    let s = spawn().await;
    let app = make_app(&s, json!({"clientType": "public"})).await;
    let url = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=s1",
        s.url, app.client_id, REDIRECT
    );
    let r = s.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "s1");
    assert_eq!(q["iss"], s.url);
}

#[tokio::test]
async fn plain_pkce_is_rejected() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=s1&code_challenge={}&code_challenge_method=plain", s.url, app.client_id, REDIRECT, "a".repeat(43));
    let r = s.http.get(url).send().await.unwrap();
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_get_an_error_page_not_a_redirect() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    for url in [
        format!("{}/oauth/authorize?response_type=code&client_id=nope&redirect_uri={}", s.url, REDIRECT),
        format!("{}/oauth/authorize?response_type=code&client_id={}&redirect_uri=https://evil.example/cb", s.url, app.client_id),
        format!("{}/oauth/authorize?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:9999/other", s.url, app.client_id),
    ] {
        let r = s.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("<h1>"));
    }
}

#[tokio::test]
async fn loopback_redirect_port_may_vary() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let url = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:51234/cb&state=p&scope=bogus",
        s.url, app.client_id
    );
    let r = s.http.get(url).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "bound to the loopback URI despite the port"
    );
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("http://127.0.0.1:51234/cb?"), "{loc}");
    let q = query_of(loc);
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("invalid_scope", "p")
    );
}

#[tokio::test]
async fn only_response_type_code() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let url = format!(
        "{}/oauth/authorize?response_type=token&client_id={}&redirect_uri={}&state=t",
        s.url, app.client_id, REDIRECT
    );
    let r = s.http.get(url).send().await.unwrap();
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["iss"], s.url);
}

#[tokio::test]
async fn denied_consent_redirects_with_access_denied() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let b = browser();
    let page = sign_in(
        &s,
        &b,
        &authorize_url(&s, &app, &[]),
        "admin",
        "admin-password",
    )
    .await;
    let loc = consent(&s, &b, page, "deny").await;
    let q = query_of(&loc);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz-state");
    assert_eq!(q["iss"], s.url);
}

#[tokio::test]
async fn skip_consent_apps_redirect_right_after_sign_in() {
    let s = spawn().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let b = browser();
    let r = sign_in(
        &s,
        &b,
        &authorize_url(&s, &app, &[]),
        "admin",
        "admin-password",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(query_of(r.headers()["location"].to_str().unwrap()).contains_key("code"));
}

#[tokio::test]
async fn pkce_downgrade_and_wrong_verifier_are_rejected() {
    let s = spawn().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    // No challenge at authorize, a verifier at the token endpoint: downgrade.
    let b = browser();
    let url = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=d",
        s.url, app.client_id, REDIRECT
    );
    let r = sign_in(&s, &b, &url, "admin", "admin-password").await;
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    // A challenge at authorize, the wrong verifier.
    let code = get_code_skip(&s, &app).await;
    let (st, v, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"x".repeat(50)),
        ],
        true,
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
}
