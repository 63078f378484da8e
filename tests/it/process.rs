//! The real `latchkey` binary: the `listening on` line, first-start output, `kill -9` durability, the data-dir
//! lock, and config errors.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::binary::{run_to_exit, serve as command, Latchkey};
use crate::common::{json_of, login_at, Auth, ADMIN_PASSWORD};

/// How long a process that must refuse to start may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

async fn login(url: &str) -> Auth {
    login_at(&reqwest::Client::new(), url, "admin", ADMIN_PASSWORD).await
}

#[tokio::test]
async fn prints_exactly_one_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let p = Latchkey::start(command(dir.path()));
    let listening: Vec<_> = p
        .stdout_lines
        .iter()
        .filter(|l| l.starts_with("listening on http://127.0.0.1:"))
        .collect();
    assert_eq!(listening.len(), 1);
    let body = reqwest::get(format!("{}/healthz", p.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn a_generated_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env_remove("LATCHKEY_ADMIN_PASSWORD");
    let p = Latchkey::start(cmd);
    let line = p
        .stdout_lines
        .iter()
        .find(|l| l.contains("with password"))
        .expect("password line")
        .clone();
    let password = line
        .split("with password ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(password.len(), 43);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/login", p.url))
        .json(&json!({"user": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(p);
    let mut again = command(dir.path());
    again.env_remove("LATCHKEY_ADMIN_PASSWORD");
    let p2 = Latchkey::start(again);
    assert!(
        !p2.stdout_lines.iter().any(|l| l.contains("password")),
        "printed only on first start"
    );
}

#[tokio::test]
async fn an_acknowledged_app_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = Latchkey::start(command(dir.path()));
    let auth = login(&p.url).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = http
            .post(format!("{}/api/v1/oauth-apps.create", p.url))
            .header("X-User-Id", &auth.user_id)
            .header("X-Auth-Token", &auth.token)
            .json(&json!({"name": format!("app{i}"), "redirectUri": "https://a.example/cb", "active": true}))
            .send()
            .await
            .unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(st, 200);
        ids.push(v["application"]["_id"].as_str().unwrap().to_owned());
    }
    // SIGKILL right after the last acknowledgement: no graceful flush happens.
    let mut p = p;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    drop(p);

    let p2 = Latchkey::start(command(dir.path()));
    let auth = login(&p2.url).await;
    for id in ids {
        let r = http
            .get(format!("{}/api/v1/oauth-apps.get?_id={id}", p2.url))
            .header("X-User-Id", &auth.user_id)
            .header("X-Auth-Token", &auth.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "app {id} lost after kill -9");
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_exits_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let _p = Latchkey::start(command(dir.path()));
    let out = run_to_exit(command(dir.path()), EXIT_WITHIN);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another latchkey process"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[tokio::test]
async fn unknown_config_keys_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlisten_port = 1\n").unwrap();
    let mut cmd = command(dir.path());
    cmd.arg("--config").arg(&cfg);
    let out = run_to_exit(cmd, EXIT_WITHIN);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Latchkey::start(command(dir.path()));
    let pid = p.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            assert!(st.success(), "exit status {st}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
