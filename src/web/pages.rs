//! The page handlers and the one place pages get their security headers.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::buttons::{buttons, ProviderButton};
use super::form::Params;
use super::{csrf, session};
use crate::core::session as login;
use crate::core::two_factor::{self, Failure, Fallback};
use crate::crypto;
use crate::error::{Error, Field};
use crate::model::User;
use crate::state::AppState;
use crate::wire::{read_body, BodyError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    app_name: Option<&'a str>,
    error: Option<&'a str>,
    signed_in: Option<&'a str>,
    providers: Vec<ProviderButton>,
    /// Prefills the username (an authorization request's `login_hint`).
    login_hint: &'a str,
}

/// The sign-in's second step, for a user with TOTP: `pending` is the sealed [`Pending`], never the password.
#[derive(Template)]
#[template(path = "login_totp.html")]
struct TotpPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    pending: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub csrf: &'a str,
    pub app_name: &'a str,
    pub username: &'a str,
    /// Scope tokens with what they mean (empty when unknown).
    pub scopes: Vec<(String, &'static str)>,
    pub hidden: Vec<(String, String)>,
    pub redirect_host: String,
}

/// RP-initiated logout's confirmation: the request's parameters travel in `hidden`, posted back with `csrf`.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    /// The value of the form's `decision` button.
    pub decision: &'a str,
    /// The signed-in user, when the browser sent its session cookie.
    pub username: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub hidden: Vec<(String, String)>,
}

/// The end of a logout that sends the browser nowhere.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub app_name: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// Renders a page with the headers every page carries: no framing, no referrer, no caching.
pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    set_cookie: Option<HeaderValue>,
) -> Response {
    let Ok(body) = body else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response();
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = set_cookie {
        h.append(header::SET_COOKIE, c);
    }
    r
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, ErrorPage { title, message }.render(), None)
}

/// The pages' table for the domain error: the page for a failed write or lookup, 503 when storage is unavailable
/// (a full disk), else 500. The forms handle the failures a user can fix (wrong password, throttled, busy) before
/// this; what reaches it is the server's.
pub fn failure_page(e: &Error) -> Response {
    match e {
        Error::Unavailable => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable",
            "The server cannot save changes right now. Please try again later.",
        ),
        Error::NotFound(_)
        | Error::Invalid { .. }
        | Error::Conflict { .. }
        | Error::NotAllowed(_)
        | Error::Unauthorized
        | Error::Forbidden
        | Error::RateLimited { .. }
        | Error::Busy
        | Error::Internal(_) => server_error(),
    }
}

/// A field's name in page messages (federated sign-in's "cannot create a local account: username … is taken").
/// The link fields keep the names they had before the pages had a table of their own.
pub fn field_name(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Username => "username",
        Field::Email => "email",
        Field::Password => "password",
        Field::Roles => "roles",
        Field::RedirectUri => "redirect URI",
        Field::ClientType => "client type",
        Field::GrantTypes => "grant types",
        Field::Scopes => "scopes",
        Field::ClientId => "client id",
        Field::ClientSecret => "client secret",
        Field::AppId => "app id",
        Field::UserId => "user id",
        Field::Id => "_id",
        Field::LoginToken => "login token",
        Field::AccountId => "account_id",
        Field::Provider => "provider_config_id",
        Field::ProviderType => "provider type",
        Field::SettingValue => "setting value",
        Field::Claims => "claims",
        Field::IdTokenSignedResponseAlg => "ID token signing algorithm",
        Field::AccessTokenFormat => "access token format",
        Field::PostLogoutRedirectUris => "post-logout redirect URIs",
        Field::SubjectType => "subject type",
        Field::ExtraClaims => "extra claims",
    }
}

/// The body of a form a page posts (sign-in, sign-out, consent). Over the body limit or unreadable, the browser gets
/// an error page (413/400, HTML with the page headers), not axum's plain-text rejection.
pub struct PageBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for PageBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        read_body(req, state)
            .await
            .map(PageBody)
            .map_err(|e| match e {
                BodyError::TooLarge => error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much data",
                    "The form sent more data than this server accepts. Go back and try again.",
                ),
                BodyError::Unreadable => error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The form could not be read.",
                ),
            })
    }
}

/// A 303 to `location`, the answer to every credential POST.
pub fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Only same-origin paths may be returned to (no open redirect).
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/login".to_owned(),
    }
}

/// What the sign-in page may say after a failed attempt, by the code `/login?error=` carries. The page shows only
/// these texts, so a crafted link cannot make it display a message of the attacker's choosing.
const LOGIN_ERRORS: &[(&str, &str)] = &[
    ("expired", "Your session expired. Please try again."),
    ("missing", "Enter your username and password."),
    ("credentials", "Wrong username or password."),
    (
        "throttled",
        "Too many failed attempts. Wait a few minutes and try again.",
    ),
    ("busy", "The server is busy. Please try again."),
    (
        "sign_in_expired",
        "Your sign-in expired. Please sign in again.",
    ),
];

/// The message for an `error` code; unknown codes show nothing.
fn login_error(code: &str) -> Option<&'static str> {
    LOGIN_ERRORS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, m)| *m)
}

/// The sign-in form; `app_name` when it continues an authorization request.
pub async fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
    app_name: Option<&str>,
    error: Option<&str>,
    login_hint: Option<&str>,
) -> Response {
    let (token, cookie) = csrf::token(state, headers);
    let signed_in = if app_name.is_none() {
        session::current_user(state, headers)
            .await
            .map(|b| b.user.username)
    } else {
        None
    };
    let page = LoginPage {
        csrf: &token,
        return_to,
        app_name,
        error,
        signed_in: signed_in.as_deref(),
        providers: buttons(&state.store, return_to).await,
        login_hint: login_hint.unwrap_or_default(),
    };
    html(StatusCode::OK, page.render(), cookie)
}

pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let return_to = safe_return_to(q.get("return_to").map(String::as_str));
    login_form(
        &s,
        &headers,
        &return_to,
        None,
        q.get("error").and_then(|c| login_error(c)),
        None,
    )
    .await
}

pub async fn login_submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Response {
    let Ok(form) = Params::parse(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form could not be read.",
        );
    };
    let return_to = safe_return_to(form.get("return_to"));
    // Back to the form with a code of `LOGIN_ERRORS`.
    let back = |code: &str| {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("error", code)
            .append_pair("return_to", &return_to)
            .finish();
        see_other(&format!("/login?{q}"), vec![])
    };
    let Some(csrf) = form
        .get("csrf")
        .filter(|c| csrf::verify(&s, &headers, Some(c)))
    else {
        return back("expired");
    };
    if let Some(pending) = form.get("pending") {
        return totp_submit(&s, csrf, pending, form.get("code"), &return_to).await;
    }
    let (Some(user), Some(password)) = (form.get("username"), form.get("password")) else {
        return back("missing");
    };
    let user = match login::check_password(s.sign_in(), user, password, peer.ip()).await {
        Ok(u) => u,
        Err(Error::Unauthorized) => return back("credentials"),
        Err(Error::RateLimited { .. }) => return back("throttled"),
        Err(Error::Busy) => return back("busy"),
        Err(e) => return failure_page(&e),
    };
    if user.totp_active() {
        let pending = Pending::seal(&s, csrf, &user.id);
        return totp_form(csrf, &pending, &return_to, None);
    }
    sign_in(&s, &user, &return_to).await
}

/// Starts the browser session of `user`, who signed in with a password (and, when they have TOTP on, a code),
/// and continues to `return_to`.
async fn sign_in(s: &AppState, user: &User, return_to: &str) -> Response {
    let amr = login::password_amr(user);
    match login::issue_login_token(s.login_tokens(), user, amr).await {
        Ok(token) => see_other(return_to, vec![session::login_cookie(s, &token)]),
        Err(e) => failure_page(&e),
    }
}

/// The one page for a failure that is the server's, not the user's: it says nothing about the cause.
pub fn server_error() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.",
    )
}

/// A sign-in whose password was right, waiting for the user's TOTP code: the user id and a deadline, sealed under
/// the master key and bound to the browser's CSRF token, so it opens only in the browser it was given to, only for
/// [`Pending::TTL_MS`], and cannot be forged. It holds no password.
struct Pending;

impl Pending {
    const TTL_MS: i64 = 5 * 60 * 1000;

    fn aad(csrf: &str) -> Vec<u8> {
        [b"login-totp:".as_slice(), csrf.as_bytes()].concat()
    }

    fn seal(s: &AppState, csrf: &str, user_id: &str) -> String {
        let deadline = s.clock.now_ms() + Self::TTL_MS;
        let sealed = s
            .sealer
            .seal(format!("{deadline}:{user_id}").as_bytes(), &Self::aad(csrf));
        crypto::secret::b64url(&sealed)
    }

    /// The user id, while the pending sign-in is this browser's and unexpired.
    fn open(s: &AppState, csrf: &str, pending: &str) -> Option<String> {
        let sealed = crypto::secret::b64url_decode(pending)?;
        let plain = String::from_utf8(s.sealer.open(&sealed, &Self::aad(csrf))?).ok()?;
        let (deadline, user_id) = plain.split_once(':')?;
        (s.clock.now_ms() < deadline.parse::<i64>().ok()?).then(|| user_id.to_owned())
    }
}

fn totp_form(csrf: &str, pending: &str, return_to: &str, error: Option<&str>) -> Response {
    let page = TotpPage {
        csrf,
        return_to,
        pending,
        error,
    };
    html(StatusCode::OK, page.render(), None)
}

/// The code step: the user's TOTP (or backup) code under the 2FA window, each TOTP step accepted once.
async fn totp_submit(
    s: &AppState,
    csrf: &str,
    pending: &str,
    code: Option<&str>,
    return_to: &str,
) -> Response {
    let user = match Pending::open(s, csrf, pending) {
        Some(id) => s.store.get_user(&id).await.ok().flatten(),
        None => None,
    };
    let Some(user) = user.filter(|u| u.active) else {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("error", "sign_in_expired")
            .append_pair("return_to", return_to)
            .finish();
        return see_other(&format!("/login?{q}"), vec![]);
    };
    let retry = |msg: &str| totp_form(csrf, pending, return_to, Some(msg));
    match two_factor::check(s.factors(), &user, code, Fallback::Never).await {
        Ok(()) => sign_in(s, &user, return_to).await,
        Err(Failure::Required(_)) => retry("Enter the code from your authenticator app."),
        Err(Failure::Invalid(_)) => retry("Wrong code. Try again."),
        Err(Failure::MaxAttempts(_)) => {
            retry("Too many wrong codes. Wait a few minutes, then try again.")
        }
        Err(Failure::Other(Error::Busy)) => retry("The server is busy. Please try again."),
        Err(Failure::Other(e)) => failure_page(&e),
        Err(_) => server_error(),
    }
}

/// `POST /logout`: ends the browser's session. Only the sign-out form of this site may do it: without its CSRF
/// token the answer is a 403 page and the session (server side and cookie) stays.
pub async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    PageBody(body): PageBody,
) -> Response {
    let form = Params::parse(&body).unwrap_or_default();
    if !csrf::verify(&s, &headers, form.get("csrf")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "This request did not come from Latchkey's sign-out button. Open the sign-in page and sign out there.",
        );
    }
    if let Some(b) = session::current_user(&s, &headers).await {
        let _ = login::logout(&s.store, &b.token).await;
    }
    see_other("/login", vec![session::clear_login_cookie(&s)])
}

#[derive(Template)]
#[template(path = "dev_callback.html")]
struct DevCallbackPage<'a> {
    code: Option<&'a str>,
    state: &'a str,
    error: &'a str,
    curl: String,
}

/// `--dev` only: the demo client's redirect target, showing the code and the curl that redeems it.
pub async fn dev_callback(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.config.dev {
        return error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This page exists only under --dev.",
        );
    }
    let code = q.get("code").map(String::as_str);
    let page = DevCallbackPage {
        code,
        state: q.get("state").map_or("", String::as_str),
        error: q
            .get("error")
            .map_or("no code in the response", String::as_str),
        curl: crate::core::bootstrap::dev_token_curl(&s.issuer, code.unwrap_or("CODE")),
    };
    html(StatusCode::OK, page.render(), None)
}

#[cfg(test)]
mod tests {
    use crate::error::Field;

    #[test]
    fn every_field_has_a_name_on_the_pages() {
        let want = [
            (Field::Name, "name"),
            (Field::Username, "username"),
            (Field::Email, "email"),
            (Field::Password, "password"),
            (Field::Roles, "roles"),
            (Field::RedirectUri, "redirect URI"),
            (Field::ClientType, "client type"),
            (Field::GrantTypes, "grant types"),
            (Field::Scopes, "scopes"),
            (Field::ClientId, "client id"),
            (Field::ClientSecret, "client secret"),
            (Field::AppId, "app id"),
            (Field::UserId, "user id"),
            (Field::Id, "_id"),
            (Field::LoginToken, "login token"),
            (Field::AccountId, "account_id"),
            (Field::Provider, "provider_config_id"),
            (Field::ProviderType, "provider type"),
            (Field::SettingValue, "setting value"),
            (Field::Claims, "claims"),
            (
                Field::IdTokenSignedResponseAlg,
                "ID token signing algorithm",
            ),
            (Field::AccessTokenFormat, "access token format"),
            (Field::PostLogoutRedirectUris, "post-logout redirect URIs"),
            (Field::SubjectType, "subject type"),
            (Field::ExtraClaims, "extra claims"),
        ];
        assert_eq!(want.len(), Field::ALL.len());
        for (f, name) in want {
            assert_eq!(super::field_name(f), name, "{f:?}");
        }
    }
}
