//! Hostile upstream answers on the preset paths tests/it/hostile.rs does not reach: GitHub's emails endpoint
//! answering a huge body, HTML, nothing for 30 s, or a redirect to another host; Twitch's `data` empty and X's
//! `data` missing. Each ends, within the request deadline, on an error page that says what failed, and the store
//! is as it was. And the real binary, logging at debug level through a whole preset sign-in, never writes the
//! upstream client secret or the upstream access or refresh token to a log line or in plaintext under its data dir.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use super::{authorize_url, to_callback, upstream_for};
use crate::common::binary::{serve, Latchkey};
use crate::common::upstream::{self, Hostile, Spec, ACCESS_TOKEN};
use crate::common::{browser, files_under, Server, TestServer};
use crate::oauth_flow::make_app;

async fn counts(s: &Server) -> (usize, usize) {
    let store = &s.running.as_ref().unwrap().state.store;
    (
        store.list_users().await.unwrap().len(),
        store.list_links().await.unwrap().len(),
    )
}

#[tokio::test]
async fn hostile_preset_answers_end_on_a_bounded_error_page_and_change_nothing() {
    let github = || {
        let (identity, _, _) = super::documented("github");
        Spec::new("github", identity)
    };
    let hostile = |how| Spec {
        emails_hostile: Some(how),
        ..github()
    };
    let mut cases = Vec::new();
    let mut declared = Vec::new();
    for (service, spec, status, says) in [
        (
            "huge",
            hostile(Hostile::Huge),
            StatusCode::BAD_GATEWAY,
            "Huge's emails response is larger than 1048576 bytes",
        ),
        (
            "notjson",
            hostile(Hostile::NotJson),
            StatusCode::BAD_GATEWAY,
            "Notjson's emails response is not JSON",
        ),
        (
            "slow",
            hostile(Hostile::Slow),
            StatusCode::GATEWAY_TIMEOUT,
            "Slow did not answer within",
        ),
        (
            "redirect",
            hostile(Hostile::Redirect),
            StatusCode::BAD_GATEWAY,
            "Redirect's emails endpoint answered 307",
        ),
        (
            "twitch",
            Spec::new("twitch", json!({"data": []})),
            StatusCode::BAD_GATEWAY,
            "Twitch: the identity response has no \"data.0\"",
        ),
        (
            "x",
            Spec::new("x", json!({"errors": [{"title": "Not Found Error"}]})),
            StatusCode::BAD_GATEWAY,
            "X: the identity response has no \"data",
        ),
    ] {
        let (up, d) = upstream_for(service, spec).await;
        declared.push(d);
        cases.push((up, service, status, says));
    }
    let s = TestServer::new()
        .config(move |c| {
            c.limits.request_timeout_secs = 2;
            c.providers = declared;
        })
        .start()
        .await;
    let app = make_app(&s, json!({"skipConsent": true})).await;
    for (_up, service, status, says) in &cases {
        let before = counts(&s).await;
        let b = browser();
        let callback = to_callback(&s, &b, &authorize_url(&s, &app.client_id), service).await;
        let started = Instant::now();
        let r = b.get(&callback).send().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{service}: {:?}",
            started.elapsed()
        );
        assert_eq!(r.status(), *status, "{service}");
        let page = crate::common::unescape(&r.text().await.unwrap());
        assert!(
            page.contains("Sign-in failed") && page.contains(says),
            "{says}: {page}"
        );
        assert_eq!(
            counts(&s).await,
            before,
            "{service}: the store is unchanged"
        );
    }
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn no_upstream_secret_or_token_reaches_a_debug_log_line_or_the_data_dir() {
    let (identity, emails, _) = super::documented("github");
    let mut spec = Spec::new("github", identity);
    spec.emails = emails;
    let (client_id, secret) = (spec.client_id.clone(), spec.client_secret.clone());
    let up = upstream::start(spec).await;
    let dir = tempfile::tempdir().unwrap();
    // The config file holds the secret as the operator wrote it: outside the data dir.
    let etc = tempfile::tempdir().unwrap();
    let config = etc.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!("[[providers]]\npreset = \"github\"\nclient_id = \"{client_id}\"\nclient_secret = \"{secret}\"\nurl = \"{}\"\n", up.url),
    )
    .unwrap();
    let mut cmd = serve(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .env("LATCHKEY_LOG", "debug");
    let server = Latchkey::start(cmd);

    let b = browser();
    let r = b
        .get(format!("{}/login/github?return_to=/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], "/login", "signed in");

    let mut log = server.stdout_lines.join("\n");
    log.push_str(&server.kill());
    assert!(log.lines().count() > 5, "debug logging ran: {log}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let never = [
        secret.as_str(),
        ACCESS_TOKEN,
        "upstream-refresh-token",
        basic.as_str(),
    ];
    for needle in never {
        assert!(!log.contains(needle), "{needle} in the log:\n{log}");
    }
    // The scan sees the records the sign-in wrote: the new user's name is there in plaintext.
    let files = files_under(dir.path());
    let holds = |needle: &str| {
        files.iter().any(|f| {
            let bytes = std::fs::read(f).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    };
    assert!(holds("octocat@github.com"), "the sign-in reached the disk");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for needle in never {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in plaintext in {}",
                f.display()
            );
        }
    }
}
