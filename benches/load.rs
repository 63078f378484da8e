//! Load benchmark of the real release server (docs/benchmarks.md): `cargo bench --bench load`.
//!
//! Starts `target/release/latchkey` on an ephemeral 127.0.0.1 port with a fresh data dir, sets up an admin session,
//! a confidential `client_credentials` app and one access token over HTTP, then drives the endpoints below in
//! turn, each for a fixed time at a fixed number of keep-alive HTTP/1.1 connections (one request in flight per
//! connection):
//!
//! - `GET /healthz`: the trivial ceiling of this server on this machine;
//! - `POST /oauth/token` (`client_credentials`, Basic auth): a store write that is flushed before the answer;
//! - the same for a client whose access tokens are JWTs (RFC 9068), ES256-signed, the cheapest signature Latchkey
//!   offers (ring on this machine: ES256 ~28 µs, EdDSA ~46 µs, RS256 ~900 µs: `cargo bench --bench jose`): not
//!   stored, no write;
//! - `POST /oauth/token` (`authorization_code` with PKCE, scope `openid`): the code flow's token step: the
//!   code's one redemption and the token family written and flushed, and an RS256 ID token signed. Each request
//!   spends its own code, minted before the row through `/oauth/authorize` with the admin's session (`LOAD_CODES`,
//!   default 2,000 per second of the row, caps how many; the row says so if they run out);
//! - `POST /oauth/introspect` (Basic auth): two point lookups and the cached client-secret check;
//! - `GET /api/v1/oauth-apps.get?_id=…` (RC headers): session-token lookup and app lookup;
//! - `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: what every OpenID Connect relying
//!   party fetches (the JWKS is rendered once per key ring).
//!
//! It prints one markdown table (req/s, p50/p99 latency, errors, ratio to `/healthz`, and the previous run's
//! figures from `benches/load-baseline.json` with the change) and exits non-zero when any endpoint answered a
//! non-2xx status or failed at the transport level. `LOAD_SECS` (default 10) and `LOAD_CONNS` (default 64) change
//! the measured time per endpoint and the connection count; `LOAD_ONLY=token,introspect` restricts the run to some
//! endpoints (`/healthz` always runs, it is the reference); `LOAD_SAVE=1` replaces the stored figures of this
//! backend with this run's (`baseline.rs`).
//!
//! `LOAD_STORE_URL=postgres://…` runs the servers on PostgreSQL, in a database created for the run and dropped
//! after it (`pg.rs`): every row above, plus `token-2nodes` (two nodes on that database, the generator's
//! connections alternating between their ports: a round-robin without a proxy) and `pgbench` (one INSERT per
//! transaction at the same connection count, when `pgbench` is on PATH). `LOAD_COMPARE_URL` adds another server's
//! token endpoint as a row (`compare.rs`).
//!
//! The load generator is deliberately thin (raw `hyper::client::conn::http1` per connection, no pool, one
//! histogram per connection merged at the end) because it shares the machine's cores with the server.
//!
//! Run without `--bench` (e.g. `cargo test --all-targets`), it does nothing and exits 0, so test runs never start
//! a multi-second load run or a release build.

// The bench's own modules, beside it in benches/load/ (a bench root's modules would otherwise live in benches/).
#[path = "load/baseline.rs"]
mod baseline;
#[path = "load/compare.rs"]
mod compare;
#[path = "load/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
// hyper's `client` feature comes from the dev-dependencies (hyper-util `client-legacy`, reqwest).
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use baseline::Figures;

const ADMIN_PASSWORD: &str = "bench-admin";
const DEFAULT_SECS: u64 = 10;
const DEFAULT_CONNS: usize = 64;
/// The endpoint keys `LOAD_ONLY` accepts, in run order (`token-2nodes` and `pgbench` run only on PostgreSQL,
/// `compare` only with `LOAD_COMPARE_URL`).
const KEYS: [&str; 11] = [
    "healthz",
    "token",
    "token-2nodes",
    "token-jwt",
    "token-code",
    "introspect",
    "apps-get",
    "jwks",
    "discovery",
    "pgbench",
    "compare",
];
const WARMUP: Duration = Duration::from_secs(2);
/// A request slower than this counts as an error and its connection is replaced.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Latencies are recorded in microseconds, up to this bound (requests time out well before it).
const HIST_MAX_US: u64 = 60_000_000;

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return ExitCode::SUCCESS;
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.cores)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(bench(&cfg)) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Starts the servers, runs the rows, stops the servers, prints the report; true when any row had errors.
async fn bench(cfg: &Config) -> Result<bool, String> {
    let previous = baseline::load()?;
    let db = match &cfg.store_url {
        Some(url) => Some(pg::Database::create(url).await?),
        None => None,
    };
    let bin = binary();
    let mut env = vec![];
    if let Some(db) = &db {
        // Nodes sharing a database share the master key (and the first node's first start creates the admin).
        env.push(("LATCHKEY_STORE_URL", db.url.clone()));
        env.push(("LATCHKEY_MASTER_KEY", pg::master_key()));
    }
    let postmaster = match &db {
        Some(db) => db.postmaster().await,
        None => None,
    };
    let node1 = Server::start(&bin, &env);
    let node2 = (db.is_some() && cfg.wants("token-2nodes")).then(|| Server::start(&bin, &env));
    let other = cfg
        .compare
        .as_ref()
        .filter(|c| c.client.is_none() && cfg.wants("compare"))
        .map(|_| Server::start(&bin, &[]));
    let servers = Servers {
        node1: &node1,
        node2: node2.as_ref(),
        other: other.as_ref(),
        postmaster,
    };
    let run = run(cfg, &servers).await;
    // Stop the servers before printing so their exit is part of the run, and the table is the last thing printed.
    drop((node1, node2, other));
    let pgbench = match (&db, cfg.wants("pgbench")) {
        (Some(db), true) => {
            eprintln!(
                "load: pgbench, one INSERT per transaction, {} s at {} clients",
                cfg.secs, cfg.conns
            );
            pg::pgbench(db, cfg.conns, cfg.secs, cfg.cores, postmaster).await
        }
        _ => Ok(None),
    };
    if let Some(db) = &db {
        db.drop_now().await;
    }
    let outcomes = run?;
    let pgbench = pgbench?;
    let backend = if db.is_some() { "postgres" } else { "sled" };
    let mut rows: Vec<(&str, Figures)> = outcomes.iter().map(|o| (o.key, o.figures())).collect();
    if let Some(p) = &pgbench {
        if let Some(us) = p.db_us_per_tx {
            println!("pgbench: PostgreSQL spent {us:.0} µs of CPU per insert");
        }
        let figures = Figures {
            label: format!("pgbench: 1 INSERT per transaction, {} clients", cfg.conns),
            rps: p.tps,
            p50_ms: p.hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: p.hist.value_at_quantile(0.99) as f64 / 1000.0,
            errors: 0,
        };
        rows.push(("pgbench", figures));
    }
    let failed = report(cfg, &outcomes, &rows, previous.get(backend));
    if std::env::var_os("LOAD_SAVE").is_some() {
        save(cfg, previous, backend, &outcomes, &rows, failed)?;
    }
    Ok(failed)
}

/// `LOAD_SAVE=1`: this run becomes the stored baseline of its backend (not the compare row: another server's
/// figure is not Latchkey's to track). Refused when requests failed.
fn save(
    cfg: &Config,
    previous: baseline::Baselines,
    backend: &str,
    outcomes: &[Outcome],
    rows: &[(&str, Figures)],
    failed: bool,
) -> Result<(), String> {
    if failed {
        return Err("LOAD_SAVE: not saved, requests failed".into());
    }
    let others = outcomes
        .iter()
        .filter_map(|o| o.cpu.as_ref())
        .map(|c| c.others);
    let n = others.clone().count().max(1) as f64;
    let run = baseline::Baseline {
        machine: baseline::Machine::here(cfg.cores, others.sum::<f64>() / n),
        secs: cfg.secs,
        conns: cfg.conns,
        rows: rows
            .iter()
            .filter(|(k, _)| *k != "compare")
            .map(|(k, r)| ((*k).to_owned(), r.clone()))
            .collect(),
    };
    baseline::save(previous, backend, run)?;
    println!(
        "saved this run as the {backend} baseline in {}",
        baseline::path().display()
    );
    Ok(())
}

struct Config {
    secs: u64,
    conns: usize,
    cores: usize,
    only: Option<Vec<String>>,
    /// `LOAD_STORE_URL`: run the nodes on this PostgreSQL server (in a database created for the run).
    store_url: Option<String>,
    compare: Option<compare::Compare>,
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let secs = env_num("LOAD_SECS", DEFAULT_SECS)?;
        let conns = env_num("LOAD_CONNS", DEFAULT_CONNS as u64)? as usize;
        if !(1..=600).contains(&secs) {
            return Err(format!("LOAD_SECS must be 1..=600, got {secs}"));
        }
        if !(1..=1024).contains(&conns) {
            return Err(format!("LOAD_CONNS must be 1..=1024, got {conns}"));
        }
        let only = std::env::var("LOAD_ONLY")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .collect::<Vec<_>>()
            });
        if let Some(bad) = only.iter().flatten().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "LOAD_ONLY: unknown endpoint {bad:?}; known: {}",
                KEYS.join(",")
            ));
        }
        let store_url = std::env::var("LOAD_STORE_URL")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            secs,
            conns,
            cores,
            only,
            store_url,
            compare: compare::Compare::from_env()?,
        })
    }

    fn wants(&self, key: &str) -> bool {
        key == "healthz"
            || self
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|k| k == key))
    }
}

fn env_num(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
    }
}

/// `target/release/latchkey` (honouring `CARGO_TARGET_DIR`); built first only when it is missing. `cargo bench`
/// itself already builds the package's binaries with the bench (= release) profile, so it is normally fresh.
fn binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { manifest.join(t) })
        .unwrap_or_else(|| manifest.join("target"));
    let bin = target.join("release").join("latchkey");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("load: {} is missing; building it", bin.display());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "latchkey"])
            .current_dir(manifest)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --release failed: {status}");
    }
    bin
}

/// The server process; killed when dropped (also on panic), with its data dir removed after it.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `env` on top of the benchmark's settings; returns once it listens.
    fn start(bin: &Path, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("LATCHKEY_CONFIG")
            .env_remove("LATCHKEY_STORE_URL")
            .env_remove("LATCHKEY_MASTER_KEY")
            .env("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LATCHKEY_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            // Run from the data dir so the checkout's config file is not picked up.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads stdout up to the `listening on` line, then keeps draining it so the server never blocks on a pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.strip_prefix("listening on http://") {
                        sent = tx.send(url.trim().to_owned()).is_ok();
                    }
                }
            }
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            _dir: dir,
        };
        let hostport = match rx.recv_timeout(START_TIMEOUT) {
            Ok(h) => h,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!("server printed no `listening on` line (exit status: {status:?})");
            }
        };
        server.addr = hostport
            .parse()
            .unwrap_or_else(|e| panic!("bad listening address {hostport:?}: {e}"));
        server
    }

    fn target(&self) -> Target {
        Target {
            addr: self.addr,
            host: HeaderValue::from_str(&self.addr.to_string()).expect("host header"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The servers of a run: the first node (every row but the compare row), a second node on the same PostgreSQL
/// database (`token-2nodes`), and the second Latchkey of `LOAD_COMPARE_URL=latchkey`.
struct Servers<'a> {
    node1: &'a Server,
    node2: Option<&'a Server>,
    other: Option<&'a Server>,
    /// PostgreSQL's postmaster when it runs on this machine: its processes' CPU is reported apart.
    postmaster: Option<u32>,
}

/// Where a connection sends its requests.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
}

/// Which servers a row's connections go to.
#[derive(Clone, Copy)]
enum Dest {
    Node1,
    /// Connection `i` to node `i % 2`: the round-robin of a load balancer, without a proxy's own cost.
    BothNodes,
    Compare,
}

/// One endpoint under load: a request template cloned for every request.
struct Scenario {
    key: &'static str,
    label: &'static str,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    /// Bodies that can be sent once each (an authorization code redeems once), used instead of `body`.
    once: Option<OnceBodies>,
    dest: Dest,
}

/// Single-use request bodies, handed out in order to every connection without a lock.
struct OnceBodies {
    bodies: Vec<Bytes>,
    next: AtomicUsize,
}

impl OnceBodies {
    fn take(&self) -> Option<Bytes> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .cloned()
    }

    fn ran_out(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.bodies.len()
    }
}

impl Scenario {
    /// The next request, or `None` once a single-use scenario has spent its bodies.
    fn request(&self, host: &HeaderValue) -> Option<Request<Full<Bytes>>> {
        let body = match &self.once {
            Some(once) => once.take()?,
            None => self.body.clone(),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.parse().expect("request path");
        let h = req.headers_mut();
        h.insert(HOST, host.clone());
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        Some(req)
    }
}

/// What one endpoint did during its measured window (errors count the warm-up too).
struct Outcome {
    label: &'static str,
    key: &'static str,
    ok: u64,
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    window: Duration,
    cpu: Option<CpuUse>,
    /// Group-commit flushes the server ran during the window (from its `/metrics`).
    flushes: Option<f64>,
    /// The server's resident memory at the end of the window, in MiB.
    rss_mib: Option<f64>,
    /// Tokens the server has issued so far (all live: the benchmark never revokes and they outlive the run).
    tokens_issued: Option<f64>,
    /// A single-use scenario spent its bodies before the window ended: its rate is understated.
    ran_out: bool,
    /// The server is ours (CPU, RSS and `/metrics` sampled); not for another vendor's server in compare mode.
    server_sampled: bool,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn figures(&self) -> Figures {
        Figures {
            label: self.label.to_owned(),
            rps: self.rps(),
            p50_ms: self.ms(0.50),
            p99_ms: self.ms(0.99),
            errors: self.error_count(),
        }
    }
}

async fn run(cfg: &Config, servers: &Servers<'_>) -> Result<Vec<Outcome>, String> {
    let node1 = servers.node1.target();
    eprintln!(
        "load: server pid {} on {}",
        servers.node1.child.id(),
        node1.addr
    );
    let mut scenarios = setup(node1.addr, &node1.host, cfg, servers.node2.is_some()).await;
    let mut node_pids = vec![servers.node1.child.id()];
    let mut nodes = vec![node1];
    if let Some(node2) = servers.node2 {
        eprintln!(
            "load: second node pid {} on {}",
            node2.child.id(),
            node2.addr
        );
        let t = node2.target();
        // One token first: node 2 verifies the secret once (argon2) before the row, as node 1 did in setup.
        let token = scenarios
            .iter()
            .find(|s| s.key == "token")
            .expect("token row");
        first_token(&t, token).await;
        node_pids.push(node2.child.id());
        nodes.push(t);
    }
    let mut other = None;
    if let Some(c) = cfg.compare.as_ref().filter(|_| cfg.wants("compare")) {
        let (target, s) = compare_row(c, servers.other).await?;
        eprintln!("load: compare row against http://{}{}", target.addr, s.path);
        first_token(&target, &s).await;
        other = Some(target);
        scenarios.push(s);
    }
    let mut out = Vec::new();
    for s in scenarios.into_iter().filter(|s| cfg.wants(s.key)) {
        let (targets, pids) = match s.dest {
            Dest::Node1 => (&nodes[..1], &node_pids[..1]),
            Dest::BothNodes => (&nodes[..], &node_pids[..]),
            Dest::Compare => (
                std::slice::from_ref(other.as_ref().expect("compare target")),
                // A foreign server's process is not ours to sample; a second Latchkey is.
                &servers
                    .other
                    .map(|o| o.child.id())
                    .into_iter()
                    .collect::<Vec<_>>()[..],
            ),
        };
        eprintln!(
            "load: {} for {} s (+{} s warm-up) at {} connections",
            s.label,
            cfg.secs,
            WARMUP.as_secs(),
            cfg.conns
        );
        out.push(drive(targets, pids, servers.postmaster, Arc::new(s), cfg).await);
    }
    Ok(out)
}

/// The compare row and where it goes: the URL of `LOAD_COMPARE_URL`, or the second Latchkey with a client created
/// on it.
async fn compare_row(
    c: &compare::Compare,
    other: Option<&Server>,
) -> Result<(Target, Scenario), String> {
    match (&c.client, other) {
        (Some((id, secret)), _) => {
            let (target, path) = compare::target(&c.url).await?;
            Ok((target, compare::scenario(path, id, secret, &c.body)))
        }
        (None, Some(server)) => {
            let t = server.target();
            let (rc_headers, _) = login(t.addr, &t.host).await;
            let app = create_app(
                t.addr,
                &t.host,
                &rc_headers,
                json!({
                    "name": "load-bench-compare",
                    "redirectUri": "https://bench.example/cb",
                    "active": true,
                    "grantTypes": ["client_credentials"],
                }),
            )
            .await;
            let (id, secret) = (
                str_at(&app, "/application/clientId"),
                str_at(&app, "/application/clientSecret"),
            );
            Ok((
                t,
                compare::scenario("/oauth/token".into(), &id, &secret, &c.body),
            ))
        }
        (None, None) => Err("LOAD_COMPARE_URL=latchkey without its server".into()),
    }
}

/// One request of a token row before it runs; panics unless the answer is 2xx JSON with an access token.
async fn first_token(t: &Target, s: &Scenario) {
    let body = String::from_utf8(s.body.to_vec()).expect("UTF-8 body");
    let answer = one_shot(
        t.addr,
        &t.host,
        s.method.clone(),
        &s.path,
        s.headers.clone(),
        body,
    )
    .await;
    str_at(&answer, "/access_token");
}

/// Logs in as the admin: the RC headers of the session, and its token (also the browser session's cookie value).
async fn login(addr: SocketAddr, host: &HeaderValue) -> (Vec<(HeaderName, HeaderValue)>, String) {
    let login = one_shot(
        addr,
        host,
        Method::POST,
        "/api/v1/login",
        vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json!({"user": "admin", "password": ADMIN_PASSWORD}).to_string(),
    )
    .await;
    let user_id = str_at(&login, "/data/userId");
    let auth_token = str_at(&login, "/data/authToken");
    let rc_headers = vec![
        (
            HeaderName::from_static("x-user-id"),
            HeaderValue::from_str(&user_id).expect("user id header"),
        ),
        (
            HeaderName::from_static("x-auth-token"),
            HeaderValue::from_str(&auth_token).expect("auth token header"),
        ),
    ];
    (rc_headers, auth_token)
}

/// `oauth-apps.create` with `app`; the answer.
async fn create_app(
    addr: SocketAddr,
    host: &HeaderValue,
    rc_headers: &[(HeaderName, HeaderValue)],
    app: Value,
) -> Value {
    let mut headers = rc_headers.to_vec();
    headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    one_shot(
        addr,
        host,
        Method::POST,
        "/api/v1/oauth-apps.create",
        headers,
        app.to_string(),
    )
    .await
}

/// Logs in, creates the benchmark apps and gets one access token; returns the scenarios.
async fn setup(
    addr: SocketAddr,
    host: &HeaderValue,
    cfg: &Config,
    two_nodes: bool,
) -> Vec<Scenario> {
    let json_ct = (CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let form_ct = (
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let (rc_headers, auth_token) = login(addr, host).await;

    let mut create_headers = rc_headers.clone();
    create_headers.push(json_ct.clone());
    let created = one_shot(
        addr,
        host,
        Method::POST,
        "/api/v1/oauth-apps.create",
        create_headers,
        json!({
            "name": "load-bench",
            "redirectUri": "https://bench.example/cb",
            "active": true,
            "grantTypes": ["client_credentials"],
        })
        .to_string(),
    )
    .await;
    let app_id = str_at(&created, "/application/_id");
    let client_id = str_at(&created, "/application/clientId");
    let secret = str_at(&created, "/application/clientSecret");
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(&client_id), enc(&secret)))
    );
    let basic = (
        AUTHORIZATION,
        HeaderValue::from_str(&basic).expect("basic header"),
    );

    // The same grant for a client with JWT access tokens: nothing is stored (docs/oidc.md#jwt-access-tokens).
    let mut jwt_create_headers = rc_headers.clone();
    jwt_create_headers.push(json_ct);
    let jwt_app = one_shot(
        addr,
        host,
        Method::POST,
        "/api/v1/oauth-apps.create",
        jwt_create_headers,
        json!({
            "name": "load-bench-jwt",
            "redirectUri": "https://bench.example/cb",
            "active": true,
            "grantTypes": ["client_credentials"],
            "accessTokenFormat": "jwt",
            "idTokenSignedResponseAlg": "ES256",
        })
        .to_string(),
    )
    .await;
    let jwt_basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            enc(&str_at(&jwt_app, "/application/clientId")),
            enc(&str_at(&jwt_app, "/application/clientSecret"))
        ))
    );
    let jwt_basic = (
        AUTHORIZATION,
        HeaderValue::from_str(&jwt_basic).expect("basic header"),
    );
    // One token first: it verifies the secret once (argon2), so the row measures the cached client
    // authentication the opaque row does, not 64 concurrent first verifications tripping the client throttle.
    let first = one_shot(
        addr,
        host,
        Method::POST,
        "/oauth/token",
        vec![jwt_basic.clone(), form_ct.clone()],
        "grant_type=client_credentials".to_owned(),
    )
    .await;
    assert!(
        str_at(&first, "/access_token").contains('.'),
        "a JWT: {first}"
    );

    let code_row = code_flow(addr, host, cfg, &rc_headers, &auth_token).await;

    let token_body = "grant_type=client_credentials";
    let issued = one_shot(
        addr,
        host,
        Method::POST,
        "/oauth/token",
        vec![basic.clone(), form_ct.clone()],
        token_body.to_owned(),
    )
    .await;
    let access_token = str_at(&issued, "/access_token");
    let introspect_body = format!(
        "token={}",
        form_urlencoded::byte_serialize(access_token.as_bytes()).collect::<String>()
    );
    // The token must introspect as active, or the introspection figures would measure the `active:false` path.
    let check = one_shot(
        addr,
        host,
        Method::POST,
        "/oauth/introspect",
        vec![basic.clone(), form_ct.clone()],
        introspect_body.clone(),
    )
    .await;
    assert_eq!(check["active"], true, "fresh token not active: {check}");

    let mut rows = vec![
        Scenario {
            key: "healthz",
            label: "GET /healthz",
            method: Method::GET,
            path: "/healthz".into(),
            headers: vec![],
            body: Bytes::new(),
            once: None,
            dest: Dest::Node1,
        },
        Scenario {
            key: "token",
            label: "POST /oauth/token (client_credentials)",
            method: Method::POST,
            path: "/oauth/token".into(),
            headers: vec![basic.clone(), form_ct.clone()],
            body: Bytes::from_static(token_body.as_bytes()),
            once: None,
            dest: Dest::Node1,
        },
        Scenario {
            key: "token-jwt",
            label: "POST /oauth/token (client_credentials, JWT access token, ES256)",
            method: Method::POST,
            path: "/oauth/token".into(),
            headers: vec![jwt_basic, form_ct.clone()],
            body: Bytes::from_static(token_body.as_bytes()),
            once: None,
            dest: Dest::Node1,
        },
        code_row,
        Scenario {
            key: "introspect",
            label: "POST /oauth/introspect",
            method: Method::POST,
            path: "/oauth/introspect".into(),
            headers: vec![basic, form_ct],
            body: Bytes::from(introspect_body),
            once: None,
            dest: Dest::Node1,
        },
        Scenario {
            key: "apps-get",
            label: "GET /api/v1/oauth-apps.get",
            method: Method::GET,
            path: format!("/api/v1/oauth-apps.get?_id={app_id}"),
            headers: rc_headers,
            body: Bytes::new(),
            once: None,
            dest: Dest::Node1,
        },
        Scenario {
            key: "jwks",
            label: "GET /.well-known/jwks.json",
            method: Method::GET,
            path: "/.well-known/jwks.json".into(),
            headers: vec![],
            body: Bytes::new(),
            once: None,
            dest: Dest::Node1,
        },
        Scenario {
            key: "discovery",
            label: "GET /.well-known/openid-configuration",
            method: Method::GET,
            path: "/.well-known/openid-configuration".into(),
            headers: vec![],
            body: Bytes::new(),
            once: None,
            dest: Dest::Node1,
        },
    ];
    if two_nodes {
        let token = &rows[1];
        let both = Scenario {
            key: "token-2nodes",
            label: "POST /oauth/token (client_credentials), 2 nodes round-robin",
            method: Method::POST,
            path: token.path.clone(),
            headers: token.headers.clone(),
            body: token.body.clone(),
            once: None,
            dest: Dest::BothNodes,
        };
        rows.insert(2, both);
    }
    rows
}

/// The PKCE verifier of every benchmark code (RFC 7636 §4.1: 43 to 128 characters).
const VERIFIER: &str = "load-benchmark-pkce-verifier-0123456789-abcdefghijklmnop";
const CODE_REDIRECT: &str = "https://bench.example/cb";

/// The code flow's token step: a confidential app that skips consent, and (when the row runs) its codes, minted
/// for the admin's browser session before the row starts, one per request.
async fn code_flow(
    addr: SocketAddr,
    host: &HeaderValue,
    cfg: &Config,
    rc_headers: &[(HeaderName, HeaderValue)],
    auth_token: &str,
) -> Scenario {
    let mut headers = rc_headers.to_vec();
    headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    let app = one_shot(
        addr,
        host,
        Method::POST,
        "/api/v1/oauth-apps.create",
        headers,
        json!({
            "name": "load-bench-code",
            "redirectUri": CODE_REDIRECT,
            "active": true,
            "grantTypes": ["authorization_code"],
            "skipConsent": true,
        })
        .to_string(),
    )
    .await;
    let client_id = str_at(&app, "/application/clientId");
    let basic = basic_auth(&client_id, &str_at(&app, "/application/clientSecret"));
    let form_ct = (
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let body = |code: &str| {
        Bytes::from(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", CODE_REDIRECT)
                .append_pair("code_verifier", VERIFIER)
                .finish(),
        )
    };
    let once = if cfg.wants("token-code") {
        let n = env_num("LOAD_CODES", 2000 * (cfg.secs + WARMUP.as_secs()))
            .unwrap_or_else(|e| panic!("{e}")) as usize;
        let t0 = Instant::now();
        let mut codes = mint_codes(addr, host, &client_id, auth_token, n + 1).await;
        eprintln!(
            "load: minted {} authorization codes in {:.1} s",
            codes.len(),
            t0.elapsed().as_secs_f64()
        );
        // One redemption first: it checks the row's answer and verifies the client secret once (argon2).
        let first = one_shot(
            addr,
            host,
            Method::POST,
            "/oauth/token",
            vec![basic.clone(), form_ct.clone()],
            String::from_utf8(body(&codes.pop().expect("codes")).to_vec()).expect("UTF-8"),
        )
        .await;
        assert!(
            str_at(&first, "/id_token").split('.').count() == 3,
            "an ID token: {first}"
        );
        Some(OnceBodies {
            bodies: codes.iter().map(|c| body(c)).collect(),
            next: AtomicUsize::new(0),
        })
    } else {
        None
    };
    Scenario {
        key: "token-code",
        label: "POST /oauth/token (authorization_code + PKCE, RS256 ID token)",
        method: Method::POST,
        path: "/oauth/token".into(),
        headers: vec![basic, form_ct],
        body: Bytes::new(),
        once,
        dest: Dest::Node1,
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
fn basic_auth(id: &str, secret: &str) -> (HeaderName, HeaderValue) {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    );
    (
        AUTHORIZATION,
        HeaderValue::from_str(&basic).expect("basic header"),
    )
}

/// `n` codes for `client_id`, minted through `/oauth/authorize` over 16 connections with the browser session
/// `auth_token` (the login cookie's value is the session's token).
async fn mint_codes(
    addr: SocketAddr,
    host: &HeaderValue,
    client_id: &str,
    auth_token: &str,
    n: usize,
) -> Vec<String> {
    let discovery = one_shot(
        addr,
        host,
        Method::GET,
        "/.well-known/openid-configuration",
        vec![],
        String::new(),
    )
    .await;
    let issuer = str_at(&discovery, "/issuer");
    let cookie_name = format!("latchkey_{}", &hex(&Sha256::digest(issuer.as_bytes()))[..8]);
    let cookie = HeaderValue::from_str(&format!("{cookie_name}={auth_token}")).expect("cookie");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let path = format!(
        "/oauth/authorize?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CODE_REDIRECT)
            .append_pair("scope", "openid")
            .append_pair("state", "load")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish()
    );
    let uri: hyper::Uri = path.parse().expect("authorize URI");
    let left = Arc::new(AtomicUsize::new(n));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (uri, host, cookie, left) =
                (uri.clone(), host.clone(), cookie.clone(), left.clone());
            tokio::spawn(async move {
                let mut sender = connect(addr).await.expect("connect");
                let mut codes = Vec::new();
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                    .is_ok()
                {
                    let req = Request::builder()
                        .uri(uri.clone())
                        .header(HOST, host.clone())
                        .header(hyper::header::COOKIE, cookie.clone())
                        .body(Full::new(Bytes::new()))
                        .expect("authorize request");
                    sender.ready().await.expect("connection ready");
                    let res = sender.send_request(req).await.expect("authorize");
                    let location = res
                        .headers()
                        .get(hyper::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .unwrap_or_else(|| panic!("authorize → {} without Location", res.status()))
                        .to_owned();
                    res.into_body().collect().await.expect("authorize body");
                    let code = url::Url::parse(&location)
                        .expect("redirect URL")
                        .query_pairs()
                        .find(|(k, _)| k == "code")
                        .unwrap_or_else(|| panic!("no code in {location}"))
                        .1
                        .into_owned();
                    codes.push(code);
                }
                codes
            })
        })
        .collect();
    let mut codes = Vec::with_capacity(n);
    for t in tasks {
        codes.extend(t.await.expect("mint task"));
    }
    codes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
        .to_owned()
}

/// One request on a fresh connection during setup; panics unless the answer is 2xx JSON.
async fn one_shot(
    addr: SocketAddr,
    host: &HeaderValue,
    method: Method,
    path: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: String,
) -> Value {
    let s = Scenario {
        key: "setup",
        label: "setup",
        method,
        path: path.to_owned(),
        headers,
        body: Bytes::from(body),
        once: None,
        dest: Dest::Node1,
    };
    let mut sender = tokio::time::timeout(REQUEST_TIMEOUT, connect(addr))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let res = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let r = sender
            .send_request(s.request(host).expect("a template request"))
            .await?;
        let status = r.status();
        let body = r.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    })
    .await
    .unwrap_or_else(|_| panic!("{path} timed out"))
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    let (status, body) = res;
    let text = String::from_utf8_lossy(&body);
    assert!(status.is_success(), "{path} → {status}: {text}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // Ends by itself once the sender is dropped or the server closes the connection.
    tokio::spawn(conn);
    Ok(sender)
}

/// Runs `conns` connection tasks for warm-up + `secs`, connection `i` to `targets[i % n]`, then merges their
/// results. `pids` are the servers' processes (CPU, RSS and `/metrics` summed over them); empty for a server that
/// is not ours.
async fn drive(
    targets: &[Target],
    pids: &[u32],
    postmaster: Option<u32>,
    s: Arc<Scenario>,
    cfg: &Config,
) -> Outcome {
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + Duration::from_secs(cfg.secs);
    let tasks: Vec<_> = (0..cfg.conns)
        .map(|i| {
            let s = s.clone();
            let t = targets[i % targets.len()].clone();
            tokio::spawn(connection(t.addr, t.host, s, measure_from, end))
        })
        .collect();
    let ours = if pids.is_empty() { &[][..] } else { targets };
    tokio::time::sleep_until(measure_from.into()).await;
    let before = CpuSample::take(pids, postmaster);
    let flushes_before = metric_sum(ours, "latchkey_store_flushes_total").await;
    tokio::time::sleep_until(end.into()).await;
    let after = CpuSample::take(pids, postmaster);
    let flushes_after = metric_sum(ours, "latchkey_store_flushes_total").await;
    let mut hist = new_hist();
    let mut ok = 0;
    let mut errors = BTreeMap::new();
    for t in tasks {
        let r = t.await.expect("load task panicked");
        hist.add(&r.hist).expect("merge histograms");
        ok += r.ok;
        for (k, n) in r.errors {
            *errors.entry(k).or_insert(0) += n;
        }
    }
    Outcome {
        label: s.label,
        key: s.key,
        ok,
        hist,
        errors,
        window: end - measure_from,
        cpu: before.zip(after).map(|(b, a)| a.since(&b)),
        flushes: flushes_before
            .zip(flushes_after)
            .map(|(b, a)| a - b)
            .filter(|n| *n > 0.0),
        rss_mib: (!pids.is_empty())
            .then(|| pids.iter().map(|p| rss_mib(*p)).sum())
            .flatten(),
        tokens_issued: metric_sum(ours, "latchkey_tokens_issued_total").await,
        ran_out: s.once.as_ref().is_some_and(OnceBodies::ran_out),
        server_sampled: !pids.is_empty(),
    }
}

/// VmRSS of a process from `/proc`, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// An unlabelled metric summed over the servers' `/metrics`; `None` when any cannot be read (or none is ours).
async fn metric_sum(targets: &[Target], name: &str) -> Option<f64> {
    let mut sum = None;
    for t in targets {
        sum = Some(sum.unwrap_or(0.0) + metric(t.addr, &t.host, name).await?);
    }
    sum
}

/// An unlabelled metric from the server's `/metrics`.
async fn metric(addr: SocketAddr, host: &HeaderValue, name: &str) -> Option<f64> {
    let text = get_text(addr, host, "/metrics").await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn get_text(addr: SocketAddr, host: &HeaderValue, path: &str) -> Result<String, String> {
    let mut sender = connect(addr).await?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, host)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let fetch = async {
        let r = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let body = r.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("{path} timed out"))?
}

/// Clock ticks per second in `/proc` (`USER_HZ`, 100 on every mainstream Linux build).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU counters from `/proc`, in clock ticks; `None` where there is no `/proc` (the figures are then omitted).
struct CpuSample {
    server: u64,
    generator: u64,
    /// PostgreSQL's processes, when it runs on this machine (part of the system under test, not "others").
    database: Option<u64>,
    machine_busy: u64,
    machine_total: u64,
}

/// CPU used during one measurement window, in cores (1.0 = one core busy for the whole window).
struct CpuUse {
    server: f64,
    generator: f64,
    database: Option<f64>,
    others: f64,
    idle: f64,
}

impl CpuSample {
    /// The counters now; `server` sums the processes of `server_pids`, `database` the postmaster's tree.
    fn take(server_pids: &[u32], postmaster: Option<u32>) -> Option<Self> {
        let (machine_busy, machine_total) = machine_ticks()?;
        let server = server_pids
            .iter()
            .map(|p| process_ticks(&p.to_string()))
            .sum::<Option<u64>>()?;
        Some(Self {
            server,
            generator: process_ticks("self")?,
            database: postmaster.map(pg::tree_ticks),
            machine_busy,
            machine_total,
        })
    }

    fn since(&self, before: &Self) -> CpuUse {
        let total = self.machine_total.saturating_sub(before.machine_total) as f64;
        let busy = self.machine_busy.saturating_sub(before.machine_busy) as f64;
        let server = self.server.saturating_sub(before.server) as f64;
        let generator = self.generator.saturating_sub(before.generator) as f64;
        let database = self
            .database
            .zip(before.database)
            .map(|(a, b)| a.saturating_sub(b) as f64);
        // Machine ticks count every core, so `total` ticks is `total / TICKS_PER_SEC / cores` seconds.
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let secs = (total / TICKS_PER_SEC / cores).max(1e-9);
        let in_cores = |ticks: f64| ticks / TICKS_PER_SEC / secs;
        CpuUse {
            server: in_cores(server),
            generator: in_cores(generator),
            database: database.map(in_cores),
            others: in_cores((busy - server - generator - database.unwrap_or(0.0)).max(0.0)),
            idle: in_cores(total - busy),
        }
    }
}

/// utime + stime of a process (`self` or a pid).
fn process_ticks(pid: &str) -> Option<u64> {
    process_stat(pid).map(|s| s.ticks)
}

/// What `/proc/<pid>/stat` says of a process's family and CPU.
struct ProcStat {
    ppid: u32,
    /// utime + stime.
    ticks: u64,
    /// cutime + cstime: the CPU of its children that exited and were reaped.
    reaped: u64,
}

fn process_stat(pid: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, ppid 4, utime 14, stime 15, cutime 16,
    // cstime 17.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(ProcStat {
        ppid: num(1)? as u32,
        ticks: num(11)? + num(12)?,
        reaped: num(13)? + num(14)?,
    })
}

/// (busy, busy + idle) ticks of all cores from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    Some((busy, busy + at(3) + at(4)))
}

struct ConnResult {
    ok: u64,
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("histogram bounds")
}

/// One keep-alive connection issuing requests back to back until `end`. Only requests that start after the
/// warm-up and finish before `end` are measured; every failure (warm-up included) is counted.
async fn connection(
    addr: SocketAddr,
    host: HeaderValue,
    s: Arc<Scenario>,
    measure_from: Instant,
    end: Instant,
) -> ConnResult {
    let mut r = ConnResult {
        ok: 0,
        hist: new_hist(),
        errors: BTreeMap::new(),
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let fail = |r: &mut ConnResult, what: String| *r.errors.entry(what).or_insert(0) += 1;
    while Instant::now() < end {
        let conn = match sender.as_mut() {
            Some(c) => c,
            None => match tokio::time::timeout(REQUEST_TIMEOUT, connect(addr)).await {
                Ok(Ok(c)) => sender.insert(c),
                Ok(Err(e)) => {
                    fail(&mut r, e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    fail(&mut r, "connect timeout".into());
                    continue;
                }
            },
        };
        let Some(req) = s.request(&host) else {
            break;
        };
        let t0 = Instant::now();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, async {
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status();
            // Read the whole body: that is when the client has the answer.
            resp.into_body().collect().await?;
            Ok::<StatusCode, hyper::Error>(status)
        })
        .await;
        let t1 = Instant::now();
        match res {
            Ok(Ok(status)) if status.is_success() => {
                if t0 >= measure_from && t1 <= end {
                    r.ok += 1;
                    let us = (t1 - t0).as_micros().clamp(1, HIST_MAX_US as u128) as u64;
                    r.hist.record(us).expect("in histogram bounds");
                }
            }
            Ok(Ok(status)) => fail(&mut r, format!("HTTP {}", status.as_u16())),
            Ok(Err(e)) => {
                fail(&mut r, format!("transport: {e}"));
                sender = None;
            }
            Err(_) => {
                fail(&mut r, "timeout".into());
                sender = None;
            }
        }
    }
    r
}

/// Prints the table (`rows` by endpoint key, beside `previous`) and the CPU of each of `results`; true when any
/// endpoint had errors.
fn report(
    cfg: &Config,
    results: &[Outcome],
    rows: &[(&str, Figures)],
    previous: Option<&baseline::Baseline>,
) -> bool {
    let rate = |key: &str| rows.iter().find(|(k, _)| *k == key).map(|(_, r)| r.rps);
    let ceiling = rate("healthz").unwrap_or(0.0);
    println!();
    println!(
        "Latchkey load benchmark: {} connections (HTTP/1.1 keep-alive, 1 request in flight each), {} s measured \
         per endpoint after {} s warm-up, {} cores shared by server and load generator, 127.0.0.1, store: {}",
        cfg.conns,
        cfg.secs,
        WARMUP.as_secs(),
        cfg.cores,
        if cfg.store_url.is_some() { "PostgreSQL" } else { "sled" }
    );
    match previous {
        Some(p) => {
            println!(
                "Previous run (benches/load-baseline.json): {}",
                p.machine.describe()
            );
            if (p.secs, p.conns) != (cfg.secs, cfg.conns) {
                println!(
                    "  WARNING: it ran {} s at {} connections; compare with care",
                    p.secs, p.conns
                );
            }
        }
        None => println!(
            "No previous run of this store in benches/load-baseline.json (LOAD_SAVE=1 stores one)."
        ),
    }
    println!();
    println!(
        "| endpoint | req/s | p50 ms | p99 ms | errors | ratio to /healthz | previous req/s (p99 ms) | change |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (key, r) in rows {
        let ratio = if ceiling > 0.0 && *key != "pgbench" {
            format!("{:.2}", r.rps / ceiling)
        } else {
            "–".into()
        };
        let (prev, change) = match previous.and_then(|p| p.rows.get(*key)) {
            Some(p) => (
                format!("{:.0} ({:.2})", p.rps, p.p99_ms),
                baseline::change(p.rps, r.rps),
            ),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            r.label, r.rps, r.p50_ms, r.p99_ms, r.errors, ratio, prev, change
        );
    }
    if let (Some(other), Some(token)) = (rate("compare"), rate("token")) {
        println!();
        println!(
            "compare: {:.0} req/s = {:.2} of Latchkey's /healthz, {:.2} of Latchkey's client_credentials token row",
            other,
            other / ceiling.max(1e-9),
            other / token.max(1e-9)
        );
    }
    if let Some(db) = rate("pgbench") {
        println!();
        for key in ["token", "token-2nodes", "introspect"] {
            if let Some(r) = rate(key) {
                println!(
                    "PostgreSQL: {key} at {:.2} of pgbench's inserts/s",
                    r / db.max(1e-9)
                );
            }
        }
    }
    println!();
    println!(
        "CPU during each measured window, in cores (of {}):",
        cfg.cores
    );
    println!();
    for o in results {
        match &o.cpu {
            Some(_) if !o.server_sampled => println!(
                "- {}: not our process; its server's CPU is inside \"other processes\"",
                o.label
            ),
            Some(c) => {
                let per_req = |cores: f64| cores * 1e6 / o.rps().max(1e-9);
                println!(
                    "- {}: server {:.2} ({:.0} µs/req), load generator {:.2} ({:.0} µs/req), other processes {:.2}, \
                     idle {:.2}",
                    o.label,
                    c.server,
                    per_req(c.server),
                    c.generator,
                    per_req(c.generator),
                    c.others,
                    c.idle
                );
                if let Some(db) = c.database {
                    println!(
                        "  PostgreSQL (its processes on this machine): {db:.2} cores ({:.0} µs/req), not in \"other processes\"",
                        per_req(db)
                    );
                }
                if let Some(mib) = o.rss_mib {
                    let tokens = o.tokens_issued.unwrap_or(0.0);
                    println!(
                        "  server RSS at the end of the window: {mib:.0} MiB, {tokens:.0} tokens issued so far (JWT access tokens are not stored)"
                    );
                }
                if let Some(n) = o.flushes {
                    let secs = o.window.as_secs_f64();
                    println!(
                        "  store: {:.0} group-commit flushes/s, {:.1} requests per flush",
                        n / secs,
                        o.ok as f64 / n
                    );
                }
                if o.ran_out {
                    println!(
                        "  WARNING: the row spent all its authorization codes before the window ended (raise \
                         LOAD_CODES); its rate is understated"
                    );
                }
                if c.others > 0.2 {
                    println!(
                        "  WARNING: other processes used {:.2} cores during this window; its figures are depressed",
                        c.others
                    );
                }
            }
            None => println!("- {}: (no /proc; CPU not measured)", o.label),
        }
    }
    println!();
    let mut failed = false;
    for o in results {
        if o.error_count() > 0 {
            failed = true;
            let detail: Vec<String> = o.errors.iter().map(|(k, n)| format!("{n}× {k}")).collect();
            println!("ERRORS on {}: {}", o.label, detail.join(", "));
        }
    }
    // The goals of the load-benchmark issue, reported (not enforced: they depend on the machine).
    let goal = |key: &str, min_ratio: f64| {
        if let Some(o) = results.iter().find(|o| o.key == key) {
            let ratio = if ceiling > 0.0 {
                o.rps() / ceiling
            } else {
                0.0
            };
            let met = ratio >= min_ratio && o.ms(0.99) < 20.0;
            println!(
                "goal {}: ≥ {:.0}% of /healthz and p99 < 20 ms: {} ({:.0}%, p99 {:.2} ms)",
                o.label,
                min_ratio * 100.0,
                if met { "met" } else { "MISSED" },
                ratio * 100.0,
                o.ms(0.99)
            );
        }
    };
    goal("token", 0.30);
    goal("token-jwt", 0.50);
    goal("introspect", 0.70);
    goal("jwks", 0.80);
    goal("discovery", 0.80);
    if let (Some(one), Some(db)) = (rate("token"), rate("pgbench")) {
        let ratio = one / db.max(1e-9);
        println!(
            "goal PostgreSQL: one node's client_credentials ≥ 0.5 of pgbench's inserts/s: {} ({ratio:.2})",
            if ratio >= 0.5 { "met" } else { "MISSED" }
        );
    }
    if failed {
        println!(
            "RESULT: FAILED, requests failed (see ERRORS above); the figures are not trustworthy"
        );
    } else {
        println!("RESULT: ok, no errors");
    }
    failed
}
