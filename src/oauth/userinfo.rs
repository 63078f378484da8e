//! `GET/POST /oauth/userinfo`: the signed-in user behind a Bearer access token (RFC 6750 errors).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::crypto;
use crate::model::User;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};

/// Resolves `Authorization: Bearer <access token>` to its live record.
pub fn bearer_token(s: &AppState, headers: &HeaderMap) -> Option<TokenRecord> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rec = s
        .store
        .active_token(&crypto::sha256(token.trim().as_bytes()), s.clock.now_ms())
        .ok()??;
    (rec.kind == TokenKind::Access).then_some(rec)
}

/// The user behind a live access token, with the scope the token was granted (client_credentials tokens have no
/// user).
pub fn bearer_user(s: &AppState, token: &str) -> Option<(User, String)> {
    let rec = s
        .store
        .active_token(&crypto::sha256(token.as_bytes()), s.clock.now_ms())
        .ok()??;
    if rec.kind != TokenKind::Access || rec.owner_id.is_empty() {
        return None;
    }
    let user = s.store.get_user(&rec.owner_id).ok()?.filter(|u| u.active)?;
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

pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(rec) = bearer_token(&s, &headers) else {
        return invalid_token();
    };
    let Some(user) = s
        .store
        .get_user(&rec.owner_id)
        .ok()
        .flatten()
        .filter(|u| u.active)
    else {
        return invalid_token();
    };
    let email = user.emails.first();
    let mut r = Json(json!({
        "sub": user.id,
        "preferred_username": user.username,
        "name": user.name,
        "email": email.map(|e| e.address.as_str()),
        "email_verified": email.is_some_and(|e| e.verified),
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
