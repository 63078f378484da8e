//! The token endpoint's grants: single-use codes, refresh rotation, client credentials and client authentication.

use super::*;

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
    for _ in 0..16 {
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
    // Every loser presented the code after the winner redeemed it: a replay, which revokes what the winner got
    // (redemption and issuance are one step, so no replay can land before the winner's family exists).
    let (_, won) = results.iter().find(|(st, _)| *st == 200).unwrap();
    for token in ["access_token", "refresh_token"] {
        let token = won[token].as_str().unwrap();
        assert_eq!(
            introspect(&s, &app, token).await,
            json!({"active": false}),
            "{results:?}"
        );
    }
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
    let r = client_credentials_basic(&s, &app, Some("wrong")).await;
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
        let r = client_credentials_basic(&s, &app, Some("bad")).await;
        assert_eq!(r.status(), 401);
    }
    let r = client_credentials_basic(&s, &app, app.secret.as_deref()).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

/// A client_credentials request for `app` with `secret` over HTTP Basic; the answer as it comes.
async fn client_credentials_basic(
    s: &Server,
    app: &TestApp,
    secret: Option<&str>,
) -> reqwest::Response {
    s.http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&app.client_id, secret)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}
