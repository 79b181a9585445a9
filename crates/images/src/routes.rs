//! The `/images/v1` Router: registration, verification, listing and downloads; with the
//! filesystem backend also the signed blob endpoints (`/images/v1/blobs/{key}`) that stand in
//! for S3's presigned URLs.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use skyport_http::access::{Access, Need, by_method, is_read};
use skyport_http::{ApiError, ApiJson, QueryParams, json};

use crate::{FsBlobs, ImageIn, ImageService, ImageState};

pub const BASE: &str = "/images/v1";

type Res = Result<Response, ApiError>;

#[derive(Clone)]
struct AppState {
    svc: ImageService,
    fs: Option<Arc<FsBlobs>>,
}

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// The image API; pass the filesystem backend as `fs` when it is the one in use, to also serve
/// its signed blob URLs.
/// Who may call each route of [`router`]: blob URLs carry their own short-lived signature
/// (checked by the handler); image content is one catalog every site's agent caches.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix("/images/v1")?;
    Some(match r {
        "/blobs/{key}" => Access::Public,
        "/images/{id}/content" if is_read(method) => Access::Need(Need::ReadOrEdge),
        _ => by_method(method),
    })
}

pub fn router(svc: ImageService, fs: Option<Arc<FsBlobs>>) -> Router {
    let mut r = Router::new()
        .route(&at("/images"), get(list).post(register))
        .route(&at("/images/{id}"), get(get_one).delete(delete))
        .route(&at("/images/{id}/complete"), post(complete))
        .route(&at("/images/{id}/content"), get(content));
    if fs.is_some() {
        r = r.route(&at("/blobs/{key}"), get(blob_get).put(blob_put));
    }
    r.with_state(AppState { svc, fs })
}

async fn list(State(s): State<AppState>) -> Res {
    Ok(json(StatusCode::OK, &s.svc.list().await?))
}

async fn register(State(s): State<AppState>, ApiJson(i): ApiJson<ImageIn>) -> Res {
    let reg = s.svc.register(&i).await?;
    let mut r = json(StatusCode::CREATED, &reg);
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE}/images/{}", reg.image.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &s.svc.get(&id).await?))
}

async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    s.svc.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn complete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Res {
    let done: crate::CompleteIn = if body.iter().all(u8::is_ascii_whitespace) {
        crate::CompleteIn::default()
    } else {
        skyport_http::check_json_content_type(&headers)?;
        skyport_http::parse_json(&body)?
    };
    Ok(json(StatusCode::OK, &s.svc.complete(&id, &done).await?))
}

async fn content(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let url = s.svc.download_url(&id).await?;
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url)
            .map_err(|e| ApiError::Internal(format!("download URL: {e}")))?,
    );
    Ok(r)
}

fn signed(q: &QueryParams, op: &str) -> Result<(String, String), ApiError> {
    if q.first("op") != Some(op) {
        return Err(ApiError::Forbidden(format!("this URL does not allow {op}")));
    }
    let expires = q.first("expires").unwrap_or("").to_string();
    let sig = q.first("sig").unwrap_or("").to_string();
    Ok((expires, sig))
}

async fn blob_put(
    State(s): State<AppState>,
    Path(key): Path<String>,
    q: QueryParams,
    req: Request,
) -> Res {
    let fs =
        s.fs.ok_or_else(|| ApiError::not_found("no blob storage here"))?;
    let (expires, sig) = signed(&q, "put")?;
    fs.verify("put", &key, &expires, &sig)?;
    // Only a registered, not yet verified image accepts bytes, and no more than it declared.
    let image = s.svc.get(&key).await?;
    if image.state == ImageState::Ready {
        return Err(ApiError::conflict(format!(
            "image {key} is already uploaded and verified"
        )));
    }
    let n = fs
        .write(&key, req.into_body().into_data_stream(), image.size)
        .await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"key": key, "bytes": n}),
    ))
}

async fn blob_get(State(s): State<AppState>, Path(key): Path<String>, q: QueryParams) -> Res {
    let fs =
        s.fs.ok_or_else(|| ApiError::not_found("no blob storage here"))?;
    let (expires, sig) = signed(&q, "get")?;
    fs.verify("get", &key, &expires, &sig)?;
    let path = fs.path(&key)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found(format!("no such object: {key}")))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading {}: {e}", path.display())))?
        .len();
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(r)
}
