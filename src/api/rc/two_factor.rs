//! `users.2fa.*` (TOTP enrolment) and the check RC runs on routes marked *2FA*: headers `x-2fa-code` +
//! `x-2fa-method`, answered with RC's `totp-required` / `totp-invalid` / `totp-max-attempts`. Enrolment asks for
//! the current second factor too, the password included when the fallback is off (RC's `requireSecondFactor`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::RcFailure;
use super::schema::{str_of, Shape, Ty};
use super::{success, Caller, Empty, RcBody, RcError, Success};
use crate::api::openapi::documented;
use crate::core::two_factor::{self, Failure, Fallback};
use crate::state::AppState;

/// The body of `validateTempToken` and `disableTOTP`: a 6-digit TOTP code (or, for disableTOTP, an unused backup
/// code).
const CODE: Shape = Shape {
    required: &[("code", Ty::Str)],
    optional: &[],
};
documented!(CodeBody, CODE.schema());

/// Guards a *2FA* route: `Ok` when the caller passed (or needs no) second factor, else RC's error.
pub async fn require(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(), RcError> {
    two_factor::check(
        state.factors(),
        &caller.user,
        header_code(headers),
        Fallback::Configured,
    )
    .await
    .map_err(RcError::TwoFactor)
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
) -> Result<(), RcError> {
    two_factor::check(
        state.factors(),
        &caller.user,
        header_code(headers),
        Fallback::Always,
    )
    .await
    .map_err(RcError::TwoFactor)
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
) -> Result<Response, RcError> {
    if caller.user.totp_active() {
        return Err(RcError::TwoFactor(Failure::AlreadyEnabled));
    }
    require_current(&s, &caller, &headers).await?;
    let e = two_factor::enable(s.factors(), &caller.user).await?;
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
) -> Result<Response, RcError> {
    let code = code_of(&body).map_err(RcError::InvalidParams)?;
    require_current(&s, &caller, &headers).await?;
    let codes = two_factor::confirm(s.factors(), &caller.user, &code).await?;
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
) -> Result<Response, RcError> {
    let code = code_of(&body).map_err(RcError::InvalidParams)?;
    two_factor::disable(s.factors(), &caller.user, &code).await?;
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
