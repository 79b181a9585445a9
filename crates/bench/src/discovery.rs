//! Discovery benchmark: a fleet of mock BMCs with added latency per request, scanned, crawled
//! and pushed into the local inventory server by the edge agent's library, against the ideal
//! bound (total requests × latency ÷ concurrency); then the same with a share of BMCs hanging,
//! which must finish within one request timeout of that bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skyport_edge::Status;
use skyport_edge::internals::Outbox;
use skyport_edge::internals::SiteMap;
use skyport_edge::internals::targets;
use skyport_edge::internals::{CredentialSource, DiscoverOptions, run_discovery};
use skyport_edge::internals::{Pusher, push};
use skyport_inventory::Inventory;
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, self_signed, shared_mockups};
use skyport_redfish::{AuthMode, CrawlOptions, Credentials, Limits, PinStore, TlsPolicy};
use skyport_testkit::serve::Served;

pub struct Params {
    pub bmcs: u32,
    pub latency: Duration,
    pub concurrency: usize,
    pub scan_concurrency: usize,
    pub timeout: Duration,
    pub hang_percent: u32,
    pub mockup: String,
}

const FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 8, 1);

struct Run {
    wall: Duration,
    discover: Duration,
    push: Duration,
    requests: usize,
    discovered: usize,
    failed: usize,
    pushed: usize,
    endpoints: usize,
}

async fn one_run(p: &Params, hang_every: Option<u32>, port: u16) -> anyhow::Result<Run> {
    let tree = Arc::new(
        Tree::load(&shared_mockups().join(&p.mockup))
            .with_context(|| format!("loading mockup {}", p.mockup))?,
    );
    let rewrite = match p.mockup.as_str() {
        "dmtf-public-rackmount1" => Some("192.168.0.10"),
        "hpe-proliant-dl325-gen10plus" => Some("10.254.1.15"),
        "openbmc-bmcweb-stock" => Some("10.0.2.15"),
        _ => None,
    };
    let mut site = String::new();
    let specs: Vec<BmcSpec> = (0..p.bmcs)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(FIRST) + i);
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree.clone());
            s.uniquify = Some(i);
            s.rewrite_ip = rewrite.map(str::to_string);
            s.faults = Faults {
                latency: p.latency,
                hang: hang_every.is_some_and(|e| (i + 1) % e == 0),
                ..Faults::default()
            };
            site.push_str(&format!(
                "{ip}: x{}c{}s{}b0\n",
                1000 + i / 512,
                (i / 64) % 8,
                i % 64
            ));
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
    let store = crate::sqlite_store(dir.path(), "cloud.db")?;
    let app = skyport_http::app(skyport_inventory::router(Inventory::new(store)));
    let server = Served::start(app).await?;
    let cloud = server.addr;

    let outbox = Outbox::new(Arc::new(skyport_store_sqlite::SqliteStore::open(
        dir.path().join("edge.sqlite"),
    )?));
    let opts = DiscoverOptions {
        scheme: "https".into(),
        concurrency: p.concurrency,
        scan_concurrency: p.scan_concurrency,
        limits: Limits {
            request_timeout: p.timeout,
            connect_timeout: p.timeout,
            ..Limits::default()
        },
        bmc_deadline: Duration::from_secs(300),
        // One request in flight per BMC, so `concurrency` is exactly the requests in flight and
        // the bound below is the true ideal.
        crawl: CrawlOptions {
            network_interfaces: false,
            parallel: 1,
            // The figures recorded in BENCHMARKS.md predate the hardware walk; kept comparable.
            hardware: false,
        },
        auth: AuthMode::Basic,
        tls: TlsPolicy::Tofu(Arc::new(PinStore::memory())),
        credentials: CredentialSource {
            store: None,
            default: Some(Credentials {
                username: "admin".into(),
                password: "bench".into(),
            }),
        },
        site_map: Some(SiteMap::parse(
            &site,
            std::path::Path::new("bench-site.yaml"),
        )?),
    };
    let last = Ipv4Addr::from(u32::from(FIRST) + p.bmcs - 1);
    let t = targets::expand(&[format!("{FIRST}-{last}")], &[port])?;
    let pusher = Pusher::new(
        &format!("http://{cloud}"),
        skyport_edge::internals::TokenSource::none(),
    )?;

    let start = Instant::now();
    let (found, early) = push::push_during(
        &outbox,
        &pusher,
        16,
        run_discovery(t, Arc::new(opts), Some(outbox.clone()), |_| {}),
    )
    .await?;
    let discover_t = start.elapsed();
    let mut rep = push::drain(&outbox, &pusher, 16, Duration::from_secs(120)).await?;
    rep.pushed += early.pushed;
    let wall = start.elapsed();

    let endpoints: serde_json::Value =
        reqwest::get(format!("http://{cloud}/hsm/v2/Inventory/RedfishEndpoints"))
            .await?
            .json()
            .await?;
    server.stop().await?;
    drop(fleet);
    Ok(Run {
        wall,
        discover: discover_t,
        push: wall - discover_t,
        requests: found.iter().map(|f| f.row.requests).sum(),
        discovered: found
            .iter()
            .filter(|f| f.row.status == Status::Discovered)
            .count(),
        failed: found
            .iter()
            .filter(|f| f.row.status == Status::Failed)
            .count(),
        pushed: rep.pushed,
        endpoints: endpoints["RedfishEndpoints"].as_array().map_or(0, Vec::len),
    })
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    if p.bmcs == 0 || p.bmcs > 16_000 || p.concurrency == 0 {
        bail!("--bmcs must be 1..=16000 and --concurrency at least 1");
    }
    let port = skyport_testkit::free_port()?;
    println!(
        "skyport-bench discovery: {} BMCs ({}) on {FIRST}.. port {port}, {} ms latency per request, \
         crawl concurrency {} (probes {}), request timeout {} s, {} CPUs",
        p.bmcs,
        p.mockup,
        p.latency.as_millis(),
        p.concurrency,
        p.scan_concurrency,
        p.timeout.as_secs_f64(),
        crate::cpus()
    );
    let lat = p.latency.as_secs_f64();
    let healthy = one_run(&p, None, port).await?;
    let bound = healthy.requests as f64 * lat / p.concurrency as f64;
    println!(
        "healthy fleet: {} discovered, {} failed, {} pushed, {} endpoints in the inventory",
        healthy.discovered, healthy.failed, healthy.pushed, healthy.endpoints
    );
    println!(
        "  {} requests; wall {:.2} s (scan+crawl+push {:.2} s, rest of the push {:.2} s); \
         ideal bound {:.2} s; ratio {:.2} (target <= 1.5)",
        healthy.requests,
        healthy.wall.as_secs_f64(),
        healthy.discover.as_secs_f64(),
        healthy.push.as_secs_f64(),
        bound,
        healthy.wall.as_secs_f64() / bound
    );
    if p.hang_percent > 0 {
        let every = (100 / p.hang_percent.min(100)).max(1);
        let hung = one_run(&p, Some(every), port).await?;
        let limit = bound + p.timeout.as_secs_f64();
        println!(
            "{}% hanging (every {every}th BMC): {} discovered, {} failed, {} pushed, {} endpoints",
            p.hang_percent, hung.discovered, hung.failed, hung.pushed, hung.endpoints
        );
        println!(
            "  wall {:.2} s (scan+crawl+push {:.2} s, rest of the push {:.2} s); \
             bound + one timeout {:.2} s; ratio {:.2} (target <= 1.0)",
            hung.wall.as_secs_f64(),
            hung.discover.as_secs_f64(),
            hung.push.as_secs_f64(),
            limit,
            hung.wall.as_secs_f64() / limit
        );
    }
    Ok(())
}
