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

use crate::{BlobError, FsBlobs, ImageError, ImageIn, ImageService, ImageState};

pub const BASE: &str = "/images/v1";

type Res = Result<Response, ApiError>;

/// The one place the registry's errors become HTTP answers: bad registrations 400, unknown
/// images 404, a second registration 409, bytes missing, unverified or not matching 422; the
/// store's errors as every service maps them.
impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::Blob(e) => e.into(),
            ImageError::Store(e) => e.into(),
            ImageError::BadWord { .. }
            | ImageError::BadSha256 { .. }
            | ImageError::BadSize { .. }
            | ImageError::TooManyParts { .. }
            | ImageError::PartsMissing { .. } => ApiError::bad_request(e.to_string()),
            ImageError::NoSuchImage { .. } => ApiError::not_found(e.to_string()),
            ImageError::AlreadyRegistered { .. } => ApiError::conflict(e.to_string()),
            ImageError::Assembly { .. }
            | ImageError::NotUploaded { .. }
            | ImageError::Mismatch { .. }
            | ImageError::NotReady { .. } => ApiError::Unprocessable(e.to_string()),
            ImageError::Encode { .. } | ImageError::Corrupt { .. } => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

/// Object storage's errors as HTTP answers: a bad or expired signature 403, a bad key 400, an
/// upload over the registered size 413, a failing backend 503.
impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Expired | BlobError::BadSignature => ApiError::Forbidden(e.to_string()),
            BlobError::BadKey(_) => ApiError::bad_request(e.to_string()),
            BlobError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            BlobError::Io { .. } | BlobError::Remote(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

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

#[cfg(test)]
mod tests {
    //! Every [`ImageError`] answers with the status and the `detail` text the registry gave
    //! before it had its own error type (clients and scripts match on them).
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use skyport_store::StoreError;

    use super::*;

    fn answer(e: ImageError) -> (u16, String) {
        let a = ApiError::from(e);
        (a.status().as_u16(), a.to_string())
    }

    fn id() -> String {
        "vmlinuz-1-x86_64-kernel".to_string()
    }

    #[test]
    fn image_errors_keep_their_status_and_detail() {
        let unreadable = serde_json::from_str::<crate::Image>("{").unwrap_err();
        let cases = [
            (
                ImageError::BadWord {
                    field: "name",
                    value: "a b".into(),
                    max: 64,
                },
                400,
                "name \"a b\" must be 1-64 characters of letters, digits, '.', '_' or '-', not starting with '.' or '-'".to_string(),
            ),
            (
                ImageError::BadSha256 { value: "xyz".into() },
                400,
                "sha256 must be 64 hexadecimal digits".into(),
            ),
            (
                ImageError::BadSize { size: 0 },
                400,
                "size must be between 1 and 68719476736 bytes".into(),
            ),
            (
                ImageError::TooManyParts { size: 7 },
                400,
                "size 7 needs more than 10000 parts".into(),
            ),
            (
                ImageError::PartsMissing { id: id() },
                400,
                "image vmlinuz-1-x86_64-kernel is uploaded in parts: give each part's number and ETag"
                    .into(),
            ),
            (
                ImageError::NoSuchImage { id: id() },
                404,
                "no such image: vmlinuz-1-x86_64-kernel".into(),
            ),
            (
                ImageError::AlreadyRegistered { id: id() },
                409,
                "image vmlinuz-1-x86_64-kernel is already registered".into(),
            ),
            (
                ImageError::Assembly {
                    id: id(),
                    source: BlobError::Remote("part 2 is missing".into()),
                },
                422,
                "image vmlinuz-1-x86_64-kernel: assembling the parts failed: object storage failed: part 2 is missing"
                    .into(),
            ),
            (
                ImageError::NotUploaded { id: id() },
                422,
                "image vmlinuz-1-x86_64-kernel: nothing has been uploaded yet".into(),
            ),
            (
                ImageError::Mismatch {
                    id: id(),
                    size: 3,
                    sha256: "ab".into(),
                    registered_size: 4,
                    registered_sha256: "cd".into(),
                },
                422,
                "image vmlinuz-1-x86_64-kernel: uploaded 3 bytes with SHA-256 ab, registered 4 bytes with SHA-256 cd; the upload was discarded"
                    .into(),
            ),
            (
                ImageError::NotReady { id: id() },
                422,
                "image vmlinuz-1-x86_64-kernel has not been uploaded and verified yet".into(),
            ),
            (
                ImageError::Corrupt {
                    id: id(),
                    source: serde_json::from_str::<crate::Image>("{").unwrap_err(),
                },
                500,
                format!("stored image vmlinuz-1-x86_64-kernel is unreadable: {unreadable}"),
            ),
            (
                ImageError::Blob(BlobError::Expired),
                403,
                "signed URL has expired".into(),
            ),
            (
                ImageError::Blob(BlobError::TooLarge(5)),
                413,
                "upload exceeds the registered size of 5 bytes".into(),
            ),
            (
                ImageError::Store(StoreError::Unavailable("timed out".into())),
                503,
                "storage unavailable: timed out".into(),
            ),
            (
                ImageError::Store(StoreError::Conflict {
                    table: "Images".into(),
                    id: id(),
                }),
                503,
                "Images/vmlinuz-1-x86_64-kernel was changed by another writer; re-read and retry; the request was not applied"
                    .into(),
            ),
        ];
        for (e, status, detail) in cases {
            assert_eq!(answer(e), (status, detail));
        }
    }
}
