//! `POST /oauth/token`: authorization_code (+ PKCE), refresh_token and client_credentials, each run through
//! oxide-auth's flow over the records read before it, its [`Outcome`] then committed in one atomic, durable store
//! call before the answer (`Cache-Control: no-store`). A grant of `openid` also gets an ID token, built from the
//! sign-in read before the flow and signed after the commit (`id_token.rs`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use oxide_auth::code_grant::error::{AccessTokenError, AccessTokenErrorType};
use oxide_auth::code_grant::{accesstoken, client_credentials, refresh};
use serde::Serialize;

use super::client_auth::{self, ClientAuth};
use super::error::{no_store, OAuthError};
use super::flow::{CredentialsEndpoint, FlowRequest};
use super::id_token::{self, SignIn};
use super::outcome::Outcome;
use super::params::Params;
use super::primitives::{Backend, ClientIssuer};
use super::{read_form, FormBody};
use crate::core::token_policy::Lifetime;
use crate::crypto;
use crate::model::app::AccessTokenFormat;
use crate::model::{ClientType, GrantType};
use crate::state::AppState;
use crate::store::{Lineage, TokenRecord};

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
    let (outcome, sign_in) = match grant {
        GrantType::AuthorizationCode => authorization_code(s, &client, &params).await?,
        GrantType::RefreshToken => refresh_token(s, &client, &params).await?,
        GrantType::ClientCredentials => (credentials(s, &client, &params)?, None),
    };
    let issued = outcome.commit_tokens(s, &client.app.client_id).await?;
    let id_token = match sign_in {
        Some(sign_in) if id_token::requested(&issued.scope) => {
            let (access, scope) = (&issued.access, &issued.scope);
            Some(id_token::issue(s, &client.app, sign_in, access, scope).await?)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token: issued.access,
        token_type: "Bearer",
        expires_in: Lifetime::Access.secs(&s.config.tokens),
        refresh_token: issued.refresh,
        scope: issued.scope,
        id_token,
    })
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
    /// The OpenID Connect ID token (a signed JWT, OIDC Core §3.1.3.3, §12.2): present when the granted scope has
    /// `openid` (authorization_code and refresh_token grants; never client_credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// oxide-auth's own refusal (the primitives did not record a more precise one), by its typed kind.
fn oxide_error(desc: Option<&mut AccessTokenError>, used_basic: bool) -> OAuthError {
    let Some(desc) = desc else {
        return OAuthError::server_error();
    };
    let kind = match desc.kind() {
        AccessTokenErrorType::InvalidClient => return OAuthError::invalid_client(used_basic),
        AccessTokenErrorType::InvalidRequest => "invalid_request",
        AccessTokenErrorType::InvalidGrant => "invalid_grant",
        AccessTokenErrorType::UnauthorizedClient => "unauthorized_client",
        AccessTokenErrorType::UnsupportedGrantType => "unsupported_grant_type",
        AccessTokenErrorType::InvalidScope => "invalid_scope",
    };
    OAuthError::new(kind, "the request was rejected")
}

/// The authorization_code flow over the code as read now (`Store::redeem_code` re-checks it when it commits), and
/// the sign-in behind the code.
async fn authorization_code(
    s: &AppState,
    client: &ClientAuth,
    params: &Params,
) -> Result<(Outcome, Option<SignIn>), OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let record = s.store.peek_code(&crypto::sha256(code.as_bytes())).await?;
    let mut req = request(client, params);
    if !params.contains("redirect_uri") {
        // RFC 6749 §4.1.3: required only if the authorization request included it.
        match &record {
            Some(c) if !c.grant.redirect_uri_sent => {
                req.redirect_fallback = Some(c.grant.redirect_uri.clone())
            }
            Some(_) => return Err(OAuthError::invalid_request("redirect_uri is required")),
            None => return Err(OAuthError::invalid_grant("unknown authorization code")),
        }
    }
    let sign_in = record.as_ref().map(|c| SignIn::of_code(&c.grant));
    let mut backend = Backend::new(s, &client.app);
    backend.code = record;
    let flow = accesstoken::access_token(&mut backend, &req)
        .map(drop)
        .map_err(|mut e| oxide_error(e.description(), client.used_basic));
    Ok((backend.finish(flow), sign_in))
}

/// The refresh_token flow over the refresh token as read now (`Store::rotate_refresh` re-checks it), and the
/// sign-in its family recorded when its grant has `openid`.
async fn refresh_token(
    s: &AppState,
    client: &ClientAuth,
    params: &Params,
) -> Result<(Outcome, Option<SignIn>), OAuthError> {
    let Some(token) = params.get("refresh_token") else {
        return Err(OAuthError::invalid_request("refresh_token is required"));
    };
    let req = request(client, params);
    let mut backend = Backend::new(s, &client.app);
    backend.refresh_token = s
        .store
        .token_record(&crypto::sha256(token.as_bytes()))
        .await?;
    let jwt = client.app.oidc.access_token_format == AccessTokenFormat::Jwt;
    let sign_in = match &backend.refresh_token {
        Some(rec) => family_sign_in(s, rec, jwt).await?,
        None => None,
    };
    if let Some(sign_in) = &sign_in {
        // A JWT access token carries the grant's sign-in (RFC 9068 §2.2.1), refreshed or not.
        backend.auth_time = Some(sign_in.auth_time);
        backend.amr = sign_in.amr.clone();
    }
    let flow = refresh::refresh(&mut backend, &req)
        .map(drop)
        .map_err(|e| match e {
            refresh::Error::Invalid(mut d) => oxide_error(Some(d.description()), client.used_basic),
            refresh::Error::Unauthorized(..) => OAuthError::invalid_client(client.used_basic),
            refresh::Error::Primitive => OAuthError::server_error(),
        });
    Ok((backend.finish(flow), sign_in))
}

/// The sign-in of a refresh token's family, read only when something needs it: an ID token (the grant has
/// `openid`; a narrowed refresh can only drop scopes, so a grant without it never needs one) or a JWT access token
/// (`jwt`: it carries `auth_time` and `amr`).
async fn family_sign_in(
    s: &AppState,
    token: &TokenRecord,
    jwt: bool,
) -> Result<Option<SignIn>, OAuthError> {
    let Lineage::Family(id) = token.lineage else {
        return Ok(None);
    };
    if !jwt && !id_token::requested(&token.scope) {
        return Ok(None);
    }
    let family = s.store.family(&id).await?;
    Ok(family.and_then(|f| SignIn::of_family(token, &f)))
}

fn credentials(s: &AppState, client: &ClientAuth, params: &Params) -> Result<Outcome, OAuthError> {
    if client.app.client_type == ClientType::Public {
        return Err(OAuthError::new(
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let req = request(client, params);
    let mut backend = Backend::new(s, &client.app);
    backend.allow_refresh = false;
    let mut ep = CredentialsEndpoint(ClientIssuer(&mut backend));
    let flow = client_credentials::client_credentials(&mut ep, &req)
        .and_then(|p| p.issue(&mut ep, client.app.client_id.clone(), false))
        .map(drop)
        .map_err(|mut e| match &mut e {
            client_credentials::Error::Ignore => {
                OAuthError::new("invalid_scope", "the request was rejected")
            }
            other => oxide_error(other.description(), client.used_basic),
        });
    Ok(backend.finish(flow))
}
