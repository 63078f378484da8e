//! Rocket.Chat's error bodies: the one table from domain [`Error`] to RC's wire format.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::Error;

/// A domain error on an RC route, with the RC method name that RC puts in `details`.
pub struct RcError {
    pub err: Error,
    pub method: Option<&'static str>,
}

impl From<Error> for RcError {
    fn from(err: Error) -> Self {
        Self { err, method: None }
    }
}

/// Attaches RC's method name (`addOAuthApp`, ...) to an error.
pub trait InMethod<T> {
    fn in_method(self, method: &'static str) -> Result<T, RcError>;
}

impl<T> InMethod<T> for Result<T, Error> {
    fn in_method(self, method: &'static str) -> Result<T, RcError> {
        self.map_err(|err| RcError {
            err,
            method: Some(method),
        })
    }
}

/// RC's error body: every failure of this table has this shape. The fields are in sorted order, the order these
/// bodies have always been written in.
#[derive(Serialize, ToSchema)]
pub struct RcFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
    /// The reason, ending in ` [<errorType>]` when there is an `errorType`.
    error: String,
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    error_type: Option<String>,
    /// The 401 of a route that needs a login: the same text as `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    /// The 401 of a route that needs a login: `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// Always false.
    success: bool,
}

impl RcFailure {
    fn new(error: String) -> Self {
        Self {
            details: None,
            error,
            error_type: None,
            message: None,
            status: None,
            success: false,
        }
    }

    /// `API.v1.failure`'s body with an `errorType`.
    fn typed(reason: &str, error_type: &str, details: Option<Value>) -> Self {
        Self {
            details,
            error_type: Some(error_type.to_owned()),
            ..Self::new(format!("{reason} [{error_type}]"))
        }
    }
}

/// RC's `API.v1.failure`: `{"success":false,"error":"<reason> [<type>]","errorType":"<type>"}` + details.
pub fn failure(reason: &str, error_type: &str, details: Option<Value>) -> Response {
    let body = RcFailure::typed(reason, error_type, details);
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// RC's schema-validation failure (`invalid-params`, ajv-style reason).
pub fn invalid_params(reason: &str) -> Response {
    failure(reason, "invalid-params", None)
}

/// RC's plain failure without an errorType, e.g. `{"success":false,"error":"OAuth app not found."}`.
pub fn plain_failure(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(RcFailure::new(message.to_owned())),
    )
        .into_response()
}

pub fn unauthorized() -> Response {
    let m = "You must be logged in to do this.";
    (
        StatusCode::UNAUTHORIZED,
        Json(RcFailure {
            message: Some(m),
            status: Some("error"),
            ..RcFailure::new(m.to_owned())
        }),
    )
        .into_response()
}

pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(RcFailure::typed(
            "User does not have the permissions required for this action",
            "error-unauthorized",
            None,
        )),
    )
        .into_response()
}

pub fn too_many_requests(
    limit: u32,
    remaining: u32,
    reset_at_ms: i64,
    retry_after_ms: i64,
) -> Response {
    let secs = crate::wire::retry_after_secs(retry_after_ms);
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(RcFailure::typed(
            &format!("Error, too many requests. Please slow down. You must wait {secs} seconds before trying this endpoint again."),
            "error-too-many-requests",
            Some(json!({"timeToReset": retry_after_ms, "seconds": secs})),
        )),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", limit.into());
    h.insert("x-ratelimit-remaining", remaining.into());
    h.insert("x-ratelimit-reset", HeaderValue::from(reset_at_ms));
    h.insert("retry-after", HeaderValue::from(secs));
    r
}

pub fn payload_too_large() -> Response {
    let mut r = failure("Request entity too large", "error-payload-too-large", None);
    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    r
}

pub fn internal() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(RcFailure::typed(
            "Internal server error",
            "error-internal",
            None,
        )),
    )
        .into_response()
}

impl IntoResponse for RcError {
    fn into_response(self) -> Response {
        let details = |extra: Value| {
            let mut d = json!({});
            if let Some(m) = self.method {
                d["method"] = json!(m);
            }
            if let (Some(obj), Value::Object(e)) = (d.as_object_mut(), extra) {
                obj.extend(e);
            }
            Some(d)
        };
        match &self.err {
            Error::Invalid { field, reason } => {
                let (text, kind) = match *field {
                    "name" => ("Invalid name".to_owned(), "error-invalid-name"),
                    "redirectUri" => (
                        "Invalid redirectUri".to_owned(),
                        "error-invalid-redirectUri",
                    ),
                    "username" => (reason.clone(), "error-input-is-not-a-valid-field"),
                    "email" => (reason.clone(), "error-invalid-email"),
                    "password" => (
                        format!("Invalid password: {reason}"),
                        "error-invalid-password",
                    ),
                    "userId" | "appId" => (reason.clone(), "error-invalid-params"),
                    _ => ("Invalid arguments".to_owned(), "error-invalid-arguments"),
                };
                failure(
                    &text,
                    kind,
                    details(json!({"field": field, "reason": reason})),
                )
            }
            Error::NotFound("app") => failure(
                "Application not found",
                "error-application-not-found",
                details(json!({})),
            ),
            Error::NotFound("user") => failure(
                "The required \"userId\" or \"username\" param provided does not match any users",
                "error-invalid-user",
                details(json!({})),
            ),
            Error::NotFound(what) => failure(
                &format!("{what} not found"),
                "error-not-found",
                details(json!({})),
            ),
            Error::Conflict { field, value } => failure(
                &format!("{value} is already in use :("),
                "error-field-unavailable",
                details(json!({"field": field})),
            ),
            Error::NotAllowed(why) => failure(why, "error-action-not-allowed", details(json!({}))),
            Error::Unauthorized => unauthorized(),
            Error::Forbidden => forbidden(),
            Error::RateLimited {
                limit,
                remaining,
                reset_at_ms,
                retry_after_ms,
            } => too_many_requests(*limit, *remaining, *reset_at_ms, *retry_after_ms),
            Error::Busy => {
                let mut r = failure("Server busy, retry shortly", "error-server-busy", None);
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                r.headers_mut().insert("retry-after", HeaderValue::from(1));
                r
            }
            Error::Unavailable => {
                let mut r = failure(
                    "Storage unavailable, retry later",
                    "error-storage-unavailable",
                    None,
                );
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                r
            }
            Error::Internal(_) => internal(),
        }
    }
}
