//! The store's lifecycle on PostgreSQL: what sled does on disk (flush, repair, close, size) is here either the
//! pool's or nothing, since every use case is one committed transaction.

use super::Pg;
use crate::error::Result;

/// A committed transaction is durable and atomic, so there is nothing to flush or repair; the sweep, the record
/// check and the backup are `sweep.rs` and `backup.rs`.
impl Pg {
    /// Not measured yet (`pg_database_size` is a query, and this gauge is read synchronously).
    pub fn size_on_disk(&self) -> u64 {
        0
    }

    pub fn flush_blocking(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the pool: idle connections go now, busy ones when they are returned.
    pub fn close(&self) -> Result<()> {
        self.pool.close();
        Ok(())
    }

    /// Nothing to repair: every use case is one transaction, which a crash rolls back whole.
    pub fn repair(&self) -> Result<usize> {
        Ok(0)
    }
}
