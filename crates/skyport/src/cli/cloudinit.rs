//! `skyport cloud-init`: cluster defaults and group data of the cloud-init service, and what
//! a given node would receive (impersonation).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;
use skyport_client::segment;

use super::{CliError, CliResult, Global, delete, print, read_document, show};

const ADMIN: &str = "/cloud-init/admin";

#[derive(Subcommand, Debug)]
pub enum CloudInitCmd {
    /// Cluster defaults (cluster name, base URL, public keys, ...).
    Defaults {
        #[command(subcommand)]
        cmd: DefaultsCmd,
    },
    /// Group data: meta-data and a cloud-config file per group.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
    /// What node <xname> gets as meta-data.
    MetaData { id: String },
}

#[derive(Subcommand, Debug)]
pub enum DefaultsCmd {
    Get,
    /// Replaces the defaults with a YAML or JSON file.
    ///
    /// Example:
    ///   skyport cloud-init defaults set -f defaults.yaml
    Set {
        #[arg(short, long)]
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    List,
    Get {
        name: String,
    },
    /// Creates or replaces a group's data from a YAML or JSON file.
    ///
    /// Example:
    ///   skyport cloud-init group set compute -f compute.yaml
    Set {
        name: String,
        #[arg(short, long)]
        file: PathBuf,
    },
    Delete {
        name: String,
    },
}

/// A YAML or JSON document that must be a mapping (`of` says of what, for the error).
fn read_mapping(file: &Path, of: &str) -> Result<Value, CliError> {
    let v: Value = read_document(file).map_err(CliError::Local)?;
    if !v.is_object() {
        return Err(CliError::Local(anyhow::anyhow!(
            "{}: expected a mapping {of}",
            file.display()
        )));
    }
    Ok(v)
}

pub async fn cloud_init(g: &Global, cmd: &CloudInitCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        CloudInitCmd::Defaults {
            cmd: DefaultsCmd::Get,
        } => show(g, &c, &format!("{ADMIN}/cluster-defaults"), &[]).await,
        CloudInitCmd::Defaults {
            cmd: DefaultsCmd::Set { file },
        } => {
            let v = read_mapping(file, "of cluster defaults")?;
            c.send(Method::POST, &format!("{ADMIN}/cluster-defaults"), Some(&v))
                .await?;
            Ok(())
        }
        CloudInitCmd::Group {
            cmd: GroupCmd::List,
        } => {
            let v = c.get_json(&format!("{ADMIN}/groups"), &[]).await?;
            // A map of name → data; show one row per group.
            let rows: Vec<Value> = v
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, d)| {
                            let mut r = serde_json::json!({"name": k});
                            if let (Some(o), Some(d)) = (r.as_object_mut(), d.as_object()) {
                                o.insert(
                                    "description".into(),
                                    d.get("description").cloned().unwrap_or(Value::Null),
                                );
                            }
                            r
                        })
                        .collect()
                })
                .unwrap_or_default();
            match g.output {
                super::Output::Table => print(
                    g.output,
                    &Value::Array(rows),
                    &[("NAME", "name"), ("DESCRIPTION", "description")],
                ),
                _ => print(g.output, &v, &[]),
            }
        }
        CloudInitCmd::Group {
            cmd: GroupCmd::Get { name },
        } => show(g, &c, &format!("{ADMIN}/groups/{}", segment(name)), &[]).await,
        CloudInitCmd::Group {
            cmd: GroupCmd::Set { name, file },
        } => {
            let v = read_mapping(file, "(meta-data, file, description)")?;
            c.send(
                Method::PUT,
                &format!("{ADMIN}/groups/{}", segment(name)),
                Some(&v),
            )
            .await?;
            Ok(())
        }
        CloudInitCmd::Group {
            cmd: GroupCmd::Delete { name },
        } => delete(&c, &format!("{ADMIN}/groups/{}", segment(name))).await,
        CloudInitCmd::MetaData { id } => {
            let text = c
                .get_text(
                    &format!("{ADMIN}/impersonation/{}/meta-data", segment(id)),
                    &[],
                )
                .await?;
            print!("{text}");
            Ok(())
        }
    }
}
