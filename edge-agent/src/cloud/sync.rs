//! Polling the cloud for the site's boot data: `GET /edge/v1/snapshot` with `If-None-Match`,
//! so an unchanged poll is a `304`; a new snapshot is read whole, checked, and only then
//! swapped in. Down, 5xx, refusals and garbage all leave the snapshot in service untouched.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use skyport_sync::Snapshot;

use crate::cloud::{CloudClient, problem_detail};
use crate::metrics::{Metrics, inc};
use crate::node::replica::{Applied, Replica};

/// The largest snapshot accepted (a 10,000-node site is a few MB).
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cloud unreachable: {0}")]
    Unreachable(String),
    #[error("{url}: HTTP {status}: {detail}")]
    Http {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: unreadable snapshot: {reason}")]
    Garbage { url: String, reason: String },
    #[error(transparent)]
    Replica(#[from] crate::node::replica::ReplicaError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    Unchanged,
    Applied(Applied),
}

pub struct Syncer {
    cloud: CloudClient,
    replica: Arc<Replica>,
    metrics: Arc<Metrics>,
}

impl Syncer {
    pub fn new(cloud: CloudClient, replica: Arc<Replica>, metrics: Arc<Metrics>) -> Self {
        Syncer {
            cloud,
            replica,
            metrics,
        }
    }

    /// One poll; counted in the metrics either way.
    pub async fn poll(&self) -> Result<Polled, SyncError> {
        let r = self.poll_inner().await;
        match &r {
            Ok(p) => {
                self.metrics
                    .last_sync_ok
                    .store(skyport_model::now(), Ordering::Relaxed);
                match p {
                    Polled::Unchanged => inc(&self.metrics.sync_unchanged),
                    Polled::Applied(a) => {
                        inc(&self.metrics.sync_ok);
                        self.metrics
                            .snapshot_applied_at
                            .store(a.applied_at, Ordering::Relaxed);
                    }
                }
            }
            Err(_) => inc(&self.metrics.sync_failed),
        }
        r
    }

    async fn poll_inner(&self) -> Result<Polled, SyncError> {
        let url = self.cloud.url("/edge/v1/snapshot");
        // The tag of the snapshot in service, as the cloud sent it (older replicas kept only
        // the generation, which is the tag of an unregistered site's snapshot).
        let current = self
            .replica
            .applied()
            .await?
            .map(|a| a.etag.unwrap_or_else(|| format!("\"{}\"", a.generation)));
        let resp = self
            .cloud
            .execute(&url, |h| {
                let mut req = h
                    .get(&url)
                    .header(reqwest::header::ACCEPT_ENCODING, "gzip")
                    .timeout(std::time::Duration::from_secs(120));
                if let Some(tag) = &current {
                    req = req.header(reqwest::header::IF_NONE_MATCH, tag);
                }
                req
            })
            .await
            .map_err(|e| SyncError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Polled::Unchanged);
        }
        if !status.is_success() {
            return Err(SyncError::Http {
                url,
                status: status.as_u16(),
                detail: problem_detail(resp).await,
            });
        }
        let garbage = |reason: String| SyncError::Garbage {
            url: url.clone(),
            reason,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_SNAPSHOT_BYTES as u64)
        {
            return Err(garbage(format!("larger than {MAX_SNAPSHOT_BYTES} bytes")));
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let gzipped = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SyncError::Unreachable(format!("{url}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_SNAPSHOT_BYTES {
                return Err(garbage(format!("larger than {MAX_SNAPSHOT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if gzipped {
            body = gunzip(&body, MAX_SNAPSHOT_BYTES).map_err(|e| garbage(e.to_string()))?;
        }
        let snap: Snapshot = serde_json::from_slice(&body).map_err(|e| garbage(e.to_string()))?;
        let applied = self.replica.apply(snap, etag).await?;
        Ok(Polled::Applied(applied))
    }
}

/// Inflates a gzip body, refusing more than `limit` bytes of output (a small body must not
/// expand into an unbounded one).
fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(GunzipError::Bad)?;
    if out.len() > limit {
        return Err(GunzipError::TooLarge(limit));
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
enum GunzipError {
    #[error("bad gzip: {0}")]
    Bad(#[source] std::io::Error),
    #[error("inflates to more than {0} bytes")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunzip_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 100_000]).unwrap_or_default();
        let z = enc.finish().unwrap_or_default();
        assert!(z.len() < 1000);
        assert_eq!(gunzip(&z, 100_000).map(|v| v.len()).ok(), Some(100_000));
        assert!(matches!(
            gunzip(&z, 99_999),
            Err(GunzipError::TooLarge(99_999))
        ));
        assert!(gunzip(b"not gzip", 10).is_err());
    }
}
