//! Password and client-secret hashing with argon2id.
//!
//! argon2id is deliberately slow and memory-hard, so running it on async worker threads (or
//! tokio's unbounded blocking pool) would let a burst of logins starve every other request
//! and allocate without limit. Instead a fixed pool of OS threads, each holding at most one
//! memory block, takes jobs from a bounded queue: capacity is explicit, memory is bounded, and
//! overload is reported at once as [`HashError::Busy`] so the caller can shed load. A worker
//! takes its block with its first job and gives it back after [`QUIET`] without work, so an
//! idle server holds no argon2 memory (19 MiB per thread at the default cost).
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`), interchangeable with the
//! `argon2` crate's own `PasswordHasher`/`PasswordVerifier`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, PasswordHash, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::{oneshot, Notify};

use super::digest::{ct_eq, sha256};
use super::secret::random_bytes;

/// Salt length in bytes (the PHC/argon2 recommendation).
const SALT_LEN: usize = 16;
/// Length of the derived hash in bytes.
const OUTPUT_LEN: usize = 32;
/// How long a worker keeps its memory block without a job before giving it back: long enough that a burst of
/// sign-ins pays the allocation (a few ms of page faults for 19 MiB) once, short enough that an idle server is
/// small again soon after.
pub const QUIET: Duration = Duration::from_secs(10);

/// argon2id cost parameters.
///
/// Missing fields take their [`Default`] values, so a config file may set just one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory per hash in KiB (`m`).
    pub memory_kib: u32,
    /// Number of passes over memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`). The pool parallelises across requests, so 1 is usually right.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Checks the values against argon2's limits (e.g. `memory_kib >= 8 * parallelism`), so a
    /// bad configuration can be reported before [`Hasher::new`] is called.
    pub fn validate(&self) -> Result<(), argon2::Error> {
        self.to_argon2().map(drop)
    }

    fn to_argon2(self) -> Result<argon2::Params, argon2::Error> {
        argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_LEN),
        )
    }
}

/// Why a hashing request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full; the caller should answer 503/429.
    #[error("the hashing queue is full")]
    Busy,
    /// The stored PHC string cannot be parsed or names unsupported parameters.
    #[error("malformed password hash")]
    Malformed,
    /// The worker threads have exited (only after a worker panicked).
    #[error("hashing pool is gone")]
    Gone,
}

/// Secret bytes that are overwritten when dropped, and never printed.
struct Secret(Vec<u8>);

impl Secret {
    fn new(secret: String) -> Self {
        Self(secret.into_bytes())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the optimiser from treating the wipe of soon-freed memory as dead stores.
        std::hint::black_box(&mut self.0);
    }
}

enum Job {
    Hash {
        secret: Secret,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        secret: Secret,
        phc: String,
        reply: oneshot::Sender<Result<bool, HashError>>,
    },
}

/// A fixed pool of OS threads running argon2.
///
/// Each thread allocates one memory block sized for the configured parameters with its first
/// job, reuses it for every job that follows within the quiet period, and frees it after that
/// period without work. So hashing under load allocates nothing, peak memory is
/// `threads × memory_kib` however many requests arrive (a flood of bad secrets included), and
/// an idle pool holds none. Jobs arrive over a bounded queue; when it is full, requests fail
/// immediately with [`HashError::Busy`] instead of piling up. Dropping the `Hasher` lets the
/// threads finish queued work and exit.
pub struct Hasher {
    jobs: SyncSender<Job>,
    params: Argon2Params,
    threads: usize,
    /// Memory blocks the workers hold right now (at most `threads`).
    held: Arc<AtomicUsize>,
    /// How many [`Hold`]s are open; [`Hasher::settled`] waits while any is.
    holds: AtomicUsize,
    /// Wakes the waiters of [`Hasher::settled`] when a hold closes.
    released: Notify,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Starts `threads` workers (`0` means one per available core) behind a queue holding up
    /// to `queue` waiting jobs (`0` accepts a job only when a worker is idle).
    ///
    /// # Panics
    /// If `params` are outside argon2's limits (see [`Argon2Params::validate`]) or a thread
    /// cannot be spawned: both are startup configuration failures.
    pub fn new(params: Argon2Params, threads: usize, queue: usize) -> Self {
        Self::with_quiet(params, threads, queue, QUIET)
    }

    /// [`Hasher::new`] whose workers free their block after `quiet` without a job.
    pub fn with_quiet(params: Argon2Params, threads: usize, queue: usize, quiet: Duration) -> Self {
        let argon_params = params
            .to_argon2()
            .unwrap_or_else(|e| panic!("invalid argon2 parameters {params:?}: {e}"));
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
        } else {
            threads
        };
        let (jobs, rx) = mpsc::sync_channel(queue);
        let rx = Arc::new(Mutex::new(rx));
        let held = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let memory = Memory {
                block: None,
                blocks: argon_params.block_count(),
                quiet,
                held: Arc::clone(&held),
            };
            let rx = Arc::clone(&rx);
            let argon_params = argon_params.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, &argon_params, memory))
                .expect("failed to spawn an argon2 worker thread");
        }
        Self {
            jobs,
            params,
            threads,
            held,
            holds: AtomicUsize::new(0),
            released: Notify::new(),
        }
    }

    /// Makes [`Hasher::settled`] wait until the returned [`Hold`] is dropped. Start-up holds the pool while it
    /// checks declared secrets against the hashes the store keeps, after the server already answers; requests that
    /// check a stored secret wait for `settled` before they read it, so none is checked against a hash the config
    /// has since replaced.
    pub fn hold(self: &Arc<Self>) -> Hold {
        self.holds.fetch_add(1, Ordering::AcqRel);
        Hold(Arc::clone(self))
    }

    /// Resolves once no [`Hold`] is open: at once (one atomic load) but in the first moments after a start.
    pub async fn settled(&self) {
        while self.holds.load(Ordering::Acquire) > 0 {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the second look, so a hold closing in between still wakes us.
            released.as_mut().enable();
            if self.holds.load(Ordering::Acquire) == 0 {
                return;
            }
            released.await;
        }
    }

    /// Whether the costs of `phc` are this pool's (argon2id, version 0x13, same `m`, `t` and `p`): a secret stored
    /// under other costs is re-hashed when next set. `false` for a string that does not parse.
    pub fn is_current(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let p = self.params;
        let param = |name: &str| parsed.params.get_decimal(name);
        Algorithm::try_from(parsed.algorithm) == Ok(Algorithm::Argon2id)
            && parsed.version == Some(u32::from(Version::V0x13))
            && param("m") == Some(p.memory_kib)
            && param("t") == Some(p.iterations)
            && param("p") == Some(p.parallelism)
    }

    /// How many memory blocks the workers hold now: 0 when idle, never more than the threads.
    pub fn blocks_held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// A PHC string with this pool's costs and a random salt and hash, made without running argon2: verifying any
    /// secret against it costs what verifying against a real hash does and fails, so sign-ins of unknown users
    /// take as long as those of known ones, and starting the server costs no argon2 run.
    pub fn dummy_phc(&self) -> String {
        let p = self.params;
        phc(
            p.memory_kib,
            p.iterations,
            p.parallelism,
            &random_bytes::<SALT_LEN>(),
            &random_bytes::<OUTPUT_LEN>(),
        )
    }

    /// Hashes `secret` with a fresh 16-byte salt into a PHC string.
    pub async fn hash(&self, secret: String) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash {
            secret: Secret::new(secret),
            reply,
        })?;
        rx.await.map_err(|_| HashError::Gone)?
    }

    /// Checks `secret` against a PHC string. The parameters (and algorithm variant) are taken
    /// from the string, so hashes made under older settings keep verifying. A wrong secret is
    /// `Ok(false)`; an unparseable string is [`HashError::Malformed`].
    ///
    /// The PHC string is trusted input (it comes from our own storage): its cost parameters are
    /// honoured as written.
    pub async fn verify(&self, secret: String, phc: String) -> Result<bool, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify {
            secret: Secret::new(secret),
            phc,
            reply,
        })?;
        rx.await.map_err(|_| HashError::Gone)?
    }

    /// [`Hasher::hash`] for code outside the async runtime (CLI, startup). It waits for queue
    /// space rather than failing with `Busy`, since such callers have nothing better to do.
    ///
    /// # Panics
    /// If called from within an async execution context.
    pub fn hash_blocking(&self, secret: String) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit_blocking(Job::Hash {
            secret: Secret::new(secret),
            reply,
        })?;
        rx.blocking_recv().map_err(|_| HashError::Gone)?
    }

    /// [`Hasher::verify`] for code outside the async runtime; waits for queue space like
    /// [`Hasher::hash_blocking`].
    ///
    /// # Panics
    /// If called from within an async execution context.
    pub fn verify_blocking(&self, secret: String, phc: String) -> Result<bool, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit_blocking(Job::Verify {
            secret: Secret::new(secret),
            phc,
            reply,
        })?;
        rx.blocking_recv().map_err(|_| HashError::Gone)?
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        // A rejected job comes back inside the error and is dropped here, wiping its secret.
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Gone,
        })
    }

    fn submit_blocking(&self, job: Job) -> Result<(), HashError> {
        self.jobs.send(job).map_err(|_| HashError::Gone)
    }
}

/// An open hold on a [`Hasher`] (see [`Hasher::hold`]): [`Hasher::settled`] waits until it is dropped.
pub struct Hold(Arc<Hasher>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.holds.fetch_sub(1, Ordering::AcqRel);
        self.0.released.notify_waiters();
    }
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hold")
    }
}

/// A worker's memory block: taken with a job, given back after `quiet` without one.
struct Memory {
    block: Option<OsBlocks>,
    blocks: usize,
    quiet: Duration,
    held: Arc<AtomicUsize>,
}

impl Memory {
    fn take(&mut self) -> &mut [Block] {
        let blocks = self.blocks;
        let held = &self.held;
        self.block.get_or_insert_with(|| {
            held.fetch_add(1, Ordering::Relaxed);
            OsBlocks::new(blocks)
        })
    }

    fn give_back(&mut self) {
        if self.block.take().is_some() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// argon2 blocks mapped straight from the OS and unmapped when dropped, so a worker's quiet give-back really
/// returns its 19 MiB: the global allocator (mimalloc) would keep a freed block of that size until its next
/// collection, which an idle server never reaches. The pages come zeroed, and only those argon2 touches are resident.
struct OsBlocks {
    #[cfg(unix)]
    blocks: std::ptr::NonNull<Block>,
    #[cfg(not(unix))]
    blocks: Vec<Block>,
    len: usize,
}

// SAFETY: `OsBlocks` owns its mapping alone, like a `Vec<Block>`.
#[cfg(unix)]
unsafe impl Send for OsBlocks {}

impl OsBlocks {
    #[cfg(unix)]
    fn new(len: usize) -> Self {
        let layout =
            std::alloc::Layout::array::<Block>(len).expect("argon2 memory fits the address space");
        // SAFETY: an anonymous private mapping (no file, no fixed address); the result is checked below.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(layout);
        }
        // Mappings are page-aligned (more than a block's 64 bytes) and never null when not MAP_FAILED.
        let blocks = std::ptr::NonNull::new(mapped.cast::<Block>()).expect("mmap returned null");
        Self { blocks, len }
    }

    #[cfg(not(unix))]
    fn new(len: usize) -> Self {
        Self {
            blocks: vec![Block::default(); len],
            len,
        }
    }
}

impl std::ops::Deref for OsBlocks {
    type Target = [Block];

    fn deref(&self) -> &[Block] {
        #[cfg(unix)]
        // SAFETY: `len` zero-initialised blocks (all-zero bytes are a valid `Block`), owned by `self`.
        return unsafe { std::slice::from_raw_parts(self.blocks.as_ptr(), self.len) };
        #[cfg(not(unix))]
        return &self.blocks[..self.len];
    }
}

impl std::ops::DerefMut for OsBlocks {
    fn deref_mut(&mut self) -> &mut [Block] {
        #[cfg(unix)]
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        return unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) };
        #[cfg(not(unix))]
        return &mut self.blocks[..self.len];
    }
}

#[cfg(unix)]
impl Drop for OsBlocks {
    fn drop(&mut self) {
        let bytes = std::mem::size_of::<Block>() * self.len;
        // SAFETY: the mapping `new` made, unmapped once; no borrow of it outlives `self`.
        unsafe { libc::munmap(self.blocks.as_ptr().cast(), bytes) };
    }
}

/// Waits for the next job (`None`: the pool is dropped). The lock is held only while waiting, never while
/// hashing. A worker holding a block waits for the lock and the job at most its quiet period, then frees the
/// block and waits without a deadline.
fn next_job(rx: &Mutex<Receiver<Job>>, memory: &mut Memory) -> Option<Job> {
    if memory.block.is_some() {
        let deadline = Instant::now() + memory.quiet;
        if let Some(rx) = rx.try_lock_until(deadline) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        memory.give_back();
    }
    rx.lock().recv().ok()
}

/// A worker's loop: take a job, run it on the thread's memory block, reply.
fn worker(rx: &Mutex<Receiver<Job>>, params: &argon2::Params, mut memory: Memory) {
    while let Some(job) = next_job(rx, &mut memory) {
        match job {
            Job::Hash { secret, reply } => {
                // Skip work nobody waits for (the request was cancelled or timed out).
                if !reply.is_closed() {
                    let _ = reply.send(hash_into(params, &secret.0, memory.take()));
                }
            }
            Job::Verify { secret, phc, reply } => {
                if !reply.is_closed() {
                    let _ = reply.send(verify_phc(&secret.0, &phc, memory.take()));
                }
            }
        }
    }
}

fn hash_into(
    params: &argon2::Params,
    secret: &[u8],
    memory: &mut [Block],
) -> Result<String, HashError> {
    let salt = random_bytes::<SALT_LEN>();
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(secret, &salt, &mut out, memory)
        // Only a secret over 4 GiB can fail here, which is not a hash anyone can store.
        .map_err(|_| HashError::Malformed)?;
    Ok(phc(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        &salt,
        &out,
    ))
}

/// The argon2id PHC string of a hash `out` made with these costs and `salt`.
fn phc(m: u32, t: u32, p: u32, salt: &[u8], out: &[u8]) -> String {
    format!(
        "${}$v={}$m={m},t={t},p={p}${}${}",
        Algorithm::Argon2id.as_str(),
        u32::from(Version::V0x13),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out),
    )
}

fn verify_phc(secret: &[u8], phc: &str, memory: &mut [Block]) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::Malformed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Malformed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| HashError::Malformed)?,
        None => Version::default(),
    };
    let params = argon2::Params::try_from(&parsed).map_err(|_| HashError::Malformed)?;
    let expected = parsed.hash.ok_or(HashError::Malformed)?;
    let salt = parsed.salt.ok_or(HashError::Malformed)?;
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Malformed)?;

    let needed = params.block_count();
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    let result = if needed <= memory.len() {
        argon.hash_password_into_with_memory(secret, salt, out, &mut *memory)
    } else {
        // A hash made under larger settings than the pool's: allocate just for this job.
        let mut bigger = vec![Block::default(); needed];
        argon.hash_password_into_with_memory(secret, salt, out, &mut bigger)
    };
    result.map_err(|_| HashError::Malformed)?;
    Ok(ct_eq(out, expected.as_bytes()))
}

/// Per-key memo of one successful verification.
struct CacheEntry {
    /// Which stored hash the success was against; a regenerated secret changes it.
    phc_digest: [u8; 32],
    /// HMAC of the accepted secret under the process key: comparable, but useless if leaked.
    tag: [u8; 32],
}

/// The hot-path verifier for client secrets.
///
/// Client secrets are high-entropy random tokens presented on every token request, so paying
/// argon2 each time buys no security and costs a worker for tens of milliseconds. After one
/// successful argon2 verification the entry `key -> (sha256(phc), HMAC-SHA256(process_key,
/// secret))` is remembered in a sharded concurrent map; later calls with the same key and phc
/// compare HMAC tags in constant time, in microseconds. The process key is 32 random bytes that
/// never leave memory, so the cache holds nothing that verifies outside this process.
///
/// A changed phc (secret regenerated) misses automatically; [`Verifier::forget`] drops an
/// entry when an app is deleted or deactivated. Only successes are cached, so guessing cannot
/// grow the map. Because an entry only answers for the phc it was made against, it needs no
/// cross-node invalidation: with several nodes on PostgreSQL each request's phc is read from
/// the database, so a secret regenerated on another node misses here at once and the old
/// secret goes to argon2, which refuses it.
pub struct Verifier {
    hasher: Arc<Hasher>,
    process_key: [u8; 32],
    cache: DashMap<String, CacheEntry>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("hasher", &self.hasher)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with an empty cache and a fresh process key.
    pub fn new(hasher: Arc<Hasher>) -> Self {
        Self {
            hasher,
            process_key: random_bytes(),
            cache: DashMap::new(),
        }
    }

    /// Checks `secret` for `key` (a client id) against its stored `phc`, from the cache when
    /// possible. Errors are those of [`Hasher::verify`] on a miss.
    pub async fn verify(&self, key: &str, secret: &str, phc: &str) -> Result<bool, HashError> {
        if let Some(matches) = self.cached(key, secret, phc) {
            // Same stored hash as a past success: the tag decides, no argon2 needed.
            return Ok(matches);
        }
        let ok = self
            .hasher
            .verify(secret.to_owned(), phc.to_owned())
            .await?;
        if ok {
            let entry = CacheEntry {
                phc_digest: sha256(phc.as_bytes()),
                tag: self.tag(secret.as_bytes()),
            };
            self.cache.insert(key.to_owned(), entry);
        }
        Ok(ok)
    }

    /// Whether `secret` is the one argon2 last accepted for `key` against `phc`, from the cache alone: never
    /// argon2, `false` when the cache does not know.
    pub fn is_known(&self, key: &str, secret: &str, phc: &str) -> bool {
        self.cached(key, secret, phc) == Some(true)
    }

    /// The cache's verdict when it holds a success against this `phc`; the shard guard is released before
    /// returning, so never across an await.
    fn cached(&self, key: &str, secret: &str, phc: &str) -> Option<bool> {
        let tag = self.tag(secret.as_bytes());
        let phc_digest = sha256(phc.as_bytes());
        self.cache
            .get(key)
            .filter(|entry| entry.phc_digest == phc_digest)
            .map(|entry| ct_eq(&entry.tag, &tag))
    }

    /// Drops the cached success for `key`, so the next call runs argon2 again.
    pub fn forget(&self, key: &str) {
        self.cache.remove(key);
    }

    /// The pool used on cache misses.
    pub fn hasher(&self) -> &Arc<Hasher> {
        &self.hasher
    }

    fn tag(&self, secret: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.process_key)
            .expect("HMAC accepts keys of any length");
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    const FAST: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn fast_hasher() -> Arc<Hasher> {
        Arc::new(Hasher::new(FAST, 2, 16))
    }

    #[test]
    fn default_params_are_owasp() {
        let p = Argon2Params::default();
        assert_eq!((p.memory_kib, p.iterations, p.parallelism), (19_456, 2, 1));
        assert!(p.validate().is_ok());
        let bad = Argon2Params { memory_kib: 4, ..p };
        assert!(bad.validate().is_err());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = fast_hasher();
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!h.verify("correct horsE".into(), phc.clone()).await.unwrap());
        assert!(!h.verify(String::new(), phc).await.unwrap());
    }

    #[tokio::test]
    async fn a_dummy_phc_looks_like_a_real_hash_and_verifies_nothing() {
        let h = fast_hasher();
        let real = h.hash("pw".into()).await.unwrap();
        let dummy = h.dummy_phc();
        assert_eq!(dummy.len(), real.len());
        assert!(dummy.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{dummy}");
        assert_ne!(dummy, h.dummy_phc());
        for secret in ["pw", "", "anything"] {
            assert!(!h.verify(secret.into(), dummy.clone()).await.unwrap());
        }
    }

    #[tokio::test]
    async fn salts_differ() {
        let h = fast_hasher();
        let a = h.hash("same".into()).await.unwrap();
        let b = h.hash("same".into()).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn malformed_hashes_are_errors() {
        let h = fast_hasher();
        let good = h.hash("pw".into()).await.unwrap();
        let bad = [
            String::new(),
            "not a hash".into(),
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ".into(),
            good.replace("$argon2id$", "$scrypt$"),
            good.replace("v=19", "v=18"),
            good.replace("m=64", "m=1"),
            good.replace("t=1", "x=1"),
            // Salt of 3 bytes: below argon2's minimum.
            "$argon2id$v=19$m=64,t=1,p=1$YWJj$YWJjZGVmZ2hpamtsbW5vcA".into(),
        ];
        for phc in bad {
            let r = h.verify("pw".into(), phc.clone()).await;
            assert!(matches!(r, Err(HashError::Malformed)), "{phc:?} gave {r:?}");
        }
    }

    #[tokio::test]
    async fn our_phc_verifies_with_the_argon2_crate() {
        let h = fast_hasher();
        let phc = h.hash("hunter2".into()).await.unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.algorithm, argon2::ARGON2ID_IDENT);
        assert_eq!(parsed.hash.unwrap().len(), OUTPUT_LEN);
        let mut salt = [0u8; 64];
        assert_eq!(
            parsed.salt.unwrap().decode_b64(&mut salt).unwrap().len(),
            SALT_LEN
        );
        Argon2::default()
            .verify_password(b"hunter2", &parsed)
            .unwrap();
        assert!(Argon2::default()
            .verify_password(b"hunter3", &parsed)
            .is_err());
    }

    #[tokio::test]
    async fn argon2_crate_hashes_verify_with_ours() {
        let h = fast_hasher();
        let salt = SaltString::encode_b64(&random_bytes::<16>()).unwrap();
        // Default params: bigger than the pool's block, so this also covers the per-job
        // allocation path.
        let phc = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        assert!(h.verify("s3cret".into(), phc.clone()).await.unwrap());
        assert!(!h.verify("s3creT".into(), phc).await.unwrap());

        // Another variant, version and output length, smaller than the pool's block.
        let params = argon2::Params::new(32, 3, 2, Some(20)).unwrap();
        let phc = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"legacy", &salt)
            .unwrap()
            .to_string();
        assert!(phc.starts_with("$argon2i$v=16$m=32,t=3,p=2$"), "{phc}");
        assert!(h.verify("legacy".into(), phc.clone()).await.unwrap());
        assert!(!h.verify("legacY".into(), phc).await.unwrap());
    }

    #[test]
    fn blocking_variants() {
        let h = fast_hasher();
        let phc = h.hash_blocking("offline".into()).unwrap();
        assert!(h.verify_blocking("offline".into(), phc.clone()).unwrap());
        assert!(!h.verify_blocking("online".into(), phc).unwrap());
        assert!(matches!(
            h.verify_blocking("x".into(), "$".into()),
            Err(HashError::Malformed)
        ));
    }

    #[tokio::test]
    async fn busy_when_queue_is_full() {
        // One slow worker and one queue slot: of several simultaneous requests, at most two
        // are accepted (one running, one waiting) and the rest must fail at once.
        let slow = Argon2Params {
            memory_kib: 32 * 1024,
            iterations: 8,
            parallelism: 1,
        };
        let h = Hasher::new(slow, 1, 1);
        let mut cx = Context::from_waker(Waker::noop());
        let mut accepted: Vec<Pin<Box<dyn Future<Output = _> + '_>>> = Vec::new();
        let mut busy = 0;
        let started = Instant::now();
        for _ in 0..5 {
            let mut fut = Box::pin(h.hash("pw".into()));
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(Err(HashError::Busy)) => busy += 1,
                Poll::Ready(other) => panic!("unexpected {other:?}"),
                Poll::Pending => accepted.push(fut),
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "Busy must not wait"
        );
        assert!(busy >= 3, "only {busy} rejected");
        // Accepted work still completes.
        let first = accepted.remove(0);
        drop(accepted);
        assert!(first.await.unwrap().starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn memory_is_taken_per_burst_and_given_back_when_quiet() {
        let quiet = Duration::from_millis(300);
        let h = Arc::new(Hasher::with_quiet(FAST, 2, 64, quiet));
        assert_eq!(h.blocks_held(), 0, "an idle pool holds no memory");
        // A burst: every job runs on at most one block per worker.
        let burst: Vec<_> = (0..40)
            .map(|i| {
                let h = Arc::clone(&h);
                tokio::spawn(async move { h.hash(format!("pw{i}")).await })
            })
            .collect();
        for job in burst {
            job.await.unwrap().unwrap();
            assert!(h.blocks_held() <= 2, "{} blocks", h.blocks_held());
        }
        assert!(h.blocks_held() >= 1);
        // Jobs within the quiet period reuse the block.
        h.hash("again".into()).await.unwrap();
        assert!(h.blocks_held() >= 1);
        let t = Instant::now();
        while h.blocks_held() > 0 {
            assert!(t.elapsed() < quiet * 10, "blocks never given back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And taken again by the next job.
        assert!(h
            .verify("x".into(), h.hash("x".into()).await.unwrap())
            .await
            .unwrap());
        assert!(h.blocks_held() >= 1);
    }

    #[tokio::test]
    async fn gone_after_workers_exit() {
        let h = Hasher::new(FAST, 1, 1);
        // Simulate dead workers by swapping in a sender whose receiver is dropped.
        let (dead, _) = mpsc::sync_channel(1);
        let h = Hasher { jobs: dead, ..h };
        assert!(matches!(h.hash("x".into()).await, Err(HashError::Gone)));
    }

    #[tokio::test]
    async fn verifier_caches_success() {
        // Default params so the argon2 path is clearly slower than the cached path.
        let v = Verifier::new(Arc::new(Hasher::new(Argon2Params::default(), 1, 4)));
        let phc = v.hasher().hash("client-secret".into()).await.unwrap();

        assert!(v.verify("app", "client-secret", &phc).await.unwrap());
        assert_eq!(v.cache.len(), 1);

        // Averaged over many calls so one preemption on a busy machine cannot fail the test;
        // a single argon2 run with these params takes tens of milliseconds.
        let t = Instant::now();
        for _ in 0..100 {
            assert!(v.verify("app", "client-secret", &phc).await.unwrap());
        }
        let per_call = t.elapsed() / 100;
        assert!(
            per_call < Duration::from_millis(1),
            "cached verify took {per_call:?}"
        );

        // A wrong secret against the cached hash is refused without argon2.
        let t = Instant::now();
        for _ in 0..100 {
            assert!(!v.verify("app", "client-secreT", &phc).await.unwrap());
        }
        let per_call = t.elapsed() / 100;
        assert!(
            per_call < Duration::from_millis(1),
            "cached refusal took {per_call:?}"
        );
        assert!(v.verify("app", "client-secret", &phc).await.unwrap());
    }

    #[tokio::test]
    async fn verifier_wrong_secret_never_populates() {
        let v = Verifier::new(fast_hasher());
        let phc = v.hasher().hash("right".into()).await.unwrap();
        assert!(!v.verify("app", "wrong", &phc).await.unwrap());
        assert_eq!(v.cache.len(), 0);
        assert!(v.verify("app", "right", &phc).await.unwrap());
        assert_eq!(v.cache.len(), 1);
        assert!(matches!(
            v.verify("other", "right", "garbage").await,
            Err(HashError::Malformed)
        ));
        assert_eq!(v.cache.len(), 1);
    }

    #[tokio::test]
    async fn verifier_rechecks_changed_phc() {
        let v = Verifier::new(fast_hasher());
        let old = v.hasher().hash("old".into()).await.unwrap();
        let new = v.hasher().hash("new".into()).await.unwrap();
        assert!(v.verify("app", "old", &old).await.unwrap());
        // Secret regenerated: the old secret must stop working and the new one must work.
        assert!(!v.verify("app", "old", &new).await.unwrap());
        assert!(v.verify("app", "new", &new).await.unwrap());
        assert!(!v.verify("app", "old", &new).await.unwrap());
        // Keys are independent.
        assert!(!v.verify("other", "new", &old).await.unwrap());
    }

    /// Whether some mapping of this process covers `addr`.
    #[cfg(target_os = "linux")]
    fn mapped(addr: usize) -> bool {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
            .any(|(lo, hi)| {
                let (lo, hi) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16));
                matches!((lo, hi), (Ok(lo), Ok(hi)) if lo <= addr && addr < hi)
            })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_given_back_block_is_returned_to_the_os() {
        let mut memory = Memory {
            block: None,
            blocks: 4096,
            quiet: QUIET,
            held: Arc::new(AtomicUsize::new(0)),
        };
        let block = memory.take();
        block[4095] = Block::default();
        let addr = block.as_ptr() as usize;
        assert!(mapped(addr));
        memory.give_back();
        assert!(
            !mapped(addr),
            "the 4 MiB block is still mapped after the give-back"
        );
    }

    #[tokio::test]
    async fn settled_waits_for_every_open_hold() {
        let h = fast_hasher();
        let (first, second) = (h.hold(), h.hold());
        let waiting = {
            let h = h.clone();
            tokio::spawn(async move { h.settled().await })
        };
        // The holder's own work runs meanwhile.
        let phc = h.hash("s3cret".into()).await.unwrap();
        assert!(h.verify("s3cret".into(), phc).await.unwrap());
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "settled with a hold still open");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released by the last drop")
            .unwrap();
        // Nothing open: no wait.
        tokio::time::timeout(Duration::from_millis(10), h.settled())
            .await
            .expect("settled at once");
    }

    #[tokio::test]
    async fn is_current_compares_the_costs_of_a_stored_hash() {
        let h = fast_hasher();
        let phc = h.hash("s".into()).await.unwrap();
        assert!(h.is_current(&phc));
        let stronger = Hasher::new(
            Argon2Params {
                iterations: FAST.iterations + 1,
                ..FAST
            },
            1,
            1,
        );
        assert!(!stronger.is_current(&phc));
        assert!(!h.is_current(&phc.replace("argon2id", "argon2i")));
        assert!(!h.is_current("not a hash"));
    }

    #[tokio::test]
    async fn verifier_forget() {
        let v = Verifier::new(fast_hasher());
        let phc = v.hasher().hash("s".into()).await.unwrap();
        assert!(v.verify("app", "s", &phc).await.unwrap());
        assert_eq!(v.cache.len(), 1);
        v.forget("app");
        assert_eq!(v.cache.len(), 0);
        v.forget("never-seen");
        assert!(v.verify("app", "s", &phc).await.unwrap());
        assert_eq!(v.cache.len(), 1);
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let v = Verifier::new(fast_hasher());
        let s = format!("{v:?}");
        assert!(s.contains("Verifier") && s.contains("Hasher"), "{s}");
        assert!(!s.contains("process_key"));
    }
}
