//! Backup and restore (docs/reliability.md) with the real binary: `latchkey backup` of a populated data dir, `latchkey restore` into an empty one
//! answers every API call the same; restore refuses a non-empty and a locked data dir, backup a locked one; and a
//! damaged store stops `serve` with a message that names the data dir and `latchkey restore`.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::binary::{self, run_to_exit};
use crate::common::{json_of, spawn_with, Auth, Server, TestServer};
use crate::providers::{add, set, PREFIX};

const ISSUER: &str = "http://latchkey.test";

/// How long a command of the binary (backup, restore, a `serve` that must refuse) may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// Runs the binary with `args` in `cwd` (so no config file from the checkout is read) and a clean environment.
fn latchkey(cwd: &Path, args: &[&str]) -> Output {
    latchkey_with(cwd, args, &[])
}

/// [`latchkey`] with the environment variables `env` set.
fn latchkey_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = binary::latchkey(cwd);
    cmd.args(args).envs(env.iter().copied());
    run_to_exit(cmd, EXIT_WITHIN)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// What the client sees of the data: apps, a user, the public provider configuration, a masked secret and a
/// token's introspection.
struct Fixture {
    user_id: String,
    client_id: String,
    secret: String,
    token: String,
}

async fn populate(s: &Server, a: &Auth) -> Fixture {
    let (st, v) = s
        .post(
            "/api/v1/users.create",
            a,
            json!({"username": "jane", "email": "jane@example.com", "password": "pw", "name": "Jane"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let user_id = v["user"]["_id"].as_str().unwrap().to_owned();
    let (st, v) = s
        .post(
            "/api/v1/oauth-apps.create",
            a,
            json!({"name": "Web", "redirectUri": "https://web.example/cb", "active": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (client_id, secret) = s
        .create_app(
            a,
            json!({"name": "Worker", "redirectUri": "https://w.example/cb", "active": true,
                   "grantTypes": ["client_credentials"], "scopes": "api.read"}),
        )
        .await;
    let r = s
        .req(Method::POST, "/oauth/token")
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "api.read")])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();

    add(s, a, "My IdP").await;
    for (suffix, value) in [
        ("-url", json!("https://idp.example")),
        ("-id", json!("upstream-client")),
        ("-secret", json!("upstream-secret")),
        ("", json!(true)),
    ] {
        let (st, v) = set(s, a, &format!("{PREFIX}Myidp{suffix}"), value).await;
        assert_eq!(st, 200, "{suffix}: {v}");
    }
    Fixture {
        user_id,
        client_id,
        secret,
        token,
    }
}

async fn answers(s: &Server, a: &Auth, f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/oauth-apps.list".to_owned(),
        format!("/api/v1/users.info?userId={}", f.user_id),
        "/api/v1/settings.oauth".to_owned(),
        format!("/api/v1/settings/{PREFIX}Myidp-secret"),
        format!("/api/v1/settings/{PREFIX}Myidp-id"),
    ] {
        let (st, v) = s.get(&path, a).await;
        assert_eq!(st, 200, "{path}: {v}");
        out.push(v);
    }
    let r = s
        .req(Method::POST, "/oauth/introspect")
        .basic_auth(&f.client_id, Some(&f.secret))
        .form(&[("token", f.token.as_str())])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["active"], true, "{v}");
    out.push(v);
    out
}

/// Serves the (restored) data dir `dir` in-process.
async fn serve(dir: tempfile::TempDir) -> Server {
    TestServer::new()
        .data_dir(dir)
        .config(|c| c.issuer = ISSUER.into())
        .start()
        .await
}

#[tokio::test]
async fn a_restored_backup_answers_every_api_call_the_same() {
    let s = spawn_with(|c| c.issuer = ISSUER.into()).await;
    let a = s.admin().await;
    let f = populate(&s, &a).await;
    let before = answers(&s, &a, &f).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("latchkey.backup");

    // While the server runs, the data dir is locked: backup says so.
    let out = latchkey(
        work.path(),
        &["backup", "--data-dir", p(s.dir.path()), "--out", p(&file)],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use by another latchkey process"),
        "{}",
        text(&out.stderr)
    );
    assert!(!file.exists());

    let original = s.stop().await;
    let out = latchkey(
        work.path(),
        &[
            "backup",
            "--data-dir",
            p(original.path()),
            "--out",
            p(&file),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("backed up"), "{stdout}");
    assert!(stdout.contains("includes the master key"), "{stdout}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup carries the master key");
    }
    // Self-describing: a header naming the format, base64 records, an end line.
    let body = std::fs::read_to_string(&file).unwrap();
    let header: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "latchkey-backup");
    assert_eq!(header["version"], 1);
    let end: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(end["end"], true);
    assert!(end["trees"]["apps"].as_u64().unwrap() == 2, "{end}");
    // Secrets are not in the file in the clear (hashed or sealed in the store, so not here either).
    for needle in [f.secret.as_str(), "upstream-secret"] {
        assert!(!body.contains(needle));
    }

    // A non-empty data dir is refused, and nothing is changed there.
    let out = latchkey(
        work.path(),
        &["restore", p(&file), "--data-dir", p(original.path())],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert!(err.contains(p(original.path())), "{err}");

    let target = tempfile::tempdir().unwrap();
    let out = latchkey(
        work.path(),
        &["restore", p(&file), "--data-dir", p(target.path())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("restored"),
        "{}",
        text(&out.stdout)
    );

    let s2 = serve(target).await;
    // The old login token was restored with everything else.
    let after = answers(&s2, &a, &f).await;
    assert_eq!(before, after);
    s2.running.as_ref().unwrap().state.store.verify().unwrap();
    s2.login("jane", "pw").await;

    // While it runs, its data dir is locked: restore names the reason.
    let out = latchkey(
        work.path(),
        &["restore", p(&file), "--data-dir", p(s2.dir.path())],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("in use by another latchkey process"), "{err}");
    assert!(err.contains(p(s2.dir.path())), "{err}");
    s2.stop().await;
}

#[tokio::test]
async fn a_backup_without_the_master_key_needs_the_configured_one() {
    // The key comes from the environment, so it is not in the backup; restore checks the key it will use.
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([9u8; 32]);
    let k = key.clone();
    let s = spawn_with(move |c| c.master_key = k).await;
    let a = s.admin().await;
    add(&s, &a, "Idp").await;
    let original = s.stop().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("b.jsonl");
    let with_key = [("LATCHKEY_MASTER_KEY", key.as_str())];
    let out = latchkey_with(
        work.path(),
        &[
            "backup",
            "--data-dir",
            p(original.path()),
            "--out",
            p(&file),
        ],
        &with_key,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NOT in the backup"));

    let target = work.path().join("new");
    let out = latchkey(
        work.path(),
        &["restore", p(&file), "--data-dir", p(&target)],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("LATCHKEY_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists(), "nothing written");
    let out = latchkey_with(
        work.path(),
        &["restore", p(&file), "--data-dir", p(&target)],
        &with_key,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!target.join("master.key").exists());
}

/// The data dir of a stopped server that holds one app.
async fn data_dir_with_one_app() -> tempfile::TempDir {
    let s = spawn_with(|_| {}).await;
    let a = s.admin().await;
    let (st, _) = s
        .post(
            "/api/v1/oauth-apps.create",
            &a,
            json!({"name": "A", "redirectUri": "https://a.example/cb", "active": true}),
        )
        .await;
    assert_eq!(st, 200);
    s.stop().await
}

/// Runs `serve` on `dir` and waits (bounded) for it to exit; a server that starts is killed and fails the test.
fn serve_must_fail(dir: &Path) -> (i32, String) {
    let out = run_to_exit(binary::serve(dir), EXIT_WITHIN);
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

#[tokio::test]
async fn a_damaged_record_stops_serve_naming_the_dir_and_restore() {
    let dir = data_dir_with_one_app().await;
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let apps = db.open_tree("apps").unwrap();
        let (k, _) = apps.iter().next().unwrap().unwrap();
        apps.insert(k, b"\x01garbage, not a record".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let (code, err) = serve_must_fail(dir.path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(p(dir.path())), "{err}");
    assert!(err.contains("latchkey restore"), "{err}");
    assert!(err.contains("corrupt record"), "the cause is shown: {err}");
}

/// The token trees are checked once the server answers (docs/reliability.md): a damaged token record lets the
/// server start, then `/healthz` answers 503 naming `latchkey restore`, the damaged token is refused meanwhile, and
/// the next start refuses like any corruption.
#[tokio::test]
async fn a_damaged_token_record_turns_healthz_503_and_stops_the_next_serve() {
    let s = spawn_with(|_| {}).await;
    let a = s.admin().await;
    let (client_id, secret) = s.create_worker(&a).await;
    let token = |s: &Server| {
        s.req(Method::POST, "/oauth/token")
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let (st, v) = json_of(token(&s).await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    let damaged = v["access_token"].as_str().unwrap().to_owned();
    let dir = s.stop().await;
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let digest = latchkey::crypto::sha256(damaged.as_bytes());
        db.open_tree("tokens")
            .unwrap()
            .insert(digest, b"\x01garbage, not a record".as_slice())
            .unwrap();
        db.flush().unwrap();
    }

    let s = serve(dir).await;
    s.running.as_ref().unwrap().deferred_checked().await;
    let r = s.req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("latchkey restore"), "{body}");
    assert!(
        body.contains("corrupt record"),
        "the cause is shown: {body}"
    );
    let r = s
        .req(Method::POST, "/oauth/introspect")
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", damaged.as_str())])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!((st, &v["active"]), (200, &json!(false)), "{v}");
    let (st, v) = json_of(token(&s).await.unwrap()).await;
    assert_eq!(st, 200, "the rest still serves: {v}");
    let dir = s.stop().await;

    let (code, err) = serve_must_fail(dir.path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(p(dir.path())), "{err}");
    assert!(err.contains("latchkey restore"), "{err}");
    assert!(err.contains("corrupt record"), "the cause is shown: {err}");
}

#[tokio::test]
async fn an_unopenable_store_stops_serve_naming_the_dir_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("db")).unwrap();
    std::fs::write(
        dir.path().join("db").join("conf"),
        b"\xff\xfe not a sled config",
    )
    .unwrap();
    let (code, err) = serve_must_fail(dir.path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(p(dir.path())), "{err}");
    assert!(err.contains("latchkey restore"), "{err}");
}

/// Writes into `dir`'s store what a `kill -9` between the two writes of an old sweep or cleanup left behind: index
/// entries whose record is gone (a swept token, a removed login token, a removed family) and a family whose owner
/// index entry was removed before the family itself.
fn leave_crash_leftovers(dir: &Path) {
    use latchkey::store::{codec, token::FamilyRecord, Subject};
    let db = sled::open(dir.join("db")).unwrap();
    let tree = |name: &str| db.open_tree(name).unwrap();
    let family = [7u8; 16];
    let mut dangling_token = family.to_vec();
    dangling_token.extend_from_slice(&[1u8; 32]);
    tree("tokens_by_family")
        .insert(dangling_token, &[][..])
        .unwrap();
    let mut dangling_login = b"some-user\0".to_vec();
    dangling_login.extend_from_slice(&[2u8; 32]);
    tree("login_tokens_by_user")
        .insert(dangling_login, &[][..])
        .unwrap();
    let mut dangling_family = b"some-client\0".to_vec();
    dangling_family.extend_from_slice(&[3u8; 16]);
    tree("families_by_user")
        .insert(dangling_family, &[][..])
        .unwrap();
    let orphan = FamilyRecord {
        client_id: "gone-client".into(),
        subject: Subject::Client,
        revoked: true,
        created_at: 1,
        auth_time: None,
        amr: Vec::new(),
        sid: None,
    };
    tree("families")
        .insert(family, codec::encode(&orphan))
        .unwrap();
    db.flush().unwrap();
}

/// Regression: a crash between the two writes of the expiry sweep left a dangling index entry, and then `serve`
/// refused to start and `restore` of a backup of that store failed too. Both now repair it (and say so).
#[tokio::test]
async fn crash_leftovers_are_repaired_by_serve_and_by_restore() {
    let dir = data_dir_with_one_app().await;
    leave_crash_leftovers(dir.path());

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("latchkey.backup");
    let out = latchkey(
        work.path(),
        &["backup", "--data-dir", p(dir.path()), "--out", p(&file)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let target = tempfile::tempdir().unwrap();
    let out = latchkey(
        work.path(),
        &["restore", p(&file), "--data-dir", p(target.path())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("tokens_by_family"),
        "the repair is logged: {err}"
    );

    for dir in [dir, target] {
        let s = serve(dir).await;
        // The token trees' leftovers are repaired by the check that runs once the server answers.
        s.running.as_ref().unwrap().deferred_checked().await;
        s.running.as_ref().unwrap().state.store.verify().unwrap();
        let a = s.admin().await;
        let (st, v) = s.get("/api/v1/oauth-apps.list", &a).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["oauthApps"].as_array().unwrap().len(), 1, "{v}");
        s.stop().await;
    }
}
