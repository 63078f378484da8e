//! Crash safety, measured: the real binary takes concurrent writes (users, apps, providers, tokens) and is
//! `kill -9`ed at a random moment, many times; after each restart every acknowledged write is there, the store
//! verifies (the server refuses to start otherwise) and serves.
//!
//! `cargo test --test it crash` runs a few cycles; `CRASH_CYCLES=50 cargo test --release --test it crash -- --nocapture`
//! is the long run whose figures README.md reports.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// One acknowledged write and how to check it after the crash.
#[derive(Clone, Debug)]
enum Acked {
    User(String),
    App(String),
    Provider(String),
    Token {
        client_id: String,
        secret: String,
        token: String,
    },
}

fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("LATCHKEY_CONFIG")
        .env("LATCHKEY_LOG", "error")
        .env("LATCHKEY_ADMIN_PASSWORD", "crash-admin")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            std::thread::spawn(move || for _ in lines {});
            return (child, url.to_owned());
        }
    }
    let out = child.wait_with_output().unwrap();
    panic!(
        "server did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login(http: &reqwest::Client, url: &str) -> (String, String) {
    let v: serde_json::Value = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"user": "admin", "password": "crash-admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        v["data"]["userId"].as_str().unwrap().into(),
        v["data"]["authToken"].as_str().unwrap().into(),
    )
}

/// Writes until the process dies; records only what was acknowledged with 2xx.
async fn writer(
    n: usize,
    url: String,
    auth: (String, String),
    acked: Arc<Mutex<Vec<Acked>>>,
    cycle: usize,
) {
    let http = reqwest::Client::new();
    let h = |rb: reqwest::RequestBuilder| {
        rb.header("X-User-Id", &auth.0)
            .header("X-Auth-Token", &auth.1)
            .header("x-2fa-code", "crash-admin")
            .header("x-2fa-method", "password")
    };
    let mut app: Option<(String, String)> = None;
    for i in 0.. {
        let tag = format!("c{cycle}w{n}i{i}");
        let r = match i % 4 {
            0 => h(http.post(format!("{url}/api/v1/users.create")))
                .json(&json!({"username": tag, "email": format!("{tag}@example.com"), "password": "pw"}))
                .send()
                .await
                .map(|r| (r.status().is_success(), Some(Acked::User(tag.clone())), None)),
            1 => match h(http.post(format!("{url}/api/v1/oauth-apps.create")))
                .json(&json!({"name": tag, "redirectUri": "https://c.example/cb", "active": true, "grantTypes": ["client_credentials"]}))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                    Ok(v) => {
                        let a = &v["application"];
                        app = Some((a["clientId"].as_str().unwrap().into(), a["clientSecret"].as_str().unwrap().into()));
                        Ok((true, Some(Acked::App(a["_id"].as_str().unwrap().into())), None))
                    }
                    Err(e) => Err(e),
                },
                Ok(_) => Ok((false, None, None)),
                Err(e) => Err(e),
            },
            2 => h(http.post(format!("{url}/api/v1/settings.addCustomOAuth")))
                .json(&json!({"name": tag}))
                .send()
                .await
                .map(|r| (r.status().is_success(), Some(Acked::Provider(tag.to_lowercase())), None)),
            _ => match &app {
                Some((cid, secret)) => match http.post(format!("{url}/oauth/token")).basic_auth(cid, Some(secret)).form(&[("grant_type", "client_credentials")]).send().await {
                    Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.map(|v| {
                        let t = v["access_token"].as_str().unwrap().to_owned();
                        (true, Some(Acked::Token { client_id: cid.clone(), secret: secret.clone(), token: t }), None::<()>)
                    }),
                    Ok(_) => Ok((false, None, None)),
                    Err(e) => Err(e),
                },
                None => continue,
            },
        };
        match r {
            Ok((true, Some(a), _)) => acked.lock().unwrap().push(a),
            Ok(_) => {}
            Err(_) => return, // the server is gone
        }
    }
}

async fn check(http: &reqwest::Client, url: &str, auth: &(String, String), a: &Acked) -> bool {
    let get = |path: String| {
        http.get(format!("{url}{path}"))
            .header("X-User-Id", &auth.0)
            .header("X-Auth-Token", &auth.1)
            .send()
    };
    match a {
        Acked::User(name) => {
            get(format!("/api/v1/users.info?username={name}"))
                .await
                .unwrap()
                .status()
                == 200
        }
        Acked::App(id) => {
            get(format!("/api/v1/oauth-apps.get?_id={id}"))
                .await
                .unwrap()
                .status()
                == 200
        }
        Acked::Provider(key) => {
            let v: serde_json::Value = get(format!(
                "/api/v1/settings/Accounts_OAuth_Custom-{}",
                capitalize(key)
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            v["success"] == true
        }
        Acked::Token {
            client_id,
            secret,
            token,
        } => {
            let v: serde_json::Value = http
                .post(format!("{url}/oauth/introspect"))
                .basic_auth(client_id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["active"] == true
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let all: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let started = Instant::now();
    let mut rng_state = 0x9E37_79B9_7F4A_7C15u64 ^ std::process::id() as u64;
    for cycle in 0..cycles {
        let (mut child, url) = start(dir.path());
        let auth = login(&http, &url).await;
        // Everything acknowledged in earlier cycles is still there.
        let before = all.lock().unwrap().clone();
        for a in &before {
            assert!(
                check(&http, &url, &auth, a).await,
                "cycle {cycle}: lost {a:?}"
            );
        }
        let tasks: Vec<_> = (0..8)
            .map(|n| tokio::spawn(writer(n, url.clone(), auth.clone(), all.clone(), cycle)))
            .collect();
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let delay = 150 + rng_state % 650;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in tasks {
            let _ = t.await;
        }
    }
    // The final restart: everything acknowledged in every cycle is there.
    let (mut child, url) = start(dir.path());
    let auth = login(&http, &url).await;
    let all = all.lock().unwrap().clone();
    let mut lost = 0;
    for a in &all {
        if !check(&http, &url, &auth, a).await {
            lost += 1;
            eprintln!("lost {a:?}");
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "crash test: {cycles} kill -9 cycles, {} acknowledged writes, {lost} lost, {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0);
    assert!(
        all.len() >= cycles,
        "the writers acknowledged too little to prove anything"
    );
}
