//! The store: one [`Store`] whose methods are the use cases' storage steps (create an app, redeem a code, rotate a
//! refresh token, claim a sign-in link, …), over a backend that keeps the records (sled now, in `sled/`; no sled
//! type is visible outside it). The methods here are the boundary a second backend implements; their doc comments
//! are the contracts: what is atomic, what is re-checked inside the step, what a lookup costs.
//!
//! The durability rule: every write is `async` and returns only once it is durable (the sled backend awaits its
//! group-commit flusher, `Sled::durable`, at the end of each write; concurrent writers share one flush), so no
//! caller flushes and an acknowledged write is never lost. Every read is `async` too, although sled answers at once:
//! a network database cannot, and no caller may depend on which backend answers. A write that touches a record and
//! its indexes is one atomic step (for sled: one multi-tree transaction whose closure is pure and may be retried).
//! Offline operations (`verify`/`repair`, backup and restore, the sweeper, the bench loader) belong to the backend
//! and stay synchronous: they run outside requests.

pub mod codec;
#[cfg(test)]
mod link_model_test;
#[cfg(test)]
mod model_test;
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

pub use self::sled::backup;
#[cfg(feature = "bench")]
#[doc(hidden)]
pub use self::sled::bench_support::BenchRecords;
pub use self::sled::spawn_sweeper;
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

/// The backend behind the [`Store`]. A concrete type, so the hot path has no dynamic dispatch; a second backend
/// turns this into an `enum` with one arm per backend.
type Backend = sled::Sled;

/// The store. Cloning is one atomic increment (request handlers clone it freely); every clone shares the
/// backend (for sled: the database and its flusher).
#[derive(Clone)]
pub struct Store(Arc<Backend>);

/// The store's own unit tests reach the backend's internals (trees, counters) through the facade; the program
/// itself only sees the methods of `Store`.
#[cfg(test)]
impl std::ops::Deref for Store {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.0
    }
}

/// Operations on the store as a whole rather than use cases: opening checks, offline commands, metrics, tests.
/// They run outside requests (or are cheap), so they stay synchronous.
impl Store {
    /// The data dir the store lives in.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }

    /// The bytes the store takes on disk (the `/metrics` gauge).
    pub fn size_on_disk(&self) -> u64 {
        self.0.size_on_disk()
    }

    /// Flushes everything written so far, blocking (shutdown and offline commands).
    pub fn flush_blocking(&self) -> Result<()> {
        self.0.flush_blocking()
    }

    /// Flushes and releases the data dir.
    pub fn close(&self) -> Result<()> {
        self.0.close()
    }

    /// Checks every record and index (at start, after restore, in tests); an error names what is wrong.
    pub fn verify(&self) -> Result<()> {
        self.0.verify()
    }

    /// Completes or undoes what a crash interrupted (at start, before `verify`); returns how many fixes it made.
    pub fn repair(&self) -> Result<usize> {
        self.0.repair()
    }

    /// Removes expired codes, tokens, sessions and revoked jtis up to `now`; returns how many records went.
    pub fn sweep(&self, now: Millis) -> Result<usize> {
        self.0.sweep(now)
    }

    /// Writes a backup of everything to `out` (the server is stopped: a consistent snapshot).
    pub fn export(
        &self,
        out: impl std::io::Write,
        created_at: Millis,
        master_key_file: Option<&str>,
    ) -> std::result::Result<backup::BackupInfo, String> {
        self.0.export(out, created_at, master_key_file)
    }

    /// Test hook: the next `n` group-commit flushes fail, as on a full disk.
    pub fn fail_next_flushes(&self, n: u32) {
        self.0.fail_next_flushes(n)
    }

    /// Loads generated records in bulk for the lookup bench.
    #[cfg(feature = "bench")]
    pub fn bulk_load_for_bench(&self, r: &BenchRecords<'_>) -> Result<()> {
        self.0.bulk_load_for_bench(r)
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
        Backend::open(dir, cache_bytes).map(|b| Self(Arc::new(b)))
    }

    // Apps.

    /// Inserts a new app; its `client_id` must be free.
    pub async fn create_app(&self, app: &App) -> Result<()> {
        self.0.create_app(app).await
    }

    pub async fn get_app(&self, id: &str) -> Result<Option<App>> {
        self.0.get_app(id)
    }

    /// The hot lookup of the token endpoint: two point reads, no scan, no lock.
    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        self.0.app_by_client_id(client_id)
    }

    /// The app of `client_id`, shared and cached by the backend (sled: a decoded-app cache that every app write invalidates): the lookup of every token, introspection and
    /// revocation request.
    pub async fn client_app(&self, client_id: &str) -> Result<Option<Arc<App>>> {
        self.0.client_app(client_id)
    }

    /// Every app, oldest first (the order Rocket.Chat lists them in).
    pub async fn list_apps(&self) -> Result<Vec<App>> {
        self.0.list_apps()
    }

    /// Reads, changes and writes one app atomically. `change` may run more than once (transaction retry): keep it pure.
    pub async fn update_app(
        &self,
        id: &str,
        change: impl Fn(&mut App) -> Result<()>,
    ) -> Result<App> {
        self.0.update_app(id, change).await
    }

    /// Removes the app and its index entry; returns what was removed.
    pub async fn delete_app(&self, id: &str) -> Result<App> {
        self.0.delete_app(id).await
    }

    // Users.

    /// Inserts a new user; username (case-insensitively) and every email must be free.
    pub async fn create_user(&self, user: &User) -> Result<()> {
        self.0.create_user(user).await
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        self.0.get_user(id)
    }

    /// Case-insensitive, as Rocket.Chat's login is.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.0.user_by_username(username)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.0.user_by_email(email)
    }

    pub async fn has_users(&self) -> Result<bool> {
        self.0.has_users()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.0.list_users()
    }

    /// Replaces the stored user (same id) keeping indexes and the admin count right. `change` must be pure.
    pub async fn update_user(
        &self,
        id: &str,
        change: impl Fn(&mut User) -> Result<()>,
    ) -> Result<User> {
        self.0.update_user(id, change).await
    }

    /// Removes the user, its indexes, its links and its login tokens. The last admin cannot be removed.
    pub async fn delete_user(&self, id: &str) -> Result<User> {
        self.0.delete_user(id).await
    }

    // Login tokens (sessions).

    /// Stores a login token by digest; fails if the user no longer exists or the digest is already stored.
    pub async fn create_login_token(&self, digest: [u8; 32], token: &LoginToken) -> Result<()> {
        self.0.create_login_token(digest, token).await
    }

    pub async fn login_token(&self, digest: &[u8; 32]) -> Result<Option<LoginToken>> {
        self.0.login_token(digest)
    }

    pub async fn delete_login_token(&self, digest: &[u8; 32]) -> Result<()> {
        self.0.delete_login_token(digest).await
    }

    // Signing keys (the JWKS).

    /// Every signing key, in the order they sign (`signs_from`, then kid). A handful of records.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        self.0.list_signing_keys()
    }

    /// Inserts or replaces the key with `key.kid`.
    pub async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        self.0.put_signing_key(key).await
    }

    /// Removes the key `kid`; whether there was one.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        self.0.delete_signing_key(kid).await
    }

    // Upstream providers.

    /// Inserts `p` unless its service key is taken; returns what is stored afterwards (the existing provider
    /// when there was one), so adding twice is harmless.
    pub async fn add_provider(&self, p: &Provider) -> Result<Provider> {
        self.0.add_provider(p).await
    }

    pub async fn get_provider(&self, key: &str) -> Result<Option<Provider>> {
        self.0.get_provider(key)
    }

    /// Every provider, oldest first (RC lists settings sections in creation order).
    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        self.0.list_providers()
    }

    /// Reads, changes and writes one provider atomically. `change` may run more than once: keep it pure.
    pub async fn update_provider(
        &self,
        key: &str,
        change: impl Fn(&mut Provider) -> Result<()>,
    ) -> Result<Provider> {
        self.0.update_provider(key, change).await
    }

    /// Removes the provider and its links; `None` when there was none. Links go first, so a crash part-way
    /// leaves a provider with fewer links rather than links of a missing provider. Once the record is gone no new
    /// link to it can be made (link creation reads the provider in its transaction), so a second pass after the
    /// removal catches the links created during the first.
    pub async fn remove_provider(&self, key: &str) -> Result<Option<Provider>> {
        self.0.remove_provider(key).await
    }

    // Links to upstream accounts.

    /// Inserts a new link in one transaction that checks: the provider exists and is enabled (else
    /// `NotFound(Entity::Provider)`, read inside the transaction so a concurrent removal serializes against it), the
    /// user exists (else `NotFound(Entity::User)`), the id is free, and, for a sign-in link, that neither the upstream
    /// account (`Conflict { field: Field::AccountId }`) nor the user's sign-in slot for the provider
    /// (`Conflict { field: Field::Provider }`) is taken.
    pub async fn create_link(&self, link: &Link) -> Result<()> {
        self.0.create_link(link).await
    }

    pub async fn get_link(&self, id: &str) -> Result<Option<Link>> {
        self.0.get_link(id)
    }

    /// The `allow_sign_in` link of an upstream account: who it signs in as. Two point reads.
    pub async fn sign_in_link(&self, provider: &str, account_id: &str) -> Result<Option<Link>> {
        self.0.sign_in_link(provider, account_id)
    }

    /// The user's `allow_sign_in` link to `provider`, if any. Two point reads.
    pub async fn sign_in_link_of_user(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<Link>> {
        self.0.sign_in_link_of_user(user_id, provider)
    }

    /// The user's links in creation order (ties in the same millisecond: by id).
    pub async fn links_of_user(&self, user_id: &str) -> Result<Vec<Link>> {
        self.0.links_of_user(user_id)
    }

    /// The newest `created_at` among the user's links (the last key of its prefix).
    pub async fn newest_link_time(&self, user_id: &str) -> Result<Option<Millis>> {
        self.0.newest_link_time(user_id)
    }

    /// A `created_at` for a new link of `user_id`: `now`, raised past every time this store has handed out and
    /// past the user's newest link (which covers a restart under a clock that stands still), so "creation order"
    /// is strict even for links created within one millisecond. `created_at` is an ordering key, never shown on
    /// the wire, so running a few milliseconds ahead under a burst costs nothing.
    pub async fn next_link_time(&self, user_id: &str, now: Millis) -> Result<Millis> {
        self.0.next_link_time(user_id, now)
    }

    /// Every link, oldest first (ties by id).
    pub async fn list_links(&self) -> Result<Vec<Link>> {
        self.0.list_links()
    }

    /// Reads, changes and writes one link atomically, re-checking the sign-in invariants when `allow_sign_in` or
    /// `account_id` change. `change` may run more than once: keep it pure. The id, user, provider and creation
    /// time cannot change (`Internal`).
    pub async fn update_link(
        &self,
        id: &str,
        change: impl Fn(&mut Link) -> Result<()>,
    ) -> Result<Link> {
        self.0.update_link(id, change).await
    }

    /// Removes one link and its index entries; `NotFound(Entity::Link)` when there is none.
    pub async fn delete_link(&self, id: &str) -> Result<Link> {
        self.0.delete_link(id).await
    }

    // Codes and tokens.

    /// Stores a new authorization code; returns once it is durable.
    pub async fn put_code(&self, digest: &Digest, code: &CodeRecord) -> Result<()> {
        self.0.put_code(digest, code).await
    }

    /// Reads a code without redeeming it: the token endpoint's flow runs on this copy, and
    /// [`Store::redeem_code`] re-checks it.
    pub async fn peek_code(&self, digest: &Digest) -> Result<Option<CodeRecord>> {
        self.0.peek_code(digest)
    }

    /// A grant family, revoked or not: the token endpoint reads the sign-in a refresh token's family was started
    /// with (`auth_time`, `amr`, `sid`) to issue its ID token.
    pub async fn family(&self, id: &FamilyId) -> Result<Option<FamilyRecord>> {
        self.0.family(id)
    }

    /// The stored record of a token, live or not.
    pub async fn token_record(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        self.0.token_record(digest)
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
        self.0
            .redeem_code(digest, client_id, now, family, tokens)
            .await
    }

    /// Stores a client_credentials token: one plain insert, no transaction, so the group commit batches them
    /// (sled transactions serialize on a process-wide lock and seal the log buffer each). Returns once durable.
    pub async fn put_client_token(&self, digest: &Digest, rec: &TokenRecord) -> Result<()> {
        self.0.put_client_token(digest, rec).await
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
        self.0
            .rotate_refresh(old, client_id, scope, now, access, refresh)
            .await
    }

    /// A token that is live now: known, unexpired, not rotated away (refresh), and its family not revoked.
    /// Two point reads; this is the introspection and bearer-auth hot path.
    pub async fn active_token(&self, digest: &Digest, now: Millis) -> Result<Option<TokenRecord>> {
        self.0.active_token(digest, now)
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
        self.0.active_token_of(digest, now, app)
    }

    /// RFC 7009 for `client_id`: a refresh token takes its whole family with it; an access token goes alone.
    /// Tokens of other clients and unknown tokens are left alone (the caller answers 200 either way). Returns once
    /// the revocation is durable.
    pub async fn revoke_token(&self, digest: &Digest, client_id: &str) -> Result<bool> {
        self.0.revoke_token(digest, client_id).await
    }

    /// Revokes an unstored JWT access token (client_credentials) of `client_id` by its `jti`, until `expires_at`
    /// (its `exp`; then the sweeper forgets it, since the token is refused by its expiry). Returns once durable.
    pub async fn revoke_jti(&self, jti: &str, client_id: &str, expires_at: Millis) -> Result<()> {
        let rec = record::revoked_jti::RevokedJti {
            client_id: client_id.to_owned(),
            expires_at,
        };
        self.0.revoke_jti(jti, &rec).await
    }

    /// Whether the unstored JWT access token `jti` was revoked. One point read (introspection's hot path).
    pub async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        self.0.jti_revoked(jti)
    }

    /// Revokes every family of an app (deleted or deactivated). Call after the app change has committed: any
    /// issuance racing with it either committed before (and is found here) or fails its client check.
    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<usize> {
        self.0.revoke_client_tokens(client_id).await
    }

    /// Revokes every family of a user (deleted).
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<usize> {
        self.0.revoke_user_tokens(user_id).await
    }

    // RC-wide settings.

    /// An RC-wide setting (the `settings` tree); `None` until it is written.
    pub async fn get_setting(&self, id: &str) -> Result<Option<SettingValue>> {
        self.0.get_setting(id)
    }

    pub async fn put_setting(&self, id: &str, value: &SettingValue) -> Result<()> {
        self.0.put_setting(id, value).await
    }

    // Small persistent values.

    /// A small persistent value in the `meta` tree (e.g. a generated key).
    pub async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.meta_get(key)
    }

    pub async fn meta_put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0.meta_put(key, value).await
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
