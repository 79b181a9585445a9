//! `skyport-bench sites`: the edge sync feed at installation scale.
//!
//! Seeds `--sites` sites of `--nodes` nodes each (a cabinet per site, assigned to it; every node
//! with a component, an interface and boot parameters), through the local server's routers over
//! the change log, on SQLite or (`--dynamodb`) DynamoDB Local behind the conflict harness. Then,
//! as each site's agent would: a full paged snapshot per site (time, pages, records), an
//! unchanged poll of every site (`GET /edge/v1/changes` with the `ETag`: the status and the
//! store reads it cost, counted under the router), one node's boot parameters changed, and every
//! site polled again (the changed site's records and bytes, the others' statuses and reads).
//! The reference is the size of the change: one record. Store reads are counted at the store
//! trait (one `list`, `get_many`, `get_keys` ... call each), the unit a DynamoDB call maps to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skyport_store::{IndexKey, Page, PageRequest, Record, Result, Store, Table, Write};
use tower::ServiceExt;

pub struct Params {
    pub sites: usize,
    pub nodes: usize,
    pub dynamodb: bool,
    /// Also sync a real agent (the edge library's syncer and replica) over HTTP, from nothing,
    /// and report its time and the process's peak memory meanwhile.
    pub agent: bool,
}

/// Counts reads made through it.
struct Counted {
    inner: Arc<dyn Store>,
    reads: AtomicU64,
}

impl Counted {
    fn bump(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Store for Counted {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn get(&self, table: Table, id: &str) -> Result<Option<Record>> {
        self.bump();
        self.inner.get(table, id).await
    }
    async fn get_many(&self, table: Table, ids: &[String]) -> Result<Vec<Record>> {
        self.bump();
        self.inner.get_many(table, ids).await
    }
    async fn get_keys(&self, keys: &[(Table, String)]) -> Result<Vec<(Table, Record)>> {
        self.bump();
        self.inner.get_keys(keys).await
    }
    async fn list(&self, table: Table, by: Option<&IndexKey>, page: PageRequest) -> Result<Page> {
        self.bump();
        self.inner.list(table, by, page).await
    }
    async fn get_unique(&self, key: &IndexKey) -> Result<Option<(String, String)>> {
        self.bump();
        self.inner.get_unique(key).await
    }
    async fn write(&self, ops: Vec<Write>) -> Result<()> {
        self.inner.write(ops).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

struct Resp {
    status: u16,
    etag: Option<String>,
    bytes: usize,
    body: Value,
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    inm: Option<&str>,
) -> anyhow::Result<Resp> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = inm {
        b = b.header("if-none-match", t);
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let r = app.clone().oneshot(b.body(body)?).await?;
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = r.into_body().collect().await?.to_bytes();
    Ok(Resp {
        status,
        etag,
        bytes: bytes.len(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

async fn ok(app: &axum::Router, method: &str, path: &str, body: Value) -> anyhow::Result<()> {
    let r = call(app, method, path, Some(body), None).await?;
    if r.status >= 300 {
        bail!("{method} {path}: {} {}", r.status, r.body);
    }
    Ok(())
}

fn site(i: usize) -> String {
    format!("s{i:03}")
}

fn cabinet(i: usize) -> String {
    format!("x{}", 1000 + i)
}

fn xname(i: usize, n: usize) -> String {
    // 8 nodes per BMC, BMCs dealt over the 8 chassis (slots are unbounded in xnames).
    format!("{}c{}s{}b0n{}", cabinet(i), (n / 8) % 8, n / 64, n % 8)
}

fn mac(i: usize, n: usize) -> String {
    format!(
        "02:{i:02x}:{:02x}:{:02x}:{:02x}:00",
        n >> 16,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    println!(
        "skyport-bench sites: {} sites x {} nodes on {}, {} CPUs",
        p.sites,
        p.nodes,
        if p.dynamodb {
            "DynamoDB Local behind the conflict harness"
        } else {
            "SQLite"
        },
        crate::cpus()
    );
    let dir = tempfile::tempdir()?;
    let mut _keep = None;
    let raw: Arc<dyn Store> = if p.dynamodb {
        let ddb = skyport_testkit::DynamoLocal::start().context("DynamoDB Local")?;
        let harness = skyport_testkit::dynamo_harness::DynamoHarness::start(
            &ddb.endpoint(),
            skyport_testkit::dynamo_harness::HarnessConfig::default(),
        )
        .await?;
        let client = skyport_testkit::dynamo_client(&harness.endpoint(), None).await;
        let store = skyport_store_dynamo::DynamoStore::new(client, "sites-bench");
        store.ensure_table().await?;
        _keep = Some((ddb, harness));
        Arc::new(store)
    } else {
        Arc::new(skyport_store_sqlite::SqliteStore::open(
            dir.path().join("db"),
        )?)
    };
    skyport_sync::changes::backfill(raw.as_ref()).await?;
    let counted = Arc::new(Counted {
        inner: skyport_sync::ChangeLog::local(raw),
        reads: AtomicU64::new(0),
    });
    let blobs = Arc::new(skyport_images::FsBlobs::open(
        dir.path(),
        "http://127.0.0.1:1",
    )?);
    let app = skyport::api(
        counted.clone(),
        skyport_ipxe::Settings::default(),
        blobs,
        "http://127.0.0.1:1/cloud-init".into(),
        Arc::new(skyport_sites::LocalCredentials::new(None)),
        None,
        None,
    );

    let t = Instant::now();
    for i in 0..p.sites {
        ok(&app, "POST", "/edge/v1/sites", json!({"name": site(i)})).await?;
        ok(
            &app,
            "PUT",
            &format!("/edge/v1/sites/{}/xnames/{}", site(i), cabinet(i)),
            json!({}),
        )
        .await?;
        for chunk in (0..p.nodes).collect::<Vec<_>>().chunks(1000) {
            let comps: Vec<Value> = chunk
                .iter()
                .map(|n| {
                    json!({"ID": xname(i, *n), "State": "Ready", "Role": "Compute",
                                "NID": i * p.nodes + n + 1, "Type": "Node", "Enabled": true})
                })
                .collect();
            ok(
                &app,
                "POST",
                "/hsm/v2/State/Components",
                json!({"Components": comps}),
            )
            .await?;
            let hosts: Vec<String> = chunk.iter().map(|n| xname(i, *n)).collect();
            ok(
                &app,
                "POST",
                "/boot/v1/bootparameters",
                json!({"hosts": hosts, "kernel": "http://k/vmlinuz", "params": "console=ttyS0"}),
            )
            .await?;
        }
        for n in 0..p.nodes {
            ok(
                &app,
                "POST",
                "/hsm/v2/Inventory/EthernetInterfaces",
                json!({"MACAddress": mac(i, n), "ComponentID": xname(i, n)}),
            )
            .await?;
        }
    }
    println!(
        "seeded {} nodes (component, interface, boot parameters each) in {:.1} s",
        p.sites * p.nodes,
        t.elapsed().as_secs_f64()
    );

    // First sync of every site: the paged snapshot.
    let mut cursors = Vec::new();
    let (mut pages, mut records, mut bytes) = (0usize, 0usize, 0usize);
    let reads0 = counted.reads.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut slowest = 0f64;
    for i in 0..p.sites {
        let ts = Instant::now();
        let mut page: Option<String> = None;
        let cursor = loop {
            let path = match &page {
                None => format!("/edge/v1/snapshot?site={}", site(i)),
                Some(tok) => format!("/edge/v1/snapshot?site={}&page={tok}", site(i)),
            };
            let r = call(&app, "GET", &path, None, None).await?;
            if r.status != 200 {
                bail!("{path}: {} {}", r.status, r.body);
            }
            pages += 1;
            bytes += r.bytes;
            if let Some(tables) = r.body["tables"].as_object() {
                records += tables
                    .values()
                    .filter_map(Value::as_array)
                    .map(Vec::len)
                    .sum::<usize>();
            }
            match r.body["next"].as_str() {
                Some(n) => page = Some(n.to_string()),
                None => break r.body["cursor"].as_str().unwrap_or_default().to_string(),
            }
        };
        slowest = slowest.max(ts.elapsed().as_secs_f64());
        cursors.push((cursor, None::<String>));
    }
    let reads = counted.reads.load(Ordering::Relaxed) - reads0;
    println!(
        "snapshots: {} sites in {:.2} s (slowest {:.3} s), {pages} pages, {records} records, {:.1} MB JSON, {} store reads ({:.1} per page)",
        p.sites,
        t.elapsed().as_secs_f64(),
        slowest,
        bytes as f64 / 1e6,
        reads,
        reads as f64 / pages.max(1) as f64
    );

    // Catch up once (entries of the last seconds come again), then the steady state.
    for (i, (cursor, tag)) in cursors.iter_mut().enumerate() {
        poll(&app, i, cursor, tag).await?;
    }
    let (unchanged, max_reads, statuses) = poll_all(&app, &counted, &mut cursors, 0).await?;
    println!(
        "unchanged poll of every site: {unchanged} of {} answered 304, at most {max_reads} store reads per poll; statuses {statuses:?}",
        p.sites
    );

    // One node's boot parameters change.
    let x = xname(0, 0);
    ok(
        &app,
        "PUT",
        "/boot/v1/bootparameters",
        json!({"hosts": [x], "kernel": "http://k/vmlinuz-2", "params": "console=ttyS0"}),
    )
    .await?;
    let reads0 = counted.reads.load(Ordering::Relaxed);
    let (cursor, tag) = &mut cursors[0];
    let r = call(
        &app,
        "GET",
        &format!("/edge/v1/changes?site={}&after={cursor}", site(0)),
        None,
        tag.as_deref(),
    )
    .await?;
    let changed_reads = counted.reads.load(Ordering::Relaxed) - reads0;
    let n: usize = r.body["tables"]
        .as_object()
        .map(|t| t.values().filter_map(Value::as_array).map(Vec::len).sum())
        .unwrap_or(0);
    println!(
        "one node's boot parameters changed: its site got HTTP {}, {n} record(s), {} bytes, {changed_reads} store reads (reference: 1 record)",
        r.status, r.bytes
    );
    *cursor = r.body["cursor"].as_str().unwrap_or_default().to_string();
    *tag = r.etag;
    let (unchanged, max_reads, statuses) = poll_all(&app, &counted, &mut cursors[1..], 1).await?;
    println!(
        "the other {} sites: {unchanged} answered 304, at most {max_reads} store reads per poll; statuses {statuses:?}",
        p.sites - 1
    );
    if p.agent {
        agent(app, dir.path(), p.sites * p.nodes * 3).await?;
    }
    Ok(())
}

/// The process's peak resident memory since the last [`reset_peak`], in MiB.
fn peak_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kb / 1024.0)
}

fn reset_peak() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")
}

/// A real agent's first sync of the whole installation over HTTP (without a site token: on
/// one site, its share), then its steady-state poll: time, and peak memory of this process
/// (the agent and the in-process cloud serving it, so an upper bound for the agent).
async fn agent(app: axum::Router, dir: &std::path::Path, records: usize) -> anyhow::Result<()> {
    use skyport_edge::internals::{CloudClient, Metrics, Polled, Replica, Syncer, TokenSource};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let edge = dir.join("edge");
    std::fs::create_dir_all(&edge)?;
    let replica = Arc::new(Replica::open(&edge)?);
    let syncer = Syncer::new(
        CloudClient::new(&url, TokenSource::none())?,
        replica,
        Arc::new(Metrics::default()),
    );
    let before = peak_mib()?;
    reset_peak()?;
    let t = Instant::now();
    let first = syncer.poll().await?;
    let took = t.elapsed().as_secs_f64();
    let peak = peak_mib()?;
    let Polled::Applied(a) = first else {
        bail!("the first sync applied nothing");
    };
    let t = Instant::now();
    let second = syncer.poll().await?;
    println!(
        "agent first sync: {} of {records} records in {took:.1} s; peak RSS of the process meanwhile {peak:.0} MiB (before it: {before:.0} MiB); next poll {:?} in {:.1} ms",
        a.records,
        second,
        t.elapsed().as_secs_f64() * 1000.0
    );
    server.abort();
    Ok(())
}

/// Polls site `i` until caught up.
async fn poll(
    app: &axum::Router,
    i: usize,
    cursor: &mut String,
    tag: &mut Option<String>,
) -> anyhow::Result<u16> {
    loop {
        let r = call(
            app,
            "GET",
            &format!("/edge/v1/changes?site={}&after={cursor}", site(i)),
            None,
            tag.as_deref(),
        )
        .await?;
        match r.status {
            304 => return Ok(304),
            200 => {
                *cursor = r.body["cursor"].as_str().unwrap_or_default().to_string();
                *tag = r.etag;
                if !r.body["more"].as_bool().unwrap_or(false) {
                    return Ok(200);
                }
            }
            s => bail!("changes of {}: {s} {}", site(i), r.body),
        }
    }
}

/// One poll of each site (`cursors` are those of the sites from `first` on): how many were
/// 304, the most store reads one cost, and the statuses seen.
async fn poll_all(
    app: &axum::Router,
    counted: &Counted,
    cursors: &mut [(String, Option<String>)],
    first: usize,
) -> anyhow::Result<(usize, u64, std::collections::BTreeMap<u16, usize>)> {
    let (mut unchanged, mut max_reads) = (0, 0);
    let mut statuses = std::collections::BTreeMap::new();
    for (k, (cursor, tag)) in cursors.iter_mut().enumerate() {
        let before = counted.reads.load(Ordering::Relaxed);
        let r = call(
            app,
            "GET",
            &format!("/edge/v1/changes?site={}&after={cursor}", site(k + first)),
            None,
            tag.as_deref(),
        )
        .await?;
        max_reads = max_reads.max(counted.reads.load(Ordering::Relaxed) - before);
        *statuses.entry(r.status).or_insert(0) += 1;
        if r.status == 304 {
            unchanged += 1;
        }
    }
    Ok((unchanged, max_reads, statuses))
}
