//! Test harness: a real server (`server::start`) in a temp dir, and an HTTP client that speaks to it.

use latchkey::clock::Clock;
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
    spawn_with(|_| {}).await
}

/// Starts a server whose config `tweak` may adjust.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_test(dir.path());
    tweak(&mut cfg);
    let running = latchkey::server::start(cfg, Clock::system())
        .await
        .expect("server starts");
    Server {
        url: running.url(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        running: Some(running),
        dir,
    }
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
        let r = self
            .req(Method::POST, "/api/v1/login")
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

pub async fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}
