//! RFC 7662 introspection and RFC 7009 revocation, both client-authenticated. A client learns only about its own
//! tokens: anything else (expired, revoked, unknown, another client's) is exactly `{"active":false}`.
//!
//! Both formats of access token: an opaque one is found by its digest; a JWT one (`jwt_access.rs`) is verified
//! first and answered from its claims, then found live by its digest when it is stored (code flow, refresh) or by
//! its app's epoch and the revoked set when it is not (client_credentials).

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
use super::jwt_access::{self, AccessClaims};
use super::{read_form, FormBody};
use crate::crypto;
use crate::model::App;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};

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
    if jwt_access::is_jwt(token) {
        return of_jwt(s, &client.app, token, now).await;
    }
    let rec = s
        .store
        .active_token_of(&crypto::sha256(token.as_bytes()), now, &client.app)
        .await?;
    let Some(rec) = rec else {
        return Ok(Introspection::default());
    };
    let username = username(s, &rec).await?;
    Ok(Introspection {
        active: true,
        aud: Some(rec.client_id.clone()),
        client_id: Some(rec.client_id.clone()),
        exp: Some(rec.expires_at / 1000),
        iat: Some(rec.issued_at / 1000),
        iss: Some(s.issuer.to_string()),
        scope: Some(rec.scope),
        sub: Some(match rec.subject.user_id() {
            Some(id) => id.to_owned(),
            None => rec.client_id,
        }),
        token_type: Some(match rec.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        }),
        username,
    })
}

/// The username of a stored token's user, if it has one.
async fn username(s: &AppState, rec: &TokenRecord) -> Result<Option<String>, OAuthError> {
    let Some(id) = rec.subject.user_id() else {
        return Ok(None);
    };
    Ok(s.store.get_user(id).await?.map(|u| u.username))
}

/// A JWT access token of `app`: answered from its claims once it verifies and is live (see the module doc).
async fn of_jwt(
    s: &AppState,
    app: &App,
    token: &str,
    now: i64,
) -> Result<Introspection, OAuthError> {
    let Some(c) = jwt_access::verify(s, token, now).filter(|c| c.client_id == app.client_id) else {
        return Ok(Introspection::default());
    };
    let username = if c.token_epoch.is_some() {
        if !jwt_access::unstored_live(&s.store, app, &c).await? {
            return Ok(Introspection::default());
        }
        None
    } else {
        let digest = crypto::sha256(token.as_bytes());
        match s.store.active_token_of(&digest, now, app).await? {
            Some(rec) => username(s, &rec).await?,
            None => return Ok(Introspection::default()),
        }
    };
    Ok(Introspection::of_claims(c, username))
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

impl Introspection {
    /// A live JWT access token's answer: its own claims.
    fn of_claims(c: AccessClaims, username: Option<String>) -> Self {
        Self {
            active: true,
            aud: Some(c.aud),
            client_id: Some(c.client_id),
            exp: Some(c.exp),
            iat: Some(c.iat),
            iss: Some(c.iss),
            scope: Some(c.scope),
            sub: Some(c.sub),
            token_type: Some("Bearer"),
            username,
        }
    }
}

/// RFC 7009 for `app`: an unstored JWT access token of its own goes into the revoked set until its `exp`; any
/// other token is revoked by its digest as the store decides (a refresh token takes its family with it).
async fn revoke_for(s: &AppState, app: &App, token: &str) -> Result<(), OAuthError> {
    let now = s.clock.now_ms();
    let unstored = jwt_access::is_jwt(token)
        .then(|| jwt_access::verify(s, token, now))
        .flatten()
        .filter(|c| c.token_epoch.is_some());
    match unstored {
        Some(c) if c.client_id == app.client_id => {
            s.store
                .revoke_jti(&c.jti, &c.client_id, c.exp.saturating_mul(1000))
                .await?
        }
        Some(_) => {}
        None => {
            s.store
                .revoke_token(&crypto::sha256(token.as_bytes()), &app.client_id)
                .await?;
        }
    }
    Ok(())
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
        revoke_for(&s, &client.app, token).await
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
