//! User ↔ provider links (docs/endpoints.md#links) and their point-lookup indexes:
//!
//! - `links`: link id → [`Link`].
//! - `links_by_user`: user id ‖ 0 ‖ created_at (big-endian, sign bit flipped) ‖ link id → ∅. A prefix scan yields a
//!   user's links in creation order, and deleting a user finds its links without a full scan.
//! - `links_by_provider`: service key ‖ 0 ‖ link id → ∅, so removing a provider finds its links without a full
//!   scan (connected-only links are in no other per-provider index).
//! - `links_by_account`: service key ‖ 0 ‖ account id → id of the ONE `allow_sign_in` link of that upstream
//!   account. Federated sign-in resolves an upstream identity with one point lookup here.
//! - `signin_by_user_provider`: user id ‖ 0 ‖ service key → id of the user's ONE `allow_sign_in` link to that
//!   provider.
//!
//! The two sign-in indexes are the invariants themselves: a transaction that would insert a second entry under
//! one key aborts with a `Conflict`, and sled transactions serialize, so of concurrent claims exactly one wins.
//! User ids and service keys never contain a 0 byte, so the first 0 of a key ends its first component.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::{abort, codec, db_err, decode_or_abort, txn_result, Sled};
use crate::clock::Millis;
use crate::error::{Entity, Error, Field, Result};
use crate::model::{Link, Provider};

type Tx<T> = Result<T, ConflictableTransactionError<Error>>;

/// `created_at` as bytes that sort like the number (negative before positive).
fn order_bytes(t: Millis) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i == 1 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

pub(super) fn user_prefix(user_id: &str) -> Vec<u8> {
    join(&[user_id.as_bytes(), b""])
}

pub(super) fn user_key(link: &Link) -> Vec<u8> {
    join(&[
        link.user_id.as_bytes(),
        &order_bytes(link.created_at),
        link.id.as_bytes(),
    ])
}

pub(super) fn provider_prefix(provider: &str) -> Vec<u8> {
    join(&[provider.as_bytes(), b""])
}

pub(super) fn provider_key(link: &Link) -> Vec<u8> {
    join(&[link.provider.as_bytes(), link.id.as_bytes()])
}

pub(super) fn account_key(provider: &str, account_id: &str) -> Vec<u8> {
    join(&[provider.as_bytes(), account_id.as_bytes()])
}

pub(super) fn signin_key(user_id: &str, provider: &str) -> Vec<u8> {
    join(&[user_id.as_bytes(), provider.as_bytes()])
}

/// The link id at the end of a `links_by_user` key (after the user's prefix and 8 order bytes).
pub(super) fn id_of_user_key(key: &[u8]) -> Option<&[u8]> {
    let start = key.iter().position(|&b| b == 0)? + 1 + 8;
    key.get(start..)
}

/// The link id at the end of a `links_by_provider` key.
pub(super) fn id_of_provider_key(key: &[u8]) -> Option<&[u8]> {
    let start = key.iter().position(|&b| b == 0)? + 1;
    key.get(start..)
}

/// The link trees as one transaction sees them; every write of a link and its index entries goes through here.
pub(super) struct LinkTx<'a> {
    pub links: &'a TransactionalTree,
    pub by_user: &'a TransactionalTree,
    pub by_provider: &'a TransactionalTree,
    pub by_account: &'a TransactionalTree,
    pub signin: &'a TransactionalTree,
}

impl LinkTx<'_> {
    fn get(&self, id: &str) -> Tx<Option<Link>> {
        match self.links.get(id.as_bytes())? {
            Some(b) => decode_or_abort(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Claims the sign-in keys of `link` (when it signs in), failing on a key held by another link.
    fn claim_sign_in(&self, link: &Link) -> Tx<()> {
        if !link.allow_sign_in {
            return Ok(());
        }
        let id = link.id.as_bytes();
        let account = account_key(&link.provider, &link.account_id);
        if self.by_account.get(&account)?.is_some_and(|v| v != id) {
            return abort(Error::Conflict {
                field: Field::AccountId,
                value: link.account_id.clone(),
            });
        }
        let signin = signin_key(&link.user_id, &link.provider);
        if self.signin.get(&signin)?.is_some_and(|v| v != id) {
            return abort(Error::Conflict {
                field: Field::Provider,
                value: link.provider.clone(),
            });
        }
        self.by_account.insert(account, id)?;
        self.signin.insert(signin, id)?;
        Ok(())
    }

    /// Gives up the sign-in keys of `link`, leaving alone any that another link holds.
    fn release_sign_in(&self, link: &Link) -> Tx<()> {
        if !link.allow_sign_in {
            return Ok(());
        }
        let id = link.id.as_bytes();
        let account = account_key(&link.provider, &link.account_id);
        if self.by_account.get(&account)?.is_some_and(|v| v == id) {
            self.by_account.remove(account)?;
        }
        let signin = signin_key(&link.user_id, &link.provider);
        if self.signin.get(&signin)?.is_some_and(|v| v == id) {
            self.signin.remove(signin)?;
        }
        Ok(())
    }

    fn insert(&self, link: &Link) -> Tx<()> {
        if self.links.get(link.id.as_bytes())?.is_some() {
            return abort(Error::Conflict {
                field: Field::Id,
                value: link.id.clone(),
            });
        }
        self.claim_sign_in(link)?;
        self.links.insert(link.id.as_bytes(), codec::encode(link))?;
        self.by_user.insert(user_key(link), &[][..])?;
        self.by_provider.insert(provider_key(link), &[][..])?;
        Ok(())
    }

    /// Removes the link and its index entries; `None` when there is no such link.
    pub(super) fn remove(&self, id: &str) -> Tx<Option<Link>> {
        let Some(link) = self.get(id)? else {
            return Ok(None);
        };
        self.release_sign_in(&link)?;
        self.links.remove(id.as_bytes())?;
        self.by_user.remove(user_key(&link))?;
        self.by_provider.remove(provider_key(&link))?;
        Ok(Some(link))
    }
}

impl Sled {
    pub async fn create_link(&self, link: &Link) -> Result<()> {
        let t = &self.t;
        let r = (
            &t.providers,
            &t.users,
            &t.links,
            &t.links_by_user,
            &t.links_by_provider,
            &t.links_by_account,
            &t.signin_by_user_provider,
        )
            .transaction(
                |(providers, users, links, by_user, by_provider, by_account, signin)| {
                    let enabled = match providers.get(link.provider.as_bytes())? {
                        Some(b) => decode_or_abort::<Provider>(&b)?.enabled,
                        None => false,
                    };
                    if !enabled {
                        return abort(Error::NotFound(Entity::Provider));
                    }
                    if users.get(link.user_id.as_bytes())?.is_none() {
                        return abort(Error::NotFound(Entity::User));
                    }
                    LinkTx {
                        links,
                        by_user,
                        by_provider,
                        by_account,
                        signin,
                    }
                    .insert(link)
                },
            );
        txn_result(r)?;
        self.durable().await
    }

    pub fn get_link(&self, id: &str) -> Result<Option<Link>> {
        match self.t.links.get(id.as_bytes()).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    fn link_by_index(&self, index: &sled::Tree, key: &[u8]) -> Result<Option<Link>> {
        match index.get(key).map_err(db_err)? {
            Some(id) => match self.t.links.get(&id).map_err(db_err)? {
                Some(b) => codec::decode(&b).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub fn sign_in_link(&self, provider: &str, account_id: &str) -> Result<Option<Link>> {
        self.link_by_index(&self.t.links_by_account, &account_key(provider, account_id))
    }

    pub fn sign_in_link_of_user(&self, user_id: &str, provider: &str) -> Result<Option<Link>> {
        self.link_by_index(
            &self.t.signin_by_user_provider,
            &signin_key(user_id, provider),
        )
    }

    /// Ids of the user's links, in creation order.
    fn link_ids_by_prefix(
        &self,
        index: &sled::Tree,
        prefix: &[u8],
        id_of: fn(&[u8]) -> Option<&[u8]>,
    ) -> Result<Vec<String>> {
        index
            .scan_prefix(prefix)
            .keys()
            .map(|k| {
                let k = k.map_err(db_err)?;
                id_of(&k)
                    .and_then(|id| std::str::from_utf8(id).ok())
                    .map(str::to_owned)
                    .ok_or_else(|| Error::internal("bad link index key"))
            })
            .collect()
    }

    pub fn links_of_user(&self, user_id: &str) -> Result<Vec<Link>> {
        let ids =
            self.link_ids_by_prefix(&self.t.links_by_user, &user_prefix(user_id), id_of_user_key)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Gone between the index read and this one: deleted meanwhile, so not listed.
            if let Some(l) = self.get_link(&id)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    pub fn newest_link_time(&self, user_id: &str) -> Result<Option<Millis>> {
        let prefix = user_prefix(user_id);
        match self.t.links_by_user.scan_prefix(&prefix).keys().next_back() {
            Some(k) => {
                let k = k.map_err(db_err)?;
                let bytes: [u8; 8] = k
                    .get(prefix.len()..prefix.len() + 8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| Error::internal("bad link index key"))?;
                Ok(Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as Millis))
            }
            None => Ok(None),
        }
    }

    pub fn next_link_time(&self, user_id: &str, now: Millis) -> Result<Millis> {
        use std::sync::atomic::Ordering;
        let floor = match self.newest_link_time(user_id)? {
            Some(t) => now.max(t.saturating_add(1)),
            None => now,
        };
        let prev = self
            .link_clock
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(floor.max(last.saturating_add(1)))
            })
            .unwrap_or(i64::MIN);
        Ok(floor.max(prev.saturating_add(1)))
    }

    pub fn list_links(&self) -> Result<Vec<Link>> {
        let mut all = self
            .t
            .links
            .iter()
            .values()
            .map(|v| codec::decode::<Link>(&v.map_err(db_err)?))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    pub async fn update_link(
        &self,
        id: &str,
        change: impl Fn(&mut Link) -> Result<()>,
    ) -> Result<Link> {
        let t = &self.t;
        let r = (
            &t.links,
            &t.links_by_user,
            &t.links_by_provider,
            &t.links_by_account,
            &t.signin_by_user_provider,
        )
            .transaction(|(links, by_user, by_provider, by_account, signin)| {
                let tx = LinkTx {
                    links,
                    by_user,
                    by_provider,
                    by_account,
                    signin,
                };
                let Some(old) = tx.get(id)? else {
                    return abort(Error::NotFound(Entity::Link));
                };
                let mut new = old.clone();
                change(&mut new).map_err(ConflictableTransactionError::Abort)?;
                if (&new.id, &new.user_id, &new.provider, new.created_at)
                    != (&old.id, &old.user_id, &old.provider, old.created_at)
                {
                    return abort(Error::internal(
                        "an update may not change a link's id, user, provider or creation time",
                    ));
                }
                if (new.allow_sign_in, &new.account_id) != (old.allow_sign_in, &old.account_id) {
                    tx.release_sign_in(&old)?;
                    tx.claim_sign_in(&new)?;
                }
                links.insert(id.as_bytes(), codec::encode(&new))?;
                Ok(new)
            });
        let link = txn_result(r)?;
        self.durable().await?;
        Ok(link)
    }

    pub async fn delete_link(&self, id: &str) -> Result<Link> {
        let link = self
            .remove_links(std::iter::once(id.to_owned()))?
            .pop()
            .ok_or(Error::NotFound(Entity::Link))?;
        self.durable().await?;
        Ok(link)
    }

    /// Removes the given links, one transaction each; returns those that existed. Not flushed.
    fn remove_links(&self, ids: impl IntoIterator<Item = String>) -> Result<Vec<Link>> {
        let t = &self.t;
        let mut removed = Vec::new();
        for id in ids {
            let r = (
                &t.links,
                &t.links_by_user,
                &t.links_by_provider,
                &t.links_by_account,
                &t.signin_by_user_provider,
            )
                .transaction(|(links, by_user, by_provider, by_account, signin)| {
                    LinkTx {
                        links,
                        by_user,
                        by_provider,
                        by_account,
                        signin,
                    }
                    .remove(&id)
                });
            removed.extend(txn_result(r)?);
        }
        Ok(removed)
    }

    /// Ids of the user's links, for `delete_user` to remove in its own transaction.
    pub(super) fn link_ids_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        self.link_ids_by_prefix(&self.t.links_by_user, &user_prefix(user_id), id_of_user_key)
    }

    /// Removes every link of a user (not flushed: the caller flushes). `delete_user` removes the links it saw
    /// in its own transaction; this pass catches any created between that scan and the commit (after the
    /// commit none can be created: `create_link` reads the user).
    pub(crate) fn remove_links_of_user(&self, user_id: &str) -> Result<usize> {
        let ids = self.link_ids_of_user(user_id)?;
        Ok(self.remove_links(ids)?.len())
    }

    /// Removes every link of the provider with service key `key` (not flushed: the caller flushes).
    pub(crate) fn remove_provider_links(&self, key: &str) -> Result<usize> {
        let ids = self.link_ids_by_prefix(
            &self.t.links_by_provider,
            &provider_prefix(key),
            id_of_provider_key,
        )?;
        Ok(self.remove_links(ids)?.len())
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
pub(crate) mod tests;
