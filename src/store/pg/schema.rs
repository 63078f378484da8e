//! Schema migrations, embedded in the binary and applied at start in one transaction under a lock, so nodes
//! starting together apply each exactly once; `latchkey_schema` records the versions applied.
//!
//! The lock is a row lock (`SELECT … FOR UPDATE` on the one row of `latchkey_migration_lock`) held by the
//! migration transaction itself: every PostgreSQL-protocol engine has row locks (CockroachDB has no advisory
//! locks), the database drops it with the transaction (a node dying mid-migration blocks no one and leaves
//! nothing half-applied), and it needs no expiry. A lease row would need an expiry longer than the slowest
//! migration, and its table is itself made by a migration. The two bootstrap tables are created before the lock
//! with `IF NOT EXISTS`; nodes racing to create them retry once the winner's creation is visible.

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

/// Runs [`BOOTSTRAP`]; a node that raced another to create a table (a duplicate in the catalog) runs it again,
/// now finding the table.
async fn bootstrap(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::error::SqlState;
    let mut tries = 3;
    loop {
        match client.batch_execute(BOOTSTRAP).await {
            Err(e)
                if tries > 1
                    && matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION
                        || *c == SqlState::DUPLICATE_TABLE) =>
            {
                tries -= 1;
            }
            done => return done,
        }
    }
}

/// Brings the database to [`SCHEMA_VERSION`]; a database with a newer schema is refused.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), OpenError> {
    // The database's own message, not only "db error": a refused start must say why.
    let fail = |e: tokio_postgres::Error| {
        let why = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.to_string());
        OpenError::Postgres(format!("schema migration failed: {why}"))
    };
    bootstrap(client).await.map_err(fail)?;
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute(
        "SELECT id FROM latchkey_migration_lock WHERE id = 1 FOR UPDATE",
        &[],
    )
    .await
    .map_err(fail)?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM latchkey_schema", &[])
        .await
        .map_err(fail)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO latchkey_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(fail)?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    tx.commit().await.map_err(fail)
}
