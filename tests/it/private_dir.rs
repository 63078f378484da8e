//! The data dir is private to the server's user: the dir and every dir in it 0700, every file 0600 (sled's files
//! and lock, `master.key`), from a fresh start (of the real binary too, whatever umask it was started with),
//! after tightening a dir left open to others, and where `restore` creates the dirs.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use latchkey::clock::Clock;
use latchkey::config::Config;
use serde_json::json;

use crate::common::binary::{self, Latchkey};
use crate::common::{login_at, spawn, TestServer, ADMIN_PASSWORD};
use crate::providers::add;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// `dir` and everything under it.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(entries(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[track_caller]
fn assert_private(dir: &Path) {
    let all = entries(dir);
    assert!(all.iter().any(|p| p.ends_with("master.key")), "{all:?}");
    assert!(all.iter().any(|p| p.ends_with("db/db")), "{all:?}");
    for p in all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{} is {:o}", p.display(), mode(&p));
    }
}

#[tokio::test]
async fn a_fresh_data_dir_is_private_while_serving_and_after() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    assert_private(s.dir.path());
    let dir = s.stop().await;
    assert_private(dir.path());
}

/// The binary sets its own umask at start: started with a permissive one (022, which the test process may not
/// have), what it creates in a fresh data dir is still private.
#[tokio::test]
async fn the_binary_keeps_a_fresh_data_dir_private_whatever_umask_it_inherits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary::serve(dir.path());
    // SAFETY: runs in the child between fork and exec; umask(2) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let server = Latchkey::start(cmd);
    login_at(
        &reqwest::Client::new(),
        &server.url,
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_private(dir.path());
}

#[tokio::test]
async fn a_data_dir_left_open_to_others_is_tightened_at_start() {
    let s = spawn().await;
    let dir = s.stop().await;
    for p in entries(dir.path()) {
        let loose = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let s = TestServer::new().data_dir(dir).start().await;
    assert_private(s.dir.path());
    s.stop().await;
}

#[tokio::test]
async fn restore_creates_private_dirs() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "jane", "email": "jane@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(st, 200);
    let dir = s.stop().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup");
    latchkey::cli::backup(&Config::for_test(dir.path()), &file, &Clock::system()).unwrap();

    let target = work.path().join("new").join("data");
    latchkey::cli::restore(&Config::for_test(&target), &file).unwrap();
    assert_eq!(mode(&work.path().join("new")), 0o700);
    assert_private(&target);
}
