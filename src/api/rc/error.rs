//! Rocket.Chat's error bodies: every failure of an RC route is an [`RcError`], and its `IntoResponse` is the one
//! table from it (the domain [`Error`] with its entities and fields, a schema failure, a second-factor failure) to
//! RC's wire format. Handlers return `Result<_, RcError>` and never build an error response themselves.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::users::LoginFailure;
use crate::core::two_factor::{Failure, Method};
use crate::error::{Entity, Error, Field};

/// Every failure of an RC route.
#[derive(Debug)]
pub enum RcError {
    /// A domain error, with the RC method name (`addOAuthApp`, ...) that RC puts in `details`.
    Domain {
        err: Error,
        method: Option<&'static str>,
    },
    /// The body or query failed RC's schema: `invalid-params` with an ajv-style reason.
    InvalidParams(String),
    /// RC's plain failure without an errorType, e.g. `{"success":false,"error":"OAuth app not found."}`.
    Plain(&'static str),
    /// `settings.addCustomOAuth` without a usable name.
    NameRequired,
    /// A failure of `settings/:_id`, which names the setting in `details`.
    Setting { id: String, err: Error },
    /// A second-factor failure of a *2FA* route or of enrolment.
    TwoFactor(Failure),
    /// A second-factor failure of `/api/v1/login`, in the shape of RC's login errors (401).
    SignInTwoFactor(Failure),
    /// Wrong credentials at `/api/v1/login`: 401 `{"status":"error","error":"Unauthorized",…}`.
    LoginRejected,
    /// The body is over the limit.
    PayloadTooLarge,
}

impl From<Error> for RcError {
    fn from(err: Error) -> Self {
        RcError::Domain { err, method: None }
    }
}

impl From<Failure> for RcError {
    fn from(f: Failure) -> Self {
        RcError::TwoFactor(f)
    }
}

/// Attaches RC's method name (`addOAuthApp`, ...) to an error.
pub trait InMethod<T> {
    fn in_method(self, method: &'static str) -> Result<T, RcError>;
}

impl<T> InMethod<T> for Result<T, Error> {
    fn in_method(self, method: &'static str) -> Result<T, RcError> {
        self.map_err(|err| RcError::Domain {
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

/// RC's plain failure without an errorType.
fn plain_failure(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(RcFailure::new(message.to_owned())),
    )
        .into_response()
}

/// No valid credentials: RC's 401 `You must be logged in to do this.`
fn unauthorized() -> Response {
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

fn forbidden() -> Response {
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

fn too_many_requests(
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

fn with_status(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}

pub(super) fn internal() -> Response {
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
        match self {
            RcError::Domain { err, method } => domain(err, method),
            RcError::InvalidParams(reason) => failure(&reason, "invalid-params", None),
            RcError::Plain(message) => plain_failure(message),
            RcError::NameRequired => failure(
                "The parameter \"name\" is required",
                "error-name-param-not-provided",
                None,
            ),
            RcError::Setting { id, err } => setting(&id, err),
            RcError::TwoFactor(f) => two_factor(f),
            RcError::SignInTwoFactor(f) => sign_in_two_factor(f),
            RcError::LoginRejected => login_failure(None, "Unauthorized", "Unauthorized"),
            RcError::PayloadTooLarge => with_status(
                failure("Request entity too large", "error-payload-too-large", None),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        }
    }
}

/// RC's name of each field, as its bodies and `details.field` spell it (camelCase, `_id` for a record's id).
pub fn field_name(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Username => "username",
        Field::Email => "email",
        Field::Password => "password",
        Field::Roles => "roles",
        Field::RedirectUri => "redirectUri",
        Field::ClientType => "clientType",
        Field::GrantTypes => "grantTypes",
        Field::Scopes => "scopes",
        Field::ClientId => "clientId",
        Field::ClientSecret => "clientSecret",
        Field::AppId => "appId",
        Field::UserId => "userId",
        Field::Id => "_id",
        Field::LoginToken => "loginToken",
        Field::AccountId => "accountId",
        Field::Provider => "service",
        Field::ProviderType => "type",
        Field::SettingValue => "value",
        Field::Claims => "claims",
        Field::IdTokenSignedResponseAlg => "idTokenSignedResponseAlg",
        Field::AccessTokenFormat => "accessTokenFormat",
        Field::PostLogoutRedirectUris => "postLogoutRedirectUris",
        Field::SubjectType => "subjectType",
        Field::ExtraClaims => "extraClaims",
    }
}

/// RC's message and errorType for an invalid field.
fn invalid(field: Field, reason: &str) -> (String, &'static str) {
    match field {
        Field::Name => ("Invalid name".to_owned(), "error-invalid-name"),
        Field::RedirectUri => (
            "Invalid redirectUri".to_owned(),
            "error-invalid-redirectUri",
        ),
        Field::Username => (reason.to_owned(), "error-input-is-not-a-valid-field"),
        Field::Email => (reason.to_owned(), "error-invalid-email"),
        Field::Password => (
            format!("Invalid password: {reason}"),
            "error-invalid-password",
        ),
        Field::UserId | Field::AppId => (reason.to_owned(), "error-invalid-params"),
        Field::Roles
        | Field::ClientType
        | Field::GrantTypes
        | Field::Scopes
        | Field::ClientId
        | Field::ClientSecret
        | Field::Id
        | Field::LoginToken
        | Field::AccountId
        | Field::Provider
        | Field::ProviderType
        | Field::SettingValue => ("Invalid arguments".to_owned(), "error-invalid-arguments"),
        // Latchkey's own fields: RC has no message for them, so the reason is the message.
        Field::Claims
        | Field::IdTokenSignedResponseAlg
        | Field::AccessTokenFormat
        | Field::PostLogoutRedirectUris
        | Field::SubjectType
        | Field::ExtraClaims => (
            format!("Invalid {}: {reason}", field_name(field)),
            "error-invalid-arguments",
        ),
    }
}

/// RC's message and errorType for a missing record.
fn not_found(e: Entity) -> (String, &'static str) {
    match e {
        Entity::App => (
            "Application not found".to_owned(),
            "error-application-not-found",
        ),
        Entity::User => (
            "The required \"userId\" or \"username\" param provided does not match any users"
                .to_owned(),
            "error-invalid-user",
        ),
        Entity::Link
        | Entity::Provider
        | Entity::Setting
        | Entity::Credential
        | Entity::Admin
        | Entity::BackupCode
        | Entity::TotpEnrolment => (format!("{} not found", e.noun()), "error-not-found"),
    }
}

/// The domain error as RC answers it; `method` goes into `details` where RC puts it.
fn domain(err: Error, method: Option<&'static str>) -> Response {
    let details = |extra: Value| {
        let mut d = json!({});
        if let Some(m) = method {
            d["method"] = json!(m);
        }
        if let (Some(obj), Value::Object(e)) = (d.as_object_mut(), extra) {
            obj.extend(e);
        }
        Some(d)
    };
    match err {
        Error::Invalid { field, reason } => {
            let (text, kind) = invalid(field, &reason);
            let name = field_name(field);
            failure(
                &text,
                kind,
                details(json!({"field": name, "reason": reason})),
            )
        }
        Error::NotFound(e) => {
            let (text, kind) = not_found(e);
            failure(&text, kind, details(json!({})))
        }
        Error::Conflict { field, value } => failure(
            &format!("{value} is already in use :("),
            "error-field-unavailable",
            details(json!({"field": field_name(field)})),
        ),
        Error::NotAllowed(rule) => failure(
            &rule.to_string(),
            "error-action-not-allowed",
            details(json!({})),
        ),
        Error::Unauthorized => unauthorized(),
        Error::Forbidden => forbidden(),
        Error::RateLimited {
            limit,
            remaining,
            reset_at_ms,
            retry_after_ms,
        } => too_many_requests(limit, remaining, reset_at_ms, retry_after_ms),
        Error::Busy => {
            let mut r = with_status(
                failure("Server busy, retry shortly", "error-server-busy", None),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            r.headers_mut().insert("retry-after", HeaderValue::from(1));
            r
        }
        Error::Unavailable => with_status(
            failure(
                "Storage unavailable, retry later",
                "error-storage-unavailable",
                None,
            ),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Error::Internal(_) => internal(),
    }
}

/// The errors of `settings/:_id`, which RC words per setting; the rest as any domain error.
fn setting(id: &str, err: Error) -> Response {
    match err {
        Error::NotFound(_) => failure(
            "Setting not found",
            "error-setting-not-found",
            Some(json!({"setting": id})),
        ),
        Error::Invalid { reason, .. } => failure(
            "Invalid setting value",
            "error-setting-validation-failed",
            Some(json!({"setting": id, "reason": reason})),
        ),
        other => domain(other, None),
    }
}

/// RC's table for second-factor failures (`details {"method","availableMethods"}`).
fn two_factor(f: Failure) -> Response {
    let details =
        |m: Method| Some(json!({"method": m.as_str(), "availableMethods": m.available()}));
    match f {
        Failure::Required(m) => failure("TOTP Required", "totp-required", details(m)),
        Failure::Invalid(m) => failure("TOTP Invalid", "totp-invalid", details(m)),
        // RC's wording, typo included, so clients matching on it keep working.
        Failure::MaxAttempts(m) => failure(
            "TOTP Maximun Failed Attempts Reached",
            "totp-max-attempts",
            details(m),
        ),
        Failure::AlreadyEnabled => {
            failure("TOTP already enabled", "error-2fa-already-enabled", None)
        }
        Failure::NotEnabled => failure("TOTP is not enabled", "error-2fa-not-enabled", None),
        Failure::NothingPending => failure(
            "No TOTP enrolment is pending; call users.2fa.enableTOTP first",
            "invalid-totp",
            None,
        ),
        Failure::Other(e) => domain(e, None),
    }
}

/// A second-factor failure of `/api/v1/login`: 401
/// `{"status":"error","error":"totp-required","message":"TOTP Required","details":{…}}`.
/// `/api/v1/login`'s 401, in the shape of RC's login errors.
fn login_failure(details: Option<Value>, error: &'static str, message: &'static str) -> Response {
    let body = LoginFailure {
        details,
        error,
        message,
        status: "error",
    };
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

fn sign_in_two_factor(f: Failure) -> Response {
    let (error, message, m) = match f {
        Failure::Required(m) => ("totp-required", "TOTP Required", m),
        Failure::Invalid(m) => ("totp-invalid", "TOTP Invalid", m),
        Failure::MaxAttempts(m) => (
            "totp-max-attempts",
            "TOTP Maximun Failed Attempts Reached",
            m,
        ),
        other => return two_factor(other),
    };
    let details =
        json!({"method": m.as_str(), "codeGenerated": false, "availableMethods": m.available()});
    login_failure(Some(details), error, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: RcError) -> (StatusCode, Value) {
        crate::wire::json_answer(e.into_response()).await
    }

    #[test]
    fn every_field_has_rcs_name() {
        let want = [
            (Field::Name, "name"),
            (Field::Username, "username"),
            (Field::Email, "email"),
            (Field::Password, "password"),
            (Field::Roles, "roles"),
            (Field::RedirectUri, "redirectUri"),
            (Field::ClientType, "clientType"),
            (Field::GrantTypes, "grantTypes"),
            (Field::Scopes, "scopes"),
            (Field::ClientId, "clientId"),
            (Field::ClientSecret, "clientSecret"),
            (Field::AppId, "appId"),
            (Field::UserId, "userId"),
            (Field::Id, "_id"),
            (Field::LoginToken, "loginToken"),
            (Field::AccountId, "accountId"),
            (Field::Provider, "service"),
            (Field::ProviderType, "type"),
            (Field::SettingValue, "value"),
            (Field::Claims, "claims"),
            (Field::IdTokenSignedResponseAlg, "idTokenSignedResponseAlg"),
            (Field::AccessTokenFormat, "accessTokenFormat"),
            (Field::PostLogoutRedirectUris, "postLogoutRedirectUris"),
            (Field::SubjectType, "subjectType"),
            (Field::ExtraClaims, "extraClaims"),
        ];
        assert_eq!(want.len(), Field::ALL.len());
        for (f, name) in want {
            assert_eq!(field_name(f), name, "{f:?}");
        }
    }

    #[test]
    fn every_invalid_field_has_rcs_error_type() {
        for &f in Field::ALL {
            let (text, kind) = invalid(f, "why");
            let want = match f {
                Field::Name => ("Invalid name", "error-invalid-name"),
                Field::RedirectUri => ("Invalid redirectUri", "error-invalid-redirectUri"),
                Field::Username => ("why", "error-input-is-not-a-valid-field"),
                Field::Email => ("why", "error-invalid-email"),
                Field::Password => ("Invalid password: why", "error-invalid-password"),
                Field::UserId | Field::AppId => ("why", "error-invalid-params"),
                Field::Claims => ("Invalid claims: why", "error-invalid-arguments"),
                Field::IdTokenSignedResponseAlg => (
                    "Invalid idTokenSignedResponseAlg: why",
                    "error-invalid-arguments",
                ),
                Field::AccessTokenFormat => {
                    ("Invalid accessTokenFormat: why", "error-invalid-arguments")
                }
                Field::PostLogoutRedirectUris => (
                    "Invalid postLogoutRedirectUris: why",
                    "error-invalid-arguments",
                ),
                Field::SubjectType => ("Invalid subjectType: why", "error-invalid-arguments"),
                Field::ExtraClaims => ("Invalid extraClaims: why", "error-invalid-arguments"),
                _ => ("Invalid arguments", "error-invalid-arguments"),
            };
            assert_eq!((text.as_str(), kind), want, "{f:?}");
        }
    }

    #[test]
    fn every_entity_has_rcs_not_found() {
        for &e in Entity::ALL {
            let (text, kind) = not_found(e);
            match e {
                Entity::App => assert_eq!(kind, "error-application-not-found"),
                Entity::User => assert_eq!(kind, "error-invalid-user"),
                _ => assert_eq!((text, kind), (format!("{e} not found"), "error-not-found")),
            }
        }
    }

    #[tokio::test]
    async fn domain_errors_carry_the_method_and_rcs_field_name() {
        let e = Error::invalid(Field::RedirectUri, "no redirect URI given");
        let (status, v) = body(Err::<(), _>(e).in_method("addOAuthApp").unwrap_err()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["errorType"], "error-invalid-redirectUri");
        assert_eq!(
            v["details"],
            json!({"method": "addOAuthApp", "field": "redirectUri", "reason": "no redirect URI given"})
        );
        let e = Error::Conflict {
            field: Field::ClientId,
            value: "c".into(),
        };
        let (_, v) = body(e.into()).await;
        assert_eq!(
            v["error"],
            "c is already in use :( [error-field-unavailable]"
        );
        assert_eq!(v["details"], json!({"field": "clientId"}));
    }
}
