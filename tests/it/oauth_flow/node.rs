//! Real Node clients against a live server: simple-oauth2 (tests/node, `npm ci --prefix tests/node`). Without
//! node or those modules the test is skipped with a message, except under CI (`CI` set), where it must run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::*;

/// The directory holding the Node clients, or `None` (skip) when node or its modules are missing outside CI.
fn node_clients() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let node = Command::new("node").arg("--version").output().is_ok();
    let modules = dir.join("node_modules/simple-oauth2").is_dir();
    if node && modules {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "node and tests/node's modules are required under CI (apt-get install nodejs npm; npm ci --prefix tests/node)"
    );
    eprintln!("skipping simple-oauth2 test: needs node and `npm ci --prefix tests/node`");
    None
}

#[tokio::test]
async fn simple_oauth2_gets_and_revokes_a_token() {
    let Some(dir) = node_clients() else {
        return;
    };
    let s = spawn().await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    for method in ["header", "body"] {
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir).args([
            "revoke.js",
            &s.url,
            &app.client_id,
            app.secret.as_deref().unwrap(),
            method,
        ]);
        // The script bounds its own requests (10 s each); this bounds the whole run.
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || cmd.output()),
        )
        .await
        .expect("node finished")
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{method}: {stderr}");
        let revoked = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            introspect(&s, &app, revoked.trim()).await,
            json!({"active": false}),
            "{method}"
        );
    }
}
