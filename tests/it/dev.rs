//! For developers testing flows locally: `--dev` and declared `[[clients]]` / `[[users]]`.

use latchkey::config::{DeclaredClient, DeclaredProvider};
use serde_json::json;

use crate::common::steps::submit_sign_in;
use crate::common::{browser, json_of, page_text, query_of, spawn_with, TestServer};

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

#[tokio::test]
async fn declared_clients_and_users_are_upserted_and_keep_their_ids() {
    let declared = |secret: &str| DeclaredClient {
        client_id: "my-service".into(),
        client_secret: secret.into(),
        name: "My service".into(),
        redirect_uri: "http://127.0.0.1:3000/cb".into(),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    };
    let s = TestServer::new()
        .client(declared("first-secret"))
        .user("jane", "jane-pw")
        .start()
        .await;
    let token = |secret: &'static str, url: String, http: reqwest::Client| async move {
        http.post(format!("{url}/oauth/token"))
            .basic_auth("my-service", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        token("first-secret", s.url.clone(), s.http.clone()).await,
        200
    );
    s.login("jane", "jane-pw").await;
    let dir = s.stop().await;

    // Restart with a new secret: the client keeps its id, the old secret stops working.
    let s = TestServer::new()
        .data_dir(dir)
        .client(declared("second-secret"))
        .user("jane", "jane-pw-2")
        .start()
        .await;
    let (url, http) = (s.url.clone(), s.http.clone());
    assert_eq!(token("second-secret", url.clone(), http.clone()).await, 200);
    assert_eq!(token("first-secret", url.clone(), http.clone()).await, 401);
    let r = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"user": "jane", "password": "jane-pw-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
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

/// The declared `my-service` client with `secret`.
fn my_service(secret: &str) -> DeclaredClient {
    DeclaredClient {
        client_id: "my-service".into(),
        client_secret: secret.into(),
        name: "My service".into(),
        redirect_uri: "http://127.0.0.1:3000/cb".into(),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_restart_with_an_unchanged_config_rewrites_no_declared_record() {
    let s = TestServer::new()
        .client(my_service("same-secret"))
        .user("jane", "jane-pw")
        .start()
        .await;
    let records = |s: &crate::common::Server| {
        let store = s.running.as_ref().unwrap().state.store.clone();
        async move {
            let app = store.app_by_client_id("my-service").await.unwrap().unwrap();
            let user = store.user_by_username("jane").await.unwrap().unwrap();
            (app, user)
        }
    };
    let before = records(&s).await;
    let dir = s.stop().await;
    let s = TestServer::new()
        .data_dir(dir)
        .client(my_service("same-secret"))
        .user("jane", "jane-pw")
        .start()
        .await;
    // The secret check runs after the server answers; a request authenticating waits for it.
    let r = s
        .http
        .post(format!("{}/oauth/token", s.url))
        .basic_auth("my-service", Some("same-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = records(&s).await;
    // Same hashes (salts) and update times: nothing was re-hashed or rewritten.
    assert_eq!(after.0, before.0);
    assert_eq!(after.1.password_hash, before.1.password_hash);
    assert_eq!(after.1.roles, before.1.roles);
    s.stop().await;
}

#[tokio::test]
async fn a_replaced_declared_secret_is_refused_from_the_first_request_after_a_restart() {
    let s = TestServer::new()
        .client(my_service("old-secret"))
        .user("jane", "old-pw")
        .start()
        .await;
    let dir = s.stop().await;
    let s = TestServer::new()
        .data_dir(dir)
        .client(my_service("new-secret"))
        .user("jane", "new-pw")
        .start()
        .await;
    // At once, before anything else: the old secret and password are refused, not checked against the old hashes.
    let (url, http) = (s.url.clone(), s.http.clone());
    let old_token = http
        .post(format!("{url}/oauth/token"))
        .basic_auth("my-service", Some("old-secret"))
        .form(&[("grant_type", "client_credentials")]);
    let old_login = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"user": "jane", "password": "old-pw"}));
    let (t, l) = tokio::join!(old_token.send(), old_login.send());
    assert_eq!(t.unwrap().status(), 401);
    assert_eq!(l.unwrap().status(), 401);
    let new = http
        .post(format!("{url}/oauth/token"))
        .basic_auth("my-service", Some("new-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), 200);
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
    let stored = |s: &crate::common::Server| {
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
