//! The routes Fabrica generates for a kind, with its HTTP semantics (reference §1.2–§1.8):
//! `GET`/`POST /<plural>`, `GET`/`PUT`/`PATCH`/`DELETE /<plural>/{uid}`, `PUT`/`PATCH
//! /<plural>/{uid}/status`. Lists are bare arrays in uid order; create answers 201, the rest
//! 200; a missing uid is 404 before the body is read; bodies are read as Go reads them; a
//! request for an API version other than `v1` (`Accept: …;version=v2`) is 406. Errors are
//! problem JSON carrying Fabrica's `{"error", "code"}` members ([`ApiError::fabrica`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, put};
use serde_json::{Value, json};
use skyport_http::ApiError;

use crate::patch::{self, PatchError, PatchType};
use crate::store::{Collection, CollectionError};
use crate::{API_VERSION, BadBody, Invalid, Kind, Request, Resource, decode_as, timestamp};

type Res = Result<Response, ApiError>;

/// A kind's routes under `base` (`""` or a mount prefix such as `/boot-service`), over `c`.
pub fn router<K: Kind, C: Collection<K>>(base: &str, c: C) -> Router {
    let coll = format!("{base}/{}", K::PLURAL);
    let one = format!("{coll}/{{uid}}");
    let status = format!("{one}/status");
    Router::new()
        .route(&coll, get(list::<K, C>).post(create::<K, C>))
        .route(
            &one,
            get(get_one::<K, C>)
                .put(replace::<K, C>)
                .patch(patch_spec::<K, C>)
                .delete(delete::<K, C>),
        )
        .route(&status, put(put_status::<K, C>).patch(patch_status::<K, C>))
        .with_state(c)
}

/// An error as the generated handlers answer it.
pub fn answer(e: CollectionError) -> ApiError {
    match e {
        CollectionError::Store(e) => ApiError::from(e),
        CollectionError::Invalid(e) => ApiError::bad_request(e.to_string()),
        CollectionError::Refused(m) => ApiError::bad_request(m),
        e @ CollectionError::Exists { .. } => ApiError::conflict(e.to_string()),
        CollectionError::NotAllowed(m) => ApiError::MethodNotAllowed(m),
        e @ (CollectionError::Corrupt { .. } | CollectionError::Encode { .. }) => {
            ApiError::Internal(e.to_string())
        }
    }
    .fabrica()
}

fn not_found<K: Kind>(uid: &str) -> ApiError {
    ApiError::not_found(format!(
        "{k} not found: failed to load {k} {uid}: resource not found",
        k = K::KIND
    ))
    .fabrica()
}

fn bad_body(e: BadBody) -> ApiError {
    ApiError::bad_request(e.to_string()).fabrica()
}

fn invalid(e: Invalid) -> ApiError {
    ApiError::bad_request(e.to_string()).fabrica()
}

fn patch_failed(e: PatchError) -> ApiError {
    ApiError::Unprocessable(e.to_string()).fabrica()
}

/// The API version a request asks for: `version=` or `v=` in `Accept`; none is fine.
pub fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    for param in accept.split([';', ',']) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim().trim_matches('"');
        if (k.eq_ignore_ascii_case("version") || k.eq_ignore_ascii_case("v")) && v != API_VERSION {
            return Err(ApiError::NotAcceptable("Unsupported version".into())
                .context(format!("requested {v}; supported: {API_VERSION}"))
                .fabrica());
        }
    }
    Ok(())
}

async fn list<K: Kind, C: Collection<K>>(State(c): State<C>, headers: HeaderMap) -> Res {
    check_version(&headers)?;
    let mut all = c.list().await.map_err(answer)?;
    all.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    Ok(skyport_http::json(StatusCode::OK, &all))
}

async fn create<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    check_version(&headers)?;
    let req = Request::<K>::decode(&body).map_err(bad_body)?;
    let mut meta = req.metadata;
    meta.labels.extend(req.labels);
    meta.annotations.extend(req.annotations);
    let mut r = Resource::<K>::new(meta, req.spec)
        .map_err(|e| ApiError::Internal(e.to_string()).fabrica())?;
    K::validate(&mut r).map_err(invalid)?;
    let r = c.insert(r).await.map_err(answer)?;
    Ok(skyport_http::json(StatusCode::CREATED, &r))
}

async fn get_one<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
) -> Res {
    check_version(&headers)?;
    match c.get(&uid).await.map_err(answer)? {
        Some(r) => Ok(skyport_http::json(StatusCode::OK, &r)),
        None => Err(not_found::<K>(&uid)),
    }
}

/// Runs `change` on resource `uid` through the collection, then stamps and validates it:
/// 404 first if there is no such resource, then whatever `change` refuses, then validation.
async fn modify<K: Kind, C: Collection<K>>(
    c: &C,
    uid: &str,
    change: &(dyn Fn(Resource<K>) -> Result<Resource<K>, ApiError> + Send + Sync),
) -> Res {
    // The route's own refusal (a bad body, a patch that fails) is carried out of the store's
    // closure here, so the write is not attempted and the answer is the route's.
    let refusal = std::sync::Mutex::new(None);
    let stamped = |r: Resource<K>| -> Result<Resource<K>, Invalid> {
        let mut next = match change(r) {
            Ok(n) => n,
            Err(e) => {
                if let Ok(mut slot) = refusal.lock() {
                    *slot = Some(e);
                }
                return Err(Invalid(Vec::new()));
            }
        };
        next.metadata.updated_at = timestamp();
        K::validate(&mut next)?;
        Ok(next)
    };
    match c.update(uid, &stamped).await {
        Ok(Some(r)) => Ok(skyport_http::json(StatusCode::OK, &r)),
        Ok(None) => Err(not_found::<K>(uid)),
        Err(e) => {
            if let Some(e) = refusal.lock().ok().and_then(|mut s| s.take()) {
                return Err(e);
            }
            Err(answer(e))
        }
    }
}

async fn replace<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    check_version(&headers)?;
    if c.get(&uid).await.map_err(answer)?.is_none() {
        return Err(not_found::<K>(&uid));
    }
    let req = Request::<K>::decode(&body).map_err(bad_body)?;
    modify(&c, &uid, &|mut r: Resource<K>| {
        if !req.metadata.name.is_empty() {
            r.metadata.name = req.metadata.name.clone();
        }
        // Upstream merges only the top-level labels and annotations; `metadata.labels` in a
        // PUT body is ignored.
        r.metadata.labels.extend(req.labels.clone());
        r.metadata.annotations.extend(req.annotations.clone());
        r.spec = req.spec.clone();
        Ok(r)
    })
    .await
}

fn content_type(headers: &HeaderMap) -> PatchType {
    PatchType::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn patched<T: serde::de::DeserializeOwned>(
    kind: PatchType,
    body: &[u8],
    target: &'static str,
    current: &impl serde::Serialize,
    shape: skyport_wire::de::Shape,
) -> Result<T, ApiError> {
    let now = serde_json::to_value(current)
        .map_err(|e| ApiError::Internal(format!("encoding {target}: {e}")).fabrica())?;
    let v = patch::apply(kind, body, target, now).map_err(patch_failed)?;
    decode_as(v, shape).map_err(|e| {
        ApiError::Internal(format!("failed to unmarshal patched {target}: {e}")).fabrica()
    })
}

async fn patch_spec<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    check_version(&headers)?;
    let kind = content_type(&headers);
    modify(&c, &uid, &|mut r: Resource<K>| {
        r.spec = patched(kind, &body, "spec", &r.spec, K::SPEC)?;
        Ok(r)
    })
    .await
}

async fn put_status<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    check_version(&headers)?;
    if c.get(&uid).await.map_err(answer)?.is_none() {
        return Err(not_found::<K>(&uid));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad_body(BadBody(e)))?;
    let status: K::Status = decode_as(v, K::STATUS).map_err(|e| bad_body(BadBody(e)))?;
    modify(&c, &uid, &|mut r: Resource<K>| {
        r.status = status.clone();
        Ok(r)
    })
    .await
}

async fn patch_status<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    check_version(&headers)?;
    let kind = content_type(&headers);
    modify(&c, &uid, &|mut r: Resource<K>| {
        r.status = patched(kind, &body, "status", &r.status, K::STATUS)?;
        Ok(r)
    })
    .await
}

async fn delete<K: Kind, C: Collection<K>>(
    State(c): State<C>,
    Path(uid): Path<String>,
    headers: HeaderMap,
) -> Res {
    check_version(&headers)?;
    match c.delete(&uid).await.map_err(answer)? {
        Some(_) => Ok(skyport_http::json(
            StatusCode::OK,
            &json!({"message": format!("{} deleted successfully", K::KIND), "uid": uid}),
        )),
        None => Err(not_found::<K>(&uid)),
    }
}
