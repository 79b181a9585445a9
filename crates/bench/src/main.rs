//! `skyport-bench inventory`: the inventory benchmark of BENCHMARKS.md.
//!
//! 1. Starts the local server (the same Router `skyport serve` mounts, on the embedded SQLite
//!    store, over real HTTP on 127.0.0.1), seeds it with N nodes the way discovery does (one
//!    Magellan payload per BMC, four nodes each, with interfaces) plus groups, then measures
//!    `GET State/Components?type=Node`, `GET State/Components/{xname}` and a 1,000-component bulk
//!    POST: p50, p99, throughput, and the ratio of each p99 to its target.
//! 2. With `--dynamodb`, starts DynamoDB Local, seeds the same data through the DynamoDB store,
//!    and counts DynamoDB calls per request type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
mod bootstorm;
mod bootwrite;
mod coldstart;
mod console;
mod contention;
mod discovery;
mod power;
mod sites;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::{Value, json};
use skyport_inventory::Inventory;
use skyport_store::Store;
use skyport_testkit::serve::Served;
use tower::ServiceExt;

#[derive(Parser)]
#[command(about = "Skyport benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Inventory API: latency/throughput on SQLite, DynamoDB calls per request.
    Inventory {
        /// Nodes to seed (four per BMC).
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Requests for the single-component GET.
        #[arg(long, default_value_t = 5_000)]
        gets: usize,
        /// Also count DynamoDB calls against DynamoDB Local.
        #[arg(long)]
        dynamodb: bool,
    },
    /// Console: the boot board's live fragment of a large installation against the JSON
    /// status route over the same records.
    Console {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Requests per route.
        #[arg(long, default_value_t = 50)]
        requests: usize,
    },
    /// Cold start of the Lambda binaries against a hello-world (build them first, see --help).
    Coldstart {
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Boot storm at the edge: wrk against the edge agent and against nginx serving the same
    /// scripts and image as static files.
    Bootstorm {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// wrk connections for the script run.
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// Seconds per wrk run (30: three of the agent's sync intervals).
        #[arg(long, default_value_t = 30)]
        seconds: u32,
        /// Size of the image downloaded in parallel, MiB.
        #[arg(long, default_value_t = 64)]
        image_mb: usize,
    },
    /// Discovery: mock BMCs with added latency scanned, crawled and pushed by the edge agent.
    Discovery {
        #[arg(long, default_value_t = 1_000)]
        bmcs: u32,
        /// Added latency per Redfish request, milliseconds.
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// BMCs (= requests, one per BMC) in flight at once.
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Probes (TCP connect + GET /redfish/v1/) in flight at once.
        #[arg(long, default_value_t = 256)]
        scan_concurrency: usize,
        /// Request timeout, seconds (what a hung BMC costs).
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Share of BMCs that hang in the second run (0 skips it).
        #[arg(long, default_value_t = 5)]
        hang_percent: u32,
        /// Mockup tree under ../shared/redfish-mockups.
        #[arg(long, default_value = "dmtf-public-rackmount1")]
        mockup: String,
    },
    /// Power: the agent's staggered status and hard restart of mock BMCs with added latency,
    /// against the bound of the stagger settings; the job round trip through the cloud API.
    Power {
        #[arg(long, default_value_t = 1_000)]
        bmcs: u32,
        /// Added latency per Redfish request, milliseconds.
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// BMCs acted on at once per chassis.
        #[arg(long, default_value_t = 4)]
        per_chassis: usize,
        /// Milliseconds between task starts in one chassis.
        #[arg(long, default_value_t = 250)]
        delay_ms: u64,
        /// BMCs acted on at once in all.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Boot scripts of known nodes on the local server, idle and while the largest accepted
    /// bulk component POST is being written.
    BootDuringWrite {
        /// Nodes to seed (four per BMC), all with boot parameters.
        #[arg(long, default_value_t = 1_000)]
        nodes: usize,
        /// Bootscript requests timed on the idle server.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
        /// Bootscript requests per second, issued open-loop (on time, whatever the answers do).
        #[arg(long, default_value_t = 400)]
        rate: u32,
        /// Write endpoint history before each answer, as before the background writer.
        #[arg(long)]
        inline: bool,
    },
    /// Concurrent writers on distinct components through the inventory API on DynamoDB (behind
    /// the conflict harness), with and without the edge sync change log.
    Contention {
        /// Concurrent writers.
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Writes (one component POST each) per writer.
        #[arg(long, default_value_t = 200)]
        writes: usize,
        /// How long a transaction holds its items after DynamoDB Local answered, ms.
        #[arg(long, default_value_t = 10)]
        hold_ms: u64,
        /// Writes one item takes per second (DynamoDB's per-partition limit is 1,000).
        #[arg(long)]
        item_rate: Option<u32>,
    },
    /// Edge sync at scale: per-site paged snapshots, unchanged polls (304, store reads), one
    /// node's change reaching only its site.
    Sites {
        /// Sites, one cabinet each.
        #[arg(long, default_value_t = 100)]
        sites: usize,
        /// Nodes per site.
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        /// On DynamoDB Local behind the conflict harness instead of SQLite.
        #[arg(long)]
        dynamodb: bool,
        /// Also sync a real agent from nothing (time, peak memory).
        #[arg(long)]
        agent: bool,
    },
    /// Boot API: bootscript latency/throughput on SQLite, DynamoDB calls per bootscript.
    Boot {
        /// Nodes to seed (four per BMC), all with boot parameters.
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Bootscript requests to time.
        #[arg(long, default_value_t = 5_000)]
        requests: usize,
        /// Also count DynamoDB calls against DynamoDB Local (on 100 nodes: counts do not
        /// depend on size).
        #[arg(long)]
        dynamodb: bool,
    },
}

const TARGET_BOOTSCRIPT_P99_MS: f64 = 10.0;

/// The CPUs the figures were taken on, for the header line of each benchmark.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn node_mac(i: usize, k: usize) -> String {
    format!(
        "02:{:02x}:{:02x}:{:02x}:00:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff,
        k + 1
    )
}

fn boot_params_body(nodes: usize) -> Value {
    let hosts: Vec<String> = (0..nodes)
        .map(|n| format!("{}n{}", bmc(n / 4), n % 4))
        .collect();
    json!({"hosts": hosts, "kernel": "http://10.0.0.1/images/vmlinuz", "initrd": "http://10.0.0.1/images/initrd.img",
           "params": "console=ttyS0,115200 ip=dhcp root=live:http://10.0.0.1/images/rootfs.squashfs"})
}

fn boot_app(store: Arc<dyn Store>) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    let settings = skyport_ipxe::Settings {
        chain_base: "http://10.0.0.1:27779".into(),
        advertise: Some("http://10.0.0.1:27779/cloud-init".into()),
        ..skyport_ipxe::Settings::default()
    };
    skyport_http::app(
        skyport_inventory::router(Inventory::new(store.clone())).merge(skyport_boot::router(
            skyport_boot::BootService::new(store, settings),
        )),
    )
}

async fn boot_local(nodes: usize, requests: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Served::start(boot_app(sqlite_store(dir.path(), "bench.db")?)).await?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let t = Instant::now();
    seed_boot(&client, &base, nodes).await?;
    println!(
        "seeded {nodes} nodes with boot parameters in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let wall = Instant::now();
    let lat = timed_four_at_a_time(requests, |i| {
        let client = client.clone();
        let n = i % nodes;
        let url = format!("{base}/boot/v1/bootscript?mac={}", node_mac(n / 4, n % 4));
        async move { check_script(&client.get(url).send().await?.text().await?) }
    })
    .await?;
    report(
        "GET /boot/v1/bootscript?mac= (c=4)",
        &stats(lat, wall.elapsed()),
        TARGET_BOOTSCRIPT_P99_MS,
        "req",
    );
    server.stop().await?;
    Ok(())
}

/// An embedded SQLite store in `dir`, as the local server opens it.
fn sqlite_store(dir: &std::path::Path, file: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(skyport_store_sqlite::SqliteStore::open(
        dir.join(file),
    )?))
}

/// `nodes` nodes seeded as discovery would, all with the same boot parameters, on the server at
/// `base`.
async fn seed_boot(client: &reqwest::Client, base: &str, nodes: usize) -> anyhow::Result<()> {
    seed_http(client, &format!("{base}/hsm/v2"), nodes).await?;
    let r = client
        .put(format!("{base}/boot/v1/bootparameters"))
        .json(&boot_params_body(nodes))
        .send()
        .await?;
    expect_status(r, 200, "setting boot parameters").await?;
    Ok(())
}

/// `r` when its status is `want`; otherwise an error naming `what`, with the status and body.
async fn expect_status(
    r: reqwest::Response,
    want: u16,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    if r.status() != want {
        bail!(
            "{what}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(r)
}

/// A boot script of a known node: its parameters rendered, not the fallback.
fn check_script(body: &str) -> anyhow::Result<()> {
    if !body.starts_with("#!ipxe\nkernel --name kernel") {
        bail!("unexpected script: {body}");
    }
    Ok(())
}

/// The latency of each of `request(0..n)`, four in flight at a time (four clients).
async fn timed_four_at_a_time<F, Fut>(n: usize, request: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..n)
        .map(|i| {
            let request = request(i);
            async move {
                let t = Instant::now();
                request.await?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<anyhow::Result<Duration>>>()
        .await
        .into_iter()
        .collect()
}

async fn dynamo_store() -> anyhow::Result<(
    skyport_testkit::DynamoLocal,
    skyport_store_dynamo::DynamoStore,
)> {
    let ddb = skyport_testkit::DynamoLocal::start()?;
    let client = skyport_testkit::dynamo_client(&ddb.endpoint(), None).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "skyport-bench");
    store.ensure_table().await?;
    Ok((ddb, store))
}

async fn call_app(
    app: &tower_http::normalize_path::NormalizePath<axum::Router>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> anyhow::Result<String> {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(serde_json::to_vec(&b)?)
        }
        None => axum::body::Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body)?).await?;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    if !status.is_success() {
        bail!(
            "{method} {uri}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn boot_dynamodb() -> anyhow::Result<()> {
    let (_ddb, store) = dynamo_store().await?;
    let calls = store.calls();
    let app = boot_app(Arc::new(store));
    let nodes = 100;
    for i in 0..nodes / 4 {
        call_app(
            &app,
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            Some(payload(i)),
        )
        .await?;
    }
    call_app(
        &app,
        "PUT",
        "/boot/v1/bootparameters",
        Some(boot_params_body(nodes)),
    )
    .await?;
    println!("\nDynamoDB Local: calls per bootscript ({nodes} nodes seeded)");
    for (name, uri) in [
        (
            "bootscript?mac= (known node)",
            format!("/boot/v1/bootscript?mac={}", node_mac(3, 1)),
        ),
        (
            "bootscript?name= (known node)",
            format!("/boot/v1/bootscript?name={}n1", bmc(3)),
        ),
        (
            "bootscript?mac= (unknown MAC)",
            "/boot/v1/bootscript?mac=02:ff:ff:ff:00:01".to_string(),
        ),
    ] {
        let before = calls.snapshot();
        call_app(&app, "GET", &uri, None).await?;
        print_calls(name, &before, &calls.snapshot());
    }
    Ok(())
}

/// One result line of DynamoDB calls: how many `name` made between the two counts, in all and
/// of each kind it made.
fn print_calls(
    name: &str,
    before: &std::collections::BTreeMap<&'static str, u64>,
    after: &std::collections::BTreeMap<&'static str, u64>,
) {
    let diff: Vec<String> = after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{k}={d}"))
        })
        .collect();
    let total: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    println!("{name:<48} {total:>6}  {}", diff.join(" "));
}

/// p99 targets (milliseconds) the figures are compared with.
const TARGET_LIST_P99_MS: f64 = 250.0;
const TARGET_GET_P99_MS: f64 = 5.0;
const TARGET_BULK_P99_MS: f64 = 1_000.0;

fn bmc(i: usize) -> String {
    // 4 nodes per BMC, 8 BMC slots... keep xnames valid: cabinet/chassis/slot from i.
    format!("x{}c{}s{}b0", 1000 + i / 512, (i / 64) % 8, i % 64)
}

fn payload(i: usize) -> Value {
    let ip = format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256);
    let mac = |k: usize| {
        format!(
            "02:{:02x}:{:02x}:{:02x}:00:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff,
            k
        )
    };
    let systems: Vec<Value> = (0..4)
        .map(|k| {
            json!({"uri": format!("/redfish/v1/Systems/node{k}"), "uuid": format!("00000000-0000-0000-{k:04}-{i:012}"),
                   "power": {"state": "On"}, "actions": ["On", "ForceOff"],
                   "ethernet_interfaces": [{"mac": mac(k + 1), "ip": format!("10.200.{}.{}", (i * 4 + k) / 256 % 256, (i * 4 + k) % 256)}]})
        })
        .collect();
    json!({"ID": bmc(i), "FQDN": ip, "User": "root", "Password": "x", "SchemaVersion": 1,
           "Managers": [{"uri": "/redfish/v1/Managers/BMC", "type": "BMC", "ethernet_interfaces": [{"mac": mac(0), "ip": ip}]}],
           "Systems": systems})
}

struct Stats {
    p50: f64,
    p99: f64,
    throughput: f64,
}

fn stats(mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    Stats {
        p50: pick(0.5),
        p99: pick(0.99),
        throughput: lat.len() as f64 / wall.as_secs_f64(),
    }
}

fn report(name: &str, s: &Stats, target_p99: f64, unit: &str) {
    println!(
        "{name:<40} p50 {:>8.2} ms  p99 {:>8.2} ms  {:>9.1} {unit}/s  p99/target {:.2} (target {target_p99} ms)",
        s.p50,
        s.p99,
        s.throughput,
        s.p99 / target_p99
    );
}

async fn seed_http(client: &reqwest::Client, base: &str, nodes: usize) -> anyhow::Result<()> {
    let bmcs = nodes.div_ceil(4);
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..bmcs)
        .map(|i| async move {
            let r = client
                .post(format!("{base}/Inventory/RedfishEndpoints"))
                .json(&payload(i))
                .send()
                .await?;
            expect_status(r, 201, &format!("seeding BMC {i}")).await?;
            Ok(())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    for g in 0..10 {
        let ids: Vec<String> = (0..bmcs)
            .filter(|i| i % 10 == g)
            .map(|i| format!("{}n0", bmc(i)))
            .collect();
        let r = client
            .post(format!("{base}/groups"))
            .json(&json!({"label": format!("rack{g}"), "members": {"ids": ids}}))
            .send()
            .await?;
        expect_status(r, 201, "seeding group").await?;
    }
    Ok(())
}

fn bulk_body(round: usize) -> Value {
    let comps: Vec<Value> = (0..1000)
        .map(|i| json!({"ID": format!("x{}c{}s{}b0n{}", 5000 + round, i / 256, (i / 4) % 64, i % 4), "State": "Ready", "Role": "Compute"}))
        .collect();
    json!({"Components": comps})
}

async fn local(nodes: usize, gets: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = sqlite_store(dir.path(), "bench.db")?;
    let app = skyport_http::app(skyport_inventory::router(Inventory::new(store)));
    let server = Served::start(app).await?;
    let base = format!("http://{}/hsm/v2", server.addr);
    let client = reqwest::Client::new();

    let t = Instant::now();
    seed_http(&client, &base, nodes).await?;
    println!(
        "seeded {nodes} nodes, {} BMCs, {} interfaces, 10 groups over HTTP in {:.1} s",
        nodes / 4,
        nodes + nodes / 4,
        t.elapsed().as_secs_f64()
    );

    // List all nodes.
    let mut lat = Vec::new();
    let wall = Instant::now();
    for _ in 0..30 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/State/Components?type=Node"))
            .send()
            .await?;
        let body: Value = r.json().await?;
        let n = body["Components"].as_array().map_or(0, Vec::len);
        if n < nodes {
            bail!("list returned {n} nodes, expected {nodes}");
        }
        lat.push(t.elapsed());
    }
    report(
        &format!("GET State/Components?type=Node ({nodes})"),
        &stats(lat, wall.elapsed()),
        TARGET_LIST_P99_MS,
        "req",
    );

    // One component, 4 concurrent clients.
    let wall = Instant::now();
    let lat = timed_four_at_a_time(gets, |i| {
        let client = client.clone();
        let url = format!("{base}/State/Components/{}n{}", bmc(i % (nodes / 4)), i % 4);
        async move {
            let r = client.get(url).send().await?;
            if r.status() != 200 {
                bail!("GET one: {}", r.status());
            }
            r.bytes().await?;
            Ok(())
        }
    })
    .await?;
    report(
        "GET State/Components/{xname} (c=4)",
        &stats(lat, wall.elapsed()),
        TARGET_GET_P99_MS,
        "req",
    );

    // Bulk POST of 1,000 new components.
    let mut lat = Vec::new();
    let wall = Instant::now();
    for round in 0..10 {
        let body = bulk_body(round);
        let t = Instant::now();
        let r = client
            .post(format!("{base}/State/Components"))
            .json(&body)
            .send()
            .await?;
        expect_status(r, 204, "bulk POST").await?;
        lat.push(t.elapsed());
    }
    let s = stats(lat, wall.elapsed());
    report(
        "POST State/Components (1,000 components)",
        &s,
        TARGET_BULK_P99_MS,
        "req",
    );
    println!(
        "{:<40} {:>9.0} components/s",
        "  bulk POST component throughput",
        s.throughput * 1000.0
    );
    server.stop().await?;
    Ok(())
}

async fn dynamodb(nodes: usize) -> anyhow::Result<()> {
    let (_ddb, store) = dynamo_store().await?;
    let calls = store.calls();
    let app = skyport_http::app(skyport_inventory::router(Inventory::new(Arc::new(store))));
    let call = |method: &'static str, uri: String, body: Option<Value>| {
        let app = &app;
        async move { call_app(app, method, &uri, body).await.map(|_| ()) }
    };
    let t = Instant::now();
    let bmcs = nodes.div_ceil(4);
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..bmcs)
        .map(|i| {
            call(
                "POST",
                "/hsm/v2/Inventory/RedfishEndpoints".into(),
                Some(payload(i)),
            )
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<anyhow::Result<()>>()
        .context("seeding DynamoDB Local")?;
    println!(
        "\nDynamoDB Local: seeded {nodes} nodes in {:.1} s ({} calls)",
        t.elapsed().as_secs_f64(),
        calls.total()
    );
    println!("{:<48} {:>6}  breakdown", "request", "calls");
    let measure = |name: &'static str, method: &'static str, uri: String, body: Option<Value>| {
        let calls = calls.clone();
        let call = &call;
        async move {
            let before = calls.snapshot();
            call(method, uri, body).await?;
            print_calls(name, &before, &calls.snapshot());
            Ok::<_, anyhow::Error>(())
        }
    };
    let one = format!("{}n1", bmc(7));
    measure(
        "GET State/Components/{xname}",
        "GET",
        format!("/hsm/v2/State/Components/{one}"),
        None,
    )
    .await?;
    measure(
        "GET Inventory/RedfishEndpoints/{xname}",
        "GET",
        format!("/hsm/v2/Inventory/RedfishEndpoints/{}", bmc(7)),
        None,
    )
    .await?;
    measure(
        "GET State/Components/ByNID/{nid}",
        "GET",
        "/hsm/v2/State/Components/ByNID/16400384".into(),
        None,
    )
    .await?;
    measure(
        "GET EthernetInterfaces?ipaddress= (one IP)",
        "GET",
        "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=10.200.0.29".into(),
        None,
    )
    .await?;
    measure(
        Box::leak(format!("GET State/Components?type=Node ({nodes})").into_boxed_str()),
        "GET",
        "/hsm/v2/State/Components?type=Node".into(),
        None,
    )
    .await?;
    measure(
        "PATCH State/Components/{xname}",
        "PATCH",
        format!("/hsm/v2/State/Components/{one}"),
        Some(json!({"State": "Standby"})),
    )
    .await?;
    measure(
        "POST State/Components (1,000 components)",
        "POST",
        "/hsm/v2/State/Components".into(),
        Some(bulk_body(0)),
    )
    .await?;
    measure(
        "POST RedfishEndpoints (Magellan, 1 BMC, 4 nodes)",
        "POST",
        "/hsm/v2/Inventory/RedfishEndpoints".into(),
        Some(payload(bmcs + 1)),
    )
    .await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Contention {
            writers,
            writes,
            hold_ms,
            item_rate,
        } => {
            if writers == 0 || writes == 0 {
                bail!("--writers and --writes must be positive");
            }
            contention::run(contention::Params {
                writers,
                writes,
                hold: Duration::from_millis(hold_ms),
                item_rate,
            })
            .await?;
        }
        Cmd::Sites {
            sites,
            nodes,
            dynamodb,
            agent,
        } => {
            if !(1..=255).contains(&sites) || !(1..=1_000_000).contains(&nodes) {
                bail!("--sites must be 1-255 and --nodes 1-1,000,000");
            }
            sites::run(sites::Params {
                sites,
                nodes,
                dynamodb,
                agent,
            })
            .await?;
        }
        Cmd::Console { nodes, requests } => {
            if !(1..=1_000_000).contains(&nodes) || requests == 0 {
                anyhow::bail!("--nodes must be 1-1,000,000 and --requests positive");
            }
            console::run(nodes, requests).await?;
        }
        Cmd::Coldstart { runs } => {
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            coldstart::run(runs).await?;
        }
        Cmd::Bootstorm {
            nodes,
            connections,
            seconds,
            image_mb,
        } => {
            if nodes < 4 || connections == 0 || seconds == 0 || image_mb == 0 {
                bail!(
                    "--nodes must be at least 4; --connections, --seconds and --image-mb positive"
                );
            }
            bootstorm::run(bootstorm::Params {
                nodes,
                connections,
                seconds,
                image_mb,
            })
            .await?;
        }
        Cmd::Discovery {
            bmcs,
            latency_ms,
            concurrency,
            scan_concurrency,
            timeout,
            hang_percent,
            mockup,
        } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                bail!("--timeout must be a positive number of seconds");
            }
            discovery::run(discovery::Params {
                bmcs,
                latency: Duration::from_millis(latency_ms),
                concurrency,
                scan_concurrency,
                timeout: Duration::from_secs_f64(timeout),
                hang_percent,
                mockup,
            })
            .await?;
        }
        Cmd::Power {
            bmcs,
            latency_ms,
            per_chassis,
            delay_ms,
            concurrency,
        } => {
            power::run(power::Params {
                bmcs,
                latency: Duration::from_millis(latency_ms),
                per_chassis,
                delay: Duration::from_millis(delay_ms),
                concurrency,
            })
            .await?;
        }
        Cmd::Boot {
            nodes,
            requests,
            dynamodb: with_ddb,
        } => {
            if nodes < 4 {
                bail!("--nodes must be at least 4");
            }
            println!("skyport-bench boot: {nodes} nodes, {} CPUs", cpus());
            boot_local(nodes, requests).await?;
            if with_ddb {
                boot_dynamodb().await?;
            }
        }
        Cmd::BootDuringWrite {
            nodes,
            requests,
            rate,
            inline,
        } => {
            if nodes < 4 || requests == 0 || rate == 0 {
                bail!("--nodes must be at least 4; --requests and --rate positive");
            }
            println!(
                "skyport-bench boot-during-write: {nodes} nodes, {rate} bootscripts/s, {} CPUs",
                cpus()
            );
            bootwrite::run(bootwrite::Params {
                nodes,
                requests,
                rate,
                inline,
            })
            .await?;
        }
        Cmd::Inventory {
            nodes,
            gets,
            dynamodb: with_ddb,
        } => {
            if nodes < 4 {
                bail!("--nodes must be at least 4");
            }
            println!("skyport-bench inventory: {nodes} nodes, {} CPUs", cpus());
            local(nodes, gets).await?;
            if with_ddb {
                dynamodb(nodes).await?;
            }
        }
    }
    Ok(())
}
