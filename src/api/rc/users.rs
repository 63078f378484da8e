//! `/api/v1/login`, `logout`, `me` and `users.*`: RC's session and user administration.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::schema::{bool_of, str_of, strs_of, Shape, Ty};
use super::{success, two_factor, Caller, Empty, InMethod, RcBody, RcError, SelfReader};
use crate::api::openapi::documented;
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
        ("claims", Ty::Object),
    ],
};

/// `users.update`: RC's `{userId, data}`; Latchkey's `data` holds the name and the OpenID Connect claims.
const UPDATE: Shape = Shape {
    required: &[("userId", Ty::Str), ("data", Ty::Object)],
    optional: &[],
};

/// `users.update`'s `data`.
const UPDATE_DATA: Shape = Shape {
    required: &[],
    optional: &[("name", Ty::Str), ("claims", Ty::Object)],
};

const DELETE: Shape = Shape {
    required: &[("userId", Ty::Str)],
    optional: &[("confirmRelinquish", Ty::Bool)],
};

documented!(LoginBody, LOGIN.schema());
documented!(CreateUserBody, CREATE.schema());
documented!(DeleteUserBody, DELETE.schema());
documented!(UpdateUserBody, update_schema());

/// [`UPDATE`] with `data` as [`UPDATE_DATA`].
fn update_schema() -> utoipa::openapi::schema::Schema {
    let mut s = UPDATE.schema();
    if let utoipa::openapi::schema::Schema::Object(o) = &mut s {
        o.properties
            .insert("data".into(), UPDATE_DATA.schema().into());
    }
    s
}

/// RC's user document, never the password hash. The private fields (`emails`, `roles`, the dates) are left out
/// of another user's record shown without `view-full-other-user-info`.
#[derive(Serialize, ToSchema)]
pub struct RcUser {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    emails: Option<Vec<RcEmail>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    active: bool,
    /// Always `user`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Always `offline`.
    status: &'static str,
    #[serde(rename = "createdAt", skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(rename = "_updatedAt", skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    /// Latchkey's OpenID Connect claims, standard (`given_name`, `address`, …) and custom together; only in the
    /// full record, and only when the user has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    claims: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct RcEmail {
    address: String,
    verified: bool,
}

fn emails(u: &User) -> Vec<RcEmail> {
    let email = |e: &crate::model::user::Email| RcEmail {
        address: e.address.clone(),
        verified: e.verified,
    };
    u.emails.iter().map(email).collect()
}

fn roles(u: &User) -> Vec<String> {
    u.roles.iter().map(|r| r.as_str().to_owned()).collect()
}

/// The whole RC user document: one's own, or anyone's with `view-full-other-user-info`.
pub fn rc_user(u: &User) -> RcUser {
    RcUser {
        emails: Some(emails(u)),
        roles: Some(roles(u)),
        created_at: Some(rfc3339(u.created_at)),
        updated_at: Some(rfc3339(u.updated_at)),
        claims: Some(u.profile.to_json()).filter(|c| !c.is_empty()),
        ..public_user(u)
    }
}

/// Another user's public fields, what RC's `users.info` shows without `view-full-other-user-info`.
fn public_user(u: &User) -> RcUser {
    RcUser {
        id: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        emails: None,
        roles: None,
        active: u.active,
        kind: "user",
        status: "offline",
        created_at: None,
        updated_at: None,
        claims: None,
    }
}

/// `users.create`'s and `users.info`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct UserAnswer {
    user: RcUser,
}

/// RC's login answer: `{"status":"success","data":{…}}`, without the `success` envelope. The answers written
/// without [`success`] declare their fields in sorted order, the order their bytes have always had.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    data: LoginData,
    /// Always `success`.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct LoginData {
    /// The login token: send it as `X-Auth-Token` with `X-User-Id`.
    #[serde(rename = "authToken")]
    auth_token: String,
    me: LoginUser,
    #[serde(rename = "userId")]
    user_id: String,
}

/// The part of the user the login answer carries.
#[derive(Serialize, ToSchema)]
pub struct LoginUser {
    #[serde(rename = "_id")]
    id: String,
    emails: Vec<RcEmail>,
    name: String,
    roles: Vec<String>,
    username: String,
}

/// RC's logout answer: `{"status":"success","data":{"message":"You've been logged out!"}}`.
#[derive(Serialize, ToSchema)]
pub struct LogoutAnswer {
    data: LogoutMessage,
    /// Always `success`.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutMessage {
    message: &'static str,
}

/// RC's login failures (bad credentials, a missing or wrong TOTP code): 401
/// `{"status":"error","error":…,"message":…}`, with `details` for the TOTP ones.
#[derive(Serialize, ToSchema)]
pub struct LoginFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    pub error: &'static str,
    pub message: &'static str,
    /// Always `error`.
    pub status: &'static str,
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
    let amr = session::password_amr(&user);
    let token = session::issue_login_token(s.login_tokens(), &user, amr).await?;
    let me = LoginUser {
        id: user.id.clone(),
        username: user.username.clone(),
        name: user.name.clone(),
        emails: emails(&user),
        roles: roles(&user),
    };
    let data = LoginData {
        user_id: user.id.clone(),
        auth_token: token,
        me,
    };
    Ok(Json(LoginAnswer {
        status: "success",
        data,
    })
    .into_response())
}

pub async fn logout(State(s): State<AppState>, caller: Caller) -> Result<Response, RcError> {
    if let Some(t) = &caller.login_token {
        session::logout(&s.store, t).await?;
    }
    let data = LogoutMessage {
        message: "You've been logged out!",
    };
    Ok(Json(LogoutAnswer {
        status: "success",
        data,
    })
    .into_response())
}

pub async fn me(SelfReader(caller): SelfReader) -> Response {
    success(rc_user(&caller.user))
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
        claims: o.get("claims").cloned(),
    };
    let u = user::create(s.users(), input)
        .await
        .in_method("insertOrUpdateUser")?;
    Ok(success(UserAnswer { user: rc_user(&u) }))
}

/// Changes a user's name or claims (`data.claims` replaces them all; `{}` clears them). Needs RC's
/// `edit-other-user-info`.
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::EditOtherUserInfo)?;
    let o = UPDATE.check(&body).map_err(RcError::InvalidParams)?;
    let data = o.get("data").unwrap_or(&Value::Null);
    let d = UPDATE_DATA
        .check(data)
        .map_err(|e| RcError::InvalidParams(format!("/data {e}")))?;
    let changes = user::UserChanges {
        name: str_of(d, "name").map(str::to_owned),
        claims: d.get("claims").cloned(),
    };
    let u = match user::update(s.users(), str_of(o, "userId").unwrap_or_default(), changes).await {
        Err(Error::NotFound(_)) => return Err(RcError::Plain("User not found.")),
        other => other.in_method("insertOrUpdateUser")?,
    };
    Ok(success(UserAnswer { user: rc_user(&u) }))
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
    match user::find(&s.store, id.map(String::as_str), name.map(String::as_str)).await {
        Ok(u) if u.id == caller.user.id || caller.user.can(Permission::ViewFullOtherUserInfo) => {
            Ok(success(UserAnswer { user: rc_user(&u) }))
        }
        Ok(u) => Ok(success(UserAnswer {
            user: public_user(&u),
        })),
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
    Ok(success(Empty {}))
}
