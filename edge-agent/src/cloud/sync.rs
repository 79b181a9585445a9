//! Keeping the site's copy current: `GET /edge/v1/changes?after=<cursor>` with
//! `If-None-Match`, so an unchanged poll is a `304`; each change page is checked whole and
//! applied in one transaction, and pages are fetched until none says `more`. A fresh agent, an
//! upgraded one, one whose cursor expired (`410`) or one told to `resync` takes the paged
//! snapshot (`GET /edge/v1/snapshot?page=`), gathered aside and swapped in whole. Down, 5xx,
//! refusals and garbage all leave what is served untouched.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use skyport_sync::snapshot::{ChangePage, SnapshotPage};

use crate::cloud::{CloudClient, problem_detail};
use crate::metrics::{Metrics, inc};
use crate::node::replica::{Applied, Replica};

/// The largest page accepted (a page holds at most a thousand records, a few MB).
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// Most pages one poll reads (a change backlog beyond it is read on at the next poll).
const MAX_PAGES: usize = 10_000;

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
    #[error("{url}: unreadable page: {reason}")]
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

/// What one request of the feed brought.
enum Fetched<T> {
    NotModified,
    Gone,
    Page(T, Option<String>),
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
        let state = self.replica.applied().await?;
        let mut changed: Option<Applied> = None;
        let mut snapshotted = false;
        let (mut cursor, mut tag) = match state.and_then(|a| a.cursor.map(|c| (c, a.etag))) {
            Some(ct) => ct,
            None => {
                snapshotted = true;
                let a = self.snapshot().await?;
                let c = a.cursor.clone().unwrap_or_default();
                changed = Some(a);
                (c, None)
            }
        };
        for _ in 0..MAX_PAGES {
            let url = self.cloud.url(&format!(
                "/edge/v1/changes?after={}",
                form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
            ));
            match self.fetch::<ChangePage>(&url, tag.as_deref()).await? {
                Fetched::NotModified => break,
                // One snapshot a poll: right after one, its cursor (taken ten seconds back) can
                // still be before the entry that asked for it; the next poll goes on from there.
                Fetched::Gone | Fetched::Page(ChangePage { resync: true, .. }, _)
                    if snapshotted =>
                {
                    break;
                }
                Fetched::Gone => {
                    snapshotted = true;
                    tracing::warn!(
                        "the cloud no longer has changes that old; taking a full snapshot"
                    );
                    let a = self.snapshot().await?;
                    cursor = a.cursor.clone().unwrap_or_default();
                    tag = None;
                    changed = Some(a);
                }
                Fetched::Page(page, _) if page.resync => {
                    snapshotted = true;
                    tracing::info!("the cloud asks for a full snapshot (a large reassignment)");
                    let a = self.snapshot().await?;
                    cursor = a.cursor.clone().unwrap_or_default();
                    tag = None;
                    changed = Some(a);
                }
                Fetched::Page(page, etag) => {
                    let more = page.more;
                    let a = self.replica.apply_changes(page, etag.clone()).await?;
                    cursor = a.cursor.clone().unwrap_or_default();
                    tag = etag;
                    if a.records > 0 {
                        let total = changed.as_ref().map_or(0, |c| c.records) + a.records;
                        changed = Some(Applied {
                            records: total,
                            ..a
                        });
                    }
                    if !more {
                        break;
                    }
                }
            }
        }
        Ok(match changed {
            Some(a) => Polled::Applied(a),
            None => Polled::Unchanged,
        })
    }

    /// Reads the whole share page by page into the staging copy, then swaps it in.
    async fn snapshot(&self) -> Result<Applied, SyncError> {
        self.replica.begin_snapshot().await?;
        let mut token: Option<String> = None;
        let mut cursor: Option<String> = None;
        let mut records = 0usize;
        for _ in 0..MAX_PAGES {
            let url = match &token {
                None => self.cloud.url("/edge/v1/snapshot"),
                Some(t) => self.cloud.url(&format!(
                    "/edge/v1/snapshot?page={}",
                    form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                )),
            };
            let page = match self.fetch::<SnapshotPage>(&url, None).await? {
                Fetched::Page(p, _) => p,
                Fetched::NotModified | Fetched::Gone => {
                    return Err(SyncError::Garbage {
                        url,
                        reason: "a snapshot page answered without a body".into(),
                    });
                }
            };
            match &cursor {
                None => cursor = Some(page.cursor.clone()),
                Some(c) if *c != page.cursor => {
                    return Err(crate::node::replica::ReplicaError::MixedSnapshot {
                        got: page.cursor,
                        want: c.clone(),
                    }
                    .into());
                }
                Some(_) => {}
            }
            token = page.next.clone();
            records += self.replica.stage(page).await?;
            if token.is_none() {
                let c = cursor.unwrap_or_default();
                return Ok(self.replica.finish_snapshot(&c, records).await?);
            }
        }
        Err(SyncError::Garbage {
            url: self.cloud.url("/edge/v1/snapshot"),
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    async fn fetch<T: DeserializeOwned>(
        &self,
        url: &str,
        tag: Option<&str>,
    ) -> Result<Fetched<T>, SyncError> {
        let resp = self
            .cloud
            .execute(url, |h| {
                let mut req = h
                    .get(url)
                    .header(reqwest::header::ACCEPT_ENCODING, "gzip")
                    .timeout(std::time::Duration::from_secs(120));
                if let Some(tag) = tag {
                    req = req.header(reqwest::header::IF_NONE_MATCH, tag);
                }
                req
            })
            .await
            .map_err(|e| SyncError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status == reqwest::StatusCode::GONE {
            return Ok(Fetched::Gone);
        }
        if !status.is_success() {
            return Err(SyncError::Http {
                url: url.to_string(),
                status: status.as_u16(),
                detail: problem_detail(resp).await,
            });
        }
        let garbage = |reason: String| SyncError::Garbage {
            url: url.to_string(),
            reason,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
        {
            return Err(garbage(format!("larger than {MAX_PAGE_BYTES} bytes")));
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
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(garbage(format!("larger than {MAX_PAGE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if gzipped {
            body = gunzip(&body, MAX_PAGE_BYTES).map_err(|e| garbage(e.to_string()))?;
        }
        let page: T = serde_json::from_slice(&body).map_err(|e| garbage(e.to_string()))?;
        Ok(Fetched::Page(page, etag))
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
