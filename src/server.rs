//! The hyper 1 server: a hyper-util accept loop (HTTP/1.1 and h2c) over the axum router, with a graceful drain.
//! [`start`] wires config → store → state → router and is what both `main` and the integration tests call.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tower::ServiceExt;

use crate::clock::Clock;
use crate::config::{Config, Limits};
use crate::core::bootstrap::{self, Announcements};
use crate::core::keys::{KeyPolicy, Keys, SharedKeyRing};
use crate::state::AppState;
use crate::store::Store;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits up to
/// `limits.shutdown_grace_secs` for in-flight requests.
///
/// Every connection is bounded in time and number, so clients that send nothing cannot hold the server's
/// descriptors: a connection silent for `first_byte_timeout_secs` after accept is closed (before hyper sees it:
/// the HTTP/1-or-2 detection would wait forever); one with no request in flight for `idle_timeout_secs` is closed
/// (an h2c preface alone, an idle keep-alive); HTTP/2 peers are pinged at that interval and dropped when a ping
/// goes unanswered; a client that has not sent a whole header block within `header_read_timeout_secs` is
/// disconnected and one whose header block exceeds `header_bytes` gets 431. At `max_connections`, and when the
/// process runs out of descriptors, the oldest idle connection is closed to make room, so `/healthz` and real
/// clients still get in; when every connection is busy, the new one is closed at once.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let header_read_timeout = Duration::from_secs(limits.header_read_timeout_secs);
    let idle = Duration::from_secs(limits.idle_timeout_secs);
    let first_byte = Duration::from_secs(limits.first_byte_timeout_secs);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(limits.header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(idle)
        .keep_alive_timeout(header_read_timeout)
        .max_header_list_size(limits.header_bytes as u32);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let (stopping, stop_rx) = watch::channel(());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<u64>();
    let mut open = Connections::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(id) = closed_rx.recv() => {
                open.closed(id);
                continue;
            }
            _ = &mut shutdown => break,
        };
        while let Ok(id) = closed_rx.try_recv() {
            open.closed(id);
        }
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (EMFILE 24, ENFILE 23): free the oldest idle connection. Back off either
                // way instead of spinning.
                if matches!(e.raw_os_error(), Some(23 | 24)) {
                    open.evict_idle();
                }
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if open.len() >= limits.max_connections && !open.evict_idle() {
            tracing::warn!("connection refused: max_connections reached and none is idle");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, conn) = open.add();
        let router = router.clone();
        let in_svc = conn.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::start(&in_svc);
            let answer = router.clone().oneshot(req);
            async move {
                let r = answer.await;
                drop(busy);
                r
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let mut stop_rx = stop_rx.clone();
        let closed_tx = closed_tx.clone();
        tokio::spawn(async move {
            let serve = async {
                let ready = tokio::select! {
                    ready = first_byte_within(&stream, first_byte) => ready,
                    _ = stop_rx.changed() => false,
                };
                if !ready {
                    return;
                }
                let c = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                if let Err(e) = watcher.watch(c.into_owned()).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            };
            // Whichever ends first closes the socket (dropping the connection drops the stream).
            tokio::select! {
                _ = serve => {}
                _ = conn.idle_for(idle) => {}
                _ = conn.close.notified() => {}
            }
            let _ = closed_tx.send(id);
        });
    }
    drop(listener);
    let _ = stopping.send(());
    open.evict_all_idle();
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown timed out; closing remaining connections");
    }
}

/// Whether the peer sends a first byte within `limit` (it stays unread, for hyper).
async fn first_byte_within(stream: &TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, stream.peek(&mut byte)).await,
        Ok(Ok(1))
    )
}

/// One open connection, as its task, its service and the accept loop share it (atomics only: requests never
/// take a lock).
struct Conn {
    opened: Instant,
    /// Requests in flight.
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened), in ms since `opened`.
    idle_since_ms: AtomicU64,
    /// Told when the accept loop wants the connection closed.
    close: Notify,
}

impl Conn {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Resolves once no request has been in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            let due = self.opened + since + limit;
            if self.is_idle() && Instant::now() >= due {
                return;
            }
            let wake = if self.is_idle() {
                due
            } else {
                Instant::now() + limit
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// A request in flight on a connection; dropping it (the answer is ready, or the request was abandoned) marks
/// the connection idle from now.
struct Busy(Arc<Conn>);

impl Busy {
    fn start(c: &Arc<Conn>) -> Self {
        c.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(c.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections in accept order, owned by the accept loop alone.
#[derive(Default)]
struct Connections {
    next_id: u64,
    by_id: BTreeMap<u64, Arc<Conn>>,
}

impl Connections {
    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn add(&mut self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            close: Notify::new(),
        });
        self.next_id += 1;
        self.by_id.insert(self.next_id, conn.clone());
        (self.next_id, conn)
    }

    fn closed(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    /// Closes the oldest idle connection; false when every connection is busy.
    fn evict_idle(&mut self) -> bool {
        let Some(id) = self
            .by_id
            .iter()
            .find(|(_, c)| c.is_idle())
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some(c) = self.by_id.remove(&id) {
            c.close.notify_one();
        }
        true
    }

    /// At shutdown: closes every idle connection now; busy ones finish within the grace period.
    fn evict_all_idle(&mut self) {
        for c in self.by_id.values().filter(|c| c.is_idle()) {
            c.close.notify_one();
        }
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
    key_refresher: tokio::task::JoinHandle<()>,
    /// The check of declared secrets after the server answers (short: one argon2 run per declared secret).
    settled: tokio::task::JoinHandle<()>,
    /// True once the deferred check of the token trees is done.
    checked: watch::Receiver<bool>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resolves once the token trees, checked after the server answers, are checked (or their check failed).
    pub async fn deferred_checked(&self) {
        let _ = self.checked.clone().wait_for(|done| *done).await;
    }

    /// Stops accepting, drains in-flight requests, flushes and closes the store.
    pub async fn shutdown(mut self) -> crate::error::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        self.sweeper.abort();
        let _ = (&mut self.sweeper).await;
        self.key_refresher.abort();
        let _ = (&mut self.key_refresher).await;
        let _ = (&mut self.settled).await;
        // The check holds a store handle; it is bounded by one scan of the token trees.
        self.deferred_checked().await;
        let store = self.state.store.clone();
        drop(self);
        store.close()?;
        if !store.release(Duration::from_secs(5)).await {
            tracing::warn!("the store was still held 5 s after shutdown");
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
    let mut phases = Phases::new();
    crate::telemetry::init_metrics();
    // The store the config names: PostgreSQL at `[store] url`, else sled in `data_dir`.
    let store = if config.store.url.is_empty() {
        Store::open(&config.data_dir, config.cache_mb << 20)?
    } else {
        Store::connect(&config.store.url, &config.data_dir).await?
    };
    phases.done("store open");
    // What a crash can leave is repaired (and logged); anything else is corruption and stops the start. The big
    // token trees are checked once the server answers (`spawn_deferred_check`).
    if let Err(e) = store.repair_before_serving() {
        let cause = match e {
            crate::error::Error::Internal(c) => c,
            other => other.to_string(),
        };
        return Err(StartError::Store(crate::store::OpenError::Corrupt {
            dir: config.data_dir.clone(),
            cause,
        }));
    }
    phases.done("checks");
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
    let limits = config.limits.clone();
    let sweep_every = Duration::from_millis(config.limits.sweep_interval_ms);
    let key = crate::crypto::seal::load_master_key(&config.master_key, &config.data_dir)
        .map_err(StartError::Setup)?;
    let sealer = Arc::new(crate::crypto::Sealer::new(key));
    crate::core::provider::check_master_key(&store, &sealer)
        .await
        .map_err(StartError::Setup)?;
    phases.done("master key");
    let keys = start_keys(&store, &sealer, &config, &clock).await?;
    phases.done("signing keys");
    let state = AppState::new(store.clone(), config, clock.clone(), issuer, sealer, keys).await;
    let (announcements, pending) = bootstrap::run(state.setup())
        .await
        .map_err(|e| StartError::Setup(e.to_string()))?;
    phases.done("declared");
    let settled = spawn_settle(state.clone(), pending);
    let checked = spawn_deferred_check(store.clone());
    let sweeper = crate::store::spawn_sweeper(store, clock, sweep_every);
    let key_refresher = spawn_key_refresher(state.clone());
    let router = crate::api::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run(listener, router, &limits, async {
            let _ = rx.await;
        })
        .await
    });
    tracing::info!(%addr, "serving, started in {}", phases);
    Ok(Running {
        addr,
        state,
        announcements,
        stop: Some(tx),
        task,
        sweeper,
        key_refresher,
        settled,
        checked,
    })
}

/// Checks the declared secrets start-up left pending ([`bootstrap::settle_secrets`]) while the server answers.
fn spawn_settle(state: AppState, pending: bootstrap::Pending) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = bootstrap::settle_secrets(state.setup(), pending).await {
            tracing::error!(error = %e, "checking the declared secrets failed");
        }
    })
}

/// Runs [`Store::check_deferred`] on a blocking thread (it reads every token record); the receiver turns true when
/// it is done. What it finds is logged: repairs by the store, corruption here too (and `/healthz` reports it).
fn spawn_deferred_check(store: Store) -> watch::Receiver<bool> {
    let (done, checked) = watch::channel(false);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.check_deferred() {
            tracing::error!(error = ?e, "the check of the token trees after start failed");
        }
        let _ = done.send(true);
    });
    checked
}

/// Brings the signing keys in line with the config (a key per algorithm, rotation due) and loads them, before the
/// server answers: the first request may need to sign.
async fn start_keys(
    store: &Store,
    sealer: &crate::crypto::Sealer,
    config: &Config,
    clock: &Clock,
) -> Result<Arc<SharedKeyRing>, StartError> {
    let policy = KeyPolicy::from_config(config);
    let ctx = Keys {
        store,
        sealer,
        policy: &policy,
    };
    match SharedKeyRing::start(&ctx, clock).await {
        Ok(ring) => Ok(Arc::new(ring)),
        Err(crate::error::Error::Internal(cause)) => {
            Err(StartError::Setup(format!("signing keys: {cause}")))
        }
        Err(e) => Err(StartError::Setup(format!("signing keys: {e}"))),
    }
}

/// Every `[keys] refresh_interval_ms`: rotates what is due and reloads the ring from the store, so nodes sharing
/// a store converge on the same keys.
fn spawn_key_refresher(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(state.keys.policy().refresh_ms as u64);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = state.clock.now_ms();
            if let Err(e) = state.keys.refresh(&state.signing_keys(), now).await {
                tracing::warn!(error = ?e, "signing key refresh failed; the previous keys stay");
            }
        }
    })
}

/// How long each start-up step took, for the log line that says the server is serving.
struct Phases {
    began: Instant,
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            began: now,
            last: now,
            steps: Vec::new(),
        }
    }

    fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        self.steps.push((step, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(f, "{:.1} ms (", ms(self.last - self.began))?;
        for (i, (step, took)) in self.steps.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{step} {:.1}", ms(*took))?;
        }
        write!(f, ")")
    }
}
