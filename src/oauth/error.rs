//! RFC 6749 §5.2 error responses for the token, introspection and revocation endpoints: the oauth dialect's one
//! error table. Every response of those endpoints carries `Cache-Control: no-store` and `Pragma: no-cache`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Entity, Error};

#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: Option<String>,
    /// `WWW-Authenticate` challenge (401 answers).
    pub challenge: Option<&'static str>,
    pub retry_after_secs: Option<i64>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: Some(description.into()),
            challenge: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }

    /// 401 `invalid_client`; a `Basic` challenge only when the client tried Basic (RFC 6749 §5.2).
    pub fn invalid_client(used_basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: Some("client authentication failed".into()),
            challenge: used_basic.then_some("Basic realm=\"latchkey\""),
            retry_after_secs: None,
        }
    }

    pub fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..Self::new("server_error", "internal error")
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        match e {
            Error::RateLimited { retry_after_ms, .. } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after_secs: Some(crate::wire::retry_after_secs(retry_after_ms)),
                ..Self::new("slow_down", "too many failed attempts; retry later")
            },
            Error::Busy => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after_secs: Some(1),
                ..Self::new("temporarily_unavailable", "server busy; retry shortly")
            },
            Error::Unavailable => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..Self::new(
                    "temporarily_unavailable",
                    "storage unavailable; retry later",
                )
            },
            Error::Unauthorized => Self::invalid_client(false),
            Error::Invalid { reason, .. } => Self::invalid_request(reason),
            Error::NotFound(what) => {
                Self::invalid_grant(format!("{} not found", entity_name(what)))
            }
            Error::Conflict { .. }
            | Error::NotAllowed(_)
            | Error::Forbidden
            | Error::Internal(_) => Self::server_error(),
        }
    }
}

/// The name of a missing record in an `invalid_grant` description (the grant's app or user no longer exists).
pub fn entity_name(e: Entity) -> &'static str {
    match e {
        Entity::App => "app",
        Entity::User => "user",
        Entity::Link => "link",
        Entity::Provider => "provider",
        Entity::Setting => "setting",
        Entity::Credential => "credential",
        Entity::Admin => "admin user",
        Entity::BackupCode => "backup code",
        Entity::TotpEnrolment => "pending TOTP enrolment",
    }
}

/// Adds the no-store headers RFC 6749 §5.1 requires on token responses.
pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The JSON body of an [`OAuthError`] (RFC 6749 §5.2; RFC 6750 §3.1 at userinfo).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody<'a> {
    pub error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'a str>,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error,
            error_description: self.description.as_deref(),
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Some(s) = self.retry_after_secs {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        no_store(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_has_a_name_in_invalid_grant() {
        let want = [
            (Entity::App, "app"),
            (Entity::User, "user"),
            (Entity::Link, "link"),
            (Entity::Provider, "provider"),
            (Entity::Setting, "setting"),
            (Entity::Credential, "credential"),
            (Entity::Admin, "admin user"),
            (Entity::BackupCode, "backup code"),
            (Entity::TotpEnrolment, "pending TOTP enrolment"),
        ];
        assert_eq!(want.len(), Entity::ALL.len());
        for (e, name) in want {
            assert_eq!(entity_name(e), name, "{e:?}");
        }
        let e = OAuthError::from(Error::NotFound(Entity::App));
        assert_eq!(
            (e.error, e.description.as_deref()),
            ("invalid_grant", Some("app not found"))
        );
    }
}
