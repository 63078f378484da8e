//! Every statement of this backend runs prepared, once per connection: [`Prepared`]'s methods look the SQL up in
//! the connection's statement cache (deadpool's, keyed by the text), preparing it on first use, then bind and run
//! it. A text statement would be parsed and planned again on every call and cost a round trip more; this way a
//! hot path (a token's insert, an app or token lookup) is one Bind/Execute/Sync exchange. The SQL strings are
//! constants or one of a few fixed variants, so each connection's cache stays small.

use std::future::Future;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// The parameters of a statement, as tokio-postgres takes them.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The cached-statement forms of `execute`, `query`, `query_opt` and `query_one`, for a pooled connection and a
/// transaction alike (so they serve inside [`with_tx!`](super::retry::with_tx) bodies too).
pub(super) trait Prepared: GenericClient {
    /// Runs `sql`; the number of rows it changed.
    fn exec<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a {
        async move { self.execute(&self.prepare_cached(sql).await?, params).await }
    }

    /// Every row `sql` returns.
    fn all<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a {
        async move { self.query(&self.prepare_cached(sql).await?, params).await }
    }

    /// The row `sql` returns, if any (more than one is an error).
    fn opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send + 'a {
        async move {
            self.query_opt(&self.prepare_cached(sql).await?, params)
                .await
        }
    }

    /// The one row `sql` returns (none or more is an error).
    fn one<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<Row, Error>> + Send + 'a {
        async move {
            self.query_one(&self.prepare_cached(sql).await?, params)
                .await
        }
    }
}

impl<C: GenericClient> Prepared for C {}
