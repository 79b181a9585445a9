//! `skyport bootconfig`: BootConfigurations (OpenCHAMI v0.2's boot-service, `/boot-service`):
//! list, show, apply from flags or a YAML/JSON file, delete, and explain which configuration a
//! node boots and why. A configuration is named; `apply` creates it, or replaces the spec of the
//! one configuration of that name, so applying a file twice changes nothing. Specs are checked
//! here with the server's rules before anything is sent.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use skyport_boot::resources::{ConfigSpec, config_problems};

use super::{CliError, CliResult, Global, print, read_document};

const BASE: &str = "/boot-service/bootconfigurations";

#[derive(Subcommand, Debug)]
pub enum BootConfigCmd {
    /// Every BootConfiguration (BSS's entries appear as `bss-…` uids).
    List,
    /// One configuration, by uid or name.
    Show { config: String },
    /// Creates or replaces configurations, from flags or from a file of one or a list.
    ///
    /// Examples:
    ///   skyport bootconfig apply compute --group compute --kernel image:vmlinuz-6.1 \
    ///       --initrd image:initrd-6.1 --params "console=ttyS0 ip=dhcp"
    ///   skyport bootconfig apply -f configs.yaml
    ///
    /// A file item is ochami's flat form (`name` and the spec's fields: hosts, macs, nids,
    /// groups, profile, kernel, initrd, params, priority) or a resource
    /// (`{metadata: {name}, spec: {…}}`).
    Apply(Box<ApplyArgs>),
    /// Deletes configurations, by uid or name.
    Delete { configs: Vec<String> },
    /// Which configuration a node boots, and why (by xname, MAC or NID).
    ///
    /// Example:
    ///   skyport bootconfig explain x1000c0s0b0n0
    Explain { node: String },
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The configuration's name (with flags; a file names its own).
    pub name: Option<String>,
    #[arg(short, long, conflicts_with = "name")]
    pub file: Option<PathBuf>,
    /// Inventory groups whose members it boots (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Node xnames or prefixes such as `x1000c0s*` (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// MAC addresses (repeatable).
    #[arg(long = "mac")]
    pub macs: Vec<String>,
    /// NIDs (repeatable).
    #[arg(long = "nid")]
    pub nids: Vec<i32>,
    /// Kernel URL or `image:<id>`.
    #[arg(long)]
    pub kernel: Option<String>,
    #[arg(long)]
    pub initrd: Option<String>,
    #[arg(long)]
    pub params: Option<String>,
    /// 0-100; breaks ties between equally specific configurations.
    #[arg(long)]
    pub priority: Option<i64>,
}

const COLUMNS: &[(&str, &str)] = &[
    ("NAME", "metadata.name"),
    ("UID", "metadata.uid"),
    ("GROUPS", "spec.groups"),
    ("HOSTS", "spec.hosts"),
    ("MACS", "spec.macs"),
    ("NIDS", "spec.nids"),
    ("PRIORITY", "spec.priority"),
    ("KERNEL", "spec.kernel"),
];

/// A resource item of an apply file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceItem {
    metadata: Meta,
    spec: ConfigSpecFile,
    // What `ochami … -e` files carry and the server ignores.
    #[serde(rename = "apiVersion", default)]
    _api_version: Option<Value>,
    #[serde(rename = "kind", default)]
    _kind: Option<Value>,
    #[serde(rename = "status", default)]
    _status: Option<Value>,
}

#[derive(serde::Deserialize)]
struct Meta {
    name: String,
}

/// A spec as a file gives it, flat with its `name` or inside a resource: a misspelt field is
/// an error here, not a silently dropped key.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigSpecFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    macs: Vec<String>,
    #[serde(default)]
    nids: Vec<i32>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    kernel: String,
    #[serde(default)]
    initrd: String,
    #[serde(default)]
    params: String,
    #[serde(default)]
    priority: i64,
}

impl From<ConfigSpecFile> for ConfigSpec {
    fn from(f: ConfigSpecFile) -> Self {
        ConfigSpec {
            hosts: f.hosts,
            macs: f.macs,
            nids: f.nids,
            groups: f.groups,
            profile: f.profile,
            kernel: f.kernel,
            initrd: f.initrd,
            params: f.params,
            priority: f.priority,
        }
    }
}

/// Item `i` of a file: a resource if it has a `spec`, else the flat form.
fn item(i: usize, v: Value) -> Result<(String, ConfigSpec), String> {
    if v.get("spec").is_some() {
        let r: ResourceItem = serde_json::from_value(v).map_err(|e| format!("item {i}: {e}"))?;
        if r.spec.name.is_some() {
            return Err(format!("item {i}: `name` belongs in metadata"));
        }
        Ok((r.metadata.name, r.spec.into()))
    } else {
        let f: ConfigSpecFile = serde_json::from_value(v).map_err(|e| format!("item {i}: {e}"))?;
        let name = f.name.clone().unwrap_or_default();
        Ok((name, f.into()))
    }
}

fn local(m: impl std::fmt::Display) -> CliError {
    CliError::Local(anyhow::anyhow!("{m}"))
}

/// The configurations an apply names, each checked.
fn wanted(a: &ApplyArgs) -> Result<Vec<(String, ConfigSpec)>, CliError> {
    let items: Vec<(String, ConfigSpec)> = match &a.file {
        Some(f) => {
            let doc: Value = read_document(f).map_err(CliError::Local)?;
            let items = match doc {
                Value::Array(v) => v,
                one => vec![one],
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| item(i, v).map_err(|e| local(format!("{}: {e}", f.display()))))
                .collect::<Result<_, _>>()?
        }
        None => {
            let name = a
                .name
                .clone()
                .ok_or_else(|| local("name the configuration, or give a file with -f"))?;
            vec![(
                name,
                ConfigSpec {
                    hosts: a.hosts.clone(),
                    macs: a.macs.clone(),
                    nids: a.nids.clone(),
                    groups: a.groups.clone(),
                    kernel: a.kernel.clone().unwrap_or_default(),
                    initrd: a.initrd.clone().unwrap_or_default(),
                    params: a.params.clone().unwrap_or_default(),
                    priority: a.priority.unwrap_or(0),
                    ..ConfigSpec::default()
                },
            )]
        }
    };
    let origin = a
        .file
        .as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default();
    for (name, spec) in &items {
        if name.trim().is_empty() {
            return Err(local(format!("{origin}a configuration needs a name")));
        }
        let problems = config_problems(spec);
        if !problems.is_empty() {
            return Err(local(format!("{origin}{name}: {}", problems.join("; "))));
        }
    }
    Ok(items)
}

/// The uid of the configuration `key` names: a uid as is, else the one configuration of that
/// name (an error if several have it).
fn uid_of(all: &[Value], key: &str) -> Result<Option<String>, CliError> {
    if all.iter().any(|c| c["metadata"]["uid"] == key) {
        return Ok(Some(key.to_string()));
    }
    let named: Vec<&Value> = all
        .iter()
        .filter(|c| c["metadata"]["name"] == key)
        .collect();
    match named.as_slice() {
        [] => Ok(None),
        [one] => Ok(one["metadata"]["uid"].as_str().map(str::to_string)),
        many => Err(local(format!(
            "{} configurations are named {key}; give a uid: {}",
            many.len(),
            many.iter()
                .filter_map(|c| c["metadata"]["uid"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn list_of(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

pub async fn bootconfig(g: &Global, cmd: &BootConfigCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        BootConfigCmd::List => {
            let v = c.get_json(BASE, &[]).await?;
            print(g.output, &v, COLUMNS)
        }
        BootConfigCmd::Show { config } => {
            let all = list_of(c.get_json(BASE, &[]).await?);
            let uid =
                uid_of(&all, config)?.ok_or_else(|| local(format!("no configuration {config}")))?;
            let v = c
                .get_json(&format!("{BASE}/{}", skyport_client::segment(&uid)), &[])
                .await?;
            print(g.output, &v, COLUMNS)
        }
        BootConfigCmd::Apply(a) => {
            let items = wanted(a)?;
            let all = list_of(c.get_json(BASE, &[]).await?);
            let mut out = Vec::new();
            for (name, spec) in items {
                let body = json!({"metadata": {"name": name}, "spec": spec});
                let v = match uid_of(&all, &name)? {
                    Some(uid) => {
                        c.send(
                            Method::PUT,
                            &format!("{BASE}/{}", skyport_client::segment(&uid)),
                            Some(&body),
                        )
                        .await?
                    }
                    None => c.send(Method::POST, BASE, Some(&body)).await?,
                };
                out.push(v);
            }
            print(g.output, &Value::Array(out), COLUMNS)
        }
        BootConfigCmd::Delete { configs } => {
            let all = list_of(c.get_json(BASE, &[]).await?);
            for key in configs {
                let uid =
                    uid_of(&all, key)?.ok_or_else(|| local(format!("no configuration {key}")))?;
                c.send(
                    Method::DELETE,
                    &format!("{BASE}/{}", skyport_client::segment(&uid)),
                    None,
                )
                .await?;
            }
            Ok(())
        }
        BootConfigCmd::Explain { node } => {
            let v = c
                .get_json("/boot-service/explain", &[("host", node.clone())])
                .await?;
            if g.output != super::Output::Table {
                return print(g.output, &v, &[]);
            }
            print!("{}", explain_text(&v));
            Ok(())
        }
    }
}

/// An explanation for a terminal: the node, the choice and the rule that made it, and every
/// configuration that names the node with its score.
fn explain_text(v: &Value) -> String {
    let id = v["identifier"].as_str().unwrap_or("");
    if v["node"].is_null() {
        return format!(
            "{id}: no such node (neither the inventory nor a Node resource knows it)\n"
        );
    }
    let n = &v["node"];
    let list = |k: &str| {
        n[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let mut s = format!(
        "node    {} (NID {}, role {}, groups {}, MACs {})\n",
        n["xname"].as_str().unwrap_or(""),
        n["nid"].as_i64().map_or("-".into(), |x| x.to_string()),
        n["role"].as_str().filter(|r| !r.is_empty()).unwrap_or("-"),
        list("groups"),
        list("macs"),
    );
    match v["chosen"].as_object() {
        None => s.push_str("boots   nothing: no BSS entry and no BootConfiguration names it\n"),
        Some(c) => {
            let rule = match &c["rule"] {
                Value::String(r) if r == "own-entry" => "its own BSS entry".to_string(),
                Value::String(r) if r == "fallback" => "BSS's role or Default entry".to_string(),
                Value::Object(o) => format!(
                    "the best score ({})",
                    o.get("score").map(|x| x.to_string()).unwrap_or_default()
                ),
                other => other.to_string(),
            };
            s.push_str(&format!(
                "boots   {} ({}) by {rule}: {}\n",
                c["name"].as_str().unwrap_or(""),
                c["uid"].as_str().unwrap_or(""),
                c["kernel"].as_str().unwrap_or("")
            ));
        }
    }
    let cands = v["candidates"].as_array().cloned().unwrap_or_default();
    if !cands.is_empty() {
        s.push_str("\nconfigurations naming it, best first:\n");
        s.push_str(&super::table(
            &Value::Array(cands),
            &[
                ("SCORE", "score"),
                ("PRIORITY", "priority"),
                ("NAME", "name"),
                ("UID", "uid"),
            ],
        ));
    }
    s
}
