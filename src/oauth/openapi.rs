//! OpenAPI documentation of the authorization server's endpoints (form-encoded requests, JSON answers).
#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]`

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::token::TokenResponse;

/// RFC 6749 §5.2 error.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    error: String,
    error_description: Option<String>,
}

/// `application/x-www-form-urlencoded` token request; client credentials via Basic or the body.
#[derive(Serialize, ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenParam {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662; an inactive token is exactly `{"active":false}`.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    token_type: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    sub: Option<String>,
    aud: Option<String>,
    iss: Option<String>,
}

/// OIDC Core §5.4: `sub` always; the rest only as the token's scope grants (`profile`: `preferred_username`,
/// `name`, `updated_at`; `email`: `email`, `email_verified`) and only the claims the user has.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    sub: String,
    preferred_username: Option<String>,
    name: Option<String>,
    updated_at: Option<i64>,
    email: Option<String>,
    email_verified: Option<bool>,
}

#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody), (status = 429, body = OAuthErrorBody)))]
fn token() {}

#[utoipa::path(get, path = "/oauth/token", tag = "oauth",
    responses((status = 400, description = "always `invalid_request`: tokens are issued over POST only", body = OAuthErrorBody)))]
fn token_get() {}

#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
fn introspect() {}

#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or unknown (RFC 7009): `{}`", body = Object), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
fn revoke() {}

#[utoipa::path(method(get, post), path = "/oauth/userinfo", tag = "oauth", security(("bearer" = [])),
    responses((status = 200, body = UserInfo), (status = 401, description = "`WWW-Authenticate: Bearer`, with `error=\"invalid_token\"` and an RFC 6750 JSON error when a token was sent (RFC 6750 §3.1)")))]
fn userinfo() {}

#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata", body = Object)))]
fn metadata() {}

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(paths(token, token_get, introspect, revoke, userinfo, metadata), modifiers(&Bearer))]
pub struct OAuthDoc;
