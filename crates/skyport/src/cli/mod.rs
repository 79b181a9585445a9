//! The administrator's commands against any Skyport API (the local server or the cloud),
//! chosen by a named profile. Shared here: which API and token to use ([`profile`]), how
//! answers are printed (table, JSON, YAML), and exit codes scripts can trust:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | nothing was sent: bad flags, file or local state |
//! | 2 | command-line usage error (clap) |
//! | 3 | the server refused the request (4xx); its problem detail is printed |
//! | 4 | the server failed (5xx) or could not be reached |
//! | 5 | a job ran, and some of its targets did not succeed (each one's result is printed) |

pub mod boot;
pub mod bootconfig;
pub mod cloudinit;
pub mod hardware;
pub mod images;
pub mod inventory;
pub mod login;
pub mod power;
pub mod profile;
pub mod sites;

use std::io::Write as _;

use clap::{Args, ValueEnum};
use serde_json::Value;
use skyport_client::{Client, ClientError};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Options every API command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Profile from the CLI config file [default: the file's `default`, else `local`].
    #[arg(long, env = "SKYPORT_PROFILE", global = true)]
    pub profile: Option<String>,
    /// API root, overriding the profile's (e.g. http://127.0.0.1:27779).
    #[arg(long, env = "SKYPORT_URL", global = true)]
    pub url: Option<String>,
    /// Bearer token, overriding the profile's.
    #[arg(long, env = "SKYPORT_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CLI config file [default: ~/.config/skyport/cli.toml].
    #[arg(long, env = "SKYPORT_CLI_CONFIG", global = true)]
    pub cli_config: Option<std::path::PathBuf>,
    /// Output: table, json or yaml.
    #[arg(short, long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// Why a command failed, mapped to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Nothing was sent (bad input or local state).
    #[error("{0:#}")]
    Local(anyhow::Error),
    #[error(transparent)]
    Api(#[from] ClientError),
    /// A job ran and some of its targets did not succeed.
    #[error("{0}")]
    Partial(String),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<ClientError>() {
            Ok(c) => CliError::Api(c),
            Err(e) => CliError::Local(e),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Local(_) => 1,
            CliError::Partial(_) => 5,
            CliError::Api(e) => match e.status() {
                Some(s) if (400..500).contains(&s) => 3,
                _ => 4,
            },
        }
    }
}

pub type CliResult = Result<(), CliError>;

impl Global {
    pub fn client(&self) -> Result<Client, CliError> {
        let p = profile::resolve(self).map_err(CliError::Local)?;
        Client::new(&p.url, p.token).map_err(CliError::Api)
    }
}

/// `GET path`, printed with `columns`: a `get` command, or what an `add` or `set` shows of its
/// result.
pub async fn show(g: &Global, c: &Client, path: &str, columns: &[(&str, &str)]) -> CliResult {
    let v = c.get_json(path, &[]).await?;
    print(g.output, &v, columns)
}

/// `DELETE path`, which answers nothing worth printing.
pub async fn delete(c: &Client, path: &str) -> CliResult {
    c.send(reqwest::Method::DELETE, path, None).await?;
    Ok(())
}

/// Prints `v` as asked: tables show `columns` of each element of `v` (or of `v` itself).
pub fn print(out: Output, v: &Value, columns: &[(&str, &str)]) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    let text = match out {
        Output::Json => {
            serde_json::to_string_pretty(v).map_err(|e| CliError::Local(e.into()))? + "\n"
        }
        Output::Yaml => serde_norway::to_string(v).map_err(|e| CliError::Local(e.into()))?,
        Output::Table => table(v, columns),
    };
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| CliError::Local(e.into()))
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(o)) => {
            // An IP address list element and similar one-field objects read best as the value.
            if o.len() == 1 {
                o.values().next().map(|x| cell(Some(x))).unwrap_or_default()
            } else {
                Value::Object(o.clone()).to_string()
            }
        }
        Some(x) => x.to_string(),
    }
}

/// A plain-text table: a header row of `columns`' titles, one row per element.
pub fn table(v: &Value, columns: &[(&str, &str)]) -> String {
    let rows: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let cols: Vec<(String, String)> = if columns.is_empty() {
        rows.first()
            .and_then(|r| r.as_object())
            .map(|o| o.keys().map(|k| (k.clone(), k.clone())).collect())
            .unwrap_or_default()
    } else {
        columns
            .iter()
            .map(|(t, k)| (t.to_string(), k.to_string()))
            .collect()
    };
    if cols.is_empty() {
        return rows.iter().map(|r| cell(Some(r)) + "\n").collect();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|(_, k)| cell(r.pointer(&format!("/{}", k.replace('.', "/")))))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, (t, _))| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([t.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    let line = |s: &mut String, vals: Vec<&str>| {
        let parts: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        s.push_str(parts.join("  ").trim_end());
        s.push('\n');
    };
    line(&mut s, cols.iter().map(|(t, _)| t.as_str()).collect());
    for c in &cells {
        line(&mut s, c.iter().map(String::as_str).collect());
    }
    s
}

/// Reads a YAML or JSON file (YAML is a superset); errors name the file, line and field.
pub fn read_document<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_norway::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
