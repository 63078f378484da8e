//! The expired-record sweeper on PostgreSQL: one node at a time, in bounded batches.
//!
//! The lease is a session-level `pg_try_advisory_lock` taken on one pooled connection for the whole round and
//! released on it at the end. A lease row (holder + expiry, taken by a conditional `UPDATE`) would need a table, an
//! expiry to tune and a clock to trust; the advisory lock needs neither: the database drops it the moment the
//! holding node's connection goes (a crash, `kill -9`, a network partition), so a dead node never blocks the
//! sweep. Its key is this schema's, so deployments in separate schemas of one database sweep independently.
//!
//! Each batch is one short statement deleting at most [`BATCH`] rows by key, so a sweep never holds many row locks
//! or a long transaction against the requests it runs beside. Every statement re-checks its condition, so a batch
//! deletes only what is dead when it runs, whatever another node did meanwhile.

use super::{db_err, Pg};
use crate::clock::Millis;
use crate::error::Result;

/// The advisory lock class of the sweep (the first key; the second is the schema's hash).
const LEASE: i32 = 0x6c6b_7377; // "lksw"
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
        let leased: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                &[&LEASE],
            )
            .await
            .map_err(db_err)?
            .get(0);
        if !leased {
            return Ok(None);
        }
        let swept = sweep_all(&client, now).await;
        let released = client
            .execute(
                "SELECT pg_advisory_unlock($1, hashtext(current_schema()))",
                &[&LEASE],
            )
            .await;
        if released.is_err() {
            // The connection is broken: the database released the lock with it. Never return it to the pool.
            let _ = deadpool_postgres::Object::take(client);
        }
        swept.map(Some)
    }
}

async fn sweep_all(client: &tokio_postgres::Client, now: Millis) -> Result<usize> {
    let mut n = 0;
    for sql in DEAD {
        n += batched(client, sql, &[&now, &BATCH]).await?;
    }
    Ok(n + batched(client, EMPTY_FAMILIES, &[&BATCH]).await?)
}

/// Runs the delete `sql` (limited to [`BATCH`] rows) until a run deletes fewer; returns the rows deleted.
async fn batched(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<usize> {
    let stmt = client.prepare(sql).await.map_err(db_err)?;
    let mut n = 0;
    loop {
        let k = client.execute(&stmt, params).await.map_err(db_err)?;
        n += k as usize;
        if k < BATCH as u64 {
            return Ok(n);
        }
    }
}
