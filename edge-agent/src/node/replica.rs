//! The agent's copy of the cloud's boot data: the synced tables in the agent's own SQLite file,
//! replaced whole by each new snapshot, plus what the agent produces while serving (endpoint
//! history, unknown MACs) until it is reported. A restart without network serves from here.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skyport_store::{Record, Store, StoreError, Table, Write};
use skyport_store_sqlite::SqliteStore;
use skyport_sync::Snapshot;
use skyport_sync::snapshot::SnapshotError;

/// Local bookkeeping (never synced): which generation is applied, how far reports got.
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
    #[error("refused snapshot: {0}")]
    Refused(#[from] SnapshotError),
    #[error("replica storage: {0}")]
    Store(#[from] StoreError),
}

/// The snapshot being served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub generation: String,
    /// The `ETag` the cloud sent with it, sent back verbatim in `If-None-Match` (a site's tag
    /// is not its generation alone). Absent in replicas written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Unix time it was applied.
    pub applied_at: i64,
    pub records: usize,
}

pub struct Replica {
    store: Arc<SqliteStore>,
}

impl Replica {
    /// Opens `<dir>/replica.db`.
    pub fn open(dir: &Path) -> Result<Self, ReplicaError> {
        Ok(Replica {
            store: Arc::new(SqliteStore::open(dir.join("replica.db"))?),
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

    /// Checks `snap` (which came with `etag`) whole, then swaps it in for the previous one in
    /// one transaction. A refused or failed snapshot leaves the previous one in service.
    pub async fn apply(
        &self,
        snap: Snapshot,
        etag: Option<String>,
    ) -> Result<Applied, ReplicaError> {
        let (generation, mut records) = snap.into_records()?;
        let applied = Applied {
            generation,
            etag,
            applied_at: skyport_model::now(),
            records: records.len(),
        };
        let body = serde_json::to_string(&applied)
            .map_err(|e| StoreError::unavailable(format!("encoding sync state: {e}")))?;
        records.push((EDGE_META, Record::new(STATE_ID, body)));
        let mut tables = skyport_sync::SYNCED.to_vec();
        tables.push(EDGE_META);
        self.store.replace_tables(&tables, records).await?;
        Ok(applied)
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
