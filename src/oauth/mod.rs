//! Latchkey's own authorization server and OpenID Provider (RFC 6749 + PKCE, RFC 7662, RFC 7009, RFC 8414,
//! OpenID Connect Core, Discovery and RP-Initiated Logout), built on oxide-auth's
//! flows over the store. The only module that imports `oxide_auth`.

pub mod authorize;
pub mod client_auth;
pub mod error;
pub mod flow;
pub mod id_token;
pub mod id_token_hint;
pub mod introspect;
pub mod jwks;
pub mod jwt_access;
pub mod logout;
pub mod metadata;
pub mod openapi;
pub mod outcome;
pub mod params;
pub mod primitives;
pub mod token;
pub mod userinfo;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::wire::{read_body, BodyError, Routes};
use error::OAuthError;
use params::Params;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            metadata::metadata,
        )
        .route(
            Method::GET,
            "/.well-known/openid-configuration",
            metadata::metadata,
        )
        .route(Method::GET, "/.well-known/jwks.json", jwks::jwks)
        .route(Method::GET, "/oauth/authorize", authorize::authorize_get)
        .route(Method::POST, "/oauth/authorize", authorize::authorize_post)
        .route(Method::POST, "/oauth/token", token::token)
        .route(Method::GET, "/oauth/token", token::token_get)
        .route(Method::POST, "/oauth/introspect", introspect::introspect)
        .route(Method::POST, "/oauth/revoke", introspect::revoke)
        .route(Method::GET, "/oauth/userinfo", userinfo::userinfo)
        .route(Method::POST, "/oauth/userinfo", userinfo::userinfo)
        .route(Method::GET, "/oauth/logout", logout::logout_get)
        .route(Method::POST, "/oauth/logout", logout::logout_post)
}

/// Reads an `application/x-www-form-urlencoded` body (RFC 6749 §4.1.3), refusing other content types and
/// repeated parameters.
pub fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(|e| OAuthError::invalid_request(e.0))
}

/// The raw body of a token, introspection or revocation request. An oversized (413) or unreadable (400) body is
/// answered as an RFC 6749 §5.2 error (`invalid_request`, JSON, no-store), not as axum's plain-text rejection.
pub struct FormBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        read_body(req, state).await.map(FormBody).map_err(|e| {
            match e {
                BodyError::TooLarge => OAuthError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    ..OAuthError::invalid_request("the request body is too large")
                },
                BodyError::Unreadable => {
                    OAuthError::invalid_request("could not read the request body")
                }
            }
            .into_response()
        })
    }
}
