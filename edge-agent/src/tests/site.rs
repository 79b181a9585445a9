//! The edge agent serving a site from its synced copy: a real local cloud (the `skyport serve`
//! router on SQLite and filesystem images) behind a switch that makes it fail, answer garbage,
//! or go away; the agent's syncer, image cache and node listener on real sockets. The disk-full
//! test puts the image cache on a small tmpfs of its own (mounted as root; skipped otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cloud::CloudClient;
use crate::cloud::TokenSource;
use crate::cloud::sync::{Polled, SyncError, Syncer};
use crate::metrics::Metrics;
use crate::node::cache::{CacheOptions, ImageCache};
use crate::node::replica::Replica;
use crate::node::serve::Site;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const NORMAL: u8 = 0;
const FAIL_500: u8 = 1;
const GARBAGE: u8 = 2;
const WRONG_FORMAT: u8 = 3;
const TRUNCATED: u8 = 4;

struct Faults {
    mode: AtomicU8,
    blob_gets: AtomicUsize,
    /// When each image's bytes were asked for (`GET /images/v1/blobs/<id>`), in order.
    blob_log: Mutex<Vec<(String, Instant)>>,
}

impl Faults {
    /// When the cloud was asked for image `id`'s bytes.
    fn gets_of(&self, id: &str) -> Vec<Instant> {
        self.blob_log
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == id)
            .map(|(_, t)| *t)
            .collect()
    }
}

async fn faulty(State(f): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some(key) = path.strip_prefix("/images/v1/blobs/")
        && req.method() == axum::http::Method::GET
    {
        f.blob_gets.fetch_add(1, Ordering::SeqCst);
        f.blob_log
            .lock()
            .unwrap()
            .push((key.to_string(), Instant::now()));
    }
    let snapshot = path == "/edge/v1/snapshot" || path == "/edge/v1/changes";
    match f.mode.load(Ordering::SeqCst) {
        FAIL_500 => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        GARBAGE if snapshot => "<html>proxy login</html>".into_response(),
        WRONG_FORMAT if snapshot => r#"{"format":99,"cursor":"c","tables":{}}"#.into_response(),
        TRUNCATED if snapshot => {
            let full = next.run(req).await;
            let body = axum::body::to_bytes(full.into_body(), usize::MAX)
                .await
                .unwrap();
            body.slice(..body.len() / 2).into_response()
        }
        _ => next.run(req).await,
    }
}

/// The local cloud on a fixed port, so it can be stopped and started again at the same URL.
struct Cloud {
    dir: tempfile::TempDir,
    port: u16,
    faults: Arc<Faults>,
    task: Option<JoinHandle<()>>,
    /// Stops the server gracefully, which also closes idle keep-alive connections: aborting
    /// the accept loop alone left them answering, so "the cloud is down" could still be served.
    stop: Option<tokio_util::sync::CancellationToken>,
}

impl Cloud {
    async fn start() -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Cloud {
            dir,
            port,
            faults: Arc::new(Faults {
                mode: AtomicU8::new(NORMAL),
                blob_gets: AtomicUsize::new(0),
                blob_log: Mutex::new(Vec::new()),
            }),
            task: None,
            stop: None,
        };
        c.up().await;
        c
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) {
        let store: Arc<dyn skyport_store::Store> = skyport_sync::ChangeLog::local(Arc::new(
            skyport_store_sqlite::SqliteStore::open(self.dir.path().join("cloud.db")).unwrap(),
        ));
        let blobs = Arc::new(skyport_images::FsBlobs::open(self.dir.path(), &self.url()).unwrap());
        let api = skyport::api(
            store,
            skyport_ipxe::Settings::default(),
            blobs,
            format!("{}/cloud-init", self.url()),
            Arc::new(skyport_sites::LocalCredentials::new(None)),
            None,
            None,
        )
        .layer(axum::middleware::from_fn_with_state(
            self.faults.clone(),
            faulty,
        ));
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        self.stop = Some(stop.clone());
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, api)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        }));
    }

    async fn down(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
        if let Some(mut t) = self.task.take()
            && tokio::time::timeout(std::time::Duration::from_secs(10), &mut t)
                .await
                .is_err()
        {
            // A request still in flight past the grace: the server is stopped hard.
            t.abort();
            let _ = t.await;
        }
    }

    fn mode(&self, m: u8) {
        self.faults.mode.store(m, Ordering::SeqCst);
    }
}

fn sha(b: &[u8]) -> String {
    skyport_images::hex(&Sha256::digest(b))
}

/// Registers and uploads an image through the image API; returns its id.
async fn upload(h: &reqwest::Client, base: &str, name: &str, kind: &str, bytes: &[u8]) -> String {
    let r: serde_json::Value = h
        .post(format!("{base}/images/v1/images"))
        .json(
            &serde_json::json!({"name": name, "version": "1", "arch": "x86_64", "kind": kind,
            "size": bytes.len(), "sha256": sha(bytes)}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["image"]["id"].as_str().unwrap().to_string();
    let url = r["upload"]["url"].as_str().unwrap();
    let put = h.put(url).body(bytes.to_vec()).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let done = h
        .post(format!("{base}/images/v1/images/{id}/complete"))
        .send()
        .await
        .unwrap();
    assert!(done.status().is_success(), "{}", done.text().await.unwrap());
    id
}

async fn ok(r: reqwest::RequestBuilder) -> serde_json::Value {
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

const MAC: &str = "52:54:00:12:34:56";
const XNAME: &str = "x1000c0s0b0n0";

/// One node with a MAC, a NID and boot parameters naming an uploaded kernel and initrd.
async fn seed(h: &reqwest::Client, base: &str, kernel: &[u8], initrd: &[u8]) -> (String, String) {
    ok(h.post(format!("{base}/hsm/v2/State/Components")).json(&serde_json::json!({"Components": [
        {"ID": XNAME, "State": "Ready", "Role": "Compute", "NID": 7, "Type": "Node", "Enabled": true}]})))
    .await;
    ok(
        h.post(format!("{base}/hsm/v2/Inventory/EthernetInterfaces"))
            .json(&serde_json::json!({
        "MACAddress": MAC, "ComponentID": XNAME, "IPAddresses": [{"IPAddress": "127.0.0.1"}]})),
    )
    .await;
    let k = upload(h, base, "vmlinuz", "kernel", kernel).await;
    let i = upload(h, base, "initrd", "initrd", initrd).await;
    ok(h.post(format!("{base}/boot/v1/bootparameters"))
        .json(&serde_json::json!({
        "hosts": [XNAME], "kernel": format!("image:{k}"), "initrd": format!("image:{i}"),
        "params": "console=ttyS0 quiet"})))
    .await;
    (k, i)
}

struct Edge {
    _dir: tempfile::TempDir,
    site: Site,
    syncer: Syncer,
    url: String,
    server: JoinHandle<()>,
    metrics: Arc<Metrics>,
}

async fn edge_at(dir: tempfile::TempDir, cloud: &Cloud, cache_max: u64) -> Edge {
    let images = dir.path().join("images");
    edge_with(dir, &images, cloud, CacheOptions::new(cache_max)).await
}

/// An agent whose image cache is in `images` (anywhere, e.g. on a file system of its own).
async fn edge_with(
    dir: tempfile::TempDir,
    images: &Path,
    cloud: &Cloud,
    opts: CacheOptions,
) -> Edge {
    let client = CloudClient::new(&cloud.url(), TokenSource::none()).unwrap();
    let metrics = Arc::new(Metrics::default());
    let replica = Arc::new(Replica::open(dir.path()).unwrap());
    let cache = ImageCache::open_with(images, opts, Some(client.clone()), metrics.clone())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let site = Site::new(replica.clone(), cache, metrics.clone(), &url, 30);
    // The listener the agent runs (NodeService::serve), with its connection limits.
    let app = site.router();
    let server = tokio::spawn(async move {
        skyport_http::server::serve(
            listener,
            app,
            skyport_http::server::Limits::default(),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    });
    Edge {
        _dir: dir,
        syncer: Syncer::new(client, replica, metrics.clone()),
        site,
        url,
        server,
        metrics,
    }
}

async fn text(r: reqwest::RequestBuilder) -> (u16, String) {
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A GET of `url` asking for the byte range `range` (a `Range` header's value).
async fn ranged(h: &reqwest::Client, url: &str, range: impl AsRef<str>) -> reqwest::Response {
    let r = h.get(url).header("Range", range.as_ref());
    r.send().await.unwrap()
}

/// The bytes of image `k` as the edge serves it to a node.
async fn image(h: &reqwest::Client, edge: &Edge, k: &str) -> Vec<u8> {
    let url = format!("{}/edge/v1/images/{k}", edge.url);
    let r = h.get(url).send().await.unwrap();
    r.bytes().await.unwrap().to_vec()
}

/// A cloud [`seed`]ed with `kernel` and `initrd`, a client, and an edge of it in a fresh data
/// directory without a cache limit (not synced yet).
async fn seeded_edge(kernel: &[u8], initrd: &[u8]) -> (Cloud, reqwest::Client, Edge) {
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    seed(&h, &cloud.url(), kernel, initrd).await;
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, u64::MAX).await;
    (cloud, h, edge)
}

async fn script(h: &reqwest::Client, edge: &Edge, mac: &str) -> String {
    let (s, body) = text(h.get(format!("{}/boot/v1/bootscript?mac={mac}", edge.url))).await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_from_the_copy_with_the_cloud_up_then_gone() {
    let mut cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    let kernel: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let initrd = b"initrd bytes".repeat(1000);
    let (k, _) = seed(&h, &cloud.url(), &kernel, &initrd).await;
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, u64::MAX).await;

    // Before the first snapshot: not ready, and a node gets the retry script.
    let (s, _) = text(h.get(format!("{}/readyz", edge.url))).await;
    assert_eq!(s, 503);
    assert!(script(&h, &edge, MAC).await.contains("sleep"));

    let Polled::Applied(first) = edge.syncer.poll().await.unwrap() else {
        panic!("first poll must apply a snapshot")
    };
    // Steady state: a 304, nothing downloaded or applied.
    assert_eq!(edge.syncer.poll().await.unwrap(), Polled::Unchanged);
    assert_eq!(edge.site.prefetch().await.unwrap(), 0);
    assert_eq!(cloud.faults.blob_gets.load(Ordering::SeqCst), 2);

    // The boot-storm path (pre-rendered per MAC) answers byte for byte what the boot service
    // renders, and its fetches reach the endpoint history in one batch.
    let slow = text(h.get(format!("{}/boot/v1/bootscript?mac={MAC}&retry=0", edge.url))).await;
    assert_eq!(edge.site.rebuild_index().await.unwrap(), 1);
    let s = script(&h, &edge, MAC).await;
    assert_eq!((200, s.clone()), slow);
    assert_eq!(edge.site.flush_accesses().await.unwrap(), 1);
    let kernel_url = format!("{}/edge/v1/images/{k}", edge.url);
    assert!(s.starts_with("#!ipxe"), "{s}");
    assert!(
        s.contains(&format!("kernel --name kernel {kernel_url}")),
        "{s}"
    );
    assert!(s.contains("console=ttyS0 quiet"), "{s}");
    assert!(
        s.contains(&format!("xname={XNAME}")) && s.contains("nid=7"),
        "{s}"
    );
    assert!(
        s.contains(&format!("{}/boot/v1/bootscript?mac=", edge.url)),
        "{s}"
    );
    assert!(
        s.contains(&format!("ds=nocloud-net;s={}/cloud-init/", edge.url)),
        "{s}"
    );

    let got = h.get(&kernel_url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), &kernel[..]);
    let part = ranged(&h, &kernel_url, "bytes=1000-1999").await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &kernel[1000..2000]);
    let beyond = ranged(&h, &kernel_url, "bytes=999999999-").await;
    assert_eq!(beyond.status(), 416);

    // A change made through the cloud API reaches the edge on the next poll.
    ok(h.put(format!("{}/boot/v1/bootparameters", cloud.url()))
        .json(&serde_json::json!({
        "hosts": [XNAME], "kernel": format!("image:{k}"), "params": "console=ttyS0 changed=1"})))
    .await;
    let Polled::Applied(second) = edge.syncer.poll().await.unwrap() else {
        panic!("a change must be applied")
    };
    assert_ne!(first.generation, second.generation);
    edge.site.invalidate_index();
    assert!(script(&h, &edge, MAC).await.contains("changed=1"));
    assert_eq!(edge.site.rebuild_index().await.unwrap(), 1);
    assert!(script(&h, &edge, MAC).await.contains("changed=1"));

    // The cloud goes away: the poll fails, the node still boots, the image is still served.
    cloud.down().await;
    assert!(matches!(
        edge.syncer.poll().await,
        Err(SyncError::Unreachable(_))
    ));
    assert!(script(&h, &edge, MAC).await.contains("changed=1"));
    let got = h.get(&kernel_url).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &kernel[..]);
    let (s, body) = text(h.get(format!("{}/readyz", edge.url))).await;
    assert_eq!(s, 200, "{body}");
    let (_, m) = text(h.get(format!("{}/metrics", edge.url))).await;
    assert!(m.contains("skyport_edge_sync_failures_total 1"), "{m}");
    assert!(m.contains("skyport_edge_sync_unchanged_total 1"), "{m}");
    assert!(m.contains("skyport_edge_cache_hits_total"), "{m}");

    // A restarted agent (new process, same data directory) serves from disk alone.
    let dir = {
        let Edge { _dir, server, .. } = edge;
        server.abort();
        _dir
    };
    let edge = edge_at(dir, &cloud, u64::MAX).await;
    assert!(script(&h, &edge, MAC).await.contains("changed=1"));
    assert_eq!(image(&h, &edge, &k).await, kernel);
    assert_eq!(edge.metrics.cache_misses.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cloud_answers_never_replace_the_last_good_snapshot() {
    let (cloud, h, edge) = seeded_edge(b"kernel", b"initrd").await;
    let Polled::Applied(good) = edge.syncer.poll().await.unwrap() else {
        panic!()
    };
    // Change the cloud so that every poll below would have something new to apply.
    ok(h.put(format!("{}/boot/v1/bootparameters", cloud.url()))
        .json(&serde_json::json!({
        "hosts": [XNAME], "kernel": "http://elsewhere/k", "params": "new=1"})))
    .await;
    for (mode, what) in [
        (FAIL_500, "HTTP 500"),
        (GARBAGE, "unreadable page"),
        (TRUNCATED, "unreadable page"),
        (WRONG_FORMAT, "format 99"),
    ] {
        cloud.mode(mode);
        let e = edge.syncer.poll().await.unwrap_err();
        assert!(e.to_string().contains(what), "{what}: {e}");
        let s = script(&h, &edge, MAC).await;
        assert!(
            s.contains("console=ttyS0 quiet") && !s.contains("new=1"),
            "{s}"
        );
        let (_, body) = text(h.get(format!("{}/readyz", edge.url))).await;
        assert!(body.contains(&good.generation), "{body}");
    }
    cloud.mode(NORMAL);
    assert!(matches!(
        edge.syncer.poll().await.unwrap(),
        Polled::Applied(_)
    ));
    assert!(script(&h, &edge, MAC).await.contains("new=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_never_serves_corrupt_or_unverified_bytes() {
    let mut cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    let kernel = b"the real kernel".repeat(10_000);
    let (k, i) = seed(&h, &cloud.url(), &kernel, b"initrd").await;
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join("images/sha256").join(sha(&kernel));
    let edge = edge_at(dir, &cloud, u64::MAX).await;
    edge.syncer.poll().await.unwrap();

    // Twenty nodes asking at once for an image not cached yet: one download.
    let url = format!("{}/edge/v1/images/{k}", edge.url);
    let gets = (0..20).map(|_| {
        let (h, url) = (h.clone(), url.clone());
        tokio::spawn(async move { h.get(url).send().await.unwrap().bytes().await.unwrap() })
    });
    for g in gets {
        assert_eq!(g.await.unwrap().as_ref(), &kernel[..]);
    }
    assert_eq!(cloud.faults.blob_gets.load(Ordering::SeqCst), 1);

    // Bytes changed on disk: hashed again, dropped, fetched again; never served wrong.
    std::fs::write(&cached, b"the real kernel, but not quite").unwrap();
    let got = h.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(got.as_ref(), &kernel[..]);
    assert_eq!(cloud.faults.blob_gets.load(Ordering::SeqCst), 2);
    assert_eq!(edge.metrics.cache_corrupt_dropped.load(Ordering::SeqCst), 1);

    // Corrupt again with the cloud gone: 503 with Retry-After, not the bad bytes.
    let mut bad = std::fs::read(&cached).unwrap();
    bad[5] ^= 0xff;
    std::fs::write(&cached, &bad).unwrap();
    cloud.down().await;
    let r = h.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "10");
    assert!(!cached.exists());

    // The cloud's own copy is bad (tampered object storage): the download does not verify,
    // nothing is cached, and nothing partial is left behind.
    cloud.up().await;
    let object = cloud.dir.path().join("blobs").join(&i);
    std::fs::write(&object, b"initrX").unwrap();
    let r = h
        .get(format!("{}/edge/v1/images/{i}", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("SHA-256"));
    let leftovers: Vec<_> = std::fs::read_dir(edge._dir.path().join("images/tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty());

    // Names that are not image ids never reach the file system.
    for bad in ["..%2F..%2Fetc%2Fpasswd", ".hidden", "a%00b", "nope"] {
        let (s, body) = text(h.get(format!("{}/edge/v1/images/{bad}", edge.url))).await;
        assert!(s == 400 || s == 404, "{bad}: {s} {body}");
        assert!(
            body.contains("\"status\""),
            "{bad}: problem JSON expected: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_what_boot_parameters_reference() {
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    let kernel = vec![1u8; 40_000];
    let (k, _) = seed(&h, &cloud.url(), &kernel, &[2u8; 40_000]).await;
    let spare = upload(&h, &cloud.url(), "spare", "rootfs", &[3u8; 40_000]).await;
    // Room for two of the three images.
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, 90_000).await;
    edge.syncer.poll().await.unwrap();
    let spare_url = format!("{}/edge/v1/images/{spare}", edge.url);
    let r = h.get(&spare_url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 40_000);
    // The referenced kernel and initrd need the room: the unreferenced image goes.
    assert_eq!(edge.site.prefetch().await.unwrap(), 0);
    assert_eq!(edge.metrics.cache_evictions.load(Ordering::SeqCst), 1);
    // Asked for again, it is fetched and served, but never at the cost of a referenced image.
    let r = h.get(&spare_url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 40_000);
    assert_eq!(edge.metrics.cache_evictions.load(Ordering::SeqCst), 1);
    let before = edge.metrics.cache_misses.load(Ordering::SeqCst);
    assert_eq!(image(&h, &edge, &k).await, kernel);
    assert_eq!(edge.metrics.cache_misses.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nodes_wait_and_are_reported_and_the_edge_is_read_only() {
    let (cloud, h, edge) = seeded_edge(b"k", b"i").await;
    edge.syncer.poll().await.unwrap();

    let s = script(&h, &edge, "52-54-00-99-88-77").await;
    assert!(
        s.contains("sleep") && s.contains("mac=52:54:00:99:88:77"),
        "{s}"
    );
    script(&h, &edge, MAC).await;
    let (s, body) = text(h.get(format!("{}/boot/v1/bootscript?mac=zz%ZZ&retry=x", edge.url))).await;
    assert_eq!(s, 400, "{body}");
    // Found by hostile testing: a path that is not UTF-8 answered text/plain and an oversized
    // head 431 with no body. Every refusal is problem JSON.
    let many = (0..150).fold(h.get(format!("{}/healthz", edge.url)), |r, i| {
        r.header(format!("x-h{i}"), "v")
    });
    for (req, want) in [
        (h.get(format!("{}/edge/v1/images/%FF%FE", edge.url)), 400),
        (many, 431),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let p: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(p["status"], want);
    }

    let client = CloudClient::new(&cloud.url(), TokenSource::none()).unwrap();
    let sent = crate::cloud::report::report_once(
        &client,
        &Replica::open(edge._dir.path()).unwrap(),
        "lab-a",
        &edge.metrics,
        true,
    )
    .await
    .unwrap();
    assert_eq!((sent.endpoint_history, sent.unknown_macs), (1, 1));
    // A LAN full of made-up MACs cannot fill the agent's disk: past the limit they get the
    // retry script but are not kept.
    let capped = edge.site.clone().with_unknown_limit(2);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let capped_url = format!("http://{}", l.local_addr().unwrap());
    let app = capped
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let capped_server = tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    for m in [
        "52:54:00:00:0a:01",
        "52:54:00:00:0a:02",
        "52:54:00:00:0a:03",
    ] {
        let (st, body) = text(h.get(format!("{capped_url}/boot/v1/bootscript?mac={m}"))).await;
        assert!(st == 200 && body.contains("sleep"), "{body}");
    }
    let kept = Replica::open(edge._dir.path())
        .unwrap()
        .store()
        .list_all(crate::node::replica::UNKNOWN_MACS, None)
        .await
        .unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    capped_server.abort();
    let c = ok(h.get(format!("{}/edge/v1/candidates", cloud.url()))).await;
    assert_eq!(c[0]["mac"], "52:54:00:99:88:77");
    assert_eq!(c[0]["site"], "lab-a");
    assert_eq!(c[0]["ip"], "127.0.0.1");
    // With authentication off the site is whatever the agent says, shown as unregistered.
    let sites = ok(h.get(format!("{}/edge/v1/sites", cloud.url()))).await;
    assert_eq!(
        (&sites[0]["name"], &sites[0]["registered"]),
        (&serde_json::json!("lab-a"), &serde_json::json!(false))
    );
    let st = &sites[0]["status"];
    assert_eq!(st["site"], "lab-a");
    assert!(!st["generation"].as_str().unwrap().is_empty(), "{sites}");
    assert!(st["reported_at"].as_i64().unwrap() > 0);
    let hist = ok(h.get(format!(
        "{}/boot/v1/endpoint-history?name={XNAME}",
        cloud.url()
    )))
    .await;
    assert_eq!(hist[0]["endpoint"], "bootscript");

    // Admin routes of the mounted services are not served from a copy.
    for (m, p) in [
        ("POST", "/boot/v1/bootparameters"),
        ("GET", "/boot/v1/bootparameters"),
        ("GET", "/boot/v1/dumpstate"),
        ("GET", "/cloud-init/admin/groups"),
        ("DELETE", "/cloud-init/meta-data"),
    ] {
        let r = h
            .request(m.parse().unwrap(), format!("{}{p}", edge.url))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 404 || r.status() == 405,
            "{m} {p}: {}",
            r.status()
        );
    }
    // cloud-init by source address; a forged X-Forwarded-For is ignored.
    let (s, md) = text(
        h.get(format!("{}/cloud-init/meta-data", edge.url))
            .header("X-Forwarded-For", "10.9.9.9"),
    )
    .await;
    assert_eq!(s, 200, "{md}");
    assert!(md.contains(XNAME), "{md}");
}

/// A file system of its own for the image cache: a tmpfs of a few bytes, mounted for the test
/// (root only), so "disk full" is the kernel's own ENOSPC rather than an emulation. Unmounted
/// (lazily, since the agent may still hold files open) when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

impl SmallDisk {
    /// `None` (with the reason printed) only when not running as root; CI runs as root.
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            other if is_root() => panic!("mounting a tmpfs failed as root: {other:?}"),
            other => {
                eprintln!(
                    "SKIPPED: mounting a small tmpfs for the disk-full test needs root ({other:?})"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, bytes: u64) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn metric(h: &reqwest::Client, edge: &Edge, name: &str) -> String {
    let (_, m) = text(h.get(format!("{}/metrics", edge.url))).await;
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("skyport_edge_{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {m}"))
        .to_string()
}

/// The value of counter `name` on the edge's `/metrics`.
async fn count(h: &reqwest::Client, edge: &Edge, name: &str) -> u64 {
    metric(h, edge, name).await.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_without_paths_backs_off_and_says_so() {
    let Some(disk) = SmallDisk::mount(1 << 20) else {
        return;
    };
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    // Twice the file system's size; the initrd fits.
    let kernel: Vec<u8> = (0..2u32 << 20).map(|i| (i % 249) as u8).collect();
    let (k, _) = seed(&h, &cloud.url(), &kernel, b"initrd").await;
    let opts = CacheOptions {
        max_bytes: u64::MAX,
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_millis(800),
    };
    let edge = edge_with(tempfile::tempdir().unwrap(), disk.path(), &cloud, opts).await;
    edge.syncer.poll().await.unwrap();
    let url = format!("{}/edge/v1/images/{k}", edge.url);

    assert_eq!(edge.site.prefetch().await.unwrap(), 1);
    assert_eq!(cloud.faults.gets_of(&k).len(), 1);
    // The space is reserved before the body is read: nothing is left behind, nothing written.
    assert_eq!(
        std::fs::read_dir(disk.path().join("tmp")).unwrap().count(),
        0
    );

    // A node asking gets 503 with Retry-After, and the problem names no file or directory.
    let r = h.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = r.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("disk space"), "{body}");
    assert!(!detail.contains('/'), "a path leaked: {body}");

    // /metrics and /readyz say what is wrong (and the agent stays ready: it still serves).
    assert_eq!(metric(&h, &edge, "cache_disk_full").await, "1");
    assert!(count(&h, &edge, "cache_disk_full_total").await >= 1);
    let (s, ready) = text(h.get(format!("{}/readyz", edge.url))).await;
    assert_eq!(s, 200, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let cache = &ready["image_cache"];
    assert_eq!(cache["disk_full"], true, "{ready}");
    assert_eq!(cache["failing"][0]["id"], k.as_str(), "{ready}");
    assert_eq!(cache["failing"][0]["disk_full"], true, "{ready}");
    assert!(
        !ready
            .to_string()
            .contains(&disk.path().display().to_string())
    );

    // Sync rounds (prefetch after each) and nodes asking in between: without a backoff every
    // round would download again. The cloud's own log shows each retry waited at least its
    // backoff (100, 200, 400, then 800 ms), so the attempts are few.
    let t0 = Instant::now();
    let mut rounds = 0;
    while rounds < 20 || t0.elapsed() < Duration::from_millis(2500) {
        assert_eq!(edge.site.prefetch().await.unwrap(), 1);
        let r = h.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 503);
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gets = cloud.faults.gets_of(&k);
    assert!(
        (3..=8).contains(&gets.len()),
        "{} downloads in {rounds} rounds",
        gets.len()
    );
    for (n, w) in gets.windows(2).enumerate() {
        let backoff = Duration::from_millis(100 << n.min(3));
        assert!(
            w[1] - w[0] >= backoff,
            "retry {n} came {:?} after the failure, before its {backoff:?} backoff",
            w[1] - w[0]
        );
    }
    assert!(count(&h, &edge, "cache_downloads_deferred_total").await > 0);
    assert_eq!(
        std::fs::read_dir(disk.path().join("tmp")).unwrap().count(),
        0
    );

    // Room made: the next prefetch fetches it (free space ends the wait early), nodes get it,
    // and the condition clears.
    disk.resize(8 << 20);
    assert_eq!(edge.site.prefetch().await.unwrap(), 0);
    let r = h.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kernel[..]);
    assert_eq!(metric(&h, &edge, "cache_disk_full").await, "0");
    let (_, ready) = text(h.get(format!("{}/readyz", edge.url))).await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["image_cache"]["disk_full"], false, "{ready}");
    assert_eq!(
        ready["image_cache"]["failing"],
        serde_json::json!([]),
        "{ready}"
    );
}

const MIB: usize = 1 << 20;

/// Silent media corruption: one byte of a cached file changed in place, with the file's
/// modification time put back, so size and mtime say nothing changed.
fn flip(path: &Path, at: usize) {
    use std::os::unix::fs::FileExt;
    let before = std::fs::metadata(path).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at as u64).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at as u64).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    let after = std::fs::metadata(path).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );
}

/// An edge in a fresh directory that has synced `kernel` (seeded in `cloud`) and cached it;
/// the image's key, and the file in the cache that holds it.
async fn cached(h: &reqwest::Client, cloud: &Cloud, kernel: &[u8]) -> (Edge, String, PathBuf) {
    let (k, _) = seed(h, &cloud.url(), kernel, b"initrd").await;
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join("images/sha256").join(sha(kernel));
    let edge = edge_at(dir, cloud, u64::MAX).await;
    edge.syncer.poll().await.unwrap();
    assert_eq!(edge.site.prefetch().await.unwrap(), 0);
    (edge, k, cached)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_never_served_in_full_or_in_ranges() {
    let mut cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    // Four checked chunks of 1 MiB, the last one short.
    let kernel: Vec<u8> = (0..3 * MIB + 1234).map(|i| (i * 7 % 251) as u8).collect();
    let (edge, k, cached) = cached(&h, &cloud, &kernel).await;
    assert_eq!(cloud.faults.gets_of(&k).len(), 1);
    let url = format!("{}/edge/v1/images/{k}", edge.url);

    // Corrupt past the first chunk: the answer starts, then stops before the bad chunk; the
    // response never completes and not one byte of that chunk is sent.
    flip(&cached, 2 * MIB + MIB / 2);
    let mut r = h.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    let complete = loop {
        match r.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert!(!complete, "a response with a corrupt chunk ran to the end");
    assert!(got.len() <= 2 * MIB, "{} bytes sent", got.len());
    assert_eq!(&got[..], &kernel[..got.len()]);
    assert_eq!(edge.metrics.cache_corrupt_dropped.load(Ordering::SeqCst), 1);
    assert_eq!(edge.metrics.image_reads_aborted.load(Ordering::SeqCst), 1);
    assert!(!cached.exists(), "the corrupt file must be dropped");
    // The next request fetches it again and gets every byte right.
    let r = h.get(&url).send().await.unwrap();
    assert_eq!(
        r.headers()["etag"],
        format!("\"{}\"", sha(&kernel)).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kernel[..]);
    assert_eq!(cloud.faults.gets_of(&k).len(), 2);

    // Corrupt inside the range asked for: found before answering, fetched again, and the node
    // gets the right bytes in the same request.
    flip(&cached, 100);
    let r = ranged(&h, &url, "bytes=50-149").await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 50-149/{}", kernel.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kernel[50..150]);
    assert_eq!(cloud.faults.gets_of(&k).len(), 3);
    assert_eq!(edge.metrics.cache_corrupt_dropped.load(Ordering::SeqCst), 2);

    // Range rules: several ranges or a malformed one get the whole image; a suffix longer than
    // the image is all of it.
    for v in ["bytes=0-1,5-6", "bytes=9-3", "bytes=x"] {
        let r = ranged(&h, &url, v).await;
        assert_eq!(r.status(), 200, "{v}");
        assert_eq!(r.bytes().await.unwrap().len(), kernel.len(), "{v}");
    }
    let r = h
        .get(&url)
        .header("Range", format!("bytes=-{}", kernel.len() * 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kernel[..]);

    // Corrupt with the cloud gone: no good copy to be had, so 503, never the bad bytes.
    flip(&cached, 3 * MIB + 10);
    cloud.down().await;
    let r = ranged(&h, &url, format!("bytes={}-", 3 * MIB)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = h.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(!cached.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_verification_finds_corruption_without_a_restart() {
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    let kernel: Vec<u8> = (0..MIB + MIB / 2).map(|i| (i * 13 % 241) as u8).collect();
    let (edge, k, cached) = cached(&h, &cloud, &kernel).await;

    let dropped = Arc::new(tokio::sync::Notify::new());
    let verifier = tokio::spawn(
        edge.site
            .cache
            .clone()
            .verify_every(Duration::from_millis(100), dropped.clone()),
    );
    flip(&cached, MIB + 7);
    // Generous: the pass runs every 100 ms; this only bounds a hang.
    tokio::time::timeout(Duration::from_secs(60), dropped.notified())
        .await
        .expect("the scheduled verification did not drop the corrupt file");
    verifier.abort();
    assert!(!cached.exists());
    assert_eq!(edge.metrics.cache_corrupt_dropped.load(Ordering::SeqCst), 1);
    assert_eq!(
        edge.metrics.image_requests.load(Ordering::SeqCst),
        0,
        "found without a read"
    );
    assert!(count(&h, &edge, "cache_verified_files_total").await >= 1);
    assert_ne!(
        metric(&h, &edge, "cache_last_verified_timestamp_seconds").await,
        "0"
    );
    // The daemon wakes the prefetch on that signal; it fetches a good copy.
    assert_eq!(edge.site.prefetch().await.unwrap(), 0);
    assert_eq!(cloud.faults.gets_of(&k).len(), 2);
    assert_eq!(std::fs::read(&cached).unwrap(), kernel);
}

/// Group-based boot at the edge: BootConfigurations selecting nodes by inventory group (with a
/// priority between two groups), by xname pattern and as a catch-all, beside a node's own BSS
/// entry. Once synced, the edge answers both script routes from its copy with the cloud gone,
/// and the boot-service scripts are byte for byte the cloud's (plain URLs, so nothing in them
/// depends on where the node fetches from); BSS's scripts boot the same kernel with the same
/// parameters, and differ only in the URLs of the server itself (cloud-init, the chain back).
/// The node's metadata-service documents (a templated group rendered) are the cloud's too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_matched_configurations_boot_from_the_copy_as_from_the_cloud() {
    let mut cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    let base = cloud.url();
    let nodes = [
        ("x1000c0s0b0n0", "52:54:00:00:10:00"),
        ("x1000c0s0b0n1", "52:54:00:00:10:01"),
        ("x1000c0s1b0n0", "52:54:00:00:10:02"),
        ("x1000c0s2b0n0", "52:54:00:00:10:03"),
        ("x1000c0s3b0n0", "52:54:00:00:10:04"),
    ];
    for (i, (x, mac)) in nodes.iter().enumerate() {
        ok(h.post(format!("{base}/hsm/v2/State/Components")).json(&serde_json::json!({"Components": [
            {"ID": x, "State": "Ready", "Role": "Compute", "NID": i + 1, "Type": "Node", "Enabled": true}]})))
        .await;
        // The first node is the one at this test's address (metadata by source IP).
        let mut nic = serde_json::json!({"MACAddress": mac, "ComponentID": x});
        if i == 0 {
            nic["IPAddresses"] = serde_json::json!([{"IPAddress": "127.0.0.1"}]);
        }
        ok(
            h.post(format!("{base}/hsm/v2/Inventory/EthernetInterfaces"))
                .json(&nic),
        )
        .await;
    }
    for (label, members) in [
        ("compute", vec![nodes[0].0, nodes[1].0]),
        ("gpu", vec![nodes[1].0]),
    ] {
        ok(h.post(format!("{base}/hsm/v2/groups"))
            .json(&serde_json::json!({"label": label, "members": {"ids": members}})))
        .await;
    }
    for (name, spec) in [
        (
            "compute",
            serde_json::json!({"groups": ["compute"], "kernel": "http://10.0.0.1/compute/vmlinuz", "initrd": "http://10.0.0.1/compute/initrd", "params": "console=ttyS0"}),
        ),
        (
            "gpu",
            serde_json::json!({"groups": ["gpu"], "priority": 10, "kernel": "http://10.0.0.1/gpu/vmlinuz"}),
        ),
        (
            "slot-1",
            serde_json::json!({"hosts": ["x1000c0s1b*"], "kernel": "http://10.0.0.1/slot1/vmlinuz"}),
        ),
        (
            "everything-else",
            serde_json::json!({"kernel": "http://10.0.0.1/fallback/vmlinuz"}),
        ),
    ] {
        ok(h.post(format!("{base}/boot-service/bootconfigurations"))
            .json(&serde_json::json!({"metadata": {"name": name}, "spec": spec})))
        .await;
    }
    ok(h.post(format!("{base}/boot/v1/bootparameters"))
        .json(&serde_json::json!({
        "hosts": [nodes[3].0], "kernel": "http://10.0.0.1/own/vmlinuz", "params": "own=1"})))
    .await;
    let want = ["compute", "gpu", "slot-1", nodes[3].0, "everything-else"];
    // Its cloud-init data through metadata-service (OpenCHAMI v0.2): a templated group.
    ok(h.post(format!("{base}/metadata-service/clusterdefaultss"))
        .json(&serde_json::json!({
        "spec": {"base_url": "http://10.0.0.1/metadata-service", "cluster_name": "lab"}})))
    .await;
    ok(h.post(format!("{base}/metadata-service/groups"))
        .json(&serde_json::json!({
        "metadata": {"name": "compute"},
        "spec": {"template": "#cloud-config\nhostname: {{ hostname }}\nrunner: {{ scheduler }}\n",
                 "metaData": {"scheduler": "slurm"}}})))
    .await;
    let node_docs = ["meta-data", "vendor-data", "network-config", "compute.yaml"];
    let mut docs_from_cloud = Vec::new();
    for d in node_docs {
        let r = h
            .get(format!("{base}/metadata-service/{d}"))
            .header("X-Forwarded-For", "127.0.0.1");
        docs_from_cloud.push(text(r).await);
    }
    assert_eq!(
        docs_from_cloud[3],
        (
            200,
            "#cloud-config\nhostname: la0001\nrunner: slurm\n".to_string()
        )
    );

    let mut from_cloud = Vec::new();
    for (_, mac) in &nodes {
        let v02 = text(h.get(format!("{base}/boot-service/bootscript?mac={mac}"))).await;
        let bss = text(h.get(format!("{base}/boot/v1/bootscript?mac={mac}"))).await;
        from_cloud.push((v02, bss));
    }
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, u64::MAX).await;
    let Polled::Applied(_) = edge.syncer.poll().await.unwrap() else {
        panic!("the first poll must apply a snapshot")
    };
    assert_eq!(edge.site.rebuild_index().await.unwrap(), nodes.len());
    cloud.down().await;

    for (d, from_cloud) in node_docs.iter().zip(&docs_from_cloud) {
        let at_edge = text(h.get(format!("{}/metadata-service/{d}", edge.url))).await;
        assert_eq!(
            &at_edge, from_cloud,
            "{d}: the edge's metadata-service answer is the cloud's"
        );
    }
    for (((_, mac), (v02, bss)), name) in nodes.iter().zip(&from_cloud).zip(want) {
        assert_eq!(v02.0, 200, "{}", v02.1);
        assert!(
            v02.1.contains(&format!("# Configuration: {name}\n")),
            "{mac} boots {name}: {}",
            v02.1
        );
        let before = edge.metrics.bootscript_requests.load(Ordering::SeqCst);
        let at_edge = text(h.get(format!("{}/boot-service/bootscript?mac={mac}", edge.url))).await;
        assert_eq!(
            &at_edge, v02,
            "{mac}: the edge's boot-service script is the cloud's"
        );
        // A boot-service script request is a boot stage as BSS's is.
        assert_eq!(
            edge.metrics.bootscript_requests.load(Ordering::SeqCst),
            before + 1
        );
        let at_edge = text(h.get(format!("{}/boot/v1/bootscript?mac={mac}", edge.url))).await;
        // The kernel line, but for the cloud-init URL, which is each server's own.
        let kernel_line = |s: &str| {
            s.lines().find(|l| l.starts_with("kernel ")).map(|l| {
                l.split(' ')
                    .filter(|w| !w.starts_with("ds="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        };
        assert_eq!(at_edge.0, 200);
        assert!(kernel_line(&bss.1).is_some(), "{mac}: {}", bss.1);
        assert_eq!(
            kernel_line(&at_edge.1),
            kernel_line(&bss.1),
            "{mac}: BSS's script boots the same at the edge"
        );
    }
}
