//! The embedded store: sled trees of versioned records plus their point-lookup indexes.
//!
//! Every use case is one function here (in the file named for its record). A write that touches a record and its
//! indexes is one multi-tree transaction whose closure is pure.
//!
//! The durability rule: every write method is `async` and returns only once its write is durable (it awaits the
//! group-commit flusher, [`Store::durable`], itself; see `flush.rs`), so no caller outside `store` flushes, and an
//! acknowledged write is never lost. Concurrent writers still share one flush. Reads are `async` too, although sled
//! answers them at once: a network database cannot, and the callers must not depend on which backend answers.

mod app;
pub mod backup;
#[cfg(any(test, feature = "bench"))]
mod bench_support;
pub mod codec;
mod flush;
mod link;
#[cfg(test)]
mod link_model_test;
#[cfg(test)]
mod model_test;
mod provider;
mod record;
mod session;
mod sweep;
pub mod token;
mod user;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::Error;
#[cfg(feature = "bench")]
#[doc(hidden)]
pub use bench_support::BenchRecords;
pub use session::LoginToken;
pub use sweep::spawn_sweeper;
pub use token::{
    CodeRecord, FamilyId, GrantRecord, Lineage, Redeemed, Rotated, Subject, TokenKind, TokenRecord,
};

/// Why the store could not be opened; each variant names the data dir so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data dir {0} is in use by another latchkey process (only one process may open it)")]
    Locked(PathBuf),
    #[error("the store in data dir {dir} cannot be opened or failed verification ({cause}); move the dir aside and restore a backup into an empty dir with `latchkey restore FILE --data-dir {dir}`")]
    Corrupt { dir: PathBuf, cause: String },
    #[error("cannot open data dir {dir}: {cause}")]
    Io { dir: PathBuf, cause: String },
}

/// Makes `dir` private to the server's user: sets the process umask to 0o077, so everything created from then on
/// (the dir and any parent it needs, sled's files and its lock, `master.key`, sled's later snapshots) is 0700/0600
/// from its first byte, then creates `dir` and tightens what Latchkey keeps there (the dir, `db/`, `master.key`)
/// where it already existed with a looser mode (logged): the store holds password hashes, token digests and
/// sealed secrets. Other entries are left alone (the dir's own 0700 already hides them).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    // SAFETY: umask(2) only swaps the process's file mode mask; it cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(dir)?;
    let mut tightened = tighten(dir, false)?;
    for own in ["db", crate::crypto::seal::KEY_FILE] {
        let path = dir.join(own);
        if path.exists() {
            tightened += tighten(&path, true)?;
        }
    }
    if tightened > 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            entries = tightened,
            "data dir was open to group or others; made it 0700 and its files 0600"
        );
    }
    Ok(())
}

/// Removes group and other access from `path` and, when `deep` and it is a directory, from everything under it
/// (symlinks are left alone); returns how many entries it changed.
fn tighten(path: &Path, deep: bool) -> std::io::Result<usize> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path)?;
    let mut changed = 0;
    if meta.permissions().mode() & 0o077 != 0 && !meta.file_type().is_symlink() {
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        changed += 1;
    }
    if deep && meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            changed += tighten(&entry?.path(), true)?;
        }
    }
    Ok(changed)
}

/// Handles to every tree; cloning a sled `Tree` is an `Arc` bump, so request handlers hold their own.
#[derive(Clone)]
pub(crate) struct Trees {
    pub apps: sled::Tree,
    pub apps_by_client: sled::Tree,
    pub users: sled::Tree,
    pub users_by_name: sled::Tree,
    pub users_by_email: sled::Tree,
    pub login_tokens: sled::Tree,
    pub login_tokens_by_user: sled::Tree,
    pub providers: sled::Tree,
    pub links: sled::Tree,
    pub links_by_user: sled::Tree,
    pub links_by_provider: sled::Tree,
    pub links_by_account: sled::Tree,
    pub signin_by_user_provider: sled::Tree,
    pub codes: sled::Tree,
    pub tokens: sled::Tree,
    pub tokens_by_family: sled::Tree,
    pub families: sled::Tree,
    pub families_by_client: sled::Tree,
    pub families_by_user: sled::Tree,
    pub meta: sled::Tree,
}

/// The store. Cloning is one atomic increment (request handlers clone it freely); every clone shares the
/// database and its flusher.
#[derive(Clone)]
pub struct Store(Arc<StoreInner>);

pub struct StoreInner {
    db: sled::Db,
    pub(crate) t: Trees,
    flusher: flush::Flusher,
    app_cache: app::AppCache,
    dir: PathBuf,
    /// The newest link creation time this store has handed out (see `Store::next_link_time`).
    link_clock: std::sync::atomic::AtomicI64,
}

impl std::ops::Deref for Store {
    type Target = StoreInner;

    fn deref(&self) -> &StoreInner {
        &self.0
    }
}

/// The current layout of trees and keys; bumped when a migration is needed.
const SCHEMA_VERSION: u8 = 1;

impl Store {
    /// Opens (or creates) the store in `dir`. `cache_bytes` bounds sled's page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, OpenError> {
        create_private_dir(dir).map_err(|e| OpenError::Io {
            dir: dir.to_owned(),
            cause: e.to_string(),
        })?;
        if dir.join(backup::STAGING).exists() {
            return Err(OpenError::Corrupt {
                dir: dir.to_owned(),
                cause: format!(
                    "a restore into it was interrupted ({} is still there)",
                    backup::STAGING
                ),
            });
        }
        // sled releases its file lock from its own threads shortly after the last handle of a previous owner is
        // dropped (an in-process restart, or a process that is just exiting): wait briefly before calling the dir
        // busy.
        let mut attempts = 0;
        let db = loop {
            let opened = sled::Config::new()
                .path(dir.join("db"))
                .cache_capacity(cache_bytes)
                .mode(sled::Mode::HighThroughput)
                .open()
                .map_err(|e| classify_open_error(dir, e));
            match opened {
                Err(OpenError::Locked(_)) if attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => break other?,
            }
        };
        let tree = |name: &str| {
            db.open_tree(name).map_err(|e| OpenError::Corrupt {
                dir: dir.to_owned(),
                cause: e.to_string(),
            })
        };
        let t = Trees {
            apps: tree("apps")?,
            apps_by_client: tree("apps_by_client")?,
            users: tree("users")?,
            users_by_name: tree("users_by_name")?,
            users_by_email: tree("users_by_email")?,
            login_tokens: tree("login_tokens")?,
            login_tokens_by_user: tree("login_tokens_by_user")?,
            providers: tree("providers")?,
            links: tree("links")?,
            links_by_user: tree("links_by_user")?,
            links_by_provider: tree("links_by_provider")?,
            links_by_account: tree("links_by_account")?,
            signin_by_user_provider: tree("signin_by_user_provider")?,
            codes: tree("codes")?,
            tokens: tree("tokens")?,
            tokens_by_family: tree("tokens_by_family")?,
            families: tree("families")?,
            families_by_client: tree("families_by_client")?,
            families_by_user: tree("families_by_user")?,
            meta: tree("meta")?,
        };
        match t.meta.get("schema") {
            Ok(None) => {
                let _ = t.meta.insert("schema", &[SCHEMA_VERSION]);
            }
            Ok(Some(v)) if v.as_ref() == [SCHEMA_VERSION] => {}
            Ok(Some(v)) => {
                return Err(OpenError::Corrupt {
                    dir: dir.to_owned(),
                    cause: format!("unknown schema version {:?}", v.as_ref()),
                })
            }
            Err(e) => {
                return Err(OpenError::Corrupt {
                    dir: dir.to_owned(),
                    cause: e.to_string(),
                })
            }
        }
        let flusher = flush::Flusher::start(db.clone());
        Ok(Self(Arc::new(StoreInner {
            db,
            t,
            flusher,
            app_cache: app::AppCache::default(),
            dir: dir.to_owned(),
            link_clock: std::sync::atomic::AtomicI64::new(i64::MIN),
        })))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves once every write made before this call is on disk. Concurrent callers share one flush. Only the
    /// store's own write methods call it (the durability rule in the module doc).
    async fn durable(&self) -> crate::error::Result<()> {
        self.flusher.durable().await
    }

    /// Synchronous flush for startup, shutdown and the CLI.
    pub fn flush_blocking(&self) -> crate::error::Result<()> {
        self.db.flush().map(drop).map_err(db_err)
    }

    /// Makes the next `n` group commits fail as on a full disk (a test hook for the 503 path).
    #[doc(hidden)]
    pub fn fail_next_flushes(&self, n: u32) {
        self.flusher.fail_next(n);
    }

    /// Bytes used on disk, for `/metrics`.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// A small persistent value in the `meta` tree (e.g. a generated key).
    pub async fn meta_get(&self, key: &str) -> crate::error::Result<Option<Vec<u8>>> {
        Ok(self.t.meta.get(key).map_err(db_err)?.map(|v| v.to_vec()))
    }

    pub async fn meta_put(&self, key: &str, value: &[u8]) -> crate::error::Result<()> {
        self.t.meta.insert(key, value).map_err(db_err)?;
        self.durable().await
    }

    /// Waits (up to `timeout`) until this is the last handle to the store, so dropping it releases the data-dir
    /// lock; connection tasks finishing a graceful shutdown may still hold clones for a moment.
    pub async fn wait_last_handle(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while Arc::strong_count(&self.0) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// Stops the flusher after a final flush. Further writes are not durable.
    pub fn close(&self) -> crate::error::Result<()> {
        self.flusher.stop();
        self.flush_blocking()
    }
}

fn classify_open_error(dir: &Path, e: sled::Error) -> OpenError {
    match e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock") =>
        {
            OpenError::Locked(dir.to_owned())
        }
        sled::Error::Io(io) => OpenError::Io {
            dir: dir.to_owned(),
            cause: io.to_string(),
        },
        other => OpenError::Corrupt {
            dir: dir.to_owned(),
            cause: other.to_string(),
        },
    }
}

/// Runs a sled transaction whose closure aborts with a domain [`Error`].
pub(crate) fn txn_result<T>(r: Result<T, TransactionError<Error>>) -> crate::error::Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(db_err(e)),
    }
}

/// Aborts a transaction with a domain error.
pub(crate) fn abort<T>(e: Error) -> Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

pub(crate) fn decode_or_abort<T: codec::Record>(
    bytes: &[u8],
) -> Result<T, ConflictableTransactionError<Error>> {
    codec::decode(bytes).map_err(ConflictableTransactionError::Abort)
}

/// A sled error as the domain's: an IO error (a full disk) is [`Error::Unavailable`], anything else internal.
pub(crate) fn db_err(e: sled::Error) -> Error {
    match e {
        sled::Error::Io(io) => {
            tracing::error!(error = %io, "store write failed");
            Error::Unavailable
        }
        other => Error::internal(other),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A store in a fresh temp dir; keep the `TempDir` alive as long as the store.
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        (dir, store)
    }

    /// A step of a model-based store test: an operation, or a restart (the store closed and opened again from
    /// its dir, as sled's own tests do), after which the model must still agree.
    #[derive(Clone, Debug)]
    pub enum Step<Op> {
        Op(Op),
        Restart,
    }

    /// Between 1 and `max` steps of `op`, about one in thirteen a restart.
    pub fn steps<Op: Clone + std::fmt::Debug>(
        op: impl proptest::strategy::Strategy<Value = Op>,
        max: usize,
    ) -> impl proptest::strategy::Strategy<Value = Vec<Step<Op>>> {
        use proptest::strategy::Just;
        let step = proptest::prop_oneof![12 => op.prop_map(Step::Op), 1 => Just(Step::Restart)];
        proptest::collection::vec(step, 1..max)
    }

    /// The loop of the model-based store tests: applies each op to the model (`apply`: what the store should
    /// answer) and to the store (`run`), compares the answers, restarts the store at a `Restart` (the model is
    /// unchanged: every acknowledged write survives), compares every lookup (`check`) after each step, and ends
    /// with `verify()`, also after each restart.
    pub async fn agrees_with_model<M, Op: std::fmt::Debug, Out: PartialEq + std::fmt::Debug>(
        (dir, mut s): (tempfile::TempDir, Store),
        steps: &[Step<Op>],
        mut m: M,
        apply: impl Fn(&mut M, &Op) -> Out,
        run: impl AsyncFn(&Store, &Op) -> Out,
        check: impl AsyncFn(&Store, &M) -> Result<(), proptest::test_runner::TestCaseError>,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::test_runner::TestCaseError;
        let verify = |s: &Store, when: &str| {
            s.verify()
                .map_err(|e| TestCaseError::fail(format!("verify {when}: {e}")))
        };
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Op(op) => {
                    let expected = apply(&mut m, op);
                    let got = run(&s, op).await;
                    proptest::prop_assert_eq!(got, expected, "step #{}: {:?}", i, op);
                }
                Step::Restart => {
                    drop(s);
                    s = Store::open(dir.path(), 8 << 20).unwrap();
                    verify(&s, &format!("after the restart at step #{i}"))?;
                }
            }
            check(&s, &m)
                .await
                .map_err(|e| TestCaseError::fail(format!("after step #{i} {step:?}: {e}")))?;
        }
        verify(&s, &format!("after {steps:?}"))
    }
}
