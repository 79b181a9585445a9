//! Object storage for image bytes, behind one trait, and its filesystem backend for local mode.
//!
//! The filesystem backend stores each object as one file under `<dir>/blobs/`, written to a
//! temporary file first and renamed into place only when complete, so a partial upload is never
//! visible. Its URLs are signed like S3 presigned URLs: `op`, key and expiry under HMAC-SHA256
//! with a per-installation secret.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("signed URL has expired")]
    Expired,
    #[error("signed URL signature does not match")]
    BadSignature,
    #[error("object key {0:?} is invalid")]
    BadKey(String),
    #[error("upload exceeds the registered size of {0} bytes")]
    TooLarge(u64),
    #[error("object storage failed at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object storage failed: {0}")]
    Remote(String),
}

/// Object storage for image bytes.
#[async_trait::async_trait]
pub trait Blobs: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    /// A URL that accepts a `PUT` of the object's bytes until `ttl` from now.
    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError>;
    /// A URL that serves the object until `ttl` from now.
    async fn download_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError>;
    /// Size and SHA-256 of the stored object, if it exists.
    async fn digest(&self, key: &str) -> Result<Option<(u64, [u8; 32])>, BlobError>;
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Starts a multipart upload of `parts` parts: its id and one upload URL per part (in
    /// order). `None` when the backend takes every object in one `PUT`.
    async fn start_multipart(
        &self,
        key: &str,
        parts: u32,
        ttl: Duration,
    ) -> Result<Option<(String, Vec<String>)>, BlobError> {
        let _ = (key, parts, ttl);
        Ok(None)
    }
    /// Assembles a multipart upload from its parts' numbers and ETags.
    async fn finish_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), BlobError> {
        let _ = (upload_id, parts);
        Err(BlobError::Remote(format!(
            "{key}: this backend has no multipart uploads"
        )))
    }
    /// A short-lived download URL for an `s3://bucket/key` reference (as BSS presigns them).
    /// Backends that are not S3 refuse.
    async fn presign_s3(&self, url: &str, ttl: Duration) -> Result<String, BlobError> {
        let _ = ttl;
        Err(BlobError::Remote(format!(
            "{url}: s3:// references need the S3 image backend, and this one is {}",
            self.backend()
        )))
    }
}

/// Splits `s3://bucket/key` (bucket and key non-empty; no whitespace or control characters).
pub fn parse_s3_url(url: &str) -> Result<(&str, &str), BlobError> {
    let bad = || BlobError::BadKey(url.to_string());
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
    let ok = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok(bucket)
        && ok(key)
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    {
        Ok((bucket, key))
    } else {
        Err(bad())
    }
}

fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(BlobError::BadKey(key.to_string()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Filesystem objects with HMAC-signed URLs served by the local server.
pub struct FsBlobs {
    dir: PathBuf,
    public_base: String,
    secret: Vec<u8>,
}

impl FsBlobs {
    /// Objects under `<dir>/blobs`; URLs under `<public_base>/images/v1/blobs/`. The signing
    /// secret is created on first use in `<dir>/blob-url.key` (mode 0600) and kept.
    pub fn open(dir: &Path, public_base: &str) -> Result<Self, BlobError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let tmp = dir.join("blobs.tmp");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let key_path = dir.join("blob-url.key");
        let secret = match std::fs::read(&key_path) {
            Ok(s) if s.len() >= 32 => s,
            _ => {
                let mut s = Vec::with_capacity(32);
                while s.len() < 32 {
                    use std::hash::{BuildHasher, Hasher};
                    let r = std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish();
                    s.extend_from_slice(&r.to_le_bytes());
                }
                write_private(&key_path, &s).map_err(io(&key_path))?;
                s
            }
        };
        Ok(FsBlobs {
            dir: dir.to_path_buf(),
            public_base: public_base.trim_end_matches('/').to_string(),
            secret,
        })
    }

    fn sign(&self, op: &str, key: &str, expires: u64) -> String {
        // HMAC takes keys of any length, so this cannot fail; if it did, the empty signature
        // would match nothing and every URL would be refused.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret) else {
            return String::new();
        };
        mac.update(format!("{op}\n{key}\n{expires}").as_bytes());
        crate::hex(&mac.finalize().into_bytes())
    }

    fn url(&self, op: &str, key: &str, ttl: Duration) -> Result<String, BlobError> {
        check_key(key)?;
        let expires = now() + ttl.as_secs();
        Ok(format!(
            "{}/images/v1/blobs/{key}?op={op}&expires={expires}&sig={}",
            self.public_base,
            self.sign(op, key, expires)
        ))
    }

    /// Checks a signed request: right operation, unexpired, untampered.
    pub fn verify(&self, op: &str, key: &str, expires: &str, sig: &str) -> Result<(), BlobError> {
        check_key(key)?;
        let exp: u64 = expires.parse().map_err(|_| BlobError::BadSignature)?;
        let want = self.sign(op, key, exp);
        // Constant-time comparison: the signature is a secret-derived value.
        let same = !want.is_empty()
            && want.len() == sig.len()
            && want
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if !same {
            return Err(BlobError::BadSignature);
        }
        if exp < now() {
            return Err(BlobError::Expired);
        }
        Ok(())
    }

    pub fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.dir.join("blobs").join(key))
    }

    /// Streams an upload into place: at most `limit` bytes, visible only once complete.
    pub async fn write<S, E>(&self, key: &str, mut body: S, limit: u64) -> Result<u64, BlobError>
    where
        S: futures_core::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let dest = self.path(key)?;
        let tmp = self.dir.join("blobs.tmp").join(format!("{key}.{}", now()));
        let io = |p: &Path| {
            let path = p.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        let mut f = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
        let mut n: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _cleanup = tokio::fs::remove_file(&tmp).await;
                    return Err(BlobError::Io {
                        path: tmp.clone(),
                        source: std::io::Error::other(format!("upload interrupted: {e}")),
                    });
                }
            };
            n += chunk.len() as u64;
            if n > limit {
                drop(f);
                let _cleanup = tokio::fs::remove_file(&tmp).await;
                return Err(BlobError::TooLarge(limit));
            }
            f.write_all(&chunk).await.map_err(io(&tmp))?;
        }
        f.sync_all().await.map_err(io(&tmp))?;
        drop(f);
        tokio::fs::rename(&tmp, &dest).await.map_err(io(&dest))?;
        Ok(n)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[async_trait::async_trait]
impl Blobs for FsBlobs {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.url("put", key, ttl)
    }

    async fn download_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.url("get", key, ttl)
    }

    async fn digest(&self, key: &str) -> Result<Option<(u64, [u8; 32])>, BlobError> {
        let path = self.path(key)?;
        let result =
            tokio::task::spawn_blocking(move || -> std::io::Result<Option<(u64, [u8; 32])>> {
                match crate::sha256_file(&path) {
                    Ok(d) => Ok(Some(d)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| BlobError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        result.map_err(|source| BlobError::Io {
            path: self.dir.join("blobs").join(key),
            source,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }
}
