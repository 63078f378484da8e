//! HTTP plumbing every dialect shares, written once so that each dialect only maps the outcome to its own error
//! format: the route table, the Bearer credentials of a request, its body under the size limit, and
//! `Retry-After` in seconds.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::routing::{on, MethodFilter};
use axum::Router;

/// A part of the HTTP surface: the axum router and the table of `(method, path)` it serves, both filled by the
/// same [`Routes::route`] call. axum 0.8 cannot list a router's routes, so this table is how a test walks what is
/// really served (and checks each JSON endpoint is documented) without a hand-kept list that could drift.
pub struct Routes<S> {
    router: Router<S>,
    table: Vec<(Method, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Serves `method path` with `handler`; several methods on one path each take a call.
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.router = self.router.route(path, on(filter, handler));
        self.table.push((method, path));
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Every `(method, path template)` served, in the order they were added.
    pub fn table(&self) -> &[(Method, &'static str)] {
        &self.table
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// An `Authorization` header that names the Bearer scheme but carries no well-formed token.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedBearer;

/// The token of `Authorization: Bearer <b64token>` (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110
/// §11.1). `Ok(None)` when the request presents no Bearer credentials at all (no header, or another scheme such as
/// Basic), so callers can tell "no credentials" from "bad credentials" as RFC 6750 §3.1 asks.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, MalformedBearer> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(i) => value.split_at(i),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let token = rest.trim_ascii();
    if !is_b64token(token) {
        return Err(MalformedBearer);
    }
    // A b64token is ASCII, so this never fails.
    std::str::from_utf8(token)
        .map(Some)
        .map_err(|_| MalformedBearer)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
fn is_b64token(t: &[u8]) -> bool {
    let body = t
        .iter()
        .rposition(|b| *b != b'=')
        .map_or(&b""[..], |i| &t[..=i]);
    !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over `limits.body_bytes`: 413.
    TooLarge,
    /// The connection failed or the body was cut short: 400.
    Unreadable,
}

/// The whole request body, under the router's body limit. Every body extractor reads through here and maps the
/// [`BodyError`] to its dialect's 413 or 400, never to axum's plain-text rejection.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, BodyError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Unreadable
        }
    })
}

/// `Retry-After` in whole seconds for a wait of `ms` milliseconds: rounded up, so a client that waits that long is
/// never early, and at least 1, since `Retry-After: 0` invites an immediate retry that would be refused again.
pub fn retry_after_secs(ms: i64) -> i64 {
    (ms.max(1) + 999) / 1000
}

/// A response's status and JSON body: what the dialects' error-table tests compare.
#[cfg(test)]
pub async fn json_answer(r: axum::response::Response) -> (StatusCode, serde_json::Value) {
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer(&auth(v)), Ok(Some("abc")), "{v}");
        }
    }

    #[test]
    fn bearer_tokens_are_b64tokens() {
        assert_eq!(bearer(&auth("Bearer a-._~+/Z9==")), Ok(Some("a-._~+/Z9==")));
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer ==",
            "Bearer a b",
            "Bearer a=b",
            "Bearer tok!",
        ] {
            assert_eq!(bearer(&auth(v)), Err(MalformedBearer), "{v}");
        }
    }

    #[test]
    fn other_schemes_are_no_bearer_credentials() {
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
        for v in ["Basic YTpi", "Bearerx abc", "Token abc"] {
            assert_eq!(bearer(&auth(v)), Ok(None), "{v}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        for (ms, secs) in [
            (-5, 1),
            (0, 1),
            (1, 1),
            (999, 1),
            (1000, 1),
            (1001, 2),
            (59_999, 60),
        ] {
            assert_eq!(retry_after_secs(ms), secs, "{ms} ms");
        }
    }
}
