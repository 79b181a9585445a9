//! `skyport bootparams` and `skyport bootscript`: the boot service (BSS's `/boot/v1`).
//! Parameters come from flags or from a YAML/JSON file in BSS's `BootParams` shape (what
//! `ochami bss boot params add -f` reads), and are validated here, before anything is sent,
//! with the same rules the server applies.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;
use skyport_boot::params::{BootConfig, BootParams, check_config, node_keys};

use super::{CliError, CliResult, Global, print, read_document};

const BSS: &str = "/boot/v1";

#[derive(Args, Debug, Clone, Default)]
pub struct Target {
    /// Node xnames (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// MAC addresses (repeatable).
    #[arg(long = "mac")]
    pub macs: Vec<String>,
    /// NIDs (repeatable).
    #[arg(long = "nid")]
    pub nids: Vec<i64>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Config {
    /// A YAML or JSON file in BSS's BootParams shape (hosts, macs, nids, kernel, initrd,
    /// params, cloud-init); flags given as well override its fields.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Kernel URL or `image:<id>`.
    #[arg(long)]
    pub kernel: Option<String>,
    /// Initrd URL or `image:<id>`.
    #[arg(long)]
    pub initrd: Option<String>,
    /// Kernel command line.
    #[arg(long)]
    pub params: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum BootParamsCmd {
    /// Boot parameters, all or for the nodes named.
    ///
    /// Example:
    ///   skyport bootparams get --host x1000c0s0b0n0 -o yaml
    Get {
        #[command(flatten)]
        target: Target,
    },
    /// Creates parameters for nodes that have none (BSS POST; an existing entry is an error).
    ///
    /// Examples:
    ///   skyport bootparams add --host x1000c0s0b0n0 --kernel image:vmlinuz-6.1-x86_64-kernel \
    ///       --initrd image:initrd-6.1-x86_64-initrd --params "console=ttyS0"
    ///   skyport bootparams add -f compute.yaml
    Add {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        config: Config,
    },
    /// Replaces the nodes' parameters (BSS PUT).
    Set {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        config: Config,
    },
    /// Changes only the fields given (BSS PATCH).
    Update {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        config: Config,
    },
    /// Deletes the nodes' parameters.
    Delete {
        #[command(flatten)]
        target: Target,
    },
}

/// BSS's `BootParams` as a file: the same fields, but a misspelt one is an error here rather
/// than a silently ignored key.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    macs: Vec<String>,
    #[serde(default)]
    nids: Vec<i64>,
    #[serde(default)]
    params: String,
    #[serde(default)]
    kernel: String,
    #[serde(default)]
    initrd: String,
    #[serde(rename = "cloud-init", default)]
    cloud_init: Option<Value>,
}

impl From<ParamsFile> for BootParams {
    fn from(f: ParamsFile) -> Self {
        BootParams {
            hosts: f.hosts,
            macs: f.macs,
            nids: f.nids,
            params: f.params,
            kernel: f.kernel,
            initrd: f.initrd,
            cloud_init: f.cloud_init,
        }
    }
}

/// Builds and checks the request body: file first, then flags; nodes and values validated.
fn body(target: &Target, config: &Config, need_config: bool) -> Result<Value, CliError> {
    let mut p: BootParams = match &config.file {
        Some(f) => read_document::<ParamsFile>(f)
            .map_err(CliError::Local)?
            .into(),
        None => BootParams::default(),
    };
    p.hosts.extend(target.hosts.iter().cloned());
    p.macs.extend(target.macs.iter().cloned());
    p.nids.extend(target.nids.iter().copied());
    if let Some(k) = &config.kernel {
        p.kernel = k.clone();
    }
    if let Some(i) = &config.initrd {
        p.initrd = i.clone();
    }
    if let Some(x) = &config.params {
        p.params = x.clone();
    }
    let origin = config
        .file
        .as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default();
    // BSS's text, then what it leaves out (which entry), as the CLI prints a server's problem.
    let bad = |e: skyport_boot::BootError| {
        let why = match e.context() {
            Some(c) => format!("{e} ({c})"),
            None => e.to_string(),
        };
        CliError::Local(anyhow::anyhow!("{origin}{}", why.trim_end()))
    };
    let keys = node_keys(&p).map_err(bad)?;
    if keys.is_empty() {
        return Err(CliError::Local(anyhow::anyhow!(
            "{origin}name the nodes: --host, --mac or --nid (or hosts/macs/nids in the file)"
        )));
    }
    if need_config && p.kernel.is_empty() {
        return Err(CliError::Local(anyhow::anyhow!(
            "{origin}a kernel is required (--kernel or `kernel:` in the file)"
        )));
    }
    check_config(&BootConfig {
        kernel: p.kernel.clone(),
        initrd: p.initrd.clone(),
        params: p.params.clone(),
        ..BootConfig::default()
    })
    .map_err(bad)?;
    serde_json::to_value(&p).map_err(|e| CliError::Local(e.into()))
}

const COLUMNS: &[(&str, &str)] = &[
    ("HOSTS", "hosts"),
    ("MACS", "macs"),
    ("NIDS", "nids"),
    ("KERNEL", "kernel"),
    ("INITRD", "initrd"),
    ("PARAMS", "params"),
];

pub async fn bootparams(g: &Global, cmd: &BootParamsCmd) -> CliResult {
    let c = g.client()?;
    let path = format!("{BSS}/bootparameters");
    match cmd {
        BootParamsCmd::Get { target } => {
            let mut query = Vec::new();
            for h in &target.hosts {
                query.push(("name", h.clone()));
            }
            for m in &target.macs {
                query.push(("mac", m.clone()));
            }
            for n in &target.nids {
                query.push(("nid", n.to_string()));
            }
            let v = c.get_json(&path, &query).await?;
            print(g.output, &v, COLUMNS)
        }
        BootParamsCmd::Add { target, config } => {
            let b = body(target, config, true)?;
            c.send(Method::POST, &path, Some(&b)).await?;
            Ok(())
        }
        BootParamsCmd::Set { target, config } => {
            let b = body(target, config, true)?;
            c.send(Method::PUT, &path, Some(&b)).await?;
            Ok(())
        }
        BootParamsCmd::Update { target, config } => {
            let b = body(target, config, false)?;
            c.send(Method::PATCH, &path, Some(&b)).await?;
            Ok(())
        }
        BootParamsCmd::Delete { target } => {
            let b = body(target, &Config::default(), false)?;
            c.send(Method::DELETE, &path, Some(&b)).await?;
            Ok(())
        }
    }
}

/// `skyport bootscript`: exactly what the node would get.
#[derive(Args, Debug)]
pub struct BootScriptArgs {
    #[arg(long, conflicts_with_all = ["name", "nid"])]
    pub mac: Option<String>,
    #[arg(long, conflicts_with = "nid")]
    pub name: Option<String>,
    #[arg(long)]
    pub nid: Option<i64>,
}

pub async fn bootscript(g: &Global, a: &BootScriptArgs) -> CliResult {
    let query: Vec<(&str, String)> = match (&a.mac, &a.name, a.nid) {
        (Some(m), _, _) => {
            let m = skyport_model::Mac::parse(m).map_err(|e| CliError::Local(e.into()))?;
            vec![("mac", m.to_string())]
        }
        (_, Some(n), _) => vec![("name", n.clone())],
        (_, _, Some(n)) => vec![("nid", n.to_string())],
        _ => {
            return Err(CliError::Local(anyhow::anyhow!(
                "which node? give --mac, --name or --nid"
            )));
        }
    };
    let c = g.client()?;
    let script = c.get_text(&format!("{BSS}/bootscript"), &query).await?;
    print!("{script}");
    Ok(())
}

/// `skyport boot`: the boot flight recorder, from the cloud or (with `--url`) an edge agent.
#[derive(Subcommand, Debug)]
pub enum BootCmd {
    /// One node's boot, stage by stage, with the time each took.
    ///
    /// Examples:
    ///   skyport boot timeline x1000c0s0b0n0
    ///   skyport boot timeline 52:54:00:12:34:56 --all
    ///   skyport boot timeline x1000c0s0b0n0 --url http://10.1.0.1:8080   # an edge agent
    Timeline {
        /// The node's xname or MAC.
        node: String,
        /// Every kept event, not only the last boot's.
        #[arg(long)]
        all: bool,
    },
    /// How many nodes are at each stage, and which are stuck.
    ///
    /// Examples:
    ///   skyport boot status --site east
    ///   skyport boot status --group compute --stuck-after 120
    Status {
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// Seconds without progress before a node short of phone-home counts as stuck.
        #[arg(long, default_value_t = skyport_boot::flight::STUCK_AFTER_S)]
        stuck_after: i64,
    },
    /// Set nodes' next boot (once) to the network, or clear it, through their sites' agents.
    ///
    /// Examples:
    ///   skyport boot override x1000c0s0b0n0 --to pxe --wait
    ///   skyport boot override --group compute --to http
    Override {
        targets: Vec<String>,
        #[arg(long)]
        group: Vec<String>,
        /// pxe, http (UEFI HTTP boot) or none.
        #[arg(long)]
        to: String,
        #[arg(long)]
        wait: bool,
    },
}

fn seconds(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn clock(ms: i64) -> String {
    let t = ms.div_euclid(1000);
    let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03}", ms.rem_euclid(1000))
}

pub async fn boot(g: &Global, c: &BootCmd) -> CliResult {
    use skyport_boot::flight::{BOOTS, BootEvent, last_boot};
    if let BootCmd::Override {
        targets,
        group,
        to,
        wait,
    } = c
    {
        return super::power::boot_override(g, targets, group, to, *wait).await;
    }
    let client = g.client()?;
    match c {
        BootCmd::Override { .. } => Ok(()),
        BootCmd::Timeline { node, all } => {
            let v = client.get_json(&format!("{BOOTS}/{node}"), &[]).await?;
            if g.output != super::Output::Table {
                return print(g.output, &v, &[]);
            }
            let events: Vec<BootEvent> = serde_json::from_value(v["events"].clone())
                .map_err(|e| CliError::Local(e.into()))?;
            let shown = if *all {
                &events[..]
            } else {
                last_boot(&events)
            };
            let start = shown.first().map(|e| e.at_ms).unwrap_or(0);
            println!(
                "{} (UTC times; +since the boot's first event, Δ since the previous)",
                v["node"].as_str().unwrap_or(node)
            );
            println!(
                "{:<14} {:>9} {:>8}  {:<13} DETAIL",
                "TIME", "+", "Δ", "STAGE"
            );
            let mut prev = start;
            for e in shown {
                let mark = if e.failed { " (failed)" } else { "" };
                println!(
                    "{:<14} {:>9} {:>8}  {:<13} {}{mark}",
                    clock(e.at_ms),
                    seconds(e.at_ms - start),
                    seconds(e.at_ms - prev),
                    e.stage.name(),
                    e.detail
                );
                prev = e.at_ms;
            }
            Ok(())
        }
        BootCmd::Status {
            site,
            group,
            stuck_after,
        } => {
            let mut q: Vec<(&str, String)> = vec![("stuck_after", stuck_after.to_string())];
            if let Some(s) = site {
                q.push(("site", s.clone()));
            }
            if let Some(gr) = group {
                q.push(("group", gr.clone()));
            }
            let v = client.get_json(BOOTS, &q).await?;
            if g.output != super::Output::Table {
                return print(g.output, &v, &[]);
            }
            println!("{} nodes, {} phoned home", v["nodes"], v["phoned_home"]);
            if let Some(stages) = v["stages"].as_object() {
                for s in skyport_boot::flight::Stage::ALL {
                    if let Some(n) = stages.get(s.name()) {
                        println!("  {:<13} {n}", s.name());
                    }
                }
            }
            if let Some(t) = v.get("time_to_phone_home_s").filter(|t| !t.is_null()) {
                println!(
                    "time to phone-home: median {}s, p90 {}s, slowest {}s ({} boots)",
                    t["p50"], t["p90"], t["max"], t["count"]
                );
            }
            let stuck = v["stuck"].as_array().cloned().unwrap_or_default();
            if !stuck.is_empty() {
                println!("stuck (no progress for {stuck_after}s):");
                for p in stuck {
                    println!(
                        "  {:<16} {:<13} since {}",
                        p["node"].as_str().unwrap_or(""),
                        p["stage"].as_str().unwrap_or(""),
                        clock(p["at_ms"].as_i64().unwrap_or(0))
                    );
                }
            }
            Ok(())
        }
    }
}
