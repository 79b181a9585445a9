//! What each site's edge agent last said about itself (`EdgeStatus`), kept in the [`SITES`]
//! table beside the site's registration: the registration under the site's name, its status
//! under `<name>/status` (site names have no `/`). Separate records, so an agent reporting
//! every few seconds never races an admin rotating the site's credentials.

use serde::{Deserialize, Serialize};
use skyport_store::{Record, Store, Write};

use crate::SITES;
use crate::error::{SiteError, encode};

/// How an edge agent is doing, as it last said (`GET /edge/v1/sites`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EdgeStatus {
    /// Where the copy it serves is in the change feed: the cursor of its last change ("" before
    /// its first snapshot; the name is from before the change feed).
    #[serde(default)]
    pub generation: String,
    /// Unix time that change was applied at the edge (0: none).
    #[serde(default)]
    pub applied_at: i64,
    /// Unix time of its last successful poll.
    #[serde(default)]
    pub last_sync_ok: i64,
    /// Discovery results waiting in its outbox.
    #[serde(default)]
    pub outbox_depth: u64,
    /// Bytes of verified images in its cache.
    #[serde(default)]
    pub cache_bytes: u64,
    /// Entries it has not reported yet (beyond this report).
    #[serde(default)]
    pub reports_pending: u64,
    /// The agent's version.
    #[serde(default)]
    pub version: String,
    /// Unix time the cloud stored this status (set by the cloud).
    #[serde(default)]
    pub reported_at: i64,
    /// The site (set by the cloud from the report).
    #[serde(default)]
    pub site: String,
}

/// The id of `site`'s status record in [`SITES`].
pub(crate) fn status_id(site: &str) -> String {
    format!("{site}/status")
}

/// The site a record id of [`SITES`] holds the status of, if it is a status record.
pub(crate) fn status_site(id: &str) -> Option<&str> {
    id.strip_suffix("/status")
}

/// Stores `status` as `site`'s latest (stamped with `now`); `site` need not be registered (an
/// agent of a lab with authentication off still shows in `GET /edge/v1/sites`).
pub async fn record_status(
    store: &dyn Store,
    site: &str,
    status: &EdgeStatus,
    now: i64,
) -> Result<(), SiteError> {
    let st = EdgeStatus {
        reported_at: now,
        site: site.to_string(),
        generation: status.generation.chars().take(100).collect(),
        version: status.version.chars().take(40).collect(),
        ..status.clone()
    };
    let id = status_id(site);
    let body = encode("site status", &id, &st)?;
    store
        .write(vec![Write::Upsert {
            table: SITES,
            record: Record::new(id, body),
        }])
        .await?;
    Ok(())
}

/// `site`'s last status, if it ever reported.
pub async fn status(store: &dyn Store, site: &str) -> Result<Option<EdgeStatus>, SiteError> {
    match store.get(SITES, &status_id(site)).await? {
        Some(r) => Ok(Some(crate::registry::decode(&r, "site status")?)),
        None => Ok(None),
    }
}
