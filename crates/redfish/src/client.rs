//! HTTP to one BMC, bounded in every direction: connect and request timeouts, a body cap, a
//! request budget, a memory budget (bodies being read and the fields kept from them, see
//! [`crate::budget`] and [`crate::fields`]), redirects only to the same host, links only within
//! `/redfish/v1`. Basic auth by default; a Redfish session when asked, always deleted afterwards
//! (BMCs cap sessions).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde_json::Value;

use crate::budget::{Exhausted, Held, MemoryBudget, Scope};
use crate::fields::{self, ParseError, Shape};
use crate::tls::{PIN_MISMATCH, TlsPolicy};

/// Credentials for one BMC. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to authenticate requests beyond the service root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HTTP Basic on every request: no session to leak, fastest for a short read-only crawl.
    #[default]
    Basic,
    /// `POST /SessionService/Sessions`, `X-Auth-Token`, and a `DELETE` of the session at the end.
    Session,
}

/// Limits that keep one bad BMC from costing more than its share.
#[derive(Clone, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Largest body read from a BMC; larger answers fail the resource.
    pub max_body: usize,
    /// Most requests one crawl may make (a loop of distinct links ends here).
    pub max_requests: usize,
    /// Most members read from one collection, across all its pages.
    pub max_members: usize,
    /// Most `Members@odata.nextLink` pages followed per collection.
    pub max_pages: usize,
    /// Most bytes one BMC's crawl may hold at once: the bodies being read (up to 3 at a time of
    /// `max_body` each) plus the fields kept from every document read, and, in a discovery pass,
    /// the copy its payload takes. More fails the BMC with a reason naming this budget.
    pub max_retained: usize,
    /// Most bytes a discovery pass (`skyport-edge`) holds for all its BMCs together: the crawls
    /// in flight and the results kept for its report. Crawls that would pass it fail with a
    /// reason naming it; results beyond half of it are queued but not kept in the report.
    pub max_pass_retained: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body: 4 << 20,
            max_requests: 2_000,
            max_members: 1_024,
            max_pages: 64,
            max_retained: 32 << 20,
            max_pass_retained: 1 << 30,
        }
    }
}

/// Why a request to a BMC failed. Each variant says which URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: TLS: {reason}")]
    Tls { url: String, reason: String },
    #[error("{url}: {PIN_MISMATCH}")]
    CertificateChanged { url: String },
    #[error("{url}: authentication refused (HTTP {status})")]
    Auth { url: String, status: u16 },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: HTTP {status}: {reason}")]
    Refused {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: not valid JSON: {reason}")]
    Json { url: String, reason: String },
    #[error("{url}: {reason}")]
    Link { url: String, reason: String },
    #[error("{url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("request budget of {limit} exhausted (at {url})")]
    Budget { url: String, limit: usize },
    #[error("{exhausted} (at {url})")]
    Memory { url: String, exhausted: Exhausted },
    #[error("{url}: {reason}")]
    Other { url: String, reason: String },
}

impl FetchError {
    /// A dead link on an otherwise working BMC (404, 5xx on one resource), as opposed to a BMC
    /// that cannot be crawled at all.
    pub fn is_resource_level(&self) -> bool {
        matches!(
            self,
            FetchError::Status { .. }
                | FetchError::Json { .. }
                | FetchError::TooLarge { .. }
                | FetchError::Link { .. }
                | FetchError::Redirect { .. }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("BMC address {0:?} is not a valid URL")]
    BadUrl(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("building HTTP client for {bmc}: {reason}")]
    Build { bmc: String, reason: String },
}

/// A session we opened and must delete.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    location: Option<String>,
}

/// A client for one BMC (`scheme://host:port`).
#[derive(Debug)]
pub struct BmcClient {
    http: reqwest::Client,
    base: Url,
    creds: Option<Credentials>,
    mode: AuthMode,
    session: Mutex<Option<Session>>,
    limits: Limits,
    requests: AtomicUsize,
    memory: Arc<MemoryBudget>,
}

impl BmcClient {
    /// `base` is `https://10.0.0.5:443` (or a bare host, which means https:443).
    pub fn new(
        base: &str,
        tls: &TlsPolicy,
        creds: Option<Credentials>,
        mode: AuthMode,
        limits: Limits,
    ) -> Result<Self, ClientError> {
        let with_scheme = if base.contains("://") {
            base.to_string()
        } else {
            format!("https://{base}")
        };
        let base = Url::parse(&with_scheme).map_err(|_| ClientError::BadUrl(base.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ClientError::BadUrl(with_scheme));
        }
        let key = host_port(&base);
        let origin = base.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("more than 3 redirects")
            } else if attempt.url().host_str() != origin.host_str()
                || attempt.url().port_or_known_default() != origin.port_or_known_default()
            {
                attempt.error("redirect to another host")
            } else {
                attempt.follow()
            }
        });
        let builder = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .redirect(redirect)
            .pool_max_idle_per_host(4)
            .user_agent(concat!("skyport-edge/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        // Configured for http too: reqwest insists on a TLS backend either way.
        let builder = builder.tls_backend_preconfigured(tls.client_config(&key)?);
        let http = builder.build().map_err(|e| ClientError::Build {
            bmc: key.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            http,
            base,
            creds,
            mode,
            session: Mutex::new(None),
            memory: MemoryBudget::new(Scope::Bmc, limits.max_retained),
            limits,
            requests: AtomicUsize::new(0),
        })
    }

    /// Makes this BMC's memory budget count against a discovery pass's too. Call it before any
    /// request (charges made before are not moved).
    pub fn within_pass(mut self, pass: &Arc<MemoryBudget>) -> Self {
        self.memory = pass.child(Scope::Bmc, self.limits.max_retained);
        self
    }

    /// This BMC's memory account: what it holds now, its peak, its limit.
    pub fn memory(&self) -> &Arc<MemoryBudget> {
        &self.memory
    }

    /// `host:port` of this BMC, the key for pins and credentials.
    pub fn key(&self) -> String {
        host_port(&self.base)
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Requests made so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Resolves a link from a Redfish document to a path on this BMC, refusing other hosts and
    /// anything outside `/redfish/v1`. Trailing slashes and fragments are dropped so the same
    /// resource has one name.
    pub fn resolve(&self, link: &str) -> Result<String, FetchError> {
        let url = self.base.join(link).map_err(|_| FetchError::Link {
            url: link.to_string(),
            reason: "not a valid link".into(),
        })?;
        if url.host_str() != self.base.host_str()
            || url.port_or_known_default() != self.base.port_or_known_default()
            || url.scheme() != self.base.scheme()
        {
            return Err(FetchError::Link {
                url: link.to_string(),
                reason: "link to another host".into(),
            });
        }
        let path = normalize_path(url.path());
        if path != "/redfish/v1" && !path.starts_with("/redfish/v1/") {
            return Err(FetchError::Link {
                url: link.to_string(),
                reason: "link outside /redfish/v1".into(),
            });
        }
        Ok(match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    fn count(&self, url: &str) -> Result<(), FetchError> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if n >= self.limits.max_requests {
            return Err(FetchError::Budget {
                url: url.to_string(),
                limit: self.limits.max_requests,
            });
        }
        Ok(())
    }

    /// The unauthenticated probe: `GET /redfish/v1/` must answer 200 with a JSON object. Only the
    /// fields the crawl reads are kept ([`fields::ROOT`]).
    pub async fn service_root(&self) -> Result<Value, FetchError> {
        let url = self.url("/redfish/v1/");
        self.count(&url)?;
        let resp = self
            .http
            .get(&url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| classify(&url, &e))?;
        self.json(&url, resp, &fields::ROOT).await
    }

    /// Authenticated GET of a path already resolved by [`BmcClient::resolve`], keeping the fields
    /// `shape` lists (see [`crate::fields`]).
    pub async fn get(&self, path: &str, shape: &'static Shape) -> Result<Value, FetchError> {
        let url = self.url(path);
        self.count(&url)?;
        let mut req = self
            .http
            .get(&url)
            .header(header::ACCEPT, "application/json");
        req = self.authorize(req);
        let resp = req.send().await.map_err(|e| classify(&url, &e))?;
        self.json(&url, resp, shape).await
    }

    /// An authenticated `POST` (an action) or `PATCH` (a setting) of `body` to a path already
    /// resolved by [`BmcClient::resolve`]. The answer's body is read under the same cap and
    /// budget as any other, and dropped: what an action did is read back with a GET, because
    /// BMCs answer actions with 200, 202 (a task) or 204 and bodies of every shape.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<(), FetchError> {
        let url = self.url(path);
        self.count(&url)?;
        let req = self
            .http
            .request(method, &url)
            .header(header::ACCEPT, "application/json")
            .json(body);
        let resp = self
            .authorize(req)
            .send()
            .await
            .map_err(|e| classify(&url, &e))?;
        if let Err(e) = check_status(&url, &resp) {
            return Err(match e {
                FetchError::Status { url, status } => {
                    // The BMC's own message says why (a reset type it refuses, a setting that
                    // is read-only); keep its first message, bounded.
                    let reason = match self.body(&url, resp).await {
                        Ok((b, _held)) => redfish_message(&b),
                        Err(_) => None,
                    };
                    match reason {
                        Some(reason) => FetchError::Refused {
                            url,
                            status,
                            reason,
                        },
                        None => FetchError::Status { url, status },
                    }
                }
                other => other,
            });
        }
        let _unread = self.body(&url, resp).await?;
        Ok(())
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let token = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.token.clone());
        match (token, &self.creds) {
            (Some(t), _) => req.header("X-Auth-Token", t),
            (None, Some(c)) => req.basic_auth(&c.username, Some(&c.password)),
            (None, None) => req,
        }
    }

    async fn json(
        &self,
        url: &str,
        resp: reqwest::Response,
        shape: &'static Shape,
    ) -> Result<Value, FetchError> {
        check_status(url, &resp)?;
        let (body, held) = self.body(url, resp).await?;
        let v = self.document(url, &body, shape)?;
        drop((body, held));
        match v {
            Some(v) if v.is_object() => Ok(v),
            _ => Err(FetchError::Json {
                url: url.to_string(),
                reason: "expected a JSON object".into(),
            }),
        }
    }

    /// Reads a body up to `max_body`, charging this BMC's memory budget for the buffer (before it
    /// grows) for as long as the returned [`Held`] lives.
    async fn body(
        &self,
        url: &str,
        mut resp: reqwest::Response,
    ) -> Result<(Vec<u8>, Held<'_>), FetchError> {
        let limit = self.limits.max_body;
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        let memory = |exhausted| FetchError::Memory {
            url: url.to_string(),
            exhausted,
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut held = Held::new(&self.memory);
        let mut body = Vec::new();
        if let Some(n) = resp.content_length() {
            // Checked against `limit` above, so it fits in usize.
            let n = n as usize;
            held.grow(n).map_err(memory)?;
            body.reserve_exact(n);
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(url, &e))? {
            let need = body.len() + chunk.len();
            if need > limit {
                return Err(too_large());
            }
            if need > body.capacity() {
                let target = need.max(body.capacity() * 2).min(limit);
                held.grow(target - body.capacity()).map_err(memory)?;
                body.reserve_exact(target - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, held))
    }

    /// Parses a body keeping `shape`'s fields; `None` when it is not of the shape's kind.
    fn document(
        &self,
        url: &str,
        body: &[u8],
        shape: &'static Shape,
    ) -> Result<Option<Value>, FetchError> {
        // Only the shape's fields are built, so nesting is bounded by the shape; the rest is
        // skipped by the tokenizer without recursion.
        fields::parse(body, shape, &self.memory).map_err(|e| match e {
            ParseError::Memory(exhausted) => FetchError::Memory {
                url: url.to_string(),
                exhausted,
            },
            ParseError::Json(e) => FetchError::Json {
                url: url.to_string(),
                reason: e.to_string(),
            },
        })
    }

    /// Opens a Redfish session when the mode asks for one. Some BMCs (CSM RIE) want Basic auth on
    /// the session POST itself, so it is sent along.
    pub async fn login(&self, sessions_path: Option<&str>) -> Result<(), FetchError> {
        if self.mode != AuthMode::Session {
            return Ok(());
        }
        let Some(creds) = &self.creds else {
            return Ok(());
        };
        let path = match sessions_path {
            Some(p) => self.resolve(p)?,
            None => "/redfish/v1/SessionService/Sessions".to_string(),
        };
        let url = self.url(&path);
        self.count(&url)?;
        let resp = self
            .http
            .post(&url)
            .basic_auth(&creds.username, Some(&creds.password))
            .json(&serde_json::json!({"UserName": creds.username, "Password": creds.password}))
            .send()
            .await
            .map_err(|e| classify(&url, &e))?;
        check_status(&url, &resp)?;
        let token = resp
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| FetchError::Other {
                url: url.clone(),
                reason: "session created without an X-Auth-Token".into(),
            })?;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Without a Location (CSM RIE sends none) the session's own URI is in the body, read
        // under the same cap and budget as every other body. A body that is not JSON only costs
        // the logout (a warning); one that is too large, or never ends, fails the login.
        let location = match location {
            Some(l) => Some(l),
            None => {
                let (body, _held) = self.body(&url, resp).await?;
                match self.document(&url, &body, &fields::SESSION) {
                    Ok(v) => v.as_ref().and_then(crate::res::odata_id),
                    Err(e @ FetchError::Memory { .. }) => return Err(e),
                    Err(_) => None,
                }
            }
        };
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(Session { token, location });
        Ok(())
    }

    /// Deletes the session if one is open. Safe to call more than once.
    pub async fn logout(&self) -> Result<(), FetchError> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(s) = session else {
            return Ok(());
        };
        let Some(loc) = s.location else {
            return Err(FetchError::Other {
                url: self.base.to_string(),
                reason: "session has no URI to delete; it will time out on the BMC".into(),
            });
        };
        let path = self.resolve(&loc)?;
        let url = self.url(&path);
        let resp = self
            .http
            .delete(&url)
            .header("X-Auth-Token", &s.token)
            .send()
            .await
            .map_err(|e| classify(&url, &e))?;
        // Some BMCs answer the logout itself with 401 once the token is gone; that is done too.
        if resp.status().is_success() || resp.status() == StatusCode::UNAUTHORIZED {
            Ok(())
        } else {
            Err(FetchError::Status {
                url,
                status: resp.status().as_u16(),
            })
        }
    }
}

fn check_status(url: &str, resp: &reqwest::Response) -> Result<(), FetchError> {
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(FetchError::Auth {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// The first message of a Redfish error body (`error.@Message.ExtendedInfo[0].Message`, else
/// `error.message`), at most 200 characters; `None` when the body says nothing readable.
fn redfish_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let m = e
        .get("@Message.ExtendedInfo")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("Message"))
        .or_else(|| e.get("message"))
        .and_then(Value::as_str)?;
    let m: String = m.chars().filter(|c| !c.is_control()).take(200).collect();
    (!m.trim().is_empty()).then_some(m)
}

/// The `host:port` key (pins, credentials) of the BMC at `url`, as [`BmcClient::key`] gives it.
pub fn bmc_key(url: &str) -> Option<String> {
    Url::parse(url).ok().map(|u| host_port(&u))
}

fn host_port(u: &Url) -> String {
    let host = u.host_str().unwrap_or_default();
    let port = u.port_or_known_default().unwrap_or(443);
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `/redfish/v1/Systems/1/` → `/redfish/v1/Systems/1`; `//` collapsed.
pub fn normalize_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for seg in p.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() { "/".into() } else { out }
}

fn classify(url: &str, e: &reqwest::Error) -> FetchError {
    let url = url.to_string();
    let chain = error_chain(e);
    if chain.contains(PIN_MISMATCH) {
        return FetchError::CertificateChanged { url };
    }
    if e.is_timeout() {
        return FetchError::Timeout { url };
    }
    if e.is_redirect() {
        return FetchError::Redirect { url, reason: chain };
    }
    if chain.contains("certificate") || chain.contains("TLS") || chain.contains("tls") {
        return FetchError::Tls { url, reason: chain };
    }
    if e.is_connect() {
        return FetchError::Connect { url, reason: chain };
    }
    FetchError::Other { url, reason: chain }
}

/// An error and its sources on one line, without repeating a source its parent already quotes.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> BmcClient {
        BmcClient::new(
            base,
            &TlsPolicy::Insecure,
            None,
            AuthMode::Basic,
            Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn links_stay_on_the_bmc() {
        let c = client("https://10.0.0.5:8443");
        assert_eq!(
            c.resolve("/redfish/v1/Systems/1/").unwrap(),
            "/redfish/v1/Systems/1"
        );
        assert_eq!(
            c.resolve("https://10.0.0.5:8443/redfish/v1/Chassis")
                .unwrap(),
            "/redfish/v1/Chassis"
        );
        assert_eq!(
            c.resolve("/redfish/v1/Systems?$skip=2").unwrap(),
            "/redfish/v1/Systems?$skip=2"
        );
        assert!(c.resolve("https://evil.example/redfish/v1/").is_err());
        assert!(c.resolve("https://10.0.0.5:443/redfish/v1/").is_err());
        assert!(c.resolve("/etc/passwd").is_err());
        assert!(c.resolve("/redfish/v1/../../etc").is_err());
    }

    #[test]
    fn bare_hosts_mean_https_443_and_ipv6_keys_are_bracketed() {
        assert_eq!(client("10.0.0.5").key(), "10.0.0.5:443");
        assert_eq!(client("https://[fd00::5]:8443").key(), "[fd00::5]:8443");
        assert!(
            BmcClient::new(
                "ftp://x",
                &TlsPolicy::Insecure,
                None,
                AuthMode::Basic,
                Limits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn passwords_never_print() {
        let c = Credentials {
            username: "root".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
