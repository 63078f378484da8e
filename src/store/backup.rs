//! The backup file, one format for both backends: a versioned, self-describing stream of records, as JSON lines.
//!
//! ```text
//! {"format":"latchkey-backup","version":1,"created_at":"…","latchkey":"0.1.0","schema":1,"master_key_file":"…"}
//! {"tree":"apps","key":"<base64>","value":"<base64>"}        one line per record, trees by name
//! {"end":true,"records":42,"trees":{"apps":3,…},"sha256":"<hex of every byte above this line>"}
//! ```
//!
//! A record is a key and its value under a tree name, in sled's layout (the embedded default backend): values are
//! the versioned record envelopes (`codec.rs`) both backends store, so no record type needs code here, and a
//! record of an older version is upgraded when it is read (`record/`), as in a data dir. The [`RECORD_TREES`] hold
//! the records; every other tree of a sled export is an index, derived from them: restore into sled writes what
//! the file has and derives every index entry of the records again, PostgreSQL keeps its indexes itself, so a file
//! written from either backend restores into the other (`sled/backup.rs`, `pg/backup.rs`). The trailer makes a
//! truncated or edited file detectable; restore checks the whole file before it writes anything and imports only
//! into an empty store.
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

use super::sled::SCHEMA_VERSION;
use crate::clock::{rfc3339, Millis};

pub use super::sled::backup::{backup, check_target, restore, STAGING};

/// The trees that hold records, in the order a restore writes them (what a record refers to comes first). Every
/// other tree of a sled export is an index of these.
pub const RECORD_TREES: &[&str] = &[
    "meta",
    "settings",
    "signing_keys",
    "apps",
    "users",
    "login_tokens",
    "providers",
    "links",
    "codes",
    "families",
    "tokens",
    "revoked_jti",
];

/// sled's index trees: derived from the records, so a restore into PostgreSQL skips them.
pub const INDEX_TREES: &[&str] = &[
    "apps_by_client",
    "users_by_name",
    "users_by_email",
    "login_tokens_by_user",
    "links_by_user",
    "links_by_provider",
    "links_by_account",
    "signin_by_user_provider",
    "tokens_by_family",
    "families_by_client",
    "families_by_user",
];

/// The `format` of the header line.
pub const FORMAT: &str = "latchkey-backup";
/// Bumped when the file layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

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

/// Writes a backup: the header at [`Writer::start`], one line per [`Writer::record`], the trailer at
/// [`Writer::finish`].
pub struct Writer<W: Write> {
    w: Hashing<W>,
    created_at: String,
    master_key_file: Option<String>,
    trees: BTreeMap<String, u64>,
    meta: BTreeMap<String, Vec<u8>>,
    records: u64,
}

impl<W: Write> Writer<W> {
    pub fn start(
        out: W,
        created_at: Millis,
        master_key_file: Option<&str>,
    ) -> Result<Self, String> {
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
        line(&mut w, &header)?;
        Ok(Self {
            w,
            created_at: header.created_at,
            master_key_file: header.master_key_file,
            trees: BTreeMap::new(),
            meta: BTreeMap::new(),
            records: 0,
        })
    }

    /// Names `tree` in the trailer even when no record of it follows (an empty tree is restored too).
    pub fn tree(&mut self, tree: &str) {
        self.trees.entry(tree.to_owned()).or_default();
    }

    pub fn record(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        let rec = Record {
            tree: tree.to_owned(),
            key: B64.encode(key),
            value: B64.encode(value),
        };
        line(&mut self.w, &rec)?;
        if tree == "meta" {
            self.meta
                .insert(String::from_utf8_lossy(key).into_owned(), value.to_vec());
        }
        *self.trees.entry(rec.tree).or_default() += 1;
        self.records += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<BackupInfo, String> {
        let Hashing { mut inner, sha } = self.w;
        let trailer = Trailer {
            end: true,
            records: self.records,
            trees: self.trees,
            sha256: hex(&sha.finalize()),
        };
        line(&mut inner, &trailer)?;
        inner
            .flush()
            .map_err(|e| format!("cannot write the backup: {e}"))?;
        Ok(BackupInfo {
            created_at: self.created_at,
            records: self.records,
            trees: trailer.trees,
            master_key_file: self.master_key_file,
            meta: self.meta,
        })
    }
}

fn line(w: &mut impl Write, value: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *w, value).map_err(|e| e.to_string())?;
    w.write_all(b"\n")
        .map_err(|e| format!("cannot write the backup: {e}"))
}

/// Writes a backup to the file `out` (mode 0600: it may carry the master key) with `export`. The file appears
/// under its name only once complete (written beside it, synced, renamed).
pub fn write_file(
    out: &Path,
    export: impl FnOnce(&mut BufWriter<fs::File>) -> Result<BackupInfo, String>,
) -> Result<BackupInfo, String> {
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
        let info = export(&mut w)?;
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
pub(super) fn scan(
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
