//! Soak: mixed load on the release server for a bounded time, sampling its memory, to show that memory stays
//! flat and nothing fails. `cargo bench --bench soak` (SOAK_SECS, default 600; SOAK_CONNS, default 16).
//!
//! The mix per connection, in a loop: client_credentials token, introspection of it, `oauth-apps.get`, and every
//! 50th iteration a new user and a revocation. The server's RSS (VmRSS) is sampled every 10 s. The run fails on
//! any non-2xx answer, and when RSS in the last third exceeds the middle third's peak by more than 25 % (the
//! first third is warm-up).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: skipped (run with cargo bench --bench soak)");
        return ExitCode::SUCCESS;
    }
    let secs = env_u64("SOAK_SECS", 600);
    let conns = env_u64("SOAK_CONNS", 16) as usize;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("release").join("latchkey");
    if !bin.exists() {
        let ok = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--bin", "latchkey"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("soak: cannot build the release binary");
            return ExitCode::FAILURE;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // Tokens expire after SOAK_TOKEN_TTL seconds (default 60) so the sweeper holds the store at a steady state;
    // with the default 1 h lifetime the store (and sled's memory with it) grows for the whole run.
    let ttl = env_u64("SOAK_TOKEN_TTL", 60);
    let config = dir.path().join("soak.toml");
    std::fs::write(&config, format!("[tokens]\naccess_ttl_secs = {ttl}\n")).unwrap();
    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .env("LATCHKEY_ADMIN_PASSWORD", "soak-admin")
        .env("LATCHKEY_LOG", "warn")
        .env_remove("LATCHKEY_CONFIG")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        .expect("listening line");
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    let server = Server(child);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(soak(url, pid, secs, conns));
    drop(server);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn soak(url: String, pid: u32, secs: u64, conns: usize) -> bool {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"user": "admin", "password": "soak-admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (uid, tok) = (
        login["data"]["userId"].as_str().unwrap().to_owned(),
        login["data"]["authToken"].as_str().unwrap().to_owned(),
    );
    let app: Value = http
        .post(format!("{url}/api/v1/oauth-apps.create"))
        .header("X-User-Id", &uid)
        .header("X-Auth-Token", &tok)
        .json(&json!({"name": "soak", "redirectUri": "https://soak.example/cb", "active": true, "grantTypes": ["client_credentials"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &app["application"];
    let (id, cid, secret) = (
        a["_id"].as_str().unwrap().to_owned(),
        a["clientId"].as_str().unwrap().to_owned(),
        a["clientSecret"].as_str().unwrap().to_owned(),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for n in 0..conns {
        let (http, url, uid, tok, id, cid, secret) = (
            http.clone(),
            url.clone(),
            uid.clone(),
            tok.clone(),
            id.clone(),
            cid.clone(),
            secret.clone(),
        );
        let (requests, errors) = (requests.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let mut statuses = Vec::new();
                let t: Option<String> = match http.post(format!("{url}/oauth/token")).basic_auth(&cid, Some(&secret)).form(&[("grant_type", "client_credentials")]).send().await {
                    Ok(r) => {
                        statuses.push(r.status().as_u16());
                        r.json::<Value>().await.ok().and_then(|v| v["access_token"].as_str().map(str::to_owned))
                    }
                    Err(_) => None,
                };
                if let Some(t) = &t {
                    if let Ok(r) = http.post(format!("{url}/oauth/introspect")).basic_auth(&cid, Some(&secret)).form(&[("token", t)]).send().await {
                        statuses.push(r.status().as_u16());
                    }
                }
                if let Ok(r) = http.get(format!("{url}/api/v1/oauth-apps.get?_id={id}")).header("X-User-Id", &uid).header("X-Auth-Token", &tok).send().await {
                    statuses.push(r.status().as_u16());
                }
                if i % 50 == 0 {
                    let name = format!("soak{n}x{i}");
                    if let Ok(r) = http
                        .post(format!("{url}/api/v1/users.create"))
                        .header("X-User-Id", &uid)
                        .header("X-Auth-Token", &tok)
                        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "pw"}))
                        .send()
                        .await
                    {
                        statuses.push(r.status().as_u16());
                    }
                    if let Some(t) = &t {
                        if let Ok(r) = http.post(format!("{url}/oauth/revoke")).basic_auth(&cid, Some(&secret)).form(&[("token", t)]).send().await {
                            statuses.push(r.status().as_u16());
                        }
                    }
                }
                let expected: usize = if i % 50 == 0 { 5 } else { 3 };
                requests.fetch_add(statuses.len() as u64, Ordering::Relaxed);
                let bad = statuses.iter().filter(|s| !(200..300).contains(*s)).count() + expected.saturating_sub(statuses.len());
                errors.fetch_add(bad as u64, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while Instant::now() < deadline {
        let rss = rss_kib(pid);
        let t = started.elapsed().as_secs();
        samples.push((t, rss));
        println!(
            "soak: t={t:>4}s rss={:>6.1} MiB requests={} errors={}",
            rss as f64 / 1024.0,
            requests.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        );
        tokio::time::sleep(
            Duration::from_secs(10).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let total = requests.load(Ordering::Relaxed);
    let errs = errors.load(Ordering::Relaxed);
    // The first third is warm-up (caches fill, the store reaches its steady size); compare the middle third
    // with the last.
    let third = (samples.len() / 3).max(1);
    let mid_peak = samples[third..(2 * third).min(samples.len())]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let last_peak = samples[samples.len().saturating_sub(third)..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let flat = last_peak as f64 <= mid_peak as f64 * 1.25;
    println!(
        "soak: {secs} s, {conns} connections, {total} requests ({:.0}/s), {errs} errors; RSS peak middle third {:.1} MiB, last third {:.1} MiB: {}",
        total as f64 / secs as f64,
        mid_peak as f64 / 1024.0,
        last_peak as f64 / 1024.0,
        if flat { "flat" } else { "GROWING" }
    );
    errs == 0 && flat
}
