//! Federated sign-in through custom OAuth providers (SPEC §9), as Rocket.Chat's custom OAuth does it:
//! `GET /login/<service>` starts at the upstream (state + PKCE), `GET /_oauth/<service>` finishes (code exchange,
//! identity, link or user), then the pending `return_to` (usually `/oauth/authorize`) continues.
//!
//! The pending sign-in travels in a cookie sealed under the master key (no server state, survives restarts); the
//! `state` parameter must match it, which also binds the callback to the browser that started it.

pub mod callback;
pub mod identity;
pub mod start;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::model::provider::Provider;
use crate::state::AppState;
use crate::web::pages::ProviderButton;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/{service}", get(start::start))
        .route("/_oauth/{service}", get(callback::callback))
}

/// Upstream calls never hang a request: 5 s to connect, 10 s in all.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static HTTP client configuration")
}

/// A sign-in in flight, sealed into a cookie between start and callback.
#[derive(Serialize, Deserialize)]
pub(crate) struct Pending {
    pub service: String,
    pub state: String,
    pub verifier: String,
    pub return_to: String,
    pub expires_at: i64,
}

/// Associated data for the sealed cookie, so no other sealed value can stand in for it.
const COOKIE_AAD: &[u8] = b"latchkey-federation-v1";

pub(crate) fn cookie_name(state: &AppState) -> String {
    format!("{}_fed", crate::web::session::cookie_name(&state.issuer))
}

pub(crate) fn seal_pending(state: &AppState, p: &Pending) -> String {
    let json = serde_json::to_vec(p).expect("serializable");
    crate::crypto::secret::b64url(&state.sealer.seal(&json, COOKIE_AAD))
}

pub(crate) fn open_pending(state: &AppState, cookie: &str) -> Option<Pending> {
    let sealed = crate::crypto::secret::b64url_decode(cookie)?;
    let json = state.sealer.open(&sealed, COOKIE_AAD)?;
    serde_json::from_slice(&json).ok()
}

/// Where the upstream sends the browser back: RC's callback URL.
pub fn callback_url(state: &AppState, service: &str) -> String {
    format!("{}/_oauth/{service}", state.issuer)
}

/// Sign-in buttons for every enabled provider that shows one.
pub fn buttons(state: &AppState, return_to: &str) -> Vec<ProviderButton> {
    let providers = crate::core::provider::enabled(state).unwrap_or_default();
    providers
        .iter()
        .filter(|p| p.show_button)
        .map(|p| button(p, return_to))
        .collect()
}

fn button(p: &Provider, return_to: &str) -> ProviderButton {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let label = if p.button_label_text.trim().is_empty() {
        format!("Sign in with {}", p.name)
    } else {
        p.button_label_text.clone()
    };
    ProviderButton {
        href: format!("/login/{}?{q}", p.service_key()),
        label,
        color: css_color(&p.button_color, "#1d74f5"),
        text_color: css_color(&p.button_label_color, "#FFFFFF"),
    }
}

/// Only `#rgb`/`#rrggbb` colors reach the page's style attribute.
fn css_color(c: &str, fallback: &str) -> String {
    let ok = c.starts_with('#')
        && matches!(c.len(), 4 | 7)
        && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        c.to_owned()
    } else {
        fallback.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_sanitized() {
        assert_eq!(css_color("#abc", "#000"), "#abc");
        assert_eq!(css_color("#A1B2C3", "#000"), "#A1B2C3");
        assert_eq!(css_color("red;background:url(x)", "#000"), "#000");
        assert_eq!(css_color("#12345g", "#000"), "#000");
    }
}
