//! The bytes of `GET /edge/v1/images/{id}`: a cached image sent chunk by chunk through the
//! cache's checked [`Reader`], so no byte leaves that failed its check. Owns the HTTP side of
//! it: one byte range at most (RFC 9110 §14: a malformed or multi-range `Range` is ignored and
//! the whole image sent, a suffix longer than the image is the whole image, a range starting
//! past the end is 416), `If-Range`, an `ETag` that is the image's SHA-256 (so
//! `If-None-Match` answers 304), and the errors, which never name a file system path.
//!
//! A corrupt chunk at the start of the answer is found before the status line is sent: the file
//! is dropped, downloaded again, and the request answered from the new copy. One found later
//! ends the response early (the connection is closed short of its `Content-Length`, which every
//! client treats as a failed download) without sending the chunk.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use skyport_http::ApiError;
use skyport_images::Image;

use crate::metrics::{Metrics, inc};
use crate::node::cache::{CHUNK, CacheError, ImageCache, Reader};

/// What the request asks for, given the image's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` value (RFC 9110 §14.1.2) for a representation of `size` bytes. Anything it
/// cannot honour as a single range is `Whole`, which §14.2 lets a server answer with.
pub fn parse_range(value: &str, size: u64) -> Want {
    let v = value.trim();
    let spec = match v.get(..6) {
        Some(unit) if unit.eq_ignore_ascii_case("bytes=") => v[6..].trim(),
        _ => return Want::Whole,
    };
    if spec.contains(',') {
        return Want::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Want::Whole;
    };
    let num = |s: &str| {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse::<u64>().ok()
    };
    if a.trim().is_empty() {
        let Some(n) = num(b) else {
            return Want::Whole;
        };
        if n == 0 || size == 0 {
            return Want::Unsatisfiable;
        }
        return Want::Part(size - n.min(size), size - 1);
    }
    let Some(first) = num(a) else {
        return Want::Whole;
    };
    let last = if b.trim().is_empty() {
        None
    } else {
        match num(b) {
            Some(l) if l >= first => Some(l),
            _ => return Want::Whole,
        }
    };
    if first >= size {
        return Want::Unsatisfiable;
    }
    Want::Part(first, last.map_or(size - 1, |l| l.min(size - 1)))
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/").is_some_and(|w| w == etag))
}

/// The answer for an image that could not be made available; never a path.
pub fn cache_error(cache: &ImageCache, img: &Image, e: &CacheError) -> Response {
    let retry = match e {
        CacheError::BadDigest { .. } => {
            return ApiError::Internal(e.public_detail()).into_response();
        }
        CacheError::DiskFull { .. } => cache
            .retry_in(img)
            .unwrap_or(Duration::from_secs(10))
            .as_secs()
            .clamp(10, 3600),
        CacheError::Io { .. } => {
            // The node hears that it may try again; the path is for the operator only.
            tracing::error!(image = %img.id, error = %e, "image cache error");
            10
        }
        CacheError::Offline(_) | CacheError::Download { .. } => 10,
    };
    let mut r = ApiError::Unavailable(e.public_detail()).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry));
    r
}

/// Answers a GET or HEAD of `img` from `cache`.
pub async fn respond(
    cache: &Arc<ImageCache>,
    metrics: &Arc<Metrics>,
    img: &Image,
    method: &Method,
    h: &HeaderMap,
) -> Response {
    let mut reader = match cache.reader(img).await {
        Ok(r) => r,
        Err(e) => return cache_error(cache, img, &e),
    };
    let size = reader.size();
    let etag = format!("\"{}\"", reader.sha256());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Some(inm) = h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && etag_matches(inm, &etag)
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let range_applies = h
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let want = match h.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if range_applies => parse_range(v, size),
        _ => Want::Whole,
    };
    let (status, first, last) = match want {
        Want::Unsatisfiable => {
            let mut r = skyport_http::problem(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("image {} has {size} bytes", img.id),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Want::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Want::Whole => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}"))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    if method == Method::HEAD || length == 0 {
        return (status, headers).into_response();
    }
    // The first chunk is checked before the status line goes out, so a corrupt one is fetched
    // again and the node still gets a good answer.
    let start = first / CHUNK;
    let head = match reader.chunk(start).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(image = %img.id, error = %e, "fetching a corrupt cached image again");
            reader = match cache.reader(img).await {
                Ok(r) => r,
                Err(e) => return cache_error(cache, img, &e),
            };
            match reader.chunk(start).await {
                Ok(b) => b,
                Err(e) => {
                    inc(&metrics.image_reads_aborted);
                    return cache_error(
                        cache,
                        img,
                        &CacheError::Download {
                            id: img.id.clone(),
                            reason: e.to_string(),
                        },
                    );
                }
            }
        }
    };
    metrics
        .image_bytes_served
        .fetch_add(length, Ordering::Relaxed);
    let body = body(reader, head, first, last, metrics.clone());
    (status, headers, body).into_response()
}

/// Bytes `first..=last` of the image: `head` (the first chunk, already checked), then each
/// following chunk as it is read and checked. A chunk that fails ends the stream with an error,
/// which makes the server close the connection short of the promised length.
fn body(reader: Reader, head: Bytes, first: u64, last: u64, metrics: Arc<Metrics>) -> Body {
    let start = first / CHUNK;
    let end = last / CHUNK;
    let slice = move |i: u64, b: Bytes| {
        let base = i * CHUNK;
        let lo = (first.max(base) - base) as usize;
        let hi = ((last + 1).min(base + b.len() as u64) - base) as usize;
        b.slice(lo..hi)
    };
    let head = slice(start, head);
    let rest = futures::stream::unfold(Some((reader, start + 1)), move |st| {
        let metrics = metrics.clone();
        async move {
            let (reader, i) = st?;
            if i > end {
                return None;
            }
            match reader.chunk(i).await {
                Ok(b) => Some((Ok(slice(i, b)), Some((reader, i + 1)))),
                Err(e) => {
                    inc(&metrics.image_reads_aborted);
                    tracing::warn!(error = %e, "image response cut short: a cached chunk failed its check");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        }
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(futures::future::ready(Ok::<_, std::io::Error>(head))),
        rest,
    );
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use Want::*;
        let n = 1000;
        for (v, want) in [
            ("bytes=0-99", Part(0, 99)),
            ("bytes=100-", Part(100, 999)),
            ("bytes=990-5000", Part(990, 999)),
            ("bytes=-10", Part(990, 999)),
            ("bytes=-5000", Part(0, 999)),
            ("BYTES= 5-5 ", Part(5, 5)),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            // Ignored: the whole image.
            ("bytes=0-1,5-6", Whole),
            ("bytes=5-1", Whole),
            ("bytes=abc", Whole),
            ("bytes=-", Whole),
            ("bytes=1-x", Whole),
            ("bytes=+1-2", Whole),
            ("items=0-1", Whole),
            ("bytes=99999999999999999999999-", Whole),
            ("", Whole),
        ] {
            assert_eq!(parse_range(v, n), want, "{v:?}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
    }

    #[test]
    fn etags_compare_as_if_none_match_says() {
        let e = "\"abc\"";
        assert!(etag_matches("\"abc\"", e));
        assert!(etag_matches("\"x\", W/\"abc\"", e));
        assert!(etag_matches("*", e));
        assert!(!etag_matches("\"abcd\"", e));
    }
}
