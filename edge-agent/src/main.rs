//! `skyport-edge`: the site agent's command line. Wires configuration, the embedded store and
//! the library together; the work lives in the `skyport_edge` library.

use std::io::{IsTerminal, Write as _};

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use skyport_edge::{
    Action, Agent, BootTarget, EdgeArgs, EdgeConfig, Found, Outcome, SecretStore, Status, TaskState,
};
use skyport_http::{LogFormat, LogOutput};
use skyport_redfish::Credentials;
use tokio_util::sync::CancellationToken;

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
    /// Act on nodes' power here and now, without the cloud, with the credentials this agent
    /// holds (staggered by chassis as the cloud's jobs are). Targets are node xnames, or a
    /// BMC, chassis or cabinet xname meaning every discovered node under it.
    ///
    /// Examples:
    ///   skyport-edge power status x1000c0
    ///   skyport-edge power reset x1000c0s3b0n0 --boot pxe
    ///   skyport-edge power off x1000c0s3b0n0 --force
    Power {
        /// on, off, reset, cycle or status.
        verb: String,
        #[arg(required = true)]
        targets: Vec<String>,
        /// off: forced at once (no graceful shutdown).
        #[arg(long)]
        force: bool,
        /// off: graceful only; reset: ask the OS to restart.
        #[arg(long)]
        soft: bool,
        /// Set the next boot first: pxe or http (UEFI HTTP boot).
        #[arg(long)]
        boot: Option<String>,
        /// Seconds each node gets to reach its state (0: do not wait).
        #[arg(long, default_value_t = 300)]
        wait: u64,
    },
    /// Set nodes' next boot (once) to the network, or clear it, without the cloud.
    ///
    /// Example: skyport-edge boot-override x1000c0s3b0n0 --to pxe
    BootOverride {
        #[arg(required = true)]
        targets: Vec<String>,
        /// pxe, http (UEFI HTTP boot) or none.
        #[arg(long)]
        to: String,
    },
    /// The BMCs this agent's discovery recorded for power actions, with their nodes.
    Bmcs,
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

async fn discover_cmd(
    agent: &Agent,
    hosts: &[String],
    push_now: bool,
    push_timeout: u64,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let interactive = output == Output::Table && std::io::stderr().is_terminal();
    let total = agent.target_count(hosts)?;
    let bar = interactive.then(|| {
        let b = indicatif::ProgressBar::new(total as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} targets, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let found_count = std::sync::atomic::AtomicUsize::new(0);
    let progress = |f: &Found| {
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
    };
    let run = agent.discover(hosts, push_now, &progress).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let run = run?;
    let found = &run.found;
    match output {
        Output::Table => print_table(found),
        Output::Json => println!("{}", serde_json::to_string_pretty(found)?),
        Output::Yaml => print!("{}", serde_norway::to_string(found)?),
    }
    eprintln!("{}", skyport_edge::summary(found));
    if !push_now {
        return Ok(ExitCode::SUCCESS);
    }
    let rep = agent.flush(Duration::from_secs(push_timeout)).await?;
    eprintln!(
        "pushed {} result(s) to {}; {} still queued{}",
        rep.pushed + run.pushed,
        agent.cloud_url().unwrap_or("the cloud"),
        rep.queued,
        rep.last_error
            .as_ref()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default()
    );
    Ok(queued_exit(rep.queued))
}

fn queued_exit(queued: usize) -> ExitCode {
    if queued > 0 {
        ExitCode::from(EXIT_QUEUED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the agent until SIGINT or SIGTERM, then stops it in order.
async fn daemon(agent: Agent) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    let mut run = std::pin::pin!(agent.run(cancel.clone()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("waiting for SIGTERM")?;
    tokio::select! {
        r = &mut run => { r?; return Ok(ExitCode::SUCCESS); }
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    cancel.cancel();
    run.await?;
    Ok(ExitCode::SUCCESS)
}

async fn outbox_cmd(agent: &Agent, cmd: &OutboxCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCmd::List => {
            for q in agent.queued().await? {
                println!(
                    "{}\tattempts={}\t{}\t{}",
                    q.id,
                    q.attempts,
                    if q.parked { "refused" } else { "queued" },
                    q.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCmd::Retry => {
            println!("{} entr(ies) due again", agent.retry_queued().await?);
            Ok(ExitCode::SUCCESS)
        }
        OutboxCmd::Flush { timeout } => {
            let rep = agent.flush(Duration::from_secs(*timeout)).await?;
            println!("pushed {}; {} still queued", rep.pushed, rep.queued);
            Ok(queued_exit(rep.queued))
        }
    }
}

fn secrets_cmd(file: &std::path::Path, cmd: &SecretsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCmd::GenerateKey => {
            println!("{}", skyport_edge::generate_key());
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

/// `targets` as node xnames: a node the directory holds as itself, anything else as every node
/// under it (by xname prefix at a component boundary).
fn expand(targets: &[String], known: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = std::collections::BTreeSet::new();
    for t in targets {
        let t = skyport_model::Xname::parse(t)
            .with_context(|| format!("{t}: not an xname"))?
            .to_string();
        let under: Vec<&String> = known
            .iter()
            .filter(|k| {
                **k == t
                    || k.strip_prefix(t.as_str())
                        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .collect();
        if under.is_empty() {
            // Not discovered here: the task says so for that node.
            out.insert(t);
        } else {
            out.extend(under.into_iter().cloned());
        }
    }
    Ok(out.into_iter().collect())
}

async fn act_cmd(
    agent: &Agent,
    action: Action,
    targets: &[String],
    settle: Duration,
) -> anyhow::Result<ExitCode> {
    let known: Vec<String> = agent
        .bmcs()
        .await?
        .into_iter()
        .flat_map(|(_, _, nodes)| nodes)
        .collect();
    let xnames = expand(targets, &known)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(xnames.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} nodes",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let progress = bar.clone();
    let outcomes = agent
        .act(
            action,
            xnames,
            settle,
            std::sync::Arc::new(move |_: &Outcome| {
                if let Some(b) = &progress {
                    b.inc(1);
                }
            }),
        )
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let width = outcomes
        .iter()
        .map(|o| o.xname.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:<11}  RESULT", "XNAME", "STATE");
    for o in &outcomes {
        let text = if o.error.is_empty() {
            &o.detail
        } else {
            &o.error
        };
        println!("{:<width$}  {:<11}  {text}", o.xname, o.state.as_str());
    }
    let ok = outcomes
        .iter()
        .filter(|o| o.state == TaskState::Succeeded)
        .count();
    eprintln!("{action}: {ok} of {} succeeded", outcomes.len());
    Ok(if ok == outcomes.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn real_main() -> anyhow::Result<ExitCode> {
    // Every TLS client here is built with an explicit provider; this default covers any that
    // a dependency builds on its own. Failing means one is already installed, which is fine.
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let cfg = EdgeConfig::resolve(&cli.edge)?;
    let daemon_mode = matches!(cli.cmd, Cmd::Daemon);
    let format = if cfg.log_json.unwrap_or(daemon_mode) {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    // A second initialisation (tests driving main twice) keeps the first subscriber.
    let _first_stays =
        skyport_http::init_tracing(format, "warn,skyport_edge=info", LogOutput::Stderr);
    let agent = Agent::new(cfg)?;
    match &cli.cmd {
        Cmd::Discover {
            hosts,
            push,
            push_timeout,
            output,
        } => discover_cmd(&agent, hosts, *push, *push_timeout, *output).await,
        Cmd::Daemon => daemon(agent).await,
        Cmd::Outbox { cmd } => outbox_cmd(&agent, cmd).await,
        Cmd::Secrets { cmd } => secrets_cmd(&agent.config().secrets_file, cmd),
        Cmd::Power {
            verb,
            targets,
            force,
            soft,
            boot,
            wait,
        } => {
            let action = if verb == "status" && !force && !soft && boot.is_none() {
                Action::Status
            } else {
                let operation = skyport_power::operation_for(verb, *force, *soft).with_context(
                    || {
                        format!(
                            "power {verb}{}{}: use on, off [--force|--soft], reset [--soft], cycle or status",
                            if *force { " --force" } else { "" },
                            if *soft { " --soft" } else { "" }
                        )
                    },
                )?;
                let boot = match boot {
                    None => None,
                    Some(b) => Some(
                        BootTarget::parse(b)
                            .with_context(|| format!("--boot {b}: use pxe, http or none"))?,
                    ),
                };
                Action::Power { operation, boot }
            };
            act_cmd(&agent, action, targets, Duration::from_secs(*wait)).await
        }
        Cmd::BootOverride { targets, to } => {
            let target = BootTarget::parse(to)
                .with_context(|| format!("--to {to}: use pxe, http or none"))?;
            act_cmd(&agent, Action::Boot { target }, targets, Duration::ZERO).await
        }
        Cmd::Bmcs => {
            for (xname, url, nodes) in agent.bmcs().await? {
                println!("{xname}  {url}  {}", nodes.join(","));
            }
            Ok(ExitCode::SUCCESS)
        }
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
