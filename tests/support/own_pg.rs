//! A PostgreSQL server of a test's own, for tests that stop and start their database. One file included with
//! `#[path]` by the integration tests (tests/it/common/nodes.rs) and the store's tests (src/store/pg_test.rs): it
//! needs only std and tempfile, so both crates compile it as their own module.

use std::process::Command;

/// A PostgreSQL server of the test's own (`scripts/pg-test-server.sh` in a temp dir, on a port of its own), for a
/// test that stops and starts its database; removed on drop.
pub struct OwnServer {
    dir: tempfile::TempDir,
    port: String,
    pub url: String,
}

impl OwnServer {
    /// Starts one, or `None` (the test is skipped) when `LATCHKEY_TEST_PG_URL` is not set.
    pub fn start() -> Option<Self> {
        std::env::var_os("LATCHKEY_TEST_PG_URL")?;
        let dir = tempfile::tempdir().unwrap();
        // The server runs as the `postgres` user when the tests run as root: it must be able to pass through this
        // dir, which is 0700 once a test in this process has set the private umask.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        // A port the kernel just handed out and nobody holds: a fixed or pid-derived one can collide with one of
        // the many ephemeral ports the rest of the suite has open.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
            .to_string();
        let mut s = Self {
            dir,
            port,
            url: String::new(),
        };
        s.url = s.script("start");
        Some(s)
    }

    /// Runs the script's `cmd` (`start`, `halt`, `resume`, `stop`) on this server; its output.
    pub fn script(&self, cmd: &str) -> String {
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-server.sh"
        ))
        .arg(cmd)
        .env("PG_TEST_DIR", self.dir.path().join("pg"))
        .env("PG_TEST_PORT", &self.port)
        .output()
        .unwrap();
        assert!(out.status.success(), "{cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.script("stop");
    }
}
