//! Group commit. One thread loops `db.flush()`; a writer bumps the write generation after its write and waits until
//! a flush that *started after* that bump has finished. Many concurrent writers share one fsync.
//!
//! A flush that fails (a full disk, an IO error) fails every writer it was flushing at once with
//! [`Error::Unavailable`] (a 503 in every dialect) instead of retrying while they wait: sled makes a log write error
//! sticky (it cannot know which buffered writes reached the disk), so every later flush and write fails the same
//! way, promptly, until the process restarts and sled recovers the log up to its last complete write.
//!
//! Why not `sled::Db::flush_async`: in sled 0.34.7 it deadlocks with concurrent callers (sled #1308; reproduced on
//! this machine at 8 callers).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

pub(super) struct Flusher {
    /// Bumped by every writer after its write is in sled's memory.
    written: Arc<AtomicU64>,
    /// How far the flusher got.
    progress: watch::Receiver<Progress>,
    stop: Arc<AtomicBool>,
    /// Flushes still to fail on purpose (a test hook; see [`Flusher::fail_next`]).
    failures: Arc<AtomicU32>,
    /// For `unpark`: lock-free, so writers never contend on a mutex.
    waker: std::thread::Thread,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

/// The generations the flusher has settled: every one up to `flushed` is on disk; every one above it up to
/// `failed` was in a flush that failed.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    flushed: u64,
    failed: u64,
}

impl Flusher {
    pub fn start(db: sled::Db) -> Self {
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicU32::new(0));
        let (tx, rx) = watch::channel(Progress::default());
        let thread = {
            let written = written.clone();
            let stop = stop.clone();
            let failures = failures.clone();
            std::thread::Builder::new()
                .name("latchkey-flusher".into())
                .spawn(move || run(db, written, tx, stop, failures))
                .expect("spawn flusher thread")
        };
        Self {
            written,
            progress: rx,
            stop,
            failures,
            waker: thread.thread().clone(),
            thread: parking_lot::Mutex::new(Some(thread)),
        }
    }

    pub async fn durable(&self) -> Result<()> {
        let target = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        if self.stop.load(Ordering::Acquire) {
            return Err(Error::internal("store is closed"));
        }
        self.waker.unpark();
        let mut rx = self.progress.clone();
        let p = *rx
            .wait_for(|p| p.flushed >= target || p.failed >= target)
            .await
            .map_err(|_| Error::internal("flusher stopped"))?;
        if p.flushed >= target {
            Ok(())
        } else {
            Err(Error::Unavailable)
        }
    }

    /// Makes the next `n` flushes fail as a full disk would (a test hook: a real full disk is not available
    /// everywhere tests run).
    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, Ordering::Release);
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    db: sled::Db,
    written: Arc<AtomicU64>,
    done: watch::Sender<Progress>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU32>,
) {
    let mut p = Progress::default();
    loop {
        let target = written.load(Ordering::Acquire);
        // Settled: flushed, or failed (then only a new write is worth another attempt).
        if target <= p.flushed.max(p.failed) {
            if stop.load(Ordering::Acquire) {
                return;
            }
            // Parks until a writer unparks us; the timeout only guards against a lost wake-up.
            std::thread::park_timeout(Duration::from_millis(100));
            continue;
        }
        let injected = failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let flushed = if injected {
            Err(sled::Error::Io(std::io::Error::other(
                "injected flush failure (no space left on device)",
            )))
        } else {
            db.flush()
        };
        match flushed {
            Ok(_) => {
                metrics::counter!("latchkey_store_flushes_total").increment(1);
                p.flushed = target;
            }
            Err(e) => {
                tracing::error!(error = %e, "store flush failed; the writes it carried are answered 503");
                p.failed = target;
            }
        }
        done.send_replace(p);
    }
}
