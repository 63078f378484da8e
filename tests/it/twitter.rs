//! Rocket.Chat's Twitter over OAuth 1.0a (README.md#provider-presets), enabled through RC's built-in settings,
//! against an emulated Twitter on 127.0.0.1 that verifies every signature it gets: it recomputes HMAC-SHA1 over
//! the request (its own RFC 5849 code, not Latchkey's) from the consumer secret and the secret of the token the
//! request names, refuses a replayed nonce, and answers 401 when anything is off, as Twitter does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Client;
use serde_json::json;

use crate::catalogue::{authorize_url, to_callback};
use crate::common::{browser, query_of, Server, TestServer};
use crate::oauth_flow::{make_app, REDIRECT};
use crate::providers::set;

const CONSUMER_KEY: &str = "twitter-consumer-key";
const CONSUMER_SECRET: &str = "twitter-consumer-secret&+/";
const ACCESS_SECRET: &str = "twitter-access-token-secret";

/// What the emulated Twitter does wrong, when told to.
#[derive(Clone, Copy, PartialEq)]
enum Hostile {
    /// The request token answer is larger than any cap.
    Huge,
    /// The access token endpoint redirects elsewhere.
    Redirect,
    /// The identity answer comes after the callback's deadline.
    Slow,
    /// The identity answer is HTML.
    NotJson,
}

/// The emulated Twitter's knobs, which a test turns while it runs.
struct Knobs {
    /// The consumer secret it checks signatures with.
    consumer_secret: String,
    /// The user refuses at the authenticate page.
    deny: bool,
    hostile: Option<Hostile>,
}

/// An issued request token: its secret, the callback it was asked for, and its verifier once authorized.
struct RequestToken {
    secret: String,
    callback: String,
    verifier: Option<String>,
}

struct Twitter {
    url: String,
    knobs: Mutex<Knobs>,
    requests: Mutex<HashMap<String, RequestToken>>,
    /// Access token → its secret.
    access: Mutex<HashMap<String, String>>,
    nonces: Mutex<HashSet<String>>,
}

/// RFC 5849 §3.6, written again here so that the emulator does not trust Latchkey's encoder.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unpct(s: &str) -> String {
    form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn unauthorized(why: &str) -> Response {
    let body =
        json!({"errors": [{"code": 32, "message": format!("Could not authenticate you: {why}")}]});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

fn form(pairs: &[(&str, &str)]) -> Response {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.extend_pairs(pairs);
    f.finish().into_response()
}

impl Twitter {
    async fn start() -> (Arc<Twitter>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Arc::new(Twitter {
            url: format!("http://{}", listener.local_addr().unwrap()),
            knobs: Mutex::new(Knobs {
                consumer_secret: CONSUMER_SECRET.into(),
                deny: false,
                hostile: None,
            }),
            requests: Mutex::default(),
            access: Mutex::default(),
            nonces: Mutex::default(),
        });
        let app = {
            let t = t.clone();
            Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
                let t = t.clone();
                async move { t.answer(&method, &uri, &headers).await }
            })
        };
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (t, task)
    }

    fn hostile(&self) -> Option<Hostile> {
        self.knobs.lock().unwrap().hostile
    }

    async fn answer(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        let query: HashMap<String, String> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        match (method.as_str(), uri.path()) {
            ("POST", "/oauth/request_token") => self.request_token(method, uri, headers),
            ("GET", "/oauth/authenticate") => self.authenticate(&query),
            ("POST", "/oauth/access_token") => self.access_token(method, uri, headers),
            ("GET", "/1.1/account/verify_credentials.json") => {
                self.verify_credentials(method, uri, headers, &query).await
            }
            _ => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
        }
    }

    /// The protocol parameters of a request whose signature checks out under the consumer secret and the
    /// secret of the token it names (`token_secret`), or why it is refused.
    fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        token_secret: impl Fn(&str) -> Option<String>,
    ) -> Result<HashMap<String, String>, String> {
        let header = headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("OAuth "))
            .ok_or("no OAuth Authorization header")?;
        let mut oauth = HashMap::new();
        for field in header.split(',') {
            let (k, v) = field.trim().split_once('=').ok_or("a malformed field")?;
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            oauth.insert(unpct(k), unpct(v.ok_or("an unquoted value")?));
        }
        let get = |k: &str| oauth.get(k).cloned().unwrap_or_default();
        if get("oauth_consumer_key") != CONSUMER_KEY
            || get("oauth_signature_method") != "HMAC-SHA1"
            || get("oauth_version") != "1.0"
        {
            return Err("unknown consumer or signature method".into());
        }
        // Twitter refuses timestamps far from its own clock.
        let now = latchkey::clock::Clock::system().now_ms() / 1000;
        let ts: i64 = get("oauth_timestamp").parse().map_err(|_| "no timestamp")?;
        if (now - ts).abs() > 300 {
            return Err("stale timestamp".into());
        }
        if get("oauth_nonce").is_empty() || !self.nonces.lock().unwrap().insert(get("oauth_nonce"))
        {
            return Err("missing or replayed nonce".into());
        }
        let token_secret = match oauth.get("oauth_token") {
            Some(token) => token_secret(token).ok_or("unknown token")?,
            None => String::new(),
        };
        let mut params: Vec<(String, String)> = oauth
            .iter()
            .filter(|(k, _)| *k != "oauth_signature")
            .map(|(k, v)| (pct(k), pct(v)))
            .chain(
                form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (pct(&k), pct(&v))),
            )
            .collect();
        params.sort();
        let joined = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let base = format!(
            "{method}&{}&{}",
            pct(&format!("{}{}", self.url, uri.path())),
            pct(&joined)
        );
        let key = format!(
            "{}&{}",
            pct(&self.knobs.lock().unwrap().consumer_secret),
            pct(&token_secret)
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(base.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        if get("oauth_signature") != want {
            return Err("bad signature".into());
        }
        Ok(oauth)
    }

    fn request_token(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        if self.hostile() == Some(Hostile::Huge) {
            return "oauth_token=x&padding=".repeat(200_000).into_response();
        }
        let oauth = match self.verify(method, uri, headers, |_| None) {
            Ok(o) => o,
            Err(why) => return unauthorized(&why),
        };
        let Some(callback) = oauth.get("oauth_callback") else {
            return unauthorized("no oauth_callback");
        };
        let mut requests = self.requests.lock().unwrap();
        let token = format!("request-token-{}", requests.len());
        let secret = format!("request-secret-{}", requests.len());
        requests.insert(
            token.clone(),
            RequestToken {
                secret: secret.clone(),
                callback: callback.clone(),
                verifier: None,
            },
        );
        form(&[
            ("oauth_token", &token),
            ("oauth_token_secret", &secret),
            ("oauth_callback_confirmed", "true"),
        ])
    }

    fn authenticate(&self, q: &HashMap<String, String>) -> Response {
        let token = q.get("oauth_token").cloned().unwrap_or_default();
        let mut requests = self.requests.lock().unwrap();
        let Some(request) = requests.get_mut(&token) else {
            return (StatusCode::BAD_REQUEST, "unknown request token").into_response();
        };
        let mut back = url::Url::parse(&request.callback).unwrap();
        if self.knobs.lock().unwrap().deny {
            back.query_pairs_mut().append_pair("denied", &token);
        } else {
            let verifier = format!("verifier-of-{token}");
            request.verifier = Some(verifier.clone());
            back.query_pairs_mut()
                .append_pair("oauth_token", &token)
                .append_pair("oauth_verifier", &verifier);
        }
        Redirect::to(back.as_str()).into_response()
    }

    fn access_token(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        if self.hostile() == Some(Hostile::Redirect) {
            return Redirect::to("http://elsewhere.example/oauth/access_token").into_response();
        }
        let secret_of = |t: &str| {
            let requests = self.requests.lock().unwrap();
            requests.get(t).map(|r| r.secret.clone())
        };
        let oauth = match self.verify(method, uri, headers, secret_of) {
            Ok(o) => o,
            Err(why) => return unauthorized(&why),
        };
        // A request token is good for one authorized exchange, with its verifier.
        let request = self
            .requests
            .lock()
            .unwrap()
            .remove(&oauth["oauth_token"])
            .unwrap();
        if request.verifier.is_none() || request.verifier != oauth.get("oauth_verifier").cloned() {
            return unauthorized("bad verifier");
        }
        let token = format!("783214-access-{}", oauth["oauth_token"]);
        self.access
            .lock()
            .unwrap()
            .insert(token.clone(), ACCESS_SECRET.into());
        form(&[
            ("oauth_token", &token),
            ("oauth_token_secret", ACCESS_SECRET),
            ("user_id", "783214"),
            ("screen_name", "twitter"),
        ])
    }

    async fn verify_credentials(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        q: &HashMap<String, String>,
    ) -> Response {
        match self.hostile() {
            Some(Hostile::Slow) => tokio::time::sleep(Duration::from_secs(5)).await,
            Some(Hostile::NotJson) => return "<html>Over capacity</html>".into_response(),
            _ => {}
        }
        let secret_of = |t: &str| self.access.lock().unwrap().get(t).cloned();
        if let Err(why) = self.verify(method, uri, headers, secret_of) {
            return unauthorized(&why);
        }
        let email = match q.get("include_email").map(String::as_str) {
            Some("true") => json!("jack@twitter.example"),
            _ => json!(null),
        };
        axum::Json(
            json!({"id": 783214, "id_str": "783214", "name": "Twitter", "screen_name": "twitter",
            "email": email, "profile_image_url_https": "https://pbs.twimg.com/p/normal.png"}),
        )
        .into_response()
    }
}

/// A server whose Twitter is enabled through RC's settings (`Accounts_OAuth_Twitter`, `_id`, `_secret`) and
/// pointed at the emulator, and an app whose authorization sends an unsigned-in browser to the sign-in page.
async fn setup() -> (Server, Arc<Twitter>, tokio::task::JoinHandle<()>, String) {
    let (t, task) = Twitter::start().await;
    let s = TestServer::new()
        .config(|c| c.limits.request_timeout_secs = 2)
        .start()
        .await;
    let a = s.admin().await;
    for (key, value) in [
        ("Accounts_OAuth_Twitter_id", json!(CONSUMER_KEY)),
        ("Accounts_OAuth_Twitter_secret", json!(CONSUMER_SECRET)),
        ("Accounts_OAuth_Twitter", json!(true)),
    ] {
        let (st, v) = set(&s, &a, key, value).await;
        assert_eq!((st, v), (200, json!({"success": true})), "{key}");
    }
    let store = &s.running.as_ref().unwrap().state.store;
    let url = t.url.clone();
    store
        .update_provider("twitter", move |p| {
            p.url = url.clone();
            Ok(())
        })
        .await
        .unwrap();
    let app = make_app(&s, json!({"skipConsent": true})).await;
    let authorize = authorize_url(&s, &app.client_id);
    (s, t, task, authorize)
}

#[tokio::test]
async fn twitter_signs_in_links_its_account_and_returns_to_the_authorization() {
    let (s, _t, _task, authorize) = setup().await;
    let b = browser();
    let callback = to_callback(&s, &b, &authorize, "twitter").await;
    let q = query_of(&callback);
    assert!(q.contains_key("oauth_verifier"), "{callback}");
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(format!("{}{back}", s.url)).send().await.unwrap();
    let landed = r.headers()["location"].to_str().unwrap();
    assert!(landed.starts_with(REDIRECT), "{landed}");
    assert!(query_of(landed).contains_key("code"), "{landed}");

    let state = &s.running.as_ref().unwrap().state;
    let links = state.store.list_links().await.unwrap();
    assert_eq!(links.len(), 1);
    let link = &links[0];
    assert_eq!(
        (
            link.provider.as_str(),
            link.account_id.as_str(),
            link.provider_type.as_str()
        ),
        ("twitter", "783214", "custom"),
        "keyed on id_str; no Stack type (Stack's x is the OAuth 2.0 preset)"
    );
    let user = state
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.id == link.user_id)
        .unwrap();
    assert_eq!(
        (user.username.as_str(), user.name.as_str()),
        ("twitter", "Twitter")
    );
    assert_eq!(user.emails.len(), 1);
    assert_eq!(user.emails[0].address, "jack@twitter.example");
    assert!(!user.emails[0].verified, "Twitter does not vouch for it");

    state.store.flush_blocking().unwrap();
    let dir = s.dir.path().to_owned();
    for f in crate::common::files_under(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        for secret in [CONSUMER_SECRET, ACCESS_SECRET, "request-secret-0"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in plaintext in {}",
                f.display()
            );
        }
    }
}

/// (users, links) in the store.
async fn counts(s: &Server) -> (usize, usize) {
    let store = &s.running.as_ref().unwrap().state.store;
    (
        store.list_users().await.unwrap().len(),
        store.list_links().await.unwrap().len(),
    )
}

/// Browser `b` at `url` ends on an error page (`title`) with `status` that says `says`, and nothing was written.
async fn fails(s: &Server, b: &Client, url: &str, status: StatusCode, title: &str, says: &str) {
    let before = counts(s).await;
    let r = b.get(url).send().await.unwrap();
    assert_eq!(r.status(), status, "{says}");
    let page = r.text().await.unwrap();
    assert!(
        page.contains(title) && page.contains(says),
        "{says}: {page}"
    );
    assert_eq!(counts(s).await, before, "{says}: the store is unchanged");
}

/// The sign-in start of `b`, as the page's Twitter button links it.
fn login(s: &Server) -> String {
    format!("{}/login/twitter?return_to=/login", s.url)
}

#[tokio::test]
async fn refusals_foreign_tokens_forged_verifiers_and_bad_signatures_end_on_an_error_page() {
    let (s, t, _task, authorize) = setup().await;
    let (a, b) = (browser(), browser());

    t.knobs.lock().unwrap().deny = true;
    let denied = to_callback(&s, &a, &authorize, "twitter").await;
    assert!(query_of(&denied).contains_key("denied"), "{denied}");
    let says = "Twitter answered denied: the sign-in was not allowed";
    fails(
        &s,
        &a,
        &denied,
        StatusCode::BAD_GATEWAY,
        "Sign-in failed",
        says,
    )
    .await;
    t.knobs.lock().unwrap().deny = false;

    // The callback of a sign-in that browser `a` started does not finish the one `b` started.
    let of_a = to_callback(&s, &a, &authorize, "twitter").await;
    let of_b = to_callback(&s, &b, &authorize, "twitter").await;
    let says = "the oauth_token parameter does not match this sign-in";
    fails(
        &s,
        &b,
        &of_a,
        StatusCode::BAD_REQUEST,
        "Sign-in failed",
        says,
    )
    .await;
    let says = "this sign-in was not started in this browser";
    fails(
        &s,
        &browser(),
        &of_b,
        StatusCode::BAD_REQUEST,
        "Sign-in failed",
        says,
    )
    .await;

    // A verifier that Twitter did not issue for this request token buys nothing.
    let b = browser();
    let callback = to_callback(&s, &b, &authorize, "twitter").await;
    let forged = callback.replace("oauth_verifier=verifier-of-", "oauth_verifier=forged-");
    let says = "access token endpoint answered 401 Unauthorized";
    fails(
        &s,
        &b,
        &forged,
        StatusCode::BAD_GATEWAY,
        "Sign-in failed",
        says,
    )
    .await;

    // Twitter refuses what Latchkey signed with another consumer secret.
    t.knobs.lock().unwrap().consumer_secret = "rotated-at-twitter".into();
    let says = "request token endpoint answered 401 Unauthorized";
    fails(
        &s,
        &browser(),
        &login(&s),
        StatusCode::BAD_GATEWAY,
        "Provider not reachable",
        says,
    )
    .await;
}

#[tokio::test]
async fn hostile_twitter_answers_are_bounded_and_fail_cleanly() {
    let (s, t, _task, authorize) = setup().await;
    let hostile = |h| t.knobs.lock().unwrap().hostile = Some(h);

    hostile(Hostile::Huge);
    let says = "request token response is larger than 1048576 bytes";
    fails(
        &s,
        &browser(),
        &login(&s),
        StatusCode::BAD_GATEWAY,
        "Provider not reachable",
        says,
    )
    .await;

    for (h, status, says) in [
        (
            Hostile::Redirect,
            StatusCode::BAD_GATEWAY,
            "access token endpoint answered 303 See Other",
        ),
        (
            Hostile::NotJson,
            StatusCode::BAD_GATEWAY,
            "identity response is not JSON",
        ),
        (
            Hostile::Slow,
            StatusCode::GATEWAY_TIMEOUT,
            "Twitter did not answer within 1.6 s",
        ),
    ] {
        t.knobs.lock().unwrap().hostile = None;
        let b = browser();
        let callback = to_callback(&s, &b, &authorize, "twitter").await;
        hostile(h);
        fails(&s, &b, &callback, status, "Sign-in failed", says).await;
    }
}
