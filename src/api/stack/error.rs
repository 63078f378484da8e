//! Stack's errors and the one table that renders them, for every Stack route.
//!
//! A known error is Stack's `KnownError`: status, body `{"code","details"?,"error"}` (pretty-printed, in that key
//! order, as Stack's `JSON.stringify(…, undefined, 2)` writes it) and header `X-Stack-Known-Error: <CODE>`, so
//! Stack's SDKs turn it back into the same typed error. Failures Stack has no code for (a client touching another
//! user, a body over the limit, a busy or failing server) are Stack's plain `StatusError`: a `text/plain` body and
//! no known-error header, which the SDKs surface as an HTTP error, as they would from Stack.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::AccessType;
use crate::error::{self, Entity, Error};

const DOCS: &str = "For more information, see the docs on REST API authentication: https://docs.stack-auth.com/rest-api/overview#authentication";

/// Every failure of a Stack route. The variants with a code are Stack's known errors (docs/endpoints.md#links lists their
/// statuses); `Status` is a plain Stack `StatusError`; `Domain` is rendered by the table for what the core says.
#[derive(Debug)]
pub enum StackError {
    AccessTypeRequired,
    InvalidAccessType(String),
    AccessTypeWithoutProjectId(AccessType),
    ProjectNotFound(String),
    ServerAuthenticationRequired,
    InvalidSecretServerKey(String),
    AdminAuthenticationRequired,
    InvalidSuperSecretAdminKey(String),
    InsufficientAccessType {
        actual: AccessType,
        allowed: &'static [AccessType],
    },
    CannotGetOwnUserWithoutUser,
    /// The access token is unknown, expired or revoked (Stack's `INVALID_ACCESS_TOKEN` family).
    InvalidAccessToken,
    /// A live access token not granted `latchkey:api`: no user session here (`INVALID_ACCESS_TOKEN` too).
    AccessTokenWithoutApiScope,
    /// Request validation failed: `Request validation failed on METHOD PATH:` and one line per problem.
    Schema(String),
    BodyParsing(&'static str),
    /// The upstream account already signs in (to anyone): Stack's known error.
    AccountIdAlreadyUsedForSignIn,
    /// The user already signs in through this provider: Stack's text, a plain-text 400.
    SignInTypeAlreadyUsed,
    /// The user already has a link to this upstream account through this provider: Stack's text, a plain-text 400.
    LinkRepeated,
    /// The provider is unknown, removed or disabled (at creation), or a link's provider is gone and its type is not
    /// one of Stack's standard ones (on read and update): Stack's text, a plain-text 404.
    ProviderNotConfigured(String),
    /// No link with this id under this user: Stack's text, a plain-text 404.
    LinkNotFound {
        user_id: String,
        link_id: String,
    },
    /// No link of the user through the provider a path names (Stack's text, a plain-text 404).
    NoLinkForProvider,
    UserNotFound,
    /// Connected accounts: the provider is missing or disabled.
    ProviderNotFoundOrNotEnabled,
    /// Connected accounts: the user has no link through the provider that allows connected accounts.
    ConnectionNotConnectedToUser,
    /// Connected accounts: no usable token with the requested scope (none stored, scopes beyond the grant, an
    /// expired token without a refresh token, or a refresh token the upstream no longer accepts).
    ConnectionDoesNotHaveRequiredScope,
    /// Connected accounts: the upstream failed to answer the refresh.
    ProviderTemporarilyUnavailable,
    /// A Stack `StatusError`: `text/plain` body, no known-error header.
    Status(StatusCode, String),
    Domain(Error),
}

impl From<Error> for StackError {
    fn from(e: Error) -> Self {
        StackError::Domain(e)
    }
}

/// Stack's known error, in `KnownError.toDescriptiveJson()`'s key order; the same code is in the
/// `X-Stack-Known-Error` header.
#[derive(Serialize, ToSchema)]
pub struct KnownErrorBody<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
    error: &'a str,
}

/// A Stack known error: status, pretty JSON body, `X-Stack-Known-Error`.
pub fn known(status: StatusCode, code: &str, message: &str, details: Option<Value>) -> Response {
    let body = serde_json::to_string_pretty(&KnownErrorBody {
        code,
        details,
        error: message,
    })
    .unwrap_or_default();
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-stack-known-error", v);
    }
    r
}

/// A Stack `StatusError`: the message as a `text/plain` body.
pub fn status_error(status: StatusCode, message: &str) -> Response {
    let mut r = (status, message.to_owned()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

impl IntoResponse for StackError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        match self {
            StackError::AccessTypeRequired => known(
                S::BAD_REQUEST,
                "ACCESS_TYPE_REQUIRED",
                &format!("You must specify an access level for this Stack project. Make sure project API keys are provided (eg. x-stack-publishable-client-key) and you set the x-stack-access-type header to 'client', 'server', or 'admin'.\n\n{DOCS}"),
                None,
            ),
            StackError::InvalidAccessType(t) => known(
                S::BAD_REQUEST,
                "INVALID_ACCESS_TYPE",
                &format!("The x-stack-access-type header must be 'client', 'server', or 'admin', but was '{t}'."),
                None,
            ),
            StackError::AccessTypeWithoutProjectId(t) => known(
                S::BAD_REQUEST,
                "ACCESS_TYPE_WITHOUT_PROJECT_ID",
                &format!("The x-stack-access-type header was '{}', but the x-stack-project-id header was not provided.\n\n{DOCS}", t.as_str()),
                Some(json!({"request_type": t.as_str()})),
            ),
            StackError::ProjectNotFound(id) => known(
                S::NOT_FOUND,
                "PROJECT_NOT_FOUND",
                &format!("Project {id} not found or is not accessible with the current user."),
                Some(json!({"project_id": id})),
            ),
            StackError::ServerAuthenticationRequired => known(
                S::UNAUTHORIZED,
                "SERVER_AUTHENTICATION_REQUIRED",
                "The secret server key must be provided.",
                None,
            ),
            StackError::InvalidSecretServerKey(project) => known(
                S::UNAUTHORIZED,
                "INVALID_SECRET_SERVER_KEY",
                &format!("The secret server key is not valid for the project {}. Does the project and/or the key exist?", quoted(&project)),
                Some(json!({"project_id": project})),
            ),
            StackError::AdminAuthenticationRequired => known(
                S::UNAUTHORIZED,
                "ADMIN_AUTHENTICATION_REQUIRED",
                "The super secret admin key must be provided.",
                None,
            ),
            StackError::InvalidSuperSecretAdminKey(project) => known(
                S::UNAUTHORIZED,
                "INVALID_SUPER_SECRET_ADMIN_KEY",
                &format!("The super secret admin key is not valid for the project {}. Does the project and/or the key exist?", quoted(&project)),
                Some(json!({"project_id": project})),
            ),
            StackError::InsufficientAccessType { actual, allowed } => {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                let list = names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                known(
                    S::UNAUTHORIZED,
                    "INSUFFICIENT_ACCESS_TYPE",
                    &format!("The x-stack-access-type header must be {list}, but was '{}'.", actual.as_str()),
                    Some(json!({"actual_access_type": actual.as_str(), "allowed_access_types": names})),
                )
            }
            StackError::CannotGetOwnUserWithoutUser => known(
                S::BAD_REQUEST,
                "CANNOT_GET_OWN_USER_WITHOUT_USER",
                "You have specified 'me' as a userId, but did not provide authentication for a user.",
                None,
            ),
            StackError::InvalidAccessToken => known(
                S::UNAUTHORIZED,
                "INVALID_ACCESS_TOKEN",
                "The access token is not valid: it is unknown, expired or revoked.",
                None,
            ),
            StackError::AccessTokenWithoutApiScope => known(
                S::UNAUTHORIZED,
                "INVALID_ACCESS_TOKEN",
                "The access token is not valid here: it was not granted the latchkey:api scope.",
                None,
            ),
            StackError::Schema(message) => known(
                S::BAD_REQUEST,
                "SCHEMA_ERROR",
                &message,
                Some(json!({"message": message})),
            ),
            StackError::BodyParsing(message) => {
                known(S::BAD_REQUEST, "BODY_PARSING_ERROR", message, None)
            }
            StackError::AccountIdAlreadyUsedForSignIn => known(
                S::BAD_REQUEST,
                "OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN",
                "A provider with the same account ID is already used for signing in.",
                None,
            ),
            StackError::SignInTypeAlreadyUsed => status_error(
                S::BAD_REQUEST,
                "The same provider type with sign-in enabled already exists for this user.",
            ),
            StackError::LinkRepeated => status_error(
                S::BAD_REQUEST,
                "The same provider type with the same account ID already exists for this user.",
            ),
            StackError::ProviderNotConfigured(id) => status_error(
                S::NOT_FOUND,
                &format!("OAuth provider {id} not found or not configured"),
            ),
            StackError::LinkNotFound { user_id, link_id } => status_error(
                S::NOT_FOUND,
                &format!("OAuth provider {link_id} for user {user_id} not found"),
            ),
            StackError::UserNotFound => known(S::NOT_FOUND, "USER_NOT_FOUND", "User not found.", None),
            StackError::ProviderNotFoundOrNotEnabled => known(
                S::BAD_REQUEST,
                "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED",
                "The OAuth provider is not found or not enabled.",
                None,
            ),
            StackError::ConnectionNotConnectedToUser => known(
                S::BAD_REQUEST,
                "OAUTH_CONNECTION_NOT_CONNECTED_TO_USER",
                "The OAuth connection is not connected to any user.",
                None,
            ),
            StackError::ConnectionDoesNotHaveRequiredScope => known(
                S::BAD_REQUEST,
                "OAUTH_CONNECTION_DOES_NOT_HAVE_REQUIRED_SCOPE",
                "The OAuth connection does not have the required scope.",
                None,
            ),
            StackError::ProviderTemporarilyUnavailable => known(
                S::SERVICE_UNAVAILABLE,
                "OAUTH_PROVIDER_TEMPORARILY_UNAVAILABLE",
                "The OAuth provider is temporarily unavailable. Please try signing in again.",
                None,
            ),
            StackError::NoLinkForProvider => {
                status_error(S::NOT_FOUND, "OAuth provider not found for this user")
            }
            StackError::Status(status, message) => status_error(status, &message),
            StackError::Domain(e) => domain(e),
        }
    }
}

/// Stack's name of each field, as its bodies spell it.
pub fn field_name(f: error::Field) -> &'static str {
    use error::Field as F;
    match f {
        F::Name => "name",
        F::Username => "username",
        F::Email => "email",
        F::Password => "password",
        F::Roles => "roles",
        F::RedirectUri => "redirect_uri",
        F::ClientType => "client_type",
        F::GrantTypes => "grant_types",
        F::Scopes => "scopes",
        F::ClientId => "client_id",
        F::ClientSecret => "client_secret",
        F::AppId => "app_id",
        F::UserId => "user_id",
        F::Id => "id",
        F::LoginToken => "login_token",
        F::AccountId => "account_id",
        F::Provider => "provider_config_id",
        F::ProviderType => "type",
        F::SettingValue => "value",
        F::Claims => "claims",
        F::IdTokenSignedResponseAlg => "id_token_signed_response_alg",
        F::AccessTokenFormat => "access_token_format",
        F::PostLogoutRedirectUris => "post_logout_redirect_uris",
        F::SubjectType => "subject_type",
        F::ExtraClaims => "extra_claims",
    }
}

/// A missing record as Stack answers it. The routes name the provider or link where they know it
/// ([`StackError::ProviderNotConfigured`], [`StackError::LinkNotFound`]); these are Stack's texts without the id.
fn not_found(e: Entity) -> Response {
    match e {
        Entity::User => StackError::UserNotFound.into_response(),
        Entity::Provider => status_error(
            StatusCode::NOT_FOUND,
            "OAuth provider not found or not configured",
        ),
        Entity::Link => status_error(StatusCode::NOT_FOUND, "OAuth provider not found"),
        Entity::App
        | Entity::Setting
        | Entity::Credential
        | Entity::Admin
        | Entity::BackupCode
        | Entity::TotpEnrolment => {
            status_error(StatusCode::NOT_FOUND, &format!("{} not found", e.noun()))
        }
    }
}

/// The domain errors the link core can return, as Stack answers them.
fn domain(e: Error) -> Response {
    use StatusCode as S;
    match e {
        Error::NotFound(entity) => not_found(entity),
        Error::Conflict {
            field: error::Field::AccountId,
            ..
        } => StackError::AccountIdAlreadyUsedForSignIn.into_response(),
        Error::Conflict {
            field: error::Field::Provider,
            ..
        } => StackError::SignInTypeAlreadyUsed.into_response(),
        Error::Conflict { .. } => status_error(S::CONFLICT, "Conflict"),
        Error::Invalid { field, reason } => StackError::Schema(format!(
            "Request validation failed:\n  - body.{} {reason}",
            field_name(field)
        ))
        .into_response(),
        Error::NotAllowed(error::Rule::LinkRepeated) => StackError::LinkRepeated.into_response(),
        Error::NotAllowed(rule) => status_error(S::BAD_REQUEST, &rule.to_string()),
        Error::Unauthorized => StackError::InvalidAccessToken.into_response(),
        Error::Forbidden => status_error(S::FORBIDDEN, "Forbidden"),
        Error::RateLimited { retry_after_ms, .. } => {
            let mut r = status_error(S::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::wire::retry_after_secs(retry_after_ms)),
            );
            r
        }
        Error::Busy => {
            let mut r = status_error(S::SERVICE_UNAVAILABLE, "Service Unavailable");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1));
            r
        }
        Error::Unavailable => status_error(S::SERVICE_UNAVAILABLE, "Storage unavailable"),
        Error::Internal(_) => status_error(S::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: Error) -> (StatusCode, Option<String>, String) {
        let r = StackError::from(e).into_response();
        let status = r.status();
        let code = r
            .headers()
            .get("x-stack-known-error")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, code, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn every_field_has_stacks_name() {
        use error::Field as F;
        let want = [
            (F::Name, "name"),
            (F::Username, "username"),
            (F::Email, "email"),
            (F::Password, "password"),
            (F::Roles, "roles"),
            (F::RedirectUri, "redirect_uri"),
            (F::ClientType, "client_type"),
            (F::GrantTypes, "grant_types"),
            (F::Scopes, "scopes"),
            (F::ClientId, "client_id"),
            (F::ClientSecret, "client_secret"),
            (F::AppId, "app_id"),
            (F::UserId, "user_id"),
            (F::Id, "id"),
            (F::LoginToken, "login_token"),
            (F::AccountId, "account_id"),
            (F::Provider, "provider_config_id"),
            (F::ProviderType, "type"),
            (F::SettingValue, "value"),
            (F::Claims, "claims"),
            (F::IdTokenSignedResponseAlg, "id_token_signed_response_alg"),
            (F::AccessTokenFormat, "access_token_format"),
            (F::PostLogoutRedirectUris, "post_logout_redirect_uris"),
            (F::SubjectType, "subject_type"),
            (F::ExtraClaims, "extra_claims"),
        ];
        assert_eq!(want.len(), F::ALL.len());
        for (f, name) in want {
            assert_eq!(field_name(f), name, "{f:?}");
        }
    }

    #[tokio::test]
    async fn every_entity_has_stacks_not_found() {
        for &e in Entity::ALL {
            let (status, code, body) = answer(Error::NotFound(e)).await;
            let want = match e {
                Entity::User => (StatusCode::NOT_FOUND, Some("USER_NOT_FOUND")),
                Entity::Provider => {
                    assert_eq!(body, "OAuth provider not found or not configured");
                    (StatusCode::NOT_FOUND, None)
                }
                Entity::Link => {
                    assert_eq!(body, "OAuth provider not found");
                    (StatusCode::NOT_FOUND, None)
                }
                _ => {
                    assert_eq!(body, format!("{} not found", e.noun()));
                    (StatusCode::NOT_FOUND, None)
                }
            };
            assert_eq!((status, code.as_deref()), want, "{e:?}");
        }
    }

    #[tokio::test]
    async fn field_errors_use_stacks_names() {
        let (status, code, body) =
            answer(Error::invalid(error::Field::Email, "must be a valid email")).await;
        assert_eq!(
            (status, code.as_deref()),
            (StatusCode::BAD_REQUEST, Some("SCHEMA_ERROR"))
        );
        assert!(body.contains("body.email must be a valid email"), "{body}");
        let value = "x".to_owned();
        let field = error::Field::AccountId;
        let (status, code, _) = answer(Error::Conflict { field, value }).await;
        assert_eq!(
            (status, code.as_deref()),
            (
                StatusCode::BAD_REQUEST,
                Some("OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN")
            )
        );
        let value = "x".to_owned();
        let field = error::Field::Provider;
        let (status, code, body) = answer(Error::Conflict { field, value }).await;
        assert_eq!(
            (status, code, body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                None,
                "The same provider type with sign-in enabled already exists for this user."
            )
        );
        let (status, code, body) = answer(Error::NotAllowed(error::Rule::LinkRepeated)).await;
        assert_eq!(
            (status, code, body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                None,
                "The same provider type with the same account ID already exists for this user."
            )
        );
        let value = "x".to_owned();
        let (status, code, _) = answer(Error::Conflict {
            field: error::Field::Id,
            value,
        })
        .await;
        assert_eq!((status, code), (StatusCode::CONFLICT, None));
    }

    #[test]
    fn known_errors_have_stacks_body_order_and_header() {
        let r = StackError::InsufficientAccessType {
            actual: AccessType::Client,
            allowed: &[AccessType::Server, AccessType::Admin],
        }
        .into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["x-stack-known-error"],
            "INSUFFICIENT_ACCESS_TYPE"
        );
        let body = serde_json::to_string_pretty(&KnownErrorBody {
            code: "X",
            details: Some(json!({"a": 1})),
            error: "e",
        })
        .unwrap();
        assert_eq!(
            body,
            "{\n  \"code\": \"X\",\n  \"details\": {\n    \"a\": 1\n  },\n  \"error\": \"e\"\n}"
        );
    }
}
