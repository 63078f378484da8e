//! The connection pool: plain TCP unless the URL asks for TLS (`sslmode=require`), then rustls with the web PKI
//! roots (no system OpenSSL, as for the upstream HTTP client).

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;

/// Connections per node: enough to keep PostgreSQL busy from two cores, few enough for several nodes to share
/// one server's default `max_connections` (100).
const POOL_SIZE: usize = 16;

/// A pool for `url`; the error never repeats the URL (it may hold a password).
pub(super) fn pool(url: &str) -> Result<Pool, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("store.url is not a valid PostgreSQL URL: {e}"))?;
    let recycling = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if config.get_ssl_mode() == SslMode::Require {
        Manager::from_config(config, rustls_connector()?, recycling)
    } else {
        Manager::from_config(config, tokio_postgres::NoTls, recycling)
    };
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())
}

fn rustls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// How long a health answer is reused: a load balancer probing every node often must not load the database.
const HEALTH_TTL_MS: u64 = 1_000;
/// How long the health query may take before the database counts as down.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The cached answer of `/healthz` on PostgreSQL: when it was checked (ms since `start`, 0: never) and the
/// result. Atomics, so concurrent probes take no lock; two probes racing past the expiry both query, harmlessly.
pub(super) struct Health {
    start: std::time::Instant,
    checked_at: std::sync::atomic::AtomicU64,
    up: std::sync::atomic::AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            start: std::time::Instant::now(),
            checked_at: std::sync::atomic::AtomicU64::new(0),
            up: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Health {
    /// Whether the database answered `SELECT 1` within [`HEALTH_TIMEOUT`], at most [`HEALTH_TTL_MS`] ago.
    pub async fn check(&self, pool: &Pool) -> bool {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let at = self.checked_at.load(Acquire);
        if at != 0 && now - at < HEALTH_TTL_MS {
            return self.up.load(Acquire);
        }
        let probe = async {
            let client = pool.get().await.ok()?;
            client.simple_query("SELECT 1").await.ok()
        };
        let up = tokio::time::timeout(HEALTH_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .is_some();
        self.up.store(up, Release);
        self.checked_at.store(now, Release);
        up
    }
}
