//! The `/boot-service` Router: OpenCHAMI v0.2's boot-service at its gateway path (reference
//! §2.2): the generated routes of `bootconfigurations`, `nodes` and `bmcs`, `GET /bootscript`,
//! `GET /health`, and `/service/status` and `/service/version`; and Skyport's `GET /explain`
//! (why a node boots what it boots). The gateway strips
//! `/boot-service` upstream; Skyport serves the prefixed paths, which is what clients
//! (`ochami`, coresmd's `ipxe_uri`) are configured with.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use skyport_http::access::{Access, by_method, is_read};
use skyport_http::{ApiError, Problem, QueryParams};
use skyport_resource::Stored;

use super::configs::Configs;
use super::legacy::{self, LegacyError};
use super::{BOOT_BMCS, BOOT_NODES, Bmc, BootConfiguration, Node};
use crate::BootService;

pub const BASE: &str = "/boot-service";

/// Who may call each route: a node's script and the health and status routes are anonymous;
/// the resources need `read` to read and `write` to change, as every Skyport API.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix(BASE)?;
    Some(match r {
        "/bootscript"
        | "/health"
        | "/service/status"
        | "/service/version"
        | "/boot/v1/bootscript"
        | "/boot/v1/service/status"
        | "/boot/v1/service/version"
            if is_read(method) =>
        {
            Access::Public
        }
        _ => by_method(method),
    })
}

pub fn router(svc: BootService) -> Router {
    let store = svc.store.clone();
    Router::new()
        .route(&format!("{BASE}/bootscript"), get(bootscript))
        .route(&format!("{BASE}/explain"), get(explain))
        .route(&format!("{BASE}/health"), get(health))
        .route(&format!("{BASE}/service/status"), get(status))
        .route(&format!("{BASE}/service/version"), get(version))
        // Upstream's BSS-shaped routes, at its root and under `/boot/v1` (`enable_legacy_api`,
        // on by default upstream).
        .route(&format!("{BASE}/boot/v1/bootscript"), get(bootscript))
        .route(&format!("{BASE}/boot/v1/service/status"), get(status))
        .route(&format!("{BASE}/boot/v1/service/version"), get(version))
        .with_state(svc.clone())
        .merge(legacy_routes(
            &format!("{BASE}/bootparameters"),
            Configs::new(svc.clone()),
        ))
        .merge(legacy_routes(
            &format!("{BASE}/boot/v1/bootparameters"),
            Configs::new(svc.clone()),
        ))
        .merge(skyport_resource::router::<BootConfiguration, _>(
            BASE,
            Configs::new(svc),
        ))
        .merge(skyport_resource::router::<Node, _>(
            BASE,
            Stored::<Node>::new(store.clone(), BOOT_NODES),
        ))
        .merge(skyport_resource::router::<Bmc, _>(
            BASE,
            Stored::<Bmc>::new(store, BOOT_BMCS),
        ))
}

/// `GET /bootscript?host=|mac=|nid=`: one identifier, in that precedence; none is upstream's
/// 400 (its own problem JSON, title included); everything else is a script.
async fn bootscript(State(svc): State<BootService>, q: QueryParams) -> Response {
    let id = ["host", "mac", "nid"]
        .iter()
        .find_map(|k| q.first(k).filter(|v| !v.is_empty()));
    let Some(id) = id else {
        let body = Problem {
            type_: "about:blank".into(),
            title: "Missing node identifier".into(),
            detail: "At least one node identifier (host, mac, or nid) must be provided".into(),
            status: 400,
            context: None,
            error: None,
            code: None,
        };
        let mut r = skyport_http::json(StatusCode::BAD_REQUEST, &body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return r;
    };
    let script = svc.boot_service_script(id).await;
    let mut r = (StatusCode::OK, script).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// `GET /explain?host=|mac=|nid=` (Skyport's): why a node boots what it boots.
async fn explain(State(svc): State<BootService>, q: QueryParams) -> Response {
    let id = ["host", "mac", "nid"]
        .iter()
        .find_map(|k| q.first(k).filter(|v| !v.is_empty()));
    let Some(id) = id else {
        return skyport_http::ApiError::bad_request(
            "At least one node identifier (host, mac, or nid) must be provided",
        )
        .into_response();
    };
    match svc.explain(id).await {
        Ok(e) => skyport_http::json(StatusCode::OK, &e),
        Err(e) => skyport_http::ApiError::from(e).into_response(),
    }
}

/// Upstream writes this body raw, without a trailing newline.
async fn health() -> Response {
    let mut r = (
        StatusCode::OK,
        r#"{"status":"ok","service":"boot-service"}"#,
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn status() -> Response {
    skyport_http::json(
        StatusCode::OK,
        &json!({
            "service_name": "boot-script-service",
            "service_version": "2.0.0-fabrica",
            "service_status": "running",
            "details": {"framework": "fabrica", "timestamp": skyport_resource::timestamp()},
        }),
    )
}

async fn version() -> Response {
    skyport_http::json(
        StatusCode::OK,
        &json!({
            "service_name": "boot-script-service",
            "service_version": "2.0.0-fabrica",
            "build_date": "2025-10-08",
            "git_commit": "main",
        }),
    )
}

fn legacy_routes(path: &str, c: Configs) -> Router {
    Router::new()
        .route(
            path,
            get(legacy_get)
                .post(legacy_post)
                .put(legacy_put)
                .delete(legacy_delete),
        )
        .with_state(c)
}

impl From<LegacyError> for ApiError {
    fn from(e: LegacyError) -> Self {
        match e {
            LegacyError::BadBody | LegacyError::NoIdentifier => {
                ApiError::bad_request(e.to_string())
            }
            LegacyError::NoMatch => ApiError::not_found(e.to_string()),
            // Upstream's converters call its own REST API: a refused configuration comes back
            // as a 500 carrying the validation text.
            LegacyError::Failed(m) => ApiError::Internal(m),
            LegacyError::Boot(b) => ApiError::from(b),
        }
    }
}

/// The query's `host`, `mac`, `nid` and `name` values, comma-split and pooled.
fn values(q: &QueryParams) -> Vec<String> {
    ["host", "mac", "nid", "name"]
        .iter()
        .flat_map(|k| q.all(k))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect()
}

fn boot_parameters(status: StatusCode, v: serde_json::Value) -> Response {
    skyport_http::json(status, &json!({"boot-parameters": v}))
}

async fn legacy_get(State(c): State<Configs>, q: QueryParams) -> Result<Response, ApiError> {
    let found = legacy::get(&c, &values(&q)).await?;
    Ok(boot_parameters(StatusCode::OK, json!(found)))
}

async fn legacy_post(State(c): State<Configs>, body: Bytes) -> Result<Response, ApiError> {
    let p = legacy::decode(&body)?;
    let created = legacy::post(&c, &p).await?;
    Ok(boot_parameters(StatusCode::CREATED, json!([created])))
}

async fn legacy_put(State(c): State<Configs>, body: Bytes) -> Result<Response, ApiError> {
    let p = legacy::decode(&body)?;
    let updated = legacy::put(&c, &p).await?;
    Ok(boot_parameters(StatusCode::OK, json!([updated])))
}

async fn legacy_delete(State(c): State<Configs>, q: QueryParams) -> Result<Response, ApiError> {
    let gone = legacy::delete(&c, &values(&q)).await?;
    Ok(boot_parameters(StatusCode::OK, json!(gone)))
}
