//! User ↔ provider links: `links` keyed by id, with the user and the provider as foreign keys (`ON DELETE
//! CASCADE`, so removing either removes its links). The sign-in rules are two unique partial indexes over the
//! links that sign in: `links_sign_in_account` (an upstream account signs in to at most one user) and
//! `links_sign_in_slot` (a user has one sign-in link per provider). Of concurrent claims the database admits
//! one, whichever node they come from. Before writing, a claim looks for a holder itself, in sled's order (the
//! id, then the account, then the slot), so both backends answer the same conflict; a claim racing another that
//! has not committed yet is caught by the index and mapped to the same fields.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::{conflict_on, db_err, rec, with_tx, Abort, Pg, Prepared, TxResult};
use crate::clock::Millis;
use crate::error::{Entity, Error, Field, Result};
use crate::model::{Link, Provider};
use crate::store::codec;

/// The unique violations of a link write as the domain's conflicts, valued as sled values them.
fn link_conflict(e: tokio_postgres::Error, link: &Link) -> Abort {
    conflict_on(
        e,
        &[
            ("links_pkey", Field::Id, &link.id),
            ("links_sign_in_account", Field::AccountId, &link.account_id),
            ("links_sign_in_slot", Field::Provider, &link.provider),
        ],
    )
}

/// The sign-in rule `link` would break, ignoring the link with its own id (sled's `claim_sign_in` order).
async fn sign_in_conflict(tx: &Transaction<'_>, link: &Link) -> TxResult<Option<Error>> {
    if !link.allow_sign_in {
        return Ok(None);
    }
    let holders = tx
        .all(
            "SELECT provider = $2 AND account_id = $3 AS account, user_id = $4 AS slot FROM links
             WHERE allow_sign_in AND id <> $1 AND provider = $2 AND (account_id = $3 OR user_id = $4)",
            &[&link.id, &link.provider, &link.account_id, &link.user_id],
        )
        .await?;
    Ok(if holders.iter().any(|r| r.get("account")) {
        Some(Error::Conflict {
            field: Field::AccountId,
            value: link.account_id.clone(),
        })
    } else if holders.iter().any(|r| r.get("slot")) {
        Some(Error::Conflict {
            field: Field::Provider,
            value: link.provider.clone(),
        })
    } else {
        None
    })
}

fn links(rows: &[Row]) -> Result<Vec<Link>> {
    rows.iter().map(|r| rec(r, "rec")).collect()
}

impl Pg {
    /// Reads the provider and the user `FOR SHARE` (a concurrent removal of either waits for this transaction,
    /// and one that went first is seen), then claims the id and the sign-in keys.
    pub async fn create_link(&self, link: &Link) -> Result<()> {
        with_tx!(self, |tx| {
            let provider = tx
                .opt(
                    "SELECT rec FROM providers WHERE key = $1 FOR SHARE",
                    &[&link.provider],
                )
                .await?;
            let enabled = match provider {
                Some(r) => rec::<Provider>(&r, "rec")?.enabled,
                None => false,
            };
            if !enabled {
                return Err(Error::NotFound(Entity::Provider).into());
            }
            let user = tx
                .opt(
                    "SELECT 1 FROM users WHERE id = $1 FOR SHARE",
                    &[&link.user_id],
                )
                .await?;
            if user.is_none() {
                return Err(Error::NotFound(Entity::User).into());
            }
            let taken = tx
                .opt("SELECT 1 FROM links WHERE id = $1", &[&link.id])
                .await?;
            if taken.is_some() {
                return Err(Error::Conflict {
                    field: Field::Id,
                    value: link.id.clone(),
                }
                .into());
            }
            if let Some(e) = sign_in_conflict(tx, link).await? {
                return Err(e.into());
            }
            tx.exec(
                "INSERT INTO links (id, user_id, provider, account_id, allow_sign_in, created_at, rec)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &link.id,
                    &link.user_id,
                    &link.provider,
                    &link.account_id,
                    &link.allow_sign_in,
                    &link.created_at,
                    &codec::encode(link),
                ],
            )
            .await
            .map_err(|e| link_conflict(e, link))?;
            Ok(())
        })
    }

    async fn link_where(&self, condition: &str, keys: &[&str]) -> Result<Vec<Link>> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            keys.iter().map(|k| k as _).collect();
        let rows = self
            .client()
            .await?
            .all(
                &format!("SELECT rec FROM links WHERE {condition} ORDER BY created_at, id"),
                &params,
            )
            .await
            .map_err(db_err)?;
        links(&rows)
    }

    pub async fn get_link(&self, id: &str) -> Result<Option<Link>> {
        Ok(self.link_where("id = $1", &[id]).await?.pop())
    }

    pub async fn sign_in_link(&self, provider: &str, account_id: &str) -> Result<Option<Link>> {
        let condition = "allow_sign_in AND provider = $1 AND account_id = $2";
        Ok(self
            .link_where(condition, &[provider, account_id])
            .await?
            .pop())
    }

    pub async fn sign_in_link_of_user(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<Link>> {
        let condition = "allow_sign_in AND user_id = $1 AND provider = $2";
        Ok(self
            .link_where(condition, &[user_id, provider])
            .await?
            .pop())
    }

    pub async fn links_of_user(&self, user_id: &str) -> Result<Vec<Link>> {
        self.link_where("user_id = $1", &[user_id]).await
    }

    pub async fn list_links(&self) -> Result<Vec<Link>> {
        self.link_where("true", &[]).await
    }

    pub async fn newest_link_time(&self, user_id: &str) -> Result<Option<Millis>> {
        let row = self
            .client()
            .await?
            .one(
                "SELECT max(created_at) FROM links WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    /// Past `now`, the user's newest link and every time handed out before, on any node: one counter row.
    pub async fn next_link_time(&self, user_id: &str, now: Millis) -> Result<Millis> {
        let row = self
            .client()
            .await?
            .one(
                "UPDATE link_clock SET last = greatest($2, last + 1,
                   (SELECT max(created_at) + 1 FROM links WHERE user_id = $1))
                 WHERE id = 1 RETURNING last",
                &[&user_id, &now],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    /// Locks the row (`FOR UPDATE`: no lost update), applies `change`, re-checks the sign-in rules when
    /// `allow_sign_in` or `account_id` changed, and writes it back in one transaction.
    pub async fn update_link(
        &self,
        id: &str,
        change: impl Fn(&mut Link) -> Result<()>,
    ) -> Result<Link> {
        with_tx!(self, |tx| {
            let row = tx
                .opt("SELECT rec FROM links WHERE id = $1 FOR UPDATE", &[&id])
                .await?
                .ok_or(Error::NotFound(Entity::Link))?;
            let old: Link = rec(&row, "rec")?;
            let mut new = old.clone();
            change(&mut new)?;
            if (&new.id, &new.user_id, &new.provider, new.created_at)
                != (&old.id, &old.user_id, &old.provider, old.created_at)
            {
                return Err(Error::internal(
                    "an update may not change a link's id, user, provider or creation time",
                )
                .into());
            }
            if (new.allow_sign_in, &new.account_id) != (old.allow_sign_in, &old.account_id) {
                if let Some(e) = sign_in_conflict(tx, &new).await? {
                    return Err(e.into());
                }
            }
            tx.exec(
                "UPDATE links SET account_id = $2, allow_sign_in = $3, rec = $4 WHERE id = $1",
                &[
                    &id,
                    &new.account_id,
                    &new.allow_sign_in,
                    &codec::encode(&new),
                ],
            )
            .await
            .map_err(|e| link_conflict(e, &new))?;
            Ok(new)
        })
    }

    pub async fn delete_link(&self, id: &str) -> Result<Link> {
        let row = self
            .client()
            .await?
            .opt("DELETE FROM links WHERE id = $1 RETURNING rec", &[&id])
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound(Entity::Link))?;
        rec(&row, "rec")
    }
}
