//! The provider catalogue end to end (README.md#provider-presets): every preset, declared in `[[providers]]`,
//! signs a browser in through an emulated upstream that holds Latchkey to the preset (`common::upstream`), and
//! the failure paths end on an error page that says what failed and leave the store as it was.

mod failures;
mod flow;
mod hostile;
mod oidc_config;
mod rc_builtin_flow;
mod stack_suite;

use latchkey::config::DeclaredProvider;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::common::upstream::{self, EmulatedUpstream, Spec};
use crate::common::{page_text, unescape, Server};
use crate::oauth_flow::REDIRECT;

/// The upstream's documented identity answer for `preset` (and its emails answer), and the account id it maps to.
pub fn documented(preset: &str) -> (Value, Value, &'static str) {
    let userinfo = json!({"sub": "1077", "name": "Jane Doe", "preferred_username": "jane", "nickname": "jdoe",
        "email": "jane@example.com", "email_verified": true, "picture": "https://pic.example/j.png"});
    let github = json!({"login": "octocat", "id": 583231, "name": "The Octocat", "email": null});
    let github_emails = json!([{"email": "octocat@github.com", "primary": true, "verified": true}]);
    let none = json!([]);
    match preset {
        "google" | "gitlab" | "linkedin" | "drupal" => (userinfo, none, "1077"),
        "github" | "github_enterprise" => (github, github_emails, "583231"),
        "microsoft" => (
            json!({"id": "87d349ed", "displayName": "Adele Vance", "mail": "AdeleV@contoso.com"}),
            none,
            "87d349ed",
        ),
        "spotify" => (
            json!({"id": "wizzler", "display_name": "JM", "email": "jm@example.com", "images": []}),
            none,
            "wizzler",
        ),
        "facebook" => (
            json!({"id": "10158", "name": "Jane", "email": "jane@fb.example",
                "picture": {"data": {"url": "https://fb.example/p.jpg"}}}),
            none,
            "10158",
        ),
        "discord" => (
            json!({"id": "80351110224678912", "username": "nelly", "avatar": "8342729096ea", "verified": true,
                "email": "nelly@discord.com"}),
            none,
            "80351110224678912",
        ),
        "bitbucket" => (
            json!({"account_id": "557058:c0b7", "display_name": "Erik", "username": "evzijst",
                "links": {"avatar": {"href": "https://bb.example/a.png"}}}),
            json!({"values": [{"email": "erik@example.com", "is_primary": true, "is_confirmed": true}]}),
            "557058:c0b7",
        ),
        "x" => (
            json!({"data": {"id": "2244994945", "name": "X Dev", "username": "XDevelopers"}}),
            none,
            "2244994945",
        ),
        "twitch" => (
            json!({"data": [{"id": "141981764", "login": "twitchdev", "display_name": "TwitchDev",
                "email": "dev@twitch.tv"}]}),
            none,
            "141981764",
        ),
        "nextcloud" => (
            json!({"ocs": {"meta": {"status": "ok"}, "data": {"id": "ncadmin", "displayname": "NC Admin",
                "email": "admin@cloud.example"}}}),
            none,
            "ncadmin",
        ),
        "wordpress" => (
            json!({"ID": 1234, "username": "janewp", "display_name": "Jane", "email": "jane@wp.example",
                "email_verified": true}),
            none,
            "1234",
        ),
        "tokenpass" => (
            json!({"id": "d5ea8b6e", "username": "tokenuser", "name": "Token User"}),
            none,
            "d5ea8b6e",
        ),
        "dolphin" => (
            json!({"ID": "42", "NickName": "dolly", "Email": "dolly@dolphin.example"}),
            none,
            "42",
        ),
        other => panic!("no documented answer for preset {other}"),
    }
}

/// An emulated upstream for `spec`, and the `[[providers]]` entry (service `service`) that points Latchkey at it.
pub async fn upstream_for(service: &str, spec: Spec) -> (EmulatedUpstream, DeclaredProvider) {
    let declared = DeclaredProvider {
        service: service.into(),
        preset: spec.preset.into(),
        client_id: spec.client_id.clone(),
        client_secret: spec.client_secret.clone(),
        options: spec.options.iter().cloned().collect(),
        ..Default::default()
    };
    let up = upstream::start(spec).await;
    let declared = DeclaredProvider {
        url: up.url.clone(),
        ..declared
    };
    (up, declared)
}

/// An authorize URL of app `client_id` on `s` (PKCE), which sends an unsigned-in browser to the sign-in page.
pub fn authorize_url(s: &Server, client_id: &str) -> String {
    format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&state=cat&code_challenge={}&code_challenge_method=S256",
        s.url,
        crate::common::s256(crate::oauth_flow::VERIFIER)
    )
}

/// From the sign-in page of `authorize` through the button of `service` to the upstream, which sends the
/// browser back: returns Latchkey's callback URL (not followed).
pub async fn to_callback(s: &Server, b: &Client, authorize: &str, service: &str) -> String {
    let page = page_text(b, authorize).await;
    let href = page
        .split(&format!("href=\"/login/{service}?"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("the page has a button for {service}: {page}"));
    let start = format!("{}/login/{service}?{}", s.url, unescape(href));
    let r = b.get(&start).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{service}: {:?}",
        r.text().await
    );
    let at_upstream = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(&at_upstream).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{service} upstream: {:?}",
        r.text().await
    );
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/_oauth/{service}?", s.url)),
        "{callback}"
    );
    callback
}
