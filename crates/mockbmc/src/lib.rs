//! A fleet of mock BMCs. Each serves a Redfish mockup tree over HTTPS (one self-signed
//! certificate per fleet unless told otherwise) or HTTP, requires Basic auth or a session token
//! beyond the service root, and can be told to misbehave: added latency, 500s, hangs, malformed
//! JSON, a session cap, `Members@odata.nextLink` paging, any canned answer for a path, or
//! hostile answers: a collection of many huge members ([`HugeMembers`]) and a session login
//! whose body never ends.
//!
//! Systems have state that changes ([`power`]): `ComputerSystem.Reset` moves `PowerState`
//! (after [`Faults::power_delay`], passing through `PoweringOn`/`PoweringOff`), a PATCH of
//! `Boot` sets the override, and both refuse values the system does not list, as a real BMC
//! answers them (400 with a Redfish message). Every accepted reset is counted per system, so a
//! test can tell one reset from two.
//!
//! Bind addresses are the caller's choice; all of 127.0.0.0/8 is loopback on Linux, so a
//! thousand BMCs can share one port on 127.0.1.0/22.

pub mod power;
pub mod synthetic;
pub mod tree;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use tree::Tree;

/// A canned answer for one path.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// How a BMC misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added before every answer.
    pub latency: Duration,
    /// Accepts connections (and TLS) but never answers a request.
    pub hang: bool,
    /// Every n-th request (counting from 1) gets a 500; 0 = never.
    pub error_every: u64,
    /// Every resource except the service root is truncated, invalid JSON.
    pub malformed: bool,
    /// Most concurrent sessions; further logins get 503 (iDRAC's RAC0218). 0 = no cap.
    pub session_cap: usize,
    /// Collections longer than this are paged with `Members@odata.nextLink` (`?$skip=`).
    pub page_size: Option<usize>,
    /// Answers for exact paths (with query), served instead of the tree.
    pub canned: HashMap<String, Canned>,
    /// A collection (and its members) served instead of the tree's.
    pub huge_members: Option<HugeMembers>,
    /// A session login answers 201 with a token, no `Location`, and a chunked body that never
    /// ends (emulates the hostile BMC of issue 12: 4.8 GB read in one 10 s timeout).
    pub endless_login: bool,
    /// How long a reset takes to reach its state; meanwhile the system reports `PoweringOn` or
    /// `PoweringOff` (a real node takes seconds to minutes).
    pub power_delay: Duration,
    /// The host ignores `GracefulShutdown` and `GracefulRestart` (an OS that is hung, or has no
    /// ACPI handler): only forced resets move it.
    pub ignore_graceful: bool,
}

/// A hostile collection, emulating the BMC of issue 12 that exhausted the agent: `collection`
/// lists `count` members (`{collection}/0`, …), and every member answers the same `body`, built
/// once and shared, so the mock itself stays small however many members are read.
#[derive(Clone, Debug)]
pub struct HugeMembers {
    pub collection: String,
    pub count: usize,
    pub body: Bytes,
}

impl HugeMembers {
    /// Members of about `size` bytes of small numbers, in a field no crawler reads (`Oem`), as
    /// the BMC in the issue sent (its parsed tree is ~30 times the text).
    pub fn numbers(collection: &str, count: usize, size: usize) -> Self {
        Self::filled(
            collection,
            count,
            size,
            r#"{"Id":"filler","Oem":{"Filler":["#,
            "7,",
            "7]}}",
        )
    }

    /// Members of about `size` bytes of short strings in a field the crawl must keep (a system's
    /// allowed reset types), so only a memory budget can stop them.
    pub fn strings(collection: &str, count: usize, size: usize) -> Self {
        Self::filled(
            collection,
            count,
            size,
            r##"{"Id":"filler","Actions":{"#ComputerSystem.Reset":{"ResetType@Redfish.AllowableValues":["##,
            r#""On","#,
            r#""On"]}}}"#,
        )
    }

    fn filled(
        collection: &str,
        count: usize,
        size: usize,
        head: &str,
        item: &str,
        tail: &str,
    ) -> Self {
        let n = size.saturating_sub(head.len() + tail.len()) / item.len();
        let mut body = String::with_capacity(head.len() + n * item.len() + tail.len());
        body.push_str(head);
        for _ in 0..n {
            body.push_str(item);
        }
        body.push_str(tail);
        Self {
            collection: collection.trim_end_matches('/').to_string(),
            count,
            body: Bytes::from(body),
        }
    }

    fn listing(&self) -> String {
        let members: Vec<Value> = (0..self.count)
            .map(|i| json!({"@odata.id": format!("{}/{i}", self.collection)}))
            .collect();
        json!({
            "@odata.id": self.collection,
            "Members@odata.count": self.count,
            "Members": members,
        })
        .to_string()
    }

    /// Whether `path` is one of the members.
    fn member(&self, path: &str) -> bool {
        path.strip_prefix(&self.collection)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < self.count)
    }
}

/// A response body: a whole one, or one that never ends.
pub enum MockBody {
    Full(Full<Bytes>),
    /// `head`, then `chunk` forever (sent chunked: there is no length).
    Endless {
        head: Option<Bytes>,
        chunk: Bytes,
    },
}

impl hyper::body::Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(f) => Pin::new(f).poll_frame(cx),
            MockBody::Endless { head, chunk } => {
                let data = head.take().unwrap_or_else(|| chunk.clone());
                Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(f) => f.is_end_stream(),
            MockBody::Endless { .. } => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            MockBody::Full(f) => f.size_hint(),
            MockBody::Endless { .. } => hyper::body::SizeHint::default(),
        }
    }
}

/// One BMC of the fleet.
#[derive(Clone, Debug)]
pub struct BmcSpec {
    pub addr: SocketAddr,
    pub tree: Arc<Tree>,
    /// Gives MACs a per-BMC twist so many BMCs from one tree do not collide.
    pub uniquify: Option<u32>,
    /// The IP the mockup's BMC NIC reports, replaced by the address served on, so the BMC
    /// reports the address it is reached at, as a real one does.
    pub rewrite_ip: Option<String>,
    pub faults: Faults,
}

impl BmcSpec {
    pub fn new(addr: SocketAddr, tree: Arc<Tree>) -> Self {
        Self {
            addr,
            tree,
            uniquify: None,
            rewrite_ip: None,
            faults: Faults::default(),
        }
    }
}

/// What the fleet serves with.
#[derive(Clone)]
pub struct FleetOptions {
    pub username: String,
    pub password: String,
    /// `None` = plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A self-signed certificate for `127.0.0.1`, `localhost` and any loopback BMC.
pub struct SelfSigned {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn self_signed() -> anyhow::Result<SelfSigned> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names)?;
    let cert_der = ck.cert.der().to_vec();
    let cert_pem = ck.cert.pem();
    let config = server_config(vec![cert_der.clone().into()], &ck.signing_key)?;
    Ok(SelfSigned {
        cert_der,
        cert_pem,
        config,
    })
}

fn server_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: &rcgen::KeyPair,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A site CA and a BMC certificate it signed (for `127.0.0.1`, `localhost` and the loopback BMC
/// addresses given), as a site with its own PKI would have.
pub struct SiteCa {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn site_ca(extra_names: &[String]) -> anyhow::Result<SiteCa> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Skyport test site CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(extra_names.iter().cloned());
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(names)?.signed_by(&leaf_key, &issuer)?;
    let config = server_config(vec![leaf.der().clone(), ca_cert.der().clone()], &leaf_key)?;
    Ok(SiteCa {
        ca_pem: ca_cert.pem(),
        config,
    })
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    /// Every accepted reset, as `<system path> <ResetType>`, in order.
    pub resets: Mutex<Vec<String>>,
    pub sessions_created: AtomicU64,
    pub sessions_deleted: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub unauthorized: AtomicU64,
    pub connections: AtomicUsize,
}

struct Bmc {
    spec: BmcSpec,
    user: String,
    password: String,
    sessions: Mutex<HashSet<String>>,
    next_session: AtomicU64,
    stats: Arc<Stats>,
    systems: power::Systems,
}

/// A running fleet; dropping it stops every BMC.
pub struct Fleet {
    pub bmcs: Vec<RunningBmc>,
}

pub struct RunningBmc {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl RunningBmc {
    pub fn stop(&self) {
        self.task.abort();
    }
    pub fn active_sessions(&self) -> u64 {
        self.stats.sessions_created.load(Ordering::Relaxed)
            - self.stats.sessions_deleted.load(Ordering::Relaxed)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for b in &self.bmcs {
            b.task.abort();
        }
    }
}

impl Fleet {
    /// Binds every BMC (port 0 picks a free port) and starts serving.
    pub async fn start(specs: Vec<BmcSpec>, opts: &FleetOptions) -> anyhow::Result<Fleet> {
        let mut bmcs = Vec::with_capacity(specs.len());
        for spec in specs {
            let listener = TcpListener::bind(spec.addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding mock BMC on {}: {e}", spec.addr))?;
            let addr = listener.local_addr()?;
            let stats = Arc::new(Stats::default());
            let bmc = Arc::new(Bmc {
                spec: BmcSpec { addr, ..spec },
                user: opts.username.clone(),
                password: opts.password.clone(),
                sessions: Mutex::new(HashSet::new()),
                next_session: AtomicU64::new(1),
                stats: stats.clone(),
                systems: power::Systems::default(),
            });
            let tls = opts.tls.clone().map(tokio_rustls::TlsAcceptor::from);
            let task = tokio::spawn(accept_loop(listener, bmc, tls));
            bmcs.push(RunningBmc { addr, stats, task });
        }
        Ok(Fleet { bmcs })
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.bmcs.iter().map(|b| b.addr).collect()
    }
}

async fn accept_loop(listener: TcpListener, bmc: Arc<Bmc>, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        bmc.stats.connections.fetch_add(1, Ordering::Relaxed);
        let bmc = bmc.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let bmc = bmc.clone();
                async move { Ok::<_, Infallible>(handle(&bmc, req).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(stream).await {
                        // Connection errors (client went away) end this connection only.
                        let _ = http.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

fn respond(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<MockBody> {
    respond_with(status, headers, MockBody::Full(Full::new(body.into())))
}

fn respond_with(
    status: StatusCode,
    headers: &[(&str, String)],
    body: MockBody,
) -> Response<MockBody> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(body)
        .unwrap_or_else(|_| Response::new(MockBody::Full(Full::new(Bytes::new()))))
}

fn error(status: StatusCode, msg: &str) -> Response<MockBody> {
    let body = json!({"error": {"code": "Base.1.8.GeneralError", "message": msg}});
    respond(
        status,
        &[("content-type", "application/json".into())],
        body.to_string(),
    )
}

/// A refusal in Redfish's error shape, with the message in `@Message.ExtendedInfo` as BMCs put it.
fn refusal(status: StatusCode, msg: &str) -> Response<MockBody> {
    let body = json!({"error": {
        "code": "Base.1.8.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.ActionParameterNotSupported",
                                   "Message": msg}],
    }});
    respond(
        status,
        &[("content-type", "application/json".into())],
        body.to_string(),
    )
}

impl Bmc {
    fn authorized(&self, req: &Request<Incoming>) -> bool {
        if let Some(t) = req
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
        {
            return self
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(t);
        }
        self.basic_ok(req)
    }

    fn basic_ok(&self, req: &Request<Incoming>) -> bool {
        let Some(v) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(b64) = v.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        raw == format!("{}:{}", self.user, self.password).as_bytes()
    }

    /// Serialises a resource with this BMC's rewrites.
    fn render(&self, v: &Value) -> String {
        let mut s = v.to_string();
        if let Some(from) = &self.spec.rewrite_ip {
            s = s.replace(from.as_str(), &self.spec.addr.ip().to_string());
        }
        if let Some(i) = self.spec.uniquify {
            s = tree::uniquify_macs(&s, i);
        }
        s
    }
}

fn normalize(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    out
}

fn skip_param(query: Option<&str>) -> usize {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "$skip" || k == "%24skip").then(|| v.parse().ok())?
        })
        .unwrap_or(0)
}

async fn handle(bmc: &Bmc, req: Request<Incoming>) -> Response<MockBody> {
    let n = bmc.stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let f = &bmc.spec.faults;
    if f.hang {
        std::future::pending::<()>().await;
    }
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    let path = normalize(req.uri().path());
    let full = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    if let Some(c) = f.canned.get(&full).or_else(|| f.canned.get(&path)) {
        let headers: Vec<(&str, String)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        return respond(
            StatusCode::from_u16(c.status).unwrap_or(StatusCode::OK),
            &headers,
            c.body.clone(),
        );
    }
    if f.error_every > 0 && n.is_multiple_of(f.error_every) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure");
    }
    let open = matches!(
        path.as_str(),
        "/redfish" | "/redfish/v1" | "/redfish/v1/odata" | "/redfish/v1/$metadata"
    );
    let sessions = "/redfish/v1/SessionService/Sessions";
    if req.method() == Method::POST && path == sessions {
        return login(bmc, req).await;
    }
    if !open && !bmc.authorized(&req) {
        bmc.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        return respond(
            StatusCode::UNAUTHORIZED,
            &[
                ("www-authenticate", "Basic realm=\"Redfish\"".into()),
                ("content-type", "application/json".into()),
            ],
            json!({"error": {"message": "authentication required"}}).to_string(),
        );
    }
    if req.method() == Method::DELETE
        && let Some(id) = path.strip_prefix(&format!("{sessions}/"))
    {
        let token = req
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut s = bmc.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // The token names the session; only its own session may be deleted with it.
        let owned = token.ends_with(&format!("-{id}")) && s.remove(&token);
        drop(s);
        if owned {
            bmc.stats.sessions_deleted.fetch_add(1, Ordering::Relaxed);
            return respond(StatusCode::NO_CONTENT, &[], Bytes::new());
        }
        return error(StatusCode::NOT_FOUND, "no such session");
    }
    if req.method() == Method::POST || req.method() == Method::PATCH {
        let method = req.method().clone();
        let Ok(body) = req.into_body().collect().await else {
            return error(StatusCode::BAD_REQUEST, "unreadable body");
        };
        let body: Value = match serde_json::from_slice(&body.to_bytes()) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "body is not JSON"),
        };
        let answer = if method == Method::POST {
            bmc.systems
                .reset(&bmc.spec.tree, &path, &body, f, &bmc.stats)
        } else {
            bmc.systems.patch(&bmc.spec.tree, &path, &body)
        };
        return match answer {
            Ok(()) => respond(StatusCode::NO_CONTENT, &[], Bytes::new()),
            Err((status, msg)) => refusal(status, &msg),
        };
    }
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "read-only mock");
    }
    if let Some(h) = &f.huge_members {
        let json = [("content-type", "application/json".to_string())];
        if path == h.collection {
            return respond(StatusCode::OK, &json, h.listing());
        }
        if h.member(&path) {
            return respond(StatusCode::OK, &json, h.body.clone());
        }
    }
    let Some(doc) = bmc.spec.tree.get(&path) else {
        return error(StatusCode::NOT_FOUND, "resource not found");
    };
    let mut doc = doc.clone();
    bmc.systems.overlay(&path, &mut doc);
    if let (Some(page), Some(Value::Array(members))) = (f.page_size, doc.get("Members").cloned())
        && members.len() > page
    {
        let skip = skip_param(req.uri().query());
        let end = (skip + page).min(members.len());
        let slice: Vec<Value> = members.get(skip..end).unwrap_or_default().to_vec();
        if let Some(o) = doc.as_object_mut() {
            o.insert("Members".into(), Value::Array(slice));
            if end < members.len() {
                o.insert(
                    "Members@odata.nextLink".into(),
                    json!(format!("{path}?$skip={end}")),
                );
            }
        }
    }
    let mut body = bmc.render(&doc);
    if f.malformed && !open {
        body.truncate(body.len() / 2);
    }
    respond(
        StatusCode::OK,
        &[("content-type", "application/json".into())],
        body,
    )
}

async fn login(bmc: &Bmc, req: Request<Incoming>) -> Response<MockBody> {
    let basic = bmc.basic_ok(&req);
    let Ok(body) = req.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let v: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    let creds_ok = v.get("UserName").and_then(Value::as_str) == Some(bmc.user.as_str())
        && v.get("Password").and_then(Value::as_str) == Some(bmc.password.as_str());
    if !creds_ok && !basic {
        bmc.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::UNAUTHORIZED, "bad credentials");
    }
    let cap = bmc.spec.faults.session_cap;
    let mut s = bmc.sessions.lock().unwrap_or_else(|p| p.into_inner());
    if cap > 0 && s.len() >= cap {
        drop(s);
        bmc.stats.sessions_refused.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "RAC0218: The maximum number of user sessions is reached.",
        );
    }
    let id = bmc.next_session.fetch_add(1, Ordering::Relaxed);
    let token = format!("tok{:016x}-{id}", rand_u64(bmc, id));
    s.insert(token.clone());
    drop(s);
    bmc.stats.sessions_created.fetch_add(1, Ordering::Relaxed);
    let loc = format!("/redfish/v1/SessionService/Sessions/{id}");
    if bmc.spec.faults.endless_login {
        // Valid JSON as far as it goes: an object whose array never closes.
        let head = format!(r#"{{"@odata.id":"{loc}","Oem":{{"Filler":["#);
        return respond_with(
            StatusCode::CREATED,
            &[
                ("x-auth-token", token),
                ("content-type", "application/json".into()),
            ],
            MockBody::Endless {
                head: Some(Bytes::from(head)),
                chunk: Bytes::from("7,".repeat(8 << 10)),
            },
        );
    }
    respond(
        StatusCode::CREATED,
        &[
            ("x-auth-token", token),
            ("location", loc.clone()),
            ("content-type", "application/json".into()),
        ],
        json!({"@odata.id": loc, "Id": id.to_string(), "UserName": bmc.user}).to_string(),
    )
}

/// Token material that differs per BMC and session; a mock needs unguessable-enough, not secure.
fn rand_u64(bmc: &Bmc, id: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((bmc.spec.addr, id))
}

/// `../shared/redfish-mockups` beside the repository (or `$SKYPORT_MOCKUPS`), where tests read
/// the vendor trees from; they are never copied into the repository.
pub fn shared_mockups() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SKYPORT_MOCKUPS") {
        return p.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/redfish-mockups")
}
