//! `skyport`: the administrator's command. It runs the local all-in-one server (`skyport
//! serve`), mints local tokens, and talks to any Skyport API (local or cloud) chosen by a
//! profile; every piece of logic lives in the library crates, this binary only wires
//! configuration, storage, clients and routers together.

mod cli;
mod config;
mod serve;
mod up;

use clap::{CommandFactory, Parser, Subcommand};
use cli::{CliError, Global};

#[derive(Parser, Debug)]
#[command(
    name = "skyport",
    version,
    about = "Skyport: HPC inventory, discovery and network boot",
    after_help = "Exit codes: 0 done; 1 nothing sent (bad flags, file or local state); 2 usage; \
                  3 the server refused (4xx); 4 the server failed (5xx) or was unreachable."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the Skyport APIs locally on the embedded store (no AWS needed).
    ///
    /// Examples:
    ///   skyport serve
    ///   skyport serve --data /var/lib/skyport --listen 127.0.0.1:27779
    ///   SKYPORT_LOG_FORMAT=json skyport serve --config /etc/skyport/server.toml
    Serve(config::ServeArgs),
    /// Everything on this machine: the APIs on the embedded store, an edge agent serving nodes
    /// from them, and an admin token saved in the CLI profile.
    ///
    /// Examples:
    ///   skyport up --demo        # plus mock BMCs, discovered into the inventory
    ///   skyport up --data /var/lib/skyport --listen 127.0.0.1:27779 --edge-listen 10.0.0.1:8080
    Up(up::UpArgs),
    /// Mint a bearer token from the local server's signing key (created if missing).
    ///
    /// Examples:
    ///   export TOKEN=$(skyport token --scope admin)
    ///   skyport token --scope read --ttl 600 --sub dashboard
    ///   skyport token --scope edge --client-id <a site's client ID> > /etc/skyport/edge-token
    Token {
        /// Data directory of the local server (its key is in <data>/auth/).
        #[arg(long, env = "SKYPORT_DATA", default_value = config::DEFAULT_DATA)]
        data: std::path::PathBuf,
        /// Scopes: read, write, admin, edge (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scope: Vec<String>,
        /// Who the token is for (the `sub` claim).
        #[arg(long, default_value = "admin")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// An edge token's client (a site's client ID from `skyport site add`): edge tokens
        /// are refused unless their client belongs to a registered site.
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Save a token for a profile (minted with the local server's key, or read from stdin).
    ///
    /// Examples:
    ///   skyport login                      # profile "local", http://127.0.0.1:27779
    ///   skyport login --profile prod --url https://abc.execute-api.us-east-1.amazonaws.com \
    ///       --token-stdin < token.txt
    Login(cli::login::LoginArgs),
    /// Components (SMD /State/Components).
    #[command(subcommand)]
    Component(cli::inventory::ComponentCmd),
    /// Ethernet interfaces (MAC → component, IPs).
    #[command(subcommand)]
    Iface(cli::inventory::IfaceCmd),
    /// BMCs in the inventory (Redfish endpoints).
    #[command(subcommand)]
    RedfishEndpoint(cli::inventory::RedfishEndpointCmd),
    /// Groups of components.
    #[command(subcommand)]
    Group(cli::inventory::GroupCmd),
    /// Boot parameters (BSS).
    #[command(subcommand)]
    Bootparams(cli::boot::BootParamsCmd),
    /// Boot configurations (OpenCHAMI v0.2's boot-service): what nodes boot by group,
    /// xname pattern, MAC or NID.
    #[command(subcommand)]
    Bootconfig(cli::bootconfig::BootConfigCmd),
    /// The exact iPXE script a node gets.
    ///
    /// Example:
    ///   skyport bootscript --mac 52:54:00:12:34:56
    Bootscript(cli::boot::BootScriptArgs),
    /// Where nodes are in their boots (the flight recorder of the edge agents).
    #[command(subcommand)]
    Boot(cli::boot::BootCmd),
    /// Boot images (kernels, initrds, root images).
    #[command(subcommand)]
    Image(cli::images::ImageCmd),
    /// cloud-init data.
    #[command(subcommand, name = "cloud-init")]
    CloudInit(cli::cloudinit::CloudInitCmd),
    /// What edge agents report.
    #[command(subcommand)]
    Edge(EdgeCmd),
    /// Sites (clusters): registration, edge credentials (rotate, revoke), owned xnames.
    #[command(subcommand)]
    Site(cli::sites::SiteCmd),
    /// Power nodes on, off, reset or cycle them, or read their power state, through their
    /// sites' edge agents (staggered by chassis there).
    ///
    /// Examples:
    ///   skyport power status x1000c0 --refresh
    ///   skyport power reset --group compute --boot pxe --wait    # reimage: network boot once
    ///   skyport power off x1000c0s3b0n0 --force
    ///   skyport power cycle x1000c0s3b0 --wait                  # every node of a BMC
    Power(cli::power::PowerArgs),
    /// What nodes are made of (SMD's hardware inventory, from discovery): processors,
    /// accelerators, memory, drives, power supplies, with make, serial number and health.
    ///
    /// Examples:
    ///   skyport hardware x1000c0s0b0n0
    ///   skyport hardware x1000c0 -o json
    Hardware(cli::hardware::HardwareArgs),
    /// Jobs on hardware (power, boot overrides) of the last day.
    ///
    /// Examples:
    ///   skyport job list
    ///   skyport job show 3fa85f64-5717-4562-b3fc-2c963f66afa6
    #[command(subcommand)]
    Job(cli::power::JobCmd),
    /// Print shell completions.
    ///
    /// Example:
    ///   skyport completions bash > /etc/bash_completion.d/skyport
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
enum EdgeCmd {
    /// Each site's edge agent as it last reported: snapshot served, last sync, outbox, cache.
    Status,
    /// MACs that asked an edge agent to boot (DHCP or a boot script) and are not in the inventory.
    Candidates,
}

fn token(
    data: &std::path::Path,
    scope: &[String],
    sub: &str,
    ttl: u64,
    client_id: Option<&str>,
) -> anyhow::Result<()> {
    if ttl == 0 || ttl > 366 * 86_400 {
        anyhow::bail!("--ttl must be between 1 second and a year");
    }
    let issuer = skyport_auth::LocalIssuer::load_or_create(data)?;
    let ttl = std::time::Duration::from_secs(ttl);
    let t = match client_id {
        Some(id) => issuer.mint_for_client(id, scope, ttl)?,
        None => issuer.mint(sub, scope, ttl)?,
    };
    println!("{t}");
    Ok(())
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Token {
            data,
            scope,
            sub,
            ttl,
            client_id,
        } => token(data, scope, sub, *ttl, client_id.as_deref()).map_err(CliError::Local),
        Command::Serve(args) => {
            let cfg = config::ServeConfig::resolve(args).map_err(CliError::Local)?;
            serve::run(cfg).await.map_err(CliError::Local)
        }
        Command::Up(a) => up::run(g, a).await.map_err(CliError::Local),
        Command::Login(a) => cli::login::login(g, a).await,
        Command::Component(c) => cli::inventory::component(g, c).await,
        Command::Iface(c) => cli::inventory::iface(g, c).await,
        Command::RedfishEndpoint(c) => cli::inventory::redfish_endpoint(g, c).await,
        Command::Group(c) => cli::inventory::group(g, c).await,
        Command::Bootparams(c) => cli::boot::bootparams(g, c).await,
        Command::Bootscript(a) => cli::boot::bootscript(g, a).await,
        Command::Bootconfig(c) => cli::bootconfig::bootconfig(g, c).await,
        Command::Boot(c) => cli::boot::boot(g, c).await,
        Command::Image(c) => cli::images::image(g, c).await,
        Command::CloudInit(c) => cli::cloudinit::cloud_init(g, c).await,
        Command::Site(c) => cli::sites::site(g, c).await,
        Command::Power(a) => cli::power::power(g, a).await,
        Command::Job(c) => cli::power::job(g, c).await,
        Command::Hardware(a) => cli::hardware::hardware(g, a).await,
        Command::Edge(EdgeCmd::Status) => {
            let v = g.client()?.get_json("/edge/v1/sites", &[]).await?;
            // Each site's agent status; sites whose agent never reported are left out.
            let statuses: Vec<serde_json::Value> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.get("status").filter(|x| !x.is_null()).cloned())
                        .collect()
                })
                .unwrap_or_default();
            cli::print(
                g.output,
                &serde_json::Value::Array(statuses),
                &[
                    ("SITE", "site"),
                    ("REPORTED", "reported_at"),
                    ("LAST SYNC", "last_sync_ok"),
                    ("GENERATION", "generation"),
                    ("OUTBOX", "outbox_depth"),
                    ("CACHE BYTES", "cache_bytes"),
                    ("PENDING", "reports_pending"),
                    ("VERSION", "version"),
                ],
            )
        }
        Command::Edge(EdgeCmd::Candidates) => {
            let v = g.client()?.get_json("/edge/v1/candidates", &[]).await?;
            cli::print(
                g.output,
                &v,
                &[
                    ("MAC", "mac"),
                    ("IP", "ip"),
                    ("SITE", "site"),
                    ("FIRST SEEN", "first_seen"),
                    ("LAST SEEN", "last_seen"),
                ],
            )
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "skyport",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyport: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
