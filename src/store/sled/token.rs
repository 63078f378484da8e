//! Authorization codes, access and refresh tokens, and grant families.
//!
//! - `codes`: sha256(code) → [`CodeRecord`]. Redemption flips `redeemed` and writes the family it starts with its
//!   first tokens in one transaction, so of two concurrent redemptions exactly one wins, and a replay (the record
//!   stays until it expires) always finds that family and revokes it.
//! - `tokens`: sha256(token) → [`TokenRecord`] (a refresh token's names its sibling, the access token issued with
//!   it, which its rotation removes); `tokens_by_family`: family ‖ sha256 → ∅.
//! - `families`: family id → [`FamilyRecord`]: one per code redemption (client_credentials tokens have none: see
//!   [`Lineage`]; families of such grants written by older releases are still honoured).
//!   Revoking a family is one flag write, so it takes effect at once for every token in it; the sweeper removes
//!   the dead tokens later.
//! - `families_by_client` / `families_by_user`: owner ‖ 0 ‖ family → ∅, to revoke everything of an app or user.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::sweep::{scan_batch, Batch};
use super::verify::{tree_name, Findings, Op};
use super::{abort, codec, db_err, decode_or_abort, txn_result, Sled};
use crate::clock::Millis;
use crate::error::{Entity, Error, Result};
use crate::store::token::{
    CodeRecord, Digest, FamilyId, FamilyRecord, FirstTokens, Lineage, NewToken, Redeemed, Rotated,
    TokenKind, TokenRecord,
};

pub(super) fn owner_key(owner: &str, family: &FamilyId) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.len() + 17);
    k.extend_from_slice(owner.as_bytes());
    k.push(0);
    k.extend_from_slice(family);
    k
}

fn family_token_key(family: &FamilyId, digest: &Digest) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(family);
    k.extend_from_slice(digest);
    k
}

type Tx<T> = Result<T, ConflictableTransactionError<Error>>;

fn revoke_in(families: &TransactionalTree, family: &FamilyId) -> Tx<()> {
    if let Some(b) = families.get(family)? {
        let mut f: FamilyRecord = decode_or_abort(&b)?;
        if !f.revoked {
            f.revoked = true;
            families.insert(&family[..], codec::encode(&f))?;
        }
    }
    Ok(())
}

/// Removes the access token that was issued together with refresh token `refresh` (its record names it; records
/// written before that link existed name none).
fn revoke_sibling_access(
    tokens: &TransactionalTree,
    by_family: &TransactionalTree,
    family: &FamilyId,
    refresh: &TokenRecord,
) -> Tx<()> {
    if let Some(access) = refresh.sibling {
        tokens.remove(&access[..])?;
        by_family.remove(family_token_key(family, &access))?;
    }
    Ok(())
}

/// Whether the client exists and is active, read inside the transaction so a concurrent deactivation or
/// deletion conflicts with (and so serializes against) the issuance.
fn client_active(
    by_client: &TransactionalTree,
    apps: &TransactionalTree,
    client_id: &str,
) -> Tx<bool> {
    let Some(id) = by_client.get(client_id.as_bytes())? else {
        return Ok(false);
    };
    match apps.get(id)? {
        Some(b) => Ok(decode_or_abort::<crate::model::App>(&b)?.active),
        None => Ok(false),
    }
}

/// A token-tree record, or `None` when it does not decode: those trees are checked after the server answers
/// (`verify.rs`), so a request may read a damaged record first; it reads as absent, never as a usable token.
fn readable<T: codec::Record>(bytes: &[u8]) -> Option<T> {
    codec::decode(bytes)
        .map_err(|e| tracing::error!(error = ?e, "an undecodable token record reads as absent"))
        .ok()
}

/// Whether a token of family `f` (its stored bytes, `None` when the record is gone) is dead at `now`.
fn token_dead(f: &FamilyRecord, token: Option<&[u8]>, now: Millis) -> Result<bool> {
    Ok(match token {
        Some(b) => f.revoked || codec::decode::<TokenRecord>(b)?.expires_at <= now,
        None => true,
    })
}

impl Sled {
    pub async fn put_code(&self, digest: &Digest, code: &CodeRecord) -> Result<()> {
        self.t
            .codes
            .insert(digest, codec::encode(code))
            .map_err(db_err)?;
        self.durable().await
    }

    pub fn peek_code(&self, digest: &Digest) -> Result<Option<CodeRecord>> {
        match self.t.codes.get(digest).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    pub fn family(&self, id: &FamilyId) -> Result<Option<FamilyRecord>> {
        match self.t.families.get(id).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    pub fn token_record(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        Ok(self
            .t
            .tokens
            .get(digest)
            .map_err(db_err)?
            .and_then(|b| readable(&b)))
    }

    pub async fn redeem_code(
        &self,
        digest: &Digest,
        client_id: &str,
        now: Millis,
        family: FamilyId,
        tokens: Option<FirstTokens>,
    ) -> Result<Redeemed> {
        let t = &self.t;
        let r = (
            &t.codes,
            &t.apps_by_client,
            &t.apps,
            &t.users,
            &t.families,
            &t.families_by_client,
            &t.families_by_user,
            &t.tokens,
            &t.tokens_by_family,
        )
            .transaction(
                |(
                    codes,
                    apps_by_client,
                    apps,
                    users,
                    families,
                    by_client,
                    by_user,
                    tokens_t,
                    by_family,
                )| {
                    let Some(b) = codes.get(digest)? else {
                        return Ok(Redeemed::Unknown);
                    };
                    let mut code: CodeRecord = decode_or_abort(&b)?;
                    if code.grant.client_id != client_id {
                        return Ok(Redeemed::OtherClient);
                    }
                    if let Some(f) = code.redeemed {
                        revoke_in(families, &f)?;
                        return Ok(Redeemed::Replayed);
                    }
                    if code.expires_at <= now {
                        return Ok(Redeemed::Expired);
                    }
                    code.redeemed = Some(family);
                    codes.insert(&digest[..], codec::encode(&code))?;
                    let Some(first) = tokens else {
                        return Ok(Redeemed::Ok);
                    };
                    if !client_active(apps_by_client, apps, client_id)? {
                        return abort(Error::NotFound(Entity::App));
                    }
                    let g = &code.grant;
                    if users.get(g.owner_id.as_bytes())?.is_none() {
                        return abort(Error::NotFound(Entity::User));
                    }
                    let fam = FamilyRecord::started_by(g, now);
                    families.insert(&family[..], codec::encode(&fam))?;
                    by_client.insert(owner_key(client_id, &family), &[][..])?;
                    by_user.insert(owner_key(&g.owner_id, &family), &[][..])?;
                    let (access_rec, refresh_rec) = TokenRecord::first_of(g, family, now, &first);
                    let access = first.access.digest;
                    tokens_t.insert(&access[..], codec::encode(&access_rec))?;
                    by_family.insert(family_token_key(&family, &access), &[][..])?;
                    if let (Some(r), Some(rec)) = (first.refresh, refresh_rec) {
                        tokens_t.insert(&r.digest[..], codec::encode(&rec))?;
                        by_family.insert(family_token_key(&family, &r.digest), &[][..])?;
                    }
                    Ok(Redeemed::Ok)
                },
            );
        let redeemed = txn_result(r)?;
        let wrote = matches!(redeemed, Redeemed::Ok | Redeemed::Replayed);
        if wrote {
            self.durable().await?;
        }
        Ok(redeemed)
    }

    pub async fn put_client_token(&self, digest: &Digest, rec: &TokenRecord) -> Result<()> {
        debug_assert!(matches!(rec.lineage, Lineage::Epoch(_)));
        self.t
            .tokens
            .insert(digest, codec::encode(rec))
            .map_err(db_err)?;
        self.durable().await
    }

    /// Whether a family-less (client_credentials) token's app still honours it.
    fn client_token_alive(&self, rec: &TokenRecord, epoch: u64) -> Result<bool> {
        Ok(self
            .client_app(&rec.client_id)?
            .is_some_and(|app| app.active && app.token_epoch == epoch))
    }

    pub async fn rotate_refresh(
        &self,
        old: &Digest,
        client_id: &str,
        scope: &str,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
    ) -> Result<Rotated> {
        let t = &self.t;
        let r = (
            &t.apps_by_client,
            &t.apps,
            &t.families,
            &t.tokens,
            &t.tokens_by_family,
        )
            .transaction(|(apps_by_client, apps, families, tokens, by_family)| {
                let Some(b) = tokens.get(old)? else {
                    return Ok(Rotated::Invalid);
                };
                let mut rec: TokenRecord = decode_or_abort(&b)?;
                let Lineage::Family(family) = rec.lineage else {
                    return Ok(Rotated::Invalid);
                };
                if rec.kind != TokenKind::Refresh || rec.client_id != client_id {
                    return Ok(Rotated::Invalid);
                }
                if rec.rotated {
                    revoke_in(families, &family)?;
                    return Ok(Rotated::Replayed);
                }
                let alive = match families.get(family)? {
                    Some(f) => !decode_or_abort::<FamilyRecord>(&f)?.revoked,
                    None => false,
                };
                if !alive
                    || rec.expires_at <= now
                    || !client_active(apps_by_client, apps, client_id)?
                    || (self.deferred_pending()
                        && !self
                            .family_alive(&family)
                            .map_err(ConflictableTransactionError::Abort)?)
                {
                    return Ok(Rotated::Invalid);
                }
                rec.rotated = true;
                tokens.insert(&old[..], codec::encode(&rec))?;
                revoke_sibling_access(tokens, by_family, &family, &rec)?;
                let (next, next_refresh) = rec.successors(scope, now, access, refresh);
                tokens.insert(&access.digest[..], codec::encode(&next))?;
                by_family.insert(family_token_key(&family, &access.digest), &[][..])?;
                if let (Some(r), Some(next_refresh)) = (refresh, next_refresh) {
                    tokens.insert(&r.digest[..], codec::encode(&next_refresh))?;
                    by_family.insert(family_token_key(&family, &r.digest), &[][..])?;
                }
                Ok(Rotated::Ok)
            });
        let rotated = txn_result(r)?;
        if !matches!(rotated, Rotated::Invalid) {
            self.durable().await?;
        }
        Ok(rotated)
    }

    pub fn active_token(&self, digest: &Digest, now: Millis) -> Result<Option<TokenRecord>> {
        self.live_token(digest, now, None)
    }

    pub fn active_token_of(
        &self,
        digest: &Digest,
        now: Millis,
        app: &crate::model::App,
    ) -> Result<Option<TokenRecord>> {
        self.live_token(digest, now, Some(app))
    }

    fn live_token(
        &self,
        digest: &Digest,
        now: Millis,
        app: Option<&crate::model::App>,
    ) -> Result<Option<TokenRecord>> {
        let Some(rec) = self.token_record(digest)? else {
            return Ok(None);
        };
        if rec.expires_at <= now || rec.rotated || app.is_some_and(|a| a.client_id != rec.client_id)
        {
            return Ok(None);
        }
        let alive = match rec.lineage {
            Lineage::Epoch(epoch) => match app {
                Some(a) => a.active && a.token_epoch == epoch,
                None => self.client_token_alive(&rec, epoch)?,
            },
            Lineage::Family(family) => self.family_alive(&family)?,
        };
        Ok(alive.then_some(rec))
    }

    /// Whether a family's tokens are usable: it is there, decodes and is not revoked, and, until the deferred
    /// check has revoked what a crash left unrevoked (`verify.rs`), its owners are alive.
    fn family_alive(&self, family: &FamilyId) -> Result<bool> {
        let Some(f) = self.t.families.get(family).map_err(db_err)? else {
            return Ok(false);
        };
        Ok(match readable::<FamilyRecord>(&f) {
            Some(f) => !f.revoked && (!self.deferred_pending() || self.family_owners_alive(&f)?),
            None => false,
        })
    }

    pub async fn revoke_token(&self, digest: &Digest, client_id: &str) -> Result<bool> {
        let t = &self.t;
        let r = (&t.families, &t.tokens, &t.tokens_by_family).transaction(
            |(families, tokens, by_family)| {
                let Some(b) = tokens.get(digest)? else {
                    return Ok(false);
                };
                let rec: TokenRecord = decode_or_abort(&b)?;
                if rec.client_id != client_id {
                    return Ok(false);
                }
                match (rec.kind, rec.lineage) {
                    (TokenKind::Refresh, Lineage::Family(f)) => revoke_in(families, &f)?,
                    (TokenKind::Refresh, Lineage::Epoch(_)) => return Ok(false),
                    (TokenKind::Access, lineage) => {
                        tokens.remove(&digest[..])?;
                        if let Lineage::Family(f) = lineage {
                            by_family.remove(family_token_key(&f, digest))?;
                        }
                    }
                }
                Ok(true)
            },
        );
        let revoked = txn_result(r)?;
        if revoked {
            self.durable().await?;
        }
        Ok(revoked)
    }

    /// Revokes every family in `index` under `owner`; returns once the revocations are durable.
    async fn revoke_by_owner(&self, index: &sled::Tree, owner: &str) -> Result<usize> {
        let mut prefix = owner.as_bytes().to_vec();
        prefix.push(0);
        let mut n = 0;
        for k in index.scan_prefix(&prefix).keys() {
            let k = k.map_err(db_err)?;
            let fam: FamilyId = k[prefix.len()..]
                .try_into()
                .map_err(|_| Error::internal("bad family index key"))?;
            let r = self
                .t
                .families
                .transaction(|families| revoke_in(families, &fam));
            txn_result(r)?;
            n += 1;
        }
        if n > 0 {
            self.durable().await?;
        }
        Ok(n)
    }

    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<usize> {
        self.revoke_by_owner(&self.t.families_by_client, client_id)
            .await
    }

    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<usize> {
        self.revoke_by_owner(&self.t.families_by_user, user_id)
            .await
    }

    /// One batch of expired codes after `after` (see [`super::sweep`]); codes are single keys.
    pub(super) fn sweep_codes(&self, now: Millis, after: Option<&[u8]>) -> Result<Batch> {
        let codes = &self.t.codes;
        scan_batch(codes, after, |k, v| {
            if codec::decode::<CodeRecord>(&v)?.expires_at > now {
                return Ok(0);
            }
            codes.remove(k).map_err(db_err)?;
            Ok(1)
        })
    }

    /// One batch of `tokens` after `after`: removes the family-less client_credentials tokens that expired or
    /// whose app no longer honours them (single keys; tokens of families go with their family, below).
    pub(super) fn sweep_client_tokens(&self, now: Millis, after: Option<&[u8]>) -> Result<Batch> {
        let tokens = &self.t.tokens;
        scan_batch(tokens, after, |k, v| {
            let rec: TokenRecord = codec::decode(&v)?;
            let Lineage::Epoch(epoch) = rec.lineage else {
                return Ok(0);
            };
            if rec.expires_at > now && self.client_token_alive(&rec, epoch)? {
                return Ok(0);
            }
            tokens.remove(k).map_err(db_err)?;
            Ok(1)
        })
    }

    /// One batch of `families` after `after`: the tokens and indexes of revoked or emptied families. Every
    /// removal that touches more than one key is one transaction (see [`Sled::sweep_family`]), so a crash at any
    /// moment leaves no dangling index entry.
    pub(super) fn sweep_families(&self, now: Millis, after: Option<&[u8]>) -> Result<Batch> {
        scan_batch(&self.t.families, after, |k, _| {
            let fam: FamilyId = k
                .as_ref()
                .try_into()
                .map_err(|_| Error::internal("bad family key"))?;
            self.sweep_family(&fam, now)
        })
    }

    /// Removes the dead tokens of one family with their index entries, and the family with its owner entries once
    /// no token is left, in one transaction (the family's tokens are found by a prefix scan first: a sled
    /// transaction cannot scan). A token added to the family after the scan would outlive its family only if it
    /// were issued into a family whose tokens are all dead, which rotation refuses; `repair` removes such a token
    /// anyway (a token of a missing family is not live). Returns how many tokens went.
    fn sweep_family(&self, fam: &FamilyId, now: Millis) -> Result<usize> {
        let t = &self.t;
        let keys = t
            .tokens_by_family
            .scan_prefix(fam)
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        // Plain reads first: the transaction (a process-wide lock) runs only for a family with work to do.
        let Some(b) = t.families.get(fam).map_err(db_err)? else {
            return Ok(0);
        };
        let f: FamilyRecord = codec::decode(&b)?;
        let mut idle = !keys.is_empty();
        for k in &keys {
            if token_dead(&f, t.tokens.get(&k[16..]).map_err(db_err)?.as_deref(), now)? {
                idle = false;
                break;
            }
        }
        if idle {
            return Ok(0);
        }
        let r = (
            &t.families,
            &t.families_by_client,
            &t.families_by_user,
            &t.tokens,
            &t.tokens_by_family,
        )
            .transaction(|(families, by_client, by_user, tokens, by_family)| {
                let Some(b) = families.get(fam)? else {
                    return Ok(0);
                };
                let f: FamilyRecord = decode_or_abort(&b)?;
                let (mut dead, mut live) = (0, 0);
                for k in &keys {
                    let digest = &k[16..];
                    let token = tokens.get(digest)?;
                    if token_dead(&f, token.as_deref(), now)
                        .map_err(ConflictableTransactionError::Abort)?
                    {
                        tokens.remove(digest)?;
                        by_family.remove(k)?;
                        dead += 1;
                    } else {
                        live += 1;
                    }
                }
                if live == 0 {
                    by_client.remove(owner_key(&f.client_id, fam))?;
                    if let Some(user) = f.subject.user_id() {
                        by_user.remove(owner_key(user, fam))?;
                    }
                    families.remove(&fam[..])?;
                }
                Ok(dead)
            });
        txn_result(r)
    }

    /// The token checks of `verify` and `repair` (see `verify.rs` for the classification).
    pub(super) fn check_tokens(&self, f: &mut Findings) -> Result<()> {
        let t = &self.t;
        for kv in t.tokens.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let rec: TokenRecord = codec::decode(&v)?;
            let Lineage::Family(family) = rec.lineage else {
                continue; // a family-less client_credentials token has no index entries
            };
            let Ok(digest) = Digest::try_from(k.as_ref()) else {
                f.corrupt("token stored under a malformed key");
                continue;
            };
            let entry = family_token_key(&family, &digest);
            if !t.families.contains_key(family).map_err(db_err)? {
                // Not live (a token needs its family): what a crash in an older sweep left.
                f.leftover(
                    "token of a missing family",
                    [
                        Op::Remove(t.tokens.clone(), k.to_vec()),
                        Op::Remove(t.tokens_by_family.clone(), entry),
                    ],
                );
            } else if !t.tokens_by_family.contains_key(&entry).map_err(db_err)? {
                f.leftover(
                    "token missing from tokens_by_family",
                    [Op::Put(t.tokens_by_family.clone(), entry, Vec::new())],
                );
            }
        }
        for kv in t.tokens_by_family.iter() {
            let (k, v) = kv.map_err(db_err)?;
            if k.len() != 48 {
                f.corrupt("tokens_by_family has a malformed key");
            } else if !t.tokens.contains_key(&k[16..]).map_err(db_err)? {
                f.leftover(
                    "tokens_by_family entry is dangling",
                    [Op::Remove(t.tokens_by_family.clone(), k.to_vec())],
                );
            } else if !v.is_empty() {
                // Builds before the token record named a refresh token's sibling kept it here (a backup of one
                // carries it); the record is the truth now, and derives an empty entry.
                f.leftover(
                    "tokens_by_family entry holds a value",
                    [Op::Put(t.tokens_by_family.clone(), k.to_vec(), Vec::new())],
                );
            }
        }
        for kv in t.families.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let fam: FamilyRecord = codec::decode(&v)?;
            let Ok(id) = FamilyId::try_from(k.as_ref()) else {
                f.corrupt("family stored under a malformed key");
                continue;
            };
            let mut owners = vec![(&t.families_by_client, owner_key(&fam.client_id, &id))];
            if let Some(user) = fam.subject.user_id() {
                owners.push((&t.families_by_user, owner_key(user, &id)));
            }
            for (index, key) in owners {
                if !index.contains_key(&key).map_err(db_err)? {
                    f.leftover(
                        format!("family missing from {}", tree_name(index)),
                        [Op::Put(index.clone(), key, Vec::new())],
                    );
                }
            }
            if !fam.revoked && !self.family_owners_alive(&fam)? {
                // Deleting or deactivating an app and deleting a user revoke its families right after the change
                // commits: a crash in between left them live.
                let revoked = FamilyRecord {
                    revoked: true,
                    ..fam
                };
                f.leftover(
                    "grant of a deleted user or a deleted or inactive app not revoked",
                    [Op::Put(
                        t.families.clone(),
                        k.to_vec(),
                        codec::encode(&revoked),
                    )],
                );
            }
        }
        for index in [&t.families_by_client, &t.families_by_user] {
            for k in index.iter().keys() {
                let k = k.map_err(db_err)?;
                if k.len() < 17 {
                    f.corrupt(format!("{} has a malformed key", tree_name(index)));
                } else if !t
                    .families
                    .contains_key(&k[k.len() - 16..])
                    .map_err(db_err)?
                {
                    f.leftover(
                        format!("{} entry is dangling", tree_name(index)),
                        [Op::Remove(index.clone(), k.to_vec())],
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether a family's app exists and is active and its user (if any) exists.
    fn family_owners_alive(&self, fam: &FamilyRecord) -> Result<bool> {
        let app_active = self
            .app_by_client_id(&fam.client_id)?
            .is_some_and(|a| a.active);
        let user = match fam.subject.user_id() {
            Some(id) => self.t.users.contains_key(id.as_bytes()).map_err(db_err)?,
            None => true,
        };
        Ok(app_active && user)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::sled::app::tests::app;
    use crate::store::sled::user::tests::user;
    use crate::store::testing::temp_store;
    use crate::store::token::GrantRecord;
    use crate::store::Store;

    /// Puts a code of `user` for `client` under digest `[code; 32]` (unexpired until 1_000).
    pub(crate) async fn put_code(s: &Store, code: u8, client: &str, user: &str) {
        let grant = GrantRecord {
            owner_id: user.into(),
            client_id: client.into(),
            scope: "openid".into(),
            redirect_uri: "https://x.example/cb".into(),
            redirect_uri_sent: true,
            pkce: None,
            auth_time: 0,
            nonce: None,
            amr: Vec::new(),
            sid: None,
        };
        let rec = CodeRecord {
            grant,
            expires_at: 1_000,
            redeemed: None,
        };
        s.put_code(&[code; 32], &rec).await.unwrap();
    }

    /// Access token `[access; 32]` and refresh token `[refresh; 32]`, live until 1_000.
    pub(crate) fn first_tokens(access: u8, refresh: u8) -> FirstTokens {
        let tok = |b: u8| NewToken {
            digest: [b; 32],
            expires_at: 1_000,
        };
        FirstTokens {
            access: tok(access),
            refresh: Some(tok(refresh)),
        }
    }

    async fn store_with_code() -> (tempfile::TempDir, Store) {
        let (d, s) = temp_store();
        s.create_user(&user("a1", "root", true)).await.unwrap();
        s.create_app(&app("a1", "c1")).await.unwrap();
        put_code(&s, 7, "c1", "a1").await;
        (d, s)
    }

    /// Regression: redemption and issuance were two steps, and a replay between them found no family, revoked
    /// nothing, and the family was then created unrevoked. Now they are one transaction: a replay comes after it and
    /// revokes what it issued.
    #[tokio::test]
    async fn a_replay_revokes_the_tokens_of_the_redemption() {
        let (_d, s) = store_with_code().await;
        let tokens = Some(first_tokens(1, 2));
        let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], tokens).await;
        assert!(matches!(r.unwrap(), Redeemed::Ok));
        assert!(s.active_token(&[1; 32], 10).await.unwrap().is_some());
        let again = s.redeem_code(&[7; 32], "c1", 10, [4; 16], Some(first_tokens(5, 6)));
        assert!(matches!(again.await.unwrap(), Redeemed::Replayed));
        for t in [1, 2, 5, 6] {
            assert!(
                s.active_token(&[t; 32], 10).await.unwrap().is_none(),
                "token {t}"
            );
        }
        s.verify().unwrap();
    }

    /// Of many concurrent redemptions of one code exactly one wins, every other is a replay, and so the winner's
    /// tokens end up revoked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_redemptions_leave_the_winner_revoked() {
        let (_d, s) = store_with_code().await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..16u8 {
            let s = s.clone();
            set.spawn(async move {
                let tokens = Some(first_tokens(2 * i + 1, 2 * i + 2));
                s.redeem_code(&[7; 32], "c1", 10, [i; 16], tokens).await
            });
        }
        let results = set.join_all().await;
        let wins = results
            .iter()
            .filter(|r| matches!(r, Ok(Redeemed::Ok)))
            .count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(Redeemed::Ok | Redeemed::Replayed))));
        for t in 1..=32 {
            assert!(
                s.active_token(&[t; 32], 10).await.unwrap().is_none(),
                "token {t}"
            );
        }
    }

    /// The family a redemption starts keeps the code's sign-in (not its nonce), so a refresh can issue an ID token
    /// with the original `auth_time`, `amr` and `sid`.
    #[tokio::test]
    async fn a_family_keeps_the_sign_in_of_its_code() {
        use crate::model::oidc::Amr;
        let (_d, s) = store_with_code().await;
        let mut code = s.peek_code(&[7; 32]).await.unwrap().unwrap();
        code.grant.auth_time = 5;
        code.grant.nonce = Some("n1".into());
        code.grant.amr = vec![Amr::Pwd, Amr::Otp];
        code.grant.sid = Some("sid1".into());
        s.put_code(&[7; 32], &code).await.unwrap();
        assert!(s.family(&[3; 16]).await.unwrap().is_none());
        let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
        assert!(matches!(r.await.unwrap(), Redeemed::Ok));
        let f = s.family(&[3; 16]).await.unwrap().unwrap();
        assert_eq!(f.auth_time, Some(5));
        assert_eq!(f.amr, [Amr::Pwd, Amr::Otp]);
        assert_eq!(f.sid.as_deref(), Some("sid1"));
        assert_eq!(f.created_at, 10);
    }

    /// The refresh token's record names its sibling and its index entry is empty like every other; an entry that
    /// still holds a sibling (as builds before kept it) disagrees with what the records derive: `repair` empties it.
    #[tokio::test]
    async fn the_sibling_is_in_the_record_and_a_valued_index_entry_is_repaired() {
        let (_d, s) = store_with_code().await;
        let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
        assert!(matches!(r.await.unwrap(), Redeemed::Ok));
        let refresh = s.token_record(&[2; 32]).await.unwrap().unwrap();
        assert_eq!(refresh.sibling, Some([1; 32]));
        let entry = family_token_key(&[3; 16], &[2; 32]);
        assert!(s
            .t
            .tokens_by_family
            .iter()
            .values()
            .all(|v| v.unwrap().is_empty()));
        s.t.tokens_by_family.insert(&entry, &[1; 32]).unwrap();
        assert!(s.verify().is_err());
        assert_eq!(s.repair().unwrap(), 1);
        assert!(s
            .t
            .tokens_by_family
            .get(&entry)
            .unwrap()
            .unwrap()
            .is_empty());
        s.verify().unwrap();
    }

    /// A failed verification (PKCE, redirect URI) still uses the code up, and writes no tokens.
    #[tokio::test]
    async fn a_redemption_without_tokens_uses_the_code_up() {
        let (_d, s) = store_with_code().await;
        let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], None).await;
        assert!(matches!(r.unwrap(), Redeemed::Ok));
        let r = s.redeem_code(&[7; 32], "c1", 10, [4; 16], Some(first_tokens(1, 2)));
        assert!(matches!(r.await.unwrap(), Redeemed::Replayed));
        assert!(s.token_record(&[1; 32]).await.unwrap().is_none());
        assert!(s.t.families.is_empty());
    }

    /// A client or user that is gone fails the redemption as a whole: the code is not used up either.
    #[tokio::test]
    async fn a_redemption_for_a_deleted_user_writes_nothing() {
        let (_d, s) = store_with_code().await;
        put_code(&s, 8, "c1", "nobody").await;
        let r = s.redeem_code(&[8; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
        assert!(matches!(r.await, Err(Error::NotFound(Entity::User))));
        assert_eq!(s.peek_code(&[8; 32]).await.unwrap().unwrap().redeemed, None);
        assert!(s.t.families.is_empty() && s.t.tokens.is_empty());
    }
}
