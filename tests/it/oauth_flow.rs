//! SPEC §8 through the real pages and endpoints: the code flow with PKCE, refresh rotation, introspection,
//! revocation, userinfo, and every negative case as its own test.

use std::collections::HashMap;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{
    browser, hidden_inputs, json_of, query_of, s256, spawn, spawn_with, spawn_with_clock, Server,
};

pub const REDIRECT: &str = "http://127.0.0.1:9999/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ0I5ZKUJ8a1Tt1_xyzabc0123456789abcdefg";

/// A registered app: ids, secret (confidential only).
pub struct TestApp {
    pub id: String,
    pub client_id: String,
    pub secret: Option<String>,
}

pub async fn make_app(s: &Server, extra: Value) -> TestApp {
    let a = s.admin().await;
    let mut body = json!({"name": "Test App", "redirectUri": REDIRECT, "active": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (st, v) = s.post("/api/v1/oauth-apps.create", &a, body).await;
    assert_eq!(st, 200, "{v}");
    let app = &v["application"];
    TestApp {
        id: app["_id"].as_str().unwrap().into(),
        client_id: app["clientId"].as_str().unwrap().into(),
        secret: app["clientSecret"].as_str().map(str::to_owned),
    }
}

pub fn authorize_url(s: &Server, app: &TestApp, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", REDIRECT);
    q.append_pair("state", "xyz-state")
        .append_pair("code_challenge", &s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("{}/oauth/authorize?{}", s.url, q.finish())
}

/// Signs in through the login form that `/oauth/authorize` shows; returns the next location.
pub async fn sign_in(
    s: &Server,
    b: &Client,
    authorize: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let r = b.get(authorize).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"username\"") && page.contains("name=\"password\""),
        "{page}"
    );
    let mut form: Vec<(String, String)> = hidden_inputs(&page);
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    let r = b
        .post(format!("{}/login", s.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with("/oauth/authorize?"), "{next}");
    b.get(format!("{}{}", s.url, next)).send().await.unwrap()
}

/// Answers the consent page with `decision`; returns the redirect Location.
pub async fn consent(s: &Server, b: &Client, page: reqwest::Response, decision: &str) -> String {
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Test App"), "consent names the app");
    assert!(html.contains("value=\"allow\"") && html.contains("value=\"deny\""));
    let mut form = hidden_inputs(&html);
    form.push(("decision".into(), decision.into()));
    let r = b
        .post(format!("{}/oauth/authorize", s.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs the whole browser part and returns the authorization code.
pub async fn get_code(s: &Server, app: &TestApp, extra: &[(&str, &str)]) -> String {
    let b = browser();
    let page = sign_in(
        s,
        &b,
        &authorize_url(s, app, extra),
        "admin",
        "admin-password",
    )
    .await;
    let loc = consent(s, &b, page, "allow").await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["state"], "xyz-state");
    assert_eq!(q["iss"], s.url);
    q["code"].clone()
}

pub async fn token(
    s: &Server,
    app: &TestApp,
    form: &[(&str, &str)],
    basic: bool,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = s.http.post(format!("{}/oauth/token", s.url));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match (&app.secret, basic) {
        (Some(secret), true) => req = req.basic_auth(&app.client_id, Some(secret)),
        (Some(secret), false) => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", secret));
        }
        (None, _) => form.push(("client_id", &app.client_id)),
    }
    let r = req.form(&form).send().await.unwrap();
    let headers = r.headers().clone();
    let (st, v) = json_of(r).await;
    (st, v, headers)
}

pub async fn redeem(s: &Server, app: &TestApp, code: &str) -> (u16, Value) {
    let (st, v, _) = token(
        s,
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        true,
    )
    .await;
    (st, v)
}

pub async fn introspect(s: &Server, app: &TestApp, tok: &str) -> Value {
    let r = s
        .http
        .post(format!("{}/oauth/introspect", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    json_of(r).await.1
}

#[tokio::test]
async fn confidential_client_full_flow_refresh_introspect_revoke() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let code = get_code(&s, &app, &[("scope", "openid profile offline_access")]).await;
    let (st, v, h) = token(
        &s,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        true,
    )
    .await;
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
    let (st, v, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        false,
    )
    .await;
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

async fn get_code_skip(s: &Server, app: &TestApp) -> String {
    let b = browser();
    let r = sign_in(
        s,
        &b,
        &authorize_url(s, app, &[]),
        "admin",
        "admin-password",
    )
    .await;
    let loc = r.headers()["location"].to_str().unwrap();
    query_of(loc)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .clone()
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_issued() {
    let s = spawn().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let code = get_code_skip(&s, &app).await;
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(st, 200);
    let access = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&s, &app, &access).await["active"], true);
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        introspect(&s, &app, &access).await,
        json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_have_exactly_one_winner() {
    let s = spawn().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let code = get_code_skip(&s, &app).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (s.http.clone(), format!("{}/oauth/token", s.url));
        let (cid, secret, code) = (app.client_id.clone(), app.secret.clone(), code.clone());
        set.spawn(async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ];
            json_of(
                http.post(url)
                    .basic_auth(cid, secret)
                    .form(&form)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        });
    }
    let results = set.join_all().await;
    let wins = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(st, v)| *st == 200 || v["error"] == "invalid_grant"));
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_again_revokes_the_family() {
    let s = spawn().await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let code = get_code_skip(&s, &app).await;
    let (_, v) = redeem(&s, &app, &code).await;
    let r1 = v["refresh_token"].as_str().unwrap().to_owned();
    let (st, v2, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        true,
    )
    .await;
    assert_eq!(st, 200);
    let a2 = v2["access_token"].as_str().unwrap().to_owned();
    let r2 = v2["refresh_token"].as_str().unwrap().to_owned();
    let (st, v3, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        true,
    )
    .await;
    assert_eq!((st, v3["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(introspect(&s, &app, &a2).await, json!({"active": false}));
    let (st, _, _) = token(
        &s,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
        true,
    )
    .await;
    assert_eq!(st, 400, "the newest refresh token died with its family");
}

#[tokio::test]
async fn client_credentials_and_client_authentication_errors() {
    let s = spawn().await;
    let app = make_app(
        &s,
        json!({"grantTypes": ["client_credentials"], "scopes": "api.read api.write"}),
    )
    .await;
    let (st, v, h) = token(
        &s,
        &app,
        &[("grant_type", "client_credentials"), ("scope", "api.read")],
        true,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    assert!(v.get("refresh_token").is_none());
    assert_eq!(v["scope"], "api.read");
    let i = introspect(&s, &app, v["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (i["active"].as_bool(), i["sub"].as_str()),
        (Some(true), Some(app.client_id.as_str()))
    );
    let (st, _, _) = token(&s, &app, &[("grant_type", "client_credentials")], false).await;
    assert_eq!(st, 200, "client_secret_post works too");

    // Wrong secret over Basic: 401 with a Basic challenge.
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&app.client_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(json_of(r).await.1["error"], "invalid_client");
    // Wrong secret in the body: 401 without a challenge.
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_none());
    // Two methods at once.
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", app.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), json_of(r).await.1["error"].clone()),
        (400, json!("invalid_request"))
    );
    // A grant the app may not use.
    let (st, v, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
        ],
        true,
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn rejected_request_shapes() {
    let s = spawn().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let post = |body: String| {
        s.http
            .post(format!("{}/oauth/token", s.url))
            .basic_auth(&app.client_id, app.secret.as_deref())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let (st, v) = json_of(
        post("grant_type=client_credentials&grant_type=client_credentials".into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_request")),
        "duplicate parameters"
    );
    let (st, v) = json_of(
        post("grant_type=password&username=a&password=b".into())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (st, v) = json_of(post("grant_type=implicit".into()).send().await.unwrap()).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = s
        .http
        .get(format!(
            "{}/oauth/token?grant_type=client_credentials",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = s
        .http
        .post(format!(
            "{}/oauth/token?client_secret={}",
            s.url,
            app.secret.as_deref().unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), json_of(r).await.1["error"].clone()),
        (400, json!("invalid_request")),
        "secret in the query string"
    );
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "JSON bodies are not form bodies");
}

#[tokio::test]
async fn repeated_client_auth_failures_are_throttled() {
    let s = spawn_with(|c| c.tokens.client_failures_per_minute = 3).await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    for _ in 0..3 {
        let r = s
            .http
            .post(format!("{}/oauth/token", s.url))
            .basic_auth(&app.client_id, Some("bad"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

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
    let s = spawn_with_clock(clock.clone(), |_| {}).await;
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
    let (st, m) = json_of(
        s.req(Method::GET, "/.well-known/oauth-authorization-server")
            .send()
            .await
            .unwrap(),
    )
    .await;
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
    let mut form = hidden_inputs(&html);
    form.push(("username".into(), "admin".into()));
    form.push(("password".into(), "admin-password".into()));
    let r = b
        .post(format!("{}/login", s.url))
        .form(&form)
        .send()
        .await
        .unwrap();
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
    let _: HashMap<String, String> = HashMap::new();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
