//! `skyport-mockbmc`: serve a mockup tree as a fleet of BMCs until interrupted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, self_signed};

/// Serve a Redfish mockup tree as COUNT BMCs on consecutive loopback addresses.
///
/// Example: 1,000 BMCs on 127.0.1.0/22 port 8443, 20 ms per request, 5% hanging:
///   skyport-mockbmc --mockup ../shared/redfish-mockups/dmtf-public-rackmount1 \
///       --count 1000 --first-ip 127.0.1.1 --latency-ms 20 --hang-percent 5 --uniquify
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Mockup directory (DMTF layout, `index.json` per resource).
    #[arg(long)]
    mockup: PathBuf,
    /// Number of BMCs.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Address of the first BMC; the others follow it.
    #[arg(long, default_value = "127.0.1.1")]
    first_ip: Ipv4Addr,
    /// Port every BMC listens on (0 = a free port each).
    #[arg(long, default_value_t = 8443)]
    port: u16,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    #[arg(long, default_value = "admin")]
    user: String,
    #[arg(long, default_value = "password")]
    password: String,
    /// Added latency per request, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Percentage of BMCs that accept connections but never answer.
    #[arg(long, default_value_t = 0)]
    hang_percent: u32,
    /// Every N-th request to a BMC fails with 500.
    #[arg(long, default_value_t = 0)]
    error_every: u64,
    /// Most concurrent sessions per BMC.
    #[arg(long, default_value_t = 0)]
    session_cap: usize,
    /// Page collections longer than this with Members@odata.nextLink.
    #[arg(long)]
    page_size: Option<usize>,
    /// Give every BMC its own MACs.
    #[arg(long)]
    uniquify: bool,
    /// The mockup's BMC IP, replaced by each BMC's own address.
    #[arg(long)]
    rewrite_ip: Option<String>,
    /// Write the fleet's certificate (PEM) here, to use as a CA bundle.
    #[arg(long)]
    cert_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let a = Args::parse();
    if a.count == 0 || a.hang_percent > 100 {
        bail!("--count must be at least 1 and --hang-percent at most 100");
    }
    let tree =
        Arc::new(Tree::load(&a.mockup).with_context(|| format!("loading {}", a.mockup.display()))?);
    let tls = if a.http {
        None
    } else {
        let ss = self_signed()?;
        if let Some(p) = &a.cert_out {
            std::fs::write(p, &ss.cert_pem).with_context(|| format!("writing {}", p.display()))?;
        }
        Some(ss.config)
    };
    let first = u32::from(a.first_ip);
    // Spread the hanging BMCs evenly: BMC i hangs when the running share crosses a whole BMC.
    let hangs = |i: u32| (i + 1) * a.hang_percent / 100 != i * a.hang_percent / 100;
    let specs = (0..a.count)
        .map(|i| {
            let ip = Ipv4Addr::from(first.wrapping_add(i));
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), a.port), tree.clone());
            s.uniquify = a.uniquify.then_some(i);
            s.rewrite_ip = a.rewrite_ip.clone();
            s.faults = Faults {
                latency: Duration::from_millis(a.latency_ms),
                hang: hangs(i),
                error_every: a.error_every,
                session_cap: a.session_cap,
                page_size: a.page_size,
                ..Faults::default()
            };
            s
        })
        .collect();
    let fleet = Fleet::start(
        specs,
        &FleetOptions {
            username: a.user,
            password: a.password,
            tls,
        },
    )
    .await?;
    let addrs = fleet.addrs();
    let scheme = if a.http { "http" } else { "https" };
    match (addrs.first(), addrs.last()) {
        (Some(f), Some(l)) => println!(
            "serving {} BMC(s) of {} from {scheme}://{f} to {scheme}://{l}; Ctrl-C stops",
            addrs.len(),
            tree.name
        ),
        _ => bail!("no BMC started"),
    }
    tokio::signal::ctrl_c().await?;
    drop(fleet);
    Ok(())
}
