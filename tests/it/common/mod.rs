//! Test harness: a real server (`server::start`) in a temp dir, and an HTTP client that speaks to it.
//! `TestServer` starts one in-process; `binary` runs the real `latchkey` executable.

pub mod binary;
pub mod nodes;
pub mod steps;
mod test_server;
pub mod upstream;

pub use test_server::TestServer;

use latchkey::config::Config;
use latchkey::server::Running;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "admin-password";

pub struct Server {
    pub url: String,
    pub http: reqwest::Client,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
}

pub async fn spawn() -> Server {
    TestServer::new().start().await
}

/// Starts a server whose config `tweak` may adjust (`TestServer::new().config(tweak).start()`).
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Server {
    TestServer::new().config(tweak).start().await
}

/// RC credentials: `X-User-Id` + `X-Auth-Token`.
#[derive(Clone)]
pub struct Auth {
    pub user_id: String,
    pub token: String,
}

impl Server {
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }

    pub fn authed(&self, method: Method, path: &str, auth: &Auth) -> RequestBuilder {
        self.req(method, path)
            .header("X-User-Id", &auth.user_id)
            .header("X-Auth-Token", &auth.token)
    }

    pub async fn login(&self, user: &str, password: &str) -> Auth {
        login_at(&self.http, &self.url, user, password).await
    }

    pub async fn admin(&self) -> Auth {
        self.login("admin", ADMIN_PASSWORD).await
    }

    pub async fn post(&self, path: &str, auth: &Auth, body: Value) -> (u16, Value) {
        json_of(
            self.authed(Method::POST, path, auth)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Creates an app with RC's `oauth-apps.create` (`body` as RC takes it), asserts it was created, and returns its
    /// client id and secret.
    pub async fn create_app(&self, auth: &Auth, body: Value) -> (String, String) {
        let (st, v) = self.post("/api/v1/oauth-apps.create", auth, body).await;
        assert_eq!(st, 200, "{v}");
        let app = &v["application"];
        let field = |k: &str| app[k].as_str().unwrap().to_owned();
        (field("clientId"), field("clientSecret"))
    }

    /// Creates "Worker", a confidential app that may use only client_credentials; returns its id and secret.
    pub async fn create_worker(&self, auth: &Auth) -> (String, String) {
        let body = serde_json::json!({"name": "Worker", "redirectUri": "https://w.example/cb", "active": true,
                                      "grantTypes": ["client_credentials"]});
        self.create_app(auth, body).await
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> (u16, Value) {
        json_of(self.authed(Method::GET, path, auth).send().await.unwrap()).await
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
        self.dir
    }
}

/// Signs in with RC's `login` at the server at `url` (in-process or the binary); asserts it succeeds.
pub async fn login_at(http: &reqwest::Client, url: &str, user: &str, password: &str) -> Auth {
    let r = http
        .post(format!("{url}/api/v1/login"))
        .json(&serde_json::json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login as {user}");
    let v: Value = r.json().await.unwrap();
    Auth {
        user_id: v["data"]["userId"].as_str().unwrap().into(),
        token: v["data"]["authToken"].as_str().unwrap().into(),
    }
}

pub async fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// The `name="…" value="…"` pairs of the hidden inputs (and the form action) of an HTML page.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input").skip(1) {
        let tag = &part[..part.find('>').unwrap_or(part.len())];
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            let end = start + tag[start..].find('"')?;
            Some(unescape(&tag[start..end]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

/// Decodes HTML entities: named ones and numeric `&#NN;` / `&#xHH;` (askama writes numeric ones).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let ent = &tail[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The body of the page at `url`, as browser `b` gets it.
pub async fn page_text(b: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    b.get(url).send().await.unwrap().text().await.unwrap()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// base64url(SHA-256(verifier)), the S256 challenge.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Every file under `dir`, recursively (to scan a data dir for plaintext secrets).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
