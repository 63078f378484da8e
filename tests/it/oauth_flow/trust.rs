//! What an attacker or a strict client would notice: userinfo claims by scope, refresh tokens only with
//! `offline_access` for OpenID, codes and refresh tokens that only their client can use, the sign-out CSRF check,
//! the sign-in page's error texts, the userinfo challenge, the advertised client authentication methods and the
//! revocation answer.

use super::*;

/// `GET /oauth/userinfo` with `Authorization: Bearer <tok>`: status, `WWW-Authenticate`, body.
async fn userinfo(s: &Server, tok: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = s.http.get(format!("{}/oauth/userinfo", s.url));
    if let Some(t) = tok {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_owned());
    let st = r.status().as_u16();
    let body = r.text().await.unwrap();
    (
        st,
        challenge,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// Runs the code flow for `scope` and redeems the code: the token response.
async fn tokens_for(s: &Server, app: &TestApp, scope: &str) -> Value {
    let code = get_code(s, app, &[("scope", scope)]).await;
    let (st, v) = redeem(s, app, &code).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn access_of(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(s: &Server, app: &TestApp, refresh_token: &str) -> (u16, Value) {
    let (st, v, _) = token(
        s,
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        true,
    )
    .await;
    (st, v)
}

#[tokio::test]
async fn userinfo_claims_follow_the_token_scope() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let sub = |v: &Value| v["sub"].as_str().unwrap().to_owned();

    let (st, _, openid) =
        userinfo(&s, Some(&access_of(&tokens_for(&s, &app, "openid").await))).await;
    assert_eq!(st, 200, "{openid}");
    assert_eq!(
        openid,
        json!({"sub": sub(&openid)}),
        "openid alone: sub only"
    );

    let v = tokens_for(&s, &app, "openid profile").await;
    let (_, _, profile) = userinfo(&s, Some(&access_of(&v))).await;
    assert_eq!(profile["sub"], openid["sub"]);
    assert_eq!(profile["preferred_username"], "admin");
    assert_eq!(profile["name"], "Administrator");
    assert!(profile["updated_at"].as_i64().unwrap() > 1_600_000_000);
    assert!(profile.get("email").is_none() && profile.get("email_verified").is_none());

    let v = tokens_for(&s, &app, "openid email").await;
    let (_, _, email) = userinfo(&s, Some(&access_of(&v))).await;
    assert_eq!(
        email,
        json!({"sub": sub(&openid), "email": "admin@localhost.localdomain", "email_verified": false})
    );
}

#[tokio::test]
async fn openid_requests_get_a_refresh_token_only_with_offline_access() {
    let s = spawn().await;
    let app = make_app(
        &s,
        json!({"scopes": "openid profile email offline_access api.read"}),
    )
    .await;

    // The consent page promises refresh tokens exactly when offline_access is asked for.
    let b = browser();
    let page = sign_in(
        &s,
        &b,
        &authorize_url(&s, &app, &[("scope", "openid profile offline_access")]),
        "admin",
        "admin-password",
    )
    .await;
    assert!(page.text().await.unwrap().contains("(refresh tokens)"));
    let page = b
        .get(authorize_url(&s, &app, &[("scope", "openid profile")]))
        .send()
        .await
        .unwrap();
    assert!(!page.text().await.unwrap().contains("refresh token"));

    let v = tokens_for(&s, &app, "openid profile").await;
    assert!(
        v.get("refresh_token").is_none(),
        "openid without offline_access: {v}"
    );

    let v = tokens_for(&s, &app, "openid offline_access").await;
    let r1 = v["refresh_token"]
        .as_str()
        .expect("offline_access: a refresh token");
    // Narrowing the access token's scope on refresh keeps the grant's offline access.
    let (st, v2, _) = token(
        &s,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1),
            ("scope", "openid"),
        ],
        true,
    )
    .await;
    assert_eq!((st, v2["scope"].as_str()), (200, Some("openid")), "{v2}");
    let r2 = v2["refresh_token"].as_str().expect("rotation continues");
    let (st, v3) = refresh(&s, &app, r2).await;
    assert_eq!(st, 200, "{v3}");
    assert_eq!(
        v3["scope"], "offline_access openid",
        "the refresh token kept its scope"
    );

    // A plain OAuth request (no openid) gets one as before.
    let v = tokens_for(&s, &app, "api.read").await;
    assert!(v["refresh_token"].is_string(), "{v}");
}

#[tokio::test]
async fn a_code_presented_by_another_client_changes_nothing() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let thief = make_app(&s, json!({})).await;

    // An unredeemed code: refused for the thief, still redeemable by its client.
    let code = get_code(&s, &app, &[]).await;
    let (st, v) = redeem(&s, &thief, &code).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(st, 200, "the rightful client still redeems it: {v}");
    let access = access_of(&v);
    let refresh_token = v["refresh_token"].as_str().unwrap().to_owned();

    // A redeemed code: refused for the thief, and the family it produced stays live.
    let (st, v) = redeem(&s, &thief, &code).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(introspect(&s, &app, &access).await["active"], true);
    let (st, v) = refresh(&s, &app, &refresh_token).await;
    assert_eq!(st, 200, "{v}");
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn refreshing_revokes_the_access_token_of_the_previous_refresh_token() {
    let s = spawn().await;
    let app = make_app(&s, json!({})).await;
    let v1 = tokens_for(&s, &app, "openid profile offline_access").await;
    let a1 = access_of(&v1);
    assert_eq!(userinfo(&s, Some(&a1)).await.0, 200);

    let (st, v2) = refresh(&s, &app, v1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200, "{v2}");
    let a2 = access_of(&v2);
    assert_eq!(introspect(&s, &app, &a1).await, json!({"active": false}));
    let (st, challenge, _) = userinfo(&s, Some(&a1)).await;
    assert_eq!(
        (st, challenge.as_deref()),
        (401, Some("Bearer error=\"invalid_token\""))
    );
    assert_eq!(introspect(&s, &app, &a2).await["active"], true);

    // And again for the next rotation.
    let (st, v3) = refresh(&s, &app, v2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200, "{v3}");
    assert_eq!(introspect(&s, &app, &a2).await, json!({"active": false}));
    assert_eq!(userinfo(&s, Some(&access_of(&v3))).await.0, 200);
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

/// Signs `b` in through `/login` (not continuing an authorization): the page it lands on.
async fn sign_in_directly(s: &Server, b: &Client) -> String {
    let page = b.get(format!("{}/login", s.url)).send().await.unwrap();
    let page = page.text().await.unwrap();
    let r = submit_sign_in(s, b, &page, "admin", "admin-password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = b.get(format!("{}/login", s.url)).send().await.unwrap();
    page.text().await.unwrap()
}

#[tokio::test]
async fn signing_out_needs_the_forms_csrf_token() {
    let s = spawn().await;
    let b = browser();
    let page = sign_in_directly(&s, &b).await;
    assert!(page.contains("Signed in"), "{page}");

    for form in [
        vec![],
        vec![("csrf", "forged-token-of-the-right-length-000000000")],
    ] {
        let r = b
            .post(format!("{}/logout", s.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.headers().get("set-cookie").is_none(), "the cookie stays");
        assert!(r.text().await.unwrap().contains("<h1>"));
        let page = b.get(format!("{}/login", s.url)).send().await.unwrap();
        assert!(
            page.text().await.unwrap().contains("Signed in"),
            "the session stays"
        );
    }

    // The page's own sign-out form works.
    let r = b
        .post(format!("{}/logout", s.url))
        .form(&hidden_inputs(&page))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = b.get(format!("{}/login", s.url)).send().await.unwrap();
    assert!(!page.text().await.unwrap().contains("Signed in"));
}

#[tokio::test]
async fn the_sign_in_page_shows_only_its_own_error_messages() {
    let s = spawn().await;
    let b = browser();
    let page = |q: String| {
        let (b, url) = (b.clone(), format!("{}/login?{q}", s.url));
        async move { page_text(&b, url).await }
    };
    let forged = "Your account is locked. Call +1 555 0100 to unlock it";
    let html = page(format!("error={}", forged.replace(' ', "+"))).await;
    assert!(
        !html.contains("Call +1 555") && !html.contains("role=\"alert\""),
        "{html}"
    );

    // A failed sign-in comes back with a code, which the page turns into its own text.
    let r = submit_sign_in(&s, &b, &page(String::new()).await, "admin", "wrong").await;
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with("/login?error=credentials&"), "{next}");
    let html = page_text(&b, format!("{}{next}", s.url)).await;
    assert!(html.contains("Wrong username or password."), "{html}");
}

#[tokio::test]
async fn userinfo_without_credentials_gets_a_bare_bearer_challenge() {
    let s = spawn().await;
    let (st, challenge, body) = userinfo(&s, None).await;
    assert_eq!((st, challenge.as_deref()), (401, Some("Bearer")));
    assert!(body.get("error").is_none(), "{body}");
    let (st, challenge, body) = userinfo(&s, Some("not-a-token")).await;
    assert_eq!(
        (st, challenge.as_deref()),
        (401, Some("Bearer error=\"invalid_token\""))
    );
    assert_eq!(body["error"], "invalid_token");
}

/// `POST path` with `token`, authenticated by `method` as `app`: the status and body.
async fn client_call(
    s: &Server,
    path: &str,
    app: &TestApp,
    method: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = form.to_vec();
    let mut req = s.http.post(format!("{}{path}", s.url));
    match method {
        "client_secret_basic" => req = req.basic_auth(&app.client_id, app.secret.as_deref()),
        "client_secret_post" => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", app.secret.as_deref().unwrap()));
        }
        "none" => form.push(("client_id", &app.client_id)),
        other => panic!("{other}"),
    }
    json_of(req.form(&form).send().await.unwrap()).await
}

#[tokio::test]
async fn every_advertised_client_authentication_method_works() {
    let s = spawn().await;
    let (_, m) = metadata(&s).await;
    let confidential = make_app(
        &s,
        json!({"grantTypes": ["authorization_code", "refresh_token", "client_credentials"]}),
    )
    .await;
    let public = make_app(&s, json!({"clientType": "public"})).await;
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &m[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert_eq!(
            methods,
            &json!(["client_secret_basic", "client_secret_post", "none"]),
            "{endpoint}"
        );
        for method in methods.as_array().unwrap() {
            let method = method.as_str().unwrap();
            let app = if method == "none" {
                &public
            } else {
                &confidential
            };
            // A fresh grant for each: a code redeemed (public) or client_credentials (confidential).
            let v = if method == "none" {
                let code = get_code(&s, app, &[]).await;
                let (st, v) =
                    client_call(&s, "/oauth/token", app, method, &code_grant(&code)).await;
                assert_eq!(st, 200, "{endpoint} {method}: {v}");
                v
            } else {
                let (st, v) = client_call(
                    &s,
                    "/oauth/token",
                    app,
                    method,
                    &[("grant_type", "client_credentials")],
                )
                .await;
                assert_eq!(st, 200, "{endpoint} {method}: {v}");
                v
            };
            let tok = access_of(&v);
            match endpoint {
                "token" => {} // issuing it above was the check
                "introspection" => {
                    let (st, i) =
                        client_call(&s, "/oauth/introspect", app, method, &[("token", &tok)]).await;
                    assert_eq!((st, &i["active"]), (200, &json!(true)), "{method}: {i}");
                }
                _ => {
                    let (st, r) =
                        client_call(&s, "/oauth/revoke", app, method, &[("token", &tok)]).await;
                    assert_eq!(st, 200, "{method}: {r}");
                    let (_, i) =
                        client_call(&s, "/oauth/introspect", app, method, &[("token", &tok)]).await;
                    assert_eq!(i, json!({"active": false}), "{method}");
                }
            }
        }
    }
}

#[tokio::test]
async fn revocation_answers_an_empty_json_object() {
    let s = spawn().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let (_, v, _) = token(&s, &app, &[("grant_type", "client_credentials")], true).await;
    for tok in [access_of(&v), "unknown-token".into()] {
        let r = s
            .http
            .post(format!("{}/oauth/revoke", s.url))
            .basic_auth(&app.client_id, app.secret.as_deref())
            .form(&[("token", &tok)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.text().await.unwrap(), "{}");
    }
}
