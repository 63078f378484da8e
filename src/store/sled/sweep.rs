//! Background removal of expired records, so the store does not grow without bound.

use std::time::Duration;

use super::Sled;
use crate::clock::Clock;
use crate::store::Store;

/// Sweeps every `every` until the returned handle is aborted (or the runtime stops).
pub fn spawn_sweeper(store: Store, clock: Clock, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            let now = clock.now_ms();
            // Scans are blocking IO: keep them off the async workers.
            let r = tokio::task::spawn_blocking(move || store.sweep(now)).await;
            match r {
                Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "swept expired records"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sweep failed"),
                Err(e) => tracing::warn!(error = %e, "sweep task failed"),
            }
        }
    })
}

impl Sled {
    /// Removes everything that expired at or before `now`; returns how many records went.
    pub fn sweep(&self, now: crate::clock::Millis) -> crate::error::Result<usize> {
        let n = self.sweep_login_tokens(now)?
            + self.sweep_tokens(now)?
            + self.sweep_revoked_jti(now)?;
        if n > 0 {
            self.flush_blocking()?;
        }
        Ok(n)
    }
}
