//! HTTP plumbing shared by every Skyport API router: the one error type ([`ApiError`]) and its
//! RFC 7807 rendering in SMD's exact shape, a JSON body extractor that checks the content type,
//! caps the size and names the offending field, a repeatable case-insensitive query parser (SMD
//! reads filters through Go's `r.Form`), and the trailing-slash tolerance SMD gets from chi;
//! and ([`server`]) the HTTP/1 server every listener runs, with its connection limits.

pub mod access;
pub mod server;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skyport_store::StoreError;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// Largest request body any Skyport API accepts (a 10,000-node bulk POST is about 2 MiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Every API failure. Each variant is one HTTP status; the message becomes the problem's
/// `detail`, so it must say what was wrong with which field or record.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    /// What the request refers to is gone for good (an edge agent's expired sync cursor).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A route upstream has that Skyport deliberately does not implement (PCS power capping).
    #[error("{0}")]
    NotImplemented(String),
    /// `error`'s answer, with `detail` exactly upstream's text (clients compare it) and what
    /// Skyport knows more (which entry, value or holder) in the problem's `context` member
    /// (an RFC 7807 extension member). Built with [`ApiError::context`].
    #[error("{error} ({context})")]
    WithContext {
        error: Box<ApiError>,
        context: String,
    },
    /// An answer of a Fabrica-generated OpenCHAMI service (boot-service, metadata-service),
    /// whose clients read `{"error": <text>, "code": <status>}`: the problem JSON carries both
    /// members beside its own. Built with [`ApiError::fabrica`].
    #[error("{0}")]
    Fabrica(Box<ApiError>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::WithContext { error, .. } | ApiError::Fabrica(error) => error.status(),
        }
    }

    /// This answer with `context` (which entry, value or holder) beside upstream's `detail`.
    /// Context already there is kept, the new one after it.
    pub fn context(self, context: impl Into<String>) -> Self {
        let context = context.into();
        match self {
            ApiError::WithContext { error, context: c } => ApiError::WithContext {
                error,
                context: format!("{c}; {context}"),
            },
            error => ApiError::WithContext {
                error: Box::new(error),
                context,
            },
        }
    }

    /// The problem's `detail`: the text without its context.
    pub fn detail(&self) -> String {
        match self {
            ApiError::WithContext { error, .. } | ApiError::Fabrica(error) => error.detail(),
            other => other.to_string(),
        }
    }

    /// The answer under any context (to match on its kind).
    pub fn kind(&self) -> &ApiError {
        match self {
            ApiError::WithContext { error, .. } | ApiError::Fabrica(error) => error.kind(),
            other => other,
        }
    }

    /// This answer as a Fabrica-generated service gives it ([`ApiError::Fabrica`]).
    pub fn fabrica(self) -> Self {
        match self {
            f @ ApiError::Fabrica(_) => f,
            other => ApiError::Fabrica(Box::new(other)),
        }
    }

    /// The problem's `context` member, if any.
    pub fn context_text(&self) -> Option<String> {
        match self {
            ApiError::WithContext { context, .. } => Some(context.clone()),
            ApiError::Fabrica(e) => e.context_text(),
            _ => None,
        }
    }

    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError::BadRequest(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError::NotFound(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        ApiError::Conflict(m.into())
    }
    /// A failed create: 409 with `exists` when the record was there already (the store's
    /// conflict on a write that expected none), the usual mapping of the store's error otherwise.
    pub fn on_create(e: StoreError, exists: impl FnOnce() -> String) -> Self {
        match e {
            StoreError::Conflict { .. } => ApiError::Conflict(exists()),
            other => other.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // A lost write race that survived the service's own retries (every service
            // re-reads and recomputes a few times before giving up): contention, not a
            // refusal of the request, so a retryable 503 with `Retry-After` (clients such as
            // the edge agent park a 4xx for an admin). A client's stale `If-Match` is a 412,
            // decided before any write.
            StoreError::Conflict { .. } => {
                ApiError::Unavailable(format!("{e}; the request was not applied"))
            }
            StoreError::Duplicate { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            StoreError::InvalidBatch(_) | StoreError::Corrupt { .. } => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

/// RFC 7807 body in SMD's key order (`type`, `title`, `detail`, `status`).
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub status: u16,
    /// Skyport's extension member: what `detail` (upstream's exact text) does not say, such as
    /// which entry of a request, which value, or who holds a conflicting key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Fabrica's error members (`{"error", "code"}`), which the `ochami` client reads: only on
    /// the routes of boot-service and metadata-service ([`ApiError::Fabrica`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    problem_with(status, detail, None)
}

/// [`problem`] with Skyport's `context` member.
pub fn problem_with(
    status: StatusCode,
    detail: impl Into<String>,
    context: Option<String>,
) -> Response {
    let body = Problem {
        type_: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        detail: detail.into(),
        status: status.as_u16(),
        context,
        error: None,
        code: None,
    };
    problem_body(status, &body)
}

/// The response carrying `body`.
fn problem_body(status: StatusCode, body: &Problem) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), detail = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), detail = %self, "request rejected");
        }
        let fabrica = matches!(self, ApiError::Fabrica(_));
        let detail = self.detail();
        let body = Problem {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            error: fabrica.then(|| detail.clone()),
            code: fabrica.then_some(status.as_u16()),
            detail,
            status: status.as_u16(),
            context: self.context_text(),
        };
        let mut r = problem_body(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Storage hiccups are transient; tell clients (and retrying scripts) when to come back.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// `value` as a stored record's JSON body; failing to encode is a server fault (500).
pub fn encode<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("encoding: {e}")))
}

/// JSON with SMD's trailing newline and `Content-Type: application/json`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            let mut r = (status, bytes).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => ApiError::Internal(format!("encoding response: {e}")).into_response(),
    }
}

/// A JSON request body: content type checked, size capped, and a parse error that names the
/// field path (`Components[3].State`) and position.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "request body exceeds the {MAX_BODY_BYTES}-byte limit"
                ))
            } else {
                ApiError::BadRequest(format!("could not read request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the field path on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; expected JSON",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(at_path)
}

/// A body that does not decode, naming where (`Components[3].State`) when it is not the top.
fn at_path(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." || path.is_empty() {
        ApiError::bad_request(format!("invalid JSON body: {inner}"))
    } else {
        ApiError::bad_request(format!("invalid JSON body at `{path}`: {inner}"))
    }
}

/// A body already read as JSON, as `T`, with [`parse_json`]'s errors (the field path).
pub fn from_json_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(at_path)
}

/// Bodies must be JSON. A missing Content-Type is tolerated (older scripts omit it);
/// anything else, such as curl's default form encoding, is refused with 415.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {mime:?} is not supported; send application/json"
        )))
    }
}

/// Query parameters as SMD reads them: names case-insensitive, every name repeatable,
/// comma-free values, percent-decoding as any HTTP server does.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: &str) -> Self {
        QueryParams(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect(),
        )
    }

    /// Every value given for `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A boolean parameter as Go's `strconv.ParseBool` reads it; absent is `None`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.first(name) {
            None => Ok(None),
            Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "bad query param: {name}={v:?} is not a boolean (true/false)"
                ))
            }),
        }
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(QueryParams::parse(parts.uri.query().unwrap_or("")))
    }
}

/// Error responses that did not come from [`ApiError`] as problem JSON, so every failure a
/// client sees has one shape: axum's extractor rejections (a path that is not UTF-8, a bad
/// query) answer `text/plain`, tower-http's file server answers 416 with an empty body. Their
/// text becomes the `detail`; headers such as `Content-Range`, `Allow` or `Retry-After` stay.
pub async fn problem_for_bare_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let mime = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(mime.is_empty() || mime == "text/plain") {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Rejection texts are one sentence; anything longer is not worth echoing.
    let detail = match axum::body::to_bytes(body, 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let problem = problem(status, detail);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Response::from_parts(parts, problem.into_body())
}

/// 404 for unknown paths, as problem JSON.
pub async fn not_found_fallback(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::not_found(format!("no such resource: {}", uri.path()))
}

/// 405 for a known path with the wrong method, as problem JSON.
pub async fn method_not_allowed_fallback(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

/// Finishes an app from one or more services' routers: problem-JSON 404 and 405 fallbacks,
/// problem JSON for every other error ([`problem_for_bare_errors`]), the request body cap, and
/// trailing-slash tolerance (`/path/` is `/path`, as with SMD's chi).
pub fn app(routes: Router) -> NormalizePath<Router> {
    let router = routes
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .fallback(not_found_fallback)
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// The `Location` + 201 + `[{"URI":...}]` answer SMD gives for creates.
pub fn created(uris: Vec<String>, collection: &str) -> Response {
    #[derive(Serialize)]
    struct Uri {
        #[serde(rename = "URI")]
        uri: String,
    }
    if uris.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let location = if uris.len() == 1 {
        uris[0].clone()
    } else {
        collection.to_string()
    };
    let body: Vec<Uri> = uris.into_iter().map(|uri| Uri { uri }).collect();
    let mut r = json(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    /// A write race the service lost after its retries is contention (retry later), not a
    /// refusal: clients such as the edge agent park a 4xx and retry a 503.
    #[test]
    fn a_lost_write_race_is_a_retryable_503() {
        let e = StoreError::Conflict {
            table: "Components".into(),
            id: "x1000c0s0b0n0".into(),
        };
        let r = ApiError::from(e).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        // A duplicate is the request's own fault and stays a 409.
        let dup = StoreError::Duplicate {
            key: skyport_store::IndexKey::new("nid", "7"),
            owner: "Components/x1".into(),
        };
        assert_eq!(ApiError::from(dup).status(), StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn problem_has_smd_shape() {
        let r = ApiError::not_found("no such xname.").into_response();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            b"{\"type\":\"about:blank\",\"title\":\"Not Found\",\"detail\":\"no such xname.\",\"status\":404}\n"
        );
    }

    #[test]
    fn query_names_are_case_insensitive_and_repeatable() {
        let q = QueryParams::parse("Type=Node&type=NodeBMC&STATE=Ready&mac=52%3A54%3A00");
        assert_eq!(q.all("type"), vec!["Node", "NodeBMC"]);
        assert_eq!(q.first("state"), Some("Ready"));
        assert_eq!(q.first("mac"), Some("52:54:00"));
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u32,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Inner>,
        }
        let e = parse_json::<Outer>(br#"{"items":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert!(e.to_string().contains("items[1].n"), "{e}");
        assert!(matches!(
            parse_json::<Outer>(b"  ").unwrap_err(),
            ApiError::BadRequest(_)
        ));
        assert!(
            parse_json::<Outer>(b"{\"items\":[")
                .unwrap_err()
                .to_string()
                .contains("EOF")
        );
    }

    #[test]
    fn content_type_rules() {
        let mut h = HeaderMap::new();
        assert!(check_json_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_json_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(matches!(
            check_json_content_type(&h),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}

/// Log output format: human-readable for terminals, JSON for Lambda and daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A log format other than `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log format {0:?}: expected text or json")]
pub struct UnknownLogFormat(pub String);

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;
    fn from_str(s: &str) -> Result<Self, UnknownLogFormat> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_string())),
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard output: the servers' habit (`skyport serve`, the Lambdas; Lambda captures both).
    Stdout,
    /// Standard error: for a command whose standard output is its answer (the edge agent's
    /// subcommands print results there).
    Stderr,
}

/// A global subscriber was already installed (a test, or an embedding program, got there
/// first); the first one stays in place.
#[derive(Debug, thiserror::Error)]
#[error("logging is already initialised: {0}")]
pub struct LogInitError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// The one log set-up of every Skyport program: `RUST_LOG` filters (in `EnvFilter` syntax),
/// `default_filter` when it is unset or invalid (`"info"`; the edge agent's
/// `"warn,skyport_edge=info"`), events without their target, as text or as flattened JSON.
/// A second call leaves the first subscriber in place and says so in its error, so callers
/// that may run twice (tests driving `main`) can ignore it.
pub fn init_tracing(
    format: LogFormat,
    default_filter: &str,
    output: LogOutput,
) -> Result<(), LogInitError> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let writer = match output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    match format {
        LogFormat::Json => b.json().flatten_event(true).try_init(),
        LogFormat::Text => b.try_init(),
    }
    .map_err(LogInitError)
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn log_formats_parse_and_name_the_bad_value() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let e = "xml".parse::<LogFormat>().unwrap_err();
        assert_eq!(e.to_string(), "log format \"xml\": expected text or json");
    }

    #[test]
    fn a_second_init_is_an_error_that_leaves_the_first_in_place() {
        // Whichever call wins the race with other tests, a later one must fail, not panic.
        let _first = init_tracing(LogFormat::Text, "warn", LogOutput::Stderr);
        assert!(init_tracing(LogFormat::Json, "info", LogOutput::Stdout).is_err());
    }
}
