//! The sled backend of the [`Store`](crate::store::Store): sled trees of versioned records plus their point-lookup indexes, one file per
//! record family. A write that touches a record and its indexes is one multi-tree transaction whose closure is pure;
//! every write method ends with [`Sled::durable`] (the group commit of `flush.rs`). Reads answer at once. Nothing
//! outside this module names a sled type.

pub(super) mod app;
pub mod backup;
#[cfg(any(test, feature = "bench"))]
pub(super) mod bench_support;
mod flush;
mod keys;
pub(super) mod link;
mod provider;
mod revoked_jti;
pub(super) mod session;
mod settings;
pub(super) mod sweep;
pub mod token;
pub(super) mod user;
mod verify;

use std::path::{Path, PathBuf};

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{codec, OpenError};
use crate::error::Error;

/// Handles to every tree; cloning a sled `Tree` is an `Arc` bump, so request handlers hold their own.
#[derive(Clone)]
pub(super) struct Trees {
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
    pub signing_keys: sled::Tree,
    pub revoked_jti: sled::Tree,
    pub settings: sled::Tree,
    pub meta: sled::Tree,
}

/// The sled backend: one database, its trees, the group-commit flusher and the decoded-app cache.
pub struct Sled {
    db: sled::Db,
    pub(super) t: Trees,
    flusher: flush::Flusher,
    app_cache: app::AppCache,
    dir: PathBuf,
    /// The newest link creation time this store has handed out (see `Store::next_link_time`).
    link_clock: std::sync::atomic::AtomicI64,
    /// The background check of the token trees after a start (`verify.rs`).
    deferred: verify::Deferred,
}

/// The current layout of trees and keys; bumped when a migration is needed.
pub(super) const SCHEMA_VERSION: u8 = 1;

impl Sled {
    /// Opens (or creates) the database in `dir` (already private and checked by [`crate::store::Store::open`]).
    pub(super) fn open(dir: &Path, cache_bytes: u64) -> Result<Self, OpenError> {
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
            signing_keys: tree("signing_keys")?,
            revoked_jti: tree("revoked_jti")?,
            settings: tree("settings")?,
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
        Ok(Self {
            db,
            t,
            flusher,
            app_cache: app::AppCache::default(),
            dir: dir.to_owned(),
            link_clock: std::sync::atomic::AtomicI64::new(i64::MIN),
            deferred: verify::Deferred::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves once every write made before this call is on disk. Concurrent callers share one flush. Only the
    /// store's own write methods call it (the durability rule in the module doc).
    pub(super) async fn durable(&self) -> crate::error::Result<()> {
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

    pub fn meta_get(&self, key: &str) -> crate::error::Result<Option<Vec<u8>>> {
        Ok(self.t.meta.get(key).map_err(db_err)?.map(|v| v.to_vec()))
    }

    pub async fn meta_put(&self, key: &str, value: &[u8]) -> crate::error::Result<()> {
        self.t.meta.insert(key, value).map_err(db_err)?;
        self.durable().await
    }

    /// Stores `value` under `key` unless one is there (one compare-and-swap): `None` when stored, else the
    /// value found.
    pub async fn meta_put_if_absent(
        &self,
        key: &str,
        value: &[u8],
    ) -> crate::error::Result<Option<Vec<u8>>> {
        let found = self
            .t
            .meta
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(db_err)?;
        match found {
            Ok(()) => self.durable().await.map(|()| None),
            Err(cas) => Ok(cas.current.map(|v| v.to_vec())),
        }
    }

    /// Stops the flusher after a final flush. Further writes are not durable.
    pub fn close(&self) -> crate::error::Result<()> {
        self.flusher.stop();
        self.flush_blocking()
    }
}

/// Waits until nothing holds the lock of the sled database in `dir` (sled's `flock` on `<dir>/db/db`), or until
/// `deadline`; `true` when it is free (or there is no database file). A lock taken here conflicts with sled's even
/// in the same process (`flock` locks belong to an open file description), and is released when the file closes.
pub(super) async fn wait_unlocked(dir: &Path, deadline: tokio::time::Instant) -> bool {
    use std::os::fd::AsRawFd;
    let path = dir.join("db").join("db");
    loop {
        let Ok(file) = std::fs::File::open(&path) else {
            return true;
        };
        // SAFETY: `flock` on a descriptor `file` owns and keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return true;
        }
        drop(file);
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
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
mod release_tests {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::wait_unlocked;

    /// Takes sled's lock on `<dir>/db/db` the way sled does (an exclusive `flock` of a file description of its own).
    fn hold_lock(dir: &std::path::Path) -> std::fs::File {
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let file = std::fs::File::create(dir.join("db").join("db")).unwrap();
        // SAFETY: `flock` on a descriptor `file` owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0);
        file
    }

    /// What `Store::release` waits for: a lock held by a straggling thread (as sled's IO pool may hold it after the
    /// last `Db` handle is dropped) delays it until that thread lets go, and never past the deadline.
    #[tokio::test]
    async fn waits_until_the_database_file_is_unlocked_and_no_longer_than_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            wait_unlocked(dir.path(), tokio::time::Instant::now()).await,
            "no database file: free"
        );

        let held = hold_lock(dir.path());
        let short = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(
            !wait_unlocked(dir.path(), short).await,
            "still held at the deadline"
        );

        let began = Instant::now();
        let straggler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let long = tokio::time::Instant::now() + Duration::from_secs(10);
        assert!(wait_unlocked(dir.path(), long).await);
        assert!(
            began.elapsed() >= Duration::from_millis(150),
            "returned while still held"
        );
        straggler.join().unwrap();
    }

    /// `Store::release` returns only once the database file is free. The straggler holds a duplicate of sled's own
    /// descriptor of it, as a pool thread of sled's holds the file a moment after the last handle is gone: the lock
    /// (which belongs to the open file description) stays held until the straggler closes it too. Without the lock
    /// wait, `release` returned as soon as the last handle dropped.
    #[tokio::test]
    async fn release_returns_once_nothing_holds_the_database_file() {
        use std::os::fd::FromRawFd;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), 1 << 20).unwrap();
        let path = dir.path().join("db").join("db").canonicalize().unwrap();
        let sleds = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| std::fs::read_link(e.path()).is_ok_and(|target| target == path))
            .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .expect("sled's descriptor of its database file");
        // SAFETY: `dup` of a descriptor that is open; the new one is owned by the `File` alone.
        let held = unsafe { std::fs::File::from_raw_fd(libc::dup(sleds)) };
        let straggler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1000));
            drop(held);
            Instant::now()
        });
        store.close().unwrap();
        assert!(store.release(Duration::from_secs(10)).await);
        let released = Instant::now();
        assert!(
            released >= straggler.join().unwrap(),
            "release returned while the file was still locked"
        );
    }
}
