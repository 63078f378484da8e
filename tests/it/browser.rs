//! Browser tests: headless Chromium (Debian `chromium` + `chromium-driver`, installed by `.ci/run`) signs in and
//! consents through the real pages and lands on the client's redirect URI with a code.
//!
//! Without chromedriver on the PATH the test is skipped with a message, except under CI (`CI` set), where a
//! missing browser is a failure.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::{query_of, s256, spawn, steps, Server};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver and a headless Chromium session, or `None` (skip) when none is installed outside CI.
async fn browser() -> Option<(Driver, Client)> {
    let Ok(path) = which("chromedriver") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is required under CI (.ci/run installs chromium-driver)"
        );
        eprintln!("skipping browser test: chromedriver not installed (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=420,860"]
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return Some((driver, c)),
            Err(e) if Instant::now() > deadline => panic!("cannot start chromium: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn which(bin: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("LATCHKEY_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// Fills and submits the sign-in page as admin.
async fn sign_in(c: &Client) {
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("admin-password")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The URL the browser reaches that starts with `prefix` (within 10 s).
async fn landed_at(c: &Client, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let u = c.current_url().await.unwrap().to_string();
        if u.starts_with(prefix) {
            return u;
        }
        assert!(Instant::now() < deadline, "never reached {prefix}; at {u}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn make_app(s: &Server, redirect: &str) -> String {
    steps::make_app(s, json!({"name": "Browser App", "redirectUri": redirect}))
        .await
        .client_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_consent_in_headless_chromium() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = spawn().await;
    // The redirect target is any page of the same server, so the browser lands somewhere real.
    let redirect = format!("{}/healthz", s.url);
    let client_id = make_app(&s, &redirect).await;
    let verifier = "browser-test-verifier-0123456789-abcdefghijklmnopq";
    let url = format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state=b-state&scope=openid%20profile&code_challenge={}&code_challenge_method=S256",
        s.url,
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
        s256(verifier)
    );
    c.goto(&url).await.unwrap();
    screenshot(&c, "login").await;
    sign_in(&c).await;

    c.wait()
        .for_element(Locator::Css("button[value=allow]"))
        .await
        .unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Browser App") && text.contains("openid") && text.contains("profile"),
        "{text}"
    );
    screenshot(&c, "consent").await;
    c.find(Locator::Css("button[value=allow]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let landed = landed_at(&c, &redirect).await;
    let q = query_of(&landed);
    assert_eq!(q["state"], "b-state");
    assert_eq!(q["iss"], s.url);
    assert_eq!(q["code"].len(), 43);
    c.close().await.unwrap();
}

/// RP-initiated logout without an `id_token_hint`: the user confirms on the page, is sent back to the registered
/// URI with `state`, and the next authorization request asks them to sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_through_the_confirmation_page_in_headless_chromium() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = spawn().await;
    let redirect = format!("{}/healthz", s.url);
    let bye = format!("{}/healthz?signed-out", s.url);
    let client_id = steps::make_app(
        &s,
        json!({"name": "Browser App", "redirectUri": redirect, "skipConsent": true,
               "postLogoutRedirectUris": [bye]}),
    )
    .await
    .client_id;
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let authorize = format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state=in&scope=openid&code_challenge={}&code_challenge_method=S256",
        s.url,
        enc(&redirect),
        s256("browser-test-verifier-0123456789-abcdefghijklmnopq")
    );
    c.goto(&authorize).await.unwrap();
    sign_in(&c).await;
    landed_at(&c, &redirect).await;

    c.goto(&format!(
        "{}/oauth/logout?client_id={client_id}&post_logout_redirect_uri={}&state=out",
        s.url,
        enc(&bye)
    ))
    .await
    .unwrap();
    let confirm = c
        .wait()
        .for_element(Locator::Css("button[value=logout]"))
        .await
        .unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Browser App") && text.contains("admin"),
        "{text}"
    );
    screenshot(&c, "logout").await;
    confirm.click().await.unwrap();
    let landed = landed_at(&c, &bye).await;
    assert_eq!(query_of(&landed)["state"], "out");

    c.goto(&authorize).await.unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=password]"))
        .await
        .unwrap();
    c.close().await.unwrap();
}
