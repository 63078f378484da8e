//! OpenAPI documentation of the authorization server's endpoints (form-encoded requests, JSON answers). The
//! answers are the types the handlers serialize; the forms are read by hand (`oauth::read_form`), field by field,
//! so their fields are listed here.
#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]`, the form types only a schema

use utoipa::{OpenApi, ToSchema};

use super::error::OAuthErrorBody;
use super::introspect::Introspection;
use super::metadata::Metadata;
use super::token::TokenResponse;

/// `application/x-www-form-urlencoded` token request; client credentials via Basic or the body.
#[derive(ToSchema)]
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

/// Userinfo's POST body, when the token is not in the `Authorization` header.
#[derive(ToSchema)]
pub struct UserinfoForm {
    access_token: String,
}

/// The form of introspection and revocation; client credentials via Basic or the body.
#[derive(ToSchema)]
pub struct TokenParam {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The answer's schema (OIDC Core §5.1): `sub` always, and the claims the token's scope grants (`profile`,
/// `email`, `address`, `phone`) that the user has, plus the custom claims the client is mapped
/// (`extraClaims`). A claim the user lacks is left out, never null. The handler answers `core::claims`' map;
/// this type only documents it.
#[derive(ToSchema)]
pub struct UserInfo {
    /// The user id, or a pairwise subject for a client with `subjectType: pairwise`.
    sub: String,
    /// With `profile`.
    name: Option<String>,
    /// With `profile`.
    preferred_username: Option<String>,
    /// With `profile`: given_name, family_name, middle_name, nickname, picture, website, gender, birthdate,
    /// zoneinfo, locale alike.
    given_name: Option<String>,
    /// With `profile`: seconds since the epoch.
    updated_at: Option<i64>,
    /// With `email`.
    email: Option<String>,
    /// With `email`.
    email_verified: Option<bool>,
    /// With `address`: formatted, street_address, locality, region, postal_code, country.
    #[schema(value_type = Option<Object>)]
    address: Option<serde_json::Value>,
    /// With `phone`.
    phone_number: Option<String>,
    /// With `phone`.
    phone_number_verified: Option<bool>,
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
    request_body(content = UserinfoForm, content_type = "application/x-www-form-urlencoded", description = "POST only, instead of the `Authorization` header (RFC 6750 §2.2)"),
    responses((status = 200, body = UserInfo), (status = 400, description = "`invalid_request`: the token in both the header and the body", body = OAuthErrorBody), (status = 401, description = "`WWW-Authenticate: Bearer`, with `error=\"invalid_token\"` and an RFC 6750 JSON error when a token was sent (RFC 6750 §3.1)"), (status = 403, description = "`insufficient_scope`: the token was not granted `openid`", body = OAuthErrorBody)))]
fn userinfo() {}

#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata", body = Metadata)))]
fn metadata() {}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth",
    responses((status = 200, description = "OpenID Connect Discovery 1.0 metadata (the same document)", body = Metadata)))]
fn discovery() {}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth",
    responses(
        (status = 200, description = "RFC 7517 JWKS: every published signing key", content_type = "application/json"),
        (status = 304, description = "Not modified: the `If-None-Match` ETag is current")))]
fn jwks() {}

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
#[openapi(paths(token, token_get, introspect, revoke, userinfo, metadata, discovery, jwks), modifiers(&Bearer))]
pub struct OAuthDoc;
