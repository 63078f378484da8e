//! Schema migrations, embedded in the binary and applied at start in one transaction under a lock, so nodes
//! starting together apply each exactly once; `latchkey_schema` records the versions applied.
//!
//! The lock is a row lock (`SELECT … FOR UPDATE` on the one row of `latchkey_migration_lock`) held by the
//! migration transaction itself: every PostgreSQL-protocol engine has row locks (CockroachDB has no advisory
//! locks), the database drops it with the transaction (a node dying mid-migration blocks no one and leaves
//! nothing half-applied), and it needs no expiry. A lease row would need an expiry longer than the slowest
//! migration, and its table is itself made by a migration. The two bootstrap tables are created before the lock
//! with `IF NOT EXISTS`; a node that lost a race in the catalog to another tries again (only then: any other error
//! refuses the start at once).

use crate::store::OpenError;

/// The migrations in order: version, SQL. Append only; never edit one that a release has applied.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_records.sql")),
    (2, include_str!("migrations/0002_links.sql")),
    (3, include_str!("migrations/0003_nodes.sql")),
    (4, include_str!("migrations/0004_leases.sql")),
];

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The version table and the migration lock's row, made if absent.
const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS latchkey_schema (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS latchkey_migration_lock (id integer PRIMARY KEY);
    INSERT INTO latchkey_migration_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING";

/// Attempts at migrating: nodes starting together on an empty database race in the catalog (creating the same
/// tables or the lock's row), which PostgreSQL may answer with an error instead of a wait; the loser tries again.
const TRIES: u32 = 5;

/// Whether `e` is a lost catalog race, which trying again resolves; any other error is the database refusing the
/// migration and is final.
fn lost_race(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(is_race)
}

/// The codes of a lost catalog race: a duplicate key, table or object, a deadlock, a serialization failure. Two
/// `CREATE TABLE IF NOT EXISTS` of one table at once can fail on the table's row type in the catalog: "type …
/// already exists" is `duplicate_object` (42710), not `duplicate_table`; the multinode start test met it in CI.
fn is_race(code: &tokio_postgres::error::SqlState) -> bool {
    use tokio_postgres::error::SqlState;
    [
        SqlState::UNIQUE_VIOLATION,
        SqlState::DUPLICATE_TABLE,
        SqlState::DUPLICATE_OBJECT,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
    ]
    .contains(code)
}

/// Why one attempt did not migrate: the database failed a statement, or its schema is newer than known.
enum Failed {
    Db(tokio_postgres::Error),
    TooNew(i32),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        Failed::Db(e)
    }
}

/// Brings the database to [`SCHEMA_VERSION`], trying again (a bounded number of times, after a jittered
/// 50–250 ms) only when it lost a catalog race; a database with a newer schema is refused.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), OpenError> {
    let mut tries = TRIES;
    loop {
        match attempt(client).await {
            Ok(()) => return Ok(()),
            Err(Failed::Db(e)) if tries > 1 && lost_race(&e) => {
                tries -= 1;
                tracing::warn!(error = %e, "schema migration raced another node; trying again");
                let jitter = rand_core::RngCore::next_u64(&mut rand_core::OsRng) % 200;
                tokio::time::sleep(std::time::Duration::from_millis(50 + jitter)).await;
            }
            // The database's own message, not only "db error": a refused start must say why.
            Err(Failed::Db(e)) => {
                let why = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.to_string());
                return Err(OpenError::Postgres(format!(
                    "schema migration failed: {why}"
                )));
            }
            Err(Failed::TooNew(found)) => {
                return Err(OpenError::SchemaTooNew {
                    found,
                    known: SCHEMA_VERSION,
                })
            }
        }
    }
}

/// One attempt: [`BOOTSTRAP`], then the migrations not yet applied, in one transaction under the lock's row.
async fn attempt(client: &mut tokio_postgres::Client) -> Result<(), Failed> {
    client.batch_execute(BOOTSTRAP).await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT id FROM latchkey_migration_lock WHERE id = 1 FOR UPDATE",
        &[],
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM latchkey_schema", &[])
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(Failed::TooNew(found));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO latchkey_schema (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    Ok(tx.commit().await?)
}

#[cfg(test)]
mod tests {
    use tokio_postgres::error::SqlState;

    use super::is_race;

    /// "type \"latchkey_schema\" already exists", met by nodes starting together on an empty database, is a race
    /// to try again; a refusal such as a missing privilege or a syntax error is not.
    #[test]
    fn a_duplicate_catalog_object_is_a_race_to_try_again_and_a_refusal_is_not() {
        assert!(is_race(&SqlState::DUPLICATE_OBJECT));
        assert!(is_race(&SqlState::DUPLICATE_TABLE));
        assert!(is_race(&SqlState::UNIQUE_VIOLATION));
        assert!(!is_race(&SqlState::INSUFFICIENT_PRIVILEGE));
        assert!(!is_race(&SqlState::SYNTAX_ERROR));
    }
}
