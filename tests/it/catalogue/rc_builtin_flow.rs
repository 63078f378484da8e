//! Rocket.Chat's built-in services end to end, as an RC admin client meets them: `Accounts_OAuth_Google` and a
//! self-hosted `Accounts_OAuth_Gitlab` (`API_Gitlab_URL`) switched on through `settings/:_id` (with the second
//! factor), listed by `settings.oauth` / `service.configurations` as RC's own client reads them, then a browser
//! signs in: `/login/<service>` → emulated consent → `/_oauth/<service>` → link with the Stack type → back at the
//! pending `/oauth/authorize` with a code.

use latchkey::config::DeclaredProvider;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{authorize_url, documented, to_callback, upstream_for};
use crate::common::upstream::{self, Spec};
use crate::common::{browser, json_of, query_of, Auth, Server, TestServer};
use crate::oauth_flow::{make_app, REDIRECT};
use crate::providers::set;

async fn ok(s: &Server, a: &Auth, key: &str, value: Value) {
    let (st, v) = set(s, a, key, value).await;
    assert_eq!((st, v), (200, json!({"success": true})), "{key}");
}

/// The public list `field` of `path`, as RC's client fetches it before the login page.
async fn public(s: &Server, path: &str, field: &str) -> Vec<Value> {
    let (st, v) = json_of(s.req(Method::GET, path).send().await.unwrap()).await;
    assert_eq!(st, 200, "{path}: {v}");
    assert!(!v.to_string().contains("secret-of-"), "{path}: {v}");
    v[field].as_array().unwrap().clone()
}

#[tokio::test]
async fn google_and_self_hosted_gitlab_enabled_through_rcs_settings_sign_a_browser_in() {
    let (google_identity, _, google_account) = documented("google");
    let (gitlab_identity, _, gitlab_account) = documented("gitlab");
    // Google has no URL key in RC: the host override comes from the config file (disabled, no credentials), the
    // rest from the settings API. GitLab is all settings (`API_Gitlab_URL`).
    let (_google, mut declared) = upstream_for("", Spec::new("google", google_identity)).await;
    declared = DeclaredProvider {
        client_id: String::new(),
        client_secret: String::new(),
        enabled: Some(false),
        ..declared
    };
    let gitlab = upstream::start(Spec::new("gitlab", gitlab_identity)).await;
    let s = TestServer::new()
        .config(move |c| c.providers = vec![declared])
        .start()
        .await;
    let a = s.admin().await;
    assert!(public(&s, "/api/v1/settings.oauth", "services")
        .await
        .is_empty());
    for (prefix, url_key, url) in [
        ("Accounts_OAuth_Google", None, None),
        (
            "Accounts_OAuth_Gitlab",
            Some("API_Gitlab_URL"),
            Some(gitlab.url.clone()),
        ),
    ] {
        let preset = prefix.trim_start_matches("Accounts_OAuth_").to_lowercase();
        if let (Some(key), Some(url)) = (url_key, url) {
            ok(&s, &a, key, json!(url)).await;
        }
        ok(
            &s,
            &a,
            &format!("{prefix}_id"),
            json!(format!("client-of-{preset}")),
        )
        .await;
        ok(
            &s,
            &a,
            &format!("{prefix}_secret"),
            json!(format!("secret-of-{preset}")),
        )
        .await;
        ok(&s, &a, prefix, json!(true)).await;
    }

    let store = &s.running.as_ref().unwrap().state.store;
    let id_of = |service: &'static str| async move {
        store.get_provider(service).await.unwrap().unwrap().id
    };
    let services = public(&s, "/api/v1/settings.oauth", "services").await;
    for service in ["google", "gitlab"] {
        let entry = services.iter().find(|e| e["name"] == service);
        assert_eq!(
            entry,
            Some(&json!({"_id": id_of(service).await, "name": service,
                "clientId": format!("client-of-{service}"), "buttonLabelText": "", "buttonColor": "",
                "buttonLabelColor": "", "custom": false})),
            "{services:?}"
        );
    }
    let configurations = public(&s, "/api/v1/service.configurations", "configurations").await;
    for service in ["google", "gitlab"] {
        let entry = configurations.iter().find(|e| e["service"] == service);
        assert_eq!(
            entry,
            Some(&json!({"_id": id_of(service).await, "service": service,
                "clientId": format!("client-of-{service}")})),
            "{configurations:?}"
        );
    }

    let app = make_app(&s, json!({"skipConsent": true})).await;
    for (service, account) in [("google", google_account), ("gitlab", gitlab_account)] {
        let b = browser();
        let callback = to_callback(&s, &b, &authorize_url(&s, &app.client_id), service).await;
        let r = b.get(&callback).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{service}: {:?}",
            r.text().await
        );
        let back = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(back.starts_with("/oauth/authorize?"), "{back}");
        let r = b.get(format!("{}{back}", s.url)).send().await.unwrap();
        let landed = r.headers()["location"].to_str().unwrap();
        assert!(landed.starts_with(REDIRECT), "{service}: {landed}");
        assert!(query_of(landed).contains_key("code"), "{landed}");
        let link = store
            .list_links()
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.provider == service)
            .unwrap_or_else(|| panic!("{service} linked"));
        assert_eq!(
            (link.account_id.as_str(), link.provider_type.as_str()),
            (account, service)
        );
    }
    store.verify().unwrap();
}
