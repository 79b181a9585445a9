//! The agent's copy of the cloud's boot data: the synced tables in the agent's own SQLite file,
//! filled by a paged snapshot (staged in a second file and swapped in whole) and kept current
//! by change pages (each applied in one transaction), plus what the agent produces while
//! serving (endpoint history, unknown MACs) until it is reported. A restart without network
//! serves from here; what is served is never a half-applied page or a half-read snapshot.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skyport_store::{Record, Store, StoreError, Table, Write};
use skyport_store_sqlite::SqliteStore;
use skyport_sync::snapshot::{ChangePage, SnapshotError, SnapshotPage, checked};

/// Local bookkeeping (never synced): where the copy is in the cloud's change feed.
pub const EDGE_META: Table = Table("EdgeSync");
/// How far reports to the cloud got (kept apart from [`EDGE_META`], which each snapshot
/// replaces).
pub const EDGE_REPORTS: Table = Table("EdgeReports");
/// MACs that asked for a boot script and are not in the inventory, until reported.
pub const UNKNOWN_MACS: Table = Table("EdgeUnknownMacs");

const STATE_ID: &str = "state";
const REPORTED_ID: &str = "reported";

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("opening the replica: {0}")]
    Open(#[from] skyport_store_sqlite::OpenError),
    #[error("refused page: {0}")]
    Refused(#[from] SnapshotError),
    #[error("refused snapshot: page cursor {got:?} is not the {want:?} of its first page")]
    MixedSnapshot { got: String, want: String },
    #[error("replica storage: {0}")]
    Store(#[from] StoreError),
}

/// The copy being served and where it is in the cloud's change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Changes whenever what is served does (the cursor of its last change); pre-rendered
    /// scripts are checked against it.
    pub generation: String,
    /// Where the change feed goes on; absent in replicas of agents before the change feed,
    /// which then take a full snapshot (serving their copy until it is in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The `ETag` of the last change page, sent back verbatim in `If-None-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Unix time of the last change applied.
    pub applied_at: i64,
    /// Records the last snapshot brought, or the last change page changed.
    pub records: usize,
}

pub struct Replica {
    store: Arc<SqliteStore>,
    /// Where a snapshot's pages are gathered before they replace the served copy.
    staging: SqliteStore,
}

fn state_record(a: &Applied) -> Result<(Table, Record), ReplicaError> {
    let body = serde_json::to_string(a)
        .map_err(|e| StoreError::unavailable(format!("encoding sync state: {e}")))?;
    Ok((EDGE_META, Record::new(STATE_ID, body)))
}

impl Replica {
    /// Opens `<dir>/replica.db` (and `<dir>/replica.staging.db` beside it).
    pub fn open(dir: &Path) -> Result<Self, ReplicaError> {
        Ok(Replica {
            store: Arc::new(SqliteStore::open(dir.join("replica.db"))?),
            staging: SqliteStore::open(dir.join("replica.staging.db"))?,
        })
    }

    /// The store the boot and cloud-init services read (and record endpoint history in).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub async fn applied(&self) -> Result<Option<Applied>, ReplicaError> {
        match self.store.get(EDGE_META, STATE_ID).await? {
            None => Ok(None),
            Some(r) => Ok(serde_json::from_str(&r.body).ok()),
        }
    }

    /// Starts gathering a new snapshot (what an unfinished one gathered is dropped).
    pub async fn begin_snapshot(&self) -> Result<(), ReplicaError> {
        self.staging
            .replace_tables(skyport_sync::SYNCED, Vec::new())
            .await?;
        Ok(())
    }

    /// Checks a snapshot page whole and gathers it; returns how many records it brought.
    pub async fn stage(&self, page: SnapshotPage) -> Result<usize, ReplicaError> {
        let records = checked(page.format, &page.cursor, page.tables)?;
        let n = records.len();
        self.staging
            .merge_records(records, Vec::new(), |_| Ok(Vec::new()))
            .await?;
        Ok(n)
    }

    /// Puts the gathered snapshot (`records` records) in service in one transaction, with the
    /// feed at `cursor`.
    pub async fn finish_snapshot(
        &self,
        cursor: &str,
        records: usize,
    ) -> Result<Applied, ReplicaError> {
        let applied = Applied {
            generation: cursor.to_string(),
            cursor: Some(cursor.to_string()),
            etag: None,
            applied_at: skyport_model::now(),
            records,
        };
        let mut tables = skyport_sync::SYNCED.to_vec();
        tables.push(EDGE_META);
        let state = state_record(&applied)?;
        self.store
            .replace_tables_from(&self.staging, &tables, vec![state])
            .await?;
        self.begin_snapshot().await?;
        Ok(applied)
    }

    /// Checks a change page whole and applies it in one transaction, with the feed moved to its
    /// cursor (and `etag` kept). Returns the new state; its `records` is how many records
    /// changed (0: the page repeated what is served, and `generation` stays).
    pub async fn apply_changes(
        &self,
        page: ChangePage,
        etag: Option<String>,
    ) -> Result<Applied, ReplicaError> {
        let (cursor, put, remove) = page.into_parts()?;
        let before = self.applied().await?;
        let old_generation = before
            .as_ref()
            .map(|a| a.generation.clone())
            .unwrap_or_default();
        let old_at = before.as_ref().map_or(0, |a| a.applied_at);
        let now = skyport_model::now();
        let state = {
            let cursor = cursor.clone();
            let etag = etag.clone();
            move |changed: usize| {
                let a = Applied {
                    generation: if changed > 0 {
                        cursor.clone()
                    } else {
                        old_generation.clone()
                    },
                    cursor: Some(cursor.clone()),
                    etag: etag.clone(),
                    applied_at: if changed > 0 { now } else { old_at },
                    records: changed,
                };
                let body = serde_json::to_string(&a)
                    .map_err(|e| StoreError::unavailable(format!("encoding sync state: {e}")))?;
                Ok(vec![(EDGE_META, Record::new(STATE_ID, body))])
            }
        };
        let changed = self.store.merge_records(put, remove, state).await?;
        self.applied().await?.ok_or_else(|| {
            ReplicaError::Store(StoreError::unavailable(format!(
                "sync state missing after applying a change page ({changed} changes)"
            )))
        })
    }

    /// Unix time up to which endpoint history and unknown MACs have been reported.
    pub async fn reported_through(&self) -> Result<i64, ReplicaError> {
        Ok(self
            .store
            .get(EDGE_REPORTS, REPORTED_ID)
            .await?
            .and_then(|r| r.body.parse().ok())
            .unwrap_or(0))
    }

    pub async fn set_reported_through(&self, t: i64) -> Result<(), ReplicaError> {
        self.store
            .write(vec![Write::Upsert {
                table: EDGE_REPORTS,
                record: Record::new(REPORTED_ID, t.to_string()),
            }])
            .await?;
        Ok(())
    }
}
