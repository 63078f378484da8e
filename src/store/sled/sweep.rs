//! Removal of expired records on sled, in bounded batches (`Store::sweep` runs them one after another off the async
//! workers; the sweeper task is `store::spawn_sweeper`).
//!
//! A batch examines at most [`BATCH`] records of one tree, resuming after the last key the previous batch saw, and
//! flushes its removals before the next begins. So a sweep over a million expired tokens is a run of short blocking
//! jobs, each a few milliseconds and one flush of at most a batch of removals: it never holds a blocking thread
//! (or sled's log) for the whole scan, and requests' group commits interleave with it.

use std::ops::Bound;

use sled::IVec;

use super::{db_err, Sled};
use crate::clock::Millis;
use crate::error::Result;

/// Records one batch examines at most.
pub(crate) const BATCH: usize = 1024;

/// Where a sweep stands between batches: the tree it is in and the last key examined there (`None`: its start).
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    phase: Phase,
    after: Option<IVec>,
}

/// The trees in sweep order. Login tokens and revoked jtis are small (one per pending sign-in or revoked JWT) and
/// are swept whole, each as one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Phase {
    #[default]
    LoginTokens,
    Codes,
    ClientTokens,
    Families,
    RevokedJti,
}

impl Phase {
    fn next(self) -> Option<Self> {
        Some(match self {
            Self::LoginTokens => Self::Codes,
            Self::Codes => Self::ClientTokens,
            Self::ClientTokens => Self::Families,
            Self::Families => Self::RevokedJti,
            Self::RevokedJti => return None,
        })
    }
}

/// What one batch of one tree did: how many records went, and the last key it examined when the tree has more.
pub(super) struct Batch {
    removed: usize,
    more_after: Option<IVec>,
}

/// Calls `f` on at most [`BATCH`] entries of `tree` after `after`; `f` returns how many records it removed.
pub(super) fn scan_batch(
    tree: &sled::Tree,
    after: Option<&[u8]>,
    mut f: impl FnMut(&IVec, IVec) -> Result<usize>,
) -> Result<Batch> {
    let entries = match after {
        Some(k) => tree.range::<&[u8], _>((Bound::Excluded(k), Bound::Unbounded)),
        None => tree.iter(),
    };
    let mut batch = Batch {
        removed: 0,
        more_after: None,
    };
    let mut last = None;
    for (i, kv) in entries.enumerate() {
        if i == BATCH {
            batch.more_after = last;
            break;
        }
        let (k, v) = kv.map_err(db_err)?;
        batch.removed += f(&k, v)?;
        last = Some(k);
    }
    Ok(batch)
}

impl Sled {
    /// Runs the batch at `at`: removes what in it expired at or before `now`; returns how many records went and
    /// where the next batch starts (`None`: the sweep is done).
    pub fn sweep_batch(&self, now: Millis, at: Cursor) -> Result<(usize, Option<Cursor>)> {
        let after = at.after.as_deref();
        let whole = |removed| Batch {
            removed,
            more_after: None,
        };
        let batch = match at.phase {
            Phase::LoginTokens => whole(self.sweep_login_tokens(now)?),
            Phase::Codes => self.sweep_codes(now, after)?,
            Phase::ClientTokens => self.sweep_client_tokens(now, after)?,
            Phase::Families => self.sweep_families(now, after)?,
            Phase::RevokedJti => whole(self.sweep_revoked_jti(now)?),
        };
        if batch.removed > 0 {
            self.flush_blocking()?;
        }
        let next = match batch.more_after {
            Some(k) => Some(Cursor {
                phase: at.phase,
                after: Some(k),
            }),
            None => at.phase.next().map(|phase| Cursor { phase, after: None }),
        };
        Ok((batch.removed, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::token::{Lineage, Subject, TokenKind, TokenRecord};

    fn client_token(expires_at: Millis) -> TokenRecord {
        TokenRecord {
            kind: TokenKind::Access,
            lineage: Lineage::Epoch(0),
            subject: Subject::Client,
            client_id: "c1".into(),
            scope: String::new(),
            issued_at: 0,
            expires_at,
            rotated: false,
            sibling: None,
        }
    }

    /// 2.5 batches of expired client tokens (their app is gone too): the tokens tree takes three batches, none examining more than `BATCH` records, and every dead one goes.
    #[tokio::test]
    async fn a_sweep_goes_in_bounded_batches_and_misses_nothing() {
        let (_dir, store) = temp_store();
        let s = store.sled_backend().unwrap();
        let n = BATCH * 5 / 2;
        for i in 0..n as u32 {
            let mut digest = [0u8; 32];
            digest[..4].copy_from_slice(&i.to_be_bytes());
            s.put_client_token(&digest, &client_token(500))
                .await
                .unwrap();
        }
        let (mut at, mut batches, mut removed) = (Some(Cursor::default()), Vec::new(), 0);
        while let Some(cursor) = at {
            let phase = cursor.phase;
            let (k, next) = s.sweep_batch(1_000, cursor).unwrap();
            assert!(k <= BATCH);
            batches.push(phase);
            removed += k;
            at = next;
        }
        assert_eq!(removed, n);
        let token_batches = batches
            .iter()
            .filter(|p| **p == Phase::ClientTokens)
            .count();
        assert_eq!(token_batches, 3);
        assert_eq!(s.t.tokens.len(), 0);
        assert_eq!(store.sweep(1_000).await.unwrap(), 0);
    }
}
