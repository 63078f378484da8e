//! Locoia's connector API: `Authorization: Bearer` (a login `authToken` or a Latchkey access token), JSON bodies,
//! and Locoia's error body `{"error","message"}`: every failure is a [`LocoiaError`], rendered by the one table below.

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
use crate::core::two_factor::Failure;
use crate::error::{Entity, Error, Field};
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

/// Every failure of a Locoia route.
#[derive(Debug)]
pub enum LocoiaError {
    Domain(Error),
    /// The body is not what the route takes (unreadable, not JSON, or the wrong shape): 400 with this message.
    InvalidRequest(String),
    /// The body is over the limit.
    TooLarge,
    /// An access token not granted `latchkey:api`: Locoia's 401, as for no valid token, saying which scope is
    /// missing.
    WithoutApiScope,
    /// The second factor a change needs is missing or wrong: 403 `totp-required` / `totp-invalid` /
    /// `totp-max-attempts`.
    TwoFactor(Failure),
}

impl From<Error> for LocoiaError {
    fn from(e: Error) -> Self {
        LocoiaError::Domain(e)
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

/// A 401 with the `Bearer` challenge.
fn unauthorized(message: &str) -> Response {
    let mut r = error_body(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

impl IntoResponse for LocoiaError {
    fn into_response(self) -> Response {
        match self {
            LocoiaError::Domain(e) => domain(e),
            LocoiaError::InvalidRequest(message) => {
                error_body(StatusCode::BAD_REQUEST, "invalid_request", &message)
            }
            LocoiaError::TooLarge => error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            LocoiaError::WithoutApiScope => {
                unauthorized("this access token was not granted the latchkey:api scope")
            }
            LocoiaError::TwoFactor(f) => two_factor(f),
        }
    }
}

/// Locoia's name of each field, as its bodies spell it: snake_case, the domain's own spelling
/// ([`Field::as_str`]), except where Locoia names the concept otherwise (a provider is a connector).
pub fn field_name(f: Field) -> &'static str {
    match f {
        Field::Provider => "connector_id",
        Field::ProviderType => "type",
        other => other.as_str(),
    }
}

/// Locoia's name of each kind of record: a provider is a connector.
pub fn entity_name(e: Entity) -> &'static str {
    match e {
        Entity::Provider => "connector",
        Entity::App
        | Entity::User
        | Entity::Link
        | Entity::Setting
        | Entity::Credential
        | Entity::Admin
        | Entity::BackupCode
        | Entity::TotpEnrolment => e.noun(),
    }
}

/// The domain error as Locoia answers it.
fn domain(e: Error) -> Response {
    match e {
        Error::Invalid { field, reason } => error_body(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{}: {reason}", field_name(field)),
        ),
        Error::Conflict { field, value } => error_body(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{} {value} is already in use", field_name(field)),
        ),
        Error::NotAllowed(rule) => error_body(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &rule.to_string(),
        ),
        Error::NotFound(entity) => error_body(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{} not found", entity_name(entity)),
        ),
        Error::Unauthorized => unauthorized("a valid bearer token is required"),
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

/// A second-factor failure as Locoia answers it (403), in its own words.
fn two_factor(f: Failure) -> Response {
    let (error, message) = match f {
        Failure::Required(m) => (
            "totp-required",
            format!(
                "this change needs the second factor: send x-2fa-method: {} and x-2fa-code",
                m.as_str()
            ),
        ),
        Failure::Invalid(m) => (
            "totp-invalid",
            format!("the x-2fa-code is not a valid {} code", m.as_str()),
        ),
        Failure::MaxAttempts(_) => (
            "totp-max-attempts",
            "too many wrong second-factor codes; wait a few minutes".to_owned(),
        ),
        Failure::Other(e) => return domain(e),
        Failure::AlreadyEnabled | Failure::NotEnabled | Failure::NothingPending => {
            return domain(Error::internal("unexpected second-factor failure"))
        }
    };
    error_body(StatusCode::FORBIDDEN, error, &message)
}

/// The caller of a Locoia route: a bearer token (a login token, or an access token granted `latchkey:api`) that
/// resolves to an active user holding `add-oauth-service`.
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = LocoiaError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, LocoiaError> {
        let Ok(Some(token)) = crate::wire::bearer(&parts.headers) else {
            return Err(Error::Unauthorized.into());
        };
        // A login authToken first (a cheap digest lookup), then a Latchkey access token.
        let (user, credential) =
            match session::authenticate_token(&state.store, &state.clock, token).await {
                Ok(u) => (u, Credential::LoginToken),
                Err(Error::Unauthorized) => {
                    session::authenticate_bearer(&state.store, &state.clock, token).await?
                }
                Err(e) => return Err(e.into()),
            };
        if !credential.admits_api() {
            return Err(LocoiaError::WithoutApiScope);
        }
        if !user.can(Permission::AddOauthService) {
            return Err(Error::Forbidden.into());
        }
        Ok(Admin(user))
    }
}

/// A JSON body with Locoia's errors for oversized (413) and malformed (400) input.
pub struct LocoiaJson(pub Value);

impl FromRequest<AppState> for LocoiaJson {
    type Rejection = LocoiaError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, LocoiaError> {
        let bytes = read_body(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => LocoiaError::TooLarge,
            BodyError::Unreadable => {
                LocoiaError::InvalidRequest("could not read the request body".into())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(LocoiaJson)
            .map_err(|e| LocoiaError::InvalidRequest(format!("the body must be valid JSON ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn answer(e: LocoiaError) -> (StatusCode, Value) {
        crate::wire::json_answer(e.into_response()).await
    }

    #[test]
    fn every_field_and_entity_has_locoias_name() {
        let want = [
            (Field::Name, "name"),
            (Field::Username, "username"),
            (Field::Email, "email"),
            (Field::Password, "password"),
            (Field::Roles, "roles"),
            (Field::RedirectUri, "redirect_uri"),
            (Field::ClientType, "client_type"),
            (Field::GrantTypes, "grant_types"),
            (Field::Scopes, "scopes"),
            (Field::ClientId, "client_id"),
            (Field::ClientSecret, "client_secret"),
            (Field::AppId, "app_id"),
            (Field::UserId, "user_id"),
            (Field::Id, "id"),
            (Field::LoginToken, "login_token"),
            (Field::AccountId, "account_id"),
            (Field::Provider, "connector_id"),
            (Field::ProviderType, "type"),
            (Field::SettingValue, "value"),
            (Field::Claims, "claims"),
            (
                Field::IdTokenSignedResponseAlg,
                "id_token_signed_response_alg",
            ),
            (Field::AccessTokenFormat, "access_token_format"),
            (Field::PostLogoutRedirectUris, "post_logout_redirect_uris"),
            (Field::SubjectType, "subject_type"),
            (Field::ExtraClaims, "extra_claims"),
        ];
        assert_eq!(want.len(), Field::ALL.len());
        for (f, name) in want {
            assert_eq!(field_name(f), name, "{f:?}");
        }
        for &e in Entity::ALL {
            let want = if e == Entity::Provider {
                "connector"
            } else {
                e.noun()
            };
            assert_eq!(entity_name(e), want, "{e:?}");
        }
    }

    #[tokio::test]
    async fn domain_errors_name_fields_and_records_as_locoia_does() {
        let e = Error::invalid(Field::ClientId, "must be 1 to 1024 bytes");
        assert_eq!(
            answer(e.into()).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "message": "client_id: must be 1 to 1024 bytes"})
            )
        );
        assert_eq!(
            answer(Error::NotFound(Entity::Provider).into()).await,
            (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": "connector not found"})
            )
        );
        let body = LocoiaError::InvalidRequest("oauth2 is required".into());
        assert_eq!(
            answer(body).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "message": "oauth2 is required"})
            )
        );
    }
}
