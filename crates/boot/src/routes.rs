//! The `/boot/v1` axum Router: BSS's routes, status codes and content types.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use skyport_http::access::{Access, Need, by_method, is_read};
use skyport_http::{ApiError, QueryParams, check_json_content_type, parse_json};

use crate::params::BootParams;
use crate::{BootError, BootService, ScriptOutcome, ScriptRequest};

pub const BASE: &str = "/boot/v1";

type Res = Result<Response, ApiError>;

/// The boot service's answers as BSS gives them: the request's faults 400, nodes without
/// parameters 404, a stored reference that cannot be resolved here 422, unreadable stored data
/// 500; the store's, the image registry's and the inventory's errors keep their own mapping.
impl From<BootError> for ApiError {
    fn from(e: BootError) -> Self {
        let context = e.context();
        let a = answer(e);
        match context {
            Some(c) => a.context(c),
            None => a,
        }
    }
}

fn answer(e: BootError) -> ApiError {
    {
        use BootError as E;
        match e {
            E::Store(e) => e.into(),
            E::Resource(e) => skyport_resource::routes::answer(e),
            E::Image(e) => e.into(),
            E::Inventory(e) => e,
            E::Missing(_)
            | E::NotFound { .. }
            | E::NothingToUpdate
            | E::UnknownHost(_)
            | E::UnknownHostMac(_)
            | E::UnknownHostNid(_) => ApiError::not_found(e.to_string()),
            E::Unresolvable { .. } => ApiError::Unprocessable(e.to_string()),
            E::BadId(_)
            | E::Corrupt { .. }
            | E::CorruptHistory { .. }
            | E::Encode(_)
            | E::EncodeHistory { .. }
            | E::Render(_) => ApiError::Internal(e.to_string()),
            E::NoNodes
            | E::NothingToSet
            | E::BadHost { .. }
            | E::NotANode { .. }
            | E::BadMac { .. }
            | E::BadNid { .. }
            | E::Unsafe(_)
            | E::BadS3Url { .. }
            | E::NoRegistry { .. }
            | E::NoSuchImage { .. }
            | E::Duplicate { .. }
            | E::ScriptMac(_)
            | E::ScriptNid(_)
            | E::NoScriptKey
            | E::BadHostNid(_) => ApiError::bad_request(e.to_string()),
        }
    }
}

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// Who may call each route of [`router`]: a node's own script and BSS's health routes are
/// anonymous (a booting node has no token), the state dump is an admin's.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    if route.starts_with(crate::resources::routes::BASE) {
        return crate::resources::routes::access(method, route);
    }
    let r = route.strip_prefix("/boot/v1")?;
    Some(match r {
        "/bootscript"
        | "/service/status"
        | "/service/version"
        | "/service/hsm"
        | "/service/storage/status"
        | "/service/status/all"
            if is_read(method) =>
        {
            Access::Public
        }
        "/dumpstate" => Access::Need(Need::Admin),
        _ => by_method(method),
    })
}

/// BSS's routes under `/boot/v1`, and OpenCHAMI v0.2's boot-service under `/boot-service`
/// (the other view of the same boot data, `crate::resources`).
pub fn router(svc: BootService) -> Router {
    let v02 = crate::resources::routes::router(svc.clone());
    Router::new()
        .route(
            &at("/bootparameters"),
            get(get_params)
                .post(post_params)
                .put(put_params)
                .patch(patch_params)
                .delete(delete_params),
        )
        .route(&at("/bootscript"), get(bootscript))
        .route(
            &at("/hosts"),
            get(hosts).post(|| async { StatusCode::NO_CONTENT }),
        )
        .route(&at("/dumpstate"), get(dumpstate))
        .route(&at("/endpoint-history"), get(endpoint_history))
        .route(
            &at("/service/status"),
            get(|| async { println_json(json!({"bss-status": "running"})) }),
        )
        .route(
            &at("/service/version"),
            get(|| async { println_json(json!({"bss-version": env!("CARGO_PKG_VERSION")})) }),
        )
        .route(&at("/service/hsm"), get(service_hsm))
        .route(&at("/service/storage/status"), get(service_storage))
        .route(&at("/service/status/all"), get(service_all))
        .with_state(svc)
        .merge(v02)
}

/// BSS writes its service answers with `Fprintln`: JSON text, a newline, no JSON content type.
fn println_json(v: serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, format!("{v}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A list as Go writes a nil slice: `null` when empty (BSS's answers on an empty system).
fn go_list<T: serde::Serialize>(v: &[T]) -> serde_json::Value {
    if v.is_empty() {
        serde_json::Value::Null
    } else {
        json!(v)
    }
}

/// JSON with BSS's `Content-Type: application/json; charset=UTF-8`.
fn bss_json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let mut r = skyport_http::json(status, v);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// The body of a bootparameters request: required for writes, optional for GET.
fn body_params(h: &HeaderMap, body: &Bytes, required: bool) -> Result<BootParams, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if required {
            // BSS's JSON decoder on an empty body.
            return Err(ApiError::bad_request("Bad Request: EOF")
                .context("the request body is empty; expected BootParams JSON"));
        }
        return Ok(BootParams::default());
    }
    check_json_content_type(h)?;
    parse_json(body)
}

fn split(q: &QueryParams, name: &str) -> Vec<String> {
    q.all(name)
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

async fn get_params(
    State(svc): State<BootService>,
    q: QueryParams,
    h: HeaderMap,
    body: Bytes,
) -> Res {
    let mut p = body_params(&h, &body, false)?;
    p.hosts.extend(split(&q, "name"));
    p.macs.extend(split(&q, "mac"));
    for n in split(&q, "nid") {
        // Go's ParseInt(n, 0, 0), as BSS reads it (`0x10` is 16).
        p.nids
            .push(crate::parse_go_int(&n).ok_or_else(|| {
                ApiError::bad_request(format!("Bad Request - Invalid nid '{n}'"))
            })?);
    }
    Ok(bss_json(StatusCode::OK, &go_list(&svc.get(&p).await?)))
}

async fn post_params(State(svc): State<BootService>, h: HeaderMap, body: Bytes) -> Res {
    let p = body_params(&h, &body, true)?;
    svc.create(&p).await?;
    Ok(with_referral(StatusCode::CREATED.into_response()))
}

/// BSS hands out a referral token on POST and PUT (hms-bss `bootParametersPost`/`Put`);
/// Skyport has no etcd mode, so it is informational only, but clients read the header.
fn with_referral(mut r: Response) -> Response {
    r.headers_mut()
        .insert("BSS-Referral-Token", HeaderValue::from_static("skyport"));
    r
}

async fn put_params(State(svc): State<BootService>, h: HeaderMap, body: Bytes) -> Res {
    let p = body_params(&h, &body, true)?;
    svc.set(&p).await?;
    Ok(with_referral(StatusCode::OK.into_response()))
}

async fn patch_params(State(svc): State<BootService>, h: HeaderMap, body: Bytes) -> Res {
    let p = body_params(&h, &body, true)?;
    svc.update(&p).await?;
    Ok(StatusCode::OK.into_response())
}

async fn delete_params(State(svc): State<BootService>, h: HeaderMap, body: Bytes) -> Res {
    let p = body_params(&h, &body, true)?;
    svc.delete(&p).await?;
    Ok(StatusCode::OK.into_response())
}

async fn bootscript(State(svc): State<BootService>, q: QueryParams) -> Res {
    let int = |name: &str| -> Result<Option<i64>, ApiError> {
        match q.first(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("{name}={v:?} is not an integer"))),
        }
    };
    let req = ScriptRequest {
        mac: q.first("mac").map(String::from),
        name: q.first("name").map(String::from),
        nid: q.first("nid").map(String::from),
        retry: int("retry")?
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0),
        arch: q.first("arch").map(String::from),
        ts: int("ts")?,
    };
    let outcome = svc.bootscript(&req).await?;
    if int("json")?.is_some_and(|j| j != 0)
        && let ScriptOutcome::Known { boot, params, .. } = &outcome
    {
        // BSS marshals its BootData struct: `initrd` is there even without one.
        let v = json!({"params": format!("kernel {params}"), "kernel": {"path": boot.kernel},
                       "initrd": {"path": boot.initrd.as_deref().unwrap_or_default()}});
        return Ok(bss_json(StatusCode::OK, &v));
    }
    let mut r = (StatusCode::OK, outcome.script().to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    Ok(r)
}

async fn hosts(State(svc): State<BootService>, q: QueryParams) -> Res {
    let q = crate::HostQuery {
        names: split(&q, "name"),
        macs: split(&q, "mac"),
        nids: split(&q, "nid"),
    };
    Ok(bss_json(
        StatusCode::OK,
        &go_list(&svc.hosts_matching(&q).await?),
    ))
}

async fn dumpstate(State(svc): State<BootService>) -> Res {
    let components = svc.hosts().await?;
    let params = svc.get(&BootParams::default()).await?;
    Ok(bss_json(
        StatusCode::OK,
        &json!({"Components": go_list(&components), "Params": go_list(&params)}),
    ))
}

async fn endpoint_history(State(svc): State<BootService>, q: QueryParams) -> Res {
    // An endpoint BSS does not record matches nothing (200, empty), as in BSS.
    let endpoint = q.first("endpoint").filter(|e| !e.is_empty());
    let name = q.first("name").filter(|n| !n.is_empty());
    Ok(bss_json(
        StatusCode::OK,
        &svc.endpoint_history(name, endpoint).await?,
    ))
}

async fn service_hsm(State(svc): State<BootService>) -> Response {
    // The inventory lives in the same store: it is connected exactly when the store is.
    match svc.ping().await {
        Ok(()) => println_json(json!({"bss-status-hsm": "connected"})),
        Err(e) => ApiError::Unavailable(format!("bss-status-hsm: error: {e}")).into_response(),
    }
}

async fn service_storage(State(svc): State<BootService>) -> Response {
    match svc.ping().await {
        Ok(()) => println_json(
            json!({"bss-storage-backend": {"name": svc.backend(), "status": "connected"}}),
        ),
        Err(e) => ApiError::Unavailable(format!(
            "storage backend {} is unavailable: {e}",
            svc.backend()
        ))
        .into_response(),
    }
}

async fn service_all(State(svc): State<BootService>) -> Response {
    let up = svc.ping().await.is_ok();
    let status = if up { "connected" } else { "error" };
    let body = json!({
        "bss-status": "running",
        "bss-version": env!("CARGO_PKG_VERSION"),
        "bss-status-hsm": status,
        "bss-storage-backend": {"name": svc.backend(), "status": status},
    });
    let mut r = println_json(body);
    if !up {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r
}

#[cfg(test)]
mod tests {
    //! Every [`BootError`] answers with the status and the `detail` text the boot service gave
    //! before it had its own error type (BSS's texts where BSS has one; clients match on them).
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use skyport_model::{HmsType, Mac, Xname};
    use skyport_store::StoreError;

    use super::*;

    /// The status and `detail` a client sees.
    fn answer(e: BootError) -> (u16, String) {
        let a = ApiError::from(e);
        (a.status().as_u16(), a.detail())
    }

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<u8>("x").unwrap_err()
    }

    #[test]
    fn boot_errors_keep_their_status_and_detail() {
        let mac_error = || Mac::parse("zz").unwrap_err();
        let cases: Vec<(BootError, u16, String)> = vec![
            (BootError::NoNodes, 400, "Bad Request: no hosts, macs or nids given".into()),
            (BootError::NothingToSet, 400, "No data".into()),
            (
                BootError::NothingToUpdate,
                404,
                "Not Found: postgres.Update: must specify at least one of params, kernel, or initrd"
                    .into(),
            ),
            (
                BootError::BadHost { index: 2, value: "nope".into() },
                400,
                "Bad Request: invalid xname: nope".into(),
            ),
            (
                BootError::NotANode {
                    index: 0,
                    xname: Xname::parse("x1000c0s0b0").unwrap(),
                    hms_type: HmsType::NodeBmc,
                },
                400,
                "Bad Request: invalid xname type: NodeBMC".into(),
            ),
            (
                BootError::BadMac { index: 1, source: mac_error() },
                400,
                "Bad Request: invalid MAC address format: zz\n".into(),
            ),
            (
                BootError::BadNid { index: 0, nid: 3_000_000_000 },
                400,
                "Bad Request: json: cannot unmarshal number 3000000000 into Go struct field BootParams.nids of type int32".into(),
            ),
            (BootError::BadNid { index: 0, nid: -4 }, 400, "An argument was out of range".into()),
            (
                BootError::BadS3Url { field: "kernel", value: "s3://".into() },
                400,
                "kernel: \"s3://\" is not an s3://bucket/key URL".into(),
            ),
            (
                BootError::NoRegistry { field: "initrd" },
                400,
                "initrd: image references need the image registry, which is not configured here"
                    .into(),
            ),
            (
                BootError::NoSuchImage { field: "kernel", id: "k1".into() },
                400,
                "kernel: no such image: k1".into(),
            ),
            (
                BootError::Duplicate { ids: vec!["host:x1".into(), "mac:a".into()] },
                400,
                "Bad Request: postgres.Add: data already exists".into(),
            ),
            (BootError::ScriptMac(mac_error()), 400, format!("mac: {}", mac_error())),
            (BootError::ScriptNid("x".into()), 400, "nid: \"x\" is not a NID".into()),
            (BootError::NoScriptKey, 400, "Need a mac=, name=, or nid= parameter".into()),
            (
                BootError::Missing(vec!["host:x1".into(), "mac:aa:bb".into(), "nid:7".into()]),
                404,
                "Not Found: postgres.Update: data does not exist: nodes table: macs=[aa:bb] xnames=[x1] nids=[7]".into(),
            ),
            (
                BootError::NotFound { kinds: vec!["Hosts"] },
                404,
                "Cannot find boot parameters for requested Hosts".into(),
            ),
            (
                BootError::NotFound { kinds: vec!["MACs", "NIDs"] },
                404,
                "Cannot find boot parameters for requested MACs or NIDs".into(),
            ),
            (
                BootError::NotFound { kinds: vec!["Hosts", "MACs", "NIDs"] },
                404,
                "Cannot find boot parameters for requested Hosts, MACs or NIDs".into(),
            ),
            (
                BootError::Unresolvable { value: "image:k1".into() },
                422,
                "image:k1: no image registry configured".into(),
            ),
            (
                BootError::BadId("odd".into()),
                500,
                "stored boot parameters have a bad id \"odd\"".into(),
            ),
            (
                BootError::Corrupt { id: "host:x1".into(), source: json_error() },
                500,
                format!("stored boot parameters host:x1 are unreadable: {}", json_error()),
            ),
            (
                BootError::CorruptHistory { id: "x1#bootscript".into(), source: json_error() },
                500,
                format!("stored endpoint history x1#bootscript is unreadable: {}", json_error()),
            ),
            (BootError::Encode(json_error()), 500, format!("encoding boot config: {}", json_error())),
            (
                BootError::Inventory(ApiError::not_found("no such xname.")),
                404,
                "no such xname.".into(),
            ),
            (
                BootError::Store(StoreError::Conflict { table: "BootParams".into(), id: "a".into() }),
                ApiError::from(StoreError::Conflict { table: "BootParams".into(), id: "a".into() })
                    .status()
                    .as_u16(),
                ApiError::from(StoreError::Conflict { table: "BootParams".into(), id: "a".into() })
                    .to_string(),
            ),
        ];
        for (e, status, detail) in cases {
            assert_eq!(answer(e), (status, detail));
        }
        // A POST that lost the race to create an entry is a duplicate, as BSS answers.
        assert_eq!(
            answer(BootError::on_create(StoreError::Conflict {
                table: "BootParams".into(),
                id: "mac:52:54:00:00:00:01".into(),
            })),
            (400, "Bad Request: postgres.Add: data already exists".into())
        );
    }

    /// What `detail` (BSS's fixed text) does not say is in the problem's `context` member.
    #[test]
    fn which_entry_is_in_the_context() {
        let ctx = |e: BootError| match ApiError::from(e) {
            ApiError::WithContext { context, .. } => context,
            other => panic!("no context: {other}"),
        };
        assert_eq!(
            ctx(BootError::Duplicate {
                ids: vec!["host:x1".into(), "mac:a".into()]
            }),
            "existing: host:x1, mac:a"
        );
        assert_eq!(
            ctx(BootError::BadHost {
                index: 2,
                value: "nope".into()
            }),
            "hosts[2]: not a valid xname, a role, Default, Global or Unknown-<arch>"
        );
        assert!(
            ctx(BootError::BadMac {
                index: 1,
                source: Mac::parse("zz").unwrap_err()
            })
            .starts_with("macs[1]: ")
        );
    }
}
