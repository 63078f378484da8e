//! Upgrades: the data dir and the backup that Latchkey 0.1.0 wrote (tests/fixtures/v0.1.0, see its README) open,
//! verify and serve with today's code, and every record in them is usable: passwords, login tokens, apps and their
//! secrets, live access and refresh tokens, the provider's sealed secret, the Stack link, TOTP and backup codes.

use std::path::{Path, PathBuf};

use latchkey::clock::Clock;
use latchkey::config::Config;
use latchkey::core::two_factor::code_at;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_of, Auth, Server, TestServer};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(fixture().join("manifest.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The fixture's settings (its Stack keys) on data dir `data`.
fn config(m: &Value, data: &Path) -> Config {
    let mut cfg = Config::for_test(data);
    cfg.stack.project_id = m["stack"]["project"].as_str().unwrap().into();
    cfg.stack.server_key = m["stack"]["server"].as_str().unwrap().into();
    cfg.stack.admin_key = m["stack"]["admin"].as_str().unwrap().into();
    cfg
}

/// Serves `cfg` (whose data dir is inside `dir`).
async fn serve(cfg: Config, dir: tempfile::TempDir) -> Server {
    let started = TestServer::new()
        .data_dir(dir)
        .config(|c| *c = cfg)
        .try_start()
        .await;
    match started {
        Ok(s) => s,
        Err(refused) => panic!("a 0.1.0 data dir opens and verifies: {}", refused.error),
    }
}

#[tokio::test]
async fn a_data_dir_written_by_0_1_0_serves_every_record() {
    let m = manifest();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&fixture().join("data"), &data);
    let s = serve(config(&m, &data), dir).await;
    every_record_is_usable(&s, &m).await;
}

#[tokio::test]
async fn a_backup_written_by_0_1_0_restores_and_serves_every_record() {
    let m = manifest();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("restored");
    let cfg = config(&m, &data);
    let lines = latchkey::cli::restore(&cfg, &fixture().join("backup.jsonl")).unwrap();
    assert!(lines.iter().any(|l| l.contains("verified")), "{lines:?}");
    let s = serve(cfg, dir).await;
    every_record_is_usable(&s, &m).await;
}

async fn every_record_is_usable(s: &Server, m: &Value) {
    let str_of = |v: &Value| v.as_str().unwrap().to_owned();
    // The admin's login token and password.
    let admin = Auth {
        user_id: str_of(&m["admin"]["id"]),
        token: str_of(&m["admin"]["login_token"]),
    };
    let (st, me) = s.get("/api/v1/me", &admin).await;
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")), "{me}");
    s.login("admin", m["admin"]["password"].as_str().unwrap())
        .await;
    s.login("alice", m["users"]["alice"]["password"].as_str().unwrap())
        .await;

    // The apps, and the confidential one's secret.
    let app = &m["apps"]["confidential"];
    let (client_id, secret) = (str_of(&app["client_id"]), str_of(&app["secret"]));
    let (st, v) = s
        .get(
            &format!("/api/v1/oauth-apps.get?clientId={client_id}"),
            &admin,
        )
        .await;
    assert_eq!(
        (st, v["oauthApp"]["name"].as_str()),
        (200, Some("Fixture App")),
        "{v}"
    );
    let (st, v) = s.get("/api/v1/oauth-apps.list", &admin).await;
    assert_eq!(
        (st, v["oauthApps"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{v}"
    );
    let token = |form: &[(&str, &str)]| {
        s.req(Method::POST, "/oauth/token")
            .basic_auth(&client_id, Some(&secret))
            .form(form)
            .send()
    };
    let (st, v) = json_of(
        token(&[("grant_type", "client_credentials")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200, "{v}");

    // The live tokens 0.1.0 issued: introspection, userinfo, and a refresh rotation.
    let introspect = |tok: String| {
        let (id, secret) = (client_id.clone(), secret.clone());
        async move {
            json_of(
                s.req(Method::POST, "/oauth/introspect")
                    .basic_auth(id, Some(secret))
                    .form(&[("token", tok)])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .1
        }
    };
    for t in ["client_credentials", "alice_access", "alice_refresh"] {
        let v = introspect(str_of(&m["tokens"][t])).await;
        assert_eq!(v["active"], true, "{t}: {v}");
    }
    let (st, v) = json_of(
        s.req(Method::GET, "/oauth/userinfo")
            .bearer_auth(str_of(&m["tokens"]["alice_access"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, v["sub"].clone()),
        (200, m["users"]["alice"]["id"].clone()),
        "{v}"
    );
    let refresh = str_of(&m["tokens"]["alice_refresh"]);
    let (st, v) = json_of(
        token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["refresh_token"].is_string(), "{v}");

    // The provider, its sealed secret (masked, and it opens under the data dir's master key), the Stack link.
    let service = str_of(&m["provider"]["service"]);
    let (st, v) = s.get("/api/v1/settings.oauth", &admin).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["services"][0]["service"], service.as_str(), "{v}");
    assert_eq!(
        v["services"][0]["clientId"], m["provider"]["client_id"],
        "{v}"
    );
    let state = &s.running.as_ref().unwrap().state;
    let provider = state.store.get_provider(&service).await.unwrap().unwrap();
    let opened = latchkey::core::provider::client_secret(&state.sealer, &provider).unwrap();
    assert_eq!(opened.as_deref(), m["provider"]["secret"].as_str());
    let link_id = str_of(&m["link"]["id"]);
    let r = s
        .req(
            Method::GET,
            &format!(
                "/api/v1/oauth-providers/{}/{link_id}",
                m["link"]["user_id"].as_str().unwrap()
            ),
        )
        .header(
            "X-Stack-Project-Id",
            m["stack"]["project"].as_str().unwrap(),
        )
        .header("X-Stack-Access-Type", "server")
        .header(
            "X-Stack-Secret-Server-Key",
            m["stack"]["server"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(
        (st, v["account_id"].clone()),
        (200, m["link"]["account_id"].clone()),
        "{v}"
    );

    // bob's TOTP: sign-in needs the code; a current code and a backup code work.
    let bob = &m["users"]["bob"];
    let login = |body: Value| {
        let r = s.req(Method::POST, "/api/v1/login").json(&body).send();
        async move { json_of(r.await.unwrap()).await }
    };
    let pw = str_of(&bob["password"]);
    let (st, v) = login(json!({"user": "bob", "password": pw})).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (401, Some("totp-required")),
        "{v}"
    );
    let now = (Clock::system().now_ms() / 1000) as u64;
    let code = code_at(bob["totp_secret"].as_str().unwrap(), now).unwrap();
    let (st, v) = login(json!({"user": "bob", "password": pw, "code": code})).await;
    assert_eq!(st, 200, "{v}");
    let backup = str_of(&bob["backup_codes"][0]);
    let (st, v) = login(json!({"user": "bob", "password": pw, "code": backup})).await;
    assert_eq!(st, 200, "{v}");

    state.store.verify().unwrap();
}
