//! The hyper 1 server: a hyper-util accept loop (HTTP/1.1 and h2c) over the axum router, with a graceful drain.
//! [`start`] wires config → store → state → router and is what both `main` and the integration tests call.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::bootstrap::{self, Announcements};
use crate::state::AppState;
use crate::store::Store;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits up to `grace` for
/// in-flight requests. A client that has not sent a whole header block within `header_read_timeout` is
/// disconnected; one whose header block exceeds `header_bytes` gets 431.
pub async fn run(
    listener: TcpListener,
    router: Router,
    header_bytes: usize,
    header_read_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(header_bytes.max(8192));
    builder.http2().max_header_list_size(header_bytes as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(req)
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown timed out; closing remaining connections");
    }
}

/// A started server: where it listens and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub announcements: Announcements,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains in-flight requests, flushes and closes the store.
    pub async fn shutdown(mut self) -> crate::error::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        self.sweeper.abort();
        let _ = (&mut self.sweeper).await;
        let store = self.state.store.clone();
        drop(self);
        store.close()?;
        if !store.wait_last_handle(Duration::from_secs(5)).await {
            tracing::warn!("store handles still alive after shutdown");
        }
        Ok(())
    }
}

/// Why the server could not start; the message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::OpenError),
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: String, cause: String },
    #[error("start-up failed: {0}")]
    Setup(String),
}

/// Opens the store, binds, bootstraps (admin, declared users and clients) and starts serving.
pub async fn start(config: Config, clock: Clock) -> Result<Running, StartError> {
    crate::telemetry::init_metrics();
    let store = Store::open(&config.data_dir, config.cache_mb << 20)?;
    // What a crash can leave is repaired (and logged); anything else is corruption and stops the start.
    if let Err(e) = store.repair() {
        let cause = match e {
            crate::error::Error::Internal(c) => c,
            other => other.to_string(),
        };
        return Err(StartError::Store(crate::store::OpenError::Corrupt {
            dir: config.data_dir.clone(),
            cause,
        }));
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| StartError::Bind {
            addr: config.listen.clone(),
            cause: e.to_string(),
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let issuer = if config.issuer.is_empty() {
        format!("http://{addr}")
    } else {
        config.issuer.clone()
    };
    let header_bytes = config.limits.header_bytes;
    let header_read_timeout = Duration::from_secs(config.limits.header_read_timeout_secs);
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let sweep_every = Duration::from_millis(config.limits.sweep_interval_ms);
    let key = crate::crypto::seal::load_master_key(&config.master_key, &config.data_dir)
        .map_err(StartError::Setup)?;
    let sealer = crate::crypto::Sealer::new(key);
    crate::core::provider::check_master_key(&store, &sealer)
        .await
        .map_err(StartError::Setup)?;
    let state = AppState::new(store.clone(), config, clock.clone(), issuer, sealer).await;
    let announcements = bootstrap::run(&state)
        .await
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let sweeper = crate::store::spawn_sweeper(store, clock, sweep_every);
    let router = crate::api::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(
        listener,
        router,
        header_bytes,
        header_read_timeout,
        grace,
        async {
            let _ = rx.await;
        },
    ));
    Ok(Running {
        addr,
        state,
        announcements,
        stop: Some(tx),
        task,
        sweeper,
    })
}
