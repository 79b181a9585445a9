//! The jobs service's HTTP face, three audiences over one [`Jobs`]:
//!
//! - admins, Skyport's own shape: `/power/v1/jobs` (list, create, get, cancel) and
//!   `/power/v1/status`;
//! - OpenCHAMI clients, PCS's shape: `/power-control/v1/transitions` (create, list, get, abort)
//!   and `/power-control/v1/power-status`; power capping answers 501;
//! - sites' agents: `GET /edge/v1/jobs` (the site's open tasks) and `POST
//!   /edge/v1/jobs/results`.
//!
//! [`JobError`] becomes HTTP here and only here.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use skyport_auth::Principal;
use skyport_http::access::{Access, Need, by_method, is_read};
use skyport_http::{ApiError, ApiJson, QueryParams, json};
use skyport_inventory::Inventory;
use skyport_model::power::{BootTarget, Operation, PowerState};

use crate::error::JobError;
use crate::jobs::{
    Action, DEFAULT_SETTLE_S, DEFAULT_START_WITHIN_S, JobView, Jobs, MAX_SETTLE_S, NewJob, Results,
};
use crate::pcs;

const JOBS: &str = "/power/v1/jobs";
const STATUS: &str = "/power/v1/status";
const PCS: &str = "/power-control/v1";
const EDGE_JOBS: &str = "/edge/v1/jobs";

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound => ApiError::NotFound(e.to_string()),
            JobError::Finished | JobError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            JobError::Busy { .. } => ApiError::Conflict(e.to_string()),
            JobError::Refused => ApiError::Forbidden(e.to_string()),
            JobError::Corrupt { .. } | JobError::Internal(_) => ApiError::Internal(e.to_string()),
            JobError::Site(e) => e.into(),
            JobError::Store(e) => e.into(),
        }
    }
}

/// Who may call each route: reading jobs and power state is `read`; asking for one is `write`;
/// only a site's agent takes jobs and reports them; PCS's probes are open as upstream's are.
pub fn access(method: &Method, route: &str) -> Option<Access> {
    if route.starts_with(EDGE_JOBS) {
        return Some(Access::Need(Need::Edge));
    }
    if let Some(r) = route.strip_prefix(PCS) {
        return Some(match r {
            "/liveness" | "/readiness" | "/health" => Access::Public,
            // PCS reads status with a POST too.
            "/power-status" => Access::Need(Need::Read),
            _ => by_method(method),
        });
    }
    (route.starts_with(JOBS) || route.starts_with(STATUS)).then(|| {
        if is_read(method) {
            Access::Need(Need::Read)
        } else {
            Access::Need(Need::Write)
        }
    })
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) jobs: Jobs,
    pub(crate) inventory: Inventory,
}

/// Every route of the service over `jobs`; `inventory` learns the power states agents report.
pub fn router(jobs: Jobs, inventory: Inventory) -> Router {
    Router::new()
        .route(JOBS, get(list_jobs).post(create_job))
        .route(&format!("{JOBS}/{{id}}"), get(get_job).delete(cancel_job))
        .route(STATUS, get(status))
        .route(
            &format!("{PCS}/transitions"),
            get(pcs_list).post(pcs_create),
        )
        .route(
            &format!("{PCS}/transitions/{{id}}"),
            get(pcs_get).delete(pcs_abort),
        )
        .route(
            &format!("{PCS}/power-status"),
            get(pcs_status_get).post(pcs_status_post),
        )
        .route(&format!("{PCS}/power-cap"), get(capping).patch(capping))
        .route(&format!("{PCS}/power-cap/snapshot"), post(capping))
        .route(&format!("{PCS}/power-cap/{{task}}"), get(capping))
        .route(&format!("{PCS}/liveness"), get(alive))
        .route(&format!("{PCS}/readiness"), get(ready))
        .route(&format!("{PCS}/health"), get(health))
        .route(
            &format!("{}/Inventory/Discover", skyport_inventory::BASE),
            post(crate::discover::discover),
        )
        .route(
            &format!("{}/Inventory/DiscoveryStatus", skyport_inventory::BASE),
            get(crate::discover::list),
        )
        .route(
            &format!(
                "{}/Inventory/DiscoveryStatus/{{id}}",
                skyport_inventory::BASE
            ),
            get(crate::discover::get),
        )
        .route(EDGE_JOBS, get(assigned))
        .route(&format!("{EDGE_JOBS}/results"), post(results))
        .with_state(Shared { jobs, inventory })
}

fn subject(p: &Option<Extension<Principal>>) -> String {
    p.as_ref()
        .map(|Extension(p)| p.sub.clone())
        .unwrap_or_default()
}

/// Skyport's job request.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub action: Action,
    pub xnames: Vec<String>,
    /// Seconds the tasks may wait for their site's agent (default an hour).
    #[serde(default)]
    pub start_within_s: Option<i64>,
    /// Seconds each task waits for its state (default 300; 0 does not wait).
    #[serde(default)]
    pub settle_s: Option<u64>,
}

async fn list_jobs(State(s): State<Shared>) -> Result<Response, ApiError> {
    let jobs = s.jobs.list().await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "jobs": jobs })))
}

async fn create_job(
    State(s): State<Shared>,
    principal: Option<Extension<Principal>>,
    ApiJson(req): ApiJson<JobRequest>,
) -> Result<Response, ApiError> {
    let view = s
        .jobs
        .create(NewJob {
            action: req.action,
            xnames: req.xnames,
            start_within_s: req.start_within_s.unwrap_or(DEFAULT_START_WITHIN_S),
            settle_s: req.settle_s.unwrap_or(DEFAULT_SETTLE_S),
            created_by: subject(&principal),
        })
        .await?;
    Ok(json(StatusCode::CREATED, &view))
}

async fn get_job(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &s.jobs.get(&id).await?))
}

async fn cancel_job(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &s.jobs.abort(&id).await?))
}

/// `GET /power/v1/status[?xname=…]`: the last state agents reported.
async fn status(State(s): State<Shared>, q: QueryParams) -> Result<Response, ApiError> {
    if let Some((k, _)) = q.0.iter().find(|(k, _)| k != "xname") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?} (xname)"
        )));
    }
    let xnames = checked_xnames(&q.all("xname"))?;
    let recs = s
        .jobs
        .power_status((!xnames.is_empty()).then_some(xnames.as_slice()))
        .await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "status": recs })))
}

fn checked_xnames(v: &[&str]) -> Result<Vec<String>, ApiError> {
    v.iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|x| {
            skyport_model::Xname::parse(x.trim())
                .map(|x| x.to_string())
                .map_err(|e| ApiError::bad_request(format!("invalid xname {x:?}: {e}")))
        })
        .collect()
}

/// PCS's `taskDeadlineMinutes`: absent 5 minutes, 0 no wait, negative as long as it takes
/// (bounded by [`MAX_SETTLE_S`]).
fn settle_of(minutes: Option<i64>) -> u64 {
    match minutes {
        None => DEFAULT_SETTLE_S,
        Some(m) if m < 0 => MAX_SETTLE_S,
        Some(m) => u64::try_from(m)
            .unwrap_or(0)
            .saturating_mul(60)
            .min(MAX_SETTLE_S),
    }
}

async fn pcs_create(
    State(s): State<Shared>,
    principal: Option<Extension<Principal>>,
    ApiJson(req): ApiJson<skyport_wire::pcs::TransitionCreate>,
) -> Result<Response, ApiError> {
    let operation = Operation::parse(&req.operation).ok_or_else(|| {
        ApiError::bad_request(format!("invalid Operation type {}", req.operation))
    })?;
    let boot = match req.boot_override.as_deref() {
        None => None,
        Some(b) => Some(BootTarget::parse(b).ok_or_else(|| {
            ApiError::bad_request(format!("bootOverride {b:?}: use pxe, http or none"))
        })?),
    };
    // A node another service reserved (SMD's locks) is left alone unless the request shows
    // that reservation's deputy key.
    let targets: Vec<(String, String)> = req
        .location
        .iter()
        .map(|l| (l.xname.clone(), l.deputy_key.clone()))
        .collect();
    let reserved = s.inventory.reserved_by_others(&targets).await?;
    if !reserved.is_empty() {
        return Err(
            ApiError::bad_request("Component is Reserved").context(format!(
                "reserved, and no deputyKey of that reservation given: {}",
                reserved.join(", ")
            )),
        );
    }
    let view = s
        .jobs
        .create(NewJob {
            action: Action::Power { operation, boot },
            xnames: req.location.into_iter().map(|l| l.xname).collect(),
            start_within_s: DEFAULT_START_WITHIN_S,
            settle_s: settle_of(req.task_deadline_minutes),
            created_by: subject(&principal),
        })
        .await?;
    Ok(json(
        StatusCode::OK,
        &skyport_wire::pcs::TransitionCreated {
            transition_id: view.job.id,
            operation: operation.as_str().into(),
        },
    ))
}

async fn pcs_list(State(s): State<Shared>) -> Result<Response, ApiError> {
    let transitions = s
        .jobs
        .list()
        .await?
        .iter()
        .filter_map(|v| pcs::transition(v, false))
        .collect();
    Ok(json(
        StatusCode::OK,
        &skyport_wire::pcs::Transitions { transitions },
    ))
}

/// A power job by id; other jobs are not PCS transitions.
async fn power_job(s: &Shared, id: &str) -> Result<JobView, ApiError> {
    let v = s.jobs.get(id).await?;
    if matches!(v.job.action, Action::Power { .. }) {
        Ok(v)
    } else {
        Err(JobError::NotFound.into())
    }
}

async fn pcs_get(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let v = power_job(&s, &id).await?;
    let t = pcs::transition(&v, true).ok_or_else(|| ApiError::from(JobError::NotFound))?;
    Ok(json(StatusCode::OK, &t))
}

async fn pcs_abort(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let v = power_job(&s, &id).await?;
    if v.job.aborted {
        // PCS answers a second abort as it answered the first.
        return Ok(abort_accepted());
    }
    s.jobs.abort(&id).await?;
    Ok(abort_accepted())
}

fn abort_accepted() -> Response {
    json(
        StatusCode::ACCEPTED,
        &skyport_wire::pcs::AbortStatus {
            abort_status: "Accepted - abort initiated".into(),
        },
    )
}

async fn pcs_status_get(State(s): State<Shared>, q: QueryParams) -> Result<Response, ApiError> {
    // Query keys arrive lowercased (`QueryParams`): PCS's names are matched in any case.
    if let Some((k, _)) = q.0.iter().find(|(k, _)| {
        !["xname", "powerstatefilter", "managementstatefilter"].contains(&k.as_str())
    }) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?}"
        )));
    }
    let query = skyport_wire::pcs::PowerStatusQuery {
        xname: q.all("xname").iter().map(|s| s.to_string()).collect(),
        power_state_filter: q.first("powerstatefilter").unwrap_or_default().to_string(),
        management_state_filter: q
            .first("managementstatefilter")
            .unwrap_or_default()
            .to_string(),
    };
    power_status(&s, query).await
}

async fn pcs_status_post(
    State(s): State<Shared>,
    ApiJson(q): ApiJson<skyport_wire::pcs::PowerStatusQuery>,
) -> Result<Response, ApiError> {
    power_status(&s, q).await
}

async fn power_status(
    s: &Shared,
    q: skyport_wire::pcs::PowerStatusQuery,
) -> Result<Response, ApiError> {
    let filter = pcs::Filter::new(&q.power_state_filter, &q.management_state_filter)?;
    let asked: Vec<&str> = q.xname.iter().map(String::as_str).collect();
    let xnames = checked_xnames(&asked)?;
    let recs = s
        .jobs
        .power_status((!xnames.is_empty()).then_some(xnames.as_slice()))
        .await?;
    let status = pcs::power_status(&xnames, &recs, &filter);
    Ok(json(
        StatusCode::OK,
        &skyport_wire::pcs::PowerStatusAll { status },
    ))
}

async fn capping() -> ApiError {
    ApiError::NotImplemented(
        "power capping is not implemented by Skyport; transitions and power-status are".into(),
    )
}

async fn alive() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn ready(State(s): State<Shared>) -> Result<StatusCode, ApiError> {
    s.jobs.store().ping().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn health(State(s): State<Shared>) -> Response {
    let store = match s.jobs.store().ping().await {
        Ok(()) => "connected, responsive",
        Err(_) => "not responding",
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "KvStore": store,
            "DistLocking": "not used (the store's conditional writes)",
            "StateManager": "in process",
            "Vault": "not used (BMC credentials stay at each site)",
            "TaskRunner": "sites' edge agents",
        }),
    )
}

/// The site an agent's request speaks for: its token's site; an admin names one with `?site=`.
fn agent_site(
    principal: &Option<Extension<Principal>>,
    q: &QueryParams,
) -> Result<Option<String>, ApiError> {
    if let Some((k, _)) = q.0.iter().find(|(k, _)| k != "site") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?} (site)"
        )));
    }
    let token = principal.as_ref().and_then(|Extension(p)| p.site.clone());
    match (token, q.first("site")) {
        (Some(own), Some(asked)) if own != asked => Err(ApiError::Forbidden(format!(
            "this token is site {own:?}'s, not {asked:?}'s"
        ))),
        (Some(own), _) => Ok(Some(own)),
        (None, asked) => Ok(asked.map(str::to_string)),
    }
}

/// `GET /edge/v1/jobs`: the open tasks of the caller's site, by job.
async fn assigned(
    State(s): State<Shared>,
    principal: Option<Extension<Principal>>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let site = agent_site(&principal, &q)?;
    let a = s.jobs.assigned(site.as_deref()).await?;
    Ok(json(StatusCode::OK, &a))
}

/// `POST /edge/v1/jobs/results`: an agent's results; power states also reach the inventory.
async fn results(
    State(s): State<Shared>,
    principal: Option<Extension<Principal>>,
    q: QueryParams,
    ApiJson(report): ApiJson<Results>,
) -> Result<Response, ApiError> {
    let site = agent_site(&principal, &q)?;
    let rec = s.jobs.record(site.as_deref(), &report.results).await?;
    let states: Vec<(String, bool)> = rec
        .power
        .iter()
        .filter_map(|(x, p)| match p {
            PowerState::On => Some((x.clone(), true)),
            PowerState::Off => Some((x.clone(), false)),
            _ => None,
        })
        .collect();
    if !states.is_empty()
        && let Err(e) = s.inventory.power_reported(&states).await
    {
        // The results are kept; the next status job brings the inventory up to date.
        tracing::warn!(error = %e, nodes = states.len(), "power states not applied to the inventory");
    }
    Ok(json(StatusCode::OK, &rec).into_response())
}
