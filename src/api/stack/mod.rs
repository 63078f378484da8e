//! Stack Auth's REST dialect (docs/endpoints.md#links): the routes, the `X-Stack-*` access-type headers and the
//! caller they name. Stack's errors and the one table that renders them are in [`error`].

pub mod connected;
pub mod error;
pub mod links;
pub mod schema;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};

use crate::core::session;
use crate::core::stack_keys::{self, Key};
use crate::error::Error;
use crate::model::User;
use crate::state::AppState;
use crate::wire::Routes;
pub use error::{field_name, known, status_error, KnownErrorBody, StackError};
pub use schema::{check_body, Field, StackBody, Ty};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(Method::POST, "/api/v1/oauth-providers", links::create)
        .route(Method::GET, "/api/v1/oauth-providers", links::list)
        .route(
            Method::GET,
            "/api/v1/oauth-providers/{user_id}/{provider_id}",
            links::read,
        )
        .route(
            Method::PATCH,
            "/api/v1/oauth-providers/{user_id}/{provider_id}",
            links::update,
        )
        .route(
            Method::DELETE,
            "/api/v1/oauth-providers/{user_id}/{provider_id}",
            links::delete,
        )
        .route(
            Method::POST,
            "/api/v1/connected-accounts/{user_id}/{provider_id}/access-token",
            connected::access_token,
        )
}

/// `X-Stack-Access-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessType {
    Client,
    Server,
    Admin,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::Client => "client",
            AccessType::Server => "server",
            AccessType::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(AccessType::Client),
            "server" => Some(AccessType::Server),
            "admin" => Some(AccessType::Admin),
            _ => None,
        }
    }
}

/// The caller of a Stack route: its access type, its user session if it sent one, and the request line for
/// schema messages.
pub struct StackAuth {
    pub access: AccessType,
    pub user: Option<User>,
    method: Method,
    path: String,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl FromRequestParts<AppState> for StackAuth {
    type Rejection = StackError;

    /// In order: the access type, the project id (this server has exactly one, so it is checked before the keys),
    /// the key the access type needs, then the user session. A publishable client key is ignored: client access is
    /// a user session (a single-project server has no client key).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StackError> {
        let h = &parts.headers;
        let raw = header_str(h, "x-stack-access-type").ok_or(StackError::AccessTypeRequired)?;
        let access =
            AccessType::parse(raw).ok_or_else(|| StackError::InvalidAccessType(raw.to_owned()))?;
        let project = header_str(h, "x-stack-project-id")
            .ok_or(StackError::AccessTypeWithoutProjectId(access))?;
        match stack_keys::project_id(&state.store, &state.config.stack).await? {
            Some(id) if crate::crypto::ct_eq(id.as_bytes(), project.as_bytes()) => {}
            _ => return Err(StackError::ProjectNotFound(project.to_owned())),
        }
        let key_check = async |name: &str, key: Key, missing: StackError, wrong: StackError| {
            let presented = header_str(h, name).ok_or(missing)?;
            if stack_keys::key_matches(&state.store, &state.config.stack, key, presented).await? {
                Ok(())
            } else {
                Err(wrong)
            }
        };
        match access {
            AccessType::Client => {}
            AccessType::Server => {
                key_check(
                    "x-stack-secret-server-key",
                    Key::Server,
                    StackError::ServerAuthenticationRequired,
                    StackError::InvalidSecretServerKey(project.to_owned()),
                )
                .await?
            }
            AccessType::Admin => {
                key_check(
                    "x-stack-super-secret-admin-key",
                    Key::Admin,
                    StackError::AdminAuthenticationRequired,
                    StackError::InvalidSuperSecretAdminKey(project.to_owned()),
                )
                .await?
            }
        }
        let token = match header_str(h, "x-stack-access-token") {
            Some(t) => Some(t),
            None => crate::wire::bearer(h).map_err(|_| StackError::InvalidAccessToken)?,
        };
        let user = match token {
            Some(t) => Some(user_session(state, t).await?),
            None => None,
        };
        Ok(StackAuth {
            access,
            user,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// The user of a session token: a Latchkey access token granted `latchkey:api`, under any access type (with
/// `openid`/`profile` alone an app may read its user through `/oauth/userinfo`, not manage its links).
async fn user_session(state: &AppState, token: &str) -> Result<User, StackError> {
    match session::authenticate_bearer(&state.store, &state.clock, token).await {
        Ok((user, credential)) if credential.admits_api() => Ok(user),
        Ok(_) => Err(StackError::AccessTokenWithoutApiScope),
        Err(Error::Unauthorized) => Err(StackError::InvalidAccessToken),
        Err(other) => Err(StackError::Domain(other)),
    }
}

impl StackAuth {
    /// `INSUFFICIENT_ACCESS_TYPE` unless this access type is one of `allowed`.
    pub fn require(&self, allowed: &'static [AccessType]) -> Result<(), StackError> {
        if allowed.contains(&self.access) {
            Ok(())
        } else {
            Err(StackError::InsufficientAccessType {
                actual: self.access,
                allowed,
            })
        }
    }

    /// Resolves Stack's `me` to the session's user.
    pub fn resolve_user(&self, user_id: &str) -> Result<String, StackError> {
        if user_id == "me" {
            match &self.user {
                Some(u) => Ok(u.id.clone()),
                None => Err(StackError::CannotGetOwnUserWithoutUser),
            }
        } else {
            Ok(user_id.to_owned())
        }
    }

    /// A client acts only on its own user: no session → `CANNOT_GET_OWN_USER_WITHOUT_USER`; another user (or
    /// none named) → 403, as Stack's `StatusError` ("Client can only {verb} OAuth providers for their own user.").
    pub fn own(&self, user_id: Option<&str>, verb: &str) -> Result<(), StackError> {
        if self.access != AccessType::Client {
            return Ok(());
        }
        let me = self
            .user
            .as_ref()
            .ok_or(StackError::CannotGetOwnUserWithoutUser)?;
        if user_id == Some(me.id.as_str()) {
            Ok(())
        } else {
            Err(StackError::Status(
                StatusCode::FORBIDDEN,
                format!("Client can only {verb} OAuth providers for their own user."),
            ))
        }
    }

    /// `SCHEMA_ERROR` listing `problems` under this request's line, as Stack words it.
    pub fn schema_error(&self, problems: &[String]) -> StackError {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        StackError::Schema(format!(
            "Request validation failed on {} {}:\n{}",
            self.method,
            self.path,
            lines.join("\n")
        ))
    }
}
