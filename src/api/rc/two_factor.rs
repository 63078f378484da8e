//! `users.2fa.*` (TOTP enrolment) and the check RC runs on routes marked *2FA*: headers `x-2fa-code` +
//! `x-2fa-method`, answered with RC's `totp-required` / `totp-invalid` / `totp-max-attempts`. Enrolment asks for
//! the current second factor too, the password included when the fallback is off (RC's `requireSecondFactor`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::error::{failure, invalid_params, RcFailure};
use super::schema::{str_of, Shape, Ty};
use super::users::LoginFailure;
use super::{success, Caller, Empty, RcBody, RcError, Success};
use crate::api::openapi::documented;
use crate::core::two_factor::{self, Failure, Fallback, Method};
use crate::state::AppState;

/// The body of `validateTempToken` and `disableTOTP`: a 6-digit TOTP code (or, for disableTOTP, an unused backup
/// code).
const CODE: Shape = Shape {
    required: &[("code", Ty::Str)],
    optional: &[],
};
documented!(CodeBody, CODE.schema());

/// Guards a *2FA* route: `Ok` when the caller passed (or needs no) second factor, else RC's error response.
pub async fn require(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(), Response> {
    two_factor::check(
        state,
        &caller.user,
        header_code(headers),
        Fallback::Configured,
    )
    .await
    .map_err(failure_response)
}

/// `x-2fa-code`, when sent with `x-2fa-method`: RC reads the headers only when both are present, and picks the
/// method itself (TOTP when the user has it).
pub fn header_code(headers: &HeaderMap) -> Option<&str> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    header("x-2fa-method").and(header("x-2fa-code"))
}

/// Guards enrolment: the current second factor, and the password when there is no TOTP even if the fallback is
/// off, so a session that does not know the password cannot enrol a TOTP of its own.
async fn require_current(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(), Response> {
    two_factor::check(state, &caller.user, header_code(headers), Fallback::Always)
        .await
        .map_err(failure_response)
}

/// RC's table for second-factor failures (`details {"method","availableMethods"}`).
pub fn failure_response(f: Failure) -> Response {
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
        Failure::Other(e) => RcError::from(e).into_response(),
    }
}

/// A second-factor failure of `/api/v1/login`, in the shape of RC's login errors: 401
/// `{"status":"error","error":"totp-required","message":"TOTP Required","details":{…}}`.
pub fn sign_in_failure(f: Failure) -> Response {
    let (error, message, m) = match f {
        Failure::Required(m) => ("totp-required", "TOTP Required", m),
        Failure::Invalid(m) => ("totp-invalid", "TOTP Invalid", m),
        Failure::MaxAttempts(m) => (
            "totp-max-attempts",
            "TOTP Maximun Failed Attempts Reached",
            m,
        ),
        other => return failure_response(other),
    };
    let details =
        json!({"method": m.as_str(), "codeGenerated": false, "availableMethods": m.available()});
    let body = LoginFailure {
        details: Some(details),
        error,
        message,
        status: "error",
    };
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The `code` of the body, or the ajv reason it lacks one.
fn code_of(body: &serde_json::Value) -> Result<String, String> {
    let o = CODE.check(body)?;
    Ok(str_of(o, "code").unwrap_or_default().to_owned())
}

/// Starts enrolment: a fresh seed (base32) and its `otpauth://` URL, shown once. TOTP is on only after
/// `validateTempToken`. Needs the password in the 2FA headers.
#[utoipa::path(post, path = "/api/v1/users.2fa.enableTOTP", tag = "rc", security(("rc" = [])),
    params(("x-2fa-code" = Option<String>, Header, description = "the password (or its SHA-256 hex)"),
           ("x-2fa-method" = Option<String>, Header, description = "password")),
    responses((status = 200, body = Success<EnableTotpAnswer>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure)))]
pub async fn enable_totp(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, Response> {
    if caller.user.totp_active() {
        return Err(failure_response(Failure::AlreadyEnabled));
    }
    require_current(&s, &caller, &headers).await?;
    let e = two_factor::enable(&s, &caller.user)
        .await
        .map_err(failure_response)?;
    Ok(success(EnableTotpAnswer {
        secret: e.secret,
        url: e.url,
    }))
}

/// Confirms enrolment with a code from the new seed; answers the backup codes (each works once), shown once.
/// Needs the password in the 2FA headers.
#[utoipa::path(post, path = "/api/v1/users.2fa.validateTempToken", tag = "rc", security(("rc" = [])),
    request_body(content = inline(CodeBody)),
    params(("x-2fa-code" = Option<String>, Header, description = "the password (or its SHA-256 hex)"),
           ("x-2fa-method" = Option<String>, Header, description = "password")),
    responses((status = 200, body = Success<BackupCodesAnswer>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure)))]
pub async fn validate_temp_token(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RcBody(body): RcBody,
) -> Result<Response, Response> {
    let code = code_of(&body).map_err(|r| invalid_params(&r))?;
    require_current(&s, &caller, &headers).await?;
    let codes = two_factor::confirm(&s, &caller.user, &code)
        .await
        .map_err(failure_response)?;
    Ok(success(BackupCodesAnswer { codes }))
}

/// Turns TOTP off; needs a current TOTP code or an unused backup code: the body's `code` is the current second
/// factor, checked (and throttled, and used up) as the 2FA headers are elsewhere.
#[utoipa::path(post, path = "/api/v1/users.2fa.disableTOTP", tag = "rc", security(("rc" = [])),
    request_body(content = inline(CodeBody)),
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure)))]
pub async fn disable_totp(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, Response> {
    let code = code_of(&body).map_err(|r| invalid_params(&r))?;
    two_factor::disable(&s, &caller.user, &code)
        .await
        .map_err(failure_response)?;
    Ok(success(Empty {}))
}

/// `enableTOTP`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct EnableTotpAnswer {
    /// The seed in base32, for typing into an authenticator app.
    secret: String,
    /// `otpauth://totp/Latchkey:<username>?secret=…&issuer=Latchkey`
    url: String,
}

/// `validateTempToken`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct BackupCodesAnswer {
    /// 12 single-use backup codes, shown once.
    codes: Vec<String>,
}

#[derive(OpenApi)]
#[openapi(paths(enable_totp, validate_temp_token, disable_totp))]
pub struct TwoFactorDoc;
