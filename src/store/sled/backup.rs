//! Backup and restore of the sled backend, in the backend-neutral file format of `store/backup.rs`: the export
//! writes every tree (trees come from `db.tree_names()`, so a tree added by any part of Latchkey is included
//! without code here; sled's default tree is skipped when empty), byte for byte; the restore writes every tree of
//! the file into a new store and derives the index entries of every record again, so a file written from
//! PostgreSQL (records only) restores here too.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::link::{account_key, provider_key, signin_key, user_key};
use super::token::owner_key;
use super::Sled;
use crate::clock::Millis;
use crate::error::Error;
use crate::model::{App, Link, User};
use crate::store::backup::{inspect, scan, write_file, BackupInfo, Writer};
use crate::store::token::{FamilyRecord, Lineage, TokenRecord};
use crate::store::{codec, LoginToken, OpenError, Store};

/// sled's unnamed tree; Latchkey keeps nothing there, so it is exported only when something is.
const DEFAULT_TREE: &[u8] = b"__sled__default";
/// Records per sled batch on import.
const BATCH: usize = 1024;

/// The domain error's cause, for an operator's message (`Error::Internal` displays only "internal error").
fn cause(e: Error) -> String {
    match e {
        Error::Internal(c) => c,
        other => other.to_string(),
    }
}

impl Sled {
    /// Writes every tree to `w`. The caller holds the data dir (the server is stopped), so the export is a
    /// consistent snapshot.
    pub fn export<W: Write>(&self, w: &mut Writer<W>) -> Result<(), String> {
        let mut names = self.db.tree_names();
        names.sort();
        for raw in names {
            let tree = self.db.open_tree(&raw).map_err(|e| e.to_string())?;
            if raw.as_ref() == DEFAULT_TREE && tree.is_empty() {
                continue;
            }
            let name = String::from_utf8(raw.to_vec())
                .map_err(|_| format!("tree name {:?} is not UTF-8", raw.as_ref()))?;
            w.tree(&name);
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| format!("cannot read tree {name}: {e}"))?;
                w.record(&name, &k, &v)?;
            }
        }
        Ok(())
    }
}

/// The index entries (tree, key, value) that the record `value` under `key` in `tree` has in sled; with the
/// admins it adds to the `meta` count. A backup from PostgreSQL carries records only: restore derives these.
fn index_entries(tree: &str, key: &[u8], value: &[u8]) -> Result<(Vec<Entry>, u64), String> {
    let bad = |e: Error| format!("a record in {tree} does not decode: {}", cause(e));
    let e = |t: &'static str, k: Vec<u8>, v: &[u8]| (t, k, v.to_vec());
    Ok(match tree {
        "apps" => {
            let a: App = codec::decode(value).map_err(bad)?;
            (vec![e("apps_by_client", a.client_id.into_bytes(), key)], 0)
        }
        "users" => {
            let u: User = codec::decode(value).map_err(bad)?;
            let mut out = vec![e(
                "users_by_name",
                u.username.to_lowercase().into_bytes(),
                key,
            )];
            for m in &u.emails {
                out.push(e("users_by_email", m.address.as_bytes().to_vec(), key));
            }
            (out, u64::from(u.is_admin()))
        }
        "login_tokens" => {
            let t: LoginToken = codec::decode(value).map_err(bad)?;
            let digest: [u8; 32] = key
                .try_into()
                .map_err(|_| "a login token key is not a digest")?;
            let k = super::session::by_user_key(&t.user_id, &digest);
            (vec![e("login_tokens_by_user", k, &[])], 0)
        }
        "links" => {
            let l: Link = codec::decode(value).map_err(bad)?;
            let mut out = vec![
                e("links_by_user", user_key(&l), &[]),
                e("links_by_provider", provider_key(&l), &[]),
            ];
            if l.allow_sign_in {
                out.push(e(
                    "links_by_account",
                    account_key(&l.provider, &l.account_id),
                    key,
                ));
                out.push(e(
                    "signin_by_user_provider",
                    signin_key(&l.user_id, &l.provider),
                    key,
                ));
            }
            (out, 0)
        }
        "families" => {
            let f: FamilyRecord = codec::decode(value).map_err(bad)?;
            let id = key
                .try_into()
                .map_err(|_| "a family key is not a family id")?;
            let mut out = vec![e("families_by_client", owner_key(&f.client_id, &id), &[])];
            if let Some(user) = f.subject.user_id() {
                out.push(e("families_by_user", owner_key(user, &id), &[]));
            }
            (out, 0)
        }
        "tokens" => {
            let t: TokenRecord = codec::decode(value).map_err(bad)?;
            match t.lineage {
                Lineage::Family(f) => (vec![e("tokens_by_family", [&f[..], key].concat(), &[])], 0),
                Lineage::Epoch(_) => (vec![], 0),
            }
        }
        _ => (vec![], 0),
    })
}

/// One index entry: tree, key, value.
type Entry = (&'static str, Vec<u8>, Vec<u8>);

/// Writes a backup of the sled store in `dir` to the file `out` (see [`write_file`]). Refuses a missing store
/// and a data dir in use.
pub fn backup(
    dir: &Path,
    cache_bytes: u64,
    out: &Path,
    created_at: Millis,
    master_key_file: Option<&str>,
) -> Result<BackupInfo, String> {
    if !dir.join("db").is_dir() {
        return Err(format!("no latchkey store in data dir {}", dir.display()));
    }
    let store = Store::open(dir, cache_bytes).map_err(|e| e.to_string())?;
    let b = store.sled_backend().expect("Store::open opens sled");
    write_file(out, |f| {
        let mut w = Writer::start(f, created_at, master_key_file)?;
        b.export(&mut w)?;
        w.finish()
    })
}

/// fine (restore creates it).
pub fn check_target(dir: &Path, cache_bytes: u64) -> Result<(), String> {
    let mut entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read data dir {}: {e}", dir.display())),
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if dir.join("db").exists() {
        if let Err(e @ OpenError::Locked(_)) = Store::open(dir, cache_bytes) {
            return Err(format!(
                "{e}; stop the server before restoring, into an empty data dir"
            ));
        }
    }
    Err(format!(
        "data dir {} is not empty; restore only into an empty or new data dir (move the old one aside first)",
        dir.display()
    ))
}

/// Where restore builds the store inside the target data dir before moving it into place. `Store::open` refuses
/// a data dir that still has it: a restore was interrupted there.
pub const STAGING: &str = "restoring";

/// Imports `file` into the empty (or missing) data dir `dir`: checks the file, imports every record into
/// `dir/restoring`, repairs crash leftovers the backed-up store carried (logged), verifies every index, flushes,
/// writes `master_key_file` as `master.key` when given, and only then renames the store into place, so a data dir
/// never holds a half-imported store under its name. On any failure the dir is left as it was found (what was
/// created is removed).
pub fn restore(
    file: &Path,
    dir: &Path,
    cache_bytes: u64,
    master_key_file: Option<&str>,
) -> Result<BackupInfo, String> {
    check_target(dir, cache_bytes)?;
    inspect(file)?;
    let created_dir = !dir.exists();
    crate::store::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let staging = dir.join(STAGING);
    let result = import(file, &staging, cache_bytes).and_then(|info| {
        if let Some(text) = master_key_file {
            crate::crypto::seal::install_key_file(dir, text)?;
        }
        fs::rename(staging.join("db"), dir.join("db"))
            .and_then(|()| fs::remove_dir(&staging))
            .and_then(|()| fs::File::open(dir)?.sync_all())
            .map_err(|e| format!("cannot move the restored store into {}: {e}", dir.display()))?;
        Ok(info)
    });
    if result.is_err() {
        // The dir was empty: everything in it now is ours.
        let _ = fs::remove_dir_all(&staging);
        let _ = fs::remove_dir_all(dir.join("db"));
        if master_key_file.is_some() {
            let _ = fs::remove_file(dir.join(crate::crypto::seal::KEY_FILE));
        }
        if created_dir {
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

/// Imports every record of `file` into a new store in `dir`, repairs, verifies and closes it.
fn import(file: &Path, dir: &Path, cache_bytes: u64) -> Result<BackupInfo, String> {
    let store = Store::open(dir, cache_bytes).map_err(|e| e.to_string())?;
    let db = &store.sled_backend().expect("Store::open opens sled").db;
    let mut batches: BTreeMap<String, (sled::Batch, usize)> = BTreeMap::new();
    let apply = |tree: &str, batch: sled::Batch| -> Result<(), String> {
        db.open_tree(tree)
            .and_then(|t| t.apply_batch(batch))
            .map_err(|e| format!("cannot write tree {tree}: {e}"))
    };
    let mut admins = 0;
    let mut put = |tree: &str, key: Vec<u8>, value: Vec<u8>| -> Result<(), String> {
        let (batch, n) = batches.entry(tree.to_owned()).or_default();
        batch.insert(key, value);
        *n += 1;
        if *n >= BATCH {
            *n = 0;
            apply(tree, std::mem::take(batch))?;
        }
        Ok(())
    };
    let info = scan(file, |tree, key, value| {
        let (entries, admin) = index_entries(tree, &key, &value)?;
        admins += admin;
        for (t, k, v) in entries {
            put(t, k, v)?;
        }
        put(tree, key, value)
    })?;
    // The admin count is derived too (a file from PostgreSQL does not carry sled's counter).
    put("meta", b"admins".to_vec(), admins.to_be_bytes().to_vec())?;
    for (tree, (batch, _)) in batches {
        apply(&tree, batch)?;
    }
    for tree in info.trees.keys() {
        // Empty trees too, so the restored dir has the same trees as the backed-up one.
        db.open_tree(tree).map_err(|e| e.to_string())?;
    }
    // A backup of a store that a crash left leftovers in carries them: repair (logged), then verify.
    store
        .repair()
        .map_err(|e| format!("the restored store fails verification: {}", cause(e)))?;
    store.close().map_err(cause)?;
    drop(store);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    use super::*;
    use crate::model::{App, ClientType, GrantType, UserRef};

    fn app(id: &str) -> App {
        App {
            id: id.into(),
            name: format!("app {id}"),
            active: true,
            client_id: format!("client-{id}"),
            redirect_uris: vec!["https://a.example/cb".into()],
            client_type: ClientType::Confidential,
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec!["read".into()],
            skip_consent: false,
            token_epoch: 0,
            secret_hash: Some("$argon2id$x".into()),
            created_at: 1,
            updated_at: 2,
            created_by: UserRef {
                id: "u".into(),
                username: "admin".into(),
            },
            oidc: Default::default(),
        }
    }

    /// A backup of a store with two apps (and a tree nobody in `Trees` knows), written to a temp file.
    fn backed_up() -> (tempfile::TempDir, PathBuf) {
        let (d, store) = crate::store::testing::temp_store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            store.create_app(&app("A")).await.unwrap();
            store.create_app(&app("B")).await.unwrap();
        });
        store
            .db
            .open_tree("added_by_someone_else")
            .unwrap()
            .insert(b"\x00\xffbinary", b"v".as_slice())
            .unwrap();
        // Reopened: the unknown tree is found on disk (`tree_names`), not only because it was opened here.
        store.close().unwrap();
        drop(store);
        let store = Store::open(d.path(), 8 << 20).unwrap();
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("b.jsonl");
        let f = fs::File::create(&path).unwrap();
        rt.block_on(store.export(f, 1_705_498_241_521, Some("key-text")))
            .unwrap();
        (out, path)
    }

    /// A store with a family whose refresh token `[2; 32]` was issued with access token `[1; 32]`, backed up to
    /// `b.jsonl`, and the same records alone (as PostgreSQL exports them) to `records.jsonl`.
    async fn backed_up_family() -> (tempfile::TempDir, PathBuf, PathBuf) {
        use crate::store::sled::token::tests::{first_tokens, put_code};
        let (_d, store) = crate::store::testing::temp_store();
        let user = crate::store::sled::user::tests::user("u1", "jane", true);
        store.create_user(&user).await.unwrap();
        let app = crate::store::sled::app::tests::app("a1", "c1");
        store.create_app(&app).await.unwrap();
        put_code(&store, 7, "c1", "u1").await;
        let r = store.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
        r.await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let (full, records) = (out.path().join("b.jsonl"), out.path().join("records.jsonl"));
        store
            .export(fs::File::create(&full).unwrap(), 0, None)
            .await
            .unwrap();
        let mut w = Writer::start(fs::File::create(&records).unwrap(), 0, None).unwrap();
        scan(
            &full,
            |tree, k, v| match crate::store::backup::RECORD_TREES.contains(&tree) {
                true => w.record(tree, &k, &v),
                false => Ok(()),
            },
        )
        .unwrap();
        w.finish().unwrap();
        (out, full, records)
    }

    /// Regression: the link from a refresh token to the access token issued with it lived only in an index entry's
    /// value, so a restore from records (a PostgreSQL backup) lost it and rotating the refresh token left the old
    /// access token live until it expired. The record names it now: from either file, rotation removes it.
    #[tokio::test]
    async fn a_restored_refresh_token_still_removes_its_sibling_when_it_rotates() {
        let (_o, full, records) = backed_up_family().await;
        for file in [full, records] {
            let target = tempfile::tempdir().unwrap();
            let dir = target.path().join("new");
            restore(&file, &dir, 8 << 20, None).unwrap();
            let s = Store::open(&dir, 8 << 20).unwrap();
            s.verify().unwrap();
            assert!(s.active_token(&[1; 32], 20).await.unwrap().is_some());
            let tok = |b: u8| crate::store::token::NewToken {
                digest: [b; 32],
                expires_at: 1_000,
            };
            let r = s.rotate_refresh(&[2; 32], "c1", "openid", 20, tok(8), Some(tok(9)));
            assert!(matches!(r.await.unwrap(), crate::store::token::Rotated::Ok));
            let old = s.active_token(&[1; 32], 20).await.unwrap();
            assert!(
                old.is_none(),
                "{}: the old access token is gone",
                file.display()
            );
            assert!(s.active_token(&[8; 32], 20).await.unwrap().is_some());
            s.verify().unwrap();
        }
    }

    #[test]
    fn every_tree_round_trips_byte_for_byte() {
        let (_o, file) = backed_up();
        let info = inspect(&file).unwrap();
        assert_eq!(info.trees["apps"], 2);
        assert_eq!(info.trees["added_by_someone_else"], 1);
        assert_eq!(info.master_key_file.as_deref(), Some("key-text"));
        assert!(
            !info.trees.contains_key("__sled__default"),
            "empty default tree skipped"
        );
        assert_eq!(info.created_at, "2024-01-17T13:30:41.521Z");

        let target = tempfile::tempdir().unwrap();
        let dir = target.path().join("new");
        restore(&file, &dir, 8 << 20, None).unwrap();
        let store = Store::open(&dir, 8 << 20).unwrap();
        store.verify().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(store.list_apps().await.unwrap().len(), 2);
            assert_eq!(
                store.app_by_client_id("client-B").await.unwrap().unwrap(),
                app("B")
            );
        });
        let extra = store.db.open_tree("added_by_someone_else").unwrap();
        assert_eq!(
            extra.get(b"\x00\xffbinary").unwrap().unwrap().as_ref(),
            b"v"
        );
    }

    #[test]
    fn damaged_files_are_refused_before_anything_is_written() {
        let (o, file) = backed_up();
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let write = |name: &str, body: String| {
            let p = o.path().join(name);
            fs::write(&p, body).unwrap();
            p
        };
        let truncated = write("t", lines[..lines.len() - 1].join("\n") + "\n");
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        let reordered = write("r", swapped.join("\n") + "\n");
        let mut rec: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        rec["value"] = B64.encode(b"other bytes").into();
        let mut changed = lines.clone();
        let rec = rec.to_string();
        changed[1] = &rec;
        let edited = write("e", changed.join("\n") + "\n");
        let dropped = write("d", [&lines[..1], &lines[2..]].concat().join("\n") + "\n");
        let cases = [
            (truncated, "truncated"),
            (reordered, "SHA-256"),
            (edited, "SHA-256"),
            (dropped, "damaged"),
            (write("x", "{}\n".into()), "not a latchkey backup"),
            (write("z", String::new()), "empty"),
            (
                write("v", text.replacen("\"version\":1", "\"version\":9", 1)),
                "version 9",
            ),
        ];
        for (path, why) in cases {
            let e = inspect(&path).unwrap_err();
            assert!(e.contains(why), "{why}: {e}");
            let target = tempfile::tempdir().unwrap();
            assert!(restore(&path, target.path(), 8 << 20, None).is_err());
            assert_eq!(
                fs::read_dir(target.path()).unwrap().count(),
                0,
                "left empty"
            );
        }
    }

    #[test]
    fn restore_needs_an_empty_unlocked_dir() {
        let (_o, file) = backed_up();
        let busy = tempfile::tempdir().unwrap();
        let held = Store::open(busy.path(), 8 << 20).unwrap();
        let e = restore(&file, busy.path(), 8 << 20, None).unwrap_err();
        assert!(e.contains("in use by another latchkey process"), "{e}");
        drop(held);
        // sled releases its file lock from its own threads shortly after the last handle drops.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let e = loop {
            let e = restore(&file, busy.path(), 8 << 20, None).unwrap_err();
            if !e.contains("in use") || std::time::Instant::now() > deadline {
                break e;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(e.contains("not empty"), "{e}");
    }
}
