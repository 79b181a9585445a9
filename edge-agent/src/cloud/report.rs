//! Sending back what only the edge sees: endpoint history of the nodes it served and MACs it
//! did not know, kept in the replica until `POST /edge/v1/reports` accepts them. The watermark
//! moves only after the cloud accepted a report, and entries of a second that is not over yet
//! are sent again; the cloud takes reports as idempotent upserts, so a lost answer costs a
//! resend and never an entry.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use skyport_boot::EndpointAccess;
use skyport_sync::snapshot::MAX_REPORT_ENTRIES;
use skyport_sync::{EdgeStatus, Report, UnknownMac};

use crate::cloud::{CALL_TIMEOUT, CloudClient, CloudError, problem_detail};
use crate::metrics::Metrics;
use crate::node::recorder;
use crate::node::replica::{Replica, ReplicaError, UNKNOWN_MACS};

/// Why a report was not sent; what it would have carried stays for the next try.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading what to report: {0}")]
    Replica(#[from] ReplicaError),
    #[error("reading what to report: {0}")]
    Store(#[from] skyport_store::StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{url}: HTTP {status}: {detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
}

/// What one call sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub endpoint_history: usize,
    pub unknown_macs: usize,
    pub boot_events: usize,
}

/// The entries not yet reported, oldest first, at most one report's worth, and the watermark
/// to store once they are accepted.
async fn pending(replica: &Replica) -> Result<(Report, i64, usize), ReportError> {
    let since = replica.reported_through().await?;
    let now = skyport_model::now();
    let store = replica.store();
    let history_all = skyport_boot::stored_history(store.as_ref(), None).await?;
    let history = history_all
        .into_iter()
        .filter(|e| e.last_epoch >= since)
        .map(Entry::History);
    let mac_recs = store.list_all(UNKNOWN_MACS, None).await?;
    let macs = mac_recs
        .iter()
        .filter_map(|r| serde_json::from_str::<UnknownMac>(&r.body).ok())
        .filter(|m| m.last_seen >= since)
        .map(Entry::Mac);
    let mut all: Vec<Entry> = history.chain(macs).collect();
    all.sort_by_key(Entry::time);
    let total = all.len();
    let cut = total > MAX_REPORT_ENTRIES;
    all.truncate(MAX_REPORT_ENTRIES);
    let newest = all.last().map(Entry::time).unwrap_or(since);
    // Entries are stamped in whole seconds: a second that is over (and a backlog that was
    // sent whole) can be stepped past; otherwise the newest second is sent again next time.
    let watermark = if !cut && newest < now {
        newest + 1
    } else {
        newest
    };
    let mut rep = Report::default();
    for e in all {
        match e {
            Entry::History(h) => rep.endpoint_history.push(h),
            Entry::Mac(m) => rep.unknown_macs.push(m),
        }
    }
    Ok((rep, watermark.max(since), total))
}

enum Entry {
    History(EndpointAccess),
    Mac(UnknownMac),
}

impl Entry {
    fn time(&self) -> i64 {
        match self {
            Entry::History(h) => h.last_epoch,
            Entry::Mac(m) => m.last_seen,
        }
    }
}

/// The agent's state as the cloud shows it (`skyport edge status`).
pub async fn status(replica: &Replica, metrics: &Metrics) -> EdgeStatus {
    let applied = replica.applied().await.ok().flatten();
    EdgeStatus {
        generation: applied
            .as_ref()
            .map(|a| a.generation.clone())
            .unwrap_or_default(),
        applied_at: applied.map(|a| a.applied_at).unwrap_or(0),
        last_sync_ok: metrics.last_sync_ok.load(Ordering::Relaxed),
        outbox_depth: metrics.outbox_depth.load(Ordering::Relaxed),
        cache_bytes: metrics.cache_bytes.load(Ordering::Relaxed),
        reports_pending: metrics.reports_pending.load(Ordering::Relaxed),
        version: env!("CARGO_PKG_VERSION").into(),
        ..EdgeStatus::default()
    }
}

/// Sends one report if anything is pending, or if `with_status` (the agent's state, which it
/// sends about once a minute so the cloud can tell a quiet site from a dead one).
pub async fn report_once(
    cloud: &CloudClient,
    replica: &Replica,
    site: &str,
    metrics: &Arc<Metrics>,
    with_status: bool,
) -> Result<Sent, ReportError> {
    let (mut rep, watermark, total) = pending(replica).await?;
    metrics
        .reports_pending
        .store(total as u64, Ordering::Relaxed);
    // Boot events fill what room the report has left, oldest first; they leave the outbox
    // once the cloud took them.
    let room = MAX_REPORT_ENTRIES - rep.endpoint_history.len() - rep.unknown_macs.len();
    let events = recorder::pending(replica.store().as_ref(), room.min(2000)).await?;
    rep.boot_events = events.iter().map(|(_, e)| e.clone()).collect();
    if rep.endpoint_history.is_empty()
        && rep.unknown_macs.is_empty()
        && rep.boot_events.is_empty()
        && !with_status
    {
        return Ok(Sent::default());
    }
    rep.site = site.to_string();
    if with_status {
        rep.status = Some(status(replica, metrics).await);
    }
    let url = cloud.url("/edge/v1/reports");
    let resp = cloud
        .execute(&url, |h| h.post(&url).json(&rep).timeout(CALL_TIMEOUT))
        .await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ReportError::Refused {
            url,
            status: status.as_u16(),
            detail: problem_detail(resp).await,
        });
    }
    replica.set_reported_through(watermark).await?;
    let taken: Vec<skyport_store::Record> = events.into_iter().map(|(r, _)| r).collect();
    skyport_store::delete_in_batches(replica.store().as_ref(), recorder::OUTBOX, &taken, 500)
        .await?;
    recorder::sub(&metrics.boot_outbox, taken.len() as u64);
    let sent = Sent {
        endpoint_history: rep.endpoint_history.len(),
        unknown_macs: rep.unknown_macs.len(),
        boot_events: rep.boot_events.len(),
    };
    metrics.reports_pending.store(
        (total - sent.endpoint_history - sent.unknown_macs) as u64,
        Ordering::Relaxed,
    );
    Ok(sent)
}
