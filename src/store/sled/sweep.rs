//! Removal of expired records on sled (`Store::sweep`; the sweeper task is `store::spawn_sweeper`).

use super::Sled;

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
