//! The expired-record sweeper on PostgreSQL: one node at a time, in bounded batches.
//!
//! The round runs under the `sweep` lease (`lease.rs`), taken at its start, renewed before every batch and
//! released at its end: a lease row rather than an advisory lock, because CockroachDB has none (and YugabyteDB's
//! are recent). A node that dies mid-round holds it at most [`LEASE_TTL_MS`] longer; a holder whose renewal fails
//! (it was too slow and another node took over) stops. The table is the schema's, so deployments in separate
//! schemas of one database sweep independently.
//!
//! Each batch is one short statement deleting at most [`BATCH`] rows by key, so a sweep never holds many row locks
//! or a long transaction against the requests it runs beside. Every statement re-checks its condition, so a batch
//! deletes only what is dead when it runs, whatever another node did meanwhile.

use super::prepared::Params;
use super::{db_err, Pg, Prepared};
use crate::clock::Millis;
use crate::error::Result;

/// The lease a sweeping node holds.
const LEASE: &str = "sweep";
/// How long a taken or renewed lease lasts: far longer than one batch, short enough that a crashed holder's
/// round is taken over soon (rounds run minutes apart).
const LEASE_TTL_MS: f64 = 30_000.0;
/// Rows per delete statement.
const BATCH: i64 = 1000;

/// What is dead at `$1`, one statement per kind, each deleting at most `$2` rows by primary key. A token is dead
/// when it expired, was rotated away, its family was revoked, or (client_credentials) its app is gone.
const DEAD: &[&str] = &[
    "DELETE FROM codes WHERE digest IN (SELECT digest FROM codes WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM tokens WHERE digest IN (SELECT t.digest FROM tokens t LEFT JOIN families f ON f.id = t.family
     WHERE t.expires_at <= $1 OR t.rotated OR f.revoked
        OR (t.family IS NULL AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.client_id = t.client_id))
     LIMIT $2)",
    "DELETE FROM login_tokens WHERE digest IN (SELECT digest FROM login_tokens WHERE expires_at <= $1 LIMIT $2)",
    "DELETE FROM revoked_jti WHERE jti IN (SELECT jti FROM revoked_jti WHERE expires_at <= $1 LIMIT $2)",
];

/// A family goes once it has no token left (after the tokens above). A new family is never empty: its first
/// tokens are inserted in its own transaction.
const EMPTY_FAMILIES: &str = "DELETE FROM families WHERE id IN (SELECT f.id FROM families f
     WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family = f.id) LIMIT $1)";

impl Pg {
    /// Removes what is dead at `now` under the sweep lease; `None` when another node holds it (it is sweeping).
    pub async fn sweep(&self, now: Millis) -> Result<Option<usize>> {
        let client = self.client().await?;
        if !self.lease(&client, LEASE, LEASE_TTL_MS).await? {
            return Ok(None);
        }
        let swept = self.sweep_all(&client, now).await;
        // A failed release leaves the lease to expire.
        let _ = self.release(&client, LEASE).await;
        swept.map(Some)
    }

    async fn sweep_all(&self, client: &deadpool_postgres::Client, now: Millis) -> Result<usize> {
        let mut n = 0;
        for sql in DEAD {
            n += self.batched(client, sql, &[&now, &BATCH]).await?;
        }
        Ok(n + self.batched(client, EMPTY_FAMILIES, &[&BATCH]).await?)
    }

    /// Runs the delete `sql` (limited to [`BATCH`] rows) until a run deletes fewer or the lease is lost, renewing
    /// the lease before each run; returns the rows deleted.
    async fn batched(
        &self,
        client: &deadpool_postgres::Client,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<usize> {
        let mut n = 0;
        while self.lease(client, LEASE, LEASE_TTL_MS).await? {
            let k = client.exec(sql, params).await.map_err(db_err)?;
            n += k as usize;
            if k < BATCH as u64 {
                break;
            }
        }
        Ok(n)
    }
}
