//! The HTTP surface: one axum router over every dialect, plus the operational endpoints and the per-request
//! middleware (request id, one log line, metrics, body limit, timeout).

pub mod locoia;
pub mod openapi;
pub mod rc;
pub mod stack;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::state::AppState;
use crate::wire::Routes;

/// Every route the server answers: the one table the router is built from.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(Method::GET, "/healthz", healthz)
        .route(Method::GET, "/metrics", metrics)
        .route(Method::GET, "/openapi.json", || async {
            Json(openapi::document())
        })
        .merge(rc::routes())
        .merge(locoia::routes())
        .merge(stack::routes())
        .merge(crate::oauth::routes())
        .merge(crate::web::routes())
        .merge(crate::upstream::routes())
}

/// `ok` while the store answers; a 503 naming the database when it does not, so a load balancer routes around a
/// node that cannot reach it (the node recovers by itself when the database is back).
async fn healthz(State(state): State<AppState>) -> Response {
    if let Some(problem) = state.store.problem() {
        let body = format!("store corrupt: {problem}; run `latchkey restore`");
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    if state.store.healthy().await {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    let app = routes().into_router();
    let app = match issuer_path(&state.issuer) {
        // Served both under the issuer's path (a proxy that forwards it as is) and at the root (one that strips
        // it), plus RFC 8414 §3.1's metadata location, which puts the path after the well-known segment.
        Some(path) => Router::new()
            .route(
                &format!("/.well-known/oauth-authorization-server{path}"),
                axum::routing::get(crate::oauth::metadata::metadata),
            )
            .nest(path, app.clone())
            .merge(app),
        None => app,
    };
    app.fallback(not_found)
        .layer(middleware::map_response(json_charset))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), header_limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .with_state(state)
}

/// The path of an issuer URL such as `https://host/auth` (`/auth`), without a trailing slash; `None` when the
/// issuer is the host's root.
fn issuer_path(issuer: &str) -> Option<&str> {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let path = after_scheme.find('/').map(|i| &after_scheme[i..])?;
    Some(path.trim_end_matches('/')).filter(|p| !p.is_empty())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"success": false, "error": "Not found"})),
    )
        .into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    metrics::gauge!("latchkey_store_size_bytes").set(s.store.size_on_disk() as f64);
    let body = crate::telemetry::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// JSON answers say `application/json; charset=utf-8`, as Rocket.Chat's (express) and Stack's do: clients and
/// test suites written against those products compare the header as a whole.
async fn json_charset(mut resp: Response) -> Response {
    if let Some(ct) = resp.headers_mut().get_mut(header::CONTENT_TYPE) {
        if ct.as_bytes() == b"application/json" {
            *ct = HeaderValue::from_static("application/json; charset=utf-8");
        }
    }
    resp
}

/// 431 when the request line and headers exceed `limits.header_bytes`. hyper's read buffer (sized from the same
/// limit) only bounds memory: a header block that arrives in one large read can pass it, so the limit itself is
/// enforced here, on the parsed request.
async fn header_limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    let size = req.method().as_str().len()
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len())
        + 12
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > s.config.limits.header_bytes {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header block too large",
        )
            .into_response();
    }
    next.run(req).await
}

/// 408 once a request (reading a slow body included) outlasts `limits.request_timeout_secs`, in the format of the
/// endpoint it was for, so a client gets an error it can read rather than a bare status.
async fn request_timeout(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let limit = Duration::from_secs(s.config.limits.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => timed_out(&path),
    }
}

/// The 408 answer for `path`, in its endpoint's dialect.
fn timed_out(path: &str) -> Response {
    const WHY: &str = "the request took too long";
    let status = StatusCode::REQUEST_TIMEOUT;
    let mut r = if path.starts_with("/api/v1/oauth-providers") {
        // Stack's failures without a known-error code are plain text.
        (status, "Request Timeout").into_response()
    } else if path.starts_with("/api/v1/") {
        rc::error::failure("Request timeout", "error-request-timeout", None)
    } else if path.starts_with("/v1/connectors/") {
        locoia::error_body(status, "request_timeout", WHY)
    } else if matches!(
        path,
        "/oauth/token" | "/oauth/introspect" | "/oauth/revoke" | "/oauth/userinfo"
    ) {
        crate::oauth::error::OAuthError::new("temporarily_unavailable", WHY).into_response()
    } else {
        crate::web::pages::error_page(
            status,
            "Request timed out",
            "The request took too long. Please try again.",
        )
    };
    *r.status_mut() = status;
    r
}

/// One structured line per request (method, route, status, latency, request id) and the request metrics. Only
/// the matched route template is logged, never the raw path or query, which can carry codes and tokens.
async fn observe(State(_s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = crate::crypto::uuid_v4();
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        target: "latchkey::request",
        %method, route, status, latency_ms = elapsed.as_secs_f64() * 1e3, request_id,
    );
    crate::telemetry::record_request(method.as_str(), &route, status, elapsed);
    resp
}

#[cfg(test)]
mod tests {
    use super::issuer_path;

    #[test]
    fn an_issuer_path_is_found_without_its_trailing_slash() {
        assert_eq!(issuer_path("http://127.0.0.1:8080"), None);
        assert_eq!(issuer_path("https://id.example.com/"), None);
        assert_eq!(issuer_path("https://host/auth"), Some("/auth"));
        assert_eq!(issuer_path("https://host/a/b/"), Some("/a/b"));
    }
}
