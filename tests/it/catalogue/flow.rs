//! Every OAuth 2.0 preset's full path, table-driven: start → upstream consent → callback → link (with the
//! preset's Stack type) → back to the pending authorization (Twitter's OAuth 1.0a: tests/it/twitter.rs).

use latchkey::model::catalogue::{self, Preset, Protocol};
use reqwest::StatusCode;
use serde_json::json;

use super::{authorize_url, documented, to_callback, upstream_for};
use crate::common::upstream::Spec;
use crate::common::{browser, query_of, TestServer};
use crate::oauth_flow::{make_app, REDIRECT};

/// The presets this generic emulation serves: the OAuth 2.0 ones (Apple has its own, tests/it/apple.rs).
fn oauth2() -> impl Iterator<Item = &'static Preset> {
    catalogue::all().filter(|p| p.protocol == Protocol::OAuth2)
}

#[tokio::test]
async fn every_preset_signs_in_links_with_its_stack_type_and_returns_to_the_authorization() {
    let mut upstreams = Vec::new();
    let mut declared = Vec::new();
    for preset in oauth2() {
        let (identity, emails, _) = documented(preset.id);
        let mut spec = Spec::new(preset.id, identity);
        spec.emails = emails;
        if preset.id == "microsoft" {
            spec.options = vec![("tenant".into(), "contoso".into())];
        }
        // The service key defaults to the preset id.
        let (up, d) = upstream_for("", spec).await;
        upstreams.push(up);
        declared.push(d);
    }
    let s = TestServer::new()
        .config(move |c| c.providers = declared)
        .start()
        .await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let store = &s.running.as_ref().unwrap().state.store;
    for preset in oauth2() {
        let b = browser();
        let callback = to_callback(&s, &b, &authorize_url(&s, &app.client_id), preset.id).await;
        let r = b.get(&callback).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}: {:?}",
            preset.id,
            r.text().await
        );
        let back = r.headers()["location"].to_str().unwrap().to_owned();
        let r = b.get(format!("{}{back}", s.url)).send().await.unwrap();
        let landed = r.headers()["location"].to_str().unwrap();
        assert!(landed.starts_with(REDIRECT), "{}: {landed}", preset.id);
        assert!(query_of(landed).contains_key("code"), "{landed}");

        let (_, _, account) = documented(preset.id);
        let link = store
            .list_links()
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.provider == preset.id)
            .unwrap_or_else(|| panic!("{} has a link", preset.id));
        assert_eq!(link.account_id, account, "{}", preset.id);
        assert_eq!(
            link.provider_type,
            preset.stack_type.unwrap_or("custom"),
            "{}",
            preset.id
        );
        assert!(link.allow_sign_in && link.upstream.is_some());
    }
    let links = store.list_links().await.unwrap();
    assert_eq!(links.len(), oauth2().count());
    store.verify().unwrap();
}

#[tokio::test]
async fn a_declared_secret_is_sealed_on_apply() {
    let (_up, d) = upstream_for("", Spec::new("github", json!({}))).await;
    let s = TestServer::new()
        .config(move |c| c.providers = vec![d])
        .start()
        .await;
    let p = s
        .running
        .as_ref()
        .unwrap()
        .state
        .store
        .get_provider("github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.preset.as_deref(), Some("github"));
    assert!(p.enabled);
    let dir = s.stop().await;
    for f in crate::common::files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes
                .windows(b"secret-of-github".len())
                .any(|w| w == b"secret-of-github"),
            "the client secret is in plaintext in {}",
            f.display()
        );
    }
}

/// Stack's `POST /oauth-providers` gives a link its provider's Stack type: the preset's, else `custom`.
#[tokio::test]
async fn a_link_created_through_stacks_api_has_the_presets_type() {
    const PROJECT: &str = "6b3c2a1e-0d4f-4a5b-8c7d-9e0f1a2b3c4d";
    const SERVER_KEY: &str = "catalogue-server-key-aaaaaaaaaaaaaaaaaaaaaaa";
    let declare = |preset: &str| latchkey::config::DeclaredProvider {
        preset: preset.into(),
        client_id: "cid".into(),
        url: "https://upstream.example".into(),
        ..Default::default()
    };
    let providers = vec![declare("bitbucket"), declare("dolphin")];
    let s = TestServer::new()
        .user("jane", "jane-pw")
        .config(move |c| {
            c.stack.project_id = PROJECT.into();
            c.stack.server_key = SERVER_KEY.into();
            c.providers = providers;
        })
        .start()
        .await;
    let admin = s.admin().await;
    let (_, info) = s.get("/api/v1/users.info?username=jane", &admin).await;
    let user = info["user"]["_id"].as_str().unwrap();
    for (provider, want) in [("bitbucket", "bitbucket"), ("dolphin", "custom")] {
        let r = s
            .http
            .post(format!("{}/api/v1/oauth-providers", s.url))
            .header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
            .json(
                &json!({"user_id": user, "provider_config_id": provider, "account_id": "acc-1",
                "allow_sign_in": true, "allow_connected_accounts": false}),
            )
            .send()
            .await
            .unwrap();
        let (status, v) = crate::common::json_of(r).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["type"], want, "{provider}: {v}");
    }
}
