//! The only reader of wall-clock time. Everything that expires (codes, tokens, sessions, rate-limit windows) asks a
//! [`Clock`], so tests can pin or step time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock shared by every clone (tests).
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: Millis) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start))),
        }
    }

    pub fn now_ms(&self) -> Millis {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            #[allow(clippy::disallowed_methods)]
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, ms: Millis) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

/// oxide-auth compares grant lifetimes with the real wall clock internally. Latchkey checks every expiry itself
/// with its [`Clock`] before it hands a grant over, and gives oxide-auth an instant it will not reject.
pub fn oxide_unexpired() -> chrono::DateTime<chrono::Utc> {
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now();
    now + chrono::Duration::days(365)
}

/// The instant oxide-auth derives `expires_in` from (it subtracts the real wall clock).
pub fn oxide_expiry(ttl_secs: u64) -> chrono::DateTime<chrono::Utc> {
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now();
    now + chrono::Duration::seconds(ttl_secs as i64) + chrono::Duration::milliseconds(500)
}

/// RFC 3339 UTC with milliseconds, as Rocket.Chat renders dates: `2024-01-17T13:30:41.521Z`.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rc_dates() {
        assert_eq!(rfc3339(1_705_498_241_521), "2024-01-17T13:30:41.521Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        let c2 = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c2.advance(500);
        assert_eq!(c.now_ms(), 1_500);
    }
}
