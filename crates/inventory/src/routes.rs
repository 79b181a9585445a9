//! The `/hsm/v2` axum Router: thin handlers that parse, call [`Inventory`], and answer with SMD's
//! status codes and shapes. The Lambda function and the local server mount this same Router.
//!
//! Beyond SMD: `GET /State/Components/{xname}` returns an `ETag` (the record version) and the
//! PUT/PATCH/DELETE routes honour `If-Match`, so a script can update a component without
//! clobbering a change made since it read it (412 instead of a lost update).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;
use serde_json::{Value, json};
use skyport_auth::Principal;
use skyport_http::access::{Access, Need, by_method, is_read};
use skyport_http::{
    ApiError, ApiJson, QueryParams, check_json_content_type, created, json, parse_json,
};
use skyport_model::{Arch, Class, Flag, HmsType, NetType, Role, State as HmsState, SubRole};
use skyport_wire::{
    ComponentArray, ComponentEndpointArray, ComponentPut, ComponentsPost, EthernetInterfaceIn,
    EthernetInterfacePatch, GroupIn, GroupPatch, IpMappingIn, IpMappingPatch, MemberId, MemberList,
    Message, NidPatchArray, PartitionIn, RedfishEndpointArray, RedfishEndpointIn,
    RedfishEndpointPatch,
};

use crate::components::ComponentPatch;
use crate::filters::{ComponentEndpointFilter, ComponentFilter, EndpointFilter, GroupFilter};
use crate::locks::{self, LockAction, LockRequest};
use crate::query;
use crate::{BASE, Inventory, InventoryError};

type Res = Result<Response, ApiError>;

/// The one place the inventory's domain errors become HTTP answers: invalid input is a 400
/// carrying SMD's text; the rest was already decided as an [`ApiError`].
impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        use crate::error::{EndpointError, ValidationError as V};
        // SMD's `detail` for a value out of range (it checks none; Skyport refuses negatives).
        const RANGE: &str = "An argument was out of range";
        let bad = |d: String| ApiError::bad_request(d);
        match e {
            InventoryError::Api(e) => e,
            InventoryError::Components { index, source } => match source {
                V::NidOutOfRange(n) => {
                    bad(RANGE.into()).context(format!("Components[{index}].NID: {n}"))
                }
                other => bad(format!("couldn't validate components: {other}"))
                    .context(format!("Components[{index}]")),
            },
            // SMD sends the mismatch bare (smd-api.go doCompPut).
            InventoryError::Component(V::IdMismatch) => bad(V::IdMismatch.to_string()),
            InventoryError::Component(V::NidOutOfRange(n)) => {
                bad(RANGE.into()).context(format!("NID {n}"))
            }
            InventoryError::Component(other) => {
                bad(format!("couldn't validate component: {other}"))
            }
            // SMD's PATCH routes answer with its store's texts: a State that is not one is
            // `Argument was not a valid HMS State`, any other bad value `a required argument
            // did not match any valid input`.
            InventoryError::Patch(V::Invalid { field, value }) => {
                let detail = if field == "state" {
                    "Argument was not a valid HMS State"
                } else {
                    "a required argument did not match any valid input"
                };
                bad(detail.into()).context(format!("{field} '{value}'"))
            }
            InventoryError::Patch(V::NidOutOfRange(n))
            | InventoryError::Invalid(V::NidOutOfRange(n)) => {
                bad(RANGE.into()).context(format!("NID {n}"))
            }
            InventoryError::Patch(other) | InventoryError::Invalid(other) => bad(other.to_string()),
            InventoryError::Endpoint(EndpointError::IdMismatch) => {
                bad(EndpointError::IdMismatch.to_string())
            }
            invalid @ (InventoryError::Endpoints { .. } | InventoryError::Endpoint(_)) => {
                bad(invalid.to_string())
            }
        }
    }
}

/// The whole inventory API, rooted at `/hsm/v2`. Merge it with the other services' routers as
/// needed, then finish the app with [`skyport_http::app`] (fallbacks, body limit, slashes).
/// Who may call each route of [`router`]: SMD's service routes are anonymous reads;
/// discovery pushes (Magellan's POST, its `--force-update` PUT, the edge agent's PUT) take a
/// writer's or a site agent's token; deleting a whole collection is an admin's.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix("/hsm/v2")?;
    if r.starts_with("/service/") && is_read(method) {
        return Some(Access::Public);
    }
    if (r == "/Inventory/RedfishEndpoints" || r == "/Inventory/RedfishEndpoints/{xname}")
        && (*method == axum::http::Method::POST || *method == axum::http::Method::PUT)
    {
        return Some(Access::Need(Need::Discovery));
    }
    if *method == axum::http::Method::DELETE && !r.contains('{') {
        return Some(Access::Need(Need::Admin));
    }
    if *method == axum::http::Method::POST {
        // Queries with a body, and checking or listing locks, only read.
        if r.ends_with("/Query") || r == "/locks/status" || r == "/locks/service/reservations/check"
        {
            return Some(Access::Need(Need::Read));
        }
        // Locking, the admin's reservations, and ending anyone's reservation are an admin's;
        // a service reserves, renews and releases with its own keys (a writer's token).
        if matches!(
            r,
            "/locks/lock"
                | "/locks/unlock"
                | "/locks/disable"
                | "/locks/repair"
                | "/locks/reservations"
                | "/locks/reservations/remove"
        ) {
            return Some(Access::Need(Need::Admin));
        }
    }
    Some(by_method(method))
}

pub fn router(inv: Inventory) -> Router {
    let comp_fields = |field: &'static str| {
        patch(
            move |s: State<Inventory>, p: Path<String>, h: HeaderMap, b: Bytes| {
                patch_component_field(s, p, h, b, field)
            },
        )
    };
    let bulk_fields = |field: &'static str| {
        patch(move |s: State<Inventory>, h: HeaderMap, b: Bytes| bulk_patch(s, h, b, field))
    };
    let locks_update = |action: LockAction| {
        post(move |s: State<Inventory>, h: HeaderMap, b: Bytes| locks_update(s.0, h, b, action))
    };
    let locks_reserve = |admin: bool| {
        post(move |s: State<Inventory>, h: HeaderMap, b: Bytes| locks_reserve(s.0, h, b, admin))
    };
    let locks_keys = |renew: bool| {
        post(move |s: State<Inventory>, h: HeaderMap, b: Bytes| locks_keys(s.0, h, b, renew))
    };
    let api = Router::new()
        .route(&at("/service/ready"), get(ready))
        .route(
            &at("/service/liveness"),
            get(|| async { StatusCode::NO_CONTENT }),
        )
        .route(&at("/service/values"), get(values_all))
        .route(&at("/service/values/{kind}"), get(values_one))
        .route(
            &at("/State/Components"),
            get(list_components)
                .post(post_components)
                .delete(delete_all_components),
        )
        .route(&at("/State/Components/ByNID/{nid}"), get(component_by_nid))
        // Literal `Query` segments win over `{xname}`/`{nid}`; a GET of them answers what the
        // parameter route answers for that (invalid) value.
        .route(
            &at("/State/Components/Query"),
            post(query_components_post)
                .get(|s: State<Inventory>| get_component(s, Path("Query".into()))),
        )
        .route(
            &at("/State/Components/Query/{xname}"),
            get(query_components_get),
        )
        .route(
            &at("/State/Components/ByNID/Query"),
            post(query_by_nid_post)
                .get(|s: State<Inventory>| component_by_nid(s, Path("Query".into()))),
        )
        .route(&at("/State/Components/BulkNID"), patch(bulk_nid))
        .route(
            &at("/State/Components/BulkStateData"),
            bulk_fields("StateData"),
        )
        .route(
            &at("/State/Components/BulkFlagOnly"),
            bulk_fields("FlagOnly"),
        )
        .route(&at("/State/Components/BulkEnabled"), bulk_fields("Enabled"))
        .route(
            &at("/State/Components/BulkSoftwareStatus"),
            bulk_fields("SoftwareStatus"),
        )
        .route(&at("/State/Components/BulkRole"), bulk_fields("Role"))
        .route(
            &at("/State/Components/{xname}"),
            get(get_component)
                .put(put_component)
                .patch(patch_component)
                .delete(delete_component),
        )
        .route(
            &at("/State/Components/{xname}/StateData"),
            comp_fields("StateData"),
        )
        .route(
            &at("/State/Components/{xname}/FlagOnly"),
            comp_fields("FlagOnly"),
        )
        .route(
            &at("/State/Components/{xname}/Enabled"),
            comp_fields("Enabled"),
        )
        .route(
            &at("/State/Components/{xname}/SoftwareStatus"),
            comp_fields("SoftwareStatus"),
        )
        .route(&at("/State/Components/{xname}/Role"), comp_fields("Role"))
        .route(&at("/State/Components/{xname}/NID"), comp_fields("NID"))
        .route(
            &at("/Inventory/RedfishEndpoints"),
            get(list_endpoints)
                .post(post_endpoints)
                .delete(delete_all_endpoints),
        )
        .route(
            &at("/Inventory/RedfishEndpoints/{xname}"),
            get(get_endpoint)
                .put(put_endpoint)
                .patch(patch_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            &at("/Inventory/ComponentEndpoints"),
            get(list_ces).delete(delete_all_ces),
        )
        .route(
            &at("/Inventory/ServiceEndpoints"),
            get(list_services).delete(delete_all_services),
        )
        .route(
            &at("/Inventory/ServiceEndpoints/{service}"),
            get(list_service),
        )
        .route(
            &at("/Inventory/ServiceEndpoints/{service}/RedfishEndpoints/{xname}"),
            get(get_service).delete(delete_service),
        )
        .route(
            &at("/Subscriptions/SCN"),
            get(list_scn).post(post_scn).delete(delete_all_scn),
        )
        .route(
            &at("/Subscriptions/SCN/{id}"),
            get(get_scn)
                .put(put_scn)
                .patch(patch_scn)
                .delete(delete_scn),
        )
        .route(&at("/Inventory/Hardware"), get(list_hardware))
        .route(&at("/Inventory/Hardware/{xname}"), get(get_hardware))
        .route(
            &at("/Inventory/Hardware/Query/{xname}"),
            get(query_hardware),
        )
        .route(&at("/Inventory/HardwareByFRU"), get(list_frus))
        .route(&at("/Inventory/HardwareByFRU/{fruid}"), get(get_fru))
        .route(
            &at("/Inventory/ComponentEndpoints/{xname}"),
            get(get_ce).delete(delete_ce),
        )
        .route(
            &at("/Inventory/ComponentEndpoints/Query"),
            post(query_ces_post)
                .get(|s: State<Inventory>| get_ce(s, Path("Query".into())))
                .delete(|s: State<Inventory>| delete_ce(s, Path("Query".into()))),
        )
        .route(
            &at("/Inventory/EthernetInterfaces"),
            get(list_ifaces).post(post_iface).delete(delete_all_ifaces),
        )
        .route(
            &at("/Inventory/EthernetInterfaces/{id}"),
            get(get_iface).patch(patch_iface).delete(delete_iface),
        )
        .route(
            &at("/Inventory/EthernetInterfaces/{id}/IPAddresses"),
            get(get_iface_ips).post(post_iface_ip),
        )
        .route(
            &at("/Inventory/EthernetInterfaces/{id}/IPAddresses/{ip}"),
            patch(patch_iface_ip).delete(delete_iface_ip),
        )
        .route(&at("/groups"), get(list_groups).post(post_group))
        .route(&at("/groups/labels"), get(group_labels))
        .route(
            &at("/groups/{label}"),
            get(get_group).patch(patch_group).delete(delete_group),
        )
        .route(
            &at("/groups/{label}/members"),
            get(get_members).post(post_member).put(put_members),
        )
        .route(
            &at("/groups/{label}/members/{xname}"),
            axum::routing::delete(delete_member),
        )
        .route(
            &at("/partitions"),
            get(list_partitions).post(post_partition),
        )
        .route(&at("/partitions/names"), get(partition_names))
        .route(
            &at("/partitions/{name}"),
            get(get_partition)
                .patch(patch_partition)
                .delete(delete_partition),
        )
        .route(
            &at("/partitions/{name}/members"),
            get(get_partition_members).post(post_partition_member),
        )
        .route(
            &at("/partitions/{name}/members/{xname}"),
            axum::routing::delete(delete_partition_member),
        )
        .route(&at("/locks/lock"), locks_update(LockAction::Lock))
        .route(&at("/locks/unlock"), locks_update(LockAction::Unlock))
        .route(&at("/locks/disable"), locks_update(LockAction::Disable))
        .route(&at("/locks/repair"), locks_update(LockAction::Repair))
        .route(&at("/locks/reservations"), locks_reserve(true))
        .route(&at("/locks/reservations/remove"), post(locks_remove))
        .route(&at("/locks/reservations/release"), locks_keys(false))
        .route(&at("/locks/service/reservations"), locks_reserve(false))
        .route(
            &at("/locks/service/reservations/release"),
            locks_keys(false),
        )
        .route(&at("/locks/service/reservations/renew"), locks_keys(true))
        .route(&at("/locks/service/reservations/check"), post(locks_check))
        .route(
            &at("/locks/status"),
            get(locks_status_get).post(locks_status_post),
        )
        .route(
            &at("/Defaults/NodeMaps"),
            get(list_node_maps)
                .post(post_node_maps)
                .delete(delete_all_node_maps),
        )
        .route(
            &at("/Defaults/NodeMaps/{xname}"),
            get(get_node_map).put(put_node_map).delete(delete_node_map),
        )
        .route(
            &at("/sysinfo/powermaps"),
            get(list_power_maps)
                .post(post_power_maps)
                .delete(delete_all_power_maps),
        )
        .route(
            &at("/sysinfo/powermaps/{xname}"),
            get(get_power_map)
                .put(put_power_map)
                .delete(delete_power_map),
        )
        .route(&at("/memberships"), get(list_memberships))
        .route(&at("/memberships/{xname}"), get(get_membership))
        .with_state(inv);
    api.layer(axum::extract::DefaultBodyLimit::max(
        skyport_http::MAX_BODY_BYTES,
    ))
}

/// A route path under the API's base path.
fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

fn ok_message(m: impl Into<String>) -> Response {
    json(StatusCode::OK, &Message::new(m))
}

fn deleted(n: usize) -> Response {
    if n == 1 {
        ok_message("deleted 1 entry")
    } else {
        ok_message(format!("deleted {n} entries"))
    }
}

/// `If-Match: "7"` → Some(7); absent or `*` → None. RFC 9110 §13.1.1 compares strongly, so a
/// weak tag (`W/"7"`) never matches; of a list, the one strong tag counts. Anything else can
/// never match: 412.
fn if_match(h: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = h.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s == "*" {
        return Ok(None);
    }
    let fail = |why: &str| ApiError::PreconditionFailed(format!("If-Match {s:?} {why}"));
    let mut strong = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.starts_with("W/"))
        .map(|t| {
            t.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(t)
        });
    match (strong.next(), strong.next()) {
        (None, _) => Err(fail(
            "has only weak entity tags, which never match (RFC 9110 strong comparison)",
        )),
        (Some(t), None) => t
            .parse()
            .map(Some)
            .map_err(|_| fail("is not an ETag this API issued")),
        (Some(_), Some(_)) => Err(fail(
            "names more than one entity tag; give the one you read",
        )),
    }
}

// ---- service --------------------------------------------------------------------------------

async fn ready(State(inv): State<Inventory>) -> Res {
    inv.ready().await?;
    Ok(ok_message("HSM is healthy"))
}

fn names<T: Copy + ToString>(all: &[T]) -> Value {
    json!(all.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn value_lists() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("arch", "Arch", names(Arch::ALL)),
        ("class", "Class", names(Class::ALL)),
        ("flag", "Flag", names(Flag::ALL)),
        ("nettype", "NetType", names(NetType::ALL)),
        ("role", "Role", names(Role::ALL)),
        ("subrole", "SubRole", names(SubRole::ALL)),
        ("state", "State", names(HmsState::ALL)),
        ("type", "Type", names(HmsType::ALL)),
    ]
}

async fn values_all() -> Response {
    let mut m = serde_json::Map::new();
    for (_, key, v) in value_lists() {
        m.insert(key.into(), v);
    }
    json(StatusCode::OK, &m)
}

async fn values_one(Path(kind): Path<String>) -> Res {
    let k = kind.to_ascii_lowercase();
    value_lists()
        .into_iter()
        .find(|(n, _, _)| *n == k)
        .map(|(_, key, v)| json(StatusCode::OK, &json!({ key: v })))
        .ok_or_else(|| ApiError::not_found(format!("no such value list: {kind}")))
}

// ---- State/Components -----------------------------------------------------------------------

async fn list_components(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let f = ComponentFilter::parse(&q)?;
    let components = inv.list_components(&f).await?;
    Ok(json(StatusCode::OK, &ComponentArray { components }))
}

async fn post_components(
    State(inv): State<Inventory>,
    ApiJson(body): ApiJson<ComponentsPost>,
) -> Res {
    inv.post_components(&body.components, body.force).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_all_components(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_all_components().await?;
    Ok(ok_message(format!("deleted {n} entries")))
}

async fn get_component(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    let (c, version) = inv.get_component(&id).await?;
    let mut r = json(StatusCode::OK, &c);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

async fn component_by_nid(State(inv): State<Inventory>, Path(nid): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.component_by_nid(&nid).await?))
}

async fn put_component(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    h: HeaderMap,
    ApiJson(body): ApiJson<ComponentPut>,
) -> Res {
    inv.put_component(&id, &body.component, body.force, if_match(&h)?)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn patch_component(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    h: HeaderMap,
    ApiJson(p): ApiJson<ComponentPatch>,
) -> Res {
    if p.is_empty() {
        return Err(ApiError::bad_request(
            "Request must have at least one patch field.",
        ));
    }
    inv.patch_components(&[id], &p, if_match(&h)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Keeps only the fields a field-specific route may change, and requires its main field.
fn restrict(p: ComponentPatch, field: &str) -> Result<ComponentPatch, ApiError> {
    let missing = |what: &str| ApiError::bad_request(format!("Missing {what}"));
    Ok(match field {
        "StateData" => ComponentPatch {
            state: Some(p.state.ok_or_else(|| missing("State"))?),
            flag: p.flag,
            ..Default::default()
        },
        "FlagOnly" => ComponentPatch {
            flag: Some(p.flag.ok_or_else(|| missing("Flag"))?),
            ..Default::default()
        },
        "Enabled" => ComponentPatch {
            enabled: Some(p.enabled.ok_or_else(|| missing("Enabled field"))?),
            ..Default::default()
        },
        "SoftwareStatus" => ComponentPatch {
            software_status: Some(p.software_status.ok_or_else(|| missing("SoftwareStatus"))?),
            ..Default::default()
        },
        "Role" => ComponentPatch {
            role: Some(p.role.ok_or_else(|| missing("Role"))?),
            sub_role: p.sub_role,
            ..Default::default()
        },
        "NID" => ComponentPatch {
            nid: Some(p.nid.ok_or_else(|| missing("NID"))?),
            ..Default::default()
        },
        _ => return Err(ApiError::Internal(format!("unknown patch route {field}"))),
    })
}

async fn patch_component_field(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
    field: &'static str,
) -> Res {
    check_json_content_type(&h)?;
    let p: ComponentPatch = parse_json(&body)?;
    let p = restrict(p, field)?;
    inv.patch_components(&[id], &p, if_match(&h)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct BulkPatch {
    #[serde(
        rename = "ComponentIDs",
        alias = "componentIDs",
        alias = "componentids",
        default
    )]
    ids: Vec<String>,
    #[serde(flatten)]
    patch: ComponentPatch,
}

async fn bulk_patch(
    State(inv): State<Inventory>,
    h: HeaderMap,
    body: Bytes,
    field: &'static str,
) -> Res {
    check_json_content_type(&h)?;
    let b: BulkPatch = parse_json(&body)?;
    let p = restrict(b.patch, field)?;
    inv.patch_components(&b.ids, &p, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn bulk_nid(State(inv): State<Inventory>, ApiJson(body): ApiJson<NidPatchArray>) -> Res {
    inv.bulk_nid(&body.components).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_component(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Res {
    inv.delete_component(&id, if_match(&h)?).await?;
    Ok(deleted(1))
}

// ---- RedfishEndpoints -----------------------------------------------------------------------

async fn list_endpoints(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let redfish_endpoints = inv.list_endpoints(&EndpointFilter::parse(&q)?).await?;
    Ok(json(
        StatusCode::OK,
        &RedfishEndpointArray { redfish_endpoints },
    ))
}

/// The site an edge agent's token speaks for (people's tokens and auth-off labs have none).
fn site_of(p: &Option<Extension<Principal>>) -> Option<&str> {
    p.as_ref().and_then(|Extension(p)| p.site.as_deref())
}

async fn post_endpoints(
    State(inv): State<Inventory>,
    principal: Option<Extension<Principal>>,
    h: HeaderMap,
    body: Bytes,
) -> Res {
    check_json_content_type(&h)?;
    let v: Value = parse_json(&body)?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad_request(
            "invalid JSON body: expected an object",
        ));
    };
    if obj.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // The array form is `{"RedfishEndpoints":[...]}`; any other key means a single endpoint.
    let raws: Vec<RedfishEndpointIn> = if obj.len() == 1 && obj.contains_key("RedfishEndpoints") {
        #[derive(Deserialize)]
        struct Arr {
            #[serde(rename = "RedfishEndpoints")]
            eps: Vec<RedfishEndpointIn>,
        }
        if legacy_in(&v) {
            let mut v = v;
            if let Some(Value::Array(eps)) = v.get_mut("RedfishEndpoints") {
                for (i, ep) in eps.iter_mut().enumerate() {
                    upgrade_legacy(ep, &format!("RedfishEndpoints[{i}]"))?;
                }
            }
            skyport_http::from_json_value::<Arr>(v)?.eps
        } else {
            parse_json::<Arr>(&body)?.eps
        }
    } else if legacy_in(&v) {
        let mut v = v;
        upgrade_legacy(&mut v, "")?;
        vec![skyport_http::from_json_value::<RedfishEndpointIn>(v)?]
    } else {
        vec![parse_json::<RedfishEndpointIn>(&body)?]
    };
    if raws.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let uris = inv.post_endpoints(&raws, site_of(&principal)).await?;
    Ok(created(uris, &at("/Inventory/RedfishEndpoints")))
}

/// Whether a RedfishEndpoints body (one endpoint or the array form) carries SMD's legacy
/// `Systems[].Data` shape.
fn legacy_in(v: &Value) -> bool {
    match v.get("RedfishEndpoints").and_then(Value::as_array) {
        Some(eps) => eps.iter().any(skyport_wire::legacy::is_legacy_payload),
        None => skyport_wire::legacy::is_legacy_payload(v),
    }
}

/// SMD's legacy discovery shape rewritten into the discovery shape, so nothing it carried is
/// lost (400 naming the value when it cannot be read).
fn upgrade_legacy(v: &mut Value, at: &str) -> Result<(), ApiError> {
    skyport_wire::legacy::upgrade(v, at).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn get_endpoint(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_endpoint(&id).await?))
}

async fn put_endpoint(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    principal: Option<Extension<Principal>>,
    h: HeaderMap,
    body: Bytes,
) -> Res {
    check_json_content_type(&h)?;
    let raw: RedfishEndpointIn = if body.iter().all(u8::is_ascii_whitespace) {
        parse_json(&body)?
    } else {
        let mut v: Value = parse_json(&body)?;
        if legacy_in(&v) {
            upgrade_legacy(&mut v, "")?;
            skyport_http::from_json_value(v)?
        } else {
            parse_json(&body)?
        }
    };
    // SMD answers 200 either way (with `null` on create, a bug); Skyport returns the endpoint.
    let (ep, _created) = inv.put_endpoint(&id, &raw, site_of(&principal)).await?;
    Ok(json(StatusCode::OK, &ep))
}

async fn patch_endpoint(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<RedfishEndpointPatch>,
) -> Res {
    Ok(json(StatusCode::OK, &inv.patch_endpoint(&id, &p).await?))
}

async fn delete_endpoint(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    let x = skyport_model::Xname::parse(&id)
        .map_err(|_| ApiError::bad_request("Argument was not a valid xname ID"))?;
    inv.delete_endpoints(Some(&[x.to_string()])).await?;
    Ok(deleted(1))
}

async fn delete_all_endpoints(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_endpoints(None).await?;
    Ok(ok_message(format!("deleted {n} entries")))
}

// ---- ComponentEndpoints ---------------------------------------------------------------------

async fn list_ces(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let component_endpoints = inv
        .list_component_endpoints(&ComponentEndpointFilter::parse(&q)?)
        .await?;
    Ok(json(
        StatusCode::OK,
        &ComponentEndpointArray {
            component_endpoints,
        },
    ))
}

async fn get_ce(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.get_component_endpoint(&id).await?,
    ))
}

async fn delete_ce(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    inv.delete_component_endpoints(Some(&id)).await?;
    Ok(deleted(1))
}

async fn delete_all_ces(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_component_endpoints(None).await?;
    Ok(ok_message(format!("deleted {n} entries")))
}

// ---- Hardware inventory ---------------------------------------------------------------------

async fn list_hardware(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let f = crate::hardware::HardwareFilter::parse(&q)?;
    Ok(json(StatusCode::OK, &inv.hardware_list(&f).await?))
}

async fn get_hardware(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.hardware_get(&id).await?))
}

async fn query_hardware(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    q: QueryParams,
) -> Res {
    Ok(json(StatusCode::OK, &inv.hardware_query(&id, &q).await?))
}

async fn list_frus(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let f = crate::hardware::HardwareFilter::parse(&q)?;
    Ok(json(StatusCode::OK, &inv.fru_list(&f).await?))
}

async fn get_fru(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.fru_get(&id).await?))
}

// ---- EthernetInterfaces ---------------------------------------------------------------------

fn created_one(uri: String) -> Response {
    let mut r = json(StatusCode::CREATED, &json!({ "URI": uri }));
    if let Ok(v) = HeaderValue::from_str(&uri) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn list_ifaces(State(inv): State<Inventory>, q: QueryParams) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.list_interfaces(&crate::ethernet::InterfaceFilter::parse(&q)?)
            .await?,
    ))
}

async fn post_iface(State(inv): State<Inventory>, ApiJson(b): ApiJson<EthernetInterfaceIn>) -> Res {
    Ok(created_one(inv.post_interface(&b).await?))
}

async fn get_iface(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_interface(&id).await?))
}

async fn patch_iface(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<EthernetInterfacePatch>,
) -> Res {
    Ok(json(StatusCode::OK, &inv.patch_interface(&id, &p).await?))
}

async fn delete_iface(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    inv.delete_interfaces(Some(&id)).await?;
    Ok(deleted(1))
}

async fn delete_all_ifaces(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_interfaces(None).await?;
    Ok(ok_message(format!("deleted {n} entries")))
}

async fn get_iface_ips(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.get_interface(&id).await?.ip_addresses,
    ))
}

async fn post_iface_ip(
    State(inv): State<Inventory>,
    Path(id): Path<String>,
    ApiJson(m): ApiJson<IpMappingIn>,
) -> Res {
    Ok(created_one(inv.add_interface_ip(&id, &m).await?))
}

async fn patch_iface_ip(
    State(inv): State<Inventory>,
    Path((id, ip)): Path<(String, String)>,
    ApiJson(p): ApiJson<IpMappingPatch>,
) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.patch_interface_ip(&id, &ip, p.network.as_deref())
            .await?,
    ))
}

async fn delete_iface_ip(
    State(inv): State<Inventory>,
    Path((id, ip)): Path<(String, String)>,
) -> Res {
    inv.delete_interface_ip(&id, &ip).await?;
    Ok(deleted(1))
}

// ---- groups and memberships -----------------------------------------------------------------

async fn list_groups(State(inv): State<Inventory>, q: QueryParams) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.list_groups(&GroupFilter::parse(&q)?).await?,
    ))
}

async fn post_group(State(inv): State<Inventory>, ApiJson(g): ApiJson<GroupIn>) -> Res {
    let uri = inv.create_group(&g).await?;
    Ok(created(vec![uri], &at("/groups")))
}

async fn group_labels(State(inv): State<Inventory>) -> Res {
    Ok(json(StatusCode::OK, &inv.group_labels().await?))
}

async fn get_group(State(inv): State<Inventory>, Path(l): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_group(&l).await?))
}

async fn patch_group(
    State(inv): State<Inventory>,
    Path(l): Path<String>,
    ApiJson(p): ApiJson<GroupPatch>,
) -> Res {
    inv.patch_group(&l, &p).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_group(State(inv): State<Inventory>, Path(l): Path<String>) -> Res {
    inv.delete_group(&l).await?;
    Ok(deleted(1))
}

async fn get_members(State(inv): State<Inventory>, Path(l): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_group(&l).await?.members))
}

async fn post_member(
    State(inv): State<Inventory>,
    Path(l): Path<String>,
    ApiJson(m): ApiJson<MemberId>,
) -> Res {
    let uri = inv.add_group_member(&l, &m.id).await?;
    Ok(created(vec![uri], &at("/groups")))
}

async fn put_members(
    State(inv): State<Inventory>,
    Path(l): Path<String>,
    ApiJson(m): ApiJson<MemberList>,
) -> Res {
    let uris = inv.set_group_members(&l, &m.ids).await?;
    Ok(created(uris, &at("/groups")))
}

async fn delete_member(State(inv): State<Inventory>, Path((l, x)): Path<(String, String)>) -> Res {
    inv.remove_group_member(&l, &x).await?;
    Ok(deleted(1))
}

async fn list_memberships(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let f = ComponentFilter::parse(&q)?;
    Ok(json(StatusCode::OK, &inv.memberships(&f).await?))
}

async fn get_membership(State(inv): State<Inventory>, Path(x): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.membership(&x).await?))
}

// ---- Component queries --------------------------------------------------------------------

/// A JSON object body (content type checked, size capped by the router).
fn object_body(h: &HeaderMap, b: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    check_json_content_type(h)?;
    query::body_object(parse_json::<Value>(b)?)
}

async fn query_components_get(
    State(inv): State<Inventory>,
    Path(x): Path<String>,
    q: QueryParams,
) -> Res {
    let f = ComponentFilter::parse(&q)?;
    let scope = query::Scope::of(&[x.trim().to_ascii_lowercase()]);
    let components = inv.query_components(&scope, &f).await?;
    Ok(json(StatusCode::OK, &ComponentArray { components }))
}

async fn query_components_post(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let body = object_body(&h, &b)?;
    let ids = query::body_list(&body, "ComponentIDs")?;
    if ids.is_empty() {
        return Err(ApiError::bad_request("Missing IDs"));
    }
    let f = ComponentFilter::parse(&query::body_params(&body, &["componentids"])?)?;
    let components = inv.query_components(&query::Scope::of(&ids), &f).await?;
    Ok(json(StatusCode::OK, &ComponentArray { components }))
}

async fn query_by_nid_post(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let body = object_body(&h, &b)?;
    let ranges = query::body_list(&body, "NIDRanges")?;
    if ranges.is_empty() {
        return Err(ApiError::bad_request("Missing NID ranges"));
    }
    let mut q = query::body_params(&body, &["nidranges", "nid", "nid_start", "nid_end"])?;
    q.0.extend(query::nid_ranges(&ranges)?);
    let components = inv.list_components(&ComponentFilter::parse(&q)?).await?;
    Ok(json(StatusCode::OK, &ComponentArray { components }))
}

async fn query_ces_post(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let body = object_body(&h, &b)?;
    let ids = query::body_list(&body, "ComponentIDs")?;
    if ids.is_empty() {
        return Err(ApiError::bad_request("Missing IDs"));
    }
    let f = ComponentEndpointFilter::parse(&query::body_params(&body, &["componentids"])?)?;
    let component_endpoints = inv
        .query_component_endpoints(&query::Scope::of(&ids), &f)
        .await?;
    Ok(json(
        StatusCode::OK,
        &ComponentEndpointArray {
            component_endpoints,
        },
    ))
}

// ---- Partitions ---------------------------------------------------------------------------

async fn list_partitions(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let names: Vec<String> = q.all("partition").into_iter().map(String::from).collect();
    let tags: Vec<String> = q.all("tag").into_iter().map(String::from).collect();
    Ok(json(
        StatusCode::OK,
        &inv.list_partitions(&names, &tags).await?,
    ))
}

async fn post_partition(State(inv): State<Inventory>, ApiJson(p): ApiJson<PartitionIn>) -> Res {
    let uri = inv.create_partition(&p).await?;
    Ok(created(vec![uri], &at("/partitions")))
}

async fn partition_names(State(inv): State<Inventory>) -> Res {
    Ok(json(StatusCode::OK, &inv.partition_names().await?))
}

async fn get_partition(State(inv): State<Inventory>, Path(n): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_partition(&n).await?))
}

async fn patch_partition(
    State(inv): State<Inventory>,
    Path(n): Path<String>,
    ApiJson(p): ApiJson<GroupPatch>,
) -> Res {
    inv.patch_partition(&n, &p).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_partition(State(inv): State<Inventory>, Path(n): Path<String>) -> Res {
    inv.delete_partition(&n).await?;
    Ok(deleted(1))
}

async fn get_partition_members(State(inv): State<Inventory>, Path(n): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.get_partition(&n).await?.members))
}

async fn post_partition_member(
    State(inv): State<Inventory>,
    Path(n): Path<String>,
    ApiJson(m): ApiJson<MemberId>,
) -> Res {
    let uri = inv.add_partition_member(&n, &m.id).await?;
    Ok(created(vec![uri], &at("/partitions")))
}

async fn delete_partition_member(
    State(inv): State<Inventory>,
    Path((n, x)): Path<(String, String)>,
) -> Res {
    inv.remove_partition_member(&n, &x).await?;
    Ok(deleted(1))
}

// ---- Locks --------------------------------------------------------------------------------

async fn locks_update(inv: Inventory, h: HeaderMap, b: Bytes, action: LockAction) -> Res {
    let req = LockRequest::parse(&object_body(&h, &b)?)?;
    Ok(json(StatusCode::OK, &inv.update_locks(&req, action).await?))
}

async fn locks_reserve(inv: Inventory, h: HeaderMap, b: Bytes, admin: bool) -> Res {
    let req = LockRequest::parse(&object_body(&h, &b)?)?;
    Ok(json(StatusCode::OK, &inv.reserve(&req, admin).await?))
}

async fn locks_remove(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let req = LockRequest::parse(&object_body(&h, &b)?)?;
    Ok(json(StatusCode::OK, &inv.remove_reservations(&req).await?))
}

async fn locks_keys(inv: Inventory, h: HeaderMap, b: Bytes, renew: bool) -> Res {
    let body = object_body(&h, &b)?;
    let LockRequest {
        model, duration, ..
    } = LockRequest::parse(&body)?;
    let keys = locks::parse_keys(&body, "ReservationKeys")?;
    let renew = renew.then_some(duration);
    Ok(json(
        StatusCode::OK,
        &inv.release_or_renew(&keys, model, renew).await?,
    ))
}

async fn locks_check(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let body = object_body(&h, &b)?;
    let keys = locks::parse_keys(&body, "DeputyKeys")?;
    Ok(json(StatusCode::OK, &inv.check_reservations(&keys).await?))
}

async fn locks_status_post(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    let req = LockRequest::parse(&object_body(&h, &b)?)?;
    Ok(json(StatusCode::OK, &inv.lock_status(&req).await?))
}

async fn locks_status_get(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let req = LockRequest::from_query(&q)?;
    Ok(json(StatusCode::OK, &inv.lock_status(&req).await?))
}

// ---- NodeMaps ------------------------------------------------------------------------------

async fn list_node_maps(State(inv): State<Inventory>) -> Res {
    let node_maps = inv.node_maps().await?;
    Ok(json(
        StatusCode::OK,
        &skyport_wire::NodeMapArray { node_maps },
    ))
}

async fn post_node_maps(State(inv): State<Inventory>, h: HeaderMap, b: Bytes) -> Res {
    check_json_content_type(&h)?;
    let maps = crate::nodemaps::parse_post(&parse_json::<Value>(&b)?)?;
    let n = inv.post_node_maps(&maps).await?;
    Ok(ok_message(format!("Created or modified {n} entries")))
}

async fn get_node_map(State(inv): State<Inventory>, Path(x): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.node_map(&x).await?))
}

async fn put_node_map(
    State(inv): State<Inventory>,
    Path(x): Path<String>,
    ApiJson(m): ApiJson<skyport_wire::NodeMap>,
) -> Res {
    Ok(json(StatusCode::OK, &inv.put_node_map(&x, &m).await?))
}

async fn delete_node_map(State(inv): State<Inventory>, Path(x): Path<String>) -> Res {
    inv.delete_node_map(&x).await?;
    Ok(deleted(1))
}

async fn delete_all_node_maps(State(inv): State<Inventory>) -> Res {
    Ok(deleted(inv.delete_all_node_maps().await?))
}

// ---- Service endpoints -----------------------------------------------------------------------

fn services_array(v: Vec<skyport_wire::ServiceEndpoint>) -> Response {
    json(
        StatusCode::OK,
        &skyport_wire::ServiceEndpointArray {
            service_endpoints: v,
        },
    )
}

async fn list_services(State(inv): State<Inventory>, q: QueryParams) -> Res {
    let f = crate::services::ServiceFilter::parse(&q)?;
    Ok(services_array(inv.service_endpoints(&f).await?))
}

async fn list_service(
    State(inv): State<Inventory>,
    Path(service): Path<String>,
    q: QueryParams,
) -> Res {
    let f = crate::services::ServiceFilter::parse(&q)?.only_service(&service)?;
    Ok(services_array(inv.service_endpoints(&f).await?))
}

async fn get_service(
    State(inv): State<Inventory>,
    Path((service, xname)): Path<(String, String)>,
) -> Res {
    Ok(json(
        StatusCode::OK,
        &inv.service_endpoint(&service, &xname).await?,
    ))
}

async fn delete_service(
    State(inv): State<Inventory>,
    Path((service, xname)): Path<(String, String)>,
) -> Res {
    inv.delete_service_endpoint(&service, &xname).await?;
    Ok(deleted(1))
}

async fn delete_all_services(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_service_endpoints().await?;
    Ok(ok_message(format!("deleted {n} entries")))
}

// ---- SCN subscriptions ---------------------------------------------------------------------

async fn list_scn(State(inv): State<Inventory>) -> Res {
    let all = inv.scn_subscriptions().await?;
    Ok(json(
        StatusCode::OK,
        &skyport_wire::scn::ScnSubscriptionArray {
            // SMD answers null, not [], when there are none.
            subscription_list: (!all.is_empty()).then_some(all),
        },
    ))
}

async fn post_scn(State(inv): State<Inventory>, body: Bytes) -> Res {
    let s = crate::scn::subscriptions::parse_subscription(&body)?;
    Ok(json(StatusCode::OK, &inv.post_scn(s).await?))
}

async fn delete_all_scn(State(inv): State<Inventory>) -> Res {
    let n = inv.delete_all_scn().await?;
    Ok(ok_message(format!("{n} Subscriptions deleted")))
}

async fn get_scn(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.scn_subscription(&id).await?))
}

/// SMD answers PUT and PATCH with 204 and its JSON content type, without a body.
fn no_content_json() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
    )
        .into_response()
}

async fn put_scn(State(inv): State<Inventory>, Path(id): Path<String>, body: Bytes) -> Res {
    // SMD checks the id before it reads the body.
    inv.scn_id(&id)?;
    let s = crate::scn::subscriptions::parse_subscription(&body)?;
    inv.put_scn(&id, s).await?;
    Ok(no_content_json())
}

async fn patch_scn(State(inv): State<Inventory>, Path(id): Path<String>, body: Bytes) -> Res {
    inv.scn_id(&id)?;
    let p = crate::scn::subscriptions::parse_patch(&body)?;
    inv.patch_scn(&id, p).await?;
    Ok(no_content_json())
}

async fn delete_scn(State(inv): State<Inventory>, Path(id): Path<String>) -> Res {
    inv.delete_scn(&id).await?;
    Ok(ok_message("Subscription deleted"))
}

// ---- Power maps ----------------------------------------------------------------------------

async fn list_power_maps(State(inv): State<Inventory>) -> Res {
    Ok(json(StatusCode::OK, &inv.power_maps().await?))
}

async fn post_power_maps(
    State(inv): State<Inventory>,
    ApiJson(maps): ApiJson<Vec<skyport_wire::PowerMap>>,
) -> Res {
    let n = inv.post_power_maps(&maps).await?;
    Ok(ok_message(format!("Created or modified {n} entries")))
}

async fn get_power_map(State(inv): State<Inventory>, Path(x): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &inv.power_map(&x).await?))
}

async fn put_power_map(
    State(inv): State<Inventory>,
    Path(x): Path<String>,
    ApiJson(m): ApiJson<skyport_wire::PowerMap>,
) -> Res {
    Ok(json(StatusCode::OK, &inv.put_power_map(&x, &m).await?))
}

async fn delete_power_map(State(inv): State<Inventory>, Path(x): Path<String>) -> Res {
    inv.delete_power_map(&x).await?;
    Ok(deleted(1))
}

async fn delete_all_power_maps(State(inv): State<Inventory>) -> Res {
    Ok(deleted(inv.delete_all_power_maps().await?))
}
