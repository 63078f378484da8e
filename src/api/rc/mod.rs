//! Rocket.Chat's REST dialect: `/api/v1/*` with `X-User-Id` + `X-Auth-Token` (or a Latchkey bearer token), RC's
//! success envelope and its error bodies.

pub mod apps;
pub mod builtin;
pub mod error;
pub mod schema;
pub mod settings;
pub mod two_factor;
pub mod users;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::core::session::{self, Credential};
use crate::error::Error;
use crate::model::{Permission, User};
use crate::state::AppState;
use crate::wire::{read_body, BodyError, Routes};
pub use error::{InMethod, RcError};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(Method::POST, "/api/v1/login", users::login)
        .route(Method::POST, "/api/v1/logout", users::logout)
        .route(Method::GET, "/api/v1/me", users::me)
        .route(Method::POST, "/api/v1/users.create", users::create)
        .route(Method::GET, "/api/v1/users.info", users::info)
        .route(Method::POST, "/api/v1/users.delete", users::delete)
        .route(Method::POST, "/api/v1/users.update", users::update)
        .route(Method::POST, "/api/v1/oauth-apps.create", apps::create)
        .route(Method::GET, "/api/v1/oauth-apps.list", apps::list)
        .route(Method::GET, "/api/v1/oauth-apps.get", apps::get)
        .route(Method::POST, "/api/v1/oauth-apps.update", apps::update)
        .route(Method::POST, "/api/v1/oauth-apps.delete", apps::delete)
        .route(
            Method::POST,
            "/api/v1/oauth-apps.regenerateSecret",
            apps::regenerate_secret,
        )
        .route(
            Method::POST,
            "/api/v1/settings.addCustomOAuth",
            settings::add_custom_oauth,
        )
        .route(
            Method::POST,
            "/api/v1/settings.removeCustomOAuth",
            settings::remove_custom_oauth,
        )
        .route(
            Method::POST,
            "/api/v1/settings.refreshOAuthServices",
            settings::refresh_oauth_services,
        )
        .route(Method::GET, "/api/v1/settings/{_id}", settings::get_setting)
        .route(
            Method::POST,
            "/api/v1/settings/{_id}",
            settings::set_setting,
        )
        .route(
            Method::GET,
            "/api/v1/settings.oauth",
            settings::settings_oauth,
        )
        .route(
            Method::GET,
            "/api/v1/service.configurations",
            settings::service_configurations,
        )
        .route(
            Method::POST,
            "/api/v1/users.2fa.enableTOTP",
            two_factor::enable_totp,
        )
        .route(
            Method::POST,
            "/api/v1/users.2fa.validateTempToken",
            two_factor::validate_temp_token,
        )
        .route(
            Method::POST,
            "/api/v1/users.2fa.disableTOTP",
            two_factor::disable_totp,
        )
}

/// RC's `API.v1.success` envelope: an object body with `"success": true` merged in. `/openapi.json` documents
/// each answer as `Success<T>` of the type its handler serializes.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    #[serde(flatten)]
    pub body: T,
    pub success: bool,
}

/// The body of an answer that carries nothing but `"success": true`.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// Answers `body` (an object) in RC's success envelope. It goes through a [`Value`], whose map keeps keys sorted:
/// RC answers have always been written in that order.
pub fn success<T: Serialize>(body: T) -> Response {
    match serde_json::to_value(Success {
        body,
        success: true,
    }) {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(_) => error::internal(),
    }
}

/// The authenticated caller of an RC route: an RC login token, or an OAuth access token granted `latchkey:api`.
/// This extractor is where that rule is enforced; only `/api/v1/me` takes the laxer [`SelfReader`].
pub struct Caller {
    pub user: User,
    /// The login token used, when the caller used `X-Auth-Token` (needed by `logout`).
    pub login_token: Option<String>,
}

impl Caller {
    pub fn require(&self, p: Permission) -> Result<(), RcError> {
        if self.user.can(p) {
            Ok(())
        } else {
            Err(Error::Forbidden.into())
        }
    }

    /// Resolves `X-User-Id` + `X-Auth-Token`, else `Authorization: Bearer <access token>`, to the caller and the
    /// kind of credential it used.
    async fn authenticate(
        parts: &Parts,
        state: &AppState,
    ) -> crate::error::Result<(Self, Credential)> {
        let h = &parts.headers;
        let header = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .filter(|s| !s.is_empty())
        };
        if let (Some(uid), Some(tok)) = (header("x-user-id"), header("x-auth-token")) {
            let user = session::authenticate(&state.store, &state.clock, uid, tok).await?;
            let login_token = Some(tok.to_owned());
            return Ok((Caller { user, login_token }, Credential::LoginToken));
        }
        if let Ok(Some(tok)) = crate::wire::bearer(h) {
            let (user, credential) =
                session::authenticate_bearer(&state.store, &state.clock, tok).await?;
            let login_token = None;
            return Ok((Caller { user, login_token }, credential));
        }
        Err(Error::Unauthorized)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = RcError;

    /// An access token without `latchkey:api` is no credential here: RC's 401, as if none had been sent.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Caller::authenticate(parts, state).await? {
            (caller, credential) if credential.admits_api() => Ok(caller),
            _ => Err(Error::Unauthorized.into()),
        }
    }
}

/// The caller of `/api/v1/me`: any credential of a user, including an access token granted only
/// `openid`/`profile`, since reading one's own user is what those scopes already allow through `/oauth/userinfo`.
pub struct SelfReader(pub Caller);

impl FromRequestParts<AppState> for SelfReader {
    type Rejection = RcError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Caller::authenticate(parts, state)
            .await
            .map(|(caller, _)| SelfReader(caller))
            .map_err(RcError::from)
    }
}

/// A JSON request body, parsed leniently as RC's express body parser does (empty → `{}`), with RC's errors for
/// oversized and malformed bodies.
pub struct RcBody(pub Value);

impl FromRequest<AppState> for RcBody {
    type Rejection = RcError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json_or_absent = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none_or(|ct| is_json(ct.as_bytes()));
        let bytes = read_body(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => RcError::PayloadTooLarge,
            BodyError::Unreadable => {
                RcError::InvalidParams("could not read the request body".into())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(RcBody(json!({})));
        }
        // RC's body parser reads only JSON: a JSON text sent as `text/plain` (or a form) is not a body it accepts.
        if !json_or_absent {
            return Err(RcError::InvalidParams(
                "the request body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(RcBody)
            .map_err(|e| RcError::InvalidParams(format!("body must be valid JSON ({e})")))
    }
}

/// `application/json` or a `+json` type, any parameters (`; charset=utf-8`), case-insensitive.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii()
        .to_ascii_lowercase();
    essence == b"application/json"
        || (essence.starts_with(b"application/") && essence.ends_with(b"+json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types() {
        for ct in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(super::is_json(ct.as_bytes()), "{ct}");
        }
        for ct in [
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "",
            "application/jsonx",
        ] {
            assert!(!super::is_json(ct.as_bytes()), "{ct}");
        }
    }
}
