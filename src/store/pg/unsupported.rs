//! What the PostgreSQL backend does not have yet (docs/postgres.md lists it): upstream providers' writes, links,
//! and the offline operations. Each says so by name instead of misbehaving.

use super::{db_err, rec, unsupported, Pg};
use crate::clock::Millis;
use crate::error::Result;
use crate::model::{Link, Provider};

/// Upstream providers: the reads are native (so pages and start-up that list providers work), the writes are not
/// there yet.
impl Pg {
    pub async fn add_provider(&self, _: &Provider) -> Result<Provider> {
        Err(unsupported("add_provider"))
    }

    pub async fn get_provider(&self, key: &str) -> Result<Option<Provider>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT rec FROM providers WHERE key = $1", &[&key])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        let rows = self
            .client()
            .await?
            .query("SELECT rec FROM providers ORDER BY created_at, key", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| rec(r, "rec")).collect()
    }

    pub async fn update_provider(
        &self,
        _: &str,
        _: impl Fn(&mut Provider) -> Result<()>,
    ) -> Result<Provider> {
        Err(unsupported("update_provider"))
    }

    pub async fn remove_provider(&self, _: &str) -> Result<Option<Provider>> {
        Err(unsupported("remove_provider"))
    }
}

/// Links to upstream accounts: not there yet (their table and unique indexes are in the schema).
impl Pg {
    pub async fn create_link(&self, _: &Link) -> Result<()> {
        Err(unsupported("create_link"))
    }

    pub async fn get_link(&self, _: &str) -> Result<Option<Link>> {
        Err(unsupported("get_link"))
    }

    pub async fn sign_in_link(&self, _: &str, _: &str) -> Result<Option<Link>> {
        Err(unsupported("sign_in_link"))
    }

    pub async fn sign_in_link_of_user(&self, _: &str, _: &str) -> Result<Option<Link>> {
        Err(unsupported("sign_in_link_of_user"))
    }

    pub async fn links_of_user(&self, _: &str) -> Result<Vec<Link>> {
        Err(unsupported("links_of_user"))
    }

    pub async fn newest_link_time(&self, _: &str) -> Result<Option<Millis>> {
        Err(unsupported("newest_link_time"))
    }

    pub async fn next_link_time(&self, _: &str, _: Millis) -> Result<Millis> {
        Err(unsupported("next_link_time"))
    }

    pub async fn list_links(&self) -> Result<Vec<Link>> {
        Err(unsupported("list_links"))
    }

    pub async fn update_link(&self, _: &str, _: impl Fn(&mut Link) -> Result<()>) -> Result<Link> {
        Err(unsupported("update_link"))
    }

    pub async fn delete_link(&self, _: &str) -> Result<Link> {
        Err(unsupported("delete_link"))
    }
}

/// Offline operations. A committed transaction is durable and atomic, so there is nothing to flush or repair;
/// the sweep, the record check and the backup are `sweep.rs` and `backup.rs`.
impl Pg {
    /// Not measured yet (`pg_database_size` is a query, and this gauge is read synchronously).
    pub fn size_on_disk(&self) -> u64 {
        0
    }

    pub fn flush_blocking(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the pool: idle connections go now, busy ones when they are returned.
    pub fn close(&self) -> Result<()> {
        self.pool.close();
        Ok(())
    }

    /// Nothing to repair: every use case is one transaction, which a crash rolls back whole.
    pub fn repair(&self) -> Result<usize> {
        Ok(0)
    }
}
