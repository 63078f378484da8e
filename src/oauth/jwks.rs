//! `GET /.well-known/jwks.json`: the public keys ID tokens and JWT access tokens are signed with (RFC 7517),
//! served from the ring's pre-rendered document. Cacheable for a quarter of `publish_ahead` (at most an hour), so
//! a cache refetches before a newly published key signs; the `ETag` lets it do so cheaply.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn jwks(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let ring = s.keys.load();
    let etag = HeaderValue::from_str(ring.etag())
        .expect("a quoted base64url ETag is a valid header value");
    let cache = HeaderValue::from_str(&format!(
        "public, max-age={}",
        s.keys.policy().jwks_max_age_secs()
    ))
    .expect("a digit string is a valid header value");
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == ring.etag()
        });
    let headers = [(header::ETAG, etag), (header::CACHE_CONTROL, cache)];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let json = HeaderValue::from_static("application/json");
    (
        headers,
        [(header::CONTENT_TYPE, json)],
        Bytes::from_owner(ring.jwks().clone()),
    )
        .into_response()
}
