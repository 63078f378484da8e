//! Steps many tests share: register an app, create a user, through the admin API as a client would; sign in
//! through the page as a browser would.

use reqwest::Client;
use serde_json::{json, Value};

use super::{hidden_inputs, Auth, Server};

/// The redirect URI apps are registered with unless a test says otherwise.
pub const REDIRECT: &str = "http://127.0.0.1:9999/cb";

/// The PKCE code verifier of the code flows the tests run (its S256 challenge is `common::s256(VERIFIER)`).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ0I5ZKUJ8a1Tt1_xyzabc0123456789abcdefg";

/// The token request form that redeems `code` (obtained with `REDIRECT` and the challenge of `VERIFIER`).
pub fn code_grant(code: &str) -> [(&'static str, &str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

/// A registered app: ids, secret (confidential only).
pub struct TestApp {
    pub id: String,
    pub client_id: String,
    pub secret: Option<String>,
}

/// Registers an active app redirecting to `REDIRECT`; `extra` adds or overrides fields of the request.
pub async fn make_app(s: &Server, extra: Value) -> TestApp {
    let a = s.admin().await;
    let mut body = json!({"name": "Test App", "redirectUri": REDIRECT, "active": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (st, v) = s.post("/api/v1/oauth-apps.create", &a, body).await;
    assert_eq!(st, 200, "{v}");
    let app = &v["application"];
    TestApp {
        id: app["_id"].as_str().unwrap().into(),
        client_id: app["clientId"].as_str().unwrap().into(),
        secret: app["clientSecret"].as_str().map(str::to_owned),
    }
}

/// Creates user `name` (password `pw`, email `NAME@example.com`) as `admin`; returns the user's id.
pub async fn create_user(s: &Server, admin: &Auth, name: &str) -> String {
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            admin,
            json!({"username": name, "email": format!("{name}@example.com"), "password": "pw"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["user"]["_id"].as_str().unwrap().to_owned()
}

/// Posts the sign-in form of `page` (its hidden inputs) with `user` and `password`.
pub async fn submit_sign_in(
    s: &Server,
    b: &Client,
    page: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = hidden_inputs(page);
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    b.post(format!("{}/login", s.url))
        .form(&form)
        .send()
        .await
        .unwrap()
}
