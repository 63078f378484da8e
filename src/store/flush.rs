//! Group commit. One thread loops `db.flush()`; a writer bumps the write generation after its write and waits until
//! a flush that *started after* that bump has finished. Many concurrent writers share one fsync.
//!
//! Why not `sled::Db::flush_async`: in sled 0.34.7 it deadlocks with concurrent callers (sled #1308; reproduced on
//! this machine at 8 callers).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};

pub(super) struct Flusher {
    /// Bumped by every writer after its write is in sled's memory.
    written: Arc<AtomicU64>,
    /// The highest generation known to be on disk.
    flushed: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
    /// For `unpark`: lock-free, so writers never contend on a mutex.
    waker: std::thread::Thread,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    pub fn start(db: sled::Db) -> Self {
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(0u64);
        let thread = {
            let written = written.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("latchkey-flusher".into())
                .spawn(move || run(db, written, tx, stop))
                .expect("spawn flusher thread")
        };
        Self {
            written,
            flushed: rx,
            stop,
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
        let mut rx = self.flushed.clone();
        rx.wait_for(|&done| done >= target)
            .await
            .map(drop)
            .map_err(|_| Error::internal("flusher stopped"))
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

fn run(db: sled::Db, written: Arc<AtomicU64>, done: watch::Sender<u64>, stop: Arc<AtomicBool>) {
    let mut flushed = 0u64;
    loop {
        let target = written.load(Ordering::Acquire);
        if target == flushed {
            if stop.load(Ordering::Acquire) {
                return;
            }
            // Parks until a writer unparks us; the timeout only guards against a lost wake-up.
            std::thread::park_timeout(Duration::from_millis(100));
            continue;
        }
        match db.flush() {
            Ok(_) => {
                metrics::counter!("latchkey_store_flushes_total").increment(1);
                flushed = target;
                done.send_replace(flushed);
            }
            Err(e) => {
                tracing::error!(error = %e, "store flush failed; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
