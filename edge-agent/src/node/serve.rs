//! The site-facing HTTP listener: what the site's nodes ask the agent for, over plain HTTP
//! (most firmware iPXE has no HTTPS), answered from the replica and the image cache, so it
//! works the same with the cloud up or gone.
//!
//! - `GET /boot/v1/bootscript`: the cloud boot service's own code (same renderer, same text)
//!   over the replica, with chain and image URLs pointing at this agent;
//! - `GET /edge/v1/images/{id}`: a registered image's verified bytes (Range supported; see
//!   [`crate::node::imageserve`]);
//! - `GET /cloud-init/{meta-data,user-data,vendor-data,<group>.yaml}`: the node named by its
//!   LAN source address (forwarding headers from the LAN are discarded, so a node cannot ask
//!   as another);
//! - `/healthz`, `/readyz`, `/metrics`.
//!
//! Nothing here writes to the cloud's data: every admin route of the mounted services is
//! refused, since the replica is a copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use skyport_boot::BootService;
use skyport_http::ApiError;
use skyport_images::{BlobError, Blobs, Image, ImageError, ImageService, ImageState};
use skyport_metadata::MetadataService;
use skyport_model::Mac;
use skyport_store::{Record, Write};

use std::net::IpAddr;

use skyport_boot::flight::Stage;

use crate::metrics::{Metrics, inc};
use crate::node::cache::ImageCache;
use crate::node::recorder::Recorder;
use crate::node::replica::{Replica, UNKNOWN_MACS};

/// What the agent serves from.
#[derive(Clone)]
pub struct Site {
    pub replica: Arc<Replica>,
    pub cache: Arc<ImageCache>,
    pub metrics: Arc<Metrics>,
    pub images: ImageService,
    pub boot: BootService,
    pub metadata: MetadataService,
    index: Arc<RwLock<Arc<BootIndex>>>,
    accesses: Arc<Mutex<HashMap<String, i64>>>,
    /// How many unknown MACs are kept (counted once, then kept up to date).
    unknown_kept: Arc<tokio::sync::OnceCell<std::sync::atomic::AtomicUsize>>,
    unknown_limit: usize,
    /// The iPXE binaries served at `/edge/v1/ipxe/{file}` (UEFI HTTP boot), when DHCP is on.
    ipxe_dir: Option<std::path::PathBuf>,
    /// The boot flight recorder, when the agent serves nodes.
    recorder: Option<Arc<Recorder>>,
}

/// Most unknown MACs kept for reporting: a device on the LAN that makes up MACs must not fill
/// the agent's disk. Beyond it, new ones are counted and logged but not kept.
pub const MAX_UNKNOWN_MACS: usize = 10_000;

/// Every known node's answer to `bootscript?mac=<its MAC>` (the request its DHCP boot file
/// makes), rendered by the boot service once per snapshot. A boot storm is then a hash lookup
/// per node instead of several storage reads and a write; anything else (retries, names, NIDs,
/// unknown MACs) takes the boot service's own path.
#[derive(Default)]
struct BootIndex {
    generation: String,
    scripts: HashMap<Mac, (String, bytes::Bytes)>,
}

/// Image URLs handed to nodes: this agent's own image route. The agent never uploads.
struct EdgeBlobs {
    node_url: String,
}

#[async_trait::async_trait]
impl Blobs for EdgeBlobs {
    fn backend(&self) -> &'static str {
        "edge-cache"
    }
    async fn upload_url(&self, key: &str, _: Duration) -> Result<String, BlobError> {
        Err(BlobError::Remote(format!(
            "{key}: images are uploaded to the cloud, not to an edge agent"
        )))
    }
    async fn download_url(&self, key: &str, _: Duration) -> Result<String, BlobError> {
        Ok(format!("{}/edge/v1/images/{key}", self.node_url))
    }
    async fn digest(&self, key: &str) -> Result<Option<(u64, [u8; 32])>, BlobError> {
        Err(BlobError::Remote(format!(
            "{key}: not available at the edge"
        )))
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        Err(BlobError::Remote(format!(
            "{key}: images are deleted in the cloud, not at an edge agent"
        )))
    }
}

impl Site {
    /// `node_url` is how the site's nodes reach this listener (`http://10.0.0.1:8080`).
    pub fn new(
        replica: Arc<Replica>,
        cache: Arc<ImageCache>,
        metrics: Arc<Metrics>,
        node_url: &str,
        retry_delay: u32,
    ) -> Self {
        let node_url = node_url.trim_end_matches('/').to_string();
        let store = replica.store();
        let images = ImageService::new(
            store.clone(),
            Arc::new(EdgeBlobs {
                node_url: node_url.clone(),
            }),
        );
        let settings = skyport_ipxe::Settings {
            retry_delay,
            chain_base: node_url.clone(),
            advertise: Some(format!("{node_url}/cloud-init")),
            ..skyport_ipxe::Settings::default()
        };
        Site {
            index: Arc::new(RwLock::new(Arc::new(BootIndex::default()))),
            accesses: Arc::new(Mutex::new(HashMap::new())),
            unknown_kept: Arc::new(tokio::sync::OnceCell::new()),
            unknown_limit: MAX_UNKNOWN_MACS,
            ipxe_dir: None,
            recorder: None,
            boot: BootService::new(store.clone(), settings).with_images(images.clone()),
            metadata: MetadataService::new(store, format!("{node_url}/cloud-init")),
            images,
            replica,
            cache,
            metrics,
        }
    }

    /// The images current boot parameters reference (`image:<id>`, registered and verified in
    /// the cloud).
    pub async fn referenced_images(&self) -> Result<Vec<Image>, ApiError> {
        let ids = skyport_boot::params::referenced_images(self.replica.store().as_ref()).await?;
        let mut out = Vec::new();
        for id in ids {
            match self.images.get(&id).await {
                Ok(i) if i.state == ImageState::Ready => out.push(i),
                Ok(_) => {
                    tracing::warn!(image = %id, "boot parameters reference an image that is not uploaded yet")
                }
                Err(ImageError::NoSuchImage { .. }) => {
                    tracing::warn!(image = %id, "boot parameters reference an unregistered image")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Pins the referenced images and downloads the missing ones, except those still backing
    /// off after a failed download; returns how many are still missing.
    pub async fn prefetch(&self) -> Result<usize, ApiError> {
        let images = self.referenced_images().await?;
        self.cache
            .set_pinned(images.iter().map(|i| i.sha256.clone()).collect());
        let mut missing = 0;
        for i in &images {
            if self.cache.contains(&i.sha256) {
                continue;
            }
            missing += 1;
            if let Some(wait) = self.cache.retry_in(i) {
                inc(&self.metrics.cache_downloads_deferred);
                tracing::debug!(image = %i.id, retry_in_s = wait.as_secs(), "prefetch backing off");
                continue;
            }
            match self.cache.get(i).await {
                Ok(_) => missing -= 1,
                Err(e) => {
                    let wait = self.cache.retry_in(i).unwrap_or_default();
                    tracing::warn!(image = %i.id, error = %e, retry_in_s = wait.as_secs(),
                        "prefetch failed; backing off");
                }
            }
        }
        Ok(missing)
    }

    /// Records what nodes fetch in `r`.
    pub fn with_recorder(mut self, r: Arc<Recorder>) -> Self {
        self.recorder = Some(r);
        self
    }

    /// Records `stage` for the node with `mac` or at `ip`.
    fn record(
        &self,
        stage: Stage,
        mac: Option<Mac>,
        ip: Option<IpAddr>,
        detail: impl Into<String>,
        failed: bool,
    ) {
        if let Some(r) = &self.recorder {
            let ip = ip.and_then(|i| match i.to_canonical() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            });
            if let (Some(m), Some(i)) = (mac, ip) {
                r.learn(i, m);
            }
            r.event(stage, mac, ip, detail, failed);
        }
    }

    /// Serves the iPXE binaries of `dir` over HTTP (for UEFI HTTP boot clients).
    pub fn with_ipxe_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.ipxe_dir = dir;
        self
    }

    /// Keeps at most `n` unknown MACs for reporting (default [`MAX_UNKNOWN_MACS`]).
    #[cfg(test)]
    pub fn with_unknown_limit(mut self, n: usize) -> Self {
        self.unknown_limit = n;
        self
    }

    /// Drops the pre-rendered scripts (a new snapshot was applied); requests take the boot
    /// service's path until [`Self::rebuild_index`] has run.
    pub fn invalidate_index(&self) {
        if let Ok(mut i) = self.index.write() {
            *i = Arc::new(BootIndex::default());
        }
    }

    /// Pre-renders every known node's script for the snapshot in service; returns how many. A
    /// build overtaken by a newer snapshot is discarded.
    pub async fn rebuild_index(&self) -> Result<usize, ApiError> {
        let unavailable =
            |e: crate::node::replica::ReplicaError| ApiError::Unavailable(e.to_string());
        let Some(applied) = self.replica.applied().await.map_err(unavailable)? else {
            return Ok(0);
        };
        let macs = skyport_inventory::reads::interface_macs(self.replica.store().as_ref()).await?;
        let rendered: Vec<Option<(Mac, String, String)>> = futures::stream::iter(macs)
            .map(|mac| {
                let boot = self.boot.clone();
                async move {
                    let req = skyport_boot::ScriptRequest {
                        mac: Some(mac.to_string()),
                        ..Default::default()
                    };
                    match boot.render(&req).await {
                        Ok(skyport_boot::ScriptOutcome::Known {
                            script,
                            xname: Some(x),
                            ..
                        }) => Some((mac, x, script)),
                        _ => None,
                    }
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut idx = BootIndex {
            generation: applied.generation.clone(),
            scripts: HashMap::new(),
        };
        for (mac, x, script) in rendered.into_iter().flatten() {
            idx.scripts.insert(mac, (x, bytes::Bytes::from(script)));
        }
        let n = idx.scripts.len();
        let current = self.replica.applied().await.map_err(unavailable)?;
        if current.is_none_or(|a| a.generation != idx.generation) {
            return Ok(0);
        }
        if let Ok(mut i) = self.index.write() {
            *i = Arc::new(idx);
        }
        Ok(n)
    }

    fn indexed(&self, mac: &Mac) -> Option<(String, bytes::Bytes)> {
        let idx = self.index.read().ok()?.clone();
        idx.scripts.get(mac).cloned()
    }

    /// Writes the fetches answered from the index to the endpoint history (in one batch, not
    /// one write per request); they are reported to the cloud from there.
    pub async fn flush_accesses(&self) -> Result<usize, ApiError> {
        let drained: Vec<(String, i64)> = match self.accesses.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(0),
        };
        let mut ops = Vec::with_capacity(drained.len());
        for (name, last_epoch) in &drained {
            let entry = skyport_boot::EndpointAccess {
                name: name.clone(),
                endpoint: "bootscript".into(),
                last_epoch: *last_epoch,
            };
            ops.push(entry.upsert()?);
        }
        let n = ops.len();
        for chunk in ops.chunks(500) {
            self.replica.store().write(chunk.to_vec()).await?;
        }
        Ok(n)
    }

    /// The listener's routes.
    pub fn router(&self) -> Router {
        let services = skyport_boot::router(self.boot.clone())
            .merge(skyport_metadata::router(self.metadata.clone()))
            .layer(middleware::from_fn_with_state(self.clone(), node_only));
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/edge/v1/images/{id}", get(image))
            .route("/edge/v1/ipxe/{file}", get(ipxe_binary))
            .route(
                "/cloud-init/phone-home/{id}",
                axum::routing::post(phone_home),
            )
            .with_state(self.clone())
            .merge(services)
            .merge(skyport_boot::flight::router(self.replica.store()))
    }
}

/// Whether the matched `route` of a mounted service is one its service declares anonymous: what
/// a booting node asks for, and health routes. Everything else is the cloud's.
fn allowed(route: Option<&str>) -> bool {
    let Some(route) = route else {
        return false;
    };
    let declared: [skyport_http::access::Declared; 2] =
        [skyport_boot::access, skyport_metadata::access];
    skyport_http::access::decide(&declared, &Method::GET, route)
        == skyport_http::access::Access::Public
}

/// Only the node-facing reads of the mounted services, with the node's own address.
async fn node_only(State(site): State<Site>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    if !allowed(route.as_deref()) {
        return ApiError::not_found(format!(
            "{path} is not served by an edge agent; use the cloud API"
        ))
        .into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::MethodNotAllowed(format!(
            "an edge agent serves copies; {} {path} goes to the cloud API",
            req.method()
        ))
        .into_response();
    }
    for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        req.headers_mut().remove(h);
    }
    let peer_ip = peer_of(&req);
    // BSS's script route and boot-service's (OpenCHAMI v0.2; coresmd's `ipxe_uri`) are one
    // boot stage; only BSS's scripts are pre-rendered.
    let bss = path == "/boot/v1/bootscript";
    if bss || path == "/boot-service/bootscript" {
        inc(&site.metrics.bootscript_requests);
        let q = skyport_http::QueryParams::parse(req.uri().query().unwrap_or(""));
        if bss
            && let [(k, v)] = &q.0[..]
            && k == "mac"
            && let Ok(mac) = Mac::parse(v)
            && let Some((xname, script)) = site.indexed(&mac)
        {
            if let Ok(mut m) = site.accesses.lock() {
                m.insert(xname, skyport_model::now());
            }
            site.record(Stage::BootScript, Some(mac), peer_ip, "known", false);
            let mut r = (StatusCode::OK, script).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=UTF-8"),
            );
            return r;
        }
        let mac = q.first("mac").and_then(|m| Mac::parse(m).ok());
        let peer = peer_ip.map(|ip| ip.to_canonical().to_string());
        let resp = next.run(req).await;
        let unknown = match mac {
            Some(mac) => note_if_unknown(&site, mac, peer).await,
            None => false,
        };
        if site.recorder.is_none() {
            return resp;
        }
        // Boot scripts are small: read to tell a node's own script from the retry script.
        let (parts, body) = resp.into_parts();
        let bytes = match axum::body::to_bytes(body, 1 << 20).await {
            Ok(b) => b,
            Err(e) => {
                return ApiError::Unavailable(format!("rendering the boot script: {e}"))
                    .into_response();
            }
        };
        let known = bytes
            .split(|b| *b == b'\n')
            .any(|l| l.starts_with(b"kernel "));
        let (what, failed) = match (known, unknown) {
            (true, _) => ("known", false),
            (false, true) => ("unknown", true),
            (false, false) => ("retry", true),
        };
        site.record(Stage::BootScript, mac, peer_ip, what, failed);
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    inc(&site.metrics.cloud_init_requests);
    let stage = match path.rsplit('/').next() {
        Some("meta-data") => Some(Stage::MetaData),
        Some("user-data") => Some(Stage::UserData),
        Some("vendor-data") => Some(Stage::VendorData),
        _ => None,
    };
    let resp = next.run(req).await;
    if let Some(stage) = stage {
        let st = resp.status();
        site.record(
            stage,
            None,
            peer_ip,
            st.as_u16().to_string(),
            !st.is_success(),
        );
    }
    resp
}

/// `POST /cloud-init/phone-home/{id}`: cloud-init's `phone_home` module says the node is up
/// (form fields `instance_id`, `hostname`, `fqdn`, public keys). Recorded by the node's
/// address; always 200 with an empty body, as upstream answers.
async fn phone_home(State(site): State<Site>, Path(id): Path<String>, req: Request) -> Response {
    let id: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
    site.record(Stage::PhoneHome, None, peer_of(&req), id, false);
    StatusCode::OK.into_response()
}

/// A MAC the inventory does not know is kept for the next report (enrollment candidates).
async fn note_if_unknown(site: &Site, mac: Mac, ip: Option<String>) -> bool {
    let unknown = site.note_unknown(mac, ip).await;
    if unknown {
        inc(&site.metrics.bootscript_unknown);
    }
    unknown
}

impl Site {
    /// Keeps `mac` for the next report if the inventory does not know it (enrollment
    /// candidates: from boot script requests and from DHCP); true if it does not.
    pub async fn note_unknown(&self, mac: Mac, ip: Option<String>) -> bool {
        let site = self;
        let store = site.replica.store();
        match skyport_inventory::reads::knows_mac(store.as_ref(), &mac).await {
            Ok(true) => return false,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(mac = %mac, error = %e, "could not look up a MAC");
                return false;
            }
        }
        let now = skyport_model::now();
        let first_seen = match store.get(UNKNOWN_MACS, &mac.to_string()).await {
            Ok(Some(r)) => serde_json::from_str::<skyport_sync::UnknownMac>(&r.body)
                .map(|u| u.first_seen)
                .unwrap_or(now),
            Ok(None) => {
                let kept = site
                    .unknown_kept
                    .get_or_try_init(|| async {
                        store
                            .list_all(UNKNOWN_MACS, None)
                            .await
                            .map(|r| std::sync::atomic::AtomicUsize::new(r.len()))
                    })
                    .await;
                match kept {
                    Ok(k) if k.load(std::sync::atomic::Ordering::Relaxed) >= site.unknown_limit => {
                        tracing::warn!(mac = %mac, limit = site.unknown_limit,
                        "unknown MAC not kept: too many unknown MACs already");
                        return true;
                    }
                    Ok(k) => {
                        k.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(mac = %mac, error = %e, "could not count unknown MACs");
                        return true;
                    }
                }
                now
            }
            Err(_) => now,
        };
        let entry = skyport_sync::UnknownMac {
            mac: mac.to_string(),
            ip,
            first_seen,
            last_seen: now,
            site: String::new(),
        };
        let Ok(body) = serde_json::to_string(&entry) else {
            return true;
        };
        tracing::info!(mac = %mac, "a MAC not in the inventory asked to boot");
        if let Err(e) = store
            .write(vec![Write::Upsert {
                table: UNKNOWN_MACS,
                record: Record::new(mac.to_string(), body),
            }])
            .await
        {
            tracing::warn!(mac = %mac, error = %e, "could not record an unknown MAC");
        }
        true
    }
}

/// Ready once a snapshot is served. The image cache's troubles (images waiting for disk space
/// or backing off after failed downloads) are reported in `image_cache` without making the
/// agent unready: boot scripts and cached images are still served.
async fn readyz(State(site): State<Site>) -> Response {
    match site.replica.applied().await {
        Ok(Some(a)) => {
            let waiting = site.cache.waiting();
            let m = &site.metrics;
            skyport_http::json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": "ready",
                    "generation": a.generation,
                    "applied_at": a.applied_at,
                    "records": a.records,
                    "image_cache": {
                        "bytes": m.cache_bytes.load(std::sync::atomic::Ordering::Relaxed),
                        "disk_full": waiting.iter().any(|w| w.disk_full),
                        "failing": waiting,
                        "last_verified_at": m.cache_last_verified_at.load(std::sync::atomic::Ordering::Relaxed),
                    },
                }),
            )
        }
        Ok(None) => ApiError::Unavailable(
            "no snapshot yet: the agent has not reached the cloud since it was installed".into(),
        )
        .into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

async fn metrics(State(site): State<Site>) -> Response {
    let mut r = site.metrics.render(skyport_model::now()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !id.starts_with('.')
}

async fn image(
    State(site): State<Site>,
    Path(id): Path<String>,
    method: Method,
    headers: axum::http::HeaderMap,
    req: Request,
) -> Response {
    let peer = peer_of(&req);
    inc(&site.metrics.image_requests);
    if !valid_id(&id) {
        return ApiError::bad_request(format!("{id:?} is not an image id")).into_response();
    }
    let img = match site.images.get(&id).await {
        Ok(i) => i,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if img.state != ImageState::Ready {
        return ApiError::not_found(format!("image {id} has not been uploaded and verified yet"))
            .into_response();
    }
    let resp =
        crate::node::imageserve::respond(&site.cache, &site.metrics, &img, &method, &headers).await;
    let stage = match img.kind {
        skyport_images::Kind::Kernel => Stage::Kernel,
        skyport_images::Kind::Initrd => Stage::Initrd,
        skyport_images::Kind::Rootfs => return resp,
    };
    if method != Method::GET || site.recorder.is_none() {
        return resp;
    }
    if !resp.status().is_success() {
        let st = resp.status().as_u16();
        site.record(stage, None, peer, format!("{} HTTP {st}", img.id), true);
        return resp;
    }
    // The event is recorded when the body ends: sent whole, or cut short by the node.
    let want = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let (parts, body) = resp.into_parts();
    let name = format!("{} ({})", img.name, img.id);
    let on_end = Box::new(move |sent: u64, whole: bool| {
        let detail = if whole {
            format!("{name}: {sent} bytes")
        } else {
            format!("{name}: aborted after {sent} of {want} bytes")
        };
        site.record(stage, None, peer, detail, !whole);
    });
    let tracked = Tracked {
        inner: Box::pin(body.into_data_stream()),
        sent: 0,
        want,
        on_end: Some(on_end),
    };
    Response::from_parts(parts, axum::body::Body::from_stream(tracked))
}

/// A response body that tells, once, how many bytes went out and whether that was all.
struct Tracked {
    inner: futures::stream::BoxStream<'static, Result<bytes::Bytes, axum::Error>>,
    sent: u64,
    want: u64,
    on_end: Option<Box<dyn FnOnce(u64, bool) + Send>>,
}

impl Tracked {
    fn end(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.sent, self.sent >= self.want);
        }
    }
}

impl futures::Stream for Tracked {
    type Item = Result<bytes::Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        match &next {
            std::task::Poll::Ready(Some(Ok(b))) => self.sent += b.len() as u64,
            std::task::Poll::Ready(Some(Err(_))) | std::task::Poll::Ready(None) => self.end(),
            std::task::Poll::Pending => {}
        }
        next
    }
}

impl Drop for Tracked {
    /// The node went away before the end: recorded as aborted.
    fn drop(&mut self) {
        self.end();
    }
}

/// An iPXE binary for UEFI HTTP boot clients: the TFTP root's files, by the same rules.
async fn ipxe_binary(
    State(site): State<Site>,
    Path(file): Path<String>,
    method: Method,
    req: Request,
) -> Response {
    let peer = peer_of(&req);
    let Some(dir) = &site.ipxe_dir else {
        return ApiError::not_found("this agent serves no iPXE binaries (DHCP is off)".to_string())
            .into_response();
    };
    let path = match crate::node::tftp::resolve(dir, &file) {
        Ok(p) => p,
        Err(crate::node::tftp::TftpError::NotFound(_)) => {
            return ApiError::not_found(format!("no iPXE binary {file:?}")).into_response();
        }
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.len() <= crate::node::tftp::MAX_FILE => {}
        Ok(_) => {
            return ApiError::bad_request(format!("{file:?} is too large to serve"))
                .into_response();
        }
        Err(e) => return ApiError::Unavailable(format!("{}: {e}", path.display())).into_response(),
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let kind = if file.ends_with(".efi") {
                "application/efi"
            } else {
                "application/octet-stream"
            };
            if method == Method::GET {
                let detail = format!("{file}: {} bytes", bytes.len());
                site.record(Stage::Binary, None, peer, detail, false);
            }
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
                bytes,
            )
                .into_response()
        }
        Err(e) => ApiError::Unavailable(format!("{}: {e}", path.display())).into_response(),
    }
}

/// The address a request came from (the listener records it as `ConnectInfo`).
fn peer_of(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}
