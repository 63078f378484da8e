//! OpenID Connect claims end to end: a user's standard and custom claims set through `users.update` (and
//! `[[users]]`), released by userinfo by scope and per client (extra claims, pairwise subjects), the three ways of
//! presenting the token at userinfo, and the clients' OIDC settings through `oauth-apps.*` (and `[[clients]]`).

use latchkey::config::{DeclaredClient, DeclaredUser};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::steps::{make_app, TestApp, VERIFIER};
use crate::common::{
    browser, json_of, query_of, s256, spawn_with, Auth, Server, TestServer, ADMIN_PASSWORD,
};
use crate::oauth_flow::{consent, sign_in, token};

/// Hosts of the redirect URIs: two sectors (plain `http` on any host is allowed below; no browser follows them).
const SECTOR_A: &str = "http://rp-a.test/cb";
const SECTOR_A2: &str = "http://rp-a.test/other";
const SECTOR_B: &str = "http://rp-b.test/cb";

const ALL_SCOPES: &str = "openid profile email address phone";

async fn server() -> Server {
    spawn_with(|c| c.apps.allow_http_redirect_uris = Some(true)).await
}

/// The admin's claims used throughout.
fn claims() -> Value {
    json!({
        "given_name": "Ada", "family_name": "Admin", "middle_name": "B", "nickname": "ada",
        "picture": "https://img.example/ada.png", "website": "https://ada.example", "gender": "female",
        "birthdate": "1815-12-10", "zoneinfo": "Europe/London", "locale": "en-GB",
        "phone_number": "+441234567890", "phone_number_verified": true,
        "address": {"street_address": "1 Main St", "locality": "London", "country": "GB"},
        "department": "Engines", "clearance": {"level": 3},
    })
}

async fn set_claims(s: &Server, admin: &Auth, claims: Value) -> (u16, Value) {
    let body = json!({"userId": admin.user_id, "data": {"claims": claims}});
    s.post("/api/v1/users.update", admin, body).await
}

/// An app redirecting to `redirect` (and only there), with `extra` fields.
async fn app_at(s: &Server, redirect: &str, extra: Value) -> TestApp {
    let mut body = json!({"redirectUri": redirect, "scopes": ALL_SCOPES});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    make_app(s, body).await
}

/// The admin's access token for `app` and `scope` through the pages and the token endpoint.
async fn access_token(s: &Server, app: &TestApp, redirect: &str, scope: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("code_challenge", &s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    let url = format!("{}/oauth/authorize?{}", s.url, q.finish());
    let b = browser();
    let page = sign_in(s, &b, &url, "admin", ADMIN_PASSWORD).await;
    let loc = consent(s, &b, page, "allow").await;
    let code = query_of(&loc)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    let (st, v, _) = token(s, app, &form, true).await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn userinfo(s: &Server, tok: &str) -> (u16, Value) {
    let r = s.req(Method::GET, "/oauth/userinfo").bearer_auth(tok);
    json_of(r.send().await.unwrap()).await
}

#[tokio::test]
async fn each_scope_releases_its_claims_and_only_those() {
    let s = server().await;
    let admin = s.admin().await;
    let (st, v) = set_claims(&s, &admin, claims()).await;
    assert_eq!(st, 200, "{v}");
    let app = app_at(&s, SECTOR_A, json!({})).await;
    let sub = json!(admin.user_id);

    let tok = access_token(&s, &app, SECTOR_A, ALL_SCOPES).await;
    let (st, v) = userinfo(&s, &tok).await;
    assert_eq!(st, 200, "{v}");
    let mut want = claims();
    let want = want.as_object_mut().unwrap();
    want.remove("department");
    want.remove("clearance");
    for k in [
        "sub",
        "name",
        "preferred_username",
        "email",
        "email_verified",
        "updated_at",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    for (k, val) in want.iter() {
        assert_eq!(&v[k], val, "{k}: {v}");
    }
    assert_eq!(v["sub"], sub);
    assert_eq!(v.as_object().unwrap().len(), want.len() + 6, "{v}");

    let scoped = [
        ("openid", vec![]),
        ("openid email", vec!["email", "email_verified"]),
        ("openid address", vec!["address"]),
        (
            "openid phone",
            vec!["phone_number", "phone_number_verified"],
        ),
    ];
    for (scope, names) in scoped {
        let tok = access_token(&s, &app, SECTOR_A, scope).await;
        let (st, v) = userinfo(&s, &tok).await;
        assert_eq!(st, 200, "{v}");
        let mut got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = names.into_iter().chain(["sub"]).collect();
        want.sort_unstable();
        assert_eq!(got, want, "{scope}: {v}");
    }
}

#[tokio::test]
async fn a_client_receives_the_custom_claims_it_is_mapped() {
    let s = server().await;
    let admin = s.admin().await;
    set_claims(&s, &admin, claims()).await;
    let mapped = app_at(
        &s,
        SECTOR_A,
        json!({"extraClaims": ["department", "clearance", "absent"]}),
    )
    .await;
    let plain = app_at(&s, SECTOR_A, json!({})).await;
    let tok = access_token(&s, &mapped, SECTOR_A, "openid").await;
    let (_, v) = userinfo(&s, &tok).await;
    assert_eq!(
        v,
        json!({"sub": admin.user_id, "department": "Engines", "clearance": {"level": 3}})
    );
    let tok = access_token(&s, &plain, SECTOR_A, "openid").await;
    assert_eq!(userinfo(&s, &tok).await.1, json!({"sub": admin.user_id}));
}

#[tokio::test]
async fn pairwise_subjects_are_stable_per_sector_and_differ_across_sectors() {
    let s = server().await;
    let admin = s.admin().await;
    let pairwise = json!({"subjectType": "pairwise"});
    let a = app_at(&s, SECTOR_A, pairwise.clone()).await;
    let a2 = app_at(&s, &format!("{SECTOR_A},{SECTOR_A2}"), pairwise.clone()).await;
    let b = app_at(&s, SECTOR_B, pairwise).await;
    let public = app_at(&s, SECTOR_B, json!({})).await;
    let sub = |v: Value| v["sub"].as_str().unwrap().to_owned();
    let sub_a = sub(
        userinfo(&s, &access_token(&s, &a, SECTOR_A, "openid").await)
            .await
            .1,
    );
    let again = sub(
        userinfo(&s, &access_token(&s, &a, SECTOR_A, "openid").await)
            .await
            .1,
    );
    let sub_a2 = sub(
        userinfo(&s, &access_token(&s, &a2, SECTOR_A2, "openid").await)
            .await
            .1,
    );
    let sub_b = sub(
        userinfo(&s, &access_token(&s, &b, SECTOR_B, "openid").await)
            .await
            .1,
    );
    let sub_pub = sub(
        userinfo(&s, &access_token(&s, &public, SECTOR_B, "openid").await)
            .await
            .1,
    );
    assert_eq!(sub_a, again, "stable");
    assert_eq!(sub_a, sub_a2, "one sector, one subject");
    assert_ne!(sub_a, sub_b, "another sector, another subject");
    assert_ne!(sub_a, admin.user_id);
    assert_eq!(sub_pub, admin.user_id);

    // A pairwise client needs one sector.
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &admin,
            json!({"name": "Two hosts", "active": true, "redirectUri": format!("{SECTOR_A},{SECTOR_B}"),
                   "subjectType": "pairwise"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-invalid-arguments")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("one host"), "{v}");
}

#[tokio::test]
async fn userinfo_takes_the_token_in_the_header_or_the_body_never_both() {
    let s = server().await;
    let admin = s.admin().await;
    let app = app_at(&s, SECTOR_A, json!({})).await;
    let tok = access_token(&s, &app, SECTOR_A, "openid profile").await;
    let url = format!("{}/oauth/userinfo", s.url);

    let (st, by_get) = userinfo(&s, &tok).await;
    assert_eq!(
        (st, by_get["sub"].as_str()),
        (200, Some(admin.user_id.as_str()))
    );
    let post_header = s.http.post(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(json_of(post_header).await, (200, by_get.clone()));
    let post_body = s
        .http
        .post(&url)
        .form(&[("access_token", &tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(post_body.headers()["cache-control"], "no-store");
    assert_eq!(json_of(post_body).await, (200, by_get));

    let both = s
        .http
        .post(&url)
        .bearer_auth(&tok)
        .form(&[("access_token", &tok)])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(both).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let bad_body = s
        .http
        .post(&url)
        .form(&[("access_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), StatusCode::UNAUTHORIZED);

    // Userinfo serves OpenID Connect: a token without `openid` is refused (as node-oidc-provider does).
    let no_openid = access_token(&s, &app, SECTOR_A, "profile").await;
    let r = s
        .req(Method::GET, "/oauth/userinfo")
        .bearer_auth(&no_openid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"openid\""
    );
    let (st, v) = json_of(r).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (403, Some("insufficient_scope")),
        "{v}"
    );
}

#[tokio::test]
async fn client_settings_round_trip_through_the_apps_api() {
    let s = server().await;
    let admin = s.admin().await;
    let app = make_app(&s, json!({})).await;
    let get = |id: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let (st, v) = s
                .get(&format!("/api/v1/oauth-apps.get?_id={id}"), &admin)
                .await;
            assert_eq!(st, 200, "{v}");
            v["oauthApp"].clone()
        }
    };
    let v = get(app.id.clone()).await;
    let defaults = json!({"idTokenSignedResponseAlg": "RS256", "accessTokenFormat": "opaque",
        "postLogoutRedirectUris": [], "subjectType": "public", "idTokenClaims": true, "extraClaims": []});
    for (k, want) in defaults.as_object().unwrap() {
        assert_eq!(&v[k], want, "{k}: {v}");
    }

    let settings = json!({"idTokenSignedResponseAlg": "ES256", "accessTokenFormat": "jwt",
        "postLogoutRedirectUris": ["http://rp-a.test/bye"], "subjectType": "pairwise",
        "idTokenClaims": false, "extraClaims": ["department"]});
    let mut body =
        json!({"appId": app.id, "name": "Test App", "active": true, "redirectUri": SECTOR_A});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let (st, updated) = s.post("/api/v1/oauth-apps.update", &admin, body).await;
    assert_eq!(st, 200, "{updated}");
    let got = get(app.id.clone()).await;
    let (_, list) = s.get("/api/v1/oauth-apps.list", &admin).await;
    let listed = list["oauthApps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["_id"] == app.id.as_str())
        .unwrap()
        .clone();
    for (k, want) in settings.as_object().unwrap() {
        assert_eq!(&updated[k], want, "update {k}: {updated}");
        assert_eq!(&got[k], want, "get {k}: {got}");
        assert_eq!(&listed[k], want, "list {k}: {listed}");
    }

    // An update that leaves them out keeps them.
    let body = json!({"appId": app.id, "name": "Renamed", "active": true, "redirectUri": SECTOR_A});
    let (st, v) = s.post("/api/v1/oauth-apps.update", &admin, body).await;
    assert_eq!(
        (st, &v["subjectType"], &v["extraClaims"]),
        (200, &json!("pairwise"), &json!(["department"]))
    );

    for (field, bad) in [
        ("idTokenSignedResponseAlg", json!("HS256")),
        ("accessTokenFormat", json!("paseto")),
        ("postLogoutRedirectUris", json!(["javascript:alert(1)"])),
        ("subjectType", json!("secret")),
        ("extraClaims", json!(["sub"])),
    ] {
        let body = json!({"name": "Bad", "active": true, "redirectUri": SECTOR_A, field: bad});
        let (st, v) = s.post("/api/v1/oauth-apps.create", &admin, body).await;
        assert_eq!(st, 400, "{field}: {v}");
        assert_eq!(v["details"]["field"], field, "{v}");
    }
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &admin,
            json!({"name": "Bad", "active": true, "redirectUri": SECTOR_A, "idTokenClaims": "yes"}),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("must be boolean [invalid-params]")),
        "{v}"
    );
}

#[tokio::test]
async fn claims_round_trip_through_users_update_and_info() {
    let s = server().await;
    let admin = s.admin().await;
    let (st, v) = set_claims(&s, &admin, claims()).await;
    assert_eq!((st, &v["user"]["claims"]), (200, &claims()), "{v}");
    let (_, v) = s
        .get(
            &format!("/api/v1/users.info?userId={}", admin.user_id),
            &admin,
        )
        .await;
    assert_eq!(v["user"]["claims"], claims(), "{v}");

    // Another user sees the public record only, without claims.
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &admin,
            json!({"username": "bob", "email": "bob@example.com", "password": "pw",
                   "claims": {"nickname": "bobby"}}),
        )
        .await;
    assert_eq!(
        (st, &v["user"]["claims"]),
        (200, &json!({"nickname": "bobby"})),
        "{v}"
    );
    let bob = s.login("bob", "pw").await;
    let (_, v) = s.get("/api/v1/users.info?username=admin", &bob).await;
    assert!(v["user"].get("claims").is_none(), "{v}");
    let (st, v) = set_claims(&s, &bob, json!({})).await;
    assert_eq!(st, 403, "{v}");

    for bad in [
        json!({"sub": "x"}),
        json!({"birthdate": "yesterday"}),
        json!({"x": null}),
    ] {
        let (st, v) = set_claims(&s, &admin, bad.clone()).await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (400, Some("claims")),
            "{bad}: {v}"
        );
    }
    let (st, v) = s
        .post(
            "/api/v1/users.update",
            &admin,
            json!({"userId": admin.user_id, "data": {"roles": []}}),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (
            400,
            Some("/data must NOT have additional properties [invalid-params]")
        ),
        "{v}"
    );

    // `{}` clears them; the record then shows none.
    let (st, v) = set_claims(&s, &admin, json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["user"].get("claims").is_none(), "{v}");
}

/// `[[users]]` carol with `claims`, `[[clients]]` declared-rp with `subject_type`.
fn declare(c: &mut latchkey::config::Config, claims: Value, subject_type: &str) {
    c.users.push(DeclaredUser {
        username: "carol".into(),
        password: "carol-pw".into(),
        email: "carol@example.com".into(),
        claims: claims.as_object().unwrap().clone(),
        ..Default::default()
    });
    c.clients.push(DeclaredClient {
        client_id: "declared-rp".into(),
        client_secret: "declared-secret".into(),
        redirect_uri: "https://rp.example/cb".into(),
        subject_type: subject_type.into(),
        id_token_signed_response_alg: "EdDSA".into(),
        extra_claims: vec!["department".into()],
        id_token_claims: Some(false),
        ..Default::default()
    });
}

/// The declared user's claims and the declared client's settings (as the RC API shows them).
async fn declared(s: &Server) -> (Value, Value) {
    let admin = s.admin().await;
    let (_, u) = s.get("/api/v1/users.info?username=carol", &admin).await;
    let (_, a) = s
        .get("/api/v1/oauth-apps.get?clientId=declared-rp", &admin)
        .await;
    let a = &a["oauthApp"];
    let settings = json!([
        a["subjectType"],
        a["idTokenSignedResponseAlg"],
        a["extraClaims"],
        a["idTokenClaims"]
    ]);
    (u["user"]["claims"].clone(), settings)
}

#[tokio::test]
async fn users_and_clients_declared_in_the_config_carry_claims_and_settings() {
    let s = spawn_with(|c| declare(c, claims(), "pairwise")).await;
    assert_eq!(
        declared(&s).await,
        (
            claims(),
            json!(["pairwise", "EdDSA", ["department"], false])
        )
    );
    // At the next start the config's values replace the stored ones.
    let dir = s.stop().await;
    let s = TestServer::new()
        .data_dir(dir)
        .config(|c| declare(c, json!({"nickname": "caz"}), "public"))
        .start()
        .await;
    assert_eq!(
        declared(&s).await,
        (
            json!({"nickname": "caz"}),
            json!(["public", "EdDSA", ["department"], false])
        )
    );
}
