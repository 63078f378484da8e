//! Locoia's connector API: `Authorization: Bearer` (a login `authToken` or a Latchkey access token), JSON bodies,
//! and Locoia's error body `{"error","message"}` rendered from the domain [`Error`] by the one table below.

pub mod custom_auth;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::core::session::{self, Credential};
use crate::error::Error;
use crate::model::{Permission, User};
use crate::state::AppState;
use crate::wire::{read_body, BodyError, Routes};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(
            Method::PUT,
            "/v1/connectors/{connector_id}/custom_auth",
            custom_auth::put,
        )
        .route(
            Method::GET,
            "/v1/connectors/{connector_id}/custom_auth",
            custom_auth::get,
        )
}

/// A domain error on a Locoia route.
pub struct LocoiaError(pub Error);

impl From<Error> for LocoiaError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// Locoia's error body.
#[derive(Serialize, ToSchema)]
pub struct LocoiaErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// `{"error": code, "message": text}` with `status`.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = LocoiaErrorBody {
        error: code,
        message,
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for LocoiaError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::Invalid { field, reason } => {
                let message = match field {
                    "body" => reason,
                    _ => format!("{field}: {reason}"),
                };
                error_body(StatusCode::BAD_REQUEST, "invalid_request", &message)
            }
            Error::Conflict { field, value } => error_body(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("{field} {value} is already in use"),
            ),
            Error::NotAllowed(why) => error_body(StatusCode::BAD_REQUEST, "invalid_request", why),
            Error::NotFound(what) => {
                let what = if what == "provider" {
                    "connector"
                } else {
                    what
                };
                error_body(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("{what} not found"),
                )
            }
            Error::Unauthorized => {
                let mut r = error_body(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "a valid bearer token is required",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Error::Forbidden => error_body(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the add-oauth-service permission is required",
            ),
            Error::RateLimited { retry_after_ms, .. } => {
                let mut r = error_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "too many requests, slow down",
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::wire::retry_after_secs(retry_after_ms)),
                );
                r
            }
            Error::Busy => {
                let mut r = error_body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_busy",
                    "server busy, retry shortly",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
                r
            }
            Error::Unavailable => error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage unavailable, retry later",
            ),
            Error::Internal(_) => error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            ),
        }
    }
}

/// The caller of a Locoia route: a bearer token (a login token, or an access token granted `latchkey:api`) that
/// resolves to an active user holding `add-oauth-service`.
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(Some(token)) = crate::wire::bearer(&parts.headers) else {
            return Err(LocoiaError(Error::Unauthorized).into_response());
        };
        // A login authToken first (a cheap digest lookup), then a Latchkey access token.
        let (user, credential) = match session::authenticate_token(state, token) {
            Ok(u) => (u, Credential::LoginToken),
            Err(Error::Unauthorized) => session::authenticate_bearer(state, token)
                .map_err(|e| LocoiaError(e).into_response())?,
            Err(e) => return Err(LocoiaError(e).into_response()),
        };
        if !credential.admits_api() {
            return Err(without_api_scope());
        }
        if !user.can(Permission::AddOauthService) {
            return Err(LocoiaError(Error::Forbidden).into_response());
        }
        Ok(Admin(user))
    }
}

/// An access token not granted `latchkey:api`: Locoia's 401, as for no valid token, saying which scope is missing.
fn without_api_scope() -> Response {
    let mut r = error_body(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this access token was not granted the latchkey:api scope",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// A JSON body with Locoia's errors for oversized (413) and malformed (400) input.
pub struct LocoiaJson(pub Value);

impl FromRequest<AppState> for LocoiaJson {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let bytes = read_body(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            BodyError::Unreadable => error_body(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "could not read the request body",
            ),
        })?;
        serde_json::from_slice(&bytes).map(LocoiaJson).map_err(|e| {
            error_body(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body must be valid JSON ({e})"),
            )
        })
    }
}
