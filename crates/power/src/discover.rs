//! SMD's `POST /hsm/v2/Inventory/Discover` and `GET /hsm/v2/Inventory/DiscoveryStatus` over
//! jobs. The cloud cannot reach a BMC, so a discovery request becomes a [`Action::Discover`]
//! job with one task per RedfishEndpoint, addressed to the site owning it; that site's agent
//! crawls the BMC again and queues the result for the inventory like any of its own passes.
//!
//! SMD keeps one status row (ID 0) for all discovery; so does this module (`DiscoveryStatus`,
//! one record naming the latest Discover job), and the row's `Status` is that job's: pending
//! or running tasks read `InProgress`, a job whose tasks all ended `Complete`. `Details`
//! (upstream's "reserved for future use") says which job it is and how its tasks ended, so an
//! admin can tell a crawl that failed from one that worked; `/power/v1/jobs/{job}` has the
//! rest.

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use skyport_auth::Principal;
use skyport_http::{ApiError, json};
use skyport_inventory::filters::EndpointFilter;
use skyport_store::{Record, Table, Write};

use crate::error::JobError;
use crate::jobs::{
    Action, DEFAULT_START_WITHIN_S, JobState, JobView, MAX_TARGETS, NewJob, TaskState,
};
use crate::routes::Shared;

pub const DISCOVERY_STATUS: Table = Table("DiscoveryStatus");
/// The one status row SMD has.
const ROW: &str = "0";
/// Failed tasks named in `Details`; the job has all of them.
const MAX_FAILED_SHOWN: usize = 20;

/// SMD's `DiscoverIn`. Go's decoder ignores unknown keys; so does this one.
#[derive(Debug, Default, Deserialize)]
struct DiscoverIn {
    #[serde(default)]
    xnames: Option<Vec<String>>,
    /// SMD re-crawls an endpoint already being crawled only when forced. A Discover job holds
    /// no BMC (a crawl only reads), so a second request simply crawls again: nothing to force.
    #[serde(default)]
    #[allow(dead_code)]
    force: Option<bool>,
}

/// The stored row: which job it reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Latest {
    job: String,
    /// Unix seconds of the request.
    requested: i64,
}

/// SMD's `DiscoveryStatus`.
#[derive(Debug, Serialize)]
struct DiscoveryStatus {
    #[serde(rename = "ID")]
    id: u32,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "LastUpdateTime")]
    last_update: String,
    #[serde(rename = "Details", skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

/// Unix seconds as SMD writes its timestamps.
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(skyport_inventory::smd_time)
        .unwrap_or_default()
}

/// `POST /hsm/v2/Inventory/Discover`.
pub(crate) async fn discover(
    State(s): State<Shared>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: DiscoverIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("POST body was not understood").context(e.to_string())
    })?;
    let mut seen = std::collections::HashSet::new();
    let asked = req.xnames.unwrap_or_default();
    if asked.len() > MAX_TARGETS {
        return Err(
            ApiError::bad_request("POST body was not understood").context(format!(
                "{} xnames: at most {MAX_TARGETS} in one request",
                asked.len()
            )),
        );
    }
    let endpoints = if asked.is_empty() {
        let all = s
            .inventory
            .list_endpoints(&EndpointFilter::default())
            .await?;
        if all.is_empty() {
            return Err(ApiError::not_found("RedfishEndpoints collection is empty"));
        }
        all
    } else {
        let mut eps = Vec::new();
        for x in &asked {
            // SMD skips a name given twice (as written).
            if !seen.insert(x.as_str()) {
                continue;
            }
            match s.inventory.get_endpoint(x).await {
                Ok(ep) => eps.push(ep),
                Err(ApiError::NotFound(_)) => {
                    return Err(ApiError::not_found(format!("No such RedfishEndpoint: {x}")));
                }
                Err(e) => return Err(e),
            }
        }
        eps
    };
    // As SMD: a disabled endpoint is not crawled, and when nothing is left the status stays.
    // The job takes each target once, however often it was named.
    let targets: Vec<String> = endpoints
        .into_iter()
        .filter(|e| e.enabled)
        .map(|e| e.id)
        .collect();
    if !targets.is_empty() {
        let view = s
            .jobs
            .create(NewJob {
                action: Action::Discover,
                xnames: targets,
                start_within_s: DEFAULT_START_WITHIN_S,
                settle_s: 0,
                created_by: principal
                    .as_ref()
                    .map(|Extension(p)| p.sub.clone())
                    .unwrap_or_default(),
            })
            .await?;
        let latest = Latest {
            job: view.job.id.clone(),
            requested: view.job.created,
        };
        let body = serde_json::to_string(&latest).map_err(|e| ApiError::Internal(e.to_string()))?;
        // Last request wins the row, as SMD's upsert does.
        s.jobs
            .store()
            .write(vec![Write::Upsert {
                table: DISCOVERY_STATUS,
                record: Record::new(ROW, body),
            }])
            .await?;
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!([{ "URI": format!("{}/Inventory/DiscoveryStatus/0", skyport_inventory::BASE) }]),
    ))
}

async fn status_row(s: &Shared) -> Result<DiscoveryStatus, ApiError> {
    let Some(r) = s.jobs.store().get(DISCOVERY_STATUS, ROW).await? else {
        // SMD seeds the row as NotStarted when its database is created.
        return Ok(DiscoveryStatus {
            id: 0,
            status: "NotStarted",
            last_update: rfc3339(skyport_model::now()),
            details: Some(serde_json::json!({})),
        });
    };
    let latest: Latest = serde_json::from_str(&r.body).map_err(|e| {
        ApiError::Internal(format!(
            "{DISCOVERY_STATUS} record {ROW}: {e}",
            DISCOVERY_STATUS = DISCOVERY_STATUS.name()
        ))
    })?;
    match s.jobs.get(&latest.job).await {
        Ok(v) => Ok(of_job(&v)),
        // Jobs are kept a day; the row outlives it.
        Err(JobError::NotFound) => Ok(DiscoveryStatus {
            id: 0,
            status: "Complete",
            last_update: rfc3339(latest.requested),
            details: Some(serde_json::json!({ "Job": latest.job, "Kept": false })),
        }),
        Err(e) => Err(e.into()),
    }
}

fn of_job(v: &JobView) -> DiscoveryStatus {
    let status = match v.state {
        JobState::Pending | JobState::Running => "InProgress",
        _ => "Complete",
    };
    let updated = v
        .tasks
        .iter()
        .map(|t| t.updated)
        .chain([v.job.created])
        .max()
        .unwrap_or(v.job.created);
    let tasks: serde_json::Map<String, serde_json::Value> = v
        .counts()
        .into_iter()
        .map(|(k, n)| (k.as_str().to_string(), n.into()))
        .collect();
    let failed: Vec<serde_json::Value> = v
        .tasks
        .iter()
        .filter(|t| t.state.is_final() && t.state != TaskState::Succeeded)
        .take(MAX_FAILED_SHOWN)
        .map(|t| {
            serde_json::json!({
                "xname": t.xname,
                "state": t.state.as_str(),
                "error": if t.error.is_empty() { &t.detail } else { &t.error },
            })
        })
        .collect();
    let mut details = serde_json::json!({ "Job": v.job.id, "Tasks": tasks });
    if !failed.is_empty() {
        details["Failed"] = failed.into();
    }
    DiscoveryStatus {
        id: 0,
        status,
        last_update: rfc3339(updated),
        details: Some(details),
    }
}

/// `GET /hsm/v2/Inventory/DiscoveryStatus`: SMD's bare array of its one row.
pub(crate) async fn list(State(s): State<Shared>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &[status_row(&s).await?]))
}

/// `GET /hsm/v2/Inventory/DiscoveryStatus/{id}`.
pub(crate) async fn get(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let n: u32 = id
        .parse()
        .map_err(|_| ApiError::bad_request("DiscoveryStatus ID not an unsigned integer"))?;
    if n != 0 {
        return Err(ApiError::not_found("no such DiscoveryStatus ID."));
    }
    Ok(json(StatusCode::OK, &status_row(&s).await?))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times_read_as_smd_writes_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20.000000Z");
    }
}
