//! CSRF protection for the page forms: a random token in a `SameSite=Lax` cookie that each form repeats in a
//! hidden field (double submit). A cross-site form can neither read the cookie nor make the browser send it.

use axum::http::HeaderMap;

use super::session::{read_cookie, set_cookie};
use crate::crypto;
use crate::state::AppState;

pub fn cookie_name(state: &AppState) -> String {
    format!("{}_csrf", super::session::cookie_name(&state.issuer))
}

/// The token to put in a form, and the `Set-Cookie` to send when the browser has none yet.
pub fn token(state: &AppState, headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    let name = cookie_name(state);
    match read_cookie(headers, &name).filter(|t| t.len() == 43) {
        Some(t) => (t, None),
        None => {
            let t = crypto::random_token();
            let c = set_cookie(state, &name, &t, 86_400);
            (t, Some(c))
        }
    }
}

/// Whether the submitted form token matches the cookie (constant time).
pub fn verify(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (read_cookie(headers, &cookie_name(state)), submitted) {
        (Some(c), Some(s)) if c.len() == 43 => crypto::ct_eq(c.as_bytes(), s.as_bytes()),
        _ => false,
    }
}
