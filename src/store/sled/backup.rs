//! Backup and restore: a versioned, self-describing export of every tree, as JSON lines.
//!
//! ```text
//! {"format":"latchkey-backup","version":1,"created_at":"…","latchkey":"0.1.0","schema":1,"master_key_file":"…"}
//! {"tree":"apps","key":"<base64>","value":"<base64>"}        one line per record of every tree, trees by name
//! {"end":true,"records":42,"trees":{"apps":3,…},"sha256":"<hex of every byte above this line>"}
//! ```
//!
//! Trees come from `db.tree_names()`, so a tree added by any part of Latchkey is included without code here;
//! sled's default tree is skipped when empty. Keys and values are the raw bytes, values still in their versioned
//! envelope (`codec.rs`), so the export needs no per-record-type code and restore writes back exactly what was
//! read; a record of an older version is upgraded when it is read (`record/`), as in a data dir, so the file
//! format needs no record versions of its own. The trailer makes a truncated or edited file detectable; restore checks the whole file before it writes
//! anything, imports only into an empty (or new) data dir, then runs [`Store::verify`] and flushes.
//!
//! The master key: secrets sealed in the store (upstream client secrets) open only with the key they were sealed
//! with. When the data dir has a `master.key` file, its text is in the header (`master_key_file`) and restore
//! writes it back (mode 0600), so a backup file is as secret as the key itself. When the server uses a configured
//! key (`LATCHKEY_MASTER_KEY` / `master_key`), the header has `null` and the restored server needs that same key.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Sled, SCHEMA_VERSION};
use crate::clock::{rfc3339, Millis};
use crate::error::Error;
use crate::store::{OpenError, Store};

/// The `format` of the header line.
pub const FORMAT: &str = "latchkey-backup";
/// Bumped when the file layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;
/// sled's unnamed tree; Latchkey keeps nothing there, so it is exported only when something is.
const DEFAULT_TREE: &[u8] = b"__sled__default";
/// Records per sled batch on import.
const BATCH: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    created_at: String,
    /// The Latchkey version that wrote the file (informational).
    latchkey: String,
    /// The store layout (`meta` schema) the records follow; restore refuses another one.
    schema: u8,
    /// The data dir's `master.key` text, or `None` when the server used a configured master key.
    master_key_file: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    tree: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    end: bool,
    records: u64,
    trees: BTreeMap<String, u64>,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Record(Record),
    End(Trailer),
}

/// What a backup holds, from its header and trailer (checked against every record line).
#[derive(Debug)]
pub struct BackupInfo {
    pub created_at: String,
    pub records: u64,
    /// Records per tree, every exported tree (empty ones too).
    pub trees: BTreeMap<String, u64>,
    /// The `master.key` text carried in the backup, if any.
    pub master_key_file: Option<String>,
    /// The backed-up `meta` tree (small: schema version, key check, generated keys).
    pub meta: BTreeMap<String, Vec<u8>>,
}

/// The domain error's cause, for an operator's message (`Error::Internal` displays only "internal error").
fn cause(e: Error) -> String {
    match e {
        Error::Internal(c) => c,
        other => other.to_string(),
    }
}

/// A writer that hashes everything written through it.
struct Hashing<W: Write> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sled {
    /// Writes every tree to `out` in the format above. The caller holds the data dir (the server is stopped), so
    /// the export is a consistent snapshot.
    pub fn export(
        &self,
        out: impl Write,
        created_at: Millis,
        master_key_file: Option<&str>,
    ) -> Result<BackupInfo, String> {
        let io_err = |e: io::Error| format!("cannot write the backup: {e}");
        let mut w = Hashing {
            inner: out,
            sha: Sha256::new(),
        };
        let header = Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            created_at: rfc3339(created_at),
            latchkey: env!("CARGO_PKG_VERSION").into(),
            schema: SCHEMA_VERSION,
            master_key_file: master_key_file.map(str::to_owned),
        };
        serde_json::to_writer(&mut w, &header).map_err(|e| e.to_string())?;
        w.write_all(b"\n").map_err(io_err)?;
        let mut names = self.db.tree_names();
        names.sort();
        let mut trees = BTreeMap::new();
        let mut meta = BTreeMap::new();
        let mut records = 0u64;
        for raw in names {
            let tree = self.db.open_tree(&raw).map_err(|e| e.to_string())?;
            if raw.as_ref() == DEFAULT_TREE && tree.is_empty() {
                continue;
            }
            let name = String::from_utf8(raw.to_vec())
                .map_err(|_| format!("tree name {:?} is not UTF-8", raw.as_ref()))?;
            let mut n = 0u64;
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| format!("cannot read tree {name}: {e}"))?;
                let rec = Record {
                    tree: name.clone(),
                    key: B64.encode(&k),
                    value: B64.encode(&v),
                };
                serde_json::to_writer(&mut w, &rec).map_err(|e| e.to_string())?;
                w.write_all(b"\n").map_err(io_err)?;
                if name == "meta" {
                    meta.insert(String::from_utf8_lossy(&k).into_owned(), v.to_vec());
                }
                n += 1;
            }
            records += n;
            trees.insert(name, n);
        }
        let Hashing { mut inner, sha } = w;
        let trailer = Trailer {
            end: true,
            records,
            trees: trees.clone(),
            sha256: hex(&sha.finalize()),
        };
        serde_json::to_writer(&mut inner, &trailer).map_err(|e| e.to_string())?;
        inner.write_all(b"\n").map_err(io_err)?;
        inner.flush().map_err(io_err)?;
        Ok(BackupInfo {
            created_at: header.created_at,
            records,
            trees,
            master_key_file: header.master_key_file,
            meta,
        })
    }
}

/// Writes a backup of the store in `dir` to `out` (mode 0600: it may carry the master key). The file appears
/// under its name only once complete (written beside it, synced, renamed). Refuses a missing store and a
/// data dir in use.
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
    let tmp = partial_path(out);
    // A stale `.partial` may have other permissions; the mode below applies only to a new file.
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        let info = store.export(&mut w, created_at, master_key_file)?;
        let file = w.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        fs::rename(&tmp, out)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), out.display()))?;
        // Best effort: make the rename itself durable.
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = fs::File::open(parent).and_then(|d| d.sync_all());
        }
        Ok(info)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Reads and checks a whole backup file without writing anything: header, every record line, and the trailer's
/// counts and SHA-256. Records are handed to `each` in file order.
fn scan(
    file: &Path,
    mut each: impl FnMut(&str, Vec<u8>, Vec<u8>) -> Result<(), String>,
) -> Result<BackupInfo, String> {
    let f = fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let mut r = BufReader::new(f);
    let mut sha = Sha256::new();
    let mut line = Vec::new();
    let mut read_line = |line: &mut Vec<u8>| -> Result<usize, String> {
        line.clear();
        r.read_until(b'\n', line)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
    };
    let bad = |n: usize, why: &str| format!("{} line {n}: {why}", file.display());

    if read_line(&mut line)? == 0 {
        return Err(format!(
            "{} is empty, not a latchkey backup",
            file.display()
        ));
    }
    let header: Header = serde_json::from_slice(&line)
        .ok()
        .filter(|h: &Header| h.format == FORMAT)
        .ok_or_else(|| format!("{} is not a latchkey backup", file.display()))?;
    if header.version != FORMAT_VERSION {
        return Err(format!(
            "{} is backup format version {}; this latchkey reads version {FORMAT_VERSION}",
            file.display(),
            header.version
        ));
    }
    if header.schema != SCHEMA_VERSION {
        return Err(format!(
            "{} holds store schema {}; this latchkey uses schema {SCHEMA_VERSION}",
            file.display(),
            header.schema
        ));
    }
    sha.update(&line);

    let mut trees: BTreeMap<String, u64> = BTreeMap::new();
    let mut meta = BTreeMap::new();
    let mut records = 0u64;
    let mut n = 1;
    let trailer = loop {
        n += 1;
        if read_line(&mut line)? == 0 {
            return Err(format!(
                "{} is truncated (no end line after {records} records)",
                file.display()
            ));
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(Line::Record(rec)) => {
                sha.update(&line);
                let key = B64
                    .decode(&rec.key)
                    .map_err(|_| bad(n, "key is not base64"))?;
                let value = B64
                    .decode(&rec.value)
                    .map_err(|_| bad(n, "value is not base64"))?;
                if rec.tree.is_empty() {
                    return Err(bad(n, "empty tree name"));
                }
                if rec.tree == "meta" {
                    meta.insert(String::from_utf8_lossy(&key).into_owned(), value.clone());
                }
                each(&rec.tree, key, value)?;
                *trees.entry(rec.tree).or_default() += 1;
                records += 1;
            }
            Ok(Line::End(t)) if t.end => break t,
            _ => return Err(bad(n, "not a record line")),
        }
    };
    if read_line(&mut line)? != 0 {
        return Err(bad(n + 1, "data after the end line"));
    }
    if trailer.sha256 != hex(&sha.finalize()) {
        return Err(format!(
            "{} is damaged: its SHA-256 does not match its end line",
            file.display()
        ));
    }
    let counted_match = trailer.records == records
        && trailer
            .trees
            .iter()
            .all(|(t, c)| trees.get(t).copied().unwrap_or(0) == *c)
        && trees.keys().all(|t| trailer.trees.contains_key(t));
    if !counted_match {
        return Err(format!(
            "{} is damaged: its record counts do not match its end line",
            file.display()
        ));
    }
    Ok(BackupInfo {
        created_at: header.created_at,
        records,
        trees: trailer.trees,
        master_key_file: header.master_key_file,
        meta,
    })
}

/// Checks a backup file completely and describes it; writes nothing.
pub fn inspect(file: &Path) -> Result<BackupInfo, String> {
    scan(file, |_, _, _| Ok(()))
}

/// Refuses a data dir that another process holds (the server) or that holds anything at all; a missing dir is
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
    let info = scan(file, |tree, key, value| {
        let (batch, n) = batches.entry(tree.to_owned()).or_default();
        batch.insert(key, value);
        *n += 1;
        if *n >= BATCH {
            *n = 0;
            apply(tree, std::mem::take(batch))?;
        }
        Ok(())
    })?;
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
        store
            .export(f, 1_705_498_241_521, Some("key-text"))
            .unwrap();
        (out, path)
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
