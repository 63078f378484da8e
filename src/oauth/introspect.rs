//! RFC 7662 introspection and RFC 7009 revocation, both client-authenticated. A client learns only about its own
//! tokens: anything else (expired, revoked, unknown, another client's) is exactly `{"active":false}`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

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
) -> Result<Value, OAuthError> {
    let mut params = read_form(headers, body)?;
    let client = client_auth::authenticate(s, headers, &mut params, peer).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = s.clock.now_ms();
    let rec = s
        .store
        .active_token_of(&crypto::sha256(token.as_bytes()), now, &client.app)?;
    let Some(rec) = rec else {
        return Ok(json!({"active": false}));
    };
    let mut v = json!({
        "active": true,
        "scope": rec.scope,
        "client_id": rec.client_id,
        "token_type": match rec.kind { TokenKind::Access => "Bearer", TokenKind::Refresh => "refresh_token" },
        "exp": rec.expires_at / 1000,
        "iat": rec.issued_at / 1000,
        "iss": &*s.issuer,
        "aud": rec.client_id,
    });
    match rec.subject.user_id() {
        Some(id) => {
            v["sub"] = json!(id);
            if let Some(u) = s.store.get_user(id)? {
                v["username"] = json!(u.username);
            }
        }
        None => v["sub"] = json!(rec.client_id),
    }
    Ok(v)
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
