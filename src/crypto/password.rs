//! argon2id password hashing, bounded in time and in memory.
//!
//! Each hash needs `memory_kib` of working memory (19 MiB by default). At most
//! `argon2.max_concurrent` hashes run at once (a semaphore), each on a blocking thread, and they
//! share a small pool of working buffers: a finished hash hands its buffer to the next hash
//! queued for a permit, and frees it when none is queued, so a burst of sign-ins reuses at most
//! `max_concurrent` buffers and its memory goes back to the operating system as soon as the
//! burst ends (jemalloc returns allocations this large at once). A buffer left in the pool by a
//! hash that was queued and then given up is freed once no hash has run for [`RELEASE_AFTER`].
//! Left to the allocator, every blocking thread's arena kept its own 19 MiB blocks, and a
//! sign-in burst grew the process to hundreds of megabytes that never came back.
//!
//! Unknown accounts are verified against a dummy hash, so they cost the same time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::Argon2Settings;
use crate::domain::Password;

/// How long a pooled buffer nobody came for is kept after the last hash.
pub const RELEASE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("hasher closed")]
    Closed,
}

fn argon2_error(e: impl std::fmt::Display) -> HashError {
    HashError::Argon2(e.to_string())
}

/// The argon2id parameters of `[argon2]`.
fn params(settings: &Argon2Settings) -> Result<Params, HashError> {
    Params::new(
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        None,
    )
    .map_err(argon2_error)
}

/// What the hasher has done, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HasherStats {
    /// The most hashes that ever ran at the same time.
    pub peak_concurrent: usize,
    /// Working buffers allocated since the start (each is then reused until released).
    pub buffers_allocated: usize,
    /// Working buffers alive now (in use or pooled).
    pub buffers_held: usize,
    /// Hashes queued for a permit now.
    pub waiting: usize,
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    permits: Semaphore,
    /// Hashes queued for a permit: a finished hash keeps its buffer only for them.
    waiting: AtomicUsize,
    /// Idle working buffers, each `params.block_count()` blocks.
    pool: Mutex<Vec<Box<[Block]>>>,
    release_after: Duration,
    last_use: Mutex<Instant>,
    reaper_running: AtomicBool,
    running: AtomicUsize,
    peak: AtomicUsize,
    allocated: AtomicUsize,
    held: AtomicUsize,
    dummy_hash: Box<str>,
}

/// Counts one hash queued for a permit for as long as it waits (also when given up).
struct Waiting<'a>(&'a Inner);

impl<'a> Waiting<'a> {
    fn start(inner: &'a Inner) -> Self {
        inner.waiting.fetch_add(1, Ordering::SeqCst);
        Self(inner)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts one running hash for as long as it lives.
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn start(inner: &'a Inner) -> Self {
        let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak.fetch_max(now, Ordering::SeqCst);
        Self(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher {
    pub fn new(settings: &Argon2Settings) -> Result<Self, HashError> {
        Self::with_release_after(settings, RELEASE_AFTER)
    }

    /// As [`PasswordHasher::new`], releasing the working buffers after `release_after` idle.
    pub fn with_release_after(
        settings: &Argon2Settings,
        release_after: Duration,
    ) -> Result<Self, HashError> {
        let params = params(settings)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // A real hash of a random value, so that verifying against it takes a real hash's time.
        let dummy = argon
            .hash_password(super::secret::random_secret(16).as_bytes())
            .map_err(argon2_error)?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                permits: Semaphore::new(settings.max_concurrent.max(1)),
                waiting: AtomicUsize::new(0),
                pool: Mutex::new(Vec::new()),
                release_after,
                last_use: Mutex::new(Instant::now()),
                reaper_running: AtomicBool::new(false),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                allocated: AtomicUsize::new(0),
                held: AtomicUsize::new(0),
                dummy_hash: dummy.into(),
            }),
        })
    }

    pub fn stats(&self) -> HasherStats {
        HasherStats {
            peak_concurrent: self.inner.peak.load(Ordering::SeqCst),
            buffers_allocated: self.inner.allocated.load(Ordering::SeqCst),
            buffers_held: self.inner.held.load(Ordering::SeqCst),
            waiting: self.inner.waiting.load(Ordering::SeqCst),
        }
    }

    /// Hash a password to a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let pw = password.expose().as_bytes().to_vec();
        let params = self.inner.params.clone();
        let output = self
            .run(move |memory| {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                argon
                    .hash_password_into_with_memory(&pw, &salt, &mut out, memory)
                    .map(|()| out)
            })
            .await?
            .map_err(argon2_error)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.inner.params).map_err(argon2_error)?,
            salt: Some(Salt::new(&salt).map_err(argon2_error)?),
            hash: Some(Output::new(&output).map_err(argon2_error)?),
        };
        Ok(phc.to_string())
    }

    /// Verify `password` against `hash`; with no hash (unknown account), verify against the
    /// dummy so the answer takes the same time, and return false. A hash that cannot be parsed
    /// never matches.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.inner.dummy_hash).to_owned();
        let pw = password.as_bytes().to_vec();
        let ok = self
            .run(move |memory| verify_phc(&pw, &phc, memory))
            .await?;
        Ok(known && ok)
    }

    /// Whether a stored hash was made with other parameters than the configured ones.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let p = &self.inner.params;
        let expected = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        );
        !hash.starts_with(&expected)
    }

    /// Run `work` on a blocking thread with a pooled working buffer, once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = &self.inner;
        let queued = Waiting::start(inner);
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        let _running = Running::start(inner);
        let mut buffer = self.take_buffer();
        // Counted until it holds a buffer, so a pooled buffer meant for it is not freed.
        drop(queued);
        let result = tokio::task::spawn_blocking(move || {
            let out = work(&mut buffer[..]);
            (buffer, out)
        })
        .await;
        match result {
            Ok((buffer, out)) => {
                self.return_buffer(buffer);
                Ok(out)
            }
            Err(e) => {
                // The buffer went down with the task.
                inner.held.fetch_sub(1, Ordering::SeqCst);
                Err(e.into())
            }
        }
    }

    fn take_buffer(&self) -> Box<[Block]> {
        let inner = &self.inner;
        if let Some(b) = lock(&inner.pool).pop() {
            return b;
        }
        inner.allocated.fetch_add(1, Ordering::SeqCst);
        inner.held.fetch_add(1, Ordering::SeqCst);
        vec![Block::new(); inner.params.block_count()].into_boxed_slice()
    }

    fn return_buffer(&self, buffer: Box<[Block]>) {
        let inner = &self.inner;
        *lock(&inner.last_use) = Instant::now();
        let mut pool = lock(&inner.pool);
        if pool.len() >= inner.waiting.load(Ordering::SeqCst) {
            // Every queued hash has a buffer waiting (none is queued once a burst is over):
            // this one goes back to the operating system now.
            drop(pool);
            inner.held.fetch_sub(1, Ordering::SeqCst);
            drop(buffer);
            return;
        }
        pool.push(buffer);
        drop(pool);
        if !inner.reaper_running.swap(true, Ordering::SeqCst) {
            tokio::spawn(reap(Arc::downgrade(inner)));
        }
    }
}

/// Empty the pool once no hash has run for `release_after`; ends when nothing is held.
async fn reap(inner: Weak<Inner>) {
    loop {
        let due = match inner.upgrade() {
            Some(i) => *lock(&i.last_use) + i.release_after,
            None => return,
        };
        tokio::time::sleep_until(due).await;
        let Some(i) = inner.upgrade() else { return };
        if *lock(&i.last_use) + i.release_after > Instant::now() {
            continue; // used meanwhile
        }
        let released = std::mem::take(&mut *lock(&i.pool));
        i.held.fetch_sub(released.len(), Ordering::SeqCst);
        drop(released);
        i.reaper_running.store(false, Ordering::SeqCst);
        // A buffer returned between the take and the store saw the reaper still running.
        if lock(&i.pool).is_empty() || i.reaper_running.swap(true, Ordering::SeqCst) {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Verify against a PHC string (argon2id, argon2i or argon2d), in `memory` when it is large
/// enough for the hash's parameters. The comparison is constant-time (`Output`'s equality).
fn verify_phc(password: &[u8], phc: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    if memory.len() < params.block_count() {
        // A hash made with more memory than configured now: let argon2 allocate.
        return argon.verify_password(password, phc).is_ok();
    }
    let mut out = vec![0u8; expected.len()];
    argon
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
        .is_ok()
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// How fast this machine hashes with the configured parameters, for tuning `[argon2]` and as
/// the benchmark's reference: `threads` threads hash for `duration`, each with its own buffer.
#[derive(Debug, Clone, Copy)]
pub struct HashRate {
    pub threads: usize,
    pub hashes: u64,
    pub seconds: f64,
}

pub fn measure(
    settings: &Argon2Settings,
    threads: usize,
    duration: Duration,
) -> Result<HashRate, HashError> {
    let params = params(settings)?;
    let start = std::time::Instant::now();
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let params = params.clone();
                scope.spawn(move || {
                    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                    let mut memory = vec![Block::new(); params.block_count()];
                    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                    let mut n = 0u64;
                    while start.elapsed() < duration {
                        argon
                            .hash_password_into_with_memory(
                                b"benchmark password",
                                b"benchmark salt",
                                &mut out,
                                &mut memory,
                            )
                            .map_err(argon2_error)?;
                        n += 1;
                    }
                    Ok::<u64, HashError>(n)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(Ok(0)))
            .collect::<Result<Vec<u64>, HashError>>()
    })?;
    Ok(HashRate {
        threads: threads.max(1),
        hashes: counts.iter().sum(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_concurrent: usize) -> Argon2Settings {
        Argon2Settings {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
            max_concurrent,
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(&settings(1)).unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let phc = h.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert!(!h.needs_rehash(&phc));
        assert!(h.verify("correct horse battery", Some(&phc)).await.unwrap());
        assert!(!h.verify("wrong", Some(&phc)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
        assert!(
            !h.verify("correct horse battery", Some("$argon2id$garbage"))
                .await
                .unwrap()
        );
        // The PHC string is the standard one: the argon2 crate's own verifier accepts it.
        let argon = Argon2::default();
        assert!(
            argon
                .verify_password(b"correct horse battery", phc.as_str())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn verifies_hashes_made_with_other_parameters() {
        let h = PasswordHasher::new(&settings(1)).unwrap();
        // Larger memory than the pool's buffers (argon2 allocates), smaller (the pool's buffer
        // is used in part), and argon2i.
        for (alg, m) in [
            (Algorithm::Argon2id, 16384),
            (Algorithm::Argon2id, 4096),
            (Algorithm::Argon2i, 8192),
        ] {
            let other = Argon2::new(alg, Version::V0x13, Params::new(m, 1, 1, None).unwrap());
            let phc = other
                .hash_password(b"an older password")
                .unwrap()
                .to_string();
            assert!(h.needs_rehash(&phc));
            assert!(
                h.verify("an older password", Some(&phc)).await.unwrap(),
                "{phc}"
            );
            assert!(!h.verify("not it", Some(&phc)).await.unwrap(), "{phc}");
        }
    }

    /// The argon2 path never runs more hashes at once than `max_concurrent`; a burst allocates
    /// one working buffer per concurrent hash, hands it from hash to queued hash, and frees it
    /// when the queue is empty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn bounded_concurrency_and_reused_released_memory() {
        let h = PasswordHasher::new(&settings(2)).unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        // Hold every permit until the whole burst is queued, so the hand-over is certain.
        let gate = h.inner.permits.acquire_many(2).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let (h, pw) = (h.clone(), pw.clone());
                tokio::spawn(async move { h.hash(&pw).await.unwrap() })
            })
            .collect();
        while h.stats().waiting < 12 {
            tokio::task::yield_now().await;
        }
        drop(gate);
        for t in tasks {
            t.await.unwrap();
        }
        let stats = h.stats();
        assert!(stats.peak_concurrent <= 2, "{stats:?}");
        assert_eq!(stats.buffers_allocated, 2, "{stats:?}");
        // The last hash found nobody queued: nothing is held once the burst is over.
        assert_eq!(stats.buffers_held, 0, "{stats:?}");
        assert_eq!(stats.waiting, 0, "{stats:?}");
        // A later hash allocates again, and frees its buffer too.
        h.hash(&pw).await.unwrap();
        let stats = h.stats();
        assert_eq!(stats.buffers_held, 0, "{stats:?}");
        assert_eq!(stats.buffers_allocated, 3, "{stats:?}");
    }
}
