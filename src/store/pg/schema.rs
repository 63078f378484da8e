//! Schema migrations, embedded in the binary and applied at start in one transaction under an advisory lock, so
//! nodes starting together apply each exactly once; `latchkey_schema` records the versions applied.

use crate::store::OpenError;

/// The migrations in order: version, SQL. Append only; never edit one that a release has applied.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_records.sql")),
    (2, include_str!("migrations/0002_links.sql")),
    (3, include_str!("migrations/0003_nodes.sql")),
];

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key of migrations (any constant; "latchkey" in ASCII).
const LOCK: i64 = 0x6c61_7463_686b_6579;

/// Brings the database to [`SCHEMA_VERSION`]; a database with a newer schema is refused.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), OpenError> {
    let fail =
        |e: tokio_postgres::Error| OpenError::Postgres(format!("schema migration failed: {e}"));
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS latchkey_schema (
            version    integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
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
