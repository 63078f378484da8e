//! The attempt counters all nodes share (`throttles`, migration 3): one fixed window per throttle and key, counted
//! by one conditional upsert, so a window's count is the database's and N nodes together admit at most `limit`
//! attempts per window (`core::throttle::SharedThrottle` keeps the reserve / give-back rule).

use super::{db_err, Pg, Prepared};
use crate::clock::Millis;
use crate::error::Result;

/// One attempt at a window: counted (`count` is the window's count with it), or refused because the window that
/// began at `start` is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Counted { count: u32 },
    Full { start: Millis },
}

impl Pg {
    /// Counts one attempt for `key` in `throttle` unless its window holds `limit` already; an ended window starts
    /// again at `now`. The test and the increment are one statement on one row, so concurrent callers on any node
    /// serialize on that row.
    pub async fn throttle_reserve(
        &self,
        throttle: &str,
        key: &[u8; 32],
        limit: u32,
        window_ms: Millis,
        now: Millis,
    ) -> Result<Attempt> {
        let client = self.client().await?;
        let key = key.as_slice();
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let counted = client
            .opt(
                "INSERT INTO throttles AS t (throttle, key, window_start, ends_at, n)
                 VALUES ($1, $2, $3::bigint, $3::bigint + $4::bigint, 1)
                 ON CONFLICT (throttle, key) DO UPDATE SET
                     window_start = CASE WHEN t.ends_at <= $3 THEN $3 ELSE t.window_start END,
                     ends_at = CASE WHEN t.ends_at <= $3 THEN $3 + $4::bigint ELSE t.ends_at END,
                     n = CASE WHEN t.ends_at <= $3 THEN 1 ELSE t.n + 1 END
                 WHERE t.ends_at <= $3 OR t.n < $5
                 RETURNING n",
                &[&throttle, &key, &now, &window_ms, &limit],
            )
            .await
            .map_err(db_err)?;
        if let Some(row) = counted {
            let n: i32 = row.get(0);
            return Ok(Attempt::Counted {
                count: n.max(0) as u32,
            });
        }
        // Full: read when its window began (a reset since then leaves none: the window is `now`'s).
        let start = client
            .opt(
                "SELECT window_start FROM throttles WHERE throttle = $1 AND key = $2",
                &[&throttle, &key],
            )
            .await
            .map_err(db_err)?
            .map_or(now, |r| r.get(0));
        Ok(Attempt::Full { start })
    }

    /// Gives back one counted attempt (it succeeded).
    pub async fn throttle_give_back(&self, throttle: &str, key: &[u8; 32]) -> Result<()> {
        self.client()
            .await?
            .exec(
                "UPDATE throttles SET n = n - 1 WHERE throttle = $1 AND key = $2 AND n > 0",
                &[&throttle, &key.as_slice()],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Forgets `key`'s window.
    pub async fn throttle_reset(&self, throttle: &str, key: &[u8; 32]) -> Result<()> {
        self.client()
            .await?
            .exec(
                "DELETE FROM throttles WHERE throttle = $1 AND key = $2",
                &[&throttle, &key.as_slice()],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Drops `throttle`'s windows that ended by `now`; returns how many.
    pub async fn throttle_sweep(&self, throttle: &str, now: Millis) -> Result<u64> {
        self.client()
            .await?
            .exec(
                "DELETE FROM throttles WHERE throttle = $1 AND ends_at <= $2",
                &[&throttle, &now],
            )
            .await
            .map_err(db_err)
    }
}
