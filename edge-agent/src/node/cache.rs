//! The image cache: kernels, initrds and root images the site's boot parameters reference,
//! downloaded once from the cloud, verified against the SHA-256 they were registered with,
//! stored content-addressed (`<data>/images/sha256/<hex>`), and served to nodes from disk.
//!
//! Invariants: a file is only ever at its final path after its size and SHA-256 matched (the
//! download goes to `tmp/` and is renamed); whenever the whole file matches its SHA-256 (at
//! download, at start-up, after its size or modification time changed, and at each scheduled
//! verification, [`ImageCache::verify_all`]) a CRC-64 of each 1 MiB chunk is recorded, and every
//! chunk read for a node is checked against it before a byte of it is sent ([`Reader`]), so a
//! file corrupted after verification (a flipped bit with the same size and mtime) is never
//! served: it is dropped and fetched again. Concurrent requests for one image share one
//! download; eviction (least recently used, above the size cap) never removes an image a
//! current boot parameter references.
//!
//! A download reserves the image's full size before writing (`fallocate`), so a disk that
//! cannot hold it fails at once as [`CacheError::DiskFull`] instead of filling up first. After
//! any failed download the prefetch leaves that image alone for an exponential backoff
//! ([`CacheOptions`]); while an image waits for disk space, node requests for it are answered
//! without contacting the cloud, until the backoff ends or the file system reports room for it.
//! Errors shown to nodes never carry file system paths ([`CacheError::public_detail`]).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};
use skyport_images::Image;
use tokio::io::AsyncWriteExt;

use crate::cloud::{CloudClient, problem_detail};
use crate::metrics::{Metrics, inc};

/// The unit of checked reads: each chunk of a cached file has its own recorded checksum.
pub const CHUNK: u64 = 1 << 20;

/// First wait before the prefetch tries a failed image again; doubled after each failure.
pub const RETRY_BASE: Duration = Duration::from_secs(30);
/// Longest wait between two prefetch attempts of a failing image.
pub const RETRY_MAX: Duration = Duration::from_secs(3600);
/// Default time between two scheduled verifications of every cached file.
pub const VERIFY_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("image {id}: SHA-256 {sha:?} is not 64 hexadecimal digits")]
    BadDigest { id: String, sha: String },
    #[error("image {0} is not cached and there is no cloud to download it from")]
    Offline(String),
    #[error("image {id}: {reason}")]
    Download { id: String, reason: String },
    #[error("image {id}: the image cache has no disk space for its {needed} bytes")]
    DiskFull { id: String, needed: u64 },
    #[error("image cache {path}: {reason}")]
    Io { path: String, reason: String },
}

impl CacheError {
    /// What a node (or anyone outside the agent) may be told: never a file system path, which
    /// stays in the agent's log.
    pub fn public_detail(&self) -> String {
        match self {
            CacheError::Io { .. } => {
                "the image cache could not read or write its files; see the agent's log".into()
            }
            e => e.to_string(),
        }
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> CacheError {
    CacheError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// No space, quota exhausted or a file size limit: the disk cannot take the image.
fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), StorageFull | QuotaExceeded | FileTooLarge)
}

/// A write error while storing `image`, with the disk-full cases told apart.
fn store_err(image: &Image, path: &Path, e: std::io::Error) -> CacheError {
    if is_disk_full(&e) {
        CacheError::DiskFull {
            id: image.id.clone(),
            needed: image.size,
        }
    } else {
        io(path, e)
    }
}

/// Tunables of the cache; [`CacheOptions::new`] has the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// Most bytes of images kept; least recently used unpinned images go first.
    pub max_bytes: u64,
    /// First wait before the prefetch retries a failed image (doubled per failure).
    pub retry_base: Duration,
    /// Longest wait between prefetch attempts of a failing image.
    pub retry_max: Duration,
}

impl CacheOptions {
    pub fn new(max_bytes: u64) -> Self {
        CacheOptions {
            max_bytes,
            retry_base: RETRY_BASE,
            retry_max: RETRY_MAX,
        }
    }

    /// The wait after the `attempts`-th consecutive failure (1-based).
    fn backoff(&self, attempts: u32) -> Duration {
        skyport_model::Backoff::new(self.retry_base, self.retry_max).delay(attempts)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    mtime: Option<SystemTime>,
    last_used: u64,
    /// CRC-64 of each [`CHUNK`], taken from bytes that matched the SHA-256.
    sums: Arc<[u64]>,
    /// Which verification this is, so a reader dropping a bad file cannot drop a newer one.
    generation: u64,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Entry>,
    total: u64,
}

/// A failed download, remembered for the backoff and for `/readyz`.
#[derive(Debug, Clone)]
struct Failure {
    id: String,
    size: u64,
    attempts: u32,
    until: Instant,
    reason: String,
    disk_full: bool,
    /// The file system already claimed room for the image when it failed (reserved blocks, a
    /// quota): its free space then says nothing, so only the backoff ends the wait.
    fit_when_failed: bool,
}

/// An image whose download failed and is waiting to be tried again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Waiting {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    /// Consecutive failed downloads.
    pub attempts: u32,
    /// Seconds until the prefetch tries again.
    pub retry_in_s: u64,
    pub disk_full: bool,
    /// The last failure, without file system paths.
    pub reason: String,
}

/// What one scheduled verification pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: usize,
    pub dropped: usize,
}

type Inflight = Shared<BoxFuture<'static, Result<CachedFile, CacheError>>>;

pub struct ImageCache {
    dir: PathBuf,
    opts: CacheOptions,
    cloud: Option<CloudClient>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    pinned: Mutex<HashSet<String>>,
    failures: Mutex<HashMap<String, Failure>>,
    inflight: tokio::sync::Mutex<HashMap<String, Inflight>>,
    clock: AtomicU64,
}

/// A cached file as last verified.
#[derive(Debug, Clone)]
pub struct CachedFile {
    sha: String,
    size: u64,
    sums: Arc<[u64]>,
    generation: u64,
    path: PathBuf,
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The checksum recorded per chunk. CRC-64 rather than SHA-256 because every byte served is
/// checked against it: it runs at many GB/s (a SHA-256 per read would cost more CPU than
/// sending the bytes), and it only has to catch media corruption of bytes that already matched
/// the SHA-256, which a 64-bit CRC misses with probability 2^-64 (and every burst of up to 64
/// bits, always caught). The whole-file SHA-256 is still checked at each scheduled verification.
fn chunk_sum(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data)
}

/// Per-chunk checksums of a byte stream fed in pieces of any size.
struct ChunkSums {
    sums: Vec<u64>,
    digest: crc_fast::Digest,
    filled: u64,
}

impl ChunkSums {
    fn new() -> Self {
        ChunkSums {
            sums: Vec::new(),
            digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            filled: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((CHUNK - self.filled) as usize).min(data.len());
            self.digest.update(&data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == CHUNK {
                self.sums.push(self.digest.finalize_reset());
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> Arc<[u64]> {
        if self.filled > 0 {
            self.sums.push(self.digest.finalize());
        }
        self.sums.into()
    }
}

/// SHA-256 (hex), size and chunk checksums of a file, read once, in blocking code.
fn hash_file(path: &Path) -> std::io::Result<(String, u64, Arc<[u64]>)> {
    let mut sums = ChunkSums::new();
    let (n, digest) = skyport_images::sha256_file_with(path, |b| sums.update(b))?;
    Ok((skyport_images::hex(&digest), n, sums.finish()))
}

fn mtime(m: &std::fs::Metadata) -> Option<SystemTime> {
    m.modified().ok()
}

impl ImageCache {
    /// Opens the cache in `dir` with the default retry policy; see [`Self::open_with`].
    pub async fn open(
        dir: &Path,
        max_bytes: u64,
        cloud: Option<CloudClient>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, CacheError> {
        Self::open_with(dir, CacheOptions::new(max_bytes), cloud, metrics).await
    }

    /// Opens the cache in `dir`, dropping partial downloads and re-verifying every cached file
    /// (a file that no longer matches its name's SHA-256 is deleted, never served).
    pub async fn open_with(
        dir: &Path,
        opts: CacheOptions,
        cloud: Option<CloudClient>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, CacheError> {
        let files_dir = dir.join("sha256");
        let tmp = dir.join("tmp");
        for d in [&files_dir, &tmp] {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        let (state, dropped) = tokio::task::spawn_blocking({
            let files_dir = files_dir.clone();
            let tmp = tmp.clone();
            move || scan(&files_dir, &tmp)
        })
        .await
        .map_err(|e| io(dir, e))??;
        for d in &dropped {
            tracing::warn!(file = %d.display(), "dropped a cached image that does not match its SHA-256");
            inc(&metrics.cache_corrupt_dropped);
        }
        metrics.cache_bytes.store(state.total, Ordering::Relaxed);
        tracing::info!(
            images = state.files.len(),
            bytes = state.total,
            "image cache verified"
        );
        Ok(Arc::new(ImageCache {
            dir: dir.to_path_buf(),
            opts,
            cloud,
            metrics,
            state: Mutex::new(state),
            pinned: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            inflight: tokio::sync::Mutex::new(HashMap::new()),
            clock: AtomicU64::new(1),
        }))
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.dir.join("sha256").join(sha)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Images (by SHA-256) that current boot parameters reference: never evicted. Failures of
    /// images no longer referenced are forgotten once their backoff is over.
    pub fn set_pinned(&self, shas: HashSet<String>) {
        if let Ok(mut f) = self.failures.lock() {
            let now = Instant::now();
            f.retain(|sha, x| shas.contains(sha) || x.until > now);
            self.count_disk_full(&f);
        }
        if let Ok(mut p) = self.pinned.lock() {
            *p = shas;
        }
    }

    /// Whether the image's verified bytes are on disk now (no download, no hashing).
    pub fn contains(&self, sha: &str) -> bool {
        self.state
            .lock()
            .map(|s| s.files.contains_key(sha))
            .unwrap_or(false)
    }

    /// Bytes the cache's file system has free for it, if it can tell.
    fn free_space(&self) -> Option<u64> {
        let s = rustix::fs::statvfs(&self.dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// How long the prefetch should still leave this image alone after a failed download
    /// (`None`: try now). A wait for disk space ends early once the file system has room.
    pub fn retry_in(&self, image: &Image) -> Option<Duration> {
        let f = self.failures.lock().ok()?.get(&image.sha256).cloned()?;
        let left = f.until.checked_duration_since(Instant::now())?;
        if f.disk_full && !f.fit_when_failed && self.free_space().is_some_and(|free| free >= f.size)
        {
            return None;
        }
        Some(left)
    }

    /// The wait when the image's last download failed for lack of disk space and it still
    /// applies: a node asking again cannot make room, so it is not worth a request to the cloud.
    fn disk_full_wait(&self, image: &Image) -> Option<Duration> {
        let disk_full = self
            .failures
            .lock()
            .ok()?
            .get(&image.sha256)
            .is_some_and(|f| f.disk_full);
        if disk_full {
            self.retry_in(image)
        } else {
            None
        }
    }

    /// Images whose last download failed, for `/readyz`.
    pub fn waiting(&self) -> Vec<Waiting> {
        let Ok(f) = self.failures.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut out: Vec<Waiting> = f
            .iter()
            .map(|(sha, x)| Waiting {
                id: x.id.clone(),
                sha256: sha.clone(),
                size: x.size,
                attempts: x.attempts,
                retry_in_s: x.until.saturating_duration_since(now).as_secs(),
                disk_full: x.disk_full,
                reason: x.reason.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn count_disk_full(&self, f: &HashMap<String, Failure>) {
        let n = f.values().filter(|x| x.disk_full).count() as u64;
        self.metrics.cache_disk_full.store(n, Ordering::Relaxed);
    }

    fn record_failure(&self, image: &Image, e: &CacheError) {
        let disk_full = matches!(e, CacheError::DiskFull { .. });
        let fit_when_failed = disk_full && self.free_space().is_some_and(|free| free >= image.size);
        let Ok(mut f) = self.failures.lock() else {
            return;
        };
        let attempts = f.get(&image.sha256).map_or(0, |x| x.attempts) + 1;
        f.insert(
            image.sha256.clone(),
            Failure {
                id: image.id.clone(),
                size: image.size,
                attempts,
                until: Instant::now() + self.opts.backoff(attempts),
                reason: e.public_detail(),
                disk_full,
                fit_when_failed,
            },
        );
        self.count_disk_full(&f);
    }

    fn clear_failure(&self, sha: &str) {
        if let Ok(mut f) = self.failures.lock()
            && f.remove(sha).is_some()
        {
            self.count_disk_full(&f);
        }
    }

    /// The image's verified file, downloading it first if needed.
    pub async fn get(self: &Arc<Self>, image: &Image) -> Result<CachedFile, CacheError> {
        if !is_digest(&image.sha256) {
            return Err(CacheError::BadDigest {
                id: image.id.clone(),
                sha: image.sha256.clone(),
            });
        }
        if let Some(f) = self.verified(&image.sha256).await? {
            inc(&self.metrics.cache_hits);
            return Ok(f);
        }
        inc(&self.metrics.cache_misses);
        if self.disk_full_wait(image).is_some() {
            return Err(CacheError::DiskFull {
                id: image.id.clone(),
                needed: image.size,
            });
        }
        self.fetch(image).await
    }

    /// The image opened for checked reads, downloading it first if needed.
    pub async fn reader(self: &Arc<Self>, image: &Image) -> Result<Reader, CacheError> {
        // Twice: eviction or a dropped corrupt file may remove it between lookup and open.
        for _ in 0..2 {
            let f = self.get(image).await?;
            match std::fs::File::open(&f.path) {
                Ok(file) => {
                    return Ok(Reader {
                        cache: self.clone(),
                        file: Arc::new(file),
                        meta: f,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.forget_generation(&f.sha, f.generation);
                }
                Err(e) => return Err(io(&f.path, e)),
            }
        }
        Err(CacheError::Download {
            id: image.id.clone(),
            reason: "the cached file disappeared twice while being opened".into(),
        })
    }

    fn cached(&self, sha: &str, e: &Entry) -> CachedFile {
        CachedFile {
            sha: sha.to_string(),
            size: e.size,
            sums: e.sums.clone(),
            generation: e.generation,
            path: self.path(sha),
        }
    }

    /// The cached file if it is still the one that was verified; re-hashed if it changed.
    async fn verified(&self, sha: &str) -> Result<Option<CachedFile>, CacheError> {
        let path = self.path(sha);
        let known = match self.state.lock() {
            Ok(s) => s.files.get(sha).cloned(),
            Err(_) => None,
        };
        let Some(entry) = known else {
            return Ok(None);
        };
        let meta = tokio::fs::metadata(&path).await.ok();
        if let Some(m) = &meta
            && m.len() == entry.size
            && mtime(m) == entry.mtime
        {
            self.touch(sha);
            return Ok(Some(self.cached(sha, &entry)));
        }
        // Changed under us (or gone): only bytes that hash right again are served.
        self.forget(sha);
        if meta.is_none() {
            return Ok(None);
        }
        let p = path.clone();
        let check = tokio::task::spawn_blocking(move || hash_file(&p))
            .await
            .map_err(|e| io(&path, e))?;
        match check {
            Ok((got, size, sums)) if got == sha => {
                let m = tokio::fs::metadata(&path).await.map_err(|e| io(&path, e))?;
                let e = self.remember(sha, size, mtime(&m), sums);
                Ok(Some(self.cached(sha, &e)))
            }
            _ => {
                tracing::warn!(sha256 = sha, file = %path.display(),
                    "cached image no longer matches its SHA-256; dropped");
                inc(&self.metrics.cache_corrupt_dropped);
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    tracing::error!(file = %path.display(), error = %e, "could not delete a corrupt cached image");
                }
                Ok(None)
            }
        }
    }

    fn touch(&self, sha: &str) {
        let t = self.tick();
        if let Ok(mut s) = self.state.lock()
            && let Some(e) = s.files.get_mut(sha)
        {
            e.last_used = t;
        }
    }

    fn forget(&self, sha: &str) {
        if let Ok(mut s) = self.state.lock()
            && let Some(e) = s.files.remove(sha)
        {
            s.total -= e.size;
            self.metrics.cache_bytes.store(s.total, Ordering::Relaxed);
        }
    }

    /// Forgets the entry only if it is still the given verification of the file.
    fn forget_generation(&self, sha: &str, generation: u64) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if s.files.get(sha).is_none_or(|e| e.generation != generation) {
            return false;
        }
        if let Some(e) = s.files.remove(sha) {
            s.total -= e.size;
            self.metrics.cache_bytes.store(s.total, Ordering::Relaxed);
        }
        true
    }

    /// Drops a file found corrupt (unless a newer verification replaced it meanwhile), so the
    /// next request or prefetch downloads it again. Returns whether it was dropped.
    fn drop_corrupt(&self, sha: &str, generation: u64, why: &str) -> bool {
        if !self.forget_generation(sha, generation) {
            return false;
        }
        inc(&self.metrics.cache_corrupt_dropped);
        let path = self.path(sha);
        tracing::warn!(sha256 = sha, file = %path.display(), reason = why,
            "cached image is corrupt; dropped, to be downloaded again");
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(file = %path.display(), error = %e, "could not delete a corrupt cached image");
        }
        true
    }

    fn remember(&self, sha: &str, size: u64, mtime: Option<SystemTime>, sums: Arc<[u64]>) -> Entry {
        let t = self.tick();
        let entry = Entry {
            size,
            mtime,
            last_used: t,
            sums,
            generation: t,
        };
        if let Ok(mut s) = self.state.lock() {
            if let Some(old) = s.files.insert(sha.to_string(), entry.clone()) {
                s.total -= old.size;
            }
            s.total += size;
            self.metrics.cache_bytes.store(s.total, Ordering::Relaxed);
        }
        entry
    }

    /// Hashes every cached file again, whole, and drops those that no longer match their
    /// SHA-256 (or cannot be read), one file at a time so a pass takes one core at most.
    pub async fn verify_all(&self) -> VerifyReport {
        let files: Vec<(String, u64)> = match self.state.lock() {
            Ok(s) => s
                .files
                .iter()
                .map(|(sha, e)| (sha.clone(), e.generation))
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut report = VerifyReport::default();
        for (sha, generation) in files {
            let p = self.path(&sha);
            let r = tokio::task::spawn_blocking(move || hash_file(&p)).await;
            report.checked += 1;
            inc(&self.metrics.cache_verified);
            let why = match r {
                Ok(Ok((got, _, _))) if got == sha => continue,
                // Evicted or dropped since the list was taken.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Ok(Ok(_)) => "SHA-256 mismatch at the scheduled verification".to_string(),
                Ok(Err(e)) => format!("unreadable at the scheduled verification: {e}"),
                Err(e) => format!("verification task failed: {e}"),
            };
            if self.drop_corrupt(&sha, generation, &why) {
                report.dropped += 1;
            }
        }
        self.metrics
            .cache_last_verified_at
            .store(skyport_model::now(), Ordering::Relaxed);
        report
    }

    /// Runs [`Self::verify_all`] every `interval`, forever; `dropped` is notified after a pass
    /// that dropped a file, so the prefetch can fetch it again.
    pub async fn verify_every(
        self: Arc<Self>,
        interval: Duration,
        dropped: Arc<tokio::sync::Notify>,
    ) {
        loop {
            tokio::time::sleep(interval).await;
            let r = self.verify_all().await;
            if r.dropped > 0 {
                tracing::warn!(
                    checked = r.checked,
                    dropped = r.dropped,
                    "scheduled verification dropped corrupt cached images"
                );
                dropped.notify_one();
            } else {
                tracing::info!(checked = r.checked, "scheduled verification: cache intact");
            }
        }
    }

    /// One download per image however many nodes ask at once; the download runs in its own
    /// task, so a node giving up does not cancel it for the others.
    async fn fetch(self: &Arc<Self>, image: &Image) -> Result<CachedFile, CacheError> {
        let fut = {
            let mut m = self.inflight.lock().await;
            match m.get(&image.sha256) {
                Some(f) => f.clone(),
                None => {
                    let me = self.clone();
                    let img = image.clone();
                    let task = tokio::spawn(async move {
                        let r = me.download(&img).await;
                        me.inflight.lock().await.remove(&img.sha256);
                        r
                    });
                    let id = image.id.clone();
                    let f = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(CacheError::Download {
                                id,
                                reason: format!("download task failed: {e}"),
                            })
                        })
                    }
                    .boxed()
                    .shared();
                    m.insert(image.sha256.clone(), f.clone());
                    f
                }
            }
        };
        fut.await
    }

    async fn download(self: &Arc<Self>, image: &Image) -> Result<CachedFile, CacheError> {
        // Someone may have finished it between our check and taking the in-flight slot.
        if let Some(f) = self.verified(&image.sha256).await? {
            return Ok(f);
        }
        let Some(cloud) = &self.cloud else {
            return Err(CacheError::Offline(image.id.clone()));
        };
        let r = self.download_from(cloud, image).await;
        match &r {
            Ok(_) => self.clear_failure(&image.sha256),
            Err(e) => {
                inc(&self.metrics.cache_downloads_failed);
                if matches!(e, CacheError::DiskFull { .. }) {
                    inc(&self.metrics.cache_disk_full_failures);
                }
                self.record_failure(image, e);
                tracing::warn!(image = %image.id, cache = %self.dir.display(), error = %e,
                    "image download failed");
            }
        }
        r
    }

    /// A new file in `tmp/` with the image's whole size reserved, so a disk that cannot hold it
    /// fails here, before anything is written.
    async fn reserve(&self, image: &Image, tmp: &Path) -> Result<std::fs::File, CacheError> {
        let p = tmp.to_path_buf();
        let size = image.size;
        let r = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::create(&p)?;
            if size > 0 {
                match rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, size) {
                    Ok(()) => {}
                    // Not every file system can reserve; the writes will tell instead.
                    Err(e)
                        if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
                    Err(e) => return Err(std::io::Error::from(e)),
                }
            }
            Ok(f)
        })
        .await
        .map_err(|e| io(tmp, e))?;
        r.map_err(|e| store_err(image, tmp, e))
    }

    async fn download_from(
        self: &Arc<Self>,
        cloud: &CloudClient,
        image: &Image,
    ) -> Result<CachedFile, CacheError> {
        let fail = |reason: String| CacheError::Download {
            id: image.id.clone(),
            reason,
        };
        let url = cloud.url(&format!("/images/v1/images/{}/content", image.id));
        let mut resp = cloud
            .execute(&url, |h| h.get(&url))
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(fail(format!(
                "{url}: HTTP {status}: {}",
                problem_detail(resp).await
            )));
        }
        // Room first, so the download itself does not take the disk past the cap; the image
        // being fetched is never the one evicted for it.
        self.evict(image.size).await;
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}.{}.part", image.sha256, self.tick()));
        let guard = TmpFile(tmp.clone());
        // Reserved before the body is read: without room, the response is dropped unread.
        let mut file = tokio::fs::File::from_std(self.reserve(image, &tmp).await?);
        let mut h = Sha256::new();
        let mut sums = ChunkSums::new();
        let mut n = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("{url}: {e}")))?
        {
            n += chunk.len() as u64;
            if n > image.size {
                return Err(fail(format!(
                    "the download is larger than the registered {} bytes",
                    image.size
                )));
            }
            h.update(&chunk);
            sums.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| store_err(image, &tmp, e))?;
        }
        let got = skyport_images::hex(&h.finalize());
        if n != image.size || got != image.sha256 {
            return Err(fail(format!(
                "downloaded {n} bytes with SHA-256 {got}, registered {} bytes with SHA-256 {}",
                image.size, image.sha256
            )));
        }
        file.sync_all()
            .await
            .map_err(|e| store_err(image, &tmp, e))?;
        drop(file);
        let path = self.path(&image.sha256);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| store_err(image, &path, e))?;
        guard.keep();
        let m = tokio::fs::metadata(&path).await.map_err(|e| io(&path, e))?;
        let e = self.remember(&image.sha256, n, mtime(&m), sums.finish());
        tracing::info!(image = %image.id, sha256 = %image.sha256, bytes = n, "image cached");
        Ok(self.cached(&image.sha256, &e))
    }

    /// Least recently used first, never a pinned image, until `incoming` more bytes fit under
    /// the cap.
    async fn evict(&self, incoming: u64) {
        loop {
            let victim = {
                let Ok(s) = self.state.lock() else { return };
                if s.total.saturating_add(incoming) <= self.opts.max_bytes {
                    return;
                }
                let pinned = self.pinned.lock().map(|p| p.clone()).unwrap_or_default();
                s.files
                    .iter()
                    .filter(|(sha, _)| !pinned.contains(*sha))
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(sha, _)| sha.clone())
            };
            let Some(sha) = victim else {
                tracing::warn!(
                    cap = self.opts.max_bytes,
                    "image cache is over its cap with only referenced images; keeping them"
                );
                return;
            };
            self.forget(&sha);
            let path = self.path(&sha);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    inc(&self.metrics.cache_evictions);
                    tracing::info!(sha256 = %sha, "evicted from the image cache");
                }
                Err(e) => tracing::error!(file = %path.display(), error = %e, "eviction failed"),
            }
        }
    }
}

/// Why a chunk could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("image {sha256}: chunk {chunk} no longer matches its recorded checksum; dropped")]
    Corrupt { sha256: String, chunk: u64 },
    #[error("image {sha256}: chunk {chunk} could not be read ({reason}); dropped")]
    Unreadable {
        sha256: String,
        chunk: u64,
        reason: String,
    },
}

/// A cached image opened for reading. Every chunk is checked against the checksum recorded
/// when the file last matched its SHA-256 before any of its bytes are returned; a chunk that
/// fails drops the file from the cache.
pub struct Reader {
    cache: Arc<ImageCache>,
    file: Arc<std::fs::File>,
    meta: CachedFile,
}

impl Reader {
    pub fn size(&self) -> u64 {
        self.meta.size
    }

    pub fn sha256(&self) -> &str {
        &self.meta.sha
    }

    /// Chunk `i` (bytes from `i * CHUNK`), checked.
    pub async fn chunk(&self, i: u64) -> Result<Bytes, ReadError> {
        let sha256 = self.meta.sha.clone();
        let unreadable = |reason: String| ReadError::Unreadable {
            sha256: sha256.clone(),
            chunk: i,
            reason,
        };
        let expected = match usize::try_from(i).ok().and_then(|k| self.meta.sums.get(k)) {
            Some(s) => *s,
            None => return Err(unreadable("beyond the end of the file".into())),
        };
        let off = i * CHUNK;
        let len = CHUNK.min(self.meta.size.saturating_sub(off));
        let file = self.file.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, off)?;
            Ok::<_, std::io::Error>((chunk_sum(&buf) == expected).then_some(buf))
        })
        .await;
        let err = match r {
            Ok(Ok(Some(buf))) => return Ok(Bytes::from(buf)),
            Ok(Ok(None)) => ReadError::Corrupt {
                sha256: self.meta.sha.clone(),
                chunk: i,
            },
            Ok(Err(e)) => unreadable(e.to_string()),
            Err(e) => unreadable(e.to_string()),
        };
        self.cache
            .drop_corrupt(&self.meta.sha, self.meta.generation, &err.to_string());
        Err(err)
    }
}

/// Removes a partial download unless it was kept.
struct TmpFile(PathBuf);

impl TmpFile {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        // Best effort: a leftover is also removed at the next start.
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.0.display(), error = %e, "could not remove a partial download");
        }
    }
}

fn scan(files_dir: &Path, tmp: &Path) -> Result<(State, Vec<PathBuf>), CacheError> {
    for e in std::fs::read_dir(tmp).map_err(|e| io(tmp, e))? {
        let p = e.map_err(|e| io(tmp, e))?.path();
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(file = %p.display(), error = %e, "could not remove a partial download");
        }
    }
    let mut state = State::default();
    let mut dropped = Vec::new();
    for (n, e) in std::fs::read_dir(files_dir)
        .map_err(|e| io(files_dir, e))?
        .enumerate()
    {
        let p = e.map_err(|e| io(files_dir, e))?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let hashed = if is_digest(&name) {
            hash_file(&p).ok().filter(|(got, _, _)| *got == name)
        } else {
            None
        };
        let Some((_, size, sums)) = hashed else {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::error!(file = %p.display(), error = %e, "could not delete a bad cached file");
            }
            dropped.push(p);
            continue;
        };
        let m = std::fs::metadata(&p).map_err(|e| io(&p, e))?;
        state.total += size;
        state.files.insert(
            name,
            Entry {
                size,
                mtime: mtime(&m),
                last_used: 0,
                sums,
                // Distinct from every tick the cache hands out later (those start at 1 and
                // count up; these count down from the top).
                generation: u64::MAX - n as u64,
            },
        );
    }
    Ok((state, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sums_do_not_depend_on_how_the_bytes_arrive() {
        let data: Vec<u8> = (0..(2 * CHUNK + 12_345))
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let whole: Vec<u64> = data.chunks(CHUNK as usize).map(chunk_sum).collect();
        for piece in [1usize, 4096, 65_537, CHUNK as usize, 3 << 20] {
            let mut s = ChunkSums::new();
            for p in data.chunks(piece.min(data.len())) {
                s.update(p);
            }
            assert_eq!(&s.finish()[..], &whole[..], "pieces of {piece}");
        }
        assert!(ChunkSums::new().finish().is_empty());
        let mut flipped = data[..CHUNK as usize].to_vec();
        flipped[777] ^= 0x01;
        assert_ne!(chunk_sum(&flipped), whole[0]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = CacheOptions {
            max_bytes: 0,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
        };
        let waits: Vec<u64> = (1..=9).map(|a| o.backoff(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(o.backoff(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn disk_full_errors_carry_no_path() {
        let img = Image {
            id: "k1".into(),
            name: "vmlinuz".into(),
            version: "1".into(),
            arch: "x86_64".into(),
            kind: skyport_images::Kind::Kernel,
            size: 5 << 20,
            sha256: "0".repeat(64),
            state: skyport_images::ImageState::Ready,
            upload_id: None,
        };
        let p = Path::new("/var/lib/skyport-edge/images/tmp/x.part");
        let full = store_err(&img, p, std::io::Error::from_raw_os_error(28));
        assert!(matches!(full, CacheError::DiskFull { needed, .. } if needed == 5 << 20));
        let quota = store_err(&img, p, std::io::Error::from_raw_os_error(122));
        assert!(matches!(quota, CacheError::DiskFull { .. }));
        let other = store_err(&img, p, std::io::Error::from_raw_os_error(13));
        assert!(other.to_string().contains("/var/lib"), "logs keep the path");
        for e in [full, quota, other] {
            assert!(!e.public_detail().contains('/'), "{}", e.public_detail());
        }
    }
}
