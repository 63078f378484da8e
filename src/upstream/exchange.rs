//! The callback's requests to the upstream, as its [`Upstream`] description says: the code exchange, the
//! identity document and the secondary emails. Every answer is bounded, and no error shows a URL (which could
//! carry a token in its query).

use axum::http::StatusCode;
use serde_json::Value;

use super::callback::Failure;
use crate::model::catalogue::{ClientAuth, IdentityAuth, Upstream};
use crate::model::Provider;
use crate::state::AppState;

/// The code exchange; the client credentials per the upstream's client authentication (Basic header, or
/// `client_id`/`client_secret` in the body as RC's default `payload` does); the PKCE verifier when it uses PKCE.
pub(super) async fn exchange(
    s: &AppState,
    p: &Provider,
    up: &Upstream,
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
    let secret = super::apple::token_secret(s, p, up.client_auth, secret)
        .map_err(|why| Failure(StatusCode::BAD_GATEWAY, why))?;
    // The redirect URI the authorization request carried: through Rocket.Chat's OAuth Proxy when it serves it.
    let redirect = super::proxy::redirect_uri(s, &p.service_key())
        .await
        .map_err(|_| Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
    ];
    if up.pkce {
        form.push(("code_verifier", verifier));
    }
    let mut req = s
        .http
        .post(&up.token_url)
        .header("accept", "application/json");
    match up.client_auth {
        ClientAuth::Basic => req = req.basic_auth(enc(p.client_id()), Some(enc(&secret))),
        ClientAuth::Post | ClientAuth::AppleJwt => {
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

/// The identity document (`what` = "identity") or the emails list (`what` = "emails") at `url`; the token as
/// the upstream takes it (Bearer, or a query parameter as RC does for `default` and `payload`), with the
/// upstream's extra headers (Twitch's `Client-Id`).
pub(super) async fn fetch_json(
    s: &AppState,
    p: &Provider,
    up: &Upstream,
    url: &str,
    what: &str,
    access: &str,
) -> Result<Value, Failure> {
    let name = &p.name;
    let mut req = s.http.get(url).header("accept", "application/json");
    req = match &up.identity_auth {
        IdentityAuth::Bearer => req.bearer_auth(access),
        IdentityAuth::Query(param) => req.query(&[(param.as_ref(), access)]),
    };
    for (header, value) in &up.identity_headers {
        req = req.header(*header, value);
    }
    let body = body(s, p, req, what).await?;
    serde_json::from_slice(&body)
        .map_err(|_| Failure::upstream(format!("{name}'s {what} response is not JSON")))
}

/// A successful answer's body, at most the configured cap.
pub(super) async fn body(
    s: &AppState,
    p: &Provider,
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let name = &p.name;
    let resp = req.send().await.map_err(|e| {
        Failure::upstream(format!(
            "{name}'s {what} endpoint is unreachable ({})",
            short(&e)
        ))
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Failure::upstream(format!(
            "{name}'s {what} endpoint answered {status}"
        )));
    }
    read_capped(resp, s.config.limits.upstream_body_bytes)
        .await
        .map_err(|e| e.failure(name, what))
}

/// Why an upstream answer's body was not read.
pub(super) enum BodyError {
    /// Larger than the cap (announced or streamed).
    TooLarge(usize),
    Read,
}

impl BodyError {
    pub(super) fn failure(self, name: &str, what: &str) -> Failure {
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
pub(super) fn clip(s: &str) -> String {
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
