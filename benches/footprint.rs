//! Footprint benchmark of the real release server (docs/benchmarks.md): `cargo bench --bench footprint`.
//!
//! Runs `target/release/latchkey` (building it if missing) on a fresh data dir with one declared
//! `client_credentials` client (a config file, so no HTTP set-up) and prints:
//!
//! - **idle RSS**: a restart on the (almost empty) store, `FOOTPRINT_IDLE_SECS` (default 11) after its first
//!   `/healthz` answer: past the 10 s after which the argon2 workers give back the block the start's re-hash of the
//!   declared secret took (`crypto::password::QUIET`), so the figure is the server at rest;
//! - **start time**: exec to the first 200 from `/healthz`, median of `FOOTPRINT_STARTS` (default 5) restarts on a
//!   store of `FOOTPRINT_START_RECORDS` (default 10^5) live access tokens issued over HTTP;
//! - **RSS after N live tokens**: the last server issues tokens over HTTP (64 keep-alive connections) until the
//!   store holds `FOOTPRINT_TOKENS` (default 300,000); RSS right after, and RSS per token over the idle figure.
//!
//! Tokens live an hour (the default), so every one issued is live when measured. Run without `--bench` (e.g.
//! `cargo test --all-targets`), it does nothing and exits 0. `FOOTPRINT_DIR` (a new directory) keeps the data dir and
//! its `latchkey.toml` for a closer look afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "footprint-bench";
const CLIENT_SECRET: &str = "footprint-bench-secret-0123456789abcdef";
const CONNS: usize = 64;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: skipped (run it with `cargo bench --bench footprint`)");
        return ExitCode::SUCCESS;
    }
    let tokens = env_or("FOOTPRINT_TOKENS", 300_000);
    let start_records = env_or("FOOTPRINT_START_RECORDS", 100_000).min(tokens);
    let starts = env_or("FOOTPRINT_STARTS", 5).max(1);
    let idle_secs = env_or("FOOTPRINT_IDLE_SECS", 11) as u64;
    let bin = release_binary();
    let temp = tempfile::tempdir().expect("temp dir");
    // `FOOTPRINT_DIR` keeps the store for a closer look (e.g. profiling a start on it); it must not exist yet.
    let kept = std::env::var_os("FOOTPRINT_DIR").map(PathBuf::from);
    if let Some(kept) = &kept {
        std::fs::create_dir(kept).expect("FOOTPRINT_DIR must be a new directory");
    }
    let dir = kept.as_deref().unwrap_or(temp.path());
    std::fs::write(dir.join("latchkey.toml"), config()).expect("write the config");

    // The first start creates the store, the signing keys and the admin; it is not what we measure.
    let (first, _) = Server::start(&bin, dir);
    drop(first);
    let (server, _) = Server::start(&bin, dir);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle = server.rss_kib();
    let idle_detail = server.smaps();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(issue(server.addr, start_records));
    drop(server);

    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..starts {
        // The previous server must be gone: one process opens a store.
        drop(last.take());
        let (server, took) = Server::start(&bin, dir);
        times.push(took);
        last = Some(server);
    }
    times.sort();
    let server = last.expect("at least one start");
    let idle_populated = server.rss_kib();
    rt.block_on(issue(server.addr, tokens - start_records));
    let loaded = server.rss_kib();
    let per_token = (loaded.saturating_sub(idle) as f64 * 1024.0) / tokens.max(1) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| idle RSS (restart, {idle_secs} s after the first answer) | {:.1} MiB |",
        mib(idle)
    );
    println!("| idle detail (smaps_rollup) | {idle_detail} |");
    println!(
        "| start, exec to first /healthz 200, {start_records} live tokens (median of {starts}) | {:.1} ms (min {:.1}, max {:.1}) |",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    println!("| RSS after that start | {:.1} MiB |", mib(idle_populated));
    println!(
        "| RSS after {tokens} live tokens | {:.1} MiB |",
        mib(loaded)
    );
    println!("| RSS per live token over idle | {per_token:.0} bytes |");
    ExitCode::SUCCESS
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The server's config: the declared bench client; everything else default, except `cache_mb` when
/// `FOOTPRINT_CACHE_MB` sets it (to compare cache sizes).
fn config() -> String {
    let cache = std::env::var("FOOTPRINT_CACHE_MB")
        .map(|mb| format!("cache_mb = {mb}\n"))
        .unwrap_or_default();
    format!(
        "log = \"warn\"\n{cache}\n[[clients]]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nname = \
         \"Footprint bench\"\nredirect_uri = \"http://127.0.0.1:1/cb\"\ngrant_types = [\"client_credentials\"]\n"
    )
}

/// `target/release/latchkey`, built first if missing (`cargo bench` builds it otherwise).
fn release_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { manifest.join(t) })
        .unwrap_or_else(|| manifest.join("target"));
    let bin = target.join("release").join("latchkey");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "latchkey"])
            .current_dir(manifest)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --release failed: {status}");
    }
    bin
}

/// A server process; killed when dropped (also on panic).
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server on `dir` and returns it with the time from exec to its first 200 from `/healthz`.
    fn start(bin: &Path, dir: &Path) -> (Self, Duration) {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let began = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--config", "latchkey.toml", "--listen"])
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("LATCHKEY_CONFIG")
            .env("LATCHKEY_ADMIN_PASSWORD", "footprint-admin")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        // Drains stdout so the server never blocks on a pipe.
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let server = Self { child, addr };
        while !healthz_ok(addr) {
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "no /healthz answer"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        (server, began.elapsed())
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .expect("VmRSS")
    }

    /// Anonymous and file-backed RSS from `smaps_rollup`.
    fn smaps(&self) -> String {
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        format!(
            "anonymous {:.1} MiB, file-backed (binary, libc) {:.1} MiB",
            mib(field("Anonymous:")),
            mib(field("Rss:").saturating_sub(field("Anonymous:")))
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether `GET /healthz` answers 200 now.
fn healthz_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// Issues `n` client_credentials tokens over `CONNS` concurrent keep-alive connections.
async fn issue(addr: SocketAddr, n: usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNS)
        .build()
        .expect("client");
    let url = format!("http://{addr}/oauth/token");
    // One request first, so the client's secret is verified (argon2) before 64 arrive at once: until then each
    // concurrent request takes a slot of the client throttle and the rest get 429 (the load bench does the same).
    if n == 0 {
        return;
    }
    let first = client
        .post(&url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("first token request");
    assert!(
        first.status().is_success(),
        "first token: {}",
        first.status()
    );
    let left = Arc::new(AtomicUsize::new(n - 1));
    let (failed, failures) = mpsc::channel::<String>();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            let (client, url, left, failed) =
                (client.clone(), url.clone(), left.clone(), failed.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(1))
                    .is_ok()
                {
                    let r = client
                        .post(&url)
                        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        Ok(r) => {
                            let _ = failed.send(format!("{}", r.status()));
                        }
                        Err(e) => {
                            let _ = failed.send(e.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("issuer task");
    }
    drop(failed);
    let failures: Vec<String> = failures.into_iter().collect();
    assert!(
        failures.is_empty(),
        "{} token requests failed, e.g. {}",
        failures.len(),
        failures[0]
    );
}
