//! The store: one [`Store`] whose methods are the use cases' storage steps (create an app, redeem a code, rotate a
//! refresh token, claim a sign-in link, …), over a backend that keeps the records: sled in the data dir (`sled/`,
//! the default) or PostgreSQL (`pg/`, when the config names a `[store] url`; docs/postgres.md). No type of either
//! is visible outside its module. The methods here are the boundary a second backend implements; their doc comments
//! are the contracts: what is atomic, what is re-checked inside the step, what a lookup costs.
//!
//! The durability rule: every write is `async` and returns only once it is durable (the sled backend awaits its
//! group-commit flusher, `Sled::durable`, at the end of each write; concurrent writers share one flush), so no
//! caller flushes and an acknowledged write is never lost. Every read is `async` too, although sled answers at once:
//! a network database cannot, and no caller may depend on which backend answers. A write that touches a record and
//! its indexes is one atomic step (for sled: one multi-tree transaction whose closure is pure and may be retried).
//! Offline operations (`verify`/`repair`, backup and restore, the sweeper, the bench loader) belong to the backend
//! and stay synchronous: they run outside requests.

pub mod backup;
pub mod codec;
#[cfg(test)]
mod link_model_test;
#[cfg(test)]
mod model_test;
mod pg;
#[cfg(test)]
pub(crate) mod pg_test;
mod record;
mod session;
mod sled;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::Millis;
use crate::error::Result;
use crate::model::provider::SettingValue;
use crate::model::{App, Link, Provider, SigningKey, User};
use token::{Digest, FirstTokens, NewToken};

#[cfg(feature = "bench")]
#[doc(hidden)]
pub use self::sled::bench_support::BenchRecords;
pub use pg::Attempt as ThrottleAttempt;
pub use session::LoginToken;
pub use token::{
    CodeRecord, FamilyId, FamilyRecord, GrantRecord, Lineage, Redeemed, Rotated, Subject,
    TokenKind, TokenRecord,
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
    /// The PostgreSQL store (`[store] url`) cannot be reached or migrated; the message never holds the URL.
    #[error("the PostgreSQL store cannot be opened: {0}")]
    Postgres(String),
    #[error("the PostgreSQL database has schema version {found}, newer than this latchkey knows ({known}): it was written by a newer release; run that release (or newer) on it")]
    SchemaTooNew { found: i32, known: i32 },
}

/// Makes `dir` private to the server's user: creates `dir` and tightens what Latchkey keeps there (the dir, `db/`,
/// `master.key`) where it already existed with a looser mode (logged): the store holds password hashes, token
/// digests and sealed secrets. Other entries are left alone (the dir's own 0700 already hides them). What is
/// created from then on is private from its first byte because the process runs with umask 0o077, which it sets
/// at start ([`crate::private_umask`]): a process-wide setting is no side effect for a store to have.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
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

/// The backend behind the [`Store`]: an enum rather than a trait object, so the hot path has no dynamic dispatch
/// and no boxed futures, and each method's `match` shows what each backend does for it.
// One per process, behind the store's `Arc`: its size costs nothing, boxing sled would cost a pointer hop.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Sled(sled::Sled),
    Postgres(pg::Pg),
}

/// The store. Cloning is one atomic increment (request handlers clone it freely); every clone shares the
/// backend (for sled: the database and its flusher).
#[derive(Clone)]
pub struct Store(Arc<Backend>);

/// The store's own unit tests reach sled's internals (trees, counters) through the facade; the program itself
/// only sees the methods of `Store`. Tests that run on both backends never deref.
#[cfg(test)]
impl std::ops::Deref for Store {
    type Target = sled::Sled;

    fn deref(&self) -> &sled::Sled {
        match &*self.0 {
            Backend::Sled(s) => s,
            Backend::Postgres(_) => panic!("a sled-internal test hook used on PostgreSQL"),
        }
    }
}

/// Operations on the store as a whole rather than use cases: opening checks, offline commands, metrics, tests.
/// They run outside requests (or are cheap), so they stay synchronous.
impl Store {
    /// The data dir the store lives in.
    pub fn dir(&self) -> &Path {
        match &*self.0 {
            Backend::Sled(b) => b.dir(),
            Backend::Postgres(b) => b.dir(),
        }
    }

    /// The bytes the store takes on disk (the `/metrics` gauge).
    pub fn size_on_disk(&self) -> u64 {
        match &*self.0 {
            Backend::Sled(b) => b.size_on_disk(),
            Backend::Postgres(b) => b.size_on_disk(),
        }
    }

    /// Flushes everything written so far, blocking (shutdown and offline commands).
    pub fn flush_blocking(&self) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.flush_blocking(),
            Backend::Postgres(b) => b.flush_blocking(),
        }
    }

    /// Flushes and releases the data dir.
    pub fn close(&self) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.close(),
            Backend::Postgres(b) => b.close(),
        }
    }

    /// Checks every record and index (at start, after restore, in tests); an error names what is wrong.
    /// PostgreSQL enforces its indexes itself: there it is [`Store::check_records`].
    pub fn verify(&self) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.verify(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// `latchkey verify`'s check on either backend: sled's [`Store::verify`]; on PostgreSQL every record of every
    /// table decoded (each one that does not is listed).
    pub async fn check_records(&self) -> std::result::Result<(), String> {
        match &*self.0 {
            Backend::Sled(b) => b.verify().map_err(|e| e.to_string()),
            Backend::Postgres(b) => b.check_records().await,
        }
    }

    /// Completes or undoes what a crash interrupted (at start, before `verify`); returns how many fixes it made.
    pub fn repair(&self) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(b) => b.repair(),
            Backend::Postgres(b) => b.repair(),
        }
    }

    /// At start, before serving: [`Store::repair`] of what every request depends on; on sled the big token trees
    /// are left to [`Store::check_deferred`], on PostgreSQL there is nothing to defer.
    pub fn repair_before_serving(&self) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(b) => b.repair_before_serving(),
            Backend::Postgres(b) => b.repair(),
        }
    }

    /// Once the server answers: repairs and verifies what [`Store::repair_before_serving`] left (blocking IO).
    /// Corruption is an `Err`, and from then on [`Store::problem`] and the next start report it.
    pub fn check_deferred(&self) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(b) => b.check_deferred(),
            Backend::Postgres(_) => Ok(0),
        }
    }

    /// The corruption the deferred check found since this start (`/healthz` answers 503 with it).
    pub fn problem(&self) -> Option<String> {
        match &*self.0 {
            Backend::Sled(b) => b.problem(),
            Backend::Postgres(_) => None,
        }
    }

    /// Removes expired codes, tokens, sessions and revoked jtis up to `now`; returns how many records went. On
    /// PostgreSQL one node sweeps at a time (a lease, `pg/sweep.rs`): a node that finds the lease taken sweeps
    /// nothing and returns 0. sled's scans are blocking IO, so they run off the async workers, in bounded batches
    /// (`sled/sweep.rs`).
    pub async fn sweep(&self, now: Millis) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(_) => {
                let (mut n, mut at) = (0, Some(sled::sweep::Cursor::default()));
                while let Some(cursor) = at {
                    let store = self.clone();
                    let (removed, next) = tokio::task::spawn_blocking(move || {
                        store
                            .sled_backend()
                            .expect("a sled store")
                            .sweep_batch(now, cursor)
                    })
                    .await
                    .map_err(crate::error::Error::internal)??;
                    (n, at) = (n + removed, next);
                }
                Ok(n)
            }
            Backend::Postgres(b) => Ok(b.sweep(now).await?.unwrap_or(0)),
        }
    }

    /// Writes a backup of every record to `out` in the backend-neutral format (`backup.rs`). sled: the caller
    /// holds the data dir (the server is stopped), so it is a consistent snapshot; PostgreSQL: one snapshot
    /// transaction, consistent while nodes keep serving.
    pub async fn export(
        &self,
        out: impl std::io::Write,
        created_at: Millis,
        master_key_file: Option<&str>,
    ) -> std::result::Result<backup::BackupInfo, String> {
        let mut w = backup::Writer::start(out, created_at, master_key_file)?;
        match &*self.0 {
            Backend::Sled(b) => b.export(&mut w)?,
            Backend::Postgres(b) => b.export(&mut w).await?,
        }
        w.finish()
    }

    /// Restores the backup `file` into this PostgreSQL store, which must hold no record: checks the whole file
    /// first, then imports it in one transaction. (sled restores into a data dir: [`backup::restore`].)
    pub async fn import(&self, file: &Path) -> std::result::Result<backup::BackupInfo, String> {
        let Backend::Postgres(b) = &*self.0 else {
            return Err("a sled store is restored into an empty data dir (backup::restore)".into());
        };
        backup::inspect(file)?;
        let mut records = Vec::new();
        let info = backup::scan(file, |tree, key, value| {
            records.push((tree.to_owned(), key, value));
            Ok(())
        })?;
        b.import(&records).await?;
        Ok(info)
    }

    /// Test hook: the next `n` group-commit flushes fail, as on a full disk.
    pub fn fail_next_flushes(&self, n: u32) {
        match &*self.0 {
            Backend::Sled(b) => b.fail_next_flushes(n),
            Backend::Postgres(_) => {
                tracing::warn!("fail_next_flushes is not supported on PostgreSQL")
            }
        }
    }

    /// Loads generated records in bulk for the lookup bench.
    #[cfg(feature = "bench")]
    pub fn bulk_load_for_bench(&self, r: &BenchRecords<'_>) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.bulk_load_for_bench(r),
            Backend::Postgres(_) => Err(crate::error::Error::internal(
                "the lookup bench's bulk loader is sled's (load PostgreSQL over HTTP)",
            )),
        }
    }

    /// The sled backend, for sled's own offline code (restore writes its trees directly).
    fn sled_backend(&self) -> Option<&sled::Sled> {
        match &*self.0 {
            Backend::Sled(b) => Some(b),
            Backend::Postgres(_) => None,
        }
    }

    /// Whether the store can serve (`/healthz`): sled is in the process, so always; PostgreSQL answers a
    /// `SELECT 1` within two seconds, checked at most once a second.
    pub async fn healthy(&self) -> bool {
        match &*self.0 {
            Backend::Sled(_) => true,
            Backend::Postgres(b) => b.healthy().await,
        }
    }

    /// Whether the records live in PostgreSQL (tests that reach sled's internals skip it).
    pub fn is_postgres(&self) -> bool {
        matches!(&*self.0, Backend::Postgres(_))
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`. `cache_bytes` bounds sled's page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, OpenError> {
        create_private_dir(dir).map_err(|e| OpenError::Io {
            dir: dir.to_owned(),
            cause: e.to_string(),
        })?;
        if dir.join(sled::backup::STAGING).exists() {
            return Err(OpenError::Corrupt {
                dir: dir.to_owned(),
                cause: format!(
                    "a restore into it was interrupted ({} is still there)",
                    sled::backup::STAGING
                ),
            });
        }
        sled::Sled::open(dir, cache_bytes).map(|b| Self(Arc::new(Backend::Sled(b))))
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema up to date; `dir` is the data dir,
    /// which keeps what is not in the database yet (`master.key`).
    pub async fn connect(url: &str, dir: &Path) -> Result<Self, OpenError> {
        create_private_dir(dir).map_err(|e| OpenError::Io {
            dir: dir.to_owned(),
            cause: e.to_string(),
        })?;
        pg::Pg::connect(url, dir)
            .await
            .map(|b| Self(Arc::new(Backend::Postgres(b))))
    }

    // Apps.

    /// Inserts a new app; its `client_id` must be free.
    pub async fn create_app(&self, app: &App) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.create_app(app).await,
            Backend::Postgres(b) => b.create_app(app).await,
        }
    }

    pub async fn get_app(&self, id: &str) -> Result<Option<App>> {
        match &*self.0 {
            Backend::Sled(b) => b.get_app(id),
            Backend::Postgres(b) => b.get_app(id).await,
        }
    }

    /// The hot lookup of the token endpoint: two point reads, no scan, no lock.
    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        match &*self.0 {
            Backend::Sled(b) => b.app_by_client_id(client_id),
            Backend::Postgres(b) => b.app_by_client_id(client_id).await,
        }
    }

    /// The app of `client_id`, shared and cached by the backend (sled: a decoded-app cache that every app write invalidates): the lookup of every token, introspection and
    /// revocation request. PostgreSQL keeps no cache: every node reads the row, so it sees another node's change at once.
    pub async fn client_app(&self, client_id: &str) -> Result<Option<Arc<App>>> {
        match &*self.0 {
            Backend::Sled(b) => b.client_app(client_id),
            Backend::Postgres(b) => b.client_app(client_id).await,
        }
    }

    /// Every app, oldest first (the order Rocket.Chat lists them in).
    pub async fn list_apps(&self) -> Result<Vec<App>> {
        match &*self.0 {
            Backend::Sled(b) => b.list_apps(),
            Backend::Postgres(b) => b.list_apps().await,
        }
    }

    /// Reads, changes and writes one app atomically. `change` may run more than once (transaction retry): keep it pure.
    pub async fn update_app(
        &self,
        id: &str,
        change: impl Fn(&mut App) -> Result<()>,
    ) -> Result<App> {
        match &*self.0 {
            Backend::Sled(b) => b.update_app(id, change).await,
            Backend::Postgres(b) => b.update_app(id, change).await,
        }
    }

    /// Removes the app and its index entry; returns what was removed.
    pub async fn delete_app(&self, id: &str) -> Result<App> {
        match &*self.0 {
            Backend::Sled(b) => b.delete_app(id).await,
            Backend::Postgres(b) => b.delete_app(id).await,
        }
    }

    // Users.

    /// Inserts a new user; username (case-insensitively) and every email must be free.
    pub async fn create_user(&self, user: &User) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.create_user(user).await,
            Backend::Postgres(b) => b.create_user(user).await,
        }
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        match &*self.0 {
            Backend::Sled(b) => b.get_user(id),
            Backend::Postgres(b) => b.get_user(id).await,
        }
    }

    /// Case-insensitive, as Rocket.Chat's login is.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        match &*self.0 {
            Backend::Sled(b) => b.user_by_username(username),
            Backend::Postgres(b) => b.user_by_username(username).await,
        }
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        match &*self.0 {
            Backend::Sled(b) => b.user_by_email(email),
            Backend::Postgres(b) => b.user_by_email(email).await,
        }
    }

    pub async fn has_users(&self) -> Result<bool> {
        match &*self.0 {
            Backend::Sled(b) => b.has_users(),
            Backend::Postgres(b) => b.has_users().await,
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        match &*self.0 {
            Backend::Sled(b) => b.list_users(),
            Backend::Postgres(b) => b.list_users().await,
        }
    }

    /// Replaces the stored user (same id) keeping indexes and the admin count right. `change` must be pure.
    pub async fn update_user(
        &self,
        id: &str,
        change: impl Fn(&mut User) -> Result<()>,
    ) -> Result<User> {
        match &*self.0 {
            Backend::Sled(b) => b.update_user(id, change).await,
            Backend::Postgres(b) => b.update_user(id, change).await,
        }
    }

    /// Removes the user, its indexes, its links and its login tokens. The last admin cannot be removed.
    pub async fn delete_user(&self, id: &str) -> Result<User> {
        match &*self.0 {
            Backend::Sled(b) => b.delete_user(id).await,
            Backend::Postgres(b) => b.delete_user(id).await,
        }
    }

    // Login tokens (sessions).

    /// Stores a login token by digest; fails if the user no longer exists or the digest is already stored.
    pub async fn create_login_token(&self, digest: [u8; 32], token: &LoginToken) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.create_login_token(digest, token).await,
            Backend::Postgres(b) => b.create_login_token(digest, token).await,
        }
    }

    pub async fn login_token(&self, digest: &[u8; 32]) -> Result<Option<LoginToken>> {
        match &*self.0 {
            Backend::Sled(b) => b.login_token(digest),
            Backend::Postgres(b) => b.login_token(digest).await,
        }
    }

    pub async fn delete_login_token(&self, digest: &[u8; 32]) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.delete_login_token(digest).await,
            Backend::Postgres(b) => b.delete_login_token(digest).await,
        }
    }

    // Signing keys (the JWKS).

    /// Every signing key, in the order they sign (`signs_from`, then kid). A handful of records.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        match &*self.0 {
            Backend::Sled(b) => b.list_signing_keys(),
            Backend::Postgres(b) => b.list_signing_keys().await,
        }
    }

    /// Inserts or replaces the key with `key.kid`.
    pub async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.put_signing_key(key).await,
            Backend::Postgres(b) => b.put_signing_key(key).await,
        }
    }

    /// Removes the key `kid`; whether there was one.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        match &*self.0 {
            Backend::Sled(b) => b.delete_signing_key(kid).await,
            Backend::Postgres(b) => b.delete_signing_key(kid).await,
        }
    }

    // Upstream providers.

    /// Inserts `p` unless its service key is taken; returns what is stored afterwards (the existing provider
    /// when there was one), so adding twice is harmless.
    pub async fn add_provider(&self, p: &Provider) -> Result<Provider> {
        match &*self.0 {
            Backend::Sled(b) => b.add_provider(p).await,
            Backend::Postgres(b) => b.add_provider(p).await,
        }
    }

    pub async fn get_provider(&self, key: &str) -> Result<Option<Provider>> {
        match &*self.0 {
            Backend::Sled(b) => b.get_provider(key),
            Backend::Postgres(b) => b.get_provider(key).await,
        }
    }

    /// Every provider, oldest first (RC lists settings sections in creation order).
    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        match &*self.0 {
            Backend::Sled(b) => b.list_providers(),
            Backend::Postgres(b) => b.list_providers().await,
        }
    }

    /// Reads, changes and writes one provider atomically. `change` may run more than once: keep it pure.
    pub async fn update_provider(
        &self,
        key: &str,
        change: impl Fn(&mut Provider) -> Result<()>,
    ) -> Result<Provider> {
        match &*self.0 {
            Backend::Sled(b) => b.update_provider(key, change).await,
            Backend::Postgres(b) => b.update_provider(key, change).await,
        }
    }

    /// Removes the provider and its links; `None` when there was none. Links go first, so a crash part-way
    /// leaves a provider with fewer links rather than links of a missing provider. Once the record is gone no new
    /// link to it can be made (link creation reads the provider in its transaction), so a second pass after the
    /// removal catches the links created during the first.
    pub async fn remove_provider(&self, key: &str) -> Result<Option<Provider>> {
        match &*self.0 {
            Backend::Sled(b) => b.remove_provider(key).await,
            Backend::Postgres(b) => b.remove_provider(key).await,
        }
    }

    // Links to upstream accounts.

    /// Inserts a new link in one transaction that checks: the provider exists and is enabled (else
    /// `NotFound(Entity::Provider)`, read inside the transaction so a concurrent removal serializes against it), the
    /// user exists (else `NotFound(Entity::User)`), the id is free, and, for a sign-in link, that neither the upstream
    /// account (`Conflict { field: Field::AccountId }`) nor the user's sign-in slot for the provider
    /// (`Conflict { field: Field::Provider }`) is taken.
    pub async fn create_link(&self, link: &Link) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.create_link(link).await,
            Backend::Postgres(b) => b.create_link(link).await,
        }
    }

    pub async fn get_link(&self, id: &str) -> Result<Option<Link>> {
        match &*self.0 {
            Backend::Sled(b) => b.get_link(id),
            Backend::Postgres(b) => b.get_link(id).await,
        }
    }

    /// The `allow_sign_in` link of an upstream account: who it signs in as. Two point reads.
    pub async fn sign_in_link(&self, provider: &str, account_id: &str) -> Result<Option<Link>> {
        match &*self.0 {
            Backend::Sled(b) => b.sign_in_link(provider, account_id),
            Backend::Postgres(b) => b.sign_in_link(provider, account_id).await,
        }
    }

    /// The user's `allow_sign_in` link to `provider`, if any. Two point reads.
    pub async fn sign_in_link_of_user(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<Link>> {
        match &*self.0 {
            Backend::Sled(b) => b.sign_in_link_of_user(user_id, provider),
            Backend::Postgres(b) => b.sign_in_link_of_user(user_id, provider).await,
        }
    }

    /// The user's links in creation order (ties in the same millisecond: by id).
    pub async fn links_of_user(&self, user_id: &str) -> Result<Vec<Link>> {
        match &*self.0 {
            Backend::Sled(b) => b.links_of_user(user_id),
            Backend::Postgres(b) => b.links_of_user(user_id).await,
        }
    }

    /// The newest `created_at` among the user's links (the last key of its prefix).
    pub async fn newest_link_time(&self, user_id: &str) -> Result<Option<Millis>> {
        match &*self.0 {
            Backend::Sled(b) => b.newest_link_time(user_id),
            Backend::Postgres(b) => b.newest_link_time(user_id).await,
        }
    }

    /// A `created_at` for a new link of `user_id`: `now`, raised past every time this store has handed out and
    /// past the user's newest link (which covers a restart under a clock that stands still), so "creation order"
    /// is strict even for links created within one millisecond. `created_at` is an ordering key, never shown on
    /// the wire, so running a few milliseconds ahead under a burst costs nothing.
    pub async fn next_link_time(&self, user_id: &str, now: Millis) -> Result<Millis> {
        match &*self.0 {
            Backend::Sled(b) => b.next_link_time(user_id, now),
            Backend::Postgres(b) => b.next_link_time(user_id, now).await,
        }
    }

    /// Every link, oldest first (ties by id).
    pub async fn list_links(&self) -> Result<Vec<Link>> {
        match &*self.0 {
            Backend::Sled(b) => b.list_links(),
            Backend::Postgres(b) => b.list_links().await,
        }
    }

    /// Reads, changes and writes one link atomically, re-checking the sign-in invariants when `allow_sign_in` or
    /// `account_id` change. `change` may run more than once: keep it pure. The id, user, provider and creation
    /// time cannot change (`Internal`).
    pub async fn update_link(
        &self,
        id: &str,
        change: impl Fn(&mut Link) -> Result<()>,
    ) -> Result<Link> {
        match &*self.0 {
            Backend::Sled(b) => b.update_link(id, change).await,
            Backend::Postgres(b) => b.update_link(id, change).await,
        }
    }

    /// Removes one link and its index entries; `NotFound(Entity::Link)` when there is none.
    pub async fn delete_link(&self, id: &str) -> Result<Link> {
        match &*self.0 {
            Backend::Sled(b) => b.delete_link(id).await,
            Backend::Postgres(b) => b.delete_link(id).await,
        }
    }

    // Codes and tokens.

    /// Stores a new authorization code; returns once it is durable.
    pub async fn put_code(&self, digest: &Digest, code: &CodeRecord) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.put_code(digest, code).await,
            Backend::Postgres(b) => b.put_code(digest, code).await,
        }
    }

    /// Reads a code without redeeming it: the token endpoint's flow runs on this copy, and
    /// [`Store::redeem_code`] re-checks it.
    pub async fn peek_code(&self, digest: &Digest) -> Result<Option<CodeRecord>> {
        match &*self.0 {
            Backend::Sled(b) => b.peek_code(digest),
            Backend::Postgres(b) => b.peek_code(digest).await,
        }
    }

    /// A grant family, revoked or not: the token endpoint reads the sign-in a refresh token's family was started
    /// with (`auth_time`, `amr`, `sid`) to issue its ID token.
    pub async fn family(&self, id: &FamilyId) -> Result<Option<FamilyRecord>> {
        match &*self.0 {
            Backend::Sled(b) => b.family(id),
            Backend::Postgres(b) => b.family(id).await,
        }
    }

    /// The stored record of a token, live or not.
    pub async fn token_record(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        match &*self.0 {
            Backend::Sled(b) => b.token_record(digest),
            Backend::Postgres(b) => b.token_record(digest).await,
        }
    }

    /// Redeems the code for `client_id` and, with `tokens` (the redemption verified), starts family `family` with
    /// them, in one transaction: a concurrent replay either comes first (and this redemption fails) or finds the
    /// family and revokes it. Without `tokens` the code is only used up, as it is by every attempt of its client.
    /// A second redemption revokes the family; a code presented by another client is left as it is (whoever stole
    /// it must not be able to burn it or its tokens). Fails with NotFound when the client or the user is gone, so a
    /// token can never outlive a concurrent app or user deletion. Returns once the outcome is durable.
    pub async fn redeem_code(
        &self,
        digest: &Digest,
        client_id: &str,
        now: Millis,
        family: FamilyId,
        tokens: Option<FirstTokens>,
    ) -> Result<Redeemed> {
        match &*self.0 {
            Backend::Sled(b) => b.redeem_code(digest, client_id, now, family, tokens).await,
            Backend::Postgres(b) => b.redeem_code(digest, client_id, now, family, tokens).await,
        }
    }

    /// Stores a client_credentials token: one plain insert, no transaction, so the group commit batches them
    /// (sled transactions serialize on a process-wide lock and seal the log buffer each). Returns once durable.
    pub async fn put_client_token(&self, digest: &Digest, rec: &TokenRecord) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.put_client_token(digest, rec).await,
            Backend::Postgres(b) => b.put_client_token(digest, rec).await,
        }
    }

    /// Exchanges a refresh token of `client_id` for new tokens in the same family and revokes the access token
    /// issued with it (as Rocket.Chat and Hydra do). The new refresh token keeps the old one's scope (RFC 6749 §6);
    /// `scope` is the new access token's. Presenting an already rotated refresh token revokes the family
    /// (RFC 9700 §4.14.2). Returns once the outcome is durable.
    pub async fn rotate_refresh(
        &self,
        old: &Digest,
        client_id: &str,
        scope: &str,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
    ) -> Result<Rotated> {
        match &*self.0 {
            Backend::Sled(b) => {
                b.rotate_refresh(old, client_id, scope, now, access, refresh)
                    .await
            }
            Backend::Postgres(b) => {
                b.rotate_refresh(old, client_id, scope, now, access, refresh)
                    .await
            }
        }
    }

    /// A token that is live now: known, unexpired, not rotated away (refresh), and its family not revoked.
    /// Two point reads; this is the introspection and bearer-auth hot path.
    pub async fn active_token(&self, digest: &Digest, now: Millis) -> Result<Option<TokenRecord>> {
        match &*self.0 {
            Backend::Sled(b) => b.active_token(digest, now),
            Backend::Postgres(b) => b.active_token(digest, now).await,
        }
    }

    /// [`Store::active_token`] for a caller that already holds the token's client (introspection authenticated
    /// it): a token of another client is not live for it, and a client_credentials token is checked against
    /// `app` without reading the app again.
    pub async fn active_token_of(
        &self,
        digest: &Digest,
        now: Millis,
        app: &crate::model::App,
    ) -> Result<Option<TokenRecord>> {
        match &*self.0 {
            Backend::Sled(b) => b.active_token_of(digest, now, app),
            Backend::Postgres(b) => b.active_token_of(digest, now, app).await,
        }
    }

    /// RFC 7009 for `client_id`: a refresh token takes its whole family with it; an access token goes alone.
    /// Tokens of other clients and unknown tokens are left alone (the caller answers 200 either way). Returns once
    /// the revocation is durable.
    pub async fn revoke_token(&self, digest: &Digest, client_id: &str) -> Result<bool> {
        match &*self.0 {
            Backend::Sled(b) => b.revoke_token(digest, client_id).await,
            Backend::Postgres(b) => b.revoke_token(digest, client_id).await,
        }
    }

    /// Revokes an unstored JWT access token (client_credentials) of `client_id` by its `jti`, until `expires_at`
    /// (its `exp`; then the sweeper forgets it, since the token is refused by its expiry). Returns once durable.
    pub async fn revoke_jti(&self, jti: &str, client_id: &str, expires_at: Millis) -> Result<()> {
        let rec = record::revoked_jti::RevokedJti {
            client_id: client_id.to_owned(),
            expires_at,
        };
        match &*self.0 {
            Backend::Sled(b) => b.revoke_jti(jti, &rec).await,
            Backend::Postgres(b) => b.revoke_jti(jti, &rec).await,
        }
    }

    /// Whether the unstored JWT access token `jti` was revoked. One point read (introspection's hot path).
    pub async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        match &*self.0 {
            Backend::Sled(b) => b.jti_revoked(jti),
            Backend::Postgres(b) => b.jti_revoked(jti).await,
        }
    }

    /// Revokes every family of an app (deleted or deactivated). Call after the app change has committed: any
    /// issuance racing with it either committed before (and is found here) or fails its client check.
    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(b) => b.revoke_client_tokens(client_id).await,
            Backend::Postgres(b) => b.revoke_client_tokens(client_id).await,
        }
    }

    /// Revokes every family of a user (deleted).
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<usize> {
        match &*self.0 {
            Backend::Sled(b) => b.revoke_user_tokens(user_id).await,
            Backend::Postgres(b) => b.revoke_user_tokens(user_id).await,
        }
    }

    // RC-wide settings.

    /// An RC-wide setting (the `settings` tree); `None` until it is written.
    pub async fn get_setting(&self, id: &str) -> Result<Option<SettingValue>> {
        match &*self.0 {
            Backend::Sled(b) => b.get_setting(id),
            Backend::Postgres(b) => b.get_setting(id).await,
        }
    }

    pub async fn put_setting(&self, id: &str, value: &SettingValue) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.put_setting(id, value).await,
            Backend::Postgres(b) => b.put_setting(id, value).await,
        }
    }

    // Small persistent values.

    /// A small persistent value in the `meta` tree (e.g. a generated key).
    pub async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match &*self.0 {
            Backend::Sled(b) => b.meta_get(key),
            Backend::Postgres(b) => b.meta_get(key).await,
        }
    }

    pub async fn meta_put(&self, key: &str, value: &[u8]) -> Result<()> {
        match &*self.0 {
            Backend::Sled(b) => b.meta_put(key, value).await,
            Backend::Postgres(b) => b.meta_put(key, value).await,
        }
    }

    /// Stores `value` under `key` unless one is there: `None` when this call stored it, else the value found
    /// (nodes starting together adopt the first one's).
    pub async fn meta_put_if_absent(&self, key: &str, value: &[u8]) -> Result<Option<Vec<u8>>> {
        match &*self.0 {
            Backend::Sled(b) => b.meta_put_if_absent(key, value).await,
            Backend::Postgres(b) => b.meta_put_if_absent(key, value).await,
        }
    }

    /// Stores a new signing key unless the kids of its algorithm are no longer `seen` (another node gave it a key
    /// meanwhile); whether it stored it. sled has one process, whose key ensuring runs one at a time.
    pub async fn put_signing_key_unless_changed(
        &self,
        key: &SigningKey,
        seen: &[String],
    ) -> Result<bool> {
        match &*self.0 {
            Backend::Sled(b) => b.put_signing_key(key).await.map(|()| true),
            Backend::Postgres(b) => b.put_signing_key_unless_changed(key, seen).await,
        }
    }

    // Shared throttles: counted in the database on PostgreSQL; sled's one process counts in memory
    // (`core::throttle::SharedThrottle` never calls these on sled).

    /// Counts one attempt in `throttle`'s window for `key` unless it holds `limit` already.
    pub async fn throttle_reserve(
        &self,
        throttle: &str,
        key: &[u8; 32],
        limit: u32,
        window_ms: Millis,
        now: Millis,
    ) -> Result<ThrottleAttempt> {
        match &*self.0 {
            Backend::Sled(_) => Err(in_process_throttle()),
            Backend::Postgres(b) => {
                b.throttle_reserve(throttle, key, limit, window_ms, now)
                    .await
            }
        }
    }

    /// Gives one counted attempt back.
    pub async fn throttle_give_back(&self, throttle: &str, key: &[u8; 32]) -> Result<()> {
        match &*self.0 {
            Backend::Sled(_) => Err(in_process_throttle()),
            Backend::Postgres(b) => b.throttle_give_back(throttle, key).await,
        }
    }

    /// Forgets `key`'s window.
    pub async fn throttle_reset(&self, throttle: &str, key: &[u8; 32]) -> Result<()> {
        match &*self.0 {
            Backend::Sled(_) => Err(in_process_throttle()),
            Backend::Postgres(b) => b.throttle_reset(throttle, key).await,
        }
    }

    /// Drops `throttle`'s windows that ended by `now`.
    pub async fn throttle_sweep(&self, throttle: &str, now: Millis) -> Result<u64> {
        match &*self.0 {
            Backend::Sled(_) => Err(in_process_throttle()),
            Backend::Postgres(b) => b.throttle_sweep(throttle, now).await,
        }
    }

    /// Drops this handle once it is the last one and waits until the store has let go of its data dir, each
    /// wait bounded by `timeout`; `false` when one ran out. Connection tasks finishing a graceful shutdown may
    /// still hold clones for a moment; after the last sled handle is dropped, sled's IO threads may still hold the
    /// database file, and its lock, while they finish a log write or a truncation. So once the server's
    /// `shutdown` has returned, the dir can be opened again at once, by this process or another.
    pub async fn release(self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while Arc::strong_count(&self.0) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let sled_dir = match &*self.0 {
            Backend::Sled(b) => Some(b.dir().to_owned()),
            Backend::Postgres(_) => None,
        };
        drop(self);
        match sled_dir {
            Some(dir) => self::sled::wait_unlocked(&dir, deadline).await,
            None => true,
        }
    }
}

/// A shared throttle used on sled, whose one process counts in memory.
fn in_process_throttle() -> crate::error::Error {
    crate::error::Error::internal("sled counts throttles in process")
}

/// Removes expired records every `every` until the returned handle is aborted (or the runtime stops), so the
/// store does not grow without bound. Every node runs it; on PostgreSQL the lease lets one sweep at a time.
pub fn spawn_sweeper(
    store: Store,
    clock: crate::clock::Clock,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.sweep(clock.now_ms()).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "swept expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    })
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

    /// The admin counter of either backend.
    pub async fn admin_count(s: &Store) -> u64 {
        match &*s.0 {
            Backend::Sled(b) => b.admin_count().unwrap(),
            Backend::Postgres(b) => b.admin_count().await.unwrap(),
        }
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
        // sled's own index check; PostgreSQL enforces its indexes itself.
        let verify = |s: &Store, when: &str| {
            if s.is_postgres() {
                return Ok(());
            }
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
                    let pg = s.is_postgres();
                    drop(s);
                    s = if pg {
                        super::pg_test::reopen(dir.path()).await
                    } else {
                        Store::open(dir.path(), 8 << 20).unwrap()
                    };
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
