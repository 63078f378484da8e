//! PostgreSQL rows (`LOAD_STORE_URL=postgres://…`): a fresh database per run for the nodes, and `pgbench` inserting
//! one row per transaction into it at the same connection count, the database's own ceiling on this machine.

use std::path::Path;
use std::process::Command;

use hdrhistogram::Histogram;

/// A database created for one run and dropped after it, so every run starts from an empty store.
pub struct Database {
    admin_url: String,
    name: String,
    /// The URL the nodes and pgbench use.
    pub url: String,
}

impl Database {
    /// Creates `latchkey_load_<pid>` on the server of `url` (whose database must exist and allow CREATE DATABASE).
    pub async fn create(url: &str) -> Result<Self, String> {
        let name = format!("latchkey_load_{}", std::process::id());
        execute(url, &format!("DROP DATABASE IF EXISTS {name}")).await?;
        execute(url, &format!("CREATE DATABASE {name}")).await?;
        let mut db_url = url::Url::parse(url).map_err(|e| format!("LOAD_STORE_URL: {e}"))?;
        db_url.set_path(&format!("/{name}"));
        Ok(Self {
            admin_url: url.to_owned(),
            name,
            url: db_url.into(),
        })
    }

    /// Drops the database (after the nodes stopped; `FORCE` ends any connection left).
    pub async fn drop_now(&self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = execute(&self.admin_url, &sql).await {
            eprintln!("load: could not drop database {}: {e}", self.name);
        }
    }
}

async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to LOAD_STORE_URL: {e}"))?;
    let conn = tokio::spawn(conn);
    let res = client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {e}"));
    drop(client);
    let _ = conn.await;
    res
}

/// The table pgbench inserts into: the shape of Latchkey's `tokens` row for a client_credentials token (a 32-byte
/// digest key, the client id, an expiry, a ~200-byte record).
const TABLE: &str =
    "CREATE TABLE load_pgbench (digest bytea PRIMARY KEY, client_id text COLLATE \"C\" NOT NULL, \
                     expires_at bigint NOT NULL, rec bytea NOT NULL)";
/// One INSERT per transaction (pgbench autocommits each statement), a fresh random key each time.
const SCRIPT: &str = "INSERT INTO load_pgbench VALUES (sha256(random()::text::bytea), 'load-bench', \
                      extract(epoch from now())::bigint + 3600, convert_to(repeat('x', 200), 'UTF8'));\n";

/// What pgbench measured: transactions per second and per-transaction latencies (from its `--log`).
pub struct Pgbench {
    pub tps: f64,
    pub hist: Histogram<u64>,
    /// PostgreSQL's CPU per transaction, when it runs on this machine (to set beside a token's).
    pub db_us_per_tx: Option<f64>,
}

/// Runs `pgbench` (if it is on PATH) with `conns` clients for `secs` against `db`; `Ok(None)` without pgbench.
pub async fn pgbench(
    db: &Database,
    conns: usize,
    secs: u64,
    threads: usize,
    postmaster: Option<u32>,
) -> Result<Option<Pgbench>, String> {
    if Command::new("pgbench").arg("--version").output().is_err() {
        return Ok(None);
    }
    execute(&db.url, TABLE).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("insert.sql");
    std::fs::write(&script, SCRIPT).map_err(|e| e.to_string())?;
    let (url, dir_path) = (db.url.clone(), dir.path().to_owned());
    let ticks_before = postmaster.map(tree_ticks);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("pgbench")
            .args(["--no-vacuum", "--log", "--log-prefix"])
            .arg(dir_path.join("tx"))
            .arg("--file")
            .arg(&script)
            .args(["--client", &conns.to_string()])
            .args(["--jobs", &threads.min(conns).to_string()])
            .args(["--time", &secs.to_string()])
            .arg(&url)
            .output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("pgbench: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let ticks = postmaster
        .map(tree_ticks)
        .zip(ticks_before)
        .map(|(a, b)| a.saturating_sub(b));
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no `tps = ` line in pgbench's output: {stdout}"))?;
    let hist = latencies(dir.path())?;
    // Ticks are 10 ms (`USER_HZ` 100); the log has one line per transaction.
    let db_us_per_tx = ticks.map(|t| t as f64 * 10_000.0 / hist.len().max(1) as f64);
    Ok(Some(Pgbench {
        tps,
        hist,
        db_us_per_tx,
    }))
}

/// Merges pgbench's per-transaction logs (`client transaction latency_us script epoch epoch_us` per line).
fn latencies(dir: &Path) -> Result<Histogram<u64>, String> {
    let mut hist = super::new_hist();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tx"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        for us in text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        {
            hist.record(us.clamp(1, super::HIST_MAX_US))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(hist)
}

/// A random master key for the nodes of one run: nodes sharing a database must share it.
pub fn master_key() -> String {
    use base64::Engine;
    use rand_core::RngCore;
    let mut key = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

impl Database {
    /// The postmaster's pid when the server runs on this machine: the parent of our backend, if `/proc` shows
    /// a `postgres` process there (a remote server's backend pid means nothing here).
    pub async fn postmaster(&self) -> Option<u32> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .ok()?;
        let conn = tokio::spawn(conn);
        let backend: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .ok()?
            .get(0);
        let is_postgres = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        };
        let parent = is_postgres(backend as u32)
            .then(|| super::process_stat(&backend.to_string()))
            .flatten()
            .map(|s| s.ppid)
            .filter(|p| is_postgres(*p));
        drop(client);
        let _ = conn.await;
        parent
    }
}

/// CPU ticks of the postmaster and its children (backends, WAL writer, checkpointer, …): those alive now, and
/// those that exited (a backend ends with its connection), which the postmaster's reaped-children counters hold.
pub fn tree_ticks(postmaster: u32) -> u64 {
    let own = super::process_stat(&postmaster.to_string()).map_or(0, |s| s.ticks + s.reaped);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return own;
    };
    let children: u64 = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| super::process_stat(&pid))
        .filter(|s| s.ppid == postmaster)
        .map(|s| s.ticks)
        .sum();
    own + children
}
