//! An emulated upstream identity provider for one catalogue preset: a small axum server on 127.0.0.1 that
//! serves the preset's endpoints as the resolver places them under its URL, and holds Latchkey to what the preset
//! says. Its authorize endpoint redirects back with a code (or with `error=access_denied`); its token endpoint
//! checks the client authentication (Basic or post), the redirect URI and PKCE (a verifier matching the
//! challenge, or none at all when the preset has no PKCE); its identity and emails endpoints check the access token
//! (Bearer or query parameter) and the preset's extra headers, and answer the documents the test gives. A check
//! that fails answers 400 with what failed, which the sign-in error page then quotes. Its emails endpoint can
//! misbehave as a [`Hostile`] upstream does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use base64::Engine;
use latchkey::model::catalogue::{self, ClientAuth, IdentityAuth, Upstream as Resolved};
use latchkey::model::Provider;
use serde_json::{json, Value};

/// The access token the emulated upstream issues.
pub const ACCESS_TOKEN: &str = "upstream-access-token";

/// What the emulated upstream answers, and the client it knows.
#[derive(Clone)]
pub struct Spec {
    pub preset: &'static str,
    pub options: Vec<(String, String)>,
    pub client_id: String,
    pub client_secret: String,
    /// The identity endpoint's answer.
    pub identity: Value,
    /// The emails endpoint's answer (presets with one).
    pub emails: Value,
    /// The authorize endpoint refuses (`error=access_denied`).
    pub deny: bool,
    /// The emails endpoint misbehaves so.
    pub emails_hostile: Option<Hostile>,
}

/// How an endpoint misbehaves: a body over every cap, HTML, no answer for 30 s, a redirect to another host.
#[derive(Clone, Copy, Debug)]
pub enum Hostile {
    Huge,
    NotJson,
    Slow,
    Redirect,
}

impl Hostile {
    async fn answer(self) -> Response {
        match self {
            Hostile::Huge => vec![b'['; 4 << 20].into_response(),
            Hostile::NotJson => "<html>maintenance</html>".into_response(),
            Hostile::Slow => {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                StatusCode::NO_CONTENT.into_response()
            }
            Hostile::Redirect => {
                Redirect::temporary("http://elsewhere.example/user/emails").into_response()
            }
        }
    }
}

impl Spec {
    pub fn new(preset: &'static str, identity: Value) -> Self {
        Spec {
            preset,
            options: Vec::new(),
            client_id: format!("client-of-{preset}"),
            client_secret: format!("secret-of-{preset}"),
            identity,
            emails: json!([]),
            deny: false,
            emails_hostile: None,
        }
    }
}

/// A running emulated upstream; stops when dropped.
pub struct EmulatedUpstream {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmulatedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Emulator {
    spec: Spec,
    at: Resolved,
    /// Issued codes: code → (redirect_uri, PKCE challenge).
    codes: Mutex<HashMap<String, (String, Option<String>)>>,
}

/// Starts an upstream that behaves as `spec.preset` says.
pub async fn start(spec: Spec) -> EmulatedUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let at = catalogue::resolve(&provider_at(&spec, &url)).expect("the preset resolves");
    let emulator = Arc::new(Emulator {
        spec,
        at,
        codes: Mutex::new(HashMap::new()),
    });
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let e = emulator.clone();
            async move { e.answer(&method, &uri, &headers, &body).await }
        },
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    EmulatedUpstream { url, task }
}

/// The provider Latchkey will have: the preset, its options, the client, and `url` as the base.
fn provider_at(spec: &Spec, url: &str) -> Provider {
    let mut p = Provider::new("emulated".into(), "Emulated".into(), 0);
    p.preset = Some(spec.preset.into());
    p.url = url.into();
    p.scope = String::new();
    p.options = spec.options.iter().cloned().collect();
    p.set(
        latchkey::model::provider::Setting::Id,
        latchkey::model::provider::SettingValue::Str(spec.client_id.clone()),
    )
    .unwrap();
    p
}

/// The path and query of an endpoint URL.
fn target(url: &str) -> (String, Vec<(String, String)>) {
    let u = url::Url::parse(url).unwrap();
    (u.path().to_owned(), u.query_pairs().into_owned().collect())
}

fn refuse(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": what}))).into_response()
}

impl Emulator {
    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let query: HashMap<String, String> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let path = uri.path();
        let emails = self.at.emails.as_ref().map(|(u, _)| target(u).0);
        if path == target(&self.at.authorize_url).0 && method == Method::GET {
            self.authorize(&query)
        } else if path == target(&self.at.token_url).0 && method == Method::POST {
            let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
            self.token(headers, &form)
        } else if path == target(&self.at.identity_url).0 {
            self.resource(headers, &query, &self.at.identity_url, &self.spec.identity)
        } else if emails.as_deref() == Some(path) {
            if let Some(how) = self.spec.emails_hostile {
                return how.answer().await;
            }
            self.resource(
                headers,
                &query,
                &self.at.emails.as_ref().unwrap().0,
                &self.spec.emails,
            )
        } else {
            (StatusCode::NOT_FOUND, "no such endpoint").into_response()
        }
    }

    fn authorize(&self, q: &HashMap<String, String>) -> Response {
        let Some(redirect) = q.get("redirect_uri") else {
            return refuse("no_redirect_uri");
        };
        if q.get("response_type").map(String::as_str) != Some("code")
            || q.get("client_id") != Some(&self.spec.client_id)
        {
            return refuse("bad_authorize_request");
        }
        if q.get("scope").map(String::as_str) != Some(self.at.scope.as_str()) {
            return refuse("unexpected_scope");
        }
        let challenge = q.get("code_challenge").cloned();
        let method_ok = q.get("code_challenge_method").map(String::as_str) == Some("S256");
        if self.at.pkce != (challenge.is_some() && method_ok) {
            return refuse("pkce_not_as_the_preset_says");
        }
        let state = q.get("state").cloned().unwrap_or_default();
        let mut back = url::Url::parse(redirect).unwrap();
        if self.spec.deny {
            back.query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "The user said no")
                .append_pair("state", &state);
        } else {
            let code = format!("code-{}", self.codes.lock().unwrap().len());
            self.codes
                .lock()
                .unwrap()
                .insert(code.clone(), (redirect.clone(), challenge));
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &state);
        }
        Redirect::to(back.as_str()).into_response()
    }

    fn token(&self, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
        let basic = headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic "));
        let client_ok = match self.at.client_auth {
            ClientAuth::Basic => {
                let want = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    self.spec.client_id, self.spec.client_secret
                ));
                basic == Some(want.as_str()) && !form.contains_key("client_secret")
            }
            ClientAuth::Post => {
                basic.is_none()
                    && form.get("client_id") == Some(&self.spec.client_id)
                    && form.get("client_secret") == Some(&self.spec.client_secret)
            }
            // Apple has its own emulation (tests/it/apple.rs).
            ClientAuth::AppleJwt => false,
        };
        if !client_ok {
            return refuse("invalid_client");
        }
        let Some((redirect, challenge)) = form
            .get("code")
            .and_then(|c| self.codes.lock().unwrap().remove(c))
        else {
            return refuse("invalid_grant");
        };
        let verifier_ok = match (&challenge, form.get("code_verifier")) {
            (Some(c), Some(v)) => &crate::common::s256(v) == c,
            (None, None) => true,
            _ => false,
        };
        if form.get("grant_type").map(String::as_str) != Some("authorization_code")
            || form.get("redirect_uri") != Some(&redirect)
            || !verifier_ok
        {
            return refuse("invalid_grant");
        }
        axum::Json(
            json!({"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600,
            "refresh_token": "upstream-refresh-token"}),
        )
        .into_response()
    }

    fn resource(
        &self,
        headers: &HeaderMap,
        q: &HashMap<String, String>,
        url: &str,
        answer: &Value,
    ) -> Response {
        let token_ok = match &self.at.identity_auth {
            IdentityAuth::Bearer => {
                headers.get("authorization").and_then(|h| h.to_str().ok())
                    == Some(&format!("Bearer {ACCESS_TOKEN}"))
            }
            IdentityAuth::Query(param) => {
                q.get(param.as_ref()).map(String::as_str) == Some(ACCESS_TOKEN)
            }
        };
        if !token_ok {
            return (StatusCode::UNAUTHORIZED, "no token").into_response();
        }
        for (name, value) in &self.at.identity_headers {
            if headers.get(*name).and_then(|h| h.to_str().ok()) != Some(value.as_str()) {
                return refuse("missing_header");
            }
        }
        if target(url).1.iter().any(|(k, v)| q.get(k) != Some(v)) {
            return refuse("missing_query");
        }
        axum::Json(answer.clone()).into_response()
    }
}
