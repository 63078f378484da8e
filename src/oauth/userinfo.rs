//! `GET/POST /oauth/userinfo` (OIDC Core §5.3): the claims of the signed-in user behind an access token, by the
//! token's scope and for the token's client (its pairwise `sub`, its extra claims). The token comes in the
//! `Authorization: Bearer` header (GET or POST) or as `access_token` in a form-encoded POST body (RFC 6750 §2.1,
//! §2.2), never both. The token must have been granted `openid`, as node-oidc-provider requires: 403
//! `insufficient_scope` otherwise (RFC 6750 §3.1).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{OAuthError, OAuthErrorBody};
use super::{read_form, FormBody};
use crate::core::claims::{self, Userinfo};
use crate::state::AppState;
use crate::wire::{self, MalformedBearer};

/// An RFC 6750 §3.1 error with its `WWW-Authenticate` challenge.
fn bearer_error(status: StatusCode, error: &'static str, description: &'static str) -> Response {
    let body = OAuthErrorBody {
        error,
        error_description: Some(description),
    };
    let mut r = (status, Json(body)).into_response();
    let challenge = match error {
        "insufficient_scope" => "Bearer error=\"insufficient_scope\", scope=\"openid\"",
        _ => "Bearer error=\"invalid_token\"",
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

fn invalid_token() -> Response {
    bearer_error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "a live access token is required",
    )
}

/// 401 for a request without any Bearer credentials: a bare challenge, no error code (RFC 6750 §3.1).
fn no_credentials() -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Where the request put its token.
enum Presented {
    None,
    Malformed,
    Token(String),
}

/// The token of the header or of a form-encoded POST body; more than one method is `invalid_request` (RFC 6750
/// §2: "Clients MUST NOT use more than one method").
fn presented(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Presented, OAuthError> {
    let in_header = match wire::bearer(headers) {
        Ok(Some(t)) => Presented::Token(t.to_owned()),
        Ok(None) => Presented::None,
        Err(MalformedBearer) => Presented::Malformed,
    };
    let form = headers.get(header::CONTENT_TYPE).is_some_and(|ct| {
        ct.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if method != Method::POST || !form {
        return Ok(in_header);
    }
    let params = read_form(headers, body)?;
    match (in_header, params.get("access_token")) {
        (in_header, None) => Ok(in_header),
        (Presented::None, Some(t)) => Ok(Presented::Token(t.to_owned())),
        (_, Some(_)) => Err(OAuthError::invalid_request(
            "the access token was sent both in the Authorization header and in the body",
        )),
    }
}

pub async fn userinfo(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    let token = match presented(&method, &headers, &body) {
        Ok(Presented::Token(t)) => t,
        Ok(Presented::None) => return no_credentials(),
        Ok(Presented::Malformed) => return invalid_token(),
        Err(e) => return e.into_response(),
    };
    let key = claims::pairwise_key(&s.sealer);
    match claims::userinfo(&s.store, &s.clock, &key, &token).await {
        Some(Userinfo::Claims(c)) => {
            let mut r = Json(c).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Some(Userinfo::NoOpenid) => bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "userinfo needs an access token granted the openid scope",
        ),
        None => invalid_token(),
    }
}
