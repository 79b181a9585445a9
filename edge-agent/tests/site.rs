//! The edge agent serving a site from its synced copy: a real local cloud (the `skyport serve`
//! router on SQLite and filesystem images) behind a switch that makes it fail, answer garbage,
//! or go away; the agent's syncer, image cache and node listener on real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use skyport_edge::cache::ImageCache;
use skyport_edge::cloud::CloudClient;
use skyport_edge::metrics::Metrics;
use skyport_edge::replica::Replica;
use skyport_edge::serve::Site;
use skyport_edge::sync::{Polled, SyncError, Syncer};
use skyport_edge::token::TokenSource;
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
}

async fn faulty(State(f): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/images/v1/blobs/") && req.method() == axum::http::Method::GET {
        f.blob_gets.fetch_add(1, Ordering::SeqCst);
    }
    let snapshot = path == "/edge/v1/snapshot";
    match f.mode.load(Ordering::SeqCst) {
        FAIL_500 => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        GARBAGE if snapshot => "<html>proxy login</html>".into_response(),
        WRONG_FORMAT if snapshot => r#"{"format":99,"generation":"g","tables":{}}"#.into_response(),
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
            }),
            task: None,
        };
        c.up().await;
        c
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) {
        let store: Arc<dyn skyport_store::Store> =
            Arc::new(skyport_sync::Generational::new(Arc::new(
                skyport_store_sqlite::SqliteStore::open(self.dir.path().join("cloud.db")).unwrap(),
            )));
        let blobs = Arc::new(skyport_images::FsBlobs::open(self.dir.path(), &self.url()).unwrap());
        let api = skyport::api(
            store,
            skyport_ipxe::Settings::default(),
            blobs,
            format!("{}/cloud-init", self.url()),
            Arc::new(skyport_sync::LocalCredentials::new(None)),
            None,
        )
        .layer(axum::middleware::from_fn_with_state(
            self.faults.clone(),
            faulty,
        ));
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, api).await.unwrap();
        }));
    }

    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
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
    let client = CloudClient::new(&cloud.url(), TokenSource::none()).unwrap();
    let metrics = Arc::new(Metrics::default());
    let replica = Arc::new(Replica::open(dir.path()).unwrap());
    let cache = ImageCache::open(
        &dir.path().join("images"),
        cache_max,
        Some(client.clone()),
        metrics.clone(),
    )
    .await
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let site = Site::new(replica.clone(), cache, metrics.clone(), &url, 30);
    let app = site
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
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
    // Steady state: the same generation is a 304, nothing downloaded or applied.
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
    let part = h
        .get(&kernel_url)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &kernel[1000..2000]);
    let beyond = h
        .get(&kernel_url)
        .header("Range", "bytes=999999999-")
        .send()
        .await
        .unwrap();
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
    let got = h
        .get(format!("{}/edge/v1/images/{k}", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &kernel[..]);
    assert_eq!(edge.metrics.cache_misses.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cloud_answers_never_replace_the_last_good_snapshot() {
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    seed(&h, &cloud.url(), b"kernel", b"initrd").await;
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, u64::MAX).await;
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
        (GARBAGE, "unreadable snapshot"),
        (TRUNCATED, "unreadable snapshot"),
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
    let r = h
        .get(format!("{}/edge/v1/images/{k}", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kernel[..]);
    assert_eq!(edge.metrics.cache_misses.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nodes_wait_and_are_reported_and_the_edge_is_read_only() {
    let cloud = Cloud::start().await;
    let h = reqwest::Client::new();
    seed(&h, &cloud.url(), b"k", b"i").await;
    let edge = edge_at(tempfile::tempdir().unwrap(), &cloud, u64::MAX).await;
    edge.syncer.poll().await.unwrap();

    let s = script(&h, &edge, "52-54-00-99-88-77").await;
    assert!(
        s.contains("sleep") && s.contains("mac=52:54:00:99:88:77"),
        "{s}"
    );
    script(&h, &edge, MAC).await;
    let (s, body) = text(h.get(format!("{}/boot/v1/bootscript?mac=zz%ZZ&retry=x", edge.url))).await;
    assert_eq!(s, 400, "{body}");

    let client = CloudClient::new(&cloud.url(), TokenSource::none()).unwrap();
    let sent = skyport_edge::report::report_once(
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
        .list_all(skyport_edge::replica::UNKNOWN_MACS, None)
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
