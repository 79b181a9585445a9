//! A client for any Skyport API, local or cloud: one base URL, an optional bearer token, JSON
//! in and out. Every failure names the method and URL tried; an HTTP error carries the server's
//! RFC 7807 problem (its `detail` is what an administrator needs to read).

pub mod token;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

pub use token::{ClientCredentials, TokenError, TokenSource};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("building the HTTP client for {base}: {reason}")]
    Build { base: String, reason: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{method} {url}: cannot reach the server: {reason}")]
    Unreachable {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: HTTP {status}: {detail}")]
    Http {
        method: Method,
        url: String,
        status: u16,
        detail: String,
        /// The problem document, when the server sent one.
        problem: Option<Box<Value>>,
    },
    #[error("{method} {url}: the answer is not JSON: {reason}")]
    Decode {
        method: Method,
        url: String,
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status, for errors the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A response body, as the route answered it.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    Text(String),
}

/// One client for every Skyport API caller: the CLI with an admin's token, the edge agent
/// with its site's client credentials. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Arc<TokenSource>,
}

/// Walks `source()` so transport errors say what actually failed (refused, DNS, TLS).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl Client {
    /// A client of the API at `base` (`https://…` or `http://127.0.0.1:27779`, no service
    /// prefix), with `token` (`Some(String)`, `None` or any [`TokenSource`]).
    pub fn new(base: &str, token: impl Into<TokenSource>) -> Result<Self, ClientError> {
        Self::with_user_agent(base, token, concat!("skyport/", env!("CARGO_PKG_VERSION")))
    }

    /// [`Self::new`], naming the caller in `User-Agent` (`skyport-edge/…`). Trusts the
    /// system's certificate store (honouring `SSL_CERT_FILE`); no total timeout, so an image
    /// download runs as long as bytes keep coming (calls set their own with
    /// `RequestBuilder::timeout`).
    pub fn with_user_agent(
        base: &str,
        token: impl Into<TokenSource>,
        user_agent: &str,
    ) -> Result<Self, ClientError> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(base));
        }
        let build = |reason: String| ClientError::Build {
            base: base.clone(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        // An empty store only matters for https.
        for cert in rustls_native_certs::load_native_certs().certs {
            if roots.add(cert).is_err() {
                tracing::debug!("skipping an unusable system CA certificate");
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| build(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .user_agent(user_agent)
            .build()
            .map_err(|e| build(chain(&e)))?;
        Ok(Client {
            http,
            base,
            token: Arc::new(token.into()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The plain HTTP client, for presigned upload URLs (which must not carry our token).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request `build` makes (for `url`, which names it in errors) with the bearer
    /// token; on 401 fetches a new token and sends once more. Any answer is `Ok`: the status
    /// is the caller's to judge.
    pub async fn execute(
        &self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let once = || async {
            let mut req = build(&self.http);
            if let Some(t) = self.token.token().await? {
                req = req.bearer_auth(t);
            }
            req.send().await.map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: chain(&e),
            })
        };
        let resp = once().await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            // A token revoked or expired early: fetch a fresh one once before giving up.
            self.token.invalidate().await;
            return once().await;
        }
        Ok(resp)
    }

    /// Sends a request to `path` (with `query` pairs and an optional JSON body) and returns
    /// the body; any status outside 2xx is an error carrying the server's problem detail.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Body, ClientError> {
        let url = self.url(path);
        let resp = self
            .execute(&url, |h| {
                let req = h.request(method.clone(), &url).query(query);
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await
            .map_err(|e| match e {
                ClientError::Transport { reason, .. } => ClientError::Unreachable {
                    method: method.clone(),
                    url: url.clone(),
                    reason,
                },
                other => other,
            })?;
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.map_err(|e| ClientError::Unreachable {
            method: method.clone(),
            url: url.clone(),
            reason: chain(&e),
        })?;
        if !status.is_success() {
            let problem = serde_json::from_str::<Value>(&text).ok();
            let detail = problem
                .as_ref()
                .and_then(detail_of)
                .unwrap_or_else(|| text.trim().chars().take(300).collect());
            return Err(ClientError::Http {
                method,
                url,
                status: status.as_u16(),
                detail,
                problem: problem.map(Box::new),
            });
        }
        if text.trim().is_empty() {
            return Ok(Body::Empty);
        }
        if ctype.contains("json") {
            return serde_json::from_str(&text)
                .map(Body::Json)
                .map_err(|e| ClientError::Decode {
                    method,
                    url,
                    reason: e.to_string(),
                });
        }
        Ok(Body::Text(text))
    }

    /// GET a JSON document.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        let body = self.request(Method::GET, path, query, None).await?;
        match body {
            Body::Json(v) => Ok(v),
            Body::Empty => Ok(Value::Null),
            Body::Text(t) => serde_json::from_str(&t).map_err(|e| ClientError::Decode {
                method: Method::GET,
                url: self.url(path),
                reason: e.to_string(),
            }),
        }
    }

    /// GET a text document (a boot script).
    pub async fn get_text(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<String, ClientError> {
        Ok(match self.request(Method::GET, path, query, None).await? {
            Body::Text(t) => t,
            Body::Json(v) => v.to_string(),
            Body::Empty => String::new(),
        })
    }

    /// POST/PUT/PATCH/DELETE with an optional JSON body; the answer, if it had one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        match self.request(method, path, &[], body).await? {
            Body::Json(v) => Ok(v),
            Body::Empty => Ok(Value::Null),
            Body::Text(t) => Ok(Value::String(t)),
        }
    }
}

/// A problem's `detail`, with Skyport's `context` member after it when there is one (the
/// detail is upstream's fixed text; the context says which entry or value).
fn detail_of(p: &Value) -> Option<String> {
    let detail = p.get("detail").and_then(Value::as_str)?;
    Some(match p.get("context").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => format!("{detail} ({c})"),
        _ => detail.to_string(),
    })
}

/// The `detail` of an RFC 7807 answer (and its `context`), or the start of whatever else the
/// body was.
pub async fn problem_detail(resp: reqwest::Response) -> String {
    let body = resp.text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| detail_of(&v))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Percent-encodes one path segment (an id that may hold `#`, `/` or spaces).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        assert!(Client::new("ftp://x", None).is_err());
        let c = Client::new("http://127.0.0.1:1/", Some(" ".into())).ok();
        assert_eq!(
            c.map(|c| c.url("/hsm/v2")),
            Some("http://127.0.0.1:1/hsm/v2".into())
        );
        assert_eq!(segment("x1000c0s0b0n0"), "x1000c0s0b0n0");
        assert_eq!(segment("a/b c#d"), "a%2Fb%20c%23d");
    }

    #[tokio::test]
    async fn unreachable_names_the_url() {
        let Ok(c) = Client::new("http://127.0.0.1:9", None) else {
            panic!("client");
        };
        let e = c.get_json("/hsm/v2/State/Components", &[]).await;
        let Err(e) = e else { panic!("port 9 answered") };
        assert!(
            e.to_string()
                .contains("GET http://127.0.0.1:9/hsm/v2/State/Components"),
            "{e}"
        );
        assert_eq!(e.status(), None);
    }
}
