//! Upstream providers: `providers` keyed by service key (the normalized name in lowercase), so "one provider per
//! normalized name" is the primary key. Removing one removes its links by `ON DELETE CASCADE`, in the same
//! statement, and a link creation reads the provider `FOR SHARE`, so none can slip in between.

use super::{db_err, rec, with_tx, Pg, Prepared};
use crate::error::{Entity, Error, Result};
use crate::model::Provider;
use crate::store::codec;

impl Pg {
    /// Inserts `p` unless its key is taken; returns what is stored. The insert waits for a concurrent one of the
    /// same key and the read after it sees that one's row; a removal in between makes it try again.
    pub async fn add_provider(&self, p: &Provider) -> Result<Provider> {
        let key = p.service_key();
        let client = self.client().await?;
        loop {
            let inserted = client
                .exec(
                    "INSERT INTO providers (key, created_at, rec) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO NOTHING",
                    &[&key, &p.created_at, &codec::encode(p)],
                )
                .await
                .map_err(db_err)?;
            if inserted == 1 {
                return Ok(p.clone());
            }
            let row = client
                .opt("SELECT rec FROM providers WHERE key = $1", &[&key])
                .await
                .map_err(db_err)?;
            if let Some(row) = row {
                return rec(&row, "rec");
            }
        }
    }

    pub async fn get_provider(&self, key: &str) -> Result<Option<Provider>> {
        let row = self
            .client()
            .await?
            .opt("SELECT rec FROM providers WHERE key = $1", &[&key])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    /// Oldest first, ties by name, as sled lists them.
    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        let rows = self
            .client()
            .await?
            .all("SELECT rec FROM providers", &[])
            .await
            .map_err(db_err)?;
        let mut all = rows
            .iter()
            .map(|r| rec::<Provider>(r, "rec"))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(all)
    }

    /// Locks the row, applies `change` and writes it back in one transaction.
    pub async fn update_provider(
        &self,
        key: &str,
        change: impl Fn(&mut Provider) -> Result<()>,
    ) -> Result<Provider> {
        with_tx!(self, |tx| {
            let row = tx
                .opt(
                    "SELECT rec FROM providers WHERE key = $1 FOR UPDATE",
                    &[&key],
                )
                .await?
                .ok_or(Error::NotFound(Entity::Provider))?;
            let mut p: Provider = rec(&row, "rec")?;
            let (id, name) = (p.id.clone(), p.name.clone());
            change(&mut p)?;
            if p.id != id || p.name != name {
                return Err(
                    Error::internal("an update may not change a provider's id or name").into(),
                );
            }
            tx.exec(
                "UPDATE providers SET created_at = $2, rec = $3 WHERE key = $1",
                &[&key, &p.created_at, &codec::encode(&p)],
            )
            .await?;
            Ok(p)
        })
    }

    /// Removes the provider and, by `ON DELETE CASCADE`, its links: one statement.
    pub async fn remove_provider(&self, key: &str) -> Result<Option<Provider>> {
        let row = self
            .client()
            .await?
            .opt(
                "DELETE FROM providers WHERE key = $1 RETURNING rec",
                &[&key],
            )
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }
}
