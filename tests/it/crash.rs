//! Crash safety, measured: the real binary takes concurrent writes of every kind (users, login and logout, apps,
//! providers, links, tokens through every grant, revocations, and the deletes of all of these) while its sweeper
//! runs every 20 ms over many dead tokens, and is `kill -9`ed at a random moment, many times. After each restart
//! the store has repaired what the crash left (or the server refuses to start: the test fails), every acknowledged
//! write is as it was acknowledged, and the server serves.
//!
//! `cargo test --test it crash` runs a few cycles; `CRASH_CYCLES=200 cargo test --release --test it crash --
//! --nocapture` is the long run whose figures docs/reliability.md reports.
//!
//! Also here: a store that cannot write (a full disk) answers 503 promptly.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};

use crate::common::binary::{self, Latchkey};
use crate::common::steps::{code_grant, REDIRECT, VERIFIER};
use crate::common::{page_text, s256, ADMIN_PASSWORD};

const PROJECT: &str = "6b3c2a1e-0d4f-4a5b-8c7d-9e0f1a2b3c4d";
const SERVER_KEY: &str = "crash-server-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// What an acknowledged write promises after any later crash.
#[derive(Clone, Debug)]
enum Expect {
    User {
        name: String,
        exists: bool,
    },
    /// A login token: accepted (`live`) or, after an acknowledged logout, refused.
    Session {
        user_id: String,
        token: String,
        live: bool,
    },
    App {
        id: String,
        exists: bool,
    },
    Provider {
        key: String,
        exists: bool,
    },
    Link {
        user_id: String,
        id: String,
        exists: bool,
    },
    /// An OAuth token of `client` and whether introspection says it is active.
    Token {
        client: (String, String),
        token: String,
        active: bool,
    },
}

/// The acknowledged state, one expectation per object. A writer forgets an object's expectation before it
/// sends a request that changes the object, and records the new one only on a 2xx: what a crash interrupts is
/// unknown, so it is not checked.
#[derive(Default)]
struct Ledger {
    expect: HashMap<String, (usize, Expect)>,
    acked: usize,
}

type Shared = Arc<Mutex<Ledger>>;

fn forget(l: &Shared, key: &str) {
    l.lock().unwrap().expect.remove(key);
}

fn ack(l: &Shared, cycle: usize, key: String, e: Expect) {
    let mut l = l.lock().unwrap();
    l.acked += 1;
    l.expect.insert(key, (cycle, e));
}

/// Writes the config of one cycle: a sweep every 20 ms; odd cycles issue access tokens that live one second (so
/// the sweeper has many dead tokens to remove), even cycles ones that outlive the run (so they can be checked).
fn write_config(dir: &Path, short_access: bool) -> std::path::PathBuf {
    let path = dir.join("crash.toml");
    let access = if short_access { 1 } else { 3600 };
    std::fs::write(
        &path,
        format!(
            "[argon2]\nmemory_kib = 64\niterations = 1\n[limits]\nsweep_interval_ms = 20\n\
             [tokens]\naccess_ttl_secs = {access}\n[stack]\nproject_id = \"{PROJECT}\"\n\
             server_key = \"{SERVER_KEY}\"\n"
        ),
    )
    .unwrap();
    path
}

/// Starts the binary on `dir` (its config file beside it); `Err` (with its output) when it exits instead of
/// listening.
fn start(dir: &Path, short_access: bool) -> Result<Latchkey, String> {
    let config = write_config(dir.parent().unwrap(), short_access);
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = binary::serve(dir);
    cmd.arg("--config").arg(&config);
    Latchkey::try_start(cmd)
}

/// Kills the server with SIGKILL and returns how many entries its start-up repaired.
fn kill(p: Latchkey) -> usize {
    repairs_in(&p.kill())
}

/// The entries repaired according to the `repaired crash leftovers` log lines.
fn repairs_in(log: &str) -> usize {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains("repaired crash leftovers"))
        .filter_map(|l| l.split("entries=").nth(1))
        .filter_map(|n| {
            n.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// The log without its color escapes (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn repairs_are_counted_from_the_log() {
    let log = "\u{1b}[33m WARN\u{1b}[0m repaired crash leftovers \u{1b}[3mtree\u{1b}[0m\u{1b}[2m=\u{1b}[0mx \
               \u{1b}[3mentries\u{1b}[0m\u{1b}[2m=\u{1b}[0m3\n";
    assert_eq!(repairs_in(log), 3);
    assert_eq!(
        repairs_in("WARN repaired crash leftovers tree=x entries=4\n"),
        4
    );
}

struct Rc {
    http: Client,
    url: String,
    auth: (String, String),
}

type Sent = Result<reqwest::Response, reqwest::Error>;

impl Rc {
    async fn login(
        http: &Client,
        url: &str,
        user: &str,
        password: &str,
    ) -> Option<(String, String)> {
        let v: Value = http
            .post(format!("{url}/api/v1/login"))
            .json(&json!({"user": user, "password": password}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some((
            v["data"]["userId"].as_str()?.into(),
            v["data"]["authToken"].as_str()?.into(),
        ))
    }

    fn req(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("X-User-Id", &self.auth.0)
            .header("X-Auth-Token", &self.auth.1)
            .header("x-2fa-code", ADMIN_PASSWORD)
            .header("x-2fa-method", "password")
    }

    async fn post(&self, path: &str, body: Value) -> Sent {
        self.req(self.http.post(format!("{}{path}", self.url)))
            .json(&body)
            .send()
            .await
    }

    async fn get(&self, path: &str) -> Sent {
        self.req(self.http.get(format!("{}{path}", self.url)))
            .send()
            .await
    }

    fn stack(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
    }

    async fn token(&self, client: &(String, String), form: &[(&str, &str)]) -> Sent {
        self.http
            .post(format!("{}/oauth/token", self.url))
            .basic_auth(&client.0, Some(&client.1))
            .form(form)
            .send()
            .await
    }
}

/// A 2xx answer's JSON; `Err` when the server is gone, `Ok(None)` for any other answer.
async fn ok_json(sent: Sent) -> Result<Option<Value>, ()> {
    let r = sent.map_err(drop)?;
    if !r.status().is_success() {
        return Ok(None);
    }
    r.json().await.map(Some).map_err(drop)
}

/// An authorization code for `client_id` through the real pages, with a browser session (signed in once per
/// writer and cycle; the app skips consent).
async fn code(browser: &Client, url: &str, client_id: &str) -> Result<Option<String>, ()> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s")
        .append_pair("code_challenge", &s256(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let authorize = format!("{url}/oauth/authorize?{query}");
    let mut r = browser.get(&authorize).send().await.map_err(drop)?;
    if r.status() == 200 {
        // The sign-in page: this browser has no session yet.
        let page = r.text().await.map_err(drop)?;
        let mut form = crate::common::hidden_inputs(&page);
        form.push(("username".into(), "admin".into()));
        form.push(("password".into(), ADMIN_PASSWORD.into()));
        let signed = browser
            .post(format!("{url}/login"))
            .form(&form)
            .send()
            .await
            .map_err(drop)?;
        if signed.status() != 303 {
            return Ok(None);
        }
        r = browser.get(&authorize).send().await.map_err(drop)?;
    }
    let Some(loc) = r.headers().get("location").and_then(|l| l.to_str().ok()) else {
        return Ok(None);
    };
    Ok(crate::common::query_of(loc).get("code").cloned())
}

/// One writer: rounds of every kind of write on its own objects until the server dies. Each round creates a
/// user and logs it in and out, creates an app and gets tokens through every grant, rotates and revokes, adds a
/// provider and links the user to it, then deletes the link, the provider, the app and the user.
async fn writer(
    n: usize,
    url: String,
    admin: (String, String),
    ledger: Shared,
    cycle: usize,
    long_tokens: bool,
) {
    let rc = Rc {
        http: Client::new(),
        url: url.clone(),
        auth: admin,
    };
    let browser = crate::common::browser();
    for round in 0.. {
        if round_of_writes(
            &rc,
            &browser,
            &ledger,
            cycle,
            &format!("c{cycle}w{n}r{round}"),
            long_tokens,
        )
        .await
        .is_err()
        {
            return;
        }
    }
}

/// A write that changes the object under `key`: its expectation is forgotten while the write is in flight (a
/// future sends nothing until it is awaited, here) and becomes `after` once the write is acknowledged. `Err` once
/// the server is gone or when it refuses the write.
async fn change(
    l: &Shared,
    cycle: usize,
    key: String,
    write: impl std::future::Future<Output = Sent>,
    after: Expect,
) -> Result<Value, ()> {
    forget(l, &key);
    let v = ok_json(write.await).await?.ok_or(())?;
    ack(l, cycle, key, after);
    Ok(v)
}

/// One round; `Err` once the server is gone.
async fn round_of_writes(
    rc: &Rc,
    browser: &Client,
    l: &Shared,
    cycle: usize,
    tag: &str,
    long_tokens: bool,
) -> Result<(), ()> {
    let ack = |key: String, e: Expect| ack(l, cycle, key, e);
    let user_key = format!("user:{tag}");
    let v = ok_json(
        rc.post(
            "/api/v1/users.create",
            json!({"username": tag, "email": format!("{tag}@example.com"), "password": "pw"}),
        )
        .await,
    )
    .await?
    .ok_or(())?;
    let user_id = v["user"]["_id"].as_str().ok_or(())?.to_owned();
    ack(
        user_key.clone(),
        Expect::User {
            name: tag.into(),
            exists: true,
        },
    );

    // Login and logout (a login token and its index entry, then their removal).
    let session_key = format!("session:{tag}");
    let session = Rc::login(&rc.http, &rc.url, tag, "pw").await.ok_or(())?;
    ack(
        session_key.clone(),
        Expect::Session {
            user_id: session.0.clone(),
            token: session.1.clone(),
            live: true,
        },
    );
    // A second session stays: deleting the user below removes it (a login token and its index entry).
    Rc::login(&rc.http, &rc.url, tag, "pw").await.ok_or(())?;
    let out = Rc {
        http: rc.http.clone(),
        url: rc.url.clone(),
        auth: session.clone(),
    };
    let logged_out = Expect::Session {
        user_id: session.0,
        token: session.1,
        live: false,
    };
    change(
        l,
        cycle,
        session_key,
        out.post("/api/v1/logout", json!({})),
        logged_out,
    )
    .await?;

    let app_key = format!("app:{tag}");
    let v = ok_json(
        rc.post(
            "/api/v1/oauth-apps.create",
            json!({"name": tag, "redirectUri": REDIRECT, "active": true, "skipConsent": true,
                   "grantTypes": ["authorization_code", "refresh_token", "client_credentials"]}),
        )
        .await,
    )
    .await?
    .ok_or(())?;
    let a = &v["application"];
    let app_id = a["_id"].as_str().ok_or(())?.to_owned();
    let client = (
        a["clientId"].as_str().ok_or(())?.to_owned(),
        a["clientSecret"].as_str().ok_or(())?.to_owned(),
    );
    ack(
        app_key.clone(),
        Expect::App {
            id: app_id.clone(),
            exists: true,
        },
    );

    // client_credentials (one plain insert), checked when it outlives the run.
    let v = ok_json(
        rc.token(&client, &[("grant_type", "client_credentials")])
            .await,
    )
    .await?
    .ok_or(())?;
    let cc = v["access_token"].as_str().ok_or(())?.to_owned();
    if long_tokens {
        ack(
            format!("cc:{tag}"),
            Expect::Token {
                client: client.clone(),
                token: cc,
                active: true,
            },
        );
    }

    // authorization_code (+ PKCE), then refresh_token rotation, then revocation of the new refresh token.
    let Some(code) = code(browser, &rc.url, &client.0).await? else {
        return Err(());
    };
    let v = ok_json(rc.token(&client, &code_grant(&code)).await)
        .await?
        .ok_or(())?;
    let r1 = v["refresh_token"].as_str().ok_or(())?.to_owned();
    let (k1, k2) = (format!("r1:{tag}"), format!("r2:{tag}"));
    ack(
        k1.clone(),
        Expect::Token {
            client: client.clone(),
            token: r1.clone(),
            active: true,
        },
    );
    let rotated = Expect::Token {
        client: client.clone(),
        token: r1.clone(),
        active: false,
    };
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", &r1)];
    let v = change(l, cycle, k1, rc.token(&client, &refresh), rotated).await?;
    let r2 = v["refresh_token"].as_str().ok_or(())?.to_owned();
    ack(
        k2.clone(),
        Expect::Token {
            client: client.clone(),
            token: r2.clone(),
            active: true,
        },
    );
    let revoke = async {
        rc.http
            .post(format!("{}/oauth/revoke", rc.url))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", &r2)])
            .send()
            .await
    };
    let revoked = Expect::Token {
        client: client.clone(),
        token: r2.clone(),
        active: false,
    };
    change(l, cycle, k2, revoke, revoked).await?;

    // A provider, enabled, and a link of the user to it (Stack's API); then their removal.
    let provider_key = format!("provider:{tag}");
    let key = tag.to_lowercase();
    ok_json(
        rc.post("/api/v1/settings.addCustomOAuth", json!({"name": tag}))
            .await,
    )
    .await?
    .ok_or(())?;
    ack(
        provider_key.clone(),
        Expect::Provider {
            key: key.clone(),
            exists: true,
        },
    );
    let setting = format!(
        "/api/v1/settings/Accounts_OAuth_Custom-{}",
        capitalize(&key)
    );
    ok_json(rc.post(&setting, json!({"value": true})).await)
        .await?
        .ok_or(())?;
    let link_key = format!("link:{tag}");
    let v = ok_json(
        rc.stack(rc.http.post(format!("{}/api/v1/oauth-providers", rc.url)))
            .json(&json!({"user_id": user_id, "provider_config_id": key, "email": format!("{tag}@example.com"),
                          "allow_sign_in": true, "allow_connected_accounts": true, "account_id": tag}))
            .send()
            .await,
    )
    .await?
    .ok_or(())?;
    let link_id = v["id"].as_str().ok_or(())?.to_owned();
    ack(
        link_key.clone(),
        Expect::Link {
            user_id: user_id.clone(),
            id: link_id.clone(),
            exists: true,
        },
    );
    let delete = async {
        rc.stack(rc.http.delete(format!(
            "{}/api/v1/oauth-providers/{user_id}/{link_id}",
            rc.url
        )))
        .send()
        .await
    };
    let deleted = Expect::Link {
        user_id: user_id.clone(),
        id: link_id.clone(),
        exists: false,
    };
    change(l, cycle, link_key, delete, deleted).await?;
    let remove = rc.post("/api/v1/settings.removeCustomOAuth", json!({"name": tag}));
    let removed = Expect::Provider { key, exists: false };
    change(l, cycle, provider_key, remove, removed).await?;

    // Deletes: the app (its tokens are revoked with it) and the user (its sessions go with it). While the delete
    // is in flight neither the app nor its token is known.
    forget(l, &format!("cc:{tag}"));
    let delete = rc.post("/api/v1/oauth-apps.delete", json!({"appId": app_id}));
    let deleted = Expect::App {
        id: app_id,
        exists: false,
    };
    change(l, cycle, app_key, delete, deleted).await?;
    let delete = rc.post("/api/v1/users.delete", json!({"userId": user_id}));
    let deleted = Expect::User {
        name: tag.into(),
        exists: false,
    };
    change(l, cycle, user_key, delete, deleted).await?;
    Ok(())
}

async fn check(rc: &Rc, e: &Expect) -> bool {
    let status = |sent: Sent| async move { sent.map(|r| r.status().as_u16()).unwrap_or(0) };
    match e {
        Expect::User { name, exists } => {
            (status(rc.get(&format!("/api/v1/users.info?username={name}")).await).await == 200)
                == *exists
        }
        Expect::Session {
            user_id,
            token,
            live,
        } => {
            let me = rc
                .http
                .get(format!("{}/api/v1/me", rc.url))
                .header("X-User-Id", user_id)
                .header("X-Auth-Token", token)
                .send()
                .await;
            (status(me).await == 200) == *live
        }
        Expect::App { id, exists } => {
            (status(rc.get(&format!("/api/v1/oauth-apps.get?_id={id}")).await).await == 200)
                == *exists
        }
        Expect::Provider { key, exists } => {
            let r = rc
                .get(&format!(
                    "/api/v1/settings/Accounts_OAuth_Custom-{}",
                    capitalize(key)
                ))
                .await;
            let found = match ok_json(r).await {
                Ok(Some(v)) => v["success"] == true,
                _ => false,
            };
            found == *exists
        }
        Expect::Link {
            user_id,
            id,
            exists,
        } => {
            let r = rc
                .stack(
                    rc.http
                        .get(format!("{}/api/v1/oauth-providers/{user_id}/{id}", rc.url)),
                )
                .send()
                .await;
            (status(r).await == 200) == *exists
        }
        Expect::Token {
            client,
            token,
            active,
        } => {
            let r = rc
                .http
                .post(format!("{}/oauth/introspect", rc.url))
                .basic_auth(&client.0, Some(&client.1))
                .form(&[("token", token)])
                .send()
                .await;
            match ok_json(r).await {
                Ok(Some(v)) => (v["active"] == true) == *active,
                // The app was deleted meanwhile: its tokens are inactive.
                _ => !*active,
            }
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Checks the expectations recorded in `cycles` (all when `None`); returns (checked, lost).
async fn check_all(
    rc: &Rc,
    ledger: &Shared,
    cycles: Option<std::ops::Range<usize>>,
) -> (usize, Vec<Expect>) {
    let expect: Vec<Expect> = ledger
        .lock()
        .unwrap()
        .expect
        .values()
        .filter(|(c, _)| cycles.as_ref().is_none_or(|r| r.contains(c)))
        .map(|(_, e)| e.clone())
        .collect();
    let mut lost = Vec::new();
    for e in &expect {
        if !check(rc, e).await {
            lost.push(e.clone());
        }
    }
    (expect.len(), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    let http = Client::new();
    let ledger: Shared = Arc::default();
    let started = Instant::now();
    let (mut checked, mut repairs) = (0, 0);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    for cycle in 0..=cycles {
        let long_tokens = cycle % 2 == 0;
        let child = match start(&dir, !long_tokens) {
            Ok(p) => p,
            Err(e) => panic!("cycle {cycle}: the store failed to start after a kill -9: {e}"),
        };
        let url = child.url.clone();
        let admin = Rc::login(&http, &url, "admin", ADMIN_PASSWORD)
            .await
            .expect("admin login");
        let rc = Rc {
            http: http.clone(),
            url: url.clone(),
            auth: admin.clone(),
        };
        // What the last cycle acknowledged, and at the end everything, is as acknowledged.
        let last = if cycle == cycles {
            None
        } else {
            Some(cycle.saturating_sub(1)..cycle)
        };
        let (n, lost) = check_all(&rc, &ledger, last).await;
        checked += n;
        assert!(
            lost.is_empty(),
            "cycle {cycle}: lost {} acknowledged writes: {lost:?}",
            lost.len()
        );
        if cycle == cycles {
            repairs += kill(child);
            break;
        }
        let tasks: Vec<_> = (0..6)
            .map(|n| {
                tokio::spawn(writer(
                    n,
                    url.clone(),
                    admin.clone(),
                    ledger.clone(),
                    cycle,
                    long_tokens,
                ))
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Short-token cycles run past the tokens' expiry, so the kill lands while the sweeper removes them.
        let base = if long_tokens { 150 } else { 1100 };
        tokio::time::sleep(Duration::from_millis(base + rng % 650)).await;
        repairs += kill(child);
        for t in tasks {
            let _ = t.await;
        }
    }
    let acked = ledger.lock().unwrap().acked;
    eprintln!(
        "crash test: {cycles} kill -9 cycles, {acked} acknowledged writes, {checked} checks of acknowledged state, \
         0 lost, 0 stores failed to start, {repairs} entries repaired at start, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked >= 10 * cycles,
        "the writers acknowledged too little to prove anything: {acked}"
    );
}

/// What a write answers while the store cannot write: status, body and how long it took.
async fn timed(rb: RequestBuilder) -> (u16, String, Duration) {
    let t = Instant::now();
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap(), t.elapsed())
}

/// A failing group commit (what a full disk gives) answers 503 at once in every dialect, instead of holding the
/// request until its timeout; once flushes succeed again, so do writes.
#[tokio::test]
async fn a_store_that_cannot_write_answers_503_promptly_in_every_dialect() {
    use crate::common::spawn_with;
    let s = spawn_with(|c| {
        c.stack.project_id = PROJECT.into();
        c.stack.server_key = SERVER_KEY.into();
    })
    .await;
    let a = s.admin().await;
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"name": "A", "redirectUri": REDIRECT, "active": true, "grantTypes": ["client_credentials"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let client = (
        v["application"]["clientId"].as_str().unwrap().to_owned(),
        v["application"]["clientSecret"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let tfa = |rb: RequestBuilder| {
        rb.header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token)
            .header("x-2fa-code", ADMIN_PASSWORD)
            .header("x-2fa-method", "password")
    };
    for (path, body) in [
        ("settings.addCustomOAuth", json!({"name": "Myidp"})),
        (
            "settings/Accounts_OAuth_Custom-Myidp",
            json!({"value": true}),
        ),
    ] {
        let r = tfa(s.http.post(format!("{}/api/v1/{path}", s.url)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let store = s.running.as_ref().unwrap().state.store.clone();
    store.fail_next_flushes(u32::MAX);

    let rc = |path: &str, body: Value| {
        s.http
            .post(format!("{}{path}", s.url))
            .header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token)
            .json(&body)
    };
    let answers = [
        (
            "RC users.create",
            rc(
                "/api/v1/users.create",
                json!({"username": "u", "email": "u@example.com", "password": "pw"}),
            ),
            "error-storage-unavailable",
        ),
        (
            "RC login",
            s.http
                .post(format!("{}/api/v1/login", s.url))
                .json(&json!({"user": "admin", "password": ADMIN_PASSWORD})),
            "error-storage-unavailable",
        ),
        (
            "OAuth token",
            s.http
                .post(format!("{}/oauth/token", s.url))
                .basic_auth(&client.0, Some(&client.1))
                .form(&[("grant_type", "client_credentials")]),
            "temporarily_unavailable",
        ),
        (
            "Stack link",
            s.http
                .post(format!("{}/api/v1/oauth-providers", s.url))
                .header("X-Stack-Project-Id", PROJECT)
                .header("X-Stack-Access-Type", "server")
                .header("X-Stack-Secret-Server-Key", SERVER_KEY)
                .json(
                    &json!({"user_id": a.user_id, "provider_config_id": "myidp", "account_id": "x",
                              "allow_sign_in": false, "allow_connected_accounts": true}),
                ),
            "Storage unavailable",
        ),
        (
            "Locoia custom_auth",
            s.http
                .put(format!("{}/v1/connectors/myidp/custom_auth", s.url))
                .bearer_auth(&a.token)
                .header("x-2fa-method", "password")
                .header("x-2fa-code", ADMIN_PASSWORD)
                .json(&json!({"oauth2": [{"client_id": "c", "client_secret": "s", "name": "N"}]})),
            "storage_unavailable",
        ),
    ];
    for (what, rb, error) in answers {
        let (status, body, took) = timed(rb).await;
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
        assert_eq!(status, 503, "{what}: {body}");
        assert!(body.contains(error), "{what}: {body}");
    }
    // The sign-in page: 503 as an HTML page.
    let b = crate::common::browser();
    let page = page_text(&b, format!("{}/login", s.url)).await;
    let mut form = crate::common::hidden_inputs(&page);
    form.push(("username".into(), "admin".into()));
    form.push(("password".into(), ADMIN_PASSWORD.into()));
    let (status, body, took) = timed(b.post(format!("{}/login", s.url)).form(&form)).await;
    assert!(took < Duration::from_secs(2), "page: took {took:?}");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Storage unavailable"), "{body}");

    // Flushes work again: so do writes, without a restart.
    store.fail_next_flushes(0);
    let (status, body, _) = timed(rc(
        "/api/v1/users.create",
        json!({"username": "u2", "email": "u2@example.com", "password": "pw"}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    s.stop().await;
}

/// A small tmpfs, unmounted when dropped; `None` when this process may not mount (not root, a container).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// A real full disk (a 16 MiB tmpfs filled up): writes answer 503 promptly; after the disk is freed, sled keeps
/// failing until a restart (its log error is sticky), and after the restart every acknowledged write is there.
/// Skipped where tmpfs cannot be mounted.
#[tokio::test]
async fn a_full_disk_answers_503_promptly_and_a_restart_recovers() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.path().join("data");
    let mut cfg = latchkey::config::Config::for_test(&data);
    cfg.cache_mb = 4;
    let running = latchkey::server::start(cfg.clone(), latchkey::clock::Clock::system())
        .await
        .expect("serves on the tmpfs");
    let s = crate::common::Server {
        url: running.url(),
        http: Client::new(),
        running: Some(running),
        dir: tempfile::tempdir().unwrap(),
    };
    let a = s.admin().await;
    // Fill the disk.
    let filler = fs.0.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut acked = Vec::new();
    let mut failed = None;
    for i in 0..2000 {
        let name = format!("user{i}");
        let body = json!({"username": name, "email": format!("{name}@example.com"), "password": "pw",
                          "name": "x".repeat(190)});
        let (status, text, took) = timed(
            s.http
                .post(format!("{}/api/v1/users.create", s.url))
                .header("X-User-Id", &a.user_id)
                .header("X-Auth-Token", &a.token)
                .json(&body),
        )
        .await;
        assert!(took < Duration::from_secs(3), "write {i} took {took:?}");
        match status {
            200 => acked.push(name),
            503 => {
                assert!(text.contains("error-storage-unavailable"), "{text}");
                failed = Some(i);
                break;
            }
            other => panic!("write {i}: {other} {text}"),
        }
    }
    let failed = failed.expect("a full disk fails a write");
    eprintln!(
        "full disk: write {failed} answered 503 after {} acknowledged",
        acked.len()
    );
    std::fs::remove_file(&filler).unwrap();
    let (status, _, took) = timed(
        s.http
            .post(format!("{}/api/v1/users.create", s.url))
            .header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token)
            .json(&json!({"username": "after", "email": "after@example.com", "password": "pw"})),
    )
    .await;
    assert!(took < Duration::from_secs(3));
    assert!(matches!(status, 200 | 503), "{status}");
    // Restart in place (a crash-like stop: sled cannot flush on the way out).
    let crate::common::Server { running, .. } = s;
    let running = running.unwrap();
    let _ = running.shutdown().await;
    let running = latchkey::server::start(cfg, latchkey::clock::Clock::system())
        .await
        .expect("restarts after the disk is freed");
    let s = crate::common::Server {
        url: running.url(),
        http: Client::new(),
        running: Some(running),
        dir: tempfile::tempdir().unwrap(),
    };
    let a = s.admin().await;
    for name in &acked {
        let (st, _) = s
            .get(&format!("/api/v1/users.info?username={name}"), &a)
            .await;
        assert_eq!(st, 200, "{name} was acknowledged");
    }
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "later", "email": "later@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    s.stop().await;
    drop(fs);
}
