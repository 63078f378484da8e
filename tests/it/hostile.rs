//! Hostile input (docs/endpoints.md#conventions, docs/reliability.md): oversized bodies and header blocks, slow clients, bad encodings, parameter
//! floods, huge ids and tokens, unexpected content types and pathological JSON. Every answer is the dialect's
//! error (RC, Locoia, RFC 6749 JSON), nothing panics, and afterwards the server still answers and nothing changed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{json_of, spawn_with, Auth, Server};

const FORM: &str = "application/x-www-form-urlencoded";

/// A server with a short header-read and request timeout, an admin, and one confidential client.
struct Target {
    s: Server,
    a: Auth,
    client_id: String,
    secret: String,
    apps: Value,
}

async fn target() -> Target {
    let s = spawn_with(|c| {
        c.limits.header_read_timeout_secs = 1;
        c.limits.request_timeout_secs = 2;
    })
    .await;
    let a = s.admin().await;
    let (client_id, secret) = s.create_worker(&a).await;
    let (_, apps) = s.get("/api/v1/oauth-apps.list", &a).await;
    Target {
        s,
        a,
        client_id,
        secret,
        apps,
    }
}

impl Target {
    fn addr(&self) -> SocketAddr {
        self.s.running.as_ref().unwrap().addr
    }

    /// The server still answers, the apps are as they were, and every index agrees with its records.
    async fn unchanged(&self) {
        let r = self.s.req(Method::GET, "/healthz").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
        let (st, apps) = self.s.get("/api/v1/oauth-apps.list", &self.a).await;
        assert_eq!((st, &apps), (200, &self.apps));
        self.s
            .running
            .as_ref()
            .unwrap()
            .state
            .store
            .verify()
            .unwrap();
    }

    /// A form POST with raw bytes.
    async fn form(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.s
            .req(Method::POST, path)
            .header(CONTENT_TYPE, FORM)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A client-authenticated form POST (introspection, revocation).
    async fn client_form(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        json_of(
            self.s
                .req(Method::POST, path)
                .basic_auth(&self.client_id, Some(&self.secret))
                .header(CONTENT_TYPE, FORM)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A JSON-ish POST with raw bytes on an RC route.
    async fn rc_raw(&self, path: &str, ct: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        json_of(
            self.s
                .authed(Method::POST, path, &self.a)
                .header(CONTENT_TYPE, ct)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn locoia_raw(&self, ct: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        json_of(
            self.s
                .req(Method::PUT, "/v1/connectors/nope/custom_auth")
                .bearer_auth(&self.a.token)
                .header(CONTENT_TYPE, ct)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// RFC 6749 §5.2 `invalid_request`, with the no-store headers.
async fn assert_oauth_invalid_request(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (st, v) = json_of(r).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (status, Some("invalid_request")),
        "{v}"
    );
    assert!(v["error_description"].is_string(), "{v}");
    v
}

/// RC's 400 (`success: false` and an `error`), never axum's plain text.
fn assert_rc_400((st, v): (u16, Value)) -> Value {
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert!(v["error"].is_string(), "{v}");
    v
}

/// Writes `bytes` on a fresh connection and reads until the server closes it; the answer's status, or `None`
/// when the server closed without one. The write may fail when the server stops reading early: that is fine.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

#[tokio::test]
async fn oversized_bodies_get_413_in_each_dialects_format() {
    let t = target().await;
    let big = "x".repeat(70 * 1024);

    let (st, v) =
        t.s.post(
            "/api/v1/settings.addCustomOAuth",
            &t.a,
            json!({"name": big}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (413, Some("error-payload-too-large")),
        "{v}"
    );
    assert_eq!(v["success"], false);

    let (st, v) = t
        .locoia_raw(
            "application/json",
            json!({"oauth2": [], "pad": big}).to_string(),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );

    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let r = t
            .form(path, format!("grant_type=client_credentials&pad={big}"))
            .await;
        assert_oauth_invalid_request(r, 413).await;
    }

    // The pages' forms: an error page a browser can show, with the pages' security headers.
    for path in ["/login", "/logout", "/oauth/authorize"] {
        let r = t.form(path, format!("csrf=x&pad={big}")).await;
        assert_eq!(r.status().as_u16(), 413, "{path}");
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let page = r.text().await.unwrap();
        assert!(page.contains("Too much data"), "{path}: {page}");
    }

    // Chunked, without a Content-Length: cut off at the limit just the same.
    let mut req = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(big.as_bytes());
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(raw(t.addr(), &req).await, Some(413));
    t.unchanged().await;
}

#[tokio::test]
async fn an_oversized_header_block_gets_431() {
    let t = target().await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "h".repeat(20 * 1024)
    );
    assert_eq!(raw(t.addr(), big.as_bytes()).await, Some(431));
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(raw(t.addr(), many.as_bytes()).await, Some(431));
    // Through a real client on an RC route: a 20 KB token header.
    let r =
        t.s.req(Method::GET, "/api/v1/me")
            .header("X-User-Id", &t.a.user_id)
            .header("X-Auth-Token", "t".repeat(20 * 1024))
            .send()
            .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 431);
    }
    t.unchanged().await;
}

#[tokio::test]
async fn a_slow_client_is_disconnected_within_the_header_read_timeout() {
    let t = target().await;
    // Half a header block, then one byte every 200 ms: the timeout is a deadline, not an idle timer.
    let started = Instant::now();
    let mut c = TcpStream::connect(t.addr()).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut rd, mut wr) = c.into_split();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), rd.read_to_end(&mut buf)).await;
    trickle.abort();
    assert!(read.is_ok(), "the connection was still open after 6 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed late: {took:?}");
    let head = String::from_utf8_lossy(&buf);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 408"),
        "{head}"
    );

    // A body that stalls halfway is ended by the request timeout (2 s here) with 408.
    let started = Instant::now();
    let stall = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nContent-Length: 1000\r\n\r\ngrant_type="
    );
    let mut c = TcpStream::connect(t.addr()).await.unwrap();
    c.write_all(stall.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(6), c.read(&mut buf))
        .await
        .expect("answered within the request timeout")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
    assert!(started.elapsed() < Duration::from_secs(4));
    t.unchanged().await;
}

#[tokio::test]
async fn invalid_utf8_and_bad_percent_encoding_are_invalid_requests() {
    let t = target().await;
    let bodies: [&[u8]; 6] = [
        b"grant_type=client_credentials&client_id=%FF%FE&client_secret=x",
        b"grant_type=client_credentials&scope=\xff\xfe",
        b"grant_type=client%ZZcredentials",
        b"grant_type=%",
        b"grant_type=client_credentials&client_id=%C3",
        b"grant_%E2%82=client_credentials",
    ];
    for body in bodies {
        let r = t.form("/oauth/token", body.to_vec()).await;
        let v = assert_oauth_invalid_request(r, 400).await;
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("percent-encoded UTF-8"),
            "{v}"
        );
        let (st, v) = t.client_form("/oauth/introspect", body.to_vec()).await;
        assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    }
    // The same in the authorization endpoint's query string: an error page, never a redirect.
    for q in [
        "client_id=%FF%FE&response_type=code",
        "client_id=abc&state=%ZZ",
        "client_id=%",
    ] {
        let r =
            t.s.req(Method::GET, &format!("/oauth/authorize?{q}"))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("malformed"), "{q}");
    }
    // RC: invalid UTF-8 in a JSON body, bad escapes in a query string.
    let v = assert_rc_400(
        t.rc_raw(
            "/api/v1/oauth-apps.create",
            "application/json",
            b"{\"name\":\"\xff\xfe\",\"redirectUri\":\"https://a.example/cb\",\"active\":true}"
                .to_vec(),
        )
        .await,
    );
    assert_eq!(v["errorType"], "invalid-params");
    for q in ["userId=%FF%FE", "userId=%ZZ", "username=%"] {
        assert_rc_400(t.s.get(&format!("/api/v1/users.info?{q}"), &t.a).await);
    }
    assert_rc_400(t.s.get("/api/v1/oauth-apps.get?_id=%C3%28", &t.a).await);
    // Locoia: invalid UTF-8 in JSON.
    let (st, v) = t
        .locoia_raw("application/json", b"{\"oauth2\":[\"\xff\"]}".to_vec())
        .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    t.unchanged().await;
}

#[tokio::test]
async fn duplicate_and_flooded_parameters_are_refused_fast() {
    let t = target().await;
    let r = t
        .form(
            "/oauth/token",
            "grant_type=client_credentials&grant_type=client_credentials",
        )
        .await;
    let v = assert_oauth_invalid_request(r, 400).await;
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("more than once"));

    // Thousands of parameters (under the body limit): refused after the 64th, quickly.
    let flood: Vec<String> = (0..6000).map(|i| format!("p{i}=1")).collect();
    let flood = flood.join("&");
    assert!(flood.len() < 64 * 1024);
    let started = Instant::now();
    let r = t.form("/oauth/token", flood.clone()).await;
    let v = assert_oauth_invalid_request(r, 400).await;
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("too many"));
    let (st, _) = t.client_form("/oauth/revoke", flood).await;
    assert_eq!(st, 400);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The same name thousands of times.
    let same = vec!["token=x"; 5000].join("&");
    let (st, v) = t.client_form("/oauth/introspect", same).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    // Nothing but separators is no parameters at all.
    let r = t.form("/oauth/token", "&".repeat(60_000)).await;
    assert_oauth_invalid_request(r, 400).await;

    // A query-string flood at the authorization endpoint (under the header limit) and on an RC route.
    let q: Vec<String> = (0..1500).map(|i| format!("p{i}=1")).collect();
    let q = q.join("&");
    let r =
        t.s.req(Method::GET, &format!("/oauth/authorize?{q}"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    assert_rc_400(t.s.get(&format!("/api/v1/oauth-apps.get?{q}"), &t.a).await);
    // An RC body with thousands of keys.
    let keys: serde_json::Map<String, Value> =
        (0..3000).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_rc_400(
        t.s.post("/api/v1/oauth-apps.create", &t.a, Value::Object(keys))
            .await,
    );
    t.unchanged().await;
}

#[tokio::test]
async fn huge_ids_and_tokens_are_rejected_without_harm() {
    let t = target().await;
    let mb = "A".repeat(1 << 20);
    // 1 MB in a query string: over the header-block limit, refused before any handler runs.
    for path in [
        format!("/oauth/authorize?response_type=code&client_id={mb}"),
        format!("/api/v1/oauth-apps.get?clientId={mb}"),
        format!("/api/v1/settings/{mb}"),
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let st = raw(t.addr(), req.as_bytes()).await;
        assert!(matches!(st, Some(414 | 431) | None), "{st:?}");
    }
    // Big, but under the limits: plain "unknown" answers in each dialect.
    let big = "A".repeat(60 * 1024);
    for _ in 0..3 {
        let r = t
            .form(
                "/oauth/token",
                format!("grant_type=client_credentials&client_id={big}&client_secret=x"),
            )
            .await;
        let (st, v) = json_of(r).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (401, Some("invalid_client")),
            "{v}"
        );
    }
    let (st, v) = t
        .client_form("/oauth/introspect", format!("token={big}"))
        .await;
    assert_eq!((st, v), (200, json!({"active": false})));
    // Two 6 KB credentials: together under the 16 KiB header limit.
    let six_kb = "t".repeat(6 * 1024);
    let r =
        t.s.req(Method::GET, "/api/v1/me")
            .header("X-User-Id", &six_kb)
            .header("X-Auth-Token", &six_kb)
            .send()
            .await
            .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!((st, v["success"].as_bool()), (401, Some(false)));
    let r =
        t.s.req(Method::GET, "/api/v1/oauth-apps.list")
            .bearer_auth(&six_kb)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        t.s.req(Method::GET, "/v1/connectors/x/custom_auth")
            .bearer_auth(&six_kb)
            .send()
            .await
            .unwrap();
    assert_eq!(json_of(r).await.1["error"], "unauthorized");
    let v = assert_rc_400(
        t.s.get(
            &format!(
                "/api/v1/settings/Accounts_OAuth_Custom-{}",
                "X".repeat(8000)
            ),
            &t.a,
        )
        .await,
    );
    assert_eq!(v["errorType"], "error-setting-not-found");
    let r =
        t.s.req(Method::POST, "/api/v1/login")
            .json(&json!({"user": &big[..30_000], "password": &big[..30_000]}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    t.unchanged().await;
}

#[tokio::test]
async fn unexpected_content_types_are_refused_in_the_dialects_format() {
    let t = target().await;
    for (ct, body) in [
        ("application/json", r#"{"grant_type":"client_credentials"}"#),
        ("text/plain", "grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", "--x\r\n\r\n--x--"),
        ("", "grant_type=client_credentials"),
    ] {
        let mut rb =
            t.s.req(Method::POST, "/oauth/token")
                .basic_auth(&t.client_id, Some(&t.secret))
                .body(body);
        if !ct.is_empty() {
            rb = rb.header(CONTENT_TYPE, ct);
        }
        let v = assert_oauth_invalid_request(rb.send().await.unwrap(), 400).await;
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded"));
    }
    // The media type is matched case-insensitively, parameters allowed.
    let r =
        t.s.req(Method::POST, "/oauth/token")
            .basic_auth(&t.client_id, Some(&t.secret))
            .header(
                CONTENT_TYPE,
                "Application/X-WWW-Form-URLEncoded; charset=utf-8",
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    // RC and Locoia read JSON: a form, multipart or XML body is a 400 in their format.
    for (ct, body) in [
        (
            FORM,
            "name=x&redirectUri=https%3A%2F%2Fa.example%2Fcb&active=true",
        ),
        ("multipart/form-data; boundary=x", "--x\r\n\r\n--x--"),
        ("application/xml", "<app><name>x</name></app>"),
    ] {
        let v = assert_rc_400(t.rc_raw("/api/v1/oauth-apps.create", ct, body).await);
        assert_eq!(v["errorType"], "invalid-params");
        let (st, v) = t.locoia_raw(ct, body).await;
        assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    }
    t.unchanged().await;
}

#[tokio::test]
async fn deep_nesting_and_huge_numbers_are_400s_not_crashes() {
    let t = target().await;
    let nested = |open: &str, n: usize| open.repeat(n);
    for body in [
        nested("[", 50_000),
        nested("{\"a\":", 10_000),
        format!("{}1{}", nested("[", 120), "]".repeat(120)) + &nested("[", 40_000),
    ] {
        assert!(body.len() < 64 * 1024);
        let v = assert_rc_400(
            t.rc_raw(
                "/api/v1/oauth-apps.create",
                "application/json",
                body.clone(),
            )
            .await,
        );
        assert_eq!(v["errorType"], "invalid-params");
        let (st, v) = t.locoia_raw("application/json", body).await;
        assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
    }
    // Over the body limit, the nesting never reaches the parser: 413 in RC's format.
    let (st, v) = t
        .rc_raw(
            "/api/v1/oauth-apps.create",
            "application/json",
            nested("[", 100_000),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (413, Some("error-payload-too-large"))
    );
    // Huge numbers: out of f64's range is malformed JSON; in range but of the wrong type is a schema error.
    let v = assert_rc_400(
        t.rc_raw(
            "/api/v1/oauth-apps.create",
            "application/json",
            r#"{"name": 1e999999, "redirectUri": "https://a.example/cb", "active": true}"#,
        )
        .await,
    );
    assert_eq!(v["errorType"], "invalid-params");
    let digits = "9".repeat(300);
    let v = assert_rc_400(
        t.rc_raw(
            "/api/v1/oauth-apps.create",
            "application/json",
            format!(
                r#"{{"name": {digits}, "redirectUri": "https://a.example/cb", "active": true}}"#
            ),
        )
        .await,
    );
    assert_eq!(v["error"], "must be string [invalid-params]");
    crate::providers::add(&t.s, &t.a, "Idp").await;
    for value in ["1e308", "-0.0000000000000000000001e-300", &digits] {
        let r = crate::providers::with_2fa(t.s.authed(
            Method::POST,
            "/api/v1/settings/Accounts_OAuth_Custom-Idp-url",
            &t.a,
        ))
        .header(CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"value": {value}}}"#))
        .send()
        .await
        .unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(st, 400, "{value}: {v}");
        assert_eq!(v["success"], false);
    }
    t.unchanged().await;
}

/// Reads from `c` until the server closes it, for at most `limit`; true if it closed (EOF or reset) in time.
async fn closed_within(c: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.is_ok()
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_first_byte_timeout() {
    let s = spawn_with(|c| c.limits.first_byte_timeout_secs = 1).await;
    let addr = s.running.as_ref().unwrap().addr;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    for c in &mut silent {
        assert!(
            closed_within(c, Duration::from_secs(5)).await,
            "a silent connection stayed open"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed late: {took:?}");
    let r = s.req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_h2c_preface_alone_and_an_idle_keep_alive_are_closed_after_the_idle_timeout() {
    let s = spawn_with(|c| c.limits.idle_timeout_secs = 1).await;
    let addr = s.running.as_ref().unwrap().addr;
    let started = Instant::now();
    let mut h2 = TcpStream::connect(addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut h2, Duration::from_secs(6)).await,
        "an h2c preface held the connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // One request on a keep-alive connection, then silence.
    let mut h1 = TcpStream::connect(addr).await.unwrap();
    h1.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    h1.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    let started = Instant::now();
    assert!(
        closed_within(&mut h1, Duration::from_secs(6)).await,
        "an idle keep-alive stayed open"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn at_max_connections_the_oldest_idle_goes_and_healthz_still_answers() {
    let s = spawn_with(|c| {
        c.limits.max_connections = 8;
        c.limits.first_byte_timeout_secs = 60;
        c.limits.idle_timeout_secs = 60;
        c.limits.request_timeout_secs = 2;
    })
    .await;
    let addr = s.running.as_ref().unwrap().addr;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // The server made room by closing the oldest silent ones, not by stalling accept.
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        s.req(Method::GET, "/healthz").send(),
    )
    .await
    .expect("/healthz answered at the cap")
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    for c in &mut silent[..8] {
        assert!(
            closed_within(c, Duration::from_secs(2)).await,
            "an old silent connection stayed open"
        );
    }

    // Eight busy connections (a body that never completes is a request in flight): a new one is refused at
    // once, and the server recovers when the request timeout ends them.
    let stall = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nContent-Length: 1000\r\n\r\ngrant_type="
    );
    let mut busy = Vec::new();
    for _ in 0..8 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(stall.as_bytes()).await.unwrap();
        busy.push(c);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut refused, Duration::from_secs(1)).await,
        "a connection over the cap was kept"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    let mut answered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            s.req(Method::GET, "/healthz").send(),
        )
        .await;
        if matches!(r, Ok(Ok(ref r)) if r.status() == 200) {
            answered = true;
            break;
        }
    }
    assert!(
        answered,
        "/healthz never answered after the busy connections timed out"
    );
}

#[tokio::test]
async fn an_overflowing_config_value_stops_the_binary_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[tokens]\naccess_ttl_secs = 10000000000000000\n").unwrap();
    let mut cmd = crate::common::binary::serve(dir.path());
    cmd.arg("--config").arg(&cfg);
    let out = crate::common::binary::run_to_exit(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "the server started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tokens.access_ttl_secs"), "{err}");
}

#[tokio::test]
async fn a_request_timeout_is_answered_in_the_endpoints_format() {
    let t = target().await;
    // A body that stalls halfway, per dialect: (path, content type, what the 408 body has).
    for (path, ct, has) in [
        (
            "/oauth/token",
            FORM,
            "\"error\":\"temporarily_unavailable\"",
        ),
        (
            "/api/v1/users.create",
            "application/json",
            "\"errorType\":\"error-request-timeout\"",
        ),
        ("/login", FORM, "Request timed out"),
    ] {
        let stall = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: 1000\r\nX-User-Id: {}\r\nX-Auth-Token: {}\r\nConnection: close\r\n\r\n{{",
            t.a.user_id, t.a.token
        );
        let mut c = TcpStream::connect(t.addr()).await.unwrap();
        c.write_all(stall.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(6), c.read_to_end(&mut buf)).await;
        let answer = String::from_utf8_lossy(&buf);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(body.contains(has), "{path}: {answer}");
    }
    t.unchanged().await;
}
