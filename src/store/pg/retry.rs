//! Every multi-statement use case runs in [`with_tx!`]: one transaction, retried a few times with jittered
//! exponential backoff when PostgreSQL aborted it as a serialization failure or a deadlock victim (SQLSTATE 40001,
//! 40P01). Such an abort rolls the whole transaction back, so running the use case again from the start is safe
//! and is what the database asks for. An error of COMMIT itself is never retried: its outcome is unknown (the
//! connection may have gone after the server committed), so it is `Unavailable`, as is any lost connection.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::db_err;
use crate::error::Error;

/// Attempts per use case: a conflict that survives five rounds is load the caller should see (a 503).
const ATTEMPTS: u32 = 5;
/// The first backoff's ceiling; each retry doubles it (2, 4, 8, 16 ms), each wait uniform below its ceiling.
const BACKOFF_MS: u64 = 2;

/// Why an attempt of a transaction did not commit: the database refused a statement (`Db`), the use case said no
/// (`Domain`: a conflict, not found, …), or COMMIT itself failed (`AtCommit`, outcome unknown).
#[derive(Debug)]
pub(super) enum Abort {
    Db(tokio_postgres::Error),
    Domain(Error),
    AtCommit(tokio_postgres::Error),
}

/// Where in a transaction an error came from; only errors before COMMIT returned may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Work,
    Commit,
}

/// Whether an error with `code` at `stage` aborted the transaction so that running it again may succeed.
pub(super) fn transient(stage: Stage, code: Option<&SqlState>) -> bool {
    stage == Stage::Work
        && matches!(code, Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// What the retry loop asks of an attempt's error.
pub(super) trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for Abort {
    fn is_transient(&self) -> bool {
        match self {
            Abort::Db(e) => transient(Stage::Work, e.code()),
            Abort::AtCommit(e) => transient(Stage::Commit, e.code()),
            Abort::Domain(_) => false,
        }
    }
}

impl From<tokio_postgres::Error> for Abort {
    fn from(e: tokio_postgres::Error) -> Self {
        Abort::Db(e)
    }
}

impl From<Error> for Abort {
    fn from(e: Error) -> Self {
        Abort::Domain(e)
    }
}

impl From<Abort> for Error {
    fn from(a: Abort) -> Self {
        match a {
            Abort::Db(e) | Abort::AtCommit(e) => db_err(e),
            Abort::Domain(e) => e,
        }
    }
}

/// The result of one attempt of a transaction's work.
pub(super) type TxResult<T> = std::result::Result<T, Abort>;

/// The retry budget of one use case: how many attempts have run.
pub(super) struct Retry {
    attempts: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 1 }
    }
}

impl Retry {
    /// Whether to run the attempt that failed with `e` again: only a transient failure within [`ATTEMPTS`].
    /// Sleeps a jittered, doubling backoff first, so two rivals do not collide again in lockstep.
    pub(super) async fn again(&mut self, e: &impl Transient) -> bool {
        if !e.is_transient() || self.attempts >= ATTEMPTS {
            return false;
        }
        tracing::debug!(
            attempt = self.attempts,
            "PostgreSQL transaction aborted (40001/40P01): retrying"
        );
        tokio::time::sleep(backoff(self.attempts)).await;
        self.attempts += 1;
        true
    }
}

/// The wait before attempt `n + 1`: uniform in `[0, BACKOFF_MS · 2^(n-1))` ms, at microsecond grain.
fn backoff(n: u32) -> Duration {
    use rand_core::RngCore;
    let ceiling_us = (BACKOFF_MS * 1_000) << (n - 1);
    Duration::from_micros(u64::from(rand_core::OsRng.next_u32()) % ceiling_us)
}

/// `with_tx!(pg, |tx| body)`: runs `body` (a [`TxResult`], with `tx: &Transaction` in scope) in a transaction on
/// one pooled connection of `pg` and commits it; when the database aborted it as a serialization failure or
/// deadlock victim, runs it again from the start in a new transaction ([`Retry`]). A `Domain` error rolls back.
/// Evaluates to the domain's `Result`. `body` must depend on the database alone, since it may run more than
/// once. (A macro rather than a function taking an async closure: the body borrows the transaction and the
/// caller's arguments, which a closure's future could not, and stays `Send` for the server's handlers.)
macro_rules! with_tx {
    ($pg:expr, |$tx:ident| $body:expr) => {{
        use $crate::store::pg::retry::{Abort, Retry, TxResult};
        let mut client = $pg.client().await?;
        let mut retry = Retry::default();
        loop {
            let tx = match client.transaction().await {
                Ok(tx) => tx,
                Err(e) => break Err($crate::error::Error::from(Abort::Db(e))),
            };
            let out: TxResult<_> = async {
                let $tx = &tx;
                $body
            }
            .await;
            let out = match out {
                Ok(v) => tx.commit().await.map(|()| v).map_err(Abort::AtCommit),
                Err(e) => {
                    drop(tx);
                    Err(e)
                }
            };
            match out {
                Err(e) if retry.again(&e).await => continue,
                done => break done.map_err($crate::error::Error::from),
            }
        }
    }};
}
pub(super) use with_tx;

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt's failure as the loop sees it: a code at a stage.
    #[derive(Debug)]
    struct Fake(Stage, SqlState);

    impl Transient for Fake {
        fn is_transient(&self) -> bool {
            transient(self.0, Some(&self.1))
        }
    }

    #[test]
    fn only_serialization_failures_and_deadlocks_before_commit_are_transient() {
        for code in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ] {
            assert!(transient(Stage::Work, Some(&code)));
            assert!(!transient(Stage::Commit, Some(&code)), "{code:?} at commit");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CONNECTION_FAILURE,
            SqlState::QUERY_CANCELED,
        ] {
            assert!(!transient(Stage::Work, Some(&code)), "{code:?}");
        }
        assert!(!transient(Stage::Work, None), "a lost connection");
    }

    /// Runs `attempt` as `with_tx!` does: until it succeeds or [`Retry`] says no more; counts the calls.
    async fn run(mut attempt: impl FnMut(u32) -> Result<u32, Fake>) -> (Result<u32, Fake>, u32) {
        let (mut retry, mut calls) = (Retry::default(), 0);
        loop {
            calls += 1;
            match attempt(calls) {
                Err(e) if retry.again(&e).await => continue,
                done => return (done, calls),
            }
        }
    }

    #[tokio::test]
    async fn two_serialization_failures_then_success_is_success_on_the_third_attempt() {
        let (out, calls) = run(|n| match n {
            1 => Err(Fake(Stage::Work, SqlState::T_R_SERIALIZATION_FAILURE)),
            2 => Err(Fake(Stage::Work, SqlState::T_R_DEADLOCK_DETECTED)),
            n => Ok(n),
        })
        .await;
        assert!(matches!(out, Ok(3)));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn a_failure_at_commit_or_a_lasting_conflict_is_not_retried_further() {
        let (out, calls) =
            run(|_| Err(Fake(Stage::Commit, SqlState::T_R_SERIALIZATION_FAILURE))).await;
        assert!(out.is_err());
        assert_eq!(calls, 1, "an unknown outcome is never retried");

        let (out, calls) =
            run(|_| Err(Fake(Stage::Work, SqlState::T_R_SERIALIZATION_FAILURE))).await;
        assert!(out.is_err());
        assert_eq!(calls, ATTEMPTS, "bounded");

        let (_, calls) = run(|_| Err(Fake(Stage::Work, SqlState::UNIQUE_VIOLATION))).await;
        assert_eq!(calls, 1, "a domain answer is final");
    }

    #[test]
    fn backoff_doubles_and_stays_below_its_ceiling() {
        for n in 1..ATTEMPTS {
            let ceiling = Duration::from_millis(BACKOFF_MS << (n - 1));
            assert!((0..100).all(|_| backoff(n) < ceiling));
        }
    }
}
