//! The image cache: kernels, initrds and root images the site's boot parameters reference,
//! downloaded once from the cloud, verified against the SHA-256 they were registered with,
//! stored content-addressed (`<data>/images/sha256/<hex>`), and served to nodes from disk.
//!
//! Invariants: a file is only ever at its final path after its size and SHA-256 matched (the
//! download goes to `tmp/` and is renamed); a file whose size or modification time changed
//! since it was verified is hashed again before it is served, and dropped if it no longer
//! matches; concurrent requests for one image share one download; eviction (least recently
//! used, above the size cap) never removes an image a current boot parameter references.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};
use skyport_images::Image;
use tokio::io::AsyncWriteExt;

use crate::cloud::{CloudClient, problem_detail};
use crate::metrics::{Metrics, inc};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("image {id}: SHA-256 {sha:?} is not 64 hexadecimal digits")]
    BadDigest { id: String, sha: String },
    #[error("image {0} is not cached and there is no cloud to download it from")]
    Offline(String),
    #[error("image {id}: {reason}")]
    Download { id: String, reason: String },
    #[error("image cache {path}: {reason}")]
    Io { path: String, reason: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CacheError {
    CacheError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    mtime: Option<SystemTime>,
    last_used: u64,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Entry>,
    total: u64,
}

type Inflight = Shared<BoxFuture<'static, Result<PathBuf, CacheError>>>;

pub struct ImageCache {
    dir: PathBuf,
    max_bytes: u64,
    cloud: Option<CloudClient>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    pinned: Mutex<HashSet<String>>,
    inflight: tokio::sync::Mutex<HashMap<String, Inflight>>,
    clock: AtomicU64,
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 (hex) and size of a file, read in blocking code.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let (n, sha) = skyport_images::sha256_file(path)?;
    Ok((skyport_images::hex(&sha), n))
}

fn mtime(m: &std::fs::Metadata) -> Option<SystemTime> {
    m.modified().ok()
}

impl ImageCache {
    /// Opens the cache in `dir`, dropping partial downloads and re-verifying every cached file
    /// (a file that no longer matches its name's SHA-256 is deleted, never served).
    pub async fn open(
        dir: &Path,
        max_bytes: u64,
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
            max_bytes,
            cloud,
            metrics,
            state: Mutex::new(state),
            pinned: Mutex::new(HashSet::new()),
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

    /// Images (by SHA-256) that current boot parameters reference: never evicted.
    pub fn set_pinned(&self, shas: HashSet<String>) {
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

    /// The path of the image's verified bytes, downloading them first if needed.
    pub async fn get(self: &Arc<Self>, image: &Image) -> Result<PathBuf, CacheError> {
        if !is_digest(&image.sha256) {
            return Err(CacheError::BadDigest {
                id: image.id.clone(),
                sha: image.sha256.clone(),
            });
        }
        if let Some(p) = self.verified(&image.sha256).await? {
            inc(&self.metrics.cache_hits);
            return Ok(p);
        }
        inc(&self.metrics.cache_misses);
        self.fetch(image).await
    }

    /// The cached file if it is still the one that was verified; re-hashed if it changed.
    async fn verified(&self, sha: &str) -> Result<Option<PathBuf>, CacheError> {
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
            return Ok(Some(path));
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
            Ok((got, size)) if got == sha => {
                let m = tokio::fs::metadata(&path).await.map_err(|e| io(&path, e))?;
                self.remember(sha, size, mtime(&m));
                Ok(Some(path))
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

    fn remember(&self, sha: &str, size: u64, mtime: Option<SystemTime>) {
        let t = self.tick();
        if let Ok(mut s) = self.state.lock() {
            if let Some(old) = s.files.insert(
                sha.to_string(),
                Entry {
                    size,
                    mtime,
                    last_used: t,
                },
            ) {
                s.total -= old.size;
            }
            s.total += size;
            self.metrics.cache_bytes.store(s.total, Ordering::Relaxed);
        }
    }

    /// One download per image however many nodes ask at once; the download runs in its own
    /// task, so a node giving up does not cancel it for the others.
    async fn fetch(self: &Arc<Self>, image: &Image) -> Result<PathBuf, CacheError> {
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

    async fn download(self: &Arc<Self>, image: &Image) -> Result<PathBuf, CacheError> {
        // Someone may have finished it between our check and taking the in-flight slot.
        if let Some(p) = self.verified(&image.sha256).await? {
            return Ok(p);
        }
        let Some(cloud) = &self.cloud else {
            return Err(CacheError::Offline(image.id.clone()));
        };
        let r = self.download_from(cloud, image).await;
        if let Err(e) = &r {
            inc(&self.metrics.cache_downloads_failed);
            tracing::warn!(image = %image.id, error = %e, "image download failed");
        }
        r
    }

    async fn download_from(
        self: &Arc<Self>,
        cloud: &CloudClient,
        image: &Image,
    ) -> Result<PathBuf, CacheError> {
        let fail = |reason: String| CacheError::Download {
            id: image.id.clone(),
            reason,
        };
        let url = cloud.url(&format!("/images/v1/images/{}/content", image.id));
        let mut resp = cloud.send(&url, |h| h.get(&url)).await.map_err(fail)?;
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
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io(&tmp, e))?;
        let mut h = Sha256::new();
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
            file.write_all(&chunk).await.map_err(|e| io(&tmp, e))?;
        }
        let got = skyport_images::hex(&h.finalize());
        if n != image.size || got != image.sha256 {
            return Err(fail(format!(
                "downloaded {n} bytes with SHA-256 {got}, registered {} bytes with SHA-256 {}",
                image.size, image.sha256
            )));
        }
        file.sync_all().await.map_err(|e| io(&tmp, e))?;
        drop(file);
        let path = self.path(&image.sha256);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io(&path, e))?;
        guard.keep();
        let m = tokio::fs::metadata(&path).await.map_err(|e| io(&path, e))?;
        self.remember(&image.sha256, n, mtime(&m));
        tracing::info!(image = %image.id, sha256 = %image.sha256, bytes = n, "image cached");
        Ok(path)
    }

    /// Least recently used first, never a pinned image, until `incoming` more bytes fit under
    /// the cap.
    async fn evict(&self, incoming: u64) {
        loop {
            let victim = {
                let Ok(s) = self.state.lock() else { return };
                if s.total.saturating_add(incoming) <= self.max_bytes {
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
                    cap = self.max_bytes,
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
    for e in std::fs::read_dir(files_dir).map_err(|e| io(files_dir, e))? {
        let p = e.map_err(|e| io(files_dir, e))?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let good = is_digest(&name) && matches!(hash_file(&p), Ok((got, _)) if got == name);
        if !good {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::error!(file = %p.display(), error = %e, "could not delete a bad cached file");
            }
            dropped.push(p);
            continue;
        }
        let m = std::fs::metadata(&p).map_err(|e| io(&p, e))?;
        state.total += m.len();
        state.files.insert(
            name,
            Entry {
                size: m.len(),
                mtime: mtime(&m),
                last_used: 0,
            },
        );
    }
    Ok((state, dropped))
}
