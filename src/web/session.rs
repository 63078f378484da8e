//! The browser session: an RC login token in an `HttpOnly`, `SameSite=Lax` cookie named per issuer, so two
//! instances on one host (same cookie jar, different ports) never overwrite each other's sessions.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::clock::Millis;
use crate::core::session;
use crate::crypto;
use crate::model::oidc::Amr;
use crate::model::User;
use crate::state::AppState;

/// `latchkey_<first 8 hex of SHA-256(issuer)>`.
pub fn cookie_name(issuer: &str) -> String {
    format!("latchkey_{}", &crypto::sha256_hex(issuer.as_bytes())[..8])
}

/// The value of cookie `name` in the request.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value; `Secure` when the issuer is https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// The browser session cookie for a fresh login `token`, kept as long as the token lives (`login.token_ttl_days`).
pub fn login_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = state.config.login.token_ttl_days as i64 * 86_400;
    set_cookie(state, &cookie_name(&state.issuer), token, max_age)
}

/// Removes the browser session cookie (sign-out).
pub fn clear_login_cookie(state: &AppState) -> HeaderValue {
    set_cookie(state, &cookie_name(&state.issuer), "", 0)
}

/// A browser's live session.
pub struct BrowserSession {
    pub user: User,
    /// The login token in the cookie.
    pub token: String,
    /// When the user signed in: the `auth_time` of the codes issued in this session.
    pub signed_in_at: Millis,
    /// How the user signed in: the codes' `amr`.
    pub amr: Vec<Amr>,
    /// The session's id ([`session::session_id`]): the codes' `sid`.
    pub sid: String,
}

/// The signed-in user of this browser, if any.
pub async fn current_user(state: &AppState, headers: &HeaderMap) -> Option<BrowserSession> {
    let token = read_cookie(headers, &cookie_name(&state.issuer))?;
    let (user, record) = session::signed_in(&state.store, &state.clock, &token)
        .await
        .ok()?;
    Some(BrowserSession {
        user,
        sid: session::session_id(&token),
        token,
        signed_in_at: record.created_at,
        amr: record.amr,
    })
}
