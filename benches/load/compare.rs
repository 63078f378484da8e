//! Compare mode: another OAuth server's `client_credentials` token endpoint under the same load generator, as a
//! row beside Latchkey's (`LOAD_COMPARE_URL=http://host:port/token`, `LOAD_COMPARE_CLIENT=id:secret`). Plain HTTP
//! only: the generator speaks no TLS, and a side-by-side belongs on loopback anyway.
//! `LOAD_COMPARE_URL=latchkey` starts a second Latchkey and uses a client of its own (a self-test of the mode).

use std::net::SocketAddr;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Method;

use super::{Scenario, Target};

/// What the compare row sends, from the environment.
pub struct Compare {
    pub url: String,
    /// `id:secret`; `None` with `LOAD_COMPARE_URL=latchkey` (the client is created on the second server).
    pub client: Option<(String, String)>,
    /// The form body (default `grant_type=client_credentials`; e.g. add `&scope=…` or `&resource=…`).
    pub body: String,
}

impl Compare {
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(url) = std::env::var("LOAD_COMPARE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(None);
        };
        let body = std::env::var("LOAD_COMPARE_BODY")
            .unwrap_or_else(|_| "grant_type=client_credentials".into());
        if url == "latchkey" {
            return Ok(Some(Self {
                url,
                client: None,
                body,
            }));
        }
        let client = std::env::var("LOAD_COMPARE_CLIENT")
            .ok()
            .and_then(|c| c.split_once(':').map(|(i, s)| (i.to_owned(), s.to_owned())))
            .ok_or("LOAD_COMPARE_URL needs LOAD_COMPARE_CLIENT=id:secret")?;
        if !url.starts_with("http://") {
            return Err(format!(
                "LOAD_COMPARE_URL must be http:// (no TLS in the generator), got {url:?}"
            ));
        }
        Ok(Some(Self {
            url,
            client: Some(client),
            body,
        }))
    }
}

/// The target and path of an `http://` URL (the host resolved once, like the generator's own server).
pub async fn target(url: &str) -> Result<(Target, String), String> {
    let u = url::Url::parse(url).map_err(|e| format!("LOAD_COMPARE_URL: {e}"))?;
    let host = u.host_str().ok_or("LOAD_COMPARE_URL has no host")?;
    let port = u.port_or_known_default().unwrap_or(80);
    let addr: SocketAddr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let authority = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    let host = HeaderValue::from_str(&authority).map_err(|e| e.to_string())?;
    Ok((Target { addr, host }, path))
}

/// The compare row: the other server's token endpoint with Basic client authentication.
pub fn scenario(path: String, id: &str, secret: &str, body: &str) -> Scenario {
    Scenario {
        key: "compare",
        label: "compare: POST token endpoint (client_credentials) of LOAD_COMPARE_URL",
        method: Method::POST,
        path,
        headers: vec![
            super::basic_auth(id, secret),
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ),
        ],
        body: Bytes::from(body.to_owned()),
        once: None,
        dest: super::Dest::Compare,
    }
}
