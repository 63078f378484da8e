//! The PostgreSQL backend of the [`Store`](crate::store::Store) (docs/postgres.md): a pool of connections to one
//! database that several Latchkey nodes may share. Each use case is SQL the database enforces its invariants in:
//! a conditional `UPDATE … RETURNING` where one caller must win (redeeming a code, rotating a refresh token), a
//! unique index where a value must be free, a counter row where a count must not drop below one. Records are the
//! versioned bincode blobs of `store::record`, so one versioning rule serves both backends. A write returns once
//! its transaction has committed, which is when PostgreSQL has made it durable. Nothing outside this module names
//! a PostgreSQL type.

mod app;
mod backup;
mod conn;
mod lease;
mod lifecycle;
mod link;
mod meta;
mod prepared;
mod provider;
mod retry;
mod schema;
mod session;
mod small;
mod sweep;
mod throttle;
mod token;
mod user;

use std::path::{Path, PathBuf};

use tokio_postgres::Row;

pub use throttle::Attempt;

use prepared::Prepared;
use retry::{with_tx, Abort, TxResult};

use super::{codec, OpenError};
use crate::error::{Error, Field, Result};

#[cfg(test)]
pub use schema::SCHEMA_VERSION;

/// The PostgreSQL backend: the pool and the data dir (which still holds `master.key` unless the config has one).
pub struct Pg {
    pool: deadpool_postgres::Pool,
    dir: PathBuf,
    health: conn::Health,
    /// This process's name as a lease holder (random per start, so a restarted node is a new holder).
    node: String,
}

impl Pg {
    /// Connects to `url`, applies the embedded migrations (under a row lock, so nodes starting together apply
    /// each once) and refuses a database whose schema is newer than this binary knows.
    pub(super) async fn connect(url: &str, dir: &Path) -> Result<Self, OpenError> {
        let pool = conn::pool(url).map_err(OpenError::Postgres)?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| OpenError::Postgres(format!("cannot connect: {e}")))?;
        schema::migrate(&mut client).await?;
        Ok(Self {
            pool,
            dir: dir.to_owned(),
            health: conn::Health::default(),
            node: lease::node_name(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the database answers (`/healthz`; cached for a second, see [`conn::Health`]).
    pub async fn healthy(&self) -> bool {
        self.health.check(&self.pool).await
    }

    /// A pooled connection; an exhausted or unreachable database is [`Error::Unavailable`] (a 503).
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            tracing::error!(error = %e, "PostgreSQL connection unavailable");
            Error::Unavailable
        })
    }
}

/// A driver error as the domain's: a lost connection or a database that refuses work is [`Error::Unavailable`]
/// (the outcome of the write is unknown to the caller, as with a full disk), anything else internal. A
/// serialization failure or deadlock is `Unavailable` too once [`with_tx!`] has retried it enough.
fn db_err(e: tokio_postgres::Error) -> Error {
    let class = e.code().map(|c| &c.code()[..2]);
    if e.is_closed() || matches!(class, None | Some("08" | "53" | "57" | "40")) {
        tracing::error!(error = %e, "PostgreSQL store failed");
        Error::Unavailable
    } else {
        Error::internal(e)
    }
}

/// A unique violation of `constraint` as the domain's conflict on `field`; any other error stays the database's
/// (inside [`with_tx!`] it may be retried; outside, `?` makes it [`db_err`]'s).
fn conflict_on(e: tokio_postgres::Error, constraints: &[(&str, Field, &str)]) -> Abort {
    if let Some(db) = e.as_db_error() {
        if *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION {
            for (name, field, value) in constraints {
                if db.constraint() == Some(*name) {
                    return Abort::Domain(Error::Conflict {
                        field: *field,
                        value: (*value).to_owned(),
                    });
                }
            }
        }
    }
    Abort::Db(e)
}

/// Whether `e` is a foreign-key violation (a row it refers to is gone).
fn is_fk_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

/// Decodes the record blob in column `col` of `row`.
fn rec<R: codec::Record>(row: &Row, col: &str) -> Result<R> {
    codec::decode(row.try_get::<_, &[u8]>(col).map_err(Error::internal)?)
}
