//! The real `latchkey` binary: the `listening on` line, first-start output, `kill -9` durability, the data-dir
//! lock, and config errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{json_of, Auth};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

struct Proc {
    child: Child,
    url: String,
    stdout_lines: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("LATCHKEY_CONFIG")
        .env("LATCHKEY_LOG", "warn")
        .env("LATCHKEY_ADMIN_PASSWORD", "pw-from-env")
        // Run from the data dir so the checkout's config file is not picked up.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Starts the binary and reads stdout up to its `listening on` line.
fn start(mut cmd: Command) -> Proc {
    let mut child = cmd.spawn().expect("spawn latchkey");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(url) = l.strip_prefix("listening on ") {
                    let url = url.to_owned();
                    seen.push(l);
                    // Keep draining stdout so the child never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return Proc {
                        child,
                        url,
                        stdout_lines: seen,
                    };
                }
                seen.push(l);
            }
            _ => break,
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "no listening line; stdout {seen:?}, stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn login(url: &str) -> Auth {
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"user": "admin", "password": "pw-from-env"}))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    Auth {
        user_id: v["data"]["userId"].as_str().unwrap().into(),
        token: v["data"]["authToken"].as_str().unwrap().into(),
    }
}

#[tokio::test]
async fn prints_exactly_one_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(command(dir.path()));
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
    let p = start(cmd);
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
    let p2 = start(again);
    assert!(
        !p2.stdout_lines.iter().any(|l| l.contains("password")),
        "printed only on first start"
    );
}

#[tokio::test]
async fn an_acknowledged_app_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(command(dir.path()));
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

    let p2 = start(command(dir.path()));
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
    let _p = start(command(dir.path()));
    let out = command(dir.path()).output().unwrap();
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
    let out = command(dir.path())
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(command(dir.path()));
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
