//! Codes, tokens and grant families. Where exactly one caller may win, one conditional `UPDATE … RETURNING`
//! decides it and the row lock it takes serializes the rest: redeeming a code sets `codes.redeemed` only while it
//! is NULL, rotating a refresh token sets `tokens.rotated` only while it is false. A loser reads the row again
//! (now committed) to tell a replay, which revokes the family, from an unknown, expired or foreign one. Revoking a
//! family is one flag write (`families.revoked`), so it takes effect at once for every token of it, on every node.

use deadpool_postgres::Transaction;

use super::{db_err, rec, with_tx, Pg, Prepared, TxResult};
use crate::clock::Millis;
use crate::error::{Entity, Error, Result};
use crate::model::App;
use crate::store::codec;
use crate::store::token::{
    CodeRecord, Digest, FamilyId, FamilyRecord, FirstTokens, Lineage, NewToken, Redeemed, Rotated,
    TokenKind, TokenRecord,
};

async fn revoke_family(tx: &Transaction<'_>, family: &[u8]) -> TxResult<()> {
    tx.exec(
        "UPDATE families SET revoked = true WHERE id = $1",
        &[&family],
    )
    .await?;
    Ok(())
}

/// Whether `client_id`'s app exists and is active, reading it `FOR SHARE` so a concurrent deactivation or
/// deletion waits for (and so serializes against) the issuance.
async fn client_active(tx: &Transaction<'_>, client_id: &str) -> TxResult<bool> {
    let row = tx
        .opt(
            "SELECT rec FROM apps WHERE client_id = $1 FOR SHARE",
            &[&client_id],
        )
        .await?;
    Ok(match row {
        Some(r) => rec::<App>(&r, "rec")?.active,
        None => false,
    })
}

/// A token row; `family` and `sibling` are NULL for a client_credentials token.
const INSERT_TOKEN: &str =
    "INSERT INTO tokens (digest, family, is_refresh, client_id, expires_at, rotated, sibling, rec)
     VALUES ($1, $2, $3, $4, $5, false, $6, $7)";

/// Inserts one token, its `family` and `sibling` columns derived from the record.
async fn insert_token(tx: &Transaction<'_>, digest: &Digest, r: &TokenRecord) -> TxResult<()> {
    let family = match &r.lineage {
        Lineage::Family(f) => Some(&f[..]),
        Lineage::Epoch(_) => None,
    };
    tx.exec(
        INSERT_TOKEN,
        &[
            &&digest[..],
            &family,
            &(r.kind == TokenKind::Refresh),
            &r.client_id,
            &r.expires_at,
            &r.sibling.as_ref().map(|s| &s[..]),
            &codec::encode(r),
        ],
    )
    .await?;
    Ok(())
}

fn family_id(bytes: &[u8]) -> Result<FamilyId> {
    bytes
        .try_into()
        .map_err(|_| Error::internal("bad family id"))
}

impl Pg {
    pub async fn put_code(&self, digest: &Digest, code: &CodeRecord) -> Result<()> {
        let redeemed = code.redeemed.as_ref().map(|f| &f[..]);
        self.client()
            .await?
            .exec(
                "INSERT INTO codes (digest, client_id, expires_at, redeemed, rec) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (digest) DO UPDATE SET client_id = EXCLUDED.client_id,
                   expires_at = EXCLUDED.expires_at, redeemed = EXCLUDED.redeemed, rec = EXCLUDED.rec",
                &[
                    &&digest[..],
                    &code.grant.client_id,
                    &code.expires_at,
                    &redeemed,
                    &codec::encode(code),
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn peek_code(&self, digest: &Digest) -> Result<Option<CodeRecord>> {
        let row = self
            .client()
            .await?
            .opt(
                "SELECT redeemed, rec FROM codes WHERE digest = $1",
                &[&&digest[..]],
            )
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut code: CodeRecord = rec(&row, "rec")?;
        code.redeemed = row
            .get::<_, Option<&[u8]>>("redeemed")
            .map(family_id)
            .transpose()?;
        Ok(Some(code))
    }

    pub async fn family(&self, id: &FamilyId) -> Result<Option<FamilyRecord>> {
        let row = self
            .client()
            .await?
            .opt(
                "SELECT revoked, rec FROM families WHERE id = $1",
                &[&&id[..]],
            )
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut f: FamilyRecord = rec(&row, "rec")?;
        f.revoked = row.get("revoked");
        Ok(Some(f))
    }

    pub async fn token_record(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        let row = self
            .client()
            .await?
            .opt(
                "SELECT rotated, rec FROM tokens WHERE digest = $1",
                &[&&digest[..]],
            )
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut t: TokenRecord = rec(&row, "rec")?;
        t.rotated = row.get("rotated");
        Ok(Some(t))
    }

    pub async fn redeem_code(
        &self,
        digest: &Digest,
        client_id: &str,
        now: Millis,
        family: FamilyId,
        tokens: Option<FirstTokens>,
    ) -> Result<Redeemed> {
        with_tx!(self, |tx| {
            let won = tx
                .opt(
                    "UPDATE codes SET redeemed = $2
                     WHERE digest = $1 AND client_id = $3 AND redeemed IS NULL AND expires_at > $4
                     RETURNING rec",
                    &[&&digest[..], &&family[..], &client_id, &now],
                )
                .await?;
            let Some(row) = won else {
                return lost_redemption(tx, digest, client_id).await;
            };
            if let Some(first) = tokens {
                let code: CodeRecord = rec(&row, "rec")?;
                start_family(tx, &code, client_id, now, &family, &first).await?;
            }
            Ok(Redeemed::Ok)
        })
    }

    pub async fn put_client_token(&self, digest: &Digest, r: &TokenRecord) -> Result<()> {
        debug_assert!(matches!(r.lineage, Lineage::Epoch(_)));
        // One INSERT is atomic by itself: no transaction around it (BEGIN and COMMIT would be two more round trips
        // on the busiest write).
        let none: Option<&[u8]> = None;
        self.client()
            .await?
            .exec(
                INSERT_TOKEN,
                &[
                    &&digest[..],
                    &none,
                    &(r.kind == TokenKind::Refresh),
                    &r.client_id,
                    &r.expires_at,
                    &none,
                    &codec::encode(r),
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// A rotation won by a client that is no longer active rolls back (the token stays unrotated) and is
    /// invalid: the attempt ends with [`INACTIVE`], which is that answer.
    pub async fn rotate_refresh(
        &self,
        old: &Digest,
        client_id: &str,
        scope: &str,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
    ) -> Result<Rotated> {
        let done = with_tx!(self, |tx| {
            let won = tx
                .opt(
                    "UPDATE tokens t SET rotated = true FROM families f
                         WHERE t.digest = $1 AND t.is_refresh AND t.client_id = $2 AND NOT t.rotated
                           AND t.expires_at > $3 AND f.id = t.family AND NOT f.revoked
                         RETURNING t.rec, t.sibling",
                    &[&&old[..], &client_id, &now],
                )
                .await?;
            let Some(row) = won else {
                return lost_rotation(tx, old, client_id).await;
            };
            if !client_active(tx, client_id).await? {
                return Err(INACTIVE.into());
            }
            if let Some(sibling) = row.get::<_, Option<&[u8]>>("sibling") {
                tx.exec("DELETE FROM tokens WHERE digest = $1", &[&sibling])
                    .await?;
            }
            let old_rec: TokenRecord = rec(&row, "rec")?;
            let (next, next_refresh) = old_rec.successors(scope, now, access, refresh);
            insert_token(tx, &access.digest, &next).await?;
            if let (Some(r), Some(next_refresh)) = (refresh, next_refresh) {
                insert_token(tx, &r.digest, &next_refresh).await?;
            }
            Ok(Rotated::Ok)
        });
        match done {
            Err(Error::NotFound(Entity::App)) => Ok(Rotated::Invalid),
            done => done,
        }
    }

    pub async fn active_token(&self, digest: &Digest, now: Millis) -> Result<Option<TokenRecord>> {
        self.live_token(digest, now, None).await
    }

    pub async fn active_token_of(
        &self,
        digest: &Digest,
        now: Millis,
        app: &App,
    ) -> Result<Option<TokenRecord>> {
        self.live_token(digest, now, Some(app)).await
    }

    /// One read joins the token to its family; a client_credentials token is checked against its app (`app`, or
    /// read now: no cache, so a deactivation on another node counts at once).
    async fn live_token(
        &self,
        digest: &Digest,
        now: Millis,
        app: Option<&App>,
    ) -> Result<Option<TokenRecord>> {
        let row = self
            .client()
            .await?
            .opt(
                "SELECT t.rotated, t.rec, f.revoked FROM tokens t LEFT JOIN families f ON f.id = t.family
                 WHERE t.digest = $1",
                &[&&digest[..]],
            )
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let r: TokenRecord = rec(&row, "rec")?;
        let rotated: bool = row.get("rotated");
        if r.expires_at <= now || rotated || app.is_some_and(|a| a.client_id != r.client_id) {
            return Ok(None);
        }
        let alive = match r.lineage {
            Lineage::Epoch(epoch) => {
                let honours = |a: &App| a.active && a.token_epoch == epoch;
                match app {
                    Some(a) => honours(a),
                    None => self
                        .app_by_client_id(&r.client_id)
                        .await?
                        .is_some_and(|a| honours(&a)),
                }
            }
            Lineage::Family(_) => row.get::<_, Option<bool>>("revoked") == Some(false),
        };
        Ok(alive.then_some(r))
    }

    pub async fn revoke_token(&self, digest: &Digest, client_id: &str) -> Result<bool> {
        with_tx!(self, |tx| {
            let row = tx
                .opt(
                    "SELECT is_refresh, family FROM tokens WHERE digest = $1 AND client_id = $2",
                    &[&&digest[..], &client_id],
                )
                .await?;
            let Some(row) = row else { return Ok(false) };
            let family: Option<&[u8]> = row.get("family");
            match (row.get::<_, bool>("is_refresh"), family) {
                (true, Some(f)) => revoke_family(tx, f).await?,
                (true, None) => return Ok(false),
                (false, _) => {
                    tx.exec("DELETE FROM tokens WHERE digest = $1", &[&&digest[..]])
                        .await?;
                }
            }
            Ok(true)
        })
    }

    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<usize> {
        self.revoke_families("client_id", client_id).await
    }

    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<usize> {
        self.revoke_families("user_id", user_id).await
    }

    /// Revokes every family whose `column` is `owner`; returns how many it has (revoked before or now).
    async fn revoke_families(&self, column: &str, owner: &str) -> Result<usize> {
        let n = self
            .client()
            .await?
            .exec(
                &format!("UPDATE families SET revoked = true WHERE {column} = $1"),
                &[&owner],
            )
            .await
            .map_err(db_err)?;
        Ok(n as usize)
    }
}

/// Starts `family` with its first tokens, once the redemption has won; fails (rolling the redemption back) when
/// the client is inactive or gone or the user is gone, so a token never outlives either.
async fn start_family(
    tx: &Transaction<'_>,
    code: &CodeRecord,
    client_id: &str,
    now: Millis,
    family: &FamilyId,
    first: &FirstTokens,
) -> TxResult<()> {
    if !client_active(tx, client_id).await? {
        return Err(Error::NotFound(Entity::App).into());
    }
    let g = &code.grant;
    let user = tx
        .opt(
            "SELECT 1 FROM users WHERE id = $1 FOR SHARE",
            &[&g.owner_id],
        )
        .await?;
    if user.is_none() {
        return Err(Error::NotFound(Entity::User).into());
    }
    let fam = FamilyRecord::started_by(g, now);
    tx.exec(
        "INSERT INTO families (id, client_id, user_id, revoked, rec) VALUES ($1, $2, $3, false, $4)",
        &[&&family[..], &client_id, &g.owner_id, &codec::encode(&fam)],
    )
    .await?;
    let (access, refresh) = TokenRecord::first_of(g, *family, now, first);
    insert_token(tx, &first.access.digest, &access).await?;
    if let (Some(r), Some(rec)) = (first.refresh, refresh) {
        insert_token(tx, &r.digest, &rec).await?;
    }
    Ok(())
}

/// Why a redemption did not win, in the order the contract checks: unknown, another client's, replayed
/// (revoking the family it started), expired.
async fn lost_redemption(
    tx: &Transaction<'_>,
    digest: &Digest,
    client_id: &str,
) -> TxResult<Redeemed> {
    let row = tx
        .opt(
            "SELECT client_id, redeemed FROM codes WHERE digest = $1",
            &[&&digest[..]],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Redeemed::Unknown);
    };
    if row.get::<_, &str>("client_id") != client_id {
        return Ok(Redeemed::OtherClient);
    }
    match row.get::<_, Option<&[u8]>>("redeemed") {
        Some(f) => {
            revoke_family(tx, f).await?;
            Ok(Redeemed::Replayed)
        }
        None => Ok(Redeemed::Expired),
    }
}

/// How a rotation's attempt says its client is no longer active (see [`Pg::rotate_refresh`]).
const INACTIVE: Error = Error::NotFound(Entity::App);

/// Why a rotation did not win: a rotated refresh token of this client is reuse and revokes its family; anything
/// else (unknown, another client's, an access token, expired, revoked) is invalid.
async fn lost_rotation(tx: &Transaction<'_>, old: &Digest, client_id: &str) -> TxResult<Rotated> {
    let row = tx
        .opt(
            "SELECT family FROM tokens
             WHERE digest = $1 AND client_id = $2 AND is_refresh AND rotated AND family IS NOT NULL",
            &[&&old[..], &client_id],
        )
        .await?;
    match row {
        Some(r) => {
            revoke_family(tx, r.get("family")).await?;
            Ok(Rotated::Replayed)
        }
        None => Ok(Rotated::Invalid),
    }
}
