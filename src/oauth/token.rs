//! `POST /oauth/token`: authorization_code (+ PKCE), refresh_token and client_credentials, each run through
//! oxide-auth's flow over the store, answered durably (flushed) with `Cache-Control: no-store`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use oxide_auth::code_grant::{accesstoken, client_credentials, refresh};
use serde::Serialize;

use super::client_auth::{self, ClientAuth};
use super::error::{no_store, OAuthError};
use super::flow::{CredentialsEndpoint, FlowRequest, NoExtension};
use super::params::Params;
use super::primitives::Backend;
use super::{read_form, FormBody};
use crate::crypto;
use crate::model::{ClientType, GrantType};
use crate::state::AppState;

/// `GET /oauth/token`: tokens are never issued over GET (credentials would end up in logs and histories).
pub async fn token_get() -> Response {
    OAuthError::invalid_request("the token endpoint accepts POST only").into_response()
}

pub async fn token(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    FormBody(body): FormBody,
) -> Response {
    match issue(&s, &headers, peer.ip(), query.as_deref(), &body).await {
        Ok(v) => {
            metrics::counter!("latchkey_tokens_issued_total").increment(1);
            no_store(Json(v).into_response())
        }
        Err(e) => e.into_response(),
    }
}

async fn issue(
    s: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
    query: Option<&str>,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(OAuthError::invalid_request(
            "parameters must be sent in the request body, not the query string",
        ));
    }
    let mut params = read_form(headers, body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let grant = match grant_type {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            ));
        }
    };
    let client = client_auth::authenticate(s, headers, &mut params, peer).await?;
    if !client.app.grant_types.contains(&grant) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!(
                "this client may not use {grant_type}",
                grant_type = grant.as_str()
            ),
        ));
    }
    let v = match grant {
        GrantType::AuthorizationCode => authorization_code(s, &client, &params)?,
        GrantType::RefreshToken => refresh_token(s, &client, &params)?,
        GrantType::ClientCredentials => credentials(s, &client, &params)?,
    };
    s.store.durable().await.map_err(OAuthError::from)?;
    Ok(v)
}

fn request<'a>(client: &'a ClientAuth, params: &'a Params) -> FlowRequest<'a> {
    FlowRequest {
        params,
        client_id: &client.app.client_id,
        secret: client.secret.as_deref(),
        redirect_fallback: None,
    }
}

// Built from what the backend issued (not from oxide-auth's JSON); `/openapi.json` documents this very type.
/// Successful token response (RFC 6749 §5.1): `expires_in` is the configured access-token lifetime; scopes are
/// space-separated in sorted order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
}

fn respond(backend: &mut Backend<'_>, ttl: u64) -> Result<TokenResponse, OAuthError> {
    let issued = backend.issued.take().ok_or_else(OAuthError::server_error)?;
    Ok(TokenResponse {
        access_token: issued.access,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: issued.refresh,
        scope: issued.scope,
    })
}

/// Chooses the most precise error: what a primitive recorded, then PKCE, then oxide-auth's own.
fn flow_error(backend: &mut Backend<'_>, oxide: Option<(&'static str, bool)>) -> OAuthError {
    if let Some(e) = backend.outcome.take() {
        return e;
    }
    if let Some(why) = backend.pkce.failed {
        return OAuthError::invalid_grant(why);
    }
    match oxide {
        Some(("invalid_client", basic)) => OAuthError::invalid_client(basic),
        Some((kind, _)) => OAuthError::new(kind, "the request was rejected"),
        None => OAuthError::server_error(),
    }
}

fn kind_of(
    desc: Option<&mut oxide_auth::code_grant::error::AccessTokenError>,
) -> Option<&'static str> {
    let desc = desc?;
    let kind = desc
        .iter()
        .find(|(k, _)| *k == "error")
        .map(|(_, v)| v.into_owned())?;
    Some(match kind.as_str() {
        "invalid_client" => "invalid_client",
        "invalid_grant" => "invalid_grant",
        "unauthorized_client" => "unauthorized_client",
        "unsupported_grant_type" => "unsupported_grant_type",
        "invalid_scope" => "invalid_scope",
        _ => "invalid_request",
    })
}

fn authorization_code(
    s: &AppState,
    client: &ClientAuth,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let mut req = request(client, params);
    if !params.contains("redirect_uri") {
        // RFC 6749 §4.1.3: required only if the authorization request included it.
        match s.store.peek_code(&crypto::sha256(code.as_bytes())) {
            Ok(Some(c)) if !c.grant.redirect_uri_sent => {
                req.redirect_fallback = Some(c.grant.redirect_uri)
            }
            Ok(Some(_)) => return Err(OAuthError::invalid_request("redirect_uri is required")),
            Ok(None) => return Err(OAuthError::invalid_grant("unknown authorization code")),
            Err(e) => return Err(e.into()),
        }
    }
    let mut backend = Backend::new(s, &client.app);
    match accesstoken::access_token(&mut backend, &req) {
        Ok(_) => respond(&mut backend, s.config.tokens.access_ttl_secs),
        Err(mut e) => {
            let kind = kind_of(e.description());
            Err(flow_error(
                &mut backend,
                kind.map(|k| (k, client.used_basic)),
            ))
        }
    }
}

fn refresh_token(
    s: &AppState,
    client: &ClientAuth,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !params.contains("refresh_token") {
        return Err(OAuthError::invalid_request("refresh_token is required"));
    }
    let req = request(client, params);
    let mut backend = Backend::new(s, &client.app);
    match refresh::refresh(&mut backend, &req) {
        Ok(_) => respond(&mut backend, s.config.tokens.access_ttl_secs),
        Err(refresh::Error::Invalid(mut d)) => {
            let k = kind_of(Some(d.description()));
            Err(flow_error(&mut backend, k.map(|k| (k, client.used_basic))))
        }
        Err(refresh::Error::Unauthorized(..)) => Err(flow_error(
            &mut backend,
            Some(("invalid_client", client.used_basic)),
        )),
        Err(refresh::Error::Primitive) => Err(flow_error(&mut backend, None)),
    }
}

fn credentials(
    s: &AppState,
    client: &ClientAuth,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.app.client_type == ClientType::Public {
        return Err(OAuthError::new(
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let req = request(client, params);
    let mut backend = Backend::new(s, &client.app);
    backend.allow_refresh = false;
    let pending = {
        let mut ep = CredentialsEndpoint {
            backend: &mut backend,
            ext: NoExtension,
        };
        client_credentials::client_credentials(&mut ep, &req)
    };
    let result = pending.and_then(|p| {
        let mut ep = CredentialsEndpoint {
            backend: &mut backend,
            ext: NoExtension,
        };
        p.issue(&mut ep, client.app.client_id.clone(), false)
    });
    match result {
        Ok(_) => respond(&mut backend, s.config.tokens.access_ttl_secs),
        Err(mut e) => {
            let k = match &mut e {
                client_credentials::Error::Ignore => Some("invalid_scope"),
                other => kind_of(other.description()),
            };
            Err(flow_error(&mut backend, k.map(|k| (k, client.used_basic))))
        }
    }
}
