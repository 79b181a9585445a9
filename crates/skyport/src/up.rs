//! `skyport up`: everything on one machine, with no AWS and no other service: the APIs on the
//! embedded store, an edge agent serving nodes from them, tokens minted and saved in the CLI
//! profile; with `--demo`, a few mock BMCs (Redfish trees generated here) discovered into the
//! inventory and given boot parameters, so a newcomer sees inventory and a boot script at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use skyport_edge::{Agent, EdgeArgs, EdgeConfig, Status};
use tokio_util::sync::CancellationToken;

use crate::cli::{Global, profile};
use crate::config::{ServeArgs, ServeConfig};

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Data directory (the server's store and key, the agent's copy and cache).
    #[arg(long, env = "SKYPORT_DATA", default_value = crate::config::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Where the APIs listen.
    #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Where the edge agent serves nodes (boot scripts, images, cloud-init).
    #[arg(long, default_value = "127.0.0.1:27780")]
    pub edge_listen: SocketAddr,
    /// Also start mock BMCs, discover them and give their nodes boot parameters.
    #[arg(long)]
    pub demo: bool,
    /// How many mock BMCs (one node each) with --demo.
    #[arg(long, default_value_t = 4)]
    pub demo_bmcs: u32,
}

const DEMO_PASSWORD: &str = "skyport-demo";

async fn wait_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub async fn run(g: &Global, a: &UpArgs) -> anyhow::Result<()> {
    if a.demo && !(1..=64).contains(&a.demo_bmcs) {
        bail!("--demo-bmcs must be between 1 and 64");
    }
    let cfg = ServeConfig::resolve(&ServeArgs {
        listen: Some(a.listen),
        data: Some(a.data.clone()),
        ..ServeArgs::default()
    })?;
    let api = format!("http://{}", a.listen);
    let mut server = tokio::spawn(crate::serve::run(cfg));
    tokio::select! {
        r = wait_listening(a.listen) => r?,
        r = &mut server => {
            r.context("server task")??;
            bail!("the server stopped at start-up");
        }
    }

    // An admin token in the CLI profile; the agent gets the "local" site's client credentials
    // and exchanges them at the server's token endpoint, as a remote site's agent would.
    let issuer = skyport_auth::LocalIssuer::load_or_create(&a.data)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "admin".into());
    let admin = issuer.mint(&who, &["admin".to_string()], Duration::from_secs(86_400))?;
    let profile_name = g.profile.clone().unwrap_or_else(|| "local".into());
    let cli_config = profile::save(g, &profile_name, &api, &admin)?;
    let creds = local_site(&api, &admin).await?;

    // The demo's BMCs first: the agent's configuration names their port.
    let fleet = if a.demo {
        Some(demo_fleet(a).await?)
    } else {
        None
    };

    // The edge agent, serving nodes from what it syncs, through the same facade and
    // configuration path as `skyport-edge daemon`.
    let node_url = format!("http://{}", a.edge_listen);
    let edge_data = a.data.join("edge");
    let mut args = EdgeArgs {
        data: Some(edge_data.clone()),
        cloud_url: Some(api.clone()),
        token_url: Some(creds.token_url),
        client_id: Some(creds.client_id),
        client_secret: Some(creds.client_secret),
        listen: Some(a.edge_listen.to_string()),
        node_url: Some(node_url.clone()),
        sync_interval: Some(2.0),
        cache_max_gb: Some(10.0),
        site: Some("local".into()),
        ..EdgeArgs::default()
    };
    if let Some((_, port, site_map)) = &fleet {
        args.ports = vec![*port];
        args.scheme = Some("http".into());
        args.insecure = true;
        args.bmc_user = Some("admin".into());
        args.bmc_password = Some(DEMO_PASSWORD.into());
        args.site_map = Some(site_map.clone());
    }
    let agent = Agent::new(EdgeConfig::resolve(&args)?)?;
    let cancel = CancellationToken::new();
    let mut edge = tokio::spawn({
        let (agent, cancel) = (agent.clone(), cancel.clone());
        async move { agent.run(cancel).await }
    });
    let mut state = agent.watch();
    tokio::select! {
        r = state.wait_for(|s| s.node_addr.is_some()) => {
            r.context("the edge agent stopped at start-up (see the log above)")?;
        }
        r = &mut edge => {
            r.context("edge task")??;
            bail!("the edge agent stopped at start-up");
        }
    }

    if fleet.is_some() {
        demo(a, &agent, &admin).await?;
    }

    println!();
    println!("Skyport is up (embedded store in {}).", a.data.display());
    println!(
        "  APIs:        {api}  (/hsm/v2, /boot/v1, /cloud-init, /images/v1, /power-control/v1, /edge/v1)"
    );
    println!("  Edge agent:  {node_url}  (nodes: {node_url}/boot/v1/bootscript?mac=${{net0/mac}})");
    println!(
        "  Console:     {api}/console  (sign in with a token: skyport token --scope admin --data {})",
        a.data.display()
    );
    println!(
        "  CLI profile: {profile_name:?} with an admin token, in {}",
        cli_config.display()
    );
    println!();
    println!("Next:");
    println!("  skyport component list");
    if a.demo {
        let mac = demo_mac();
        println!("  skyport redfish-endpoint list");
        println!("  skyport bootscript --mac {mac}");
        println!(
            "  skyport power cycle x9000c0s0b0n0 --wait   # through the agent and its mock BMC"
        );
        println!(
            "  curl {node_url}/boot/v1/bootscript?mac={mac}    # the same script, from the edge"
        );
    }
    println!("  skyport image upload ./vmlinuz --name vmlinuz --version 1 --kind kernel");
    println!(
        "Ctrl-C stops everything; the data stays in {}.",
        a.data.display()
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // The server stops by itself on Ctrl-C and SIGTERM; whichever is seen first ends `up`.
    tokio::select! {
        r = server => r.context("server task")??,
        r = &mut edge => r.context("edge task")??,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // The agent stores what nodes fetched and stops its listener in order.
    cancel.cancel();
    if !edge.is_finished() {
        edge.await.context("edge task")??;
    }
    drop(fleet);
    Ok(())
}

/// Registers the site "local" (or, when a previous run did, issues it fresh credentials: the
/// secret is only ever shown once) and returns what its agent needs.
async fn local_site(api: &str, admin: &str) -> anyhow::Result<skyport_edge::ClientCredentials> {
    use reqwest::Method;
    let c = skyport_client::Client::new(api, Some(admin.to_string()))?;
    let body = serde_json::json!({"name": "local", "description": "this machine (skyport up)"});
    let v = match c.send(Method::POST, "/edge/v1/sites", Some(&body)).await {
        Ok(v) => v,
        Err(skyport_client::ClientError::Http { status: 409, .. }) => {
            c.send(
                Method::POST,
                "/edge/v1/sites/local/rotate",
                Some(&serde_json::json!({})),
            )
            .await?
        }
        Err(e) => return Err(e.into()),
    };
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .with_context(|| format!("registering the local site: the answer has no {k}"))
    };
    Ok(skyport_edge::ClientCredentials {
        token_url: field("token_url")?,
        client_id: field("client_id")?,
        client_secret: field("client_secret")?,
        scope: "skyport/edge".into(),
    })
}

#[cfg(not(feature = "demo"))]
async fn demo_fleet(_: &UpArgs) -> anyhow::Result<((), u16, PathBuf)> {
    bail!("this skyport was built without the `demo` feature (mock BMCs)")
}

#[cfg(not(feature = "demo"))]
fn demo_mac() -> String {
    String::new()
}

/// Mock BMCs on 127.0.1.x (one port for all) and the site map naming them, written to the
/// agent's data directory.
#[cfg(feature = "demo")]
async fn demo_fleet(a: &UpArgs) -> anyhow::Result<(skyport_mockbmc::Fleet, u16, PathBuf)> {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    let port = {
        let l = std::net::TcpListener::bind("127.0.1.1:0")
            .context("binding a loopback port for the mock BMCs")?;
        l.local_addr()?.port()
    };
    let mut site = String::new();
    let mut specs = Vec::new();
    for i in 0..a.demo_bmcs {
        let ip = Ipv4Addr::new(127, 0, 1, 1 + i as u8);
        let tree = Arc::new(skyport_mockbmc::synthetic::tree(IpAddr::V4(ip), i));
        specs.push(skyport_mockbmc::BmcSpec::new(
            SocketAddr::new(IpAddr::V4(ip), port),
            tree,
        ));
        site.push_str(&format!("{ip}: x9000c0s{i}b0\n"));
    }
    let fleet = skyport_mockbmc::Fleet::start(
        specs,
        &skyport_mockbmc::FleetOptions {
            username: "admin".into(),
            password: DEMO_PASSWORD.into(),
            tls: None,
        },
    )
    .await?;
    let dir = a.data.join("edge");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let map = dir.join("demo-site.yaml");
    std::fs::write(&map, site).with_context(|| format!("writing {}", map.display()))?;
    Ok((fleet, port, map))
}

/// The first demo node's MAC, for the hints printed at the end.
#[cfg(feature = "demo")]
fn demo_mac() -> String {
    skyport_mockbmc::synthetic::macs(0).1
}

/// Discovers the mock BMCs and pushes them as the edge agent does it, then gives their nodes
/// boot parameters.
async fn demo(a: &UpArgs, agent: &Agent, admin: &str) -> anyhow::Result<()> {
    let last = a.demo_bmcs;
    let run = agent
        .discover(&[format!("127.0.1.1-{last}")], true, &|_| {})
        .await?;
    let ok = run
        .found
        .iter()
        .filter(|f| f.row.status == Status::Discovered)
        .count();
    let rep = agent.flush(Duration::from_secs(30)).await?;
    println!(
        "demo: {} mock BMCs, {ok} discovered and queued, {} pushed to the inventory",
        a.demo_bmcs,
        run.pushed + rep.pushed
    );
    // Boot parameters for the discovered nodes (the kernel is a placeholder URL: upload a real
    // one with `skyport image upload` and point the nodes at `image:<id>`).
    let client =
        skyport_client::Client::new(&format!("http://{}", a.listen), Some(admin.to_string()))?;
    let hosts: Vec<String> = (0..a.demo_bmcs)
        .map(|i| format!("x9000c0s{i}b0n0"))
        .collect();
    client
        .send(
            reqwest::Method::PUT,
            "/boot/v1/bootparameters",
            Some(&serde_json::json!({"hosts": hosts,
                "kernel": "https://images.example.invalid/demo/vmlinuz",
                "initrd": "https://images.example.invalid/demo/initrd.img",
                "params": "console=ttyS0,115200 ip=dhcp"})),
        )
        .await?;
    Ok(())
}
