//! docs/endpoints.md#providers: Rocket.Chat's built-in OAuth services and its OAuth Proxy over RC's settings API,
//! as RC's own settings flows use them: defaults, types, masking, permissions, 2FA, the public service
//! configurations, secrets sealed at rest, and `/login/<service>` through the proxy.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{browser, json_of, query_of, spawn, Auth, Server};
use crate::providers::{add, get_value, post_2fa, set, with_2fa, PREFIX};

const SECRET: &str = "google-client-secret-value";

async fn public(s: &Server, path: &str, field: &str) -> Vec<Value> {
    let r = s.req(Method::GET, path).send().await.unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{path}: {v}");
    assert!(!v.to_string().contains(SECRET), "{path}: {v}");
    v[field].as_array().unwrap().clone()
}

async fn ok(s: &Server, a: &Auth, key: &str, value: Value) {
    let (st, v) = set(s, a, key, value).await;
    assert_eq!((st, v), (200, json!({"success": true})), "{key}");
}

#[tokio::test]
async fn built_in_keys_read_rcs_defaults_until_written() {
    let s = spawn().await;
    let a = s.admin().await;
    for (key, want) in [
        ("Accounts_OAuth_Google", json!(false)),
        ("Accounts_OAuth_Google_id", json!("")),
        ("Accounts_OAuth_Google_secret", json!("")),
        ("Accounts_OAuth_Apple_secretKey", json!("")),
        ("Accounts_OAuth_Apple_iss", json!("")),
        ("API_Gitlab_URL", json!("")),
        ("Accounts_OAuth_Gitlab_identity_path", json!("/api/v4/user")),
        ("Accounts_OAuth_Gitlab_merge_users", json!(false)),
        (
            "Accounts_OAuth_Nextcloud_button_label_text",
            json!("Nextcloud"),
        ),
        ("Accounts_OAuth_Nextcloud_button_color", json!("#0082c9")),
        ("Accounts_OAuth_Dolphin_login_style", json!("redirect")),
        ("Accounts_OAuth_Wordpress_server_type", json!("")),
        ("API_Tokenpass_URL", json!("")),
        ("API_Drupal_URL", json!("")),
        (
            "Accounts_OAuth_Proxy_host",
            json!("https://oauth-proxy.rocket.chat"),
        ),
        ("Accounts_OAuth_Proxy_services", json!("")),
    ] {
        assert_eq!(get_value(&s, &a, key).await, want, "{key}");
    }
    assert!(public(&s, "/api/v1/settings.oauth", "services")
        .await
        .is_empty());
    // Reading created nothing.
    let state = &s.running.as_ref().unwrap().state;
    assert!(state.store.list_providers().await.unwrap().is_empty());
}

#[tokio::test]
async fn enabling_google_masks_its_secret_and_lists_it_as_a_built_in_service() {
    let s = spawn().await;
    let a = s.admin().await;
    ok(&s, &a, "Accounts_OAuth_Google_id", json!("google-client")).await;
    ok(&s, &a, "Accounts_OAuth_Google_secret", json!(SECRET)).await;
    assert!(
        public(&s, "/api/v1/settings.oauth", "services")
            .await
            .is_empty(),
        "disabled until switched on"
    );
    ok(&s, &a, "Accounts_OAuth_Google", json!(true)).await;
    assert_eq!(
        get_value(&s, &a, "Accounts_OAuth_Google_secret").await,
        "********"
    );
    ok(&s, &a, "Accounts_OAuth_Google_secret", json!("********")).await;
    assert_eq!(
        get_value(&s, &a, "Accounts_OAuth_Google_id").await,
        "google-client"
    );
    let state = &s.running.as_ref().unwrap().state;
    let p = state.store.get_provider("google").await.unwrap().unwrap();
    assert_eq!(p.preset.as_deref(), Some("google"));
    assert_eq!(
        latchkey::core::provider::client_secret(&state.sealer, &p)
            .unwrap()
            .as_deref(),
        Some(SECRET),
        "the mask written back kept the secret"
    );

    let services = public(&s, "/api/v1/settings.oauth", "services").await;
    assert_eq!(
        services,
        vec![json!({
            "_id": p.id,
            "name": "google",
            "clientId": "google-client",
            "buttonLabelText": "",
            "buttonColor": "",
            "buttonLabelColor": "",
            "custom": false,
        })]
    );
    let configurations = public(&s, "/api/v1/service.configurations", "configurations").await;
    assert_eq!(
        configurations,
        vec![json!({"_id": p.id, "service": "google", "clientId": "google-client"})]
    );

    // Facebook's and Twitter's client ids go by their own names, as in RC.
    for prefix in ["Accounts_OAuth_Facebook", "Accounts_OAuth_Twitter"] {
        ok(&s, &a, &format!("{prefix}_id"), json!("id-1")).await;
        ok(&s, &a, prefix, json!(true)).await;
    }
    let configurations = public(&s, "/api/v1/service.configurations", "configurations").await;
    let by = |service: &str| {
        configurations
            .iter()
            .find(|c| c["service"] == service)
            .unwrap()
            .clone()
    };
    assert_eq!(by("facebook")["appId"], "id-1");
    assert!(by("facebook").get("clientId").is_none());
    assert_eq!(by("twitter")["consumerKey"], "id-1");
    assert!(configurations.iter().all(|c| c.get("custom").is_none()));

    state.store.flush_blocking().unwrap();
    for f in crate::common::files_under(s.dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "secret in {}",
            f.display()
        );
    }
    state.store.verify().unwrap();
}

#[tokio::test]
async fn a_non_admin_gets_rcs_error_and_writes_need_the_second_factor() {
    let s = spawn().await;
    let a = s.admin().await;
    crate::common::steps::create_user(&s, &a, "jane").await;
    let u = s.login("jane", "pw").await;
    let key = "Accounts_OAuth_Google_secret";
    let forbidden = json!({
        "success": false,
        "error": "User does not have the permissions required for this action [error-unauthorized]",
        "errorType": "error-unauthorized",
    });
    assert_eq!(
        s.get(&format!("/api/v1/settings/{key}"), &u).await,
        (403, forbidden.clone())
    );
    let r = with_2fa(s.authed(Method::POST, &format!("/api/v1/settings/{key}"), &u))
        .header("x-2fa-code", "pw")
        .json(&json!({"value": "stolen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await, (403, forbidden));
    for key in ["Accounts_OAuth_Google", "Accounts_OAuth_Proxy_services"] {
        let (st, v) = s
            .post(
                &format!("/api/v1/settings/{key}"),
                &a,
                json!({"value": "x"}),
            )
            .await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("totp-required")),
            "{key}"
        );
    }
    assert_eq!(get_value(&s, &a, "Accounts_OAuth_Google").await, false);
    assert_eq!(get_value(&s, &a, "Accounts_OAuth_Proxy_services").await, "");
    let state = &s.running.as_ref().unwrap().state;
    assert!(state.store.list_providers().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_values_are_refused_and_change_nothing() {
    let s = spawn().await;
    let a = s.admin().await;
    for (key, value) in [
        ("Accounts_OAuth_Google", json!("true")),
        ("Accounts_OAuth_Google", json!(1)),
        ("Accounts_OAuth_Google_id", json!(true)),
        ("API_Gitlab_URL", json!("javascript:alert(1)")),
        ("Accounts_OAuth_Wordpress_server_type", json!("wordpress")),
        ("Accounts_OAuth_Dolphin_login_style", json!("iframe")),
        ("Accounts_OAuth_Apple_kid", json!(null)),
        ("Accounts_OAuth_Proxy_host", json!("not a url")),
        ("Accounts_OAuth_Proxy_services", json!(["google"])),
    ] {
        let before = get_value(&s, &a, key).await;
        let (st, v) = set(&s, &a, key, value.clone()).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("error-setting-validation-failed")),
            "{key} = {value}: {v}"
        );
        assert_eq!(v["details"]["setting"], key);
        assert_eq!(get_value(&s, &a, key).await, before, "{key} unchanged");
    }
    for key in [
        "Accounts_OAuth_google",
        "Accounts_OAuth_Google_callback_url",
    ] {
        let (st, v) = set(&s, &a, key, json!("x")).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("error-setting-not-found")),
            "{key}"
        );
    }
    let state = &s.running.as_ref().unwrap().state;
    assert!(state.store.list_providers().await.unwrap().is_empty());
    assert!(state
        .store
        .get_setting("Accounts_OAuth_Proxy_host")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_built_in_service_and_a_custom_provider_of_the_same_name_stay_apart() {
    let s = spawn().await;
    let a = s.admin().await;
    ok(&s, &a, "Accounts_OAuth_Gitlab", json!(true)).await;
    add(&s, &a, "GitLab").await;
    let (st, v) = s
        .get(&format!("/api/v1/settings/{PREFIX}Gitlab-url"), &a)
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-setting-not-found")),
        "the built-in has no custom keys"
    );
    let (st, _) = post_2fa(
        &s,
        "/api/v1/settings.removeCustomOAuth",
        &a,
        json!({"name": "GitLab"}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        get_value(&s, &a, "Accounts_OAuth_Gitlab").await,
        true,
        "removing a custom provider leaves the built-in"
    );
}

/// Starts a sign-in at `/login/<service>`; the upstream authorization request's query.
async fn start(s: &Server, service: &str) -> std::collections::HashMap<String, String> {
    let r = browser()
        .get(format!("{}/login/{service}?return_to=/login", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{service}");
    query_of(r.headers()["location"].to_str().unwrap())
}

#[tokio::test]
async fn start_goes_through_the_proxy_for_listed_services_only() {
    let s = spawn().await;
    let a = s.admin().await;
    for name in ["Myidp", "Other"] {
        add(&s, &a, name).await;
        for (suffix, value) in [
            ("-url", json!("https://idp.example")),
            ("-id", json!("client-1")),
            ("", json!(true)),
        ] {
            ok(&s, &a, &format!("{PREFIX}{name}{suffix}"), value).await;
        }
    }
    let direct = start(&s, "myidp").await;
    let callback = direct["redirect_uri"].clone();
    assert!(callback.ends_with("/_oauth/myidp"), "{callback}");
    assert!(!direct["state"].contains('!'));

    ok(
        &s,
        &a,
        "Accounts_OAuth_Proxy_services",
        json!(" google, myidp "),
    )
    .await;
    let proxied = start(&s, "myidp").await;
    assert_eq!(
        proxied["redirect_uri"],
        "https://oauth-proxy.rocket.chat/oauth_redirect"
    );
    let (carried, inner) = proxied["state"].split_once('!').unwrap();
    assert_eq!(carried, callback, "the original redirect rides in state");
    assert_eq!(inner.len(), direct["state"].len());
    let other = start(&s, "other").await;
    assert!(other["redirect_uri"].ends_with("/_oauth/other"));
    assert!(!other["state"].contains('!'));

    ok(
        &s,
        &a,
        "Accounts_OAuth_Proxy_host",
        json!("https://proxy.example"),
    )
    .await;
    assert_eq!(
        start(&s, "myidp").await["redirect_uri"],
        "https://proxy.example/oauth_redirect"
    );
}

#[tokio::test]
async fn linkedin_nextcloud_and_wordpress_keep_rcs_own_shapes() {
    let s = spawn().await;
    let a = s.admin().await;
    for prefix in [
        "Accounts_OAuth_Linkedin",
        "Accounts_OAuth_Nextcloud",
        "Accounts_OAuth_Wordpress",
    ] {
        ok(&s, &a, &format!("{prefix}_id"), json!("id-2")).await;
        ok(&s, &a, prefix, json!(true)).await;
    }
    let configurations = public(&s, "/api/v1/service.configurations", "configurations").await;
    let by = |service: &str| {
        let mut c = configurations
            .iter()
            .find(|c| c["service"] == service)
            .unwrap()
            .clone();
        c.as_object_mut().unwrap().remove("_id");
        c
    };
    assert_eq!(
        by("linkedin"),
        json!({"service": "linkedin", "clientId": "id-2",
               "clientConfig": {"requestPermissions": ["openid", "email", "profile"]}})
    );
    assert_eq!(
        by("nextcloud"),
        json!({"service": "nextcloud", "clientId": "id-2", "buttonLabelText": "Nextcloud",
               "buttonLabelColor": "#ffffff", "buttonColor": "#0082c9"})
    );
    let services = public(&s, "/api/v1/settings.oauth", "services").await;
    let wordpress = services.iter().find(|c| c["service"] == "wordpress");
    assert_eq!(
        wordpress.unwrap()["clientId"],
        "id-2",
        "WordPress as stored"
    );
    let nextcloud = services.iter().find(|c| c["name"] == "nextcloud").unwrap();
    assert_eq!(nextcloud["buttonLabelText"], "Nextcloud");
    assert_eq!(nextcloud["custom"], false);
}
