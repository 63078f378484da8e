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
