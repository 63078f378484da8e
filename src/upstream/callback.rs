//! `GET /_oauth/<service>?code&state`: finishes a federated sign-in. Every failure ends on an error page that
//! says what failed, and leaves the store as it was.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::identity;
use super::{callback_url, cookie_name, open_pending};
use crate::core::{federation, session};
use crate::crypto;
use crate::error::Error;
use crate::model::oidc::Amr;
use crate::model::provider::{IdentityTokenSentVia, Provider, TokenSentVia};
use crate::state::AppState;
use crate::web::pages::{error_page, see_other};
use crate::web::session::{login_cookie, read_cookie, set_cookie};

/// Why a sign-in failed, worded for the person in front of the browser.
struct Failure(StatusCode, String);

impl Failure {
    fn upstream(what: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_GATEWAY, what.into())
    }
    fn request(what: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_REQUEST, what.into())
    }
}

pub async fn callback(
    State(s): State<AppState>,
    Path(service): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let clear = set_cookie(&s, &cookie_name(&s), "", 0);
    match finish(&s, &service, &headers, &q).await {
        Ok((token, return_to)) => see_other(&return_to, vec![clear, login_cookie(&s, &token)]),
        Err(Failure(status, why)) => {
            tracing::warn!(service = %super::for_log(&service), reason = %super::for_log(&why), "federated sign-in failed");
            let mut r = error_page(status, "Sign-in failed", &why);
            r.headers_mut()
                .append(axum::http::header::SET_COOKIE, clear);
            r
        }
    }
}

async fn finish(
    s: &AppState,
    service: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(String, String), Failure> {
    let provider = match s.store.get_provider(service).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => {
            return Err(Failure::request(format!(
                "no enabled sign-in provider is called {service:?}"
            )))
        }
        Err(_) => {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ))
        }
    };
    let name = provider.name.clone();
    let pending = read_cookie(headers, &cookie_name(s))
        .and_then(|c| open_pending(s, &c))
        .ok_or_else(|| {
            Failure::request(
                "this sign-in was not started in this browser, or it expired; start again",
            )
        })?;
    let state_ok = q
        .get("state")
        .is_some_and(|st| crypto::ct_eq(st.as_bytes(), pending.state.as_bytes()));
    if !state_ok || pending.service != service {
        return Err(Failure::request(
            "the state parameter does not match this sign-in; start again",
        ));
    }
    if pending.expires_at <= s.clock.now_ms() {
        return Err(Failure::request("this sign-in took too long; start again"));
    }
    if let Some(err) = q.get("error") {
        let desc = q
            .get("error_description")
            .map(|d| format!(" ({})", clip(d)))
            .unwrap_or_default();
        return Err(Failure::upstream(format!(
            "{name} answered {}{desc}",
            clip(err)
        )));
    }
    let code = q
        .get("code")
        .ok_or_else(|| Failure::upstream(format!("{name} sent no authorization code")))?;

    let deadline = super::deadline(&s.config);
    let (tokens, doc) = tokio::time::timeout(deadline, async {
        let tokens = exchange(s, &provider, code, &pending.verifier).await?;
        let access = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Failure::upstream(format!("{name}'s token response has no access_token"))
            })?
            .to_owned();
        let doc = fetch_identity(s, &provider, &access).await?;
        Ok((tokens, doc))
    })
    .await
    .map_err(|_| {
        Failure(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{name} did not answer within {:.1} s; try again later",
                deadline.as_secs_f64()
            ),
        )
    })??;
    let ident =
        identity::map(&doc, &provider).map_err(|e| Failure::upstream(format!("{name}: {e}")))?;
    let sealed = super::tokens::seal_response(
        &s.sealer,
        s.clock.now_ms(),
        &tokens,
        &provider.sign_in_scope(),
    )
    .unwrap_or_default();
    let user = federation::sign_in(&s.store, &s.clock, &provider, &ident, sealed)
        .await
        .map_err(|e| match e {
            Error::Conflict { field, value } => Failure::request(format!(
                "cannot create a local account: {} {value} is taken",
                crate::web::pages::field_name(field)
            )),
            Error::NotAllowed(why) => Failure(
                StatusCode::FORBIDDEN,
                format!("{name} cannot sign you in here: {why}"),
            ),
            Error::Invalid { reason, .. } => {
                Failure::upstream(format!("{name}'s identity is not usable: {reason}"))
            }
            _ => Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        })?;
    let token = session::issue_login_token(s.login_tokens(), &user, vec![Amr::Fed])
        .await
        .map_err(|_| Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    Ok((token, pending.return_to))
}

/// The code exchange; client credentials per `-token_sent_via` (Basic header, or `client_id`/`client_secret` in
/// the body as RC's default `payload` does).
async fn exchange(
    s: &AppState,
    p: &Provider,
    code: &str,
    verifier: &str,
) -> Result<Value, Failure> {
    let name = &p.name;
    let secret = crate::core::provider::client_secret(&s.sealer, p)
        .map_err(|_| {
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the provider secret cannot be read".into(),
            )
        })?
        .unwrap_or_default();
    let redirect = callback_url(s, &p.service_key());
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", verifier),
    ];
    let mut req = s
        .http
        .post(p.endpoint(&p.token_path))
        .header("accept", "application/json");
    match p.token_sent_via {
        TokenSentVia::Header => req = req.basic_auth(enc(p.client_id()), Some(enc(&secret))),
        TokenSentVia::Payload => {
            form.push(("client_id", p.client_id()));
            form.push(("client_secret", secret.as_str()));
        }
    }
    let resp = req.form(&form).send().await.map_err(|e| {
        Failure::upstream(format!(
            "{name}'s token endpoint is unreachable ({})",
            short(&e)
        ))
    })?;
    let status = resp.status();
    let body = read_capped(resp, s.config.limits.upstream_body_bytes)
        .await
        .map_err(|e| e.failure(name, "token"))?;
    let v = parse_json_or_form(&String::from_utf8_lossy(&body));
    if !status.is_success() || v.get("error").is_some() {
        let err = v.get("error").and_then(Value::as_str).unwrap_or("an error");
        return Err(Failure::upstream(format!(
            "{name}'s token endpoint answered {status}: {}",
            clip(err)
        )));
    }
    Ok(v)
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
pub(super) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Some upstreams (GitHub's classic endpoint) answer form-encoded unless asked otherwise.
pub(super) fn parse_json_or_form(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| {
        let m: serde_json::Map<String, Value> = form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        Value::Object(m)
    })
}

/// The identity; the token per `-identity_token_sent_via` (`header`: Bearer; else the `-access_token_param` query
/// parameter, as RC does for `default` and `payload`).
async fn fetch_identity(s: &AppState, p: &Provider, access: &str) -> Result<Value, Failure> {
    let name = &p.name;
    let mut req = s
        .http
        .get(p.endpoint(&p.identity_path))
        .header("accept", "application/json");
    req = match p.identity_token_sent_via {
        IdentityTokenSentVia::Header => req.bearer_auth(access),
        _ => req.query(&[(p.access_token_param.as_str(), access)]),
    };
    let resp = req.send().await.map_err(|e| {
        Failure::upstream(format!(
            "{name}'s identity endpoint is unreachable ({})",
            short(&e)
        ))
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Failure::upstream(format!(
            "{name}'s identity endpoint answered {status}"
        )));
    }
    let body = read_capped(resp, s.config.limits.upstream_body_bytes)
        .await
        .map_err(|e| e.failure(name, "identity"))?;
    serde_json::from_slice(&body)
        .map_err(|_| Failure::upstream(format!("{name}'s identity response is not JSON")))
}

/// Why an upstream answer's body was not read.
pub(super) enum BodyError {
    /// Larger than the cap (announced or streamed).
    TooLarge(usize),
    Read,
}

impl BodyError {
    fn failure(self, name: &str, what: &str) -> Failure {
        match self {
            BodyError::TooLarge(cap) => Failure::upstream(format!(
                "{name}'s {what} response is larger than {cap} bytes"
            )),
            BodyError::Read => {
                Failure::upstream(format!("{name}'s {what} response could not be read"))
            }
        }
    }
}

/// An upstream answer's body, at most `cap` bytes. Read chunk by chunk and abandoned as soon as it outgrows the
/// cap (or announces that it will), so a hostile upstream cannot make the server buffer a huge document.
pub(super) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| BodyError::Read)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Upstream-chosen text (an error code or description) as shown on the page: at most [`super::MAX_UPSTREAM_TEXT`]
/// characters.
fn clip(s: &str) -> String {
    super::clip(s, super::MAX_UPSTREAM_TEXT)
}

/// A reqwest error without the URL (which could carry a token in its query).
pub(super) fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}
