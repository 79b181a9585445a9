//! The `/cloud-init` axum Router: node routes (identified by source IP) and the admin API, and
//! the one mapping of [`MetadataError`] to HTTP answers.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use skyport_http::access::{Access, Need, is_read};
use skyport_http::{ApiError, ApiJson, json};

use crate::{
    ClusterDefaults, GroupData, InstanceInfo, MetadataError, MetadataService, Node, to_yaml,
};

pub const BASE: &str = "/cloud-init";

type Res = Result<Response, ApiError>;

/// The status of each failure: a client's bad value 422 (an unknown node's address too, as
/// upstream answers), a missing group 404, an existing one 409, data this service cannot read
/// back 500; the store's and the inventory's errors keep their own mappings.
impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::BadGroupName { .. }
            | MetadataError::GroupNameMismatch { .. }
            | MetadataError::BadFileEncoding { .. }
            | MetadataError::BadFileContent { .. }
            | MetadataError::BadBaseUrl { .. }
            | MetadataError::NidLengthTooLarge { .. }
            | MetadataError::NoNodeWithIp { .. } => ApiError::Unprocessable(e.to_string()),
            MetadataError::NoSuchGroup { .. } | MetadataError::NotAMember { .. } => {
                ApiError::NotFound(e.to_string())
            }
            MetadataError::GroupExists { .. } => ApiError::Conflict(e.to_string()),
            MetadataError::StoredFileNotBase64 { .. }
            | MetadataError::StoredFileNotUtf8 { .. }
            | MetadataError::Corrupt { .. }
            | MetadataError::Encode { .. }
            | MetadataError::Template { .. }
            | MetadataError::EncodeYaml(_) => ApiError::Internal(e.to_string()),
            MetadataError::Store(e) => e.into(),
            MetadataError::Inventory(e) => e,
        }
    }
}

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// cloud-init's routes under `/cloud-init`. Finish the app with [`skyport_http::app`]; for node
/// identification by peer address, serve it with connect info.
/// Who may call each route of [`router`]: a node reads its own data anonymously (it is
/// identified by its address); everything else is an admin's.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    if route.starts_with(crate::resources::routes::BASE) {
        return crate::resources::routes::access(method, route);
    }
    let r = route.strip_prefix("/cloud-init")?;
    Some(if r.starts_with("/admin/") || !is_read(method) {
        Access::Need(Need::Admin)
    } else {
        Access::Public
    })
}

/// cloud-init's routes under `/cloud-init`, and OpenCHAMI v0.2's metadata-service under
/// `/metadata-service` (the other view of the same data, `crate::resources`).
pub fn router(svc: MetadataService) -> Router {
    let v02 = crate::resources::routes::router(svc.clone());
    Router::new()
        .route(&at("/meta-data"), get(meta_data))
        .route(&at("/user-data"), get(user_data))
        .route(&at("/vendor-data"), get(vendor_data))
        .route(&at("/{file}"), get(group_file))
        .route(
            &at("/admin/cluster-defaults"),
            get(get_defaults).post(post_defaults),
        )
        .route(&at("/admin/groups"), get(list_groups).post(post_group))
        .route(
            &at("/admin/groups/{name}"),
            get(get_group).put(put_group).delete(delete_group),
        )
        .route(&at("/admin/instance-info/{id}"), put(put_instance))
        .route(
            &at("/admin/impersonation/{id}/meta-data"),
            get(imp_meta_data),
        )
        .route(
            &at("/admin/impersonation/{id}/user-data"),
            get(|| async { text("#cloud-config\n", "text/plain; charset=utf-8") }),
        )
        .route(
            &at("/admin/impersonation/{id}/vendor-data"),
            get(imp_vendor_data),
        )
        .route(&at("/admin/impersonation/{id}/{file}"), get(imp_group_file))
        .with_state(svc)
        .merge(v02)
}

fn text(body: impl Into<String>, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The requester's IP: the first `X-Forwarded-For` entry (set by the edge agent or API
/// Gateway), else the TCP peer. Upstream trusts the header the same way.
pub(crate) fn client_ip(req: &Request) -> Result<String, ApiError> {
    if let Some(xff) = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        && let Some(first) = xff
            .split(',')
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        return first
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| {
                ApiError::bad_request(format!("X-Forwarded-For {first:?} is not an IP address"))
            });
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_canonical().to_string())
        .ok_or_else(|| ApiError::bad_request("cannot tell the requester's IP address"))
}

async fn node(svc: &MetadataService, ip: Result<String, ApiError>) -> Result<Node, ApiError> {
    Ok(svc.node_by_ip(&ip?).await?)
}

async fn meta_data(State(svc): State<MetadataService>, req: Request) -> Res {
    let n = node(&svc, client_ip(&req)).await?;
    Ok(text(
        to_yaml(&svc.meta_data(&n).await?)?,
        "application/x-yaml",
    ))
}

async fn vendor_data(State(svc): State<MetadataService>, req: Request) -> Res {
    let n = node(&svc, client_ip(&req)).await?;
    Ok(text(
        svc.vendor_data(&n).await?,
        "text/plain; charset=utf-8",
    ))
}

fn group_of(file: &str) -> Result<&str, ApiError> {
    file.strip_suffix(".yaml")
        .filter(|g| !g.is_empty())
        .ok_or_else(|| ApiError::not_found(format!("no such resource: {BASE}/{file}")))
}

async fn group_file(
    State(svc): State<MetadataService>,
    Path(file): Path<String>,
    req: Request,
) -> Res {
    let g = group_of(&file)?;
    let n = node(&svc, client_ip(&req)).await?;
    Ok(text(
        svc.group_file(&n, g).await?,
        "text/plain; charset=utf-8",
    ))
}

async fn imp_meta_data(State(svc): State<MetadataService>, Path(id): Path<String>) -> Res {
    let n = svc.node_by_id(&id).await?;
    Ok(text(
        to_yaml(&svc.meta_data(&n).await?)?,
        "application/x-yaml",
    ))
}

async fn imp_vendor_data(State(svc): State<MetadataService>, Path(id): Path<String>) -> Res {
    let n = svc.node_by_id(&id).await?;
    Ok(text(
        svc.vendor_data(&n).await?,
        "text/plain; charset=utf-8",
    ))
}

async fn imp_group_file(
    State(svc): State<MetadataService>,
    Path((id, file)): Path<(String, String)>,
) -> Res {
    let g = group_of(&file)?;
    let n = svc.node_by_id(&id).await?;
    Ok(text(
        svc.group_file(&n, g).await?,
        "text/plain; charset=utf-8",
    ))
}

async fn get_defaults(State(svc): State<MetadataService>) -> Res {
    let mut d = svc.defaults().await?;
    d.resource = None;
    Ok(json(StatusCode::OK, &d))
}

async fn post_defaults(
    State(svc): State<MetadataService>,
    ApiJson(mut d): ApiJson<ClusterDefaults>,
) -> Res {
    d.resource = None;
    svc.set_defaults(&d).await?;
    Ok(json(StatusCode::CREATED, &d))
}

async fn list_groups(State(svc): State<MetadataService>) -> Res {
    let mut all = svc.list_groups().await?;
    for g in all.values_mut() {
        g.resource = None;
    }
    Ok(json(StatusCode::OK, &all))
}

async fn post_group(State(svc): State<MetadataService>, ApiJson(mut g): ApiJson<GroupData>) -> Res {
    g.resource = None;
    let name = svc.create_group(&g).await?;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/groups/{name}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn get_group(State(svc): State<MetadataService>, Path(name): Path<String>) -> Res {
    let mut g = svc.get_group(&name).await?;
    g.resource = None;
    Ok(json(StatusCode::OK, &g))
}

async fn put_group(
    State(svc): State<MetadataService>,
    Path(name): Path<String>,
    ApiJson(mut g): ApiJson<GroupData>,
) -> Res {
    g.resource = None;
    svc.put_group(&name, &g).await?;
    Ok(StatusCode::OK.into_response())
}

async fn delete_group(State(svc): State<MetadataService>, Path(name): Path<String>) -> Res {
    svc.delete_group(&name).await?;
    Ok(StatusCode::OK.into_response())
}

async fn put_instance(
    State(svc): State<MetadataService>,
    Path(id): Path<String>,
    _h: HeaderMap,
    ApiJson(mut info): ApiJson<InstanceInfo>,
) -> Res {
    info.resource = None;
    svc.put_instance_info(&id, &info).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// Always `#cloud-config`, as upstream; a known node's fetch is recorded for BSS's
/// `endpoint-history`.
async fn user_data(State(svc): State<MetadataService>, req: Request) -> Response {
    let ip = client_ip(&req);
    if let Ok(ip) = ip
        && let Ok(n) = svc.node_by_ip(&ip).await
    {
        svc.history().record(&n.component.id, "user-data").await;
    }
    text("#cloud-config\n", "text/plain; charset=utf-8")
}
