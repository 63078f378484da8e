//! A generic OpenID Connect issuer declared in the config file (`[[providers]] preset = "oidc"`, `url` = the
//! issuer): Latchkey A signs a browser in through Latchkey B, from A's pending authorization back to it with a
//! code; the link's Stack type is `custom` and its account id is B's `sub` (ulla's user id at B).

use latchkey::config::DeclaredProvider;
use reqwest::StatusCode;
use serde_json::json;

use super::authorize_url;
use crate::common::{browser, hidden_inputs, page_text, query_of, TestServer};
use crate::oauth_flow::{make_app, REDIRECT};

#[tokio::test]
async fn a_declared_oidc_issuer_signs_in_end_to_end_with_a_custom_link_keyed_on_sub() {
    let b_server = TestServer::new().start().await;
    let b_admin = b_server.admin().await;
    let (st, user) = b_server
        .post(
            "/api/v1/users.create",
            &b_admin,
            json!({"username": "ulla", "email": "ulla@b.example",
            "password": "ulla-pw", "name": "Ulla B", "verified": true}),
        )
        .await;
    assert_eq!(st, 200, "{user}");
    let ulla_at_b = user["user"]["_id"].as_str().unwrap().to_owned();
    // A's callback is known once A listens: the client at B starts with a placeholder redirect URI.
    let (st, app) = b_server
        .post(
            "/api/v1/oauth-apps.create",
            &b_admin,
            json!({"name": "A", "active": true,
            "redirectUri": "https://a.invalid/_oauth/issuer", "skipConsent": true}),
        )
        .await;
    assert_eq!(st, 200, "{app}");
    let app = app["application"].clone();
    let issuer = b_server.running.as_ref().unwrap().state.issuer.to_string();
    let declared = DeclaredProvider {
        service: "issuer".into(),
        preset: "oidc".into(),
        url: issuer.clone(),
        client_id: app["clientId"].as_str().unwrap().into(),
        client_secret: app["clientSecret"].as_str().unwrap().into(),
        ..Default::default()
    };
    let a = TestServer::new()
        .config(move |c| c.providers = vec![declared])
        .start()
        .await;
    let (st, v) = b_server
        .post(
            "/api/v1/oauth-apps.update",
            &b_admin,
            json!({"appId": app["_id"], "name": "A", "active": true,
            "redirectUri": format!("{}/_oauth/issuer", a.url), "skipConsent": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let client = make_app(&a, json!({"skipConsent": true})).await;
    let b = browser();
    let page = page_text(&b, authorize_url(&a, &client.client_id)).await;
    let href = page
        .split("href=\"/login/issuer?")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("A's sign-in page has the issuer's button: {page}"));
    let r = b
        .get(format!(
            "{}/login/issuer?{}",
            a.url,
            crate::common::unescape(href)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let at_b = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        at_b.starts_with(&format!("{issuer}/oauth/authorize?")),
        "{at_b}"
    );
    assert!(query_of(&at_b).contains_key("nonce"));
    // Ulla signs in at B, which sends her back to A's callback.
    let mut form = hidden_inputs(&page_text(&b, &at_b).await);
    form.push(("username".into(), "ulla".into()));
    form.push(("password".into(), "ulla-pw".into()));
    let r = b
        .post(format!("{}/login", b_server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b
        .get(format!("{}{next}", b_server.url))
        .send()
        .await
        .unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/_oauth/issuer?", a.url)),
        "{callback}"
    );
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(format!("{}{back}", a.url)).send().await.unwrap();
    let landed = r.headers()["location"].to_str().unwrap();
    assert!(landed.starts_with(REDIRECT), "{landed}");
    assert!(query_of(landed).contains_key("code"), "{landed}");

    let store = &a.running.as_ref().unwrap().state.store;
    let links = store.list_links().await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (
            links[0].provider.as_str(),
            links[0].provider_type.as_str(),
            links[0].account_id.as_str()
        ),
        ("issuer", "custom", ulla_at_b.as_str())
    );
}
