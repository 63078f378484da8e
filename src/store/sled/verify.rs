//! `Store::verify` and `Store::repair`: every index against its records and every record against its indexes.
//! `verify` runs after restore and in the model-based tests after every random run; `repair` runs in restore,
//! before `verify`. At start the checks are split by [`Scope`] so the server answers in milliseconds on a big store:
//! the small trees every request depends on are repaired and verified before serving
//! ([`Sled::repair_before_serving`]), the big, short-lived token trees by a background task once the server answers
//! ([`Sled::check_deferred`]); until it is done, every read of those trees treats what it cannot decode, or a
//! family whose owner is gone, as dead (`token.rs`). Corruption it finds turns `/healthz` to 503 and is recorded
//! (`meta` key [`CORRUPT`]) so the next start refuses (docs/reliability.md).
//!
//! Each check classifies what it finds (the table is in docs/reliability.md):
//! - a **leftover**: what a `kill -9` between two writes that are not one transaction can leave (an index entry
//!   whose record is gone, an index entry of a record that can be derived from the record alone, a record that is
//!   dead because what it belongs to is gone, a grant not yet revoked after its app or user went). Each comes with
//!   the raw writes that repair it; none of them can make anything live that was not.
//! - **corruption**: an undecodable record, a record under another key, an index that another record holds, a
//!   broken invariant. Nothing can repair it safely: `serve` refuses to start and names `latchkey restore`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::link::{
    account_key, id_of_provider_key, id_of_user_key, provider_key, signin_key, user_key,
};
use super::{codec, db_err, Sled};
use crate::error::{Error, Result};
use crate::model::provider::normalize_name;
use crate::model::{App, Link, Provider, User};
use crate::store::LoginToken;

/// One raw write of a repair.
pub(super) enum Op {
    Remove(sled::Tree, Vec<u8>),
    Put(sled::Tree, Vec<u8>, Vec<u8>),
}

impl Op {
    fn tree(&self) -> &sled::Tree {
        match self {
            Op::Remove(t, _) | Op::Put(t, _, _) => t,
        }
    }
}

/// What the checks found: corruption, and leftovers with the writes that repair them.
#[derive(Default)]
pub(super) struct Findings {
    corrupt: Vec<String>,
    leftovers: Vec<String>,
    ops: Vec<Op>,
}

/// The most problems one message lists.
const LISTED: usize = 20;

impl Findings {
    pub fn corrupt(&mut self, what: impl Into<String>) {
        if self.corrupt.len() < LISTED {
            self.corrupt.push(what.into());
        }
    }

    pub fn leftover(&mut self, what: impl Into<String>, repair: impl IntoIterator<Item = Op>) {
        if self.leftovers.len() < LISTED {
            self.leftovers.push(what.into());
        }
        self.ops.extend(repair);
    }

    fn message(&self, of: &[String]) -> Error {
        Error::Internal(format!("store verification failed: {}", of.join("; ")))
    }
}

/// Which trees a check covers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    /// The small trees every request depends on: apps, users and their login tokens, providers, links, signing
    /// keys, settings.
    BeforeServing,
    /// The big, short-lived token trees: tokens, families and their indexes, revoked jtis.
    Deferred,
}

/// The `meta` key under which the deferred check records the corruption it found: the next start refuses.
pub(super) const CORRUPT: &str = "corrupt";

/// How many rounds of check-and-repair the deferred check runs: a round can find what live traffic (the sweeper
/// between its two writes) leaves for an instant, which the next round no longer sees.
const DEFERRED_ROUNDS: usize = 3;

/// The state of the deferred check of the token trees.
#[derive(Default)]
pub(super) struct Deferred {
    /// Set when the start skipped the token trees, cleared once the background check repaired them: meanwhile a
    /// family token also needs its owners alive (a crash may have left the grant of a deleted user unrevoked).
    pending: AtomicBool,
    /// The corruption it found, for `/healthz`.
    problem: OnceLock<String>,
}

impl Sled {
    /// Whether the token trees are not yet checked since this start (see [`Deferred`]).
    pub(super) fn deferred_pending(&self) -> bool {
        self.deferred.pending.load(Ordering::Acquire)
    }

    /// The corruption the deferred check found, if any.
    pub fn problem(&self) -> Option<String> {
        self.deferred.problem.get().cloned()
    }

    /// Repairs and verifies the trees every request depends on, before the server answers; refuses a store in
    /// which a previous run's deferred check found corruption. Marks the token trees pending: the caller runs
    /// [`Sled::check_deferred`] once it serves.
    pub fn repair_before_serving(&self) -> Result<usize> {
        if let Some(found) = self.meta_get(CORRUPT)? {
            return Err(Error::Internal(format!(
                "store verification failed: {} (found after a previous start)",
                String::from_utf8_lossy(&found)
            )));
        }
        self.deferred.pending.store(true, Ordering::Release);
        let n = self.repair_in(Scope::BeforeServing)?;
        self.verify_in(Scope::BeforeServing)?;
        Ok(n)
    }

    /// Repairs the token trees while the server runs (blocking IO: a background thread). Corruption is recorded
    /// for `/healthz` and under `meta` [`CORRUPT`] (the next start refuses it) and returned. Leftovers that live
    /// traffic leaves for an instant are repaired like a crash's; both kinds' repairs are idempotent and only ever
    /// remove what is dead or put back what its record implies, so they are safe beside concurrent requests.
    pub fn check_deferred(&self) -> Result<usize> {
        let mut repaired = 0;
        for _ in 0..DEFERRED_ROUNDS {
            let f = match self.check(Scope::Deferred) {
                Ok(f) if f.corrupt.is_empty() => f,
                Ok(f) => return Err(self.record_corruption(f.message(&f.corrupt))),
                Err(e) => return Err(self.record_corruption(e)),
            };
            if f.ops.is_empty() {
                break;
            }
            repaired += self.apply(f)?;
        }
        self.deferred.pending.store(false, Ordering::Release);
        Ok(repaired)
    }

    /// Keeps what the deferred check found: for `/healthz` now, and in `meta` for the next start.
    fn record_corruption(&self, e: Error) -> Error {
        let cause = match &e {
            Error::Internal(c) => c.clone(),
            other => other.to_string(),
        };
        tracing::error!(cause = %cause, "store corruption found after start: run `latchkey restore`");
        let _ = self.deferred.problem.set(cause.clone());
        if let Err(w) = self
            .t
            .meta
            .insert(CORRUPT, cause.as_bytes())
            .map_err(db_err)
            .and_then(|_| self.flush_blocking())
        {
            tracing::error!(error = ?w, "could not record the corruption for the next start");
        }
        e
    }

    /// Returns `Err(Internal)` listing the first problems found; `Ok` when every index agrees with the records.
    pub fn verify(&self) -> Result<()> {
        self.verify_in(Scope::All)
    }

    fn verify_in(&self, scope: Scope) -> Result<()> {
        let f = self.check(scope)?;
        if f.corrupt.is_empty() && f.ops.is_empty() {
            return Ok(());
        }
        let all: Vec<String> = f.corrupt.iter().chain(&f.leftovers).cloned().collect();
        Err(f.message(&all))
    }

    /// Repairs what a crash can leave (see the module doc), logging each tree it wrote and how many entries, then
    /// verifies. Changes nothing when the store is corrupt: that is an `Err` naming the first problems. Returns how
    /// many writes repaired the store. A crash during a repair leaves leftovers of the same kinds, so the next run
    /// finishes it. A store with nothing to repair is scanned once (the check is the verification: this runs at
    /// every start, and each scan reads every record).
    pub fn repair(&self) -> Result<usize> {
        let n = self.repair_in(Scope::All)?;
        if n > 0 {
            self.verify()?;
        }
        Ok(n)
    }

    /// Repairs the leftovers in `scope`; changes nothing and returns the `Err` when it is corrupt.
    fn repair_in(&self, scope: Scope) -> Result<usize> {
        let f = self.check(scope)?;
        if !f.corrupt.is_empty() {
            return Err(f.message(&f.corrupt));
        }
        self.apply(f)
    }

    /// Makes the repairs of `f`'s leftovers durable, logging each tree it wrote and how many entries.
    fn apply(&self, f: Findings) -> Result<usize> {
        let n = f.ops.len();
        if n == 0 {
            return Ok(0);
        }
        let mut per_tree: BTreeMap<String, usize> = BTreeMap::new();
        // Removals first: a put only ever fills a key that was free when checked.
        let (removes, puts): (Vec<Op>, Vec<Op>) =
            f.ops.into_iter().partition(|o| matches!(o, Op::Remove(..)));
        for op in removes.into_iter().chain(puts) {
            *per_tree
                .entry(String::from_utf8_lossy(&op.tree().name()).into_owned())
                .or_default() += 1;
            match op {
                Op::Remove(t, k) => t.remove(k).map(drop),
                Op::Put(t, k, v) => t.insert(k, v).map(drop),
            }
            .map_err(db_err)?;
        }
        for (tree, entries) in &per_tree {
            tracing::warn!(tree = %tree, entries, "repaired crash leftovers");
        }
        self.flush_blocking()?;
        Ok(n)
    }

    /// Runs every check of `scope`.
    fn check(&self, scope: Scope) -> Result<Findings> {
        let mut f = Findings::default();
        if scope != Scope::Deferred {
            self.check_apps(&mut f)?;
            self.check_users(&mut f)?;
            self.check_login_tokens(&mut f)?;
            self.check_providers(&mut f)?;
            self.check_links(&mut f)?;
            self.check_signing_keys(&mut f)?;
            self.check_settings(&mut f)?;
        }
        if scope != Scope::BeforeServing {
            self.check_tokens(&mut f)?;
            self.check_revoked_jti(&mut f)?;
        }
        Ok(f)
    }

    fn check_apps(&self, f: &mut Findings) -> Result<()> {
        let t = &self.t;
        for kv in t.apps.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let app: App = codec::decode(&v)?;
            if app.id.as_bytes() != k.as_ref() {
                f.corrupt(format!("app {} stored under another key", app.id));
            }
            if t.apps_by_client
                .get(app.client_id.as_bytes())
                .map_err(db_err)?
                .as_deref()
                != Some(k.as_ref())
            {
                f.corrupt(format!("app {} missing from apps_by_client", app.id));
            }
        }
        for kv in t.apps_by_client.iter() {
            let (client, id) = kv.map_err(db_err)?;
            match t.apps.get(&id).map_err(db_err)? {
                Some(v) if codec::decode::<App>(&v)?.client_id.as_bytes() == client.as_ref() => {}
                Some(_) => f.corrupt(format!(
                    "apps_by_client entry {} points at another app",
                    String::from_utf8_lossy(&client)
                )),
                None => f.leftover(
                    "apps_by_client entry is dangling",
                    [Op::Remove(t.apps_by_client.clone(), client.to_vec())],
                ),
            }
        }
        Ok(())
    }

    fn check_users(&self, f: &mut Findings) -> Result<()> {
        let t = &self.t;
        let mut admins = 0u64;
        for kv in t.users.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let user: User = codec::decode(&v)?;
            if user.id.as_bytes() != k.as_ref() {
                f.corrupt(format!("user {} stored under another key", user.id));
            }
            admins += u64::from(user.is_admin());
            if t.users_by_name
                .get(user.username.to_lowercase().as_bytes())
                .map_err(db_err)?
                .as_deref()
                != Some(k.as_ref())
            {
                f.corrupt(format!("user {} missing from users_by_name", user.id));
            }
            for e in &user.emails {
                if t.users_by_email
                    .get(e.address.as_bytes())
                    .map_err(db_err)?
                    .as_deref()
                    != Some(k.as_ref())
                {
                    f.corrupt(format!(
                        "user {} email missing from users_by_email",
                        user.id
                    ));
                }
            }
        }
        for (index, by_name) in [(&t.users_by_name, true), (&t.users_by_email, false)] {
            for kv in index.iter() {
                let (key, id) = kv.map_err(db_err)?;
                let Some(v) = t.users.get(&id).map_err(db_err)? else {
                    f.leftover(
                        format!("{} entry is dangling", tree_name(index)),
                        [Op::Remove(index.clone(), key.to_vec())],
                    );
                    continue;
                };
                let u: User = codec::decode(&v)?;
                let ok = if by_name {
                    u.username.to_lowercase().as_bytes() == key.as_ref()
                } else {
                    u.emails
                        .iter()
                        .any(|e| e.address.as_bytes() == key.as_ref())
                };
                if !ok {
                    f.corrupt(format!(
                        "{} entry {} points at another user",
                        tree_name(index),
                        String::from_utf8_lossy(&key)
                    ));
                }
            }
        }
        if admins != self.admin_count()? {
            f.corrupt(format!(
                "admin counter {} but {admins} admins",
                self.admin_count()?
            ));
        }
        Ok(())
    }

    /// A login token whose user is gone is dead (authentication checks the user) and swept; it is what a crash
    /// between deleting a user and removing its tokens leaves, so it is not corruption.
    fn check_login_tokens(&self, f: &mut Findings) -> Result<()> {
        let t = &self.t;
        for kv in t.login_tokens.iter() {
            let (digest, v) = kv.map_err(db_err)?;
            let tok: LoginToken = codec::decode(&v)?;
            let Ok(d) = <[u8; 32]>::try_from(digest.as_ref()) else {
                f.corrupt("login token stored under a malformed key");
                continue;
            };
            let key = super::session::by_user_key(&tok.user_id, &d);
            if !t.login_tokens_by_user.contains_key(&key).map_err(db_err)? {
                f.leftover(
                    "login token missing from login_tokens_by_user",
                    [Op::Put(t.login_tokens_by_user.clone(), key, Vec::new())],
                );
            }
        }
        for k in t.login_tokens_by_user.iter().keys() {
            let k = k.map_err(db_err)?;
            let split = k.len().saturating_sub(33);
            let (user, digest) = (&k[..split], &k[split + 1..]);
            match t.login_tokens.get(digest).map_err(db_err)? {
                Some(v) if codec::decode::<LoginToken>(&v)?.user_id.as_bytes() == user => {}
                _ => f.leftover(
                    "login_tokens_by_user entry is dangling",
                    [Op::Remove(t.login_tokens_by_user.clone(), k.to_vec())],
                ),
            }
        }
        Ok(())
    }

    fn check_providers(&self, f: &mut Findings) -> Result<()> {
        let mut provider_ids = std::collections::HashSet::new();
        for kv in self.t.providers.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let p: Provider = codec::decode(&v)?;
            if p.name.is_empty() || normalize_name(&p.name) != p.name {
                f.corrupt(format!("provider name {:?} is not normalized", p.name));
            }
            if p.service_key().as_bytes() != k.as_ref() {
                f.corrupt(format!("provider {} stored under another key", p.name));
            }
            // The id is the associated data of the provider's sealed secrets: two providers must not share one.
            if p.id.is_empty() || !provider_ids.insert(p.id.clone()) {
                f.corrupt(format!("provider {} has an empty or duplicate id", p.name));
            }
        }
        Ok(())
    }

    /// Links: each record under its id, in `links_by_user` and `links_by_provider`, and (when it signs in) in
    /// both sign-in indexes; its user and provider exist; and every index entry points back at a link that puts
    /// it there, so no index holds extra entries. The sign-in indexes being keyed by the invariants, a link
    /// missing from one (because another link holds its key) is how a broken invariant shows. A link whose user
    /// or provider is gone is what a crash between removing the user or provider and its last pass over the
    /// links leaves: it is removed with its entries.
    fn check_links(&self, f: &mut Findings) -> Result<()> {
        let t = &self.t;
        let has = |tree: &sled::Tree, key: &[u8], want: Option<&[u8]>| -> Result<bool> {
            Ok(match (tree.get(key).map_err(db_err)?, want) {
                (Some(v), Some(w)) => v.as_ref() == w,
                (found, None) => found.is_some(),
                (None, Some(_)) => false,
            })
        };
        let link_of = |id: &[u8]| -> Result<Option<Link>> {
            match t.links.get(id).map_err(db_err)? {
                Some(v) => codec::decode(&v).map(Some),
                None => Ok(None),
            }
        };
        for kv in t.links.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let l: Link = codec::decode(&v)?;
            let id = l.id.as_bytes();
            if id != k.as_ref() {
                f.corrupt(format!("link {} stored under another key", l.id));
                continue;
            }
            let user_gone = !t.users.contains_key(l.user_id.as_bytes()).map_err(db_err)?;
            let provider_gone = !t
                .providers
                .contains_key(l.provider.as_bytes())
                .map_err(db_err)?;
            if user_gone || provider_gone {
                // Its index entries that point at it are removed as dangling once the record is gone.
                let mut ops = vec![Op::Remove(t.links.clone(), k.to_vec())];
                ops.push(Op::Remove(t.links_by_user.clone(), user_key(&l)));
                ops.push(Op::Remove(t.links_by_provider.clone(), provider_key(&l)));
                for (index, key) in [
                    (&t.links_by_account, account_key(&l.provider, &l.account_id)),
                    (
                        &t.signin_by_user_provider,
                        signin_key(&l.user_id, &l.provider),
                    ),
                ] {
                    if has(index, &key, Some(id))? {
                        ops.push(Op::Remove(index.clone(), key));
                    }
                }
                f.leftover("link of a missing user or provider", ops);
                continue;
            }
            if !has(&t.links_by_user, &user_key(&l), None)? {
                f.corrupt(format!("link {} missing from links_by_user", l.id));
            }
            if !has(&t.links_by_provider, &provider_key(&l), None)? {
                f.corrupt(format!("link {} missing from links_by_provider", l.id));
            }
            if l.allow_sign_in
                && !(has(
                    &t.links_by_account,
                    &account_key(&l.provider, &l.account_id),
                    Some(id),
                )? && has(
                    &t.signin_by_user_provider,
                    &signin_key(&l.user_id, &l.provider),
                    Some(id),
                )?)
            {
                f.corrupt(format!(
                    "sign-in link {} missing from a sign-in index",
                    l.id
                ));
            }
        }
        for (index, by_user) in [(&t.links_by_user, true), (&t.links_by_provider, false)] {
            for k in index.iter().keys() {
                let k = k.map_err(db_err)?;
                let id = if by_user {
                    id_of_user_key(&k)
                } else {
                    id_of_provider_key(&k)
                };
                let Some(id) = id else {
                    f.corrupt(format!("{} has a malformed key", tree_name(index)));
                    continue;
                };
                let back = match link_of(id)? {
                    Some(l) if by_user => user_key(&l) == k.as_ref(),
                    Some(l) => provider_key(&l) == k.as_ref(),
                    None => false,
                };
                if !back {
                    f.leftover(
                        format!("{} entry is dangling", tree_name(index)),
                        [Op::Remove(index.clone(), k.to_vec())],
                    );
                }
            }
        }
        for (index, of_account) in [
            (&t.links_by_account, true),
            (&t.signin_by_user_provider, false),
        ] {
            for kv in index.iter() {
                let (k, id) = kv.map_err(db_err)?;
                match link_of(&id)? {
                    None => f.leftover(
                        format!("{} entry is dangling", tree_name(index)),
                        [Op::Remove(index.clone(), k.to_vec())],
                    ),
                    Some(l) => {
                        let claimed = if of_account {
                            account_key(&l.provider, &l.account_id)
                        } else {
                            signin_key(&l.user_id, &l.provider)
                        };
                        // The link is there but does not claim the key: an index that disagrees with its record.
                        if !l.allow_sign_in || claimed != k.as_ref() {
                            f.corrupt(format!(
                                "{} entry {} points at a link that does not claim it",
                                tree_name(index),
                                String::from_utf8_lossy(&k)
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) fn tree_name(tree: &sled::Tree) -> String {
    String::from_utf8_lossy(&tree.name()).into_owned()
}

#[cfg(test)]
mod tests {
    use crate::store::sled::app::tests::app;
    use crate::store::sled::token::tests::{first_tokens, put_code};
    use crate::store::sled::user::tests::user;
    use crate::store::testing::temp_store;
    use crate::store::Store;

    const FAMILY: [u8; 16] = [9; 16];

    /// A store with an admin, user u1, app c1 and one grant of u1 to c1 (access [1; 32], refresh [2; 32]).
    async fn granted() -> (tempfile::TempDir, Store) {
        let (d, s) = temp_store();
        s.create_user(&user("a1", "root", true)).await.unwrap();
        s.create_user(&user("u1", "jane", false)).await.unwrap();
        s.create_app(&app("a1", "c1")).await.unwrap();
        put_code(&s, 7, "c1", "u1").await;
        s.redeem_code(&[7; 32], "c1", 0, FAMILY, Some(first_tokens(1, 2)))
            .await
            .unwrap();
        s.verify().unwrap();
        (d, s)
    }

    /// Regression: a crash between the sweep's two writes (the token, then its index entry) left a dangling
    /// `tokens_by_family` entry, and the store refused to start. It is a leftover: `repair` removes it, and says so.
    #[tokio::test]
    async fn a_dangling_index_entry_is_repaired_not_fatal() {
        let (_d, s) = granted().await;
        s.t.tokens.remove([1u8; 32]).unwrap();
        assert!(s.verify().is_err(), "verify still reports it");
        assert_eq!(s.repair().unwrap(), 1);
        s.verify().unwrap();
        assert!(
            s.active_token(&[2; 32], 10).await.unwrap().is_some(),
            "the rest is untouched"
        );
        assert_eq!(s.repair().unwrap(), 0, "nothing left to repair");
    }

    /// Older sweeps removed a family's owner index entries before the family: the entries are derived from the
    /// record, so they are put back; a token whose family is gone is dead and goes.
    #[tokio::test]
    async fn derivable_entries_are_put_back_and_dead_records_removed() {
        let (_d, s) = granted().await;
        let mut owner = b"c1\0".to_vec();
        owner.extend_from_slice(&FAMILY);
        s.t.families_by_client.remove(&owner).unwrap();
        s.repair().unwrap();
        assert!(s.t.families_by_client.contains_key(&owner).unwrap());

        s.t.families.remove(FAMILY).unwrap();
        // Both tokens with their entries, and the family's two owner entries.
        assert_eq!(s.repair().unwrap(), 6);
        assert!(s.token_record(&[1; 32]).await.unwrap().is_none());
        assert!(s.t.tokens_by_family.is_empty());
        s.verify().unwrap();
    }

    /// Deleting a user (or an app) revokes its grants right after the deletion commits: a crash in between left
    /// the grant live. `repair` revokes it.
    #[tokio::test]
    async fn a_deleted_users_grant_is_revoked_by_repair() {
        let (_d, s) = granted().await;
        s.delete_user("u1").await.unwrap();
        assert!(
            s.active_token(&[1; 32], 10).await.unwrap().is_some(),
            "the crash window"
        );
        assert!(s.verify().is_err());
        s.repair().unwrap();
        assert!(s.active_token(&[1; 32], 10).await.unwrap().is_none());
        assert!(s.active_token(&[2; 32], 10).await.unwrap().is_none());
    }

    /// The start leaves the token trees to the deferred check; meanwhile a grant whose user is gone (a crash
    /// between deleting the user and revoking its grants) is already dead to every read, then revoked by the check.
    #[tokio::test]
    async fn a_deleted_users_grant_is_dead_until_the_deferred_check_revokes_it() {
        let (_d, s) = granted().await;
        s.delete_user("u1").await.unwrap();
        assert_eq!(s.repair_before_serving().unwrap(), 0);
        assert!(s.active_token(&[1; 32], 10).await.unwrap().is_none());
        assert!(s.active_token(&[2; 32], 10).await.unwrap().is_none());
        assert_eq!(s.check_deferred().unwrap(), 1);
        assert!(s.active_token(&[1; 32], 10).await.unwrap().is_none());
        s.verify().unwrap();
    }

    /// Corruption in a token tree found after start is recorded: the next start refuses it.
    #[tokio::test]
    async fn corruption_found_after_start_refuses_the_next_start() {
        let (_d, s) = granted().await;
        s.t.tokens
            .insert([1u8; 32], b"\x01garbage".as_slice())
            .unwrap();
        assert_eq!(
            s.repair_before_serving().unwrap(),
            0,
            "not read before serving"
        );
        assert!(
            s.active_token(&[1; 32], 10).await.unwrap().is_none(),
            "reads as absent"
        );
        assert!(s.check_deferred().is_err());
        assert!(s.problem().unwrap().contains("corrupt record"));
        match s.repair_before_serving() {
            Err(crate::error::Error::Internal(e)) => assert!(e.contains("corrupt record"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    /// Corruption is refused, and nothing is written: not even the leftovers' repairs.
    #[tokio::test]
    async fn corruption_is_refused_and_nothing_changes() {
        let (_d, s) = granted().await;
        s.t.tokens.remove([1u8; 32]).unwrap();
        s.t.apps.insert("a1", b"\x01garbage".as_slice()).unwrap();
        assert!(s.repair().is_err());
        assert_eq!(s.t.tokens_by_family.len(), 2, "the leftover is still there");
    }
}
