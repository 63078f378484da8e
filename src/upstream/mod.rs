//! Federated sign-in through custom OAuth providers and catalogue presets (docs/endpoints.md#federation), as
//! Rocket.Chat's OAuth does it: `GET /login/<service>` starts at the upstream (state + PKCE), `GET
//! /_oauth/<service>` finishes (code exchange, identity, link or user), then the pending `return_to` (usually
//! `/oauth/authorize`) continues. Rocket.Chat's Twitter speaks OAuth 1.0a instead ([`oauth1`]). What the upstream is and how it is spoken to comes from one place,
//! `model::catalogue::resolve`.
//!
//! The pending sign-in travels in a cookie sealed under the master key (no server state, survives restarts); the
//! `state` parameter must match it, which also binds the callback to the browser that started it.

mod apple;
pub mod callback;
mod exchange;
pub mod identity;
pub mod oauth1;
pub mod oidc;
pub mod proxy;
pub mod refresh;
pub mod start;
pub mod tokens;

use std::time::Duration;

use axum::http::Method;
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::wire::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(Method::GET, "/login/{service}", start::start)
        .route(Method::GET, "/_oauth/{service}", callback::callback)
        .route(Method::POST, "/_oauth/{service}", callback::callback_post)
}

/// How long a callback may wait for the upstream (token exchange and identity together): four fifths of the
/// server's request timeout, so a slow upstream ends on the sign-in error page that says so rather than on the
/// server's own 408, which would fire at the same moment.
pub fn deadline(config: &crate::config::Config) -> Duration {
    Duration::from_secs(config.limits.request_timeout_secs) * 4 / 5
}

/// The most characters of upstream-chosen text (`error`, `error_description`) a page or a log line shows.
pub const MAX_UPSTREAM_TEXT: usize = 200;

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The most characters of one logged value (a failure reason quotes up to two upstream texts).
const MAX_LOGGED: usize = 512;

/// Text that an upstream (or a URL) chose, made safe for one log line: control characters (newlines, ANSI
/// escapes), bidi overrides and backslashes are escaped, so it can neither forge log lines nor drive a terminal,
/// and it is bounded.
pub fn for_log(s: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let mut out = String::new();
    for c in s.chars().take(MAX_LOGGED) {
        if c.is_control() || bidi(c) || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().nth(MAX_LOGGED).is_some() {
        out.push('…');
    }
    out
}

/// A sign-in in flight, sealed into a cookie between start and callback.
#[derive(Serialize, Deserialize)]
pub(crate) struct Pending {
    pub service: String,
    /// What the upstream must hand back: the `state` sent (OAuth 1.0a: the request token, `oauth_token`).
    pub state: String,
    /// The PKCE verifier (OAuth 1.0a: the request token's secret, which signs the access token request).
    pub verifier: String,
    pub return_to: String,
    pub expires_at: i64,
    /// The `nonce` sent to an OpenID Connect issuer, which its ID token must carry back.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Associated data for the sealed cookie, so no other sealed value can stand in for it.
const COOKIE_AAD: &[u8] = b"latchkey-federation-v1";

pub(crate) fn cookie_name(state: &AppState) -> String {
    format!("{}_fed", crate::web::session::cookie_name(&state.issuer))
}

/// The `Set-Cookie` of a pending sign-in. An upstream that answers by form_post (Apple) brings the browser back
/// with a cross-site top-level `POST`, which carries no `SameSite=Lax` cookie: its pending cookie is `SameSite=None`
/// (which browsers take only with `Secure`, so only when the issuer is https). Over http it stays `Lax`: a browser
/// then sends it only when the upstream is on the same site (a stand-in on localhost), and Apple itself redirects
/// to https URLs only.
pub(crate) fn pending_cookie(
    state: &AppState,
    value: &str,
    max_age_secs: i64,
    form_post: bool,
) -> axum::http::HeaderValue {
    let name = cookie_name(state);
    if !(form_post && state.issuer.starts_with("https://")) {
        return crate::web::session::set_cookie(state, &name, value, max_age_secs);
    }
    axum::http::HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=None; Max-Age={max_age_secs}; Secure"
    ))
    .expect("cookie values are base64url")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_text_cannot_forge_log_lines() {
        let forged = "denied\n2024-01-01T00:00:00Z  INFO latchkey: admin signed in\r\u{1b}[31mred\u{202e}x\\n";
        let logged = for_log(forged);
        assert!(!logged.chars().any(|c| c.is_control()), "{logged}");
        assert_eq!(
            logged,
            "denied\\n2024-01-01T00:00:00Z  INFO latchkey: admin signed in\\r\\u{1b}[31mred\\u{202e}x\\\\n"
        );
        assert_eq!(for_log("plain (ok) é"), "plain (ok) é");
        let long = for_log(&"a".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_LOGGED + 1);
        assert!(long.ends_with('…'));
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
