//! The figures of the previous run, kept in the repo (`benches/load-baseline.json`) so every run prints its change
//! beside them, and `LOAD_SAVE=1` to replace them. One section per store backend, since a PostgreSQL run and a
//! sled run measure different things; each section says on which machine, when and at which commit it was taken.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The whole file: a section per backend (`sled`, `postgres`).
pub type Baselines = BTreeMap<String, Baseline>;

#[derive(Serialize, Deserialize)]
pub struct Baseline {
    pub machine: Machine,
    /// `LOAD_SECS` and `LOAD_CONNS` of the run: figures of other settings are not comparable.
    pub secs: u64,
    pub conns: usize,
    /// By endpoint key (`token`, `introspect`, `pgbench`, …).
    pub rows: BTreeMap<String, Figures>,
}

/// What one row measured.
#[derive(Clone, Serialize, Deserialize)]
pub struct Figures {
    pub label: String,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// Where and when a run was taken.
#[derive(Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
    /// RFC 3339, UTC.
    pub date: String,
    /// `git describe --always --dirty` of the checkout.
    pub git_rev: String,
    /// Cores other processes kept busy on average while the rows ran: how quiet the machine was.
    pub others_cores: f64,
}

impl Machine {
    pub fn here(cores: usize, others_cores: f64) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Self {
            cores,
            cpu,
            kernel,
            date: latchkey::clock::rfc3339(latchkey::clock::Clock::system().now_ms()),
            git_rev: git_rev(),
            others_cores: (others_cores * 100.0).round() / 100.0,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} at {} on {} ({} cores, Linux {}; other processes {:.2} cores)",
            self.date, self.git_rev, self.cpu, self.cores, self.kernel, self.others_cores
        )
    }
}

fn git_rev() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// `benches/load-baseline.json` in the checkout.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/load-baseline.json")
}

/// The stored baselines; empty when the file is missing, an error when it is unreadable (say so, do not guess).
pub fn load() -> Result<Baselines, String> {
    match std::fs::read_to_string(path()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Baselines::new()),
        Err(e) => Err(format!("{}: {e}", path().display())),
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path().display())),
    }
}

/// Replaces the section `backend` with this run, keeping the other backends' sections.
pub fn save(mut all: Baselines, backend: &str, run: Baseline) -> Result<(), String> {
    all.insert(backend.to_owned(), run);
    let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path(), text).map_err(|e| format!("{}: {e}", path().display()))
}

/// "+4.1 %" from `prev` to `now`.
pub fn change(prev: f64, now: f64) -> String {
    if prev <= 0.0 {
        return "–".into();
    }
    format!("{:+.1} %", (now / prev - 1.0) * 100.0)
}
