//! `skyport-bench boot-during-write`: boot-script latency of known nodes while the largest
//! accepted bulk write runs, against the same requests on an idle server.
//!
//! The server is the local one as `skyport serve` builds it (embedded SQLite store behind the
//! sync generation, the background endpoint-history writer, real HTTP on 127.0.0.1); `--inline`
//! writes history before each answer instead, as before the writer existed. Boot scripts are
//! asked for open-loop, at `--rate` requests per second whatever the answers do (as booting
//! nodes do; a closed loop of clients would stop asking while stalled and hide the stall), and
//! each latency counts from the moment the request was due: first `--requests` requests on the
//! idle server, then for as long as one `POST /hsm/v2/State/Components` with a body as large as
//! the API accepts is in flight. Requests due while the store was writing that batch (seen
//! through a wrapper around the store) are reported on their own, since that is when a boot
//! script used to wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skyport_store::{IndexKey, Page, PageRequest, Record, Store, Table, Write};

use skyport_testkit::serve::{Served, largest_bulk_body};

use crate::{Stats, TARGET_BOOTSCRIPT_P99_MS, check_script, node_mac, sqlite_store, stats};

pub struct Params {
    pub nodes: usize,
    pub requests: usize,
    /// Boot-script requests per second.
    pub rate: u32,
    pub inline: bool,
}

/// Batches at least this large are the bulk write (history batches are far smaller).
const BULK_OPS: usize = 10_000;

/// The store, with a flag that is up while a bulk batch is being written, and the times the
/// bulk request's big read and write started and ended.
struct Observed {
    inner: Arc<dyn Store>,
    bulk: Arc<AtomicBool>,
    marks: Arc<std::sync::Mutex<Vec<(&'static str, Instant)>>>,
}

impl Observed {
    fn mark(&self, what: &'static str) {
        if let Ok(mut m) = self.marks.lock() {
            m.push((what, Instant::now()));
        }
    }
}

#[async_trait::async_trait]
impl Store for Observed {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn get(&self, t: Table, id: &str) -> skyport_store::Result<Option<Record>> {
        self.inner.get(t, id).await
    }
    async fn get_many(&self, t: Table, ids: &[String]) -> skyport_store::Result<Vec<Record>> {
        let bulk = ids.len() >= BULK_OPS;
        if bulk {
            self.mark("bulk read starts");
        }
        let r = self.inner.get_many(t, ids).await;
        if bulk {
            self.mark("bulk read ends");
        }
        r
    }
    async fn get_keys(&self, k: &[(Table, String)]) -> skyport_store::Result<Vec<(Table, Record)>> {
        self.inner.get_keys(k).await
    }
    async fn list(
        &self,
        t: Table,
        by: Option<&IndexKey>,
        p: PageRequest,
    ) -> skyport_store::Result<Page> {
        self.inner.list(t, by, p).await
    }
    async fn get_unique(&self, k: &IndexKey) -> skyport_store::Result<Option<(String, String)>> {
        self.inner.get_unique(k).await
    }
    async fn write(&self, ops: Vec<Write>) -> skyport_store::Result<()> {
        let bulk = ops.len() >= BULK_OPS;
        if bulk {
            self.mark("store write starts");
            self.bulk.store(true, Ordering::SeqCst);
        }
        let r = self.inner.write(ops).await;
        if bulk {
            self.bulk.store(false, Ordering::SeqCst);
            self.mark("store write ends");
        }
        r
    }
    async fn ping(&self) -> skyport_store::Result<()> {
        self.inner.ping().await
    }
    async fn list_all(
        &self,
        t: Table,
        by: Option<&IndexKey>,
    ) -> skyport_store::Result<Vec<Record>> {
        self.inner.list_all(t, by).await
    }
}

struct Sample {
    due: Instant,
    /// From the moment the request was due to the end of the answer.
    took: Duration,
    in_write: bool,
}

/// Boot scripts of known nodes at `p.rate` per second until `stop(requests issued so far)`;
/// returns the samples and the time over which they were issued.
async fn open_loop(
    client: &reqwest::Client,
    base: &str,
    p: &Params,
    bulk: &Arc<AtomicBool>,
    stop: impl Fn(usize) -> bool,
) -> anyhow::Result<(Vec<Sample>, Duration)> {
    let period = Duration::from_secs_f64(1.0 / f64::from(p.rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = 0usize;
    loop {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        if stop(i) {
            break;
        }
        let n = i % p.nodes;
        let url = format!("{base}/boot/v1/bootscript?mac={}", node_mac(n / 4, n % 4));
        let in_write = bulk.load(Ordering::SeqCst);
        let client = client.clone();
        tasks.spawn(async move {
            let body = client.get(url).send().await?.text().await?;
            let took = due.elapsed();
            check_script(&body)?;
            Ok::<_, anyhow::Error>(Sample {
                due: due.into_std(),
                took,
                in_write,
            })
        });
        i += 1;
    }
    let wall = start.elapsed();
    let mut out = Vec::with_capacity(i);
    while let Some(r) = tasks.join_next().await {
        out.push(r.context("bootscript task")??);
    }
    Ok((out, wall))
}

/// One result line; `rate` only where the samples span the whole wall time measured.
fn line(name: &str, samples: &[Duration], wall: Duration, idle_p99: Option<f64>, rate: bool) {
    let max = samples.iter().max().copied().unwrap_or_default();
    let s: Stats = stats(samples.to_vec(), wall);
    let vs_idle = idle_p99.map_or(String::new(), |i| format!("  p99/idle {:.2}", s.p99 / i));
    let rate = if rate {
        format!("{:>8.1} req/s", s.throughput)
    } else {
        format!("{:>14}", "")
    };
    println!(
        "{name:<44} p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  {rate}  p99/target {:.2}{vs_idle}",
        s.p50,
        s.p99,
        max.as_secs_f64() * 1000.0,
        s.p99 / TARGET_BOOTSCRIPT_P99_MS
    );
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let raw = sqlite_store(dir.path(), "skyport.db")?;
    let bulk = Arc::new(AtomicBool::new(false));
    let marks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let observed: Arc<dyn Store> = Arc::new(Observed {
        inner: raw,
        bulk: bulk.clone(),
        marks: marks.clone(),
    });
    let store: Arc<dyn Store> = skyport_sync::ChangeLog::local(observed);
    let mut background = tokio::task::JoinSet::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let queued = skyport::history(store.clone(), &mut background, cancel.clone());
    let history = if p.inline {
        skyport_boot::history::History::inline(store.clone())
    } else {
        queued.clone()
    };
    let settings = skyport_ipxe::Settings {
        chain_base: "http://10.0.0.1:27779".into(),
        advertise: Some("http://10.0.0.1:27779/cloud-init".into()),
        ..skyport_ipxe::Settings::default()
    };
    let blobs = Arc::new(skyport_images::FsBlobs::open(
        dir.path(),
        "http://10.0.0.1:27779",
    )?);
    let routes = skyport::api(
        store,
        settings,
        blobs,
        "http://10.0.0.1:27779/cloud-init".into(),
        Arc::new(skyport_sites::NoCredentials("none in this benchmark")),
        None,
        Some(history.clone()),
    );
    let server = Served::start(skyport_http::app(routes)).await?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();

    let t = Instant::now();
    crate::seed_boot(&client, &base, p.nodes).await?;
    println!(
        "seeded {} nodes with boot parameters in {:.1} s; endpoint history {}",
        p.nodes,
        t.elapsed().as_secs_f64(),
        if p.inline {
            "written inline (before the background writer)"
        } else {
            "queued for the background writer"
        }
    );

    // Idle: the same requests with nothing else going on.
    let (idle, idle_wall) = open_loop(&client, &base, &p, &bulk, |i| i >= p.requests).await?;
    let idle: Vec<Duration> = idle.iter().map(|s| s.took).collect();
    let idle_p99 = stats(idle.clone(), idle_wall).p99;

    // During the largest bulk POST.
    // New xnames from cabinet 7000 on, clear of the seeded nodes.
    let (body, count) = largest_bulk_body(skyport_http::MAX_BODY_BYTES, 7000);
    let size = body.len();
    let done = Arc::new(AtomicBool::new(false));
    let post_start = Instant::now();
    let post = {
        let client = client.clone();
        let url = format!("{base}/hsm/v2/State/Components");
        let done = done.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            done.store(true, Ordering::SeqCst);
            let r = r?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status != 204 {
                bail!("bulk POST: {status} {text}");
            }
            Ok::<_, anyhow::Error>(t.elapsed())
        })
    };
    let (during, during_wall) =
        open_loop(&client, &base, &p, &bulk, |_| done.load(Ordering::SeqCst)).await?;
    let post_took = post.await.context("bulk POST task")??;
    println!(
        "bulk POST: {count} components, {:.1} MB, {:.1} s",
        size as f64 / 1e6,
        post_took.as_secs_f64()
    );
    line(
        &format!("bootscript idle ({})", idle.len()),
        &idle,
        idle_wall,
        None,
        true,
    );
    let all: Vec<Duration> = during.iter().map(|s| s.took).collect();
    line(
        &format!("bootscript during the bulk POST ({})", all.len()),
        &all,
        during_wall,
        Some(idle_p99),
        true,
    );
    let in_write: Vec<Duration> = during
        .iter()
        .filter(|s| s.in_write)
        .map(|s| s.took)
        .collect();
    // Where in the bulk request the slow boot scripts were due.
    let mut phases: Vec<(&'static str, Instant)> = vec![("POST sent", post_start)];
    if let Ok(m) = marks.lock() {
        phases.extend(m.iter().copied());
    }
    phases.push(("POST answered", post_start + post_took));
    let slow = |from: Instant, to: Instant| {
        let due: Vec<&Sample> = during
            .iter()
            .filter(|s| s.due >= from && s.due < to)
            .collect();
        let n = due
            .iter()
            .filter(|s| s.took.as_secs_f64() * 1000.0 > TARGET_BOOTSCRIPT_P99_MS)
            .count();
        let max = due.iter().map(|s| s.took).max().unwrap_or_default();
        (due.len(), n, max)
    };
    for w in phases.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (n, over, max) = slow(a.1, b.1);
        println!(
            "  +{:>6.2} s .. +{:>6.2} s  {:<18} .. {:<18} {n:>6} due, {over:>5} over {TARGET_BOOTSCRIPT_P99_MS} ms, max {:>8.2} ms",
            (a.1 - post_start).as_secs_f64(),
            (b.1 - post_start).as_secs_f64(),
            a.0,
            b.0,
            max.as_secs_f64() * 1000.0
        );
    }
    if in_write.is_empty() {
        println!("no boot script was due while the bulk batch was being written");
    } else {
        line(
            &format!("bootscript during its store write ({})", in_write.len()),
            &in_write,
            during_wall,
            Some(idle_p99),
            false,
        );
    }

    server.stop().await?;
    cancel.cancel();
    while let Some(r) = background.join_next().await {
        r.context("history writer")?;
    }
    let h = history.stats();
    println!(
        "endpoint history: {} recorded, {} written, {} dropped, {} failed",
        h.recorded, h.written, h.dropped, h.failed
    );
    Ok(())
}
