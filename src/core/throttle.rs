//! Fixed-window failure counters (failed logins per username and per IP, failed client authentications per client).
//! Sharded map, no global lock; only failures count, and a full window blocks even correct attempts.

use dashmap::DashMap;

use crate::clock::Millis;
use crate::error::Error;

pub struct Throttle {
    /// Keyed by the SHA-256 of the caller's key: keys are caller-chosen (a username or `client_id` can be as long
    /// as a request body allows), so each window costs 32 bytes whatever the key's length.
    windows: DashMap<[u8; 32], (Millis, u32)>,
    limit: u32,
    window_ms: Millis,
}

fn digest(key: &str) -> [u8; 32] {
    crate::crypto::sha256(key.as_bytes())
}

impl Throttle {
    pub fn new(limit: u32, window_ms: Millis) -> Self {
        Self {
            windows: DashMap::new(),
            limit,
            window_ms,
        }
    }

    /// `Err(RateLimited)` when `key` has used up its failures in the current window.
    pub fn check(&self, key: &str, now: Millis) -> Result<(), Error> {
        let key = digest(key);
        let Some(w) = self.windows.get(&key) else {
            return Ok(());
        };
        let (start, count) = *w;
        drop(w);
        let reset = start + self.window_ms;
        if now >= reset {
            self.windows.remove_if(&key, |_, (s, _)| *s == start);
            return Ok(());
        }
        if count >= self.limit {
            return Err(Error::RateLimited {
                limit: self.limit,
                remaining: 0,
                reset_at_ms: reset,
                retry_after_ms: reset - now,
            });
        }
        Ok(())
    }

    /// Records one failure for `key`.
    pub fn fail(&self, key: &str, now: Millis) {
        if self.windows.len() > 100_000 {
            // Bound memory under a flood of distinct keys: forget windows that have ended.
            self.windows.retain(|_, (s, _)| now < *s + self.window_ms);
        }
        let mut e = self.windows.entry(digest(key)).or_insert((now, 0));
        if now >= e.0 + self.window_ms {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// Forgets `key` (e.g. after a successful sign-in).
    pub fn reset(&self, key: &str) {
        self.windows.remove(&digest(key));
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Failures left for `key` in its window.
    pub fn remaining(&self, key: &str, now: Millis) -> u32 {
        match self.windows.get(&digest(key)) {
            Some(w) if now < w.0 + self.window_ms => self.limit.saturating_sub(w.1),
            _ => self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_the_window_ends() {
        let t = Throttle::new(3, 1_000);
        for _ in 0..3 {
            assert!(t.check("k", 0).is_ok());
            t.fail("k", 0);
        }
        let e = t.check("k", 10).unwrap_err();
        assert!(matches!(
            e,
            Error::RateLimited {
                retry_after_ms: 990,
                ..
            }
        ));
        assert!(t.check("other", 10).is_ok());
        assert!(t.check("k", 1_000).is_ok());
        t.fail("k", 1_000);
        assert_eq!(t.remaining("k", 1_001), 2);
    }
}
