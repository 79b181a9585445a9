//! Power benchmark: the edge agent's staggered executor against a fleet of mock BMCs with added
//! latency (HTTPS, Basic auth, one client per task as in production): the power status of every
//! node, then a hard restart of every node, each against the bound its stagger settings set;
//! then the job round trip (a job created in the cloud API, taken by the agent's jobs loop,
//! run, and its result read back from the cloud) on loopback, and the cost of an empty poll.
//!
//! The bound of a run: targets are grouped by chassis, and a chassis with `n` targets, at most
//! `k` at once and starts `s` apart, cannot finish before `max((n-1)·s + d, ceil(n/k)·d)`, `d`
//! being one task's BMC time (its requests × the latency); chassis run side by side, so the
//! run's bound is the largest chassis'. What it does not count: TLS handshakes, our own CPU.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skyport_edge::internals::{
    BmcEntry, CloudClient, Directory, Executor, Gate, JobsLoop, Journal, NodeEntry, TlsSource,
    TokenSource,
};
use skyport_edge::{Action, Operation, Outcome, PowerSettings, TaskState};
use skyport_inventory::Inventory;
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, self_signed, shared_mockups};
use skyport_redfish::power::SystemRef;
use skyport_redfish::{AuthMode, Credentials, Limits, TlsPolicy};
use skyport_testkit::serve::Served;
use tokio_util::sync::CancellationToken;

pub struct Params {
    pub bmcs: u32,
    pub latency: Duration,
    pub per_chassis: usize,
    pub delay: Duration,
    pub concurrency: usize,
}

const FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 12, 1);
const SYSTEM: &str = "/redfish/v1/Systems/437XR1138R2";

fn xname(i: u32) -> String {
    format!("x{}c{}s{}b0", 1000 + i / 512, (i / 64) % 8, i % 64)
}

/// Counts outcomes as they come.
struct Tally {
    done: Mutex<Vec<Outcome>>,
}

#[async_trait::async_trait]
impl Gate for Tally {
    async fn start(&self, _xname: &str) -> Option<Outcome> {
        None
    }
    async fn done(&self, o: Outcome) {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    }
}

/// The bound of running `n_by_lane` tasks of `d` each under `p`'s stagger (module docs).
fn bound(n_by_lane: &BTreeMap<String, u32>, d: Duration, p: &Params) -> Duration {
    n_by_lane
        .values()
        .map(|&n| {
            let spaced = p.delay * n.saturating_sub(1) + d;
            let rounds = d * n.div_ceil(p.per_chassis.max(1) as u32);
            spaced.max(rounds)
        })
        .max()
        .unwrap_or_default()
}

async fn timed(
    exec: &Executor,
    action: Action,
    nodes: &[String],
) -> anyhow::Result<(Duration, usize)> {
    let gate = Arc::new(Tally {
        done: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    exec.staggered(
        action,
        nodes.to_vec(),
        Duration::from_secs(30),
        gate.clone(),
        &CancellationToken::new(),
    )
    .await;
    let wall = started.elapsed();
    let done = gate.done.lock().unwrap_or_else(|p| p.into_inner());
    let ok = done
        .iter()
        .filter(|o| o.state == TaskState::Succeeded)
        .count();
    if let Some(bad) = done.iter().find(|o| o.state != TaskState::Succeeded) {
        eprintln!("  e.g. {}: {} {}", bad.xname, bad.state.as_str(), bad.error);
    }
    Ok((wall, ok))
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    if p.bmcs == 0 || p.bmcs > 4000 {
        bail!("--bmcs must be 1-4000");
    }
    let tree = Arc::new(
        Tree::load(&shared_mockups().join("dmtf-public-rackmount1"))
            .context("loading the DMTF mockup")?,
    );
    let port = skyport_testkit::free_port()?;
    let specs: Vec<BmcSpec> = (0..p.bmcs)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(FIRST) + i);
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree.clone());
            s.faults = Faults {
                latency: p.latency,
                ..Faults::default()
            };
            s
        })
        .collect();
    let fleet = Fleet::start(
        specs,
        &FleetOptions {
            username: "admin".into(),
            password: "bench".into(),
            tls: Some(self_signed()?.config),
        },
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let store = crate::sqlite_store(dir.path(), "edge.sqlite")?;
    let directory = Directory::new(store.clone());
    let mut nodes = Vec::new();
    let mut lanes: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..p.bmcs {
        let ip = Ipv4Addr::from(u32::from(FIRST) + i);
        let bmc = xname(i);
        let node = format!("{bmc}n0");
        let lane = bmc
            .split_once('s')
            .map_or(bmc.clone(), |(c, _)| c.to_string());
        *lanes.entry(lane).or_default() += 1;
        directory
            .record(&BmcEntry {
                xname: bmc,
                url: format!("https://{ip}:{port}"),
                host: ip.to_string(),
                port,
                vendor: "generic".into(),
                nodes: vec![NodeEntry {
                    xname: node.clone(),
                    system: SystemRef {
                        path: SYSTEM.into(),
                        reset_target: format!("{SYSTEM}/Actions/ComputerSystem.Reset"),
                        reset_types: ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
                            .map(String::from)
                            .to_vec(),
                        boot_targets: Vec::new(),
                    },
                }],
                seen: 0,
            })
            .await?;
        nodes.push(node);
    }
    let settings = PowerSettings {
        poll_interval: Duration::from_secs(2),
        per_chassis: p.per_chassis,
        delay: p.delay,
        concurrency: p.concurrency,
        graceful_timeout: Duration::from_secs(60),
    };
    let exec = Executor::new(
        directory,
        TlsSource::Fixed(TlsPolicy::Insecure),
        skyport_edge::internals::CredentialSource {
            store: None,
            default: Some(Credentials {
                username: "admin".into(),
                password: "bench".into(),
            }),
        },
        AuthMode::Basic,
        Limits::default(),
        settings,
    );
    println!(
        "power: {} mock BMCs (HTTPS, {} ms per request) in {} chassis; {} at once per chassis, \
         starts {} ms apart, {} at once in all",
        p.bmcs,
        p.latency.as_millis(),
        lanes.len(),
        p.per_chassis,
        p.delay.as_millis(),
        p.concurrency
    );
    // Status: one GET per node. Hard restart of a node that is on: GET, POST, GET.
    for (name, action, requests) in [
        ("status", Action::Status, 1u32),
        (
            "hard restart",
            Action::Power {
                operation: Operation::HardRestart,
                boot: None,
            },
            3,
        ),
    ] {
        let (wall, ok) = timed(&exec, action, &nodes).await?;
        let b = bound(&lanes, p.latency * requests, &p);
        println!(
            "  {name:<12} {ok}/{} succeeded in {:>6.2} s; bound {:>6.2} s; ratio {:.2}",
            nodes.len(),
            wall.as_secs_f64(),
            b.as_secs_f64(),
            wall.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    }
    let twice = fleet
        .bmcs
        .iter()
        .filter(|b| b.stats.resets.lock().map(|r| r.len()).unwrap_or(0) != 1)
        .count();
    println!("  BMCs not reset exactly once: {twice}");
    round_trip(&fleet, &exec, dir.path(), &nodes[0]).await?;
    drop(fleet);
    Ok(())
}

/// A job through the cloud API and the agent's jobs loop, for two poll intervals; and the cost
/// of an empty poll.
async fn round_trip(
    _fleet: &Fleet,
    exec: &Executor,
    dir: &std::path::Path,
    node: &str,
) -> anyhow::Result<()> {
    let store = crate::sqlite_store(dir, "cloud.db")?;
    let jobs = skyport_power::Jobs::new(store.clone());
    let app = skyport_http::app(skyport_power::router(jobs, Inventory::new(store)));
    let server = Served::start(app).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    // An empty poll: one indexed read of the site's open tasks.
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let r = http.get(format!("{base}/edge/v1/jobs")).send().await?;
        if !r.status().is_success() {
            bail!("poll: {}", r.status());
        }
        r.bytes().await?;
    }
    println!(
        "  empty poll   {:.2} ms each on SQLite (DynamoDB: one Query on the `open` index, 0.5 RCU)",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
    );
    for poll in [Duration::from_secs(2), Duration::from_millis(250)] {
        let cancel = CancellationToken::new();
        let jl = Arc::new(JobsLoop {
            cloud: CloudClient::new(&base, TokenSource::none())?,
            journal: Journal::new(crate::sqlite_store(
                dir,
                &format!("journal-{}.db", poll.as_millis()),
            )?),
            exec: exec.clone(),
            poll,
            depth: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        });
        let task = tokio::spawn({
            let (jl, cancel) = (jl.clone(), cancel.clone());
            async move { jl.run(cancel).await }
        });
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let r: serde_json::Value = http
                .post(format!("{base}/power/v1/jobs"))
                .json(&serde_json::json!({"action": {"kind": "status"}, "xnames": [node]}))
                .send()
                .await?
                .json()
                .await?;
            let id = r["id"].as_str().context("no job id")?.to_string();
            loop {
                let v: serde_json::Value = http
                    .get(format!("{base}/power/v1/jobs/{id}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                if v["state"] == "done" {
                    break;
                }
                if v["state"] != "pending" && v["state"] != "running" {
                    bail!("job {id} ended {}", v["state"]);
                }
                if started.elapsed() > Duration::from_secs(30) {
                    bail!("job {id} did not finish");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times.push(started.elapsed());
        }
        cancel.cancel();
        task.await??;
        times.sort();
        println!(
            "  round trip   poll every {:>4} ms: median {:>6.0} ms, max {:>6.0} ms (5 status jobs)",
            poll.as_millis(),
            times[2].as_secs_f64() * 1000.0,
            times[4].as_secs_f64() * 1000.0
        );
    }
    server.stop().await?;
    Ok(())
}
