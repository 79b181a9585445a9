//! BSS's legacy cloud-init routes, at the root where BSS serves them: `GET /meta-data` (JSON),
//! `GET /user-data` (`#cloud-config` YAML) and `POST /phone-home`. A node is known by its IP, as
//! on `/cloud-init`; its data is the `cloud-init` block of the boot parameters stored under its
//! xname, merged over its role's (a `hosts: ["Compute"]` entry), with the `Global` entry's
//! meta-data beside it. `/cloud-init` is the richer service; these answer BSS's clients and
//! nodes configured for BSS.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skyport_boot::params::BootParams;
use skyport_boot::{BootError, BootService};
use skyport_http::ApiError;

use crate::routes::client_ip;
use crate::{MetadataError, MetadataService, Node, to_yaml};

type Res = Result<Response, ApiError>;

/// What the legacy routes need: the node lookup of `/cloud-init` and BSS's parameters.
#[derive(Clone)]
pub struct Legacy {
    svc: MetadataService,
    boot: BootService,
}

/// BSS's `PhoneHome` (`pkg/bssTypes/types.go`): what cloud-init's phone_home module reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhoneHome {
    #[serde(default)]
    pub pub_key_dsa: String,
    #[serde(default)]
    pub pub_key_rsa: String,
    #[serde(default)]
    pub pub_key_ecdsa: String,
    #[serde(default)]
    pub pub_key_ed25519: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub fqdn: String,
}

/// The routes, at the root (BSS serves them beside `/boot/v1`); anyone may call them, as in
/// BSS: a node is told only its own data.
pub fn router(svc: MetadataService) -> Router {
    let boot = BootService::new(svc.store.clone(), skyport_ipxe::Settings::default());
    Router::new()
        .route("/meta-data", get(meta_data))
        .route("/user-data", get(user_data))
        .route("/phone-home", post(phone_home))
        .with_state(Legacy { svc, boot })
}

/// `/meta-data`, `/user-data` and `/phone-home` are BSS's and public.
pub fn access(_: &axum::http::Method, route: &str) -> Option<skyport_http::access::Access> {
    matches!(route, "/meta-data" | "/user-data" | "/phone-home")
        .then_some(skyport_http::access::Access::Public)
}

fn answer(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The node at the requester's address (`ip`, read from the request before any await: a
/// request is not shared across threads), or `None` (BSS then serves default data).
async fn node_at(l: &Legacy, ip: Result<String, ApiError>) -> Result<Option<Node>, ApiError> {
    match l.svc.node_by_ip(&ip?).await {
        Ok(n) => Ok(Some(n)),
        Err(MetadataError::NoNodeWithIp { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `cloud-init` block stored for `host` (an xname or a tag), if any.
async fn block_of(boot: &BootService, host: &str) -> Result<Option<Value>, ApiError> {
    let q = BootParams {
        hosts: vec![host.to_string()],
        ..Default::default()
    };
    match boot.get(&q).await {
        Ok(found) => Ok(found.into_iter().next().and_then(|p| p.cloud_init)),
        Err(BootError::NotFound { .. }) => Ok(None),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// Member `k` of a `cloud-init` block, as an object (`{}` when absent).
fn part(block: &Option<Value>, k: &str) -> Map<String, Value> {
    block
        .as_ref()
        .and_then(|b| b.get(k))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// BSS's `mergeMaps`: `over` wins, objects merged recursively.
fn merge(mut under: Map<String, Value>, over: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in over {
        match (under.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => {
                let merged = merge(std::mem::take(a), b);
                *a = merged;
            }
            (_, v) => {
                under.insert(k, v);
            }
        }
    }
    under
}

/// Keys sorted at every level, as Go's JSON and YAML encoders write a `map[string]interface{}`
/// (BSS's meta-data and user-data are such maps).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// BSS's instance id: the xname and six random bytes in hex, lowercase.
fn instance_id(xname: &str) -> Result<String, ApiError> {
    let u = skyport_model::random_uuid()
        .map_err(|e| ApiError::Internal(format!("no randomness for an instance id: {e}")))?;
    let hex: String = u.chars().filter(|c| *c != '-').take(12).collect();
    Ok(format!("{xname}-{hex}"))
}

/// A node's meta-data as BSS builds it: its own (with `instance-id`, and `local-hostname`,
/// `shasta-type` (Role) and `shasta-role` (SubRole) where absent) over its role's.
async fn node_meta(l: &Legacy, node: Option<&Node>) -> Result<Map<String, Value>, ApiError> {
    let Some(n) = node else {
        let mut m = Map::new();
        m.insert("instance-id".into(), Value::from(instance_id("")?));
        return Ok(m);
    };
    let c = &n.component;
    let mut own = part(&block_of(&l.boot, &c.id).await?, "meta-data");
    own.insert("instance-id".into(), Value::from(instance_id(&c.id)?));
    for (k, v) in [
        ("local-hostname", &c.id),
        ("shasta-type", &c.role),
        ("shasta-role", &c.sub_role),
    ] {
        own.entry(k).or_insert_with(|| Value::from(v.clone()));
    }
    let role = role_block(l, n).await?;
    Ok(merge(part(&role, "meta-data"), own))
}

/// The role's entry (`hosts: ["Compute"]`), when the node has a role.
async fn role_block(l: &Legacy, n: &Node) -> Result<Option<Value>, ApiError> {
    if n.component.role.is_empty() {
        return Ok(None);
    }
    block_of(&l.boot, &n.component.role).await
}

async fn meta_data(State(l): State<Legacy>, req: Request) -> Res {
    let ip = client_ip(&req);
    let key = req.uri().query().and_then(|q| {
        skyport_http::QueryParams::parse(q)
            .first("key")
            .map(String::from)
    });
    drop(req);
    let node = node_at(&l, ip).await?;
    let mut merged = node_meta(&l, node.as_ref()).await?;
    let global = part(&block_of(&l.boot, "Global").await?, "meta-data");
    merged.insert("Global".into(), Value::Object(global));
    let mut out = sorted(Value::Object(merged));
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        for seg in key.split('.') {
            out = match out {
                Value::Object(mut m) => m
                    .remove(seg)
                    .ok_or_else(|| ApiError::not_found("Not Found"))?,
                _ => return Err(ApiError::not_found("Not Found")),
            };
        }
    }
    let mut body = serde_json::to_string(&out)
        .map_err(|e| ApiError::Internal(format!("encoding meta-data: {e}")))?;
    body.push('\n');
    Ok(answer(StatusCode::OK, body, "text/plain; charset=utf-8"))
}

async fn user_data(State(l): State<Legacy>, req: Request) -> Res {
    let ip = client_ip(&req);
    drop(req);
    let node = node_at(&l, ip).await?;
    let mut merged = Map::new();
    if let Some(n) = &node {
        let block = block_of(&l.boot, &n.component.id).await?;
        merged = merge(
            part(&role_block(&l, n).await?, "user-data"),
            part(&block, "user-data"),
        );
        if !merged.contains_key("local-hostname") {
            let host = part(&block, "meta-data")
                .get("local-hostname")
                .cloned()
                .unwrap_or_else(|| Value::from(n.component.id.clone()));
            merged.insert("local-hostname".into(), host);
        }
        l.svc.history().record(&n.component.id, "user-data").await;
    }
    let yaml = if merged.is_empty() {
        "{}\n".to_string()
    } else {
        to_yaml(&sorted(Value::Object(merged)))
            .map_err(|_| ApiError::bad_request("Invalid YAML"))?
    };
    Ok(answer(
        StatusCode::OK,
        format!("#cloud-config\n{yaml}"),
        "text/yaml",
    ))
}

async fn phone_home(State(l): State<Legacy>, req: Request) -> Res {
    let ip = client_ip(&req);
    let body = req.into_body();
    let node = node_at(&l, ip).await?;
    let bytes: Bytes = axum::body::to_bytes(body, skyport_http::MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("Bad Request"))?;
    let home: PhoneHome =
        serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("Bad Request"))?;
    let Some(n) = node else {
        return Err(ApiError::not_found("XName not found for IP"));
    };
    let xname = n.component.id.clone();
    let mut block = block_of(&l.boot, &xname)
        .await?
        .and_then(|b| b.as_object().cloned())
        .unwrap_or_default();
    let home = serde_json::to_value(&home)
        .map_err(|e| ApiError::Internal(format!("encoding phone-home: {e}")))?;
    block.insert("phone-home".into(), home);
    let bp = BootParams {
        hosts: vec![xname],
        cloud_init: Some(Value::Object(block)),
        ..Default::default()
    };
    match l.boot.update(&bp).await {
        Ok(()) => {}
        Err(e @ BootError::Missing(_)) => {
            let detail = e.to_string();
            let detail = detail.strip_prefix("Not Found: ").unwrap_or(&detail);
            return Err(ApiError::not_found(format!("Not Found: {detail}")));
        }
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    }
    let mut body = serde_json::to_string(&bp)
        .map_err(|e| ApiError::Internal(format!("encoding the answer: {e}")))?;
    body.push('\n');
    Ok(answer(
        StatusCode::OK,
        body,
        "application/json; charset=UTF-8",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn merging_is_bss_merge_maps() {
        let a = json!({"a": 1, "n": {"x": 1, "y": 2}, "l": [1]});
        let b = json!({"a": 2, "n": {"y": 3}, "l": [2]});
        let m = merge(
            a.as_object().unwrap().clone(),
            b.as_object().unwrap().clone(),
        );
        assert_eq!(
            Value::Object(m),
            json!({"a": 2, "n": {"x": 1, "y": 3}, "l": [2]})
        );
    }

    #[test]
    fn instance_ids_are_the_xname_and_twelve_hex_digits() {
        let id = instance_id("x1000c0s0b0n0").unwrap();
        let (x, hex) = id.rsplit_once('-').unwrap();
        assert_eq!(x, "x1000c0s0b0n0");
        assert_eq!(hex.len(), 12);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
