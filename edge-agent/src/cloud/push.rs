//! Pushing queued results to the cloud inventory: `PUT /hsm/v2/Inventory/RedfishEndpoints/{id}`
//! with the SchemaVersion 1 payload (an idempotent upsert, so a push repeated after a crash or a
//! lost acknowledgement changes nothing). 2xx removes the entry; a refusal of the payload
//! itself (4xx) parks it with the server's reason; anything else is retried with backoff.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Serialize;

use crate::cloud::{CALL_TIMEOUT, CloudClient, problem_detail};
use crate::discovery::outbox::{Outbox, OutboxError, Queued};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Worth retrying: the cloud is down, slow, or failing.
    #[error("{0}")]
    Retry(String),
    /// The cloud refused this payload; retrying the same bytes cannot help.
    #[error("refused: {0}")]
    Rejected(String),
}

#[derive(Clone)]
pub struct Pusher {
    cloud: CloudClient,
}

impl Pusher {
    /// `base` is the inventory API root (`https://…/` or `http://127.0.0.1:27779`), without
    /// `/hsm/v2`.
    #[cfg(any(test, feature = "internals"))]
    pub fn new(
        base: &str,
        token: crate::cloud::TokenSource,
    ) -> Result<Self, crate::cloud::CloudError> {
        Ok(Self {
            cloud: crate::cloud::connect(base, token)?,
        })
    }

    pub fn from_cloud(cloud: CloudClient) -> Self {
        Self { cloud }
    }

    pub async fn push(&self, q: &Queued) -> Result<(), PushError> {
        let url = self.cloud.url(&format!(
            "/hsm/v2/Inventory/RedfishEndpoints/{}",
            q.entry.payload.id
        ));
        let resp = self
            .cloud
            .execute(&url, |h| {
                h.put(&url).json(&q.entry.payload).timeout(CALL_TIMEOUT)
            })
            .await
            .map_err(|e| PushError::Retry(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = problem_detail(resp).await;
        // The inventory's one answer when the result touches another site's records (its BMC,
        // FQDN, MACs): nothing a new credential would change, so the entry is parked like any
        // other refusal of its content.
        let other_site = status.as_u16() == 403 && detail == skyport_sites::REFUSED;
        let msg = format!("{url}: HTTP {}: {detail}", status.as_u16());
        // Other 401/403 are a credential problem on our side that an operator fixes without
        // touching the payload; 408/429 and 5xx are the cloud's. All of them are retried.
        if other_site
            || (status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 408 | 429))
        {
            Err(PushError::Rejected(msg))
        } else {
            Err(PushError::Retry(msg))
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct FlushReport {
    pub pushed: usize,
    pub retrying: usize,
    pub rejected: usize,
    /// What the last failure said, for the summary line.
    pub last_error: Option<String>,
}

/// Pushes every due entry once, `concurrency` at a time.
pub async fn flush_once(
    outbox: &Outbox,
    pusher: &Pusher,
    concurrency: usize,
) -> Result<FlushReport, OutboxError> {
    let due = outbox.due().await?;
    let results: Vec<_> = stream::iter(due)
        .map(|q| async move {
            let r = pusher.push(&q).await;
            (q, r)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut rep = FlushReport::default();
    for (q, r) in results {
        match r {
            Ok(()) => {
                outbox.ack(&q).await?;
                tracing::info!(xname = %q.id(), "pushed to the inventory");
                rep.pushed += 1;
            }
            Err(PushError::Rejected(m)) => {
                tracing::error!(xname = %q.id(), error = %m, "inventory refused the result; parked");
                outbox.fail(&q, &m, true).await?;
                rep.rejected += 1;
                rep.last_error = Some(m);
            }
            Err(PushError::Retry(m)) => {
                tracing::warn!(xname = %q.id(), error = %m, attempts = q.entry.attempts + 1,
                    "push failed; will retry");
                outbox.fail(&q, &m, false).await?;
                rep.retrying += 1;
                rep.last_error = Some(m);
            }
        }
    }
    Ok(rep)
}

/// Pushes until nothing retryable is left or `deadline` passes; what is still queued then
/// stays in the outbox for the next run.
pub async fn drain(
    outbox: &Outbox,
    pusher: &Pusher,
    concurrency: usize,
    deadline: Duration,
) -> Result<FlushReport, OutboxError> {
    let start = Instant::now();
    let mut total = FlushReport::default();
    loop {
        let rep = flush_once(outbox, pusher, concurrency).await?;
        total.pushed += rep.pushed;
        total.rejected += rep.rejected;
        if rep.last_error.is_some() {
            total.last_error = rep.last_error;
        }
        let Some(wait) = outbox.next_due_in().await? else {
            total.retrying = 0;
            return Ok(total);
        };
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() || wait > left {
            total.retrying = outbox
                .all()
                .await?
                .iter()
                .filter(|q| !q.entry.rejected)
                .count();
            return Ok(total);
        }
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
    }
}

/// Runs `work` (a discovery pass) while pushing whatever it queues, so results reach the cloud
/// as they are found instead of after the whole pass. The push loop finishes its current round
/// before returning; whatever is left is for [`drain`].
pub async fn push_during<T>(
    outbox: &Outbox,
    pusher: &Pusher,
    concurrency: usize,
    work: impl Future<Output = T>,
) -> Result<(T, FlushReport), OutboxError> {
    let done = AtomicBool::new(false);
    let wake = tokio::sync::Notify::new();
    let work = async {
        let out = work.await;
        done.store(true, Ordering::Release);
        wake.notify_one();
        out
    };
    let pushing = async {
        let mut total = FlushReport::default();
        while !done.load(Ordering::Acquire) {
            let rep = flush_once(outbox, pusher, concurrency).await?;
            total.pushed += rep.pushed;
            total.rejected += rep.rejected;
            if rep.last_error.is_some() {
                total.last_error = rep.last_error;
            }
            if rep.pushed == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = wake.notified() => {}
                }
            }
        }
        Ok::<_, OutboxError>(total)
    };
    let (out, rep) = tokio::join!(work, pushing);
    Ok((out, rep?))
}
