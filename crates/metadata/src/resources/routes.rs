//! The `/metadata-service` Router: OpenCHAMI v0.2's metadata-service at its gateway path
//! (reference §3.2): the generated routes of `clusterdefaultss` (upstream's spelling),
//! `groups` and `instanceinfos`, and the node-facing `meta-data`, `user-data`, `vendor-data`,
//! `network-config` and `{group}.yaml`, a node known by its address (the first
//! `X-Forwarded-For` entry, else the peer, as upstream). An unknown address is upstream's
//! `404 node not found`.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use skyport_http::access::{Access, by_method, is_read};

use super::profiles::{PROFILES, Profile, Profiles};
use super::views::Records;
use super::{ClusterDefaults, Group, InstanceInfo};
use crate::{MetadataError, MetadataService, Node};

pub const BASE: &str = "/metadata-service";

/// Node documents and health are anonymous (a node has no token); the resources need `read`
/// to read and `write` to change.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix(BASE)?;
    let node = matches!(
        r,
        "/meta-data"
            | "/user-data"
            | "/vendor-data"
            | "/network-config"
            | "/{file}"
            | "/{profile}/{file}"
            | "/health"
    );
    Some(if node && is_read(method) {
        Access::Public
    } else {
        by_method(method)
    })
}

pub fn router(svc: MetadataService) -> Router {
    let store = svc.store().clone();
    Router::new()
        .route(&format!("{BASE}/health"), get(health))
        .route(&format!("{BASE}/meta-data"), get(meta_data))
        .route(&format!("{BASE}/user-data"), get(user_data))
        .route(&format!("{BASE}/vendor-data"), get(vendor_data))
        .route(&format!("{BASE}/network-config"), get(network_config))
        .route(&format!("{BASE}/{{file}}"), get(group_file))
        .route(&format!("{BASE}/{{profile}}/{{file}}"), get(profiled))
        .with_state(svc)
        .merge(skyport_resource::router::<ClusterDefaults, _>(
            BASE,
            Records::<ClusterDefaults>::new(store.clone()),
        ))
        .merge(skyport_resource::router::<Group, _>(
            BASE,
            Records::<Group>::new(store.clone()),
        ))
        .merge(skyport_resource::router::<InstanceInfo, _>(
            BASE,
            Records::<InstanceInfo>::new(store.clone()),
        ))
        .merge(skyport_resource::router::<Profile, _>(
            BASE,
            Profiles(skyport_resource::Stored::new(store, PROFILES)),
        ))
}

fn text(status: StatusCode, body: impl Into<String>, content_type: &'static str) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The node routes' failures with upstream's texts (upstream writes them as plain text; here
/// they are problem JSON, as every Skyport failure, with the same `detail`).
fn failed(e: MetadataError) -> Response {
    use skyport_http::ApiError;
    match e {
        MetadataError::NoNodeWithIp { ip } => ApiError::not_found("node not found")
            .context(format!("no interface has {ip}"))
            .into_response(),
        MetadataError::NotAMember { id, group } => {
            ApiError::not_found(format!("node {id} is not a member of group {group}"))
                .into_response()
        }
        MetadataError::Template { group, reason } => {
            ApiError::Internal("template rendering failed".into())
                .context(format!("group {group}: {reason}"))
                .into_response()
        }
        other => ApiError::from(other).into_response(),
    }
}

async fn node(
    svc: &MetadataService,
    ip: Result<String, skyport_http::ApiError>,
) -> Result<Node, Response> {
    let ip = ip.map_err(IntoResponse::into_response)?;
    svc.node_by_ip(&ip).await.map_err(failed)
}

async fn health() -> Response {
    skyport_http::json(
        StatusCode::OK,
        &json!({"service": "github.com/openchami/metadata-service", "status": "healthy"}),
    )
}

async fn meta_data(State(svc): State<MetadataService>, req: Request) -> Response {
    let n = match node(&svc, crate::routes::client_ip(&req)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    match svc.v02_meta_data(&n).await {
        Ok(y) => text(StatusCode::OK, y, "application/x-yaml"),
        Err(e) => failed(e),
    }
}

async fn user_data() -> Response {
    text(StatusCode::OK, "#cloud-config\n", "text/cloud-config")
}

async fn vendor_data(State(svc): State<MetadataService>, req: Request) -> Response {
    let n = match node(&svc, crate::routes::client_ip(&req)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    match svc.v02_vendor_data(&n, None).await {
        Ok(s) => text(StatusCode::OK, s, "text/plain"),
        Err(e) => failed(e),
    }
}

async fn network_config(State(svc): State<MetadataService>, req: Request) -> Response {
    let n = match node(&svc, crate::routes::client_ip(&req)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    match svc.v02_network_config(&n).await {
        Ok(s) => text(StatusCode::OK, s, "text/cloud-config"),
        Err(e) => failed(e),
    }
}

async fn group_file(
    State(svc): State<MetadataService>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let Some(g) = file.strip_suffix(".yaml").filter(|g| !g.is_empty()) else {
        return skyport_http::ApiError::not_found(format!("no such resource: {BASE}/{file}"))
            .into_response();
    };
    let n = match node(&svc, crate::routes::client_ip(&req)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    match svc.v02_group_file(&n, g, None).await {
        Ok(s) => text(StatusCode::OK, s, "text/cloud-config"),
        Err(e) => failed(e),
    }
}

/// `GET /profile=<name>/{meta-data,user-data,vendor-data,<group>.yaml}`: a node's documents
/// through profile `<name>` (meta-data and user-data are the plain ones).
async fn profiled(
    State(svc): State<MetadataService>,
    Path((segment, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(profile) = segment.strip_prefix("profile=").filter(|p| !p.is_empty()) else {
        return skyport_http::ApiError::not_found(format!(
            "no such resource: {BASE}/{segment}/{file}"
        ))
        .into_response();
    };
    let n = match node(&svc, crate::routes::client_ip(&req)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let out = match file.as_str() {
        "meta-data" => svc
            .v02_meta_data(&n)
            .await
            .map(|y| text(StatusCode::OK, y, "application/x-yaml")),
        "user-data" => Ok(text(StatusCode::OK, "#cloud-config\n", "text/cloud-config")),
        "vendor-data" => svc
            .v02_vendor_data(&n, Some(profile))
            .await
            .map(|s| text(StatusCode::OK, s, "text/plain")),
        f => match f.strip_suffix(".yaml").filter(|g| !g.is_empty()) {
            Some(g) => svc
                .v02_group_file(&n, g, Some(profile))
                .await
                .map(|s| text(StatusCode::OK, s, "text/cloud-config")),
            None => {
                return skyport_http::ApiError::not_found(format!(
                    "no such resource: {BASE}/{segment}/{file}"
                ))
                .into_response();
            }
        },
    };
    out.unwrap_or_else(failed)
}
