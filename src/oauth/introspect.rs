//! RFC 7662 introspection and RFC 7009 revocation, both client-authenticated. A client learns only about its own
//! tokens: anything else (expired, revoked, unknown, another client's) is exactly `{"active":false}`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::client_auth;
use super::error::{no_store, OAuthError};
use super::{read_form, FormBody};
use crate::crypto;
use crate::state::AppState;
use crate::store::TokenKind;

pub async fn introspect(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    match run_introspect(&s, &headers, peer.ip(), &body).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn run_introspect(
    s: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
    body: &[u8],
) -> Result<Introspection, OAuthError> {
    let mut params = read_form(headers, body)?;
    let client = client_auth::authenticate(s, headers, &mut params, peer).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = s.clock.now_ms();
    let rec = s
        .store
        .active_token_of(&crypto::sha256(token.as_bytes()), now, &client.app)
        .await?;
    let Some(rec) = rec else {
        return Ok(Introspection::default());
    };
    let mut v = Introspection {
        active: true,
        aud: Some(rec.client_id.clone()),
        client_id: Some(rec.client_id.clone()),
        exp: Some(rec.expires_at / 1000),
        iat: Some(rec.issued_at / 1000),
        iss: Some(s.issuer.to_string()),
        scope: Some(rec.scope),
        sub: None,
        token_type: Some(match rec.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        }),
        username: None,
    };
    match rec.subject.user_id() {
        Some(id) => {
            if let Some(u) = s.store.get_user(id).await? {
                v.username = Some(u.username);
            }
            v.sub = Some(id.to_owned());
        }
        None => v.sub = Some(rec.client_id),
    }
    Ok(v)
}

/// RFC 7662 §2.2; anything not live and the caller's is exactly `{"active":false}`. The fields are in sorted
/// order, the order this answer has always been written in.
#[derive(Serialize, ToSchema, Default)]
pub struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// The user, or for a client_credentials token the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// `Bearer` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

pub async fn revoke(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let r = async {
        let mut params = read_form(&headers, &body)?;
        let client = client_auth::authenticate(&s, &headers, &mut params, peer.ip()).await?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        s.store
            .revoke_token(&crypto::sha256(token.as_bytes()), &client.app.client_id)
            .await?;
        Ok::<_, OAuthError>(())
    }
    .await;
    match r {
        // RFC 7009 §2.2: 200 whether or not the token was known. The body is `{}` as JSON: RFC 7009 clients ignore
        // it, and clients that parse every answer strictly (simple-oauth2 through wreck's `json: 'strict'`) refuse
        // an empty text/plain one.
        Ok(()) => no_store(Json(json!({})).into_response()),
        Err(e) => e.into_response(),
    }
}
