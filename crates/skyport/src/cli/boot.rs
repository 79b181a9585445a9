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
    let bad = |e: skyport_boot::BootError| CliError::Local(anyhow::anyhow!("{origin}{e}"));
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
        cloud_init: None,
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
