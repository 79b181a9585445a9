//! `skyport-edge`: the site agent's command line. Wires configuration, the embedded store and
//! the library together; the work lives in the `skyport_edge` library.

use std::io::{IsTerminal, Write as _};

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use skyport_edge::cloud::CloudClient;
use skyport_edge::config::{EdgeArgs, EdgeConfig};
use skyport_edge::discover::{self, CredentialSource, DiscoverOptions, Found, Status};
use skyport_edge::metrics::Metrics;
use skyport_edge::outbox::Outbox;
use skyport_edge::push::{self, Pusher};
use skyport_edge::secrets::{self, SecretStore};
use skyport_edge::site;
use skyport_edge::sitemap::SiteMap;
use skyport_edge::targets;
use skyport_edge::token::TokenSource;
use skyport_redfish::{CrawlOptions, Credentials, Limits, PinStore, TlsPolicy};

/// Exit code when results were discovered but some could not be pushed yet (they stay queued).
const EXIT_QUEUED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "skyport-edge",
    version,
    about = "Skyport site agent: Redfish BMC discovery with a durable push to the inventory."
)]
struct Cli {
    #[command(flatten)]
    edge: EdgeArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Scan, crawl and (with --push) send the results once.
    ///
    /// Examples:
    ///   skyport-edge discover --subnet 10.254.1.0/24 --site-map site.yaml -o yaml
    ///   skyport-edge discover --subnet 10.254.1.10-40 --port 443 --site-map site.yaml \
    ///       --cloud-url http://127.0.0.1:27779 --push
    Discover {
        /// Extra hosts to probe (same forms as --subnet).
        hosts: Vec<String>,
        /// Queue the results and push them to --cloud-url.
        #[arg(long)]
        push: bool,
        /// Seconds to keep retrying the push before leaving the rest queued.
        #[arg(long, default_value_t = 60)]
        push_timeout: u64,
        /// table, json or yaml (json/yaml include the full crawl and payload).
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Run continuously (JSON logs): discovery every --interval with a continuous push (with
    /// --subnet), and serving the site's nodes from the synced copy (with --listen).
    ///
    /// Examples:
    ///   skyport-edge daemon --subnet 10.254.1.0/24 --site-map site.yaml --cloud-url https://api
    ///   skyport-edge daemon --listen 10.1.0.1:8080 --cloud-url https://api --token-file tok
    Daemon,
    /// Inspect or drive the outbox.
    Outbox {
        #[command(subcommand)]
        cmd: OutboxCmd,
    },
    /// Manage the encrypted BMC credentials file.
    Secrets {
        #[command(subcommand)]
        cmd: SecretsCmd,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxCmd {
    /// Queued results with their attempts and last error.
    List,
    /// Push what is due now, retrying until --timeout.
    Flush {
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Make parked (refused) and backing-off entries due again.
    Retry,
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// Print a new random key for SKYPORT_EDGE_SECRETS_KEY.
    GenerateKey,
    /// Store credentials for `host:port`, `host` or `default`; the password is read from
    /// SKYPORT_EDGE_BMC_PASSWORD or, if unset, from the first line of standard input.
    Set {
        id: String,
        #[arg(long)]
        username: String,
    },
    /// Ids and user names (never passwords).
    List,
    Remove {
        id: String,
    },
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,skyport_edge=info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    // A second init (tests driving main twice) is harmless; the first subscriber stays.
    let _ = if json {
        b.json().flatten_event(true).try_init()
    } else {
        b.try_init()
    };
}

fn open_outbox(cfg: &EdgeConfig) -> anyhow::Result<Outbox> {
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data directory {}", cfg.data.display()))?;
    let path = cfg.data.join("edge.sqlite");
    let store = skyport_store_sqlite::SqliteStore::open(&path)
        .with_context(|| format!("opening the agent store {}", path.display()))?;
    Ok(Outbox::new(Arc::new(store)))
}

fn pusher(cfg: &EdgeConfig) -> anyhow::Result<Pusher> {
    match cloud_client(cfg)? {
        Some(c) => Ok(Pusher::from_cloud(c)),
        None => bail!("no cloud URL: pass --cloud-url or set SKYPORT_EDGE_CLOUD_URL"),
    }
}

fn options(cfg: &EdgeConfig) -> anyhow::Result<(DiscoverOptions, Option<Arc<PinStore>>)> {
    let mut pins = None;
    let tls = if cfg.insecure {
        tracing::warn!("BMC certificates are not verified (--insecure)");
        TlsPolicy::Insecure
    } else if let Some(ca) = &cfg.ca_bundle {
        TlsPolicy::ca_bundle(ca)?
    } else {
        std::fs::create_dir_all(&cfg.data)
            .with_context(|| format!("creating data directory {}", cfg.data.display()))?;
        let p = Arc::new(PinStore::load(&cfg.data.join("bmc-pins.json"))?);
        pins = Some(p.clone());
        TlsPolicy::Tofu(p)
    };
    let store = if cfg.secrets_file.exists() {
        Some(SecretStore::open(&cfg.secrets_file)?)
    } else {
        None
    };
    let default = match (&cfg.bmc_user, &cfg.bmc_password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        (Some(_), None) => bail!("a BMC user without a password: set SKYPORT_EDGE_BMC_PASSWORD"),
        (None, Some(_)) => bail!("a BMC password without a user: set --bmc-user"),
        (None, None) => None,
    };
    let site_map = match &cfg.site_map {
        Some(p) => Some(SiteMap::load(p)?),
        None => None,
    };
    Ok((
        DiscoverOptions {
            scheme: cfg.scheme.clone(),
            concurrency: cfg.concurrency,
            scan_concurrency: cfg.scan_concurrency,
            limits: Limits {
                connect_timeout: cfg.connect_timeout,
                request_timeout: cfg.request_timeout,
                ..Limits::default()
            },
            bmc_deadline: cfg.bmc_deadline,
            crawl: CrawlOptions {
                network_interfaces: cfg.network_interfaces,
                ..CrawlOptions::default()
            },
            auth: cfg.auth,
            tls,
            credentials: CredentialSource { store, default },
            site_map,
        },
        pins,
    ))
}

fn print_table(found: &[Found]) {
    let headers = [
        "TARGET", "STATUS", "XNAME", "VENDOR", "BMC MAC", "SYSTEMS", "REASON",
    ];
    let rows: Vec<[String; 7]> = found
        .iter()
        .filter(|f| f.row.status != Status::Absent)
        .map(|f| {
            let r = &f.row;
            [
                r.target.clone(),
                format!("{:?}", r.status).to_lowercase(),
                r.xname.clone().unwrap_or_else(|| "-".into()),
                r.vendor.clone().unwrap_or_else(|| "-".into()),
                r.mac.clone().unwrap_or_else(|| "-".into()),
                r.systems.to_string(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut w = [0usize; 7];
    for (i, h) in headers.iter().enumerate() {
        w[i] = h.len();
    }
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(headers.to_vec()));
    for r in &rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

fn summary_line(found: &[Found]) -> String {
    let count = |s| found.iter().filter(|f| f.row.status == s).count();
    format!(
        "{} target(s): {} discovered, {} skipped, {} failed, {} without Redfish",
        found.len(),
        count(Status::Discovered),
        count(Status::Skipped),
        count(Status::Failed),
        count(Status::Absent)
    )
}

async fn run_discovery(
    cfg: &EdgeConfig,
    hosts: &[String],
    outbox: Option<Outbox>,
    interactive: bool,
) -> anyhow::Result<Vec<Found>> {
    let mut specs = cfg.subnets.clone();
    specs.extend(hosts.iter().cloned());
    let targets = targets::expand(&specs, &cfg.ports)?;
    let (opts, pins) = options(cfg)?;
    let bar = if interactive {
        let b = indicatif::ProgressBar::new(targets.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} targets, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let found_count = std::sync::atomic::AtomicUsize::new(0);
    let found = discover::run(targets, Arc::new(opts), outbox, |f| {
        if f.row.status != Status::Absent {
            found_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(format!(
                "{} BMC(s) found",
                found_count.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
    })
    .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(p) = pins {
        p.save()?;
    }
    Ok(found)
}

async fn discover_cmd(
    cfg: &EdgeConfig,
    hosts: &[String],
    push_now: bool,
    push_timeout: u64,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let (outbox, pusher) = if push_now {
        (Some(open_outbox(cfg)?), Some(pusher(cfg)?))
    } else {
        (None, None)
    };
    let interactive = output == Output::Table && std::io::stderr().is_terminal();
    let discovery = run_discovery(cfg, hosts, outbox.clone(), interactive);
    let (found, early) = match (&outbox, &pusher) {
        (Some(o), Some(p)) => {
            let (found, rep) = push::push_during(o, p, 8, discovery).await?;
            (found?, rep.pushed)
        }
        _ => (discovery.await?, 0),
    };
    match output {
        Output::Table => print_table(&found),
        Output::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Output::Yaml => print!("{}", serde_norway::to_string(&found)?),
    }
    eprintln!("{}", summary_line(&found));
    let (Some(outbox), Some(pusher)) = (outbox, pusher) else {
        return Ok(ExitCode::SUCCESS);
    };
    let rep = push::drain(&outbox, &pusher, 8, Duration::from_secs(push_timeout)).await?;
    let depth = outbox.depth().await?;
    eprintln!(
        "pushed {} result(s) to {}; {} still queued{}",
        rep.pushed + early,
        pusher.base(),
        depth,
        rep.last_error
            .as_ref()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default()
    );
    Ok(if depth > 0 {
        ExitCode::from(EXIT_QUEUED)
    } else {
        ExitCode::SUCCESS
    })
}

fn cloud_client(cfg: &EdgeConfig) -> anyhow::Result<Option<CloudClient>> {
    let Some(url) = &cfg.cloud_url else {
        return Ok(None);
    };
    let token = match (&cfg.token, &cfg.client) {
        (Some(t), _) => TokenSource::fixed(t.clone()),
        (None, Some(c)) => TokenSource::client_credentials(c.clone()),
        (None, None) => TokenSource::none(),
    };
    Ok(Some(CloudClient::new(url, token)?))
}

async fn daemon(cfg: EdgeConfig) -> anyhow::Result<ExitCode> {
    if cfg.subnets.is_empty() && cfg.listen.is_none() {
        bail!(
            "daemon mode needs something to do: targets to discover (`subnets`, SKYPORT_EDGE_SUBNETS) and/or an address to serve nodes on (`listen`, SKYPORT_EDGE_LISTEN)"
        );
    }
    let cloud = cloud_client(&cfg)?;
    if cloud.is_none() && !cfg.subnets.is_empty() {
        bail!("discovery needs a cloud to push to: pass --cloud-url or set SKYPORT_EDGE_CLOUD_URL");
    }
    let outbox = open_outbox(&cfg)?;
    let metrics = Arc::new(Metrics::default());
    tracing::info!(cloud = cloud.as_ref().map(|c| c.base()).unwrap_or("none"),
        interval_s = cfg.interval.as_secs(), listen = ?cfg.listen, "edge agent started");
    let push_loop = {
        let outbox = outbox.clone();
        let cloud = cloud.clone();
        let metrics = metrics.clone();
        async move {
            let Some(cloud) = cloud else {
                return std::future::pending::<()>().await;
            };
            let pusher = Pusher::from_cloud(cloud);
            loop {
                match push::flush_once(&outbox, &pusher, 8).await {
                    Ok(rep) if rep.pushed + rep.retrying + rep.rejected > 0 => {
                        tracing::info!(
                            pushed = rep.pushed,
                            retrying = rep.retrying,
                            rejected = rep.rejected,
                            "outbox flushed"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "outbox unreadable"),
                }
                if let Ok(d) = outbox.depth().await {
                    metrics
                        .outbox_depth
                        .store(d as u64, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let scan_loop = async {
        if cfg.subnets.is_empty() {
            return std::future::pending::<()>().await;
        }
        loop {
            match run_discovery(&cfg, &[], Some(outbox.clone()), false).await {
                Ok(found) => tracing::info!(summary = %summary_line(&found), "discovery run done"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "discovery run failed"),
            }
            tokio::time::sleep(cfg.interval).await;
        }
    };
    let serve_loop = async {
        match cfg.listen {
            None => std::future::pending::<anyhow::Result<()>>().await,
            Some(listen) => {
                let node_url = cfg
                    .node_url
                    .clone()
                    .context("serving nodes needs node_url (SKYPORT_EDGE_NODE_URL)")?;
                let opts = site::SiteOptions {
                    data: cfg.data.clone(),
                    listen,
                    node_url,
                    sync_interval: cfg.sync_interval,
                    cache_max_bytes: cfg.cache_max_bytes,
                    cache_verify_interval: cfg.cache_verify_interval,
                    site: cfg.site.clone(),
                };
                site::serve(opts, cloud.clone(), metrics.clone(), None)
                    .await
                    .context("serving nodes")
            }
        }
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    };
    tokio::select! {
        _ = push_loop => {}
        _ = scan_loop => {}
        r = serve_loop => { r?; }
        r = shutdown => { r.context("waiting for a shutdown signal")?; }
    }
    tracing::info!(
        queued = outbox.depth().await.unwrap_or(0),
        "edge agent stopped; queued results stay on disk"
    );
    Ok(ExitCode::SUCCESS)
}

async fn outbox_cmd(cfg: &EdgeConfig, cmd: &OutboxCmd) -> anyhow::Result<ExitCode> {
    let outbox = open_outbox(cfg)?;
    match cmd {
        OutboxCmd::List => {
            for q in outbox.all().await? {
                println!(
                    "{}\tattempts={}\t{}\t{}",
                    q.id(),
                    q.entry.attempts,
                    if q.entry.rejected {
                        "refused"
                    } else {
                        "queued"
                    },
                    q.entry.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCmd::Retry => {
            println!("{} entr(ies) due again", outbox.retry_all().await?);
            Ok(ExitCode::SUCCESS)
        }
        OutboxCmd::Flush { timeout } => {
            let pusher = pusher(cfg)?;
            let rep = push::drain(&outbox, &pusher, 8, Duration::from_secs(*timeout)).await?;
            let depth = outbox.depth().await?;
            println!("pushed {}; {} still queued", rep.pushed, depth);
            Ok(if depth > 0 {
                ExitCode::from(EXIT_QUEUED)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn secrets_cmd(file: &std::path::Path, cmd: &SecretsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCmd::GenerateKey => {
            println!("{}", secrets::generate_key());
        }
        SecretsCmd::Set { id, username } => {
            let password = match std::env::var("SKYPORT_EDGE_BMC_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                bail!("empty password: pass it in SKYPORT_EDGE_BMC_PASSWORD or on standard input");
            }
            let mut s = SecretStore::open(file)?;
            s.set(
                id,
                Credentials {
                    username: username.clone(),
                    password,
                },
            );
            s.save()?;
            println!("stored credentials for {id} in {}", file.display());
        }
        SecretsCmd::List => {
            let s = SecretStore::open(file)?;
            for (id, user) in s.ids() {
                println!("{id}\t{user}");
            }
        }
        SecretsCmd::Remove { id } => {
            let mut s = SecretStore::open(file)?;
            if !s.remove(id) {
                bail!("no credentials stored for {id}");
            }
            s.save()?;
        }
    }
    std::io::stdout().flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn real_main() -> anyhow::Result<ExitCode> {
    // Every TLS client here is built with an explicit provider; this default covers any that
    // a dependency builds on its own. Failing means one is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let cfg = EdgeConfig::resolve(&cli.edge)?;
    let daemon_mode = matches!(cli.cmd, Cmd::Daemon);
    init_logs(cfg.log_json.unwrap_or(daemon_mode));
    match &cli.cmd {
        Cmd::Discover {
            hosts,
            push,
            push_timeout,
            output,
        } => discover_cmd(&cfg, hosts, *push, *push_timeout, *output).await,
        Cmd::Daemon => daemon(cfg).await,
        Cmd::Outbox { cmd } => outbox_cmd(&cfg, cmd).await,
        Cmd::Secrets { cmd } => secrets_cmd(&cfg.secrets_file, cmd),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match real_main().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skyport-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
