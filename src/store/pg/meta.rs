//! What nodes starting together must agree on, written by whichever node comes first while the others wait on its
//! row and adopt what it wrote: `meta` values inserted if absent (the Stack project and its keys, the master key's
//! check value) and the signing keys an algorithm gets (one node's, not one per node).

use super::{db_err, rec, with_tx, Pg, Prepared};
use crate::error::Result;
use crate::model::SigningKey;
use crate::store::codec;

impl Pg {
    /// Stores `value` under `key` unless a value is there: `None` when this call stored it, else the value found.
    /// A concurrent insert of the same key waits for the first to commit, then finds its value.
    pub async fn meta_put_if_absent(&self, key: &str, value: &[u8]) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        let stored = client
            .exec(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await
            .map_err(db_err)?;
        if stored == 1 {
            return Ok(None);
        }
        // A new statement: its snapshot sees the row the insert waited for.
        let row = client
            .one("SELECT value FROM meta WHERE key = $1", &[&key])
            .await
            .map_err(db_err)?;
        Ok(Some(row.get(0)))
    }

    /// Stores a new signing key unless the kids of its algorithm differ from `seen` (what the caller decided to
    /// make it on): nodes that each decided at once to give an algorithm a key or a successor serialize on one
    /// lock row, and only the first finds the keys as it saw them. Whether this one stored its key.
    pub async fn put_signing_key_unless_changed(
        &self,
        key: &SigningKey,
        seen: &[String],
    ) -> Result<bool> {
        with_tx!(self, |tx| {
            tx.exec(
                "INSERT INTO meta (key, value) VALUES ($1, '') ON CONFLICT (key) DO NOTHING",
                &[&SIGNING_KEYS_LOCK],
            )
            .await?;
            tx.exec(
                "SELECT 1 FROM meta WHERE key = $1 FOR UPDATE",
                &[&SIGNING_KEYS_LOCK],
            )
            .await?;
            let mut now: Vec<String> = Vec::new();
            for row in tx.all("SELECT rec FROM signing_keys", &[]).await? {
                let k: SigningKey = rec(&row, "rec")?;
                if k.alg == key.alg {
                    now.push(k.kid);
                }
            }
            now.sort();
            let mut seen = seen.to_vec();
            seen.sort();
            if now != seen {
                return Ok(false);
            }
            tx.exec(
                "INSERT INTO signing_keys (kid, signs_from, rec) VALUES ($1, $2, $3)",
                &[&key.kid, &key.signs_from, &codec::encode(key)],
            )
            .await?;
            Ok(true)
        })
    }
}

/// The `meta` row whose lock serializes the nodes' signing-key decisions.
const SIGNING_KEYS_LOCK: &str = "signing_keys_lock";
