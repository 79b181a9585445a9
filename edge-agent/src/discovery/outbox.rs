//! The durable outbox: every discovery result is written here (the embedded SQLite store, one
//! record per BMC xname) before anything is sent, and removed only after the cloud acknowledged
//! it. A newer result for the same BMC replaces the queued one, so a long outage leaves one
//! entry per BMC, not one per scan. Acknowledgement deletes only the exact version that was
//! pushed (compare-and-swap), so a result enqueued while an older one was in flight is kept.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skyport_model::now;
use skyport_redfish::payload::EndpointPayload;
use skyport_store::{Record, Store, StoreError, Table, Write};

pub const OUTBOX: Table = Table("outbox");

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox store: {0}")]
    Store(#[from] StoreError),
    #[error("outbox entry {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
}

/// One queued result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub payload: EndpointPayload,
    /// Unix seconds.
    pub enqueued_at: i64,
    pub attempts: u32,
    /// Unix seconds before which no retry is made.
    pub next_attempt: i64,
    pub last_error: Option<String>,
    /// Set when the cloud refused the payload itself (4xx); not retried until an admin asks.
    pub rejected: bool,
}

/// An entry as read, with the record version an acknowledgement must match.
#[derive(Debug, Clone)]
pub struct Queued {
    pub entry: Entry,
    record: Record,
}

impl Queued {
    pub fn id(&self) -> &str {
        &self.record.id
    }
}

/// Retry delay after `attempts` failures: 1, 2, 4 … seconds, capped at five minutes.
pub fn backoff(attempts: u32) -> Duration {
    skyport_model::Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
        .delay(attempts + 1)
}

#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The agent's store the outbox lives in (the BMC directory lives there too).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn decode(r: Record) -> Result<Queued, OutboxError> {
        let entry = serde_json::from_str(&r.body).map_err(|e| OutboxError::Corrupt {
            id: r.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(Queued { entry, record: r })
    }

    fn encode(id: &str, e: &Entry) -> Record {
        // Serialising plain data with string keys cannot fail.
        Record::new(id, serde_json::to_string(e).unwrap_or_default())
    }

    /// Queues (or replaces) the result for one BMC.
    pub async fn enqueue(&self, payload: EndpointPayload) -> Result<(), OutboxError> {
        let id = payload.id.clone();
        let entry = Entry {
            payload,
            enqueued_at: now(),
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            rejected: false,
        };
        // Replace whatever is queued; a concurrent replace just means another try.
        for _ in 0..5 {
            let prev = self.store.get(OUTBOX, &id).await?;
            match self
                .store
                .write(vec![Write::Put {
                    table: OUTBOX,
                    record: Self::encode(&id, &entry),
                    prev,
                }])
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict {
            table: OUTBOX.name().into(),
            id,
        }
        .into())
    }

    /// Every queued entry, in xname order.
    pub async fn all(&self) -> Result<Vec<Queued>, OutboxError> {
        self.store
            .list_all(OUTBOX, None)
            .await?
            .into_iter()
            .map(Self::decode)
            .collect()
    }

    /// Entries that will be pushed again (not parked as rejected), due or backing off.
    async fn retryable(&self) -> Result<Vec<Queued>, OutboxError> {
        let mut all = self.all().await?;
        all.retain(|q| !q.entry.rejected);
        Ok(all)
    }

    /// Entries due for a push now.
    pub async fn due(&self) -> Result<Vec<Queued>, OutboxError> {
        let t = now();
        let mut due = self.retryable().await?;
        due.retain(|q| q.entry.next_attempt <= t);
        Ok(due)
    }

    pub async fn depth(&self) -> Result<usize, OutboxError> {
        Ok(self.store.list_all(OUTBOX, None).await?.len())
    }

    /// Removes exactly what was pushed. `false` when a newer result replaced it meanwhile (that
    /// one stays queued).
    pub async fn ack(&self, q: &Queued) -> Result<bool, OutboxError> {
        match self
            .store
            .write(vec![Write::Delete {
                table: OUTBOX,
                prev: q.record.clone(),
            }])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces `q` by `e`, unless a newer result replaced `q` meanwhile (a conflict).
    async fn replace(&self, q: &Queued, e: &Entry) -> Result<(), StoreError> {
        self.store
            .write(vec![Write::Put {
                table: OUTBOX,
                record: Self::encode(q.id(), e),
                prev: Some(q.record.clone()),
            }])
            .await
    }

    /// Records a failed push: retried after a backoff, or parked when `rejected`.
    pub async fn fail(&self, q: &Queued, error: &str, rejected: bool) -> Result<(), OutboxError> {
        let mut e = q.entry.clone();
        e.attempts = e.attempts.saturating_add(1);
        e.last_error = Some(error.to_string());
        e.rejected = rejected;
        e.next_attempt = now() + backoff(e.attempts).as_secs() as i64;
        match self.replace(q, &e).await {
            // Replaced by a newer result meanwhile: that one is what matters now.
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes rejected and backing-off entries due again (after an admin fixed the cause).
    pub async fn retry_all(&self) -> Result<usize, OutboxError> {
        let mut n = 0;
        for q in self.all().await? {
            let mut e = q.entry.clone();
            e.rejected = false;
            e.next_attempt = 0;
            match self.replace(&q, &e).await {
                Ok(()) => n += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Seconds until the earliest retryable entry is due (`None` when nothing is waiting).
    pub async fn next_due_in(&self) -> Result<Option<Duration>, OutboxError> {
        let t = now();
        Ok(self
            .retryable()
            .await?
            .iter()
            .map(|q| Duration::from_secs((q.entry.next_attempt - t).max(0) as u64))
            .min())
    }
}
