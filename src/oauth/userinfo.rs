//! `GET/POST /oauth/userinfo`: the signed-in user behind a Bearer access token (RFC 6750 errors).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::OAuthErrorBody;
use crate::core::session::bearer_user;
use crate::model::User;
use crate::state::AppState;
use crate::wire::{self, MalformedBearer};

fn invalid_token() -> Response {
    let body = OAuthErrorBody {
        error: "invalid_token",
        error_description: Some("a live access token is required"),
    };
    let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
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
    let Some((user, scope)) = bearer_user(&s.store, &s.clock, token).await else {
        return invalid_token();
    };
    let mut r = Json(claims(&user, &scope)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// OIDC Core §5.4 claims. The fields are in sorted order, the order this answer has always been written in.
#[derive(Serialize, ToSchema, Default)]
pub struct UserInfo {
    /// With `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// With `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    /// With `profile`, when the user has a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// With `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
    sub: String,
    /// With `profile`: seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
}

/// The claims the token's scope grants (OIDC Core §5.4): `sub` always; `profile` adds the user's names and
/// `updated_at`, `email` their address. A claim the user lacks is left out, never sent as null.
fn claims(user: &User, scope: &str) -> UserInfo {
    let granted = |want: &str| scope.split(' ').any(|t| t == want);
    let mut c = UserInfo {
        sub: user.id.clone(),
        ..UserInfo::default()
    };
    if granted("profile") {
        c.preferred_username = Some(user.username.clone());
        c.name = Some(user.name.clone()).filter(|n| !n.is_empty());
        c.updated_at = Some(user.updated_at / 1000);
    }
    if let (true, Some(e)) = (granted("email"), user.emails.first()) {
        c.email = Some(e.address.clone());
        c.email_verified = Some(e.verified);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let claims = |scope| serde_json::to_value(claims(&user, scope)).unwrap();
        assert_eq!(
            claims("email openid profile"),
            json!({"sub": "u1", "preferred_username": "jane", "updated_at": 1_700_000_000})
        );
        assert_eq!(claims("openid"), json!({"sub": "u1"}));
    }
}
