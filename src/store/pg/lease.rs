//! Leases (`leases`, migration 4): a named lock one node holds at a time, portable to every PostgreSQL-protocol
//! engine. Taking and renewing are one conditional upsert that wins only when the lease is free, expired or
//! already ours; expiry (the database's clock, so nodes' clocks need not agree) is what frees the lease of a
//! holder that crashed or lost the network, and releasing deletes it only while it is ours.

use super::{db_err, Pg, Prepared};
use crate::error::Result;

/// A random holder name for this process: 16 random bytes in hex.
pub(super) fn node_name() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Pg {
    /// Takes or renews lease `name` for `ttl_ms` from now; whether this node holds it.
    pub(super) async fn lease(
        &self,
        client: &deadpool_postgres::Client,
        name: &str,
        ttl_ms: f64,
    ) -> Result<bool> {
        let row = client
            .opt(
                "INSERT INTO leases AS l (name, holder, expires_at)
                 VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                 WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder
                 RETURNING holder",
                &[&name, &self.node.as_str(), &ttl_ms],
            )
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    /// Gives lease `name` up, if this node still holds it.
    pub(super) async fn release(
        &self,
        client: &deadpool_postgres::Client,
        name: &str,
    ) -> Result<()> {
        client
            .exec(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &self.node.as_str()],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
