//! `/api/v1/login`, `logout`, `me` and `users.*`: RC's session and user administration.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::schema::{bool_of, str_of, strs_of, Shape, Ty};
use super::{success, two_factor, Caller, InMethod, RcBody, RcError, SelfReader};
use crate::clock::rfc3339;
use crate::core::two_factor::{self as core_two_factor, Fallback};
use crate::core::{session, user};
use crate::error::Error;
use crate::model::{Permission, User};
use crate::state::AppState;

const LOGIN: Shape = Shape {
    required: &[("password", Ty::Str)],
    optional: &[("user", Ty::Str), ("username", Ty::Str), ("code", Ty::Str)],
};

const CREATE: Shape = Shape {
    required: &[
        ("username", Ty::Str),
        ("email", Ty::Str),
        ("password", Ty::Str),
    ],
    optional: &[
        ("name", Ty::Str),
        ("roles", Ty::StrArray),
        ("active", Ty::Bool),
        ("verified", Ty::Bool),
    ],
};

const DELETE: Shape = Shape {
    required: &[("userId", Ty::Str)],
    optional: &[("confirmRelinquish", Ty::Bool)],
};

/// The RC user document (never the password hash).
pub fn user_json(u: &User) -> Value {
    json!({
        "_id": u.id,
        "username": u.username,
        "name": u.name,
        "emails": u.emails.iter().map(|e| json!({"address": e.address, "verified": e.verified})).collect::<Vec<_>>(),
        "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "active": u.active,
        "type": "user",
        "status": "offline",
        "createdAt": rfc3339(u.created_at),
        "_updatedAt": rfc3339(u.updated_at),
    })
}

/// What a login body names: the user, the password and the TOTP code (if any).
struct Credentials {
    ident: String,
    password: String,
    code: Option<String>,
}

/// RC's login bodies: `{"user"|"username","password","code"?}`, or its 2FA form `{"totp":{"login":{…},"code"}}`
/// whose `login` is the first form, with `user` also as RC's `{"username"}` / `{"email"}` object.
fn credentials(body: &Value) -> Result<Credentials, String> {
    let Some(totp) = body.get("totp") else {
        return plain_credentials(body);
    };
    if body.as_object().is_some_and(|o| o.len() > 1) {
        return Err("must NOT have additional properties".into());
    }
    let code = totp.get("code").and_then(Value::as_str);
    let mut login = totp
        .get("login")
        .filter(|l| l.is_object())
        .cloned()
        .ok_or("/totp must have required property 'login'")?;
    if let Some(Value::Object(user)) = login.get("user") {
        let name = user.get("username").or(user.get("email")).cloned();
        login["user"] = name.unwrap_or_default();
    }
    let mut c = plain_credentials(&login)?;
    c.code = code.or(c.code.as_deref()).map(str::to_owned);
    Ok(c)
}

/// The first form, `{"user"|"username","password","code"?}`.
fn plain_credentials(body: &Value) -> Result<Credentials, String> {
    let o = LOGIN.check(body)?;
    let ident = str_of(o, "user")
        .or(str_of(o, "username"))
        .filter(|s| !s.is_empty())
        .ok_or("must have required property 'user'")?;
    Ok(Credentials {
        ident: ident.to_owned(),
        password: str_of(o, "password").unwrap_or_default().to_owned(),
        code: str_of(o, "code").map(str::to_owned),
    })
}

/// RC's login. A user with TOTP also gives a code (`code`, the `totp` form, or `x-2fa-code`), else 401
/// `totp-required`; wrong codes count against the user's 2FA window.
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    let c = credentials(&body).map_err(RcError::InvalidParams)?;
    let user = match session::check_password(s.sign_in(), &c.ident, &c.password, peer.ip()).await {
        Ok(u) => u,
        Err(Error::Unauthorized) => return Err(RcError::LoginRejected),
        Err(e) => return Err(e.into()),
    };
    let code = c.code.as_deref().or(two_factor::header_code(&headers));
    core_two_factor::check(s.factors(), &user, code, Fallback::Never)
        .await
        .map_err(RcError::SignInTwoFactor)?;
    let token = session::issue_login_token(s.login_tokens(), &user).await?;
    let me = json!({
        "_id": user.id, "username": user.username, "name": user.name,
        "emails": user_json(&user)["emails"], "roles": user_json(&user)["roles"],
    });
    Ok(Json(
        json!({"status": "success", "data": {"userId": user.id, "authToken": token, "me": me}}),
    )
    .into_response())
}

pub async fn logout(State(s): State<AppState>, caller: Caller) -> Result<Response, RcError> {
    if let Some(t) = &caller.login_token {
        session::logout(&s.store, t).await?;
    }
    Ok(
        Json(json!({"status": "success", "data": {"message": "You've been logged out!"}}))
            .into_response(),
    )
}

pub async fn me(SelfReader(caller): SelfReader) -> Response {
    success(user_json(&caller.user))
}

pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::CreateUser)?;
    let o = CREATE.check(&body).map_err(RcError::InvalidParams)?;
    let input = user::NewUser {
        username: str_of(o, "username").unwrap_or_default().to_owned(),
        email: str_of(o, "email").unwrap_or_default().to_owned(),
        password: str_of(o, "password").unwrap_or_default().to_owned(),
        name: str_of(o, "name").map(str::to_owned),
        roles: strs_of(o, "roles"),
        active: bool_of(o, "active"),
        verified: bool_of(o, "verified"),
    };
    let u = user::create(s.users(), input)
        .await
        .in_method("insertOrUpdateUser")?;
    Ok(success(json!({"user": user_json(&u)})))
}

/// Another user's public fields, what RC's `users.info` shows without `view-full-other-user-info`.
fn public_user_json(u: &User) -> Value {
    json!({
        "_id": u.id,
        "username": u.username,
        "name": u.name,
        "active": u.active,
        "type": "user",
        "status": "offline",
    })
}

/// One's own record and, with `view-full-other-user-info`, anyone's in full; otherwise another user's public
/// fields only, as Rocket.Chat does.
pub async fn info(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, RcError> {
    let (id, name) = (q.get("userId"), q.get("username"));
    if id.is_none() && name.is_none() {
        return Err(RcError::InvalidParams(
            "must have required property 'userId'".into(),
        ));
    }
    match user::find(&s.store, id.map(String::as_str), name.map(String::as_str)) {
        Ok(u) if u.id == caller.user.id || caller.user.can(Permission::ViewFullOtherUserInfo) => {
            Ok(success(json!({"user": user_json(&u)})))
        }
        Ok(u) => Ok(success(json!({"user": public_user_json(&u)}))),
        Err(Error::NotFound(_)) => Err(RcError::Plain("User not found.")),
        Err(e) => Err(e.into()),
    }
}

/// Removes the user with its sessions and tokens (and, once they exist, its provider links).
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::DeleteUser)?;
    let o = DELETE.check(&body).map_err(RcError::InvalidParams)?;
    user::delete(&s.store, str_of(o, "userId").unwrap_or_default())
        .await
        .in_method("deleteUser")?;
    Ok(success(json!({})))
}
