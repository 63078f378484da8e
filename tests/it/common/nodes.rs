//! Several `latchkey` processes on one PostgreSQL database, as nodes behind a load balancer would run, gated by
//! `LATCHKEY_TEST_PG_URL` (scripts/pg-test-server.sh starts a server and prints it). Each test gets a database of
//! its own (`CREATE DATABASE`), so tests never see each other's rows.

use std::process::Command;

use super::binary::{serve, Latchkey};

// Shared with the store's own tests (src/store/pg_test.rs), which include the same file.
#[path = "../../support/own_pg.rs"]
mod own_pg;
use super::Server;
pub use own_pg::OwnServer;

const URL_VAR: &str = "LATCHKEY_TEST_PG_URL";

/// The master key every node of a test shares (base64url of 32 bytes).
pub const MASTER_KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY";

/// A fresh, empty database on the test server: its URL, or `None` (the test is skipped) when
/// `LATCHKEY_TEST_PG_URL` is not set.
pub async fn fresh_database() -> Option<String> {
    let base = std::env::var(URL_VAR).ok()?;
    let name = format!("mn_{}", latchkey::crypto::random_token().to_lowercase())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to LATCHKEY_TEST_PG_URL");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base.as_str(), String::new()),
    };
    let server = head.rsplit_once('/').map_or(head, |(s, _)| s);
    Some(format!("{server}/{name}{query}"))
}

/// `latchkey serve` in a data dir of its own on the database at `url`, with `master_key`.
pub fn node_command(dir: &std::path::Path, url: &str, master_key: &str) -> Command {
    let mut c = serve(dir);
    c.env("LATCHKEY_STORE_URL", url)
        .env("LATCHKEY_MASTER_KEY", master_key);
    c
}

/// A running node: its process (killed on drop) and a [`Server`] handle for the shared test steps.
pub struct Node {
    pub server: Server,
    pub process: Latchkey,
}

impl std::ops::Deref for Node {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// Starts `n` nodes on the database at `url` all at once (each start on its own thread, released together) and
/// waits until every one listens.
pub fn start_nodes(n: usize, url: &str) -> Vec<Node> {
    start_nodes_with(n, url, &[])
}

/// [`start_nodes`] with environment variables `env` set for every node (e.g. the Stack project's keys).
pub fn start_nodes_with(n: usize, url: &str, env: &[(&str, &str)]) -> Vec<Node> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let starts: Vec<_> = (0..n)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = node_command(dir.path(), url, MASTER_KEY);
            cmd.envs(env.iter().copied());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (dir, Latchkey::start(cmd))
            })
        })
        .collect();
    starts
        .into_iter()
        .map(|t| {
            let (dir, process) = t.join().expect("a node started");
            Node {
                server: Server {
                    url: process.url.clone(),
                    http: reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap(),
                    running: None,
                    dir,
                },
                process,
            }
        })
        .collect()
}
