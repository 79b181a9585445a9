//! The `/boot-service` Router: OpenCHAMI v0.2's boot-service at its gateway path (reference
//! §2.2): the generated routes of `bootconfigurations`, `nodes` and `bmcs`, `GET /bootscript`,
//! `GET /health`, and `/service/status` and `/service/version`; and Skyport's `GET /explain`
//! (why a node boots what it boots). The gateway strips
//! `/boot-service` upstream; Skyport serves the prefixed paths, which is what clients
//! (`ochami`, coresmd's `ipxe_uri`) are configured with.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use skyport_http::access::{Access, by_method, is_read};
use skyport_http::{Problem, QueryParams};
use skyport_resource::Stored;

use super::configs::Configs;
use super::{BOOT_BMCS, BOOT_NODES, Bmc, BootConfiguration, Node};
use crate::BootService;

pub const BASE: &str = "/boot-service";

/// Who may call each route: a node's script and the health and status routes are anonymous;
/// the resources need `read` to read and `write` to change, as every Skyport API.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix(BASE)?;
    Some(match r {
        "/bootscript" | "/health" | "/service/status" | "/service/version" if is_read(method) => {
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
        .with_state(svc.clone())
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
