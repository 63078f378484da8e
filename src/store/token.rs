//! Authorization codes, access and refresh tokens, and grant families.
//!
//! - `codes`: sha256(code) → [`CodeRecord`]. Redemption flips `redeemed` in a transaction, so of two concurrent
//!   redemptions exactly one wins; the record stays until it expires so a replay is recognised and revokes the
//!   family it produced.
//! - `tokens`: sha256(token) → [`TokenRecord`]; `tokens_by_family`: family ‖ sha256 → ∅, except that a refresh
//!   token's entry holds the sha256 of the access token issued with it, which its rotation revokes.
//! - `families`: family id → [`FamilyRecord`]: one per grant (a code redemption or a client_credentials issue).
//!   Revoking a family is one flag write, so it takes effect at once for every token in it; the sweeper removes
//!   the dead tokens later.
//! - `families_by_client` / `families_by_user`: owner ‖ 0 ‖ family → ∅, to revoke everything of an app or user.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::verify::{tree_name, Findings, Op};
use super::{abort, codec, db_err, decode_or_abort, txn_result, Store};
use crate::clock::Millis;
use crate::error::{Entity, Error, Result};

pub type FamilyId = [u8; 16];
pub type Digest = [u8; 32];

/// What the resource owner approved, carried from the code to the tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// User id; empty for client_credentials grants (the client is its own owner).
    pub owner_id: String,
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent at authorize (then it is required at the token endpoint).
    pub redirect_uri_sent: bool,
    /// PKCE challenge as encoded by oxide-auth's Pkce extension; `None` when no challenge was made.
    pub pkce: Option<String>,
    pub auth_time: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub grant: GrantRecord,
    pub expires_at: Millis,
    /// The family the first redemption created; set once.
    pub redeemed: Option<FamilyId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub family: FamilyId,
    pub client_id: String,
    pub owner_id: String,
    pub scope: String,
    pub issued_at: Millis,
    pub expires_at: Millis,
    /// Refresh tokens: already exchanged; presenting it again is reuse and revokes the family.
    pub rotated: bool,
    /// client_credentials tokens: the app's `token_epoch` at issue. Such a token has no family (its `family` is
    /// all zeros): it is one plain insert, live while the app exists, is active and is still in that epoch.
    pub epoch: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyRecord {
    pub client_id: String,
    pub owner_id: String,
    pub revoked: bool,
    pub created_at: Millis,
}

/// A token to store: its digest and lifetime.
#[derive(Clone, Copy, Debug)]
pub struct NewToken {
    pub digest: Digest,
    pub expires_at: Millis,
}

/// The outcome of redeeming a code.
#[derive(Debug)]
pub enum Redeemed {
    Ok(CodeRecord),
    Unknown,
    /// Issued to another client: nothing was changed, so its own client can still redeem it.
    OtherClient,
    Expired,
    /// Already redeemed: the family it produced has now been revoked.
    Replayed,
}

/// The outcome of rotating a refresh token.
#[derive(Debug)]
pub enum Rotated {
    Ok(TokenRecord),
    /// Unknown, expired, revoked, of another client, or not a refresh token.
    Invalid,
    /// Already rotated: the whole family has now been revoked.
    Replayed,
}

fn owner_key(owner: &str, family: &FamilyId) -> Vec<u8> {
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

/// Removes the access token that was issued together with refresh token `refresh` (its `tokens_by_family` entry
/// names it; entries written before that link existed name none).
fn revoke_sibling_access(
    tokens: &TransactionalTree,
    by_family: &TransactionalTree,
    family: &FamilyId,
    refresh: &Digest,
) -> Tx<()> {
    let Some(link) = by_family.get(family_token_key(family, refresh))? else {
        return Ok(());
    };
    if let Ok(access) = Digest::try_from(link.as_ref()) {
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

/// Whether a token of family `f` (its stored bytes, `None` when the record is gone) is dead at `now`.
fn token_dead(f: &FamilyRecord, token: Option<&[u8]>, now: Millis) -> Result<bool> {
    Ok(match token {
        Some(b) => f.revoked || codec::decode::<TokenRecord>(b)?.expires_at <= now,
        None => true,
    })
}

impl Store {
    /// Stores a new authorization code (not flushed: the authorize handler awaits `durable`).
    pub fn put_code(&self, digest: &Digest, code: &CodeRecord) -> Result<()> {
        self.t
            .codes
            .insert(digest, codec::encode(code))
            .map_err(db_err)?;
        Ok(())
    }

    /// Reads a code without redeeming it (to learn whether its request carried `redirect_uri`).
    pub fn peek_code(&self, digest: &Digest) -> Result<Option<CodeRecord>> {
        match self.t.codes.get(digest).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// The stored record of a token, live or not.
    pub fn token_record(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        match self.t.tokens.get(digest).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Marks the code redeemed by `family` for `client_id`. A second redemption revokes that family; a code
    /// presented by another client is left as it is (whoever stole it must not be able to burn it or its tokens).
    pub fn redeem_code(
        &self,
        digest: &Digest,
        client_id: &str,
        now: Millis,
        family: FamilyId,
    ) -> Result<Redeemed> {
        let r = (&self.t.codes, &self.t.families).transaction(|(codes, families)| {
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
            Ok(Redeemed::Ok(code))
        });
        txn_result(r)
    }

    /// Creates a family and its first tokens atomically. Fails with NotFound when the client is gone, so a
    /// token can never outlive a concurrent app deletion.
    #[allow(clippy::too_many_arguments)]
    pub fn issue_family(
        &self,
        family: FamilyId,
        client_id: &str,
        owner_id: &str,
        scope: &str,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
    ) -> Result<()> {
        let t = &self.t;
        let fam = codec::encode(&FamilyRecord {
            client_id: client_id.to_owned(),
            owner_id: owner_id.to_owned(),
            revoked: false,
            created_at: now,
        });
        let rec = |kind, tok: NewToken| TokenRecord {
            kind,
            family,
            client_id: client_id.to_owned(),
            owner_id: owner_id.to_owned(),
            scope: scope.to_owned(),
            issued_at: now,
            expires_at: tok.expires_at,
            rotated: false,
            epoch: None,
        };
        let access_bytes = codec::encode(&rec(TokenKind::Access, access));
        let refresh_bytes = refresh.map(|r| (r.digest, codec::encode(&rec(TokenKind::Refresh, r))));
        let r = (
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
                |(apps_by_client, apps, users, families, by_client, by_user, tokens, by_family)| {
                    if !client_active(apps_by_client, apps, client_id)? {
                        return abort(Error::NotFound(Entity::App));
                    }
                    if !owner_id.is_empty() {
                        if users.get(owner_id.as_bytes())?.is_none() {
                            return abort(Error::NotFound(Entity::User));
                        }
                        by_user.insert(owner_key(owner_id, &family), &[][..])?;
                    }
                    families.insert(&family[..], fam.as_slice())?;
                    by_client.insert(owner_key(client_id, &family), &[][..])?;
                    tokens.insert(&access.digest[..], access_bytes.as_slice())?;
                    by_family.insert(family_token_key(&family, &access.digest), &[][..])?;
                    if let Some((d, b)) = &refresh_bytes {
                        tokens.insert(&d[..], b.as_slice())?;
                        by_family.insert(family_token_key(&family, d), &access.digest[..])?;
                    }
                    Ok(())
                },
            );
        txn_result(r)
    }

    /// Stores a client_credentials token: one plain insert, no transaction, so the group commit batches them
    /// (sled transactions serialize on a process-wide lock and seal the log buffer each). Not flushed: the token
    /// endpoint awaits `durable` before answering.
    pub fn put_client_token(&self, digest: &Digest, rec: &TokenRecord) -> Result<()> {
        debug_assert!(rec.epoch.is_some() && rec.family == [0; 16]);
        self.t
            .tokens
            .insert(digest, codec::encode(rec))
            .map_err(db_err)?;
        Ok(())
    }

    /// Whether a family-less (client_credentials) token's app still honours it.
    fn client_token_alive(&self, rec: &TokenRecord, epoch: u64) -> Result<bool> {
        Ok(self
            .client_app(&rec.client_id)?
            .is_some_and(|app| app.active && app.token_epoch == epoch))
    }

    /// Exchanges a refresh token of `client_id` for new tokens in the same family and revokes the access token
    /// issued with it (as Rocket.Chat and Hydra do). The new refresh token keeps the old one's scope (RFC 6749 §6);
    /// `scope` is the new access token's. Presenting an already rotated refresh token revokes the family
    /// (RFC 9700 §4.14.2).
    pub fn rotate_refresh(
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
                if rec.kind != TokenKind::Refresh || rec.client_id != client_id {
                    return Ok(Rotated::Invalid);
                }
                if rec.rotated {
                    revoke_in(families, &rec.family)?;
                    return Ok(Rotated::Replayed);
                }
                let alive = match families.get(rec.family)? {
                    Some(f) => !decode_or_abort::<FamilyRecord>(&f)?.revoked,
                    None => false,
                };
                if !alive
                    || rec.expires_at <= now
                    || !client_active(apps_by_client, apps, client_id)?
                {
                    return Ok(Rotated::Invalid);
                }
                rec.rotated = true;
                tokens.insert(&old[..], codec::encode(&rec))?;
                revoke_sibling_access(tokens, by_family, &rec.family, old)?;
                let mut next = TokenRecord {
                    kind: TokenKind::Access,
                    scope: scope.to_owned(),
                    issued_at: now,
                    expires_at: access.expires_at,
                    rotated: false,
                    epoch: None,
                    ..rec.clone()
                };
                tokens.insert(&access.digest[..], codec::encode(&next))?;
                by_family.insert(family_token_key(&rec.family, &access.digest), &[][..])?;
                if let Some(r) = refresh {
                    next.kind = TokenKind::Refresh;
                    next.scope.clone_from(&rec.scope);
                    next.expires_at = r.expires_at;
                    tokens.insert(&r.digest[..], codec::encode(&next))?;
                    by_family
                        .insert(family_token_key(&rec.family, &r.digest), &access.digest[..])?;
                }
                Ok(Rotated::Ok(rec))
            });
        txn_result(r)
    }

    /// A token that is live now: known, unexpired, not rotated away (refresh), and its family not revoked.
    /// Two point reads; this is the introspection and bearer-auth hot path.
    pub fn active_token(&self, digest: &Digest, now: Millis) -> Result<Option<TokenRecord>> {
        self.live_token(digest, now, None)
    }

    /// [`Store::active_token`] for a caller that already holds the token's client (introspection authenticated
    /// it): a token of another client is not live for it, and a client_credentials token is checked against
    /// `app` without reading the app again.
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
        let Some(b) = self.t.tokens.get(digest).map_err(db_err)? else {
            return Ok(None);
        };
        let rec: TokenRecord = codec::decode(&b)?;
        if rec.expires_at <= now || rec.rotated || app.is_some_and(|a| a.client_id != rec.client_id)
        {
            return Ok(None);
        }
        if let Some(epoch) = rec.epoch {
            let alive = match app {
                Some(a) => a.active && a.token_epoch == epoch,
                None => self.client_token_alive(&rec, epoch)?,
            };
            return Ok(alive.then_some(rec));
        }
        match self.t.families.get(rec.family).map_err(db_err)? {
            Some(f) if !codec::decode::<FamilyRecord>(&f)?.revoked => Ok(Some(rec)),
            _ => Ok(None),
        }
    }

    /// RFC 7009 for `client_id`: a refresh token takes its whole family with it; an access token goes alone.
    /// Tokens of other clients and unknown tokens are left alone (the caller answers 200 either way).
    pub fn revoke_token(&self, digest: &Digest, client_id: &str) -> Result<bool> {
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
                match rec.kind {
                    TokenKind::Refresh => revoke_in(families, &rec.family)?,
                    TokenKind::Access => {
                        tokens.remove(&digest[..])?;
                        by_family.remove(family_token_key(&rec.family, digest))?;
                    }
                }
                Ok(true)
            },
        );
        txn_result(r)
    }

    fn revoke_by_owner(&self, index: &sled::Tree, owner: &str) -> Result<usize> {
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
        Ok(n)
    }

    /// Revokes every family of an app (deleted or deactivated). Call after the app change has committed: any
    /// issuance racing with it either committed before (and is found here) or fails its client check.
    pub fn revoke_client_tokens(&self, client_id: &str) -> Result<usize> {
        self.revoke_by_owner(&self.t.families_by_client.clone(), client_id)
    }

    /// Revokes every family of a user (deleted).
    pub fn revoke_user_tokens(&self, user_id: &str) -> Result<usize> {
        self.revoke_by_owner(&self.t.families_by_user.clone(), user_id)
    }

    /// Removes expired codes, expired tokens, and the tokens and indexes of revoked or emptied families. Every
    /// removal that touches more than one key is one transaction (see [`Store::sweep_family`]), so a crash at any
    /// moment leaves no dangling index entry; codes and family-less client_credentials tokens are single keys.
    pub(crate) fn sweep_tokens(&self, now: Millis) -> Result<usize> {
        let mut n = 0;
        for kv in self.t.codes.iter() {
            let (k, v) = kv.map_err(db_err)?;
            if codec::decode::<CodeRecord>(&v)?.expires_at <= now {
                self.t.codes.remove(k).map_err(db_err)?;
                n += 1;
            }
        }
        for kv in self.t.tokens.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let rec: TokenRecord = codec::decode(&v)?;
            if let Some(epoch) = rec.epoch {
                if rec.expires_at <= now || !self.client_token_alive(&rec, epoch)? {
                    self.t.tokens.remove(k).map_err(db_err)?;
                    n += 1;
                }
            }
        }
        for fam in self.t.families.iter().keys() {
            let fam: FamilyId = fam
                .map_err(db_err)?
                .as_ref()
                .try_into()
                .map_err(|_| Error::internal("bad family key"))?;
            n += self.sweep_family(&fam, now)?;
        }
        Ok(n)
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
                    if !f.owner_id.is_empty() {
                        by_user.remove(owner_key(&f.owner_id, fam))?;
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
            if rec.epoch.is_some() {
                continue; // a family-less client_credentials token has no index entries
            }
            let Ok(digest) = Digest::try_from(k.as_ref()) else {
                f.corrupt("token stored under a malformed key");
                continue;
            };
            let entry = family_token_key(&rec.family, &digest);
            if !t.families.contains_key(rec.family).map_err(db_err)? {
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
        for k in t.tokens_by_family.iter().keys() {
            let k = k.map_err(db_err)?;
            if k.len() != 48 {
                f.corrupt("tokens_by_family has a malformed key");
            } else if !t.tokens.contains_key(&k[16..]).map_err(db_err)? {
                f.leftover(
                    "tokens_by_family entry is dangling",
                    [Op::Remove(t.tokens_by_family.clone(), k.to_vec())],
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
            if !fam.owner_id.is_empty() {
                owners.push((&t.families_by_user, owner_key(&fam.owner_id, &id)));
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
        let user = fam.owner_id.is_empty()
            || self
                .t
                .users
                .contains_key(fam.owner_id.as_bytes())
                .map_err(db_err)?;
        Ok(app_active && user)
    }
}
