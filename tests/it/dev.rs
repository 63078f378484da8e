//! For developers testing flows locally: `--dev` and declared `[[clients]]` / `[[users]]`.

use latchkey::config::{DeclaredClient, DeclaredProvider};
use serde_json::json;

use crate::common::steps::submit_sign_in;
use crate::common::{browser, json_of, page_text, query_of, spawn_with, Server, TestServer};

#[tokio::test]
async fn dev_mode_prints_a_flow_that_works_by_pasting() {
    let s = spawn_with(|c| c.dev = true).await;
    let lines = &s.running.as_ref().unwrap().announcements.lines;
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("dev: open "))
        .expect("authorize URL printed")
        .to_owned();
    assert!(lines.iter().any(|l| l.starts_with("dev: then curl")));
    let discovery = lines
        .iter()
        .find_map(|l| l.strip_prefix("dev: discovery "))
        .expect("discovery URL printed beside the authorize URL");
    assert_eq!(
        discovery,
        format!("{}/.well-known/openid-configuration", s.url)
    );
    let (st, doc) = json_of(s.http.get(discovery).send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(doc["issuer"], json!(s.url));

    let b = browser();
    let page = page_text(&b, &url).await;
    let r = submit_sign_in(&s, &b, &page, "demo", "demo").await;
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    // Consent is skipped for the demo client: straight to its redirect URI.
    let r = b.get(format!("{}{next}", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let landed = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        landed.starts_with(&format!("{}/dev/callback?", s.url)),
        "{landed}"
    );
    let code = query_of(&landed)["code"].clone();
    let page = page_text(&b, &landed).await;
    assert!(
        page.contains(&code) && page.contains("curl"),
        "the callback page shows the code and the curl"
    );

    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth("latchkey-demo", Some("demo-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{}/dev/callback", s.url)),
            ("code_verifier", latchkey::core::bootstrap::DEV_VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["refresh_token"].is_string());
}

/// A server declaring the `my-service` client with `secret` and the user jane with `password`, on `dir` when given
/// (a restart), else on a new data dir.
async fn declaring(dir: Option<tempfile::TempDir>, secret: &str, password: &str) -> Server {
    let client = DeclaredClient {
        client_id: "my-service".into(),
        client_secret: secret.into(),
        name: "My service".into(),
        redirect_uri: "http://127.0.0.1:3000/cb".into(),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    };
    let b = TestServer::new().client(client).user("jane", password);
    match dir {
        Some(d) => b.data_dir(d).start().await,
        None => b.start().await,
    }
}

/// `my-service`'s client_credentials token request with `secret`.
fn my_service_token(s: &Server, secret: &str) -> reqwest::RequestBuilder {
    s.http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth("my-service", Some(secret))
        .form(&[("grant_type", "client_credentials")])
}

/// jane's RC login with `password`.
fn jane_login(s: &Server, password: &str) -> reqwest::RequestBuilder {
    s.http
        .post(format!("{}/api/v1/login", s.url))
        .json(&json!({"user": "jane", "password": password}))
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn declared_clients_and_users_are_upserted_and_keep_their_ids() {
    let s = declaring(None, "first-secret", "jane-pw").await;
    assert_eq!(status(my_service_token(&s, "first-secret")).await, 200);
    s.login("jane", "jane-pw").await;
    let dir = s.stop().await;

    // Restart with a new secret: the client keeps its id, the old secret stops working.
    let s = declaring(Some(dir), "second-secret", "jane-pw-2").await;
    assert_eq!(status(my_service_token(&s, "second-secret")).await, 200);
    assert_eq!(status(my_service_token(&s, "first-secret")).await, 401);
    assert_eq!(status(jane_login(&s, "jane-pw-2")).await, 200);
    let apps = s
        .running
        .as_ref()
        .unwrap()
        .state
        .store
        .list_apps()
        .await
        .unwrap();
    assert_eq!(
        apps.iter().filter(|a| a.client_id == "my-service").count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_restart_with_an_unchanged_config_rewrites_no_declared_record() {
    let records = |s: &Server| {
        let store = s.running.as_ref().unwrap().state.store.clone();
        async move {
            let app = store.app_by_client_id("my-service").await.unwrap().unwrap();
            let user = store.user_by_username("jane").await.unwrap().unwrap();
            (app, user)
        }
    };
    let s = declaring(None, "same-secret", "jane-pw").await;
    let before = records(&s).await;
    let dir = s.stop().await;
    let s = declaring(Some(dir), "same-secret", "jane-pw").await;
    // The secret check runs after the server answers; a request authenticating waits for it.
    assert_eq!(status(my_service_token(&s, "same-secret")).await, 200);
    let after = records(&s).await;
    // Same hashes (salts) and update times: nothing was re-hashed or rewritten.
    assert_eq!(after.0, before.0);
    assert_eq!(after.1.password_hash, before.1.password_hash);
    assert_eq!(after.1.roles, before.1.roles);
    s.stop().await;
}

#[tokio::test]
async fn a_replaced_declared_secret_is_refused_from_the_first_request_after_a_restart() {
    let s = declaring(None, "old-secret", "old-pw").await;
    let dir = s.stop().await;
    let s = declaring(Some(dir), "new-secret", "new-pw").await;
    // At once, before anything else: the old secret and password are refused, not checked against the old hashes.
    let (t, l) = tokio::join!(
        status(my_service_token(&s, "old-secret")),
        status(jane_login(&s, "old-pw"))
    );
    assert_eq!((t, l), (401, 401));
    assert_eq!(status(my_service_token(&s, "new-secret")).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_declared_provider_is_rewritten_only_when_the_config_changes_it() {
    let corp = |secret: &str| DeclaredProvider {
        service: "corp".into(),
        preset: "oidc".into(),
        url: "https://id.corp.example".into(),
        client_id: "latchkey-at-corp".into(),
        client_secret: secret.into(),
        ..Default::default()
    };
    let start = |dir: Option<tempfile::TempDir>, secret: &'static str| async move {
        let b = TestServer::new().config(move |c| c.providers = vec![corp(secret)]);
        match dir {
            Some(d) => b.data_dir(d).start().await,
            None => b.start().await,
        }
    };
    let stored = |s: &Server| {
        let state = s.running.as_ref().unwrap().state.clone();
        async move {
            let p = state.store.get_provider("corp").await.unwrap().unwrap();
            let secret = state
                .sealer
                .open(p.sealed_secret().unwrap(), p.id.as_bytes());
            (p, String::from_utf8(secret.unwrap()).unwrap())
        }
    };
    let s = start(None, "first").await;
    let (first, secret) = stored(&s).await;
    assert_eq!(secret, "first");
    let dir = s.stop().await;
    // Unchanged: the record (its sealed secret and update time included) is byte for byte the same.
    let s = start(Some(dir), "first").await;
    assert_eq!(stored(&s).await, (first.clone(), "first".into()));
    let dir = s.stop().await;
    // A new secret is sealed and written.
    let s = start(Some(dir), "second").await;
    let (second, secret) = stored(&s).await;
    assert_eq!(secret, "second");
    assert_ne!(second.sealed_secret(), first.sealed_secret());
    s.stop().await;
}
