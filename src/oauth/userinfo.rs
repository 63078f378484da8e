//! `GET/POST /oauth/userinfo`: the signed-in user behind a Bearer access token (RFC 6750 errors).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::crypto;
use crate::model::User;
use crate::state::AppState;
use crate::store::TokenKind;
use crate::wire::{self, MalformedBearer};

/// The user behind a live access token, with the scope the token was granted (client_credentials tokens have no
/// user).
pub fn bearer_user(s: &AppState, token: &str) -> Option<(User, String)> {
    let rec = s
        .store
        .active_token(&crypto::sha256(token.as_bytes()), s.clock.now_ms())
        .ok()??;
    if rec.kind != TokenKind::Access {
        return None;
    }
    let user = s
        .store
        .get_user(rec.subject.user_id()?)
        .ok()?
        .filter(|u| u.active)?;
    Some((user, rec.scope))
}

fn invalid_token() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token", "error_description": "a live access token is required"})))
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// 401 for a request without any Bearer credentials: a bare challenge, no error code (RFC 6750 §3.1).
fn no_credentials() -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let token = match wire::bearer(&headers) {
        Ok(Some(token)) => token,
        Ok(None) => return no_credentials(),
        Err(MalformedBearer) => return invalid_token(),
    };
    let Some((user, scope)) = bearer_user(&s, token) else {
        return invalid_token();
    };
    let mut r = Json(claims(&user, &scope)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The claims the token's scope grants (OIDC Core §5.4): `sub` always; `profile` adds the user's names and
/// `updated_at`, `email` their address. A claim the user lacks is left out, never sent as null.
fn claims(user: &User, scope: &str) -> Value {
    let granted = |want: &str| scope.split(' ').any(|t| t == want);
    let mut c = Map::new();
    c.insert("sub".into(), json!(user.id));
    if granted("profile") {
        c.insert("preferred_username".into(), json!(user.username));
        if !user.name.is_empty() {
            c.insert("name".into(), json!(user.name));
        }
        c.insert("updated_at".into(), json!(user.updated_at / 1000));
    }
    if let (true, Some(e)) = (granted("email"), user.emails.first()) {
        c.insert("email".into(), json!(e.address));
        c.insert("email_verified".into(), json!(e.verified));
    }
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A federated user can lack a name and an email: the claims are left out, not sent as null.
    #[test]
    fn claims_the_user_lacks_are_omitted() {
        let user = User {
            id: "u1".into(),
            username: "jane".into(),
            name: String::new(),
            emails: vec![],
            roles: vec![],
            active: true,
            password_hash: None,
            created_at: 0,
            updated_at: 1_700_000_000_000,
            two_factor: None,
        };
        assert_eq!(
            claims(&user, "email openid profile"),
            json!({"sub": "u1", "preferred_username": "jane", "updated_at": 1_700_000_000})
        );
        assert_eq!(claims(&user, "openid"), json!({"sub": "u1"}));
    }
}
