//! `skyport power`, `skyport boot override` and `skyport job`: jobs on hardware through the
//! power service (`/power/v1`), run by each site's edge agent. Targets are node xnames, any
//! xname above nodes (a BMC, chassis, cabinet: every node under it) and `--group` members.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use skyport_client::{Client, segment};
use skyport_power::{BootTarget, operation_for};

use super::{CliError, CliResult, Global, Output, print};

const JOBS: &str = "/power/v1/jobs";

#[derive(Args, Debug)]
pub struct PowerArgs {
    /// on, off, reset, cycle or status.
    pub verb: String,
    /// Node xnames, or xnames above nodes (every node under a BMC, chassis or cabinet).
    pub targets: Vec<String>,
    /// Every node of these groups too (repeatable).
    #[arg(long)]
    pub group: Vec<String>,
    /// off: forced at once, without asking the OS.
    #[arg(long)]
    pub force: bool,
    /// off: graceful only; reset: ask the OS to restart.
    #[arg(long)]
    pub soft: bool,
    /// Set the next boot (once) first: pxe or http (UEFI HTTP boot).
    #[arg(long)]
    pub boot: Option<String>,
    /// Wait for the job to finish, with progress, and print each node's result.
    #[arg(long)]
    pub wait: bool,
    /// status: ask the BMCs now (a status job) instead of showing what was last reported.
    #[arg(long)]
    pub refresh: bool,
    /// Seconds each node gets to reach its state (0: do not wait for it).
    #[arg(long, default_value_t = 300)]
    pub settle: u64,
}

#[derive(Subcommand, Debug)]
pub enum JobCmd {
    /// Jobs of the last day, newest first.
    List,
    /// One job with each target's state, site and result.
    Show { id: String },
    /// Cancel what has not started (tasks running finish).
    Cancel { id: String },
}

/// Node xnames for `targets` and `groups`: nodes as given; anything else expands to the
/// inventory's nodes under it.
async fn nodes(c: &Client, targets: &[String], groups: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = std::collections::BTreeSet::new();
    let mut all_nodes: Option<Vec<String>> = None;
    for t in targets {
        let x = skyport_model::Xname::parse(t)
            .map_err(|e| CliError::Local(anyhow::anyhow!("{t}: {e}")))?;
        if x.hms_type() == skyport_model::HmsType::Node {
            out.insert(x.to_string());
            continue;
        }
        if all_nodes.is_none() {
            let v = c
                .get_json("/hsm/v2/State/Components", &[("type", "Node".into())])
                .await?;
            all_nodes = Some(
                v["Components"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["ID"].as_str().map(str::to_string))
                    .collect(),
            );
        }
        let prefix = x.to_string();
        let under: Vec<&String> = all_nodes
            .iter()
            .flatten()
            .filter(|n| {
                n.strip_prefix(prefix.as_str())
                    .is_some_and(|r| r.starts_with(|ch: char| ch.is_ascii_alphabetic()))
            })
            .collect();
        if under.is_empty() {
            return Err(CliError::Local(anyhow::anyhow!(
                "{prefix}: no nodes under it in the inventory"
            )));
        }
        out.extend(under.into_iter().cloned());
    }
    for g in groups {
        let v = c
            .get_json(&format!("/hsm/v2/groups/{}", segment(g)), &[])
            .await?;
        for m in v["members"]["ids"].as_array().into_iter().flatten() {
            if let Some(id) = m.as_str() {
                out.insert(id.to_string());
            }
        }
    }
    if out.is_empty() {
        return Err(CliError::Local(anyhow::anyhow!(
            "no targets: name xnames or --group"
        )));
    }
    Ok(out.into_iter().collect())
}

fn bar(len: u64) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} nodes {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// Polls job `id` until it has finished; a progress bar counts finished targets.
async fn wait(c: &Client, id: &str, total: usize) -> Result<Value, CliError> {
    let b = bar(total as u64);
    let path = format!("{JOBS}/{}", segment(id));
    let mut pause = Duration::from_millis(200);
    let started = Instant::now();
    loop {
        let v = c.get_json(&path, &[]).await?;
        let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
        let done = tasks
            .iter()
            .filter(|t| !matches!(t["state"].as_str(), Some("pending" | "running")))
            .count();
        let running = tasks.iter().filter(|t| t["state"] == "running").count();
        b.set_position(done as u64);
        b.set_message(format!("({running} running)"));
        if !matches!(v["state"].as_str(), Some("pending" | "running")) {
            b.finish_and_clear();
            return Ok(v);
        }
        tokio::time::sleep(pause).await;
        if started.elapsed() > Duration::from_secs(10) {
            pause = Duration::from_secs(1);
        }
    }
}

const TASK_COLUMNS: &[(&str, &str)] = &[
    ("XNAME", "xname"),
    ("SITE", "site"),
    ("STATE", "state"),
    ("POWER", "power"),
    ("RESULT", "result"),
];

/// Prints a finished job per target; fails (exit 5) when a target did not succeed.
fn report(g: &Global, job: &Value) -> CliResult {
    if g.output != Output::Table {
        print(g.output, job, &[])?;
    } else {
        let rows: Vec<Value> = job["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let err = t["error"].as_str().unwrap_or_default();
                let result = if err.is_empty() {
                    t["detail"].clone()
                } else {
                    json!(err)
                };
                json!({"xname": t["xname"], "site": t["site"], "state": t["state"],
                       "power": t["power"], "result": result})
            })
            .collect();
        print(Output::Table, &Value::Array(rows), TASK_COLUMNS)?;
    }
    let tasks = job["tasks"].as_array().map(Vec::len).unwrap_or(0);
    let ok = job["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "succeeded")
        .count();
    eprintln!(
        "job {}: {ok} of {tasks} succeeded ({})",
        job["id"].as_str().unwrap_or("?"),
        job["state"].as_str().unwrap_or("?")
    );
    if ok == tasks {
        Ok(())
    } else {
        Err(CliError::Partial(format!(
            "{} of {tasks} targets did not succeed",
            tasks - ok
        )))
    }
}

/// Creates a job for `action` on `xnames`; with `wait`, follows it to the end.
async fn run_job(
    g: &Global,
    c: &Client,
    action: Value,
    xnames: Vec<String>,
    settle: u64,
    wait_for_it: bool,
) -> CliResult {
    let n = xnames.len();
    let body = json!({"action": action, "xnames": xnames, "settle_s": settle});
    let job = c.send(Method::POST, JOBS, Some(&body)).await?;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    if !wait_for_it {
        if g.output == Output::Table {
            println!("job {id}: {n} target(s); follow it with: skyport job show {id}");
            return Ok(());
        }
        return print(g.output, &job, &[]);
    }
    let done = wait(c, &id, n).await?;
    report(g, &done)
}

pub async fn power(g: &Global, a: &PowerArgs) -> CliResult {
    let c = g.client()?;
    let xnames = nodes(&c, &a.targets, &a.group).await?;
    if a.verb == "status" {
        if a.force || a.soft || a.boot.is_some() {
            return Err(CliError::Local(anyhow::anyhow!(
                "power status takes no --force, --soft or --boot"
            )));
        }
        if a.refresh {
            return run_job(g, &c, json!({"kind": "status"}), xnames, 0, true).await;
        }
        let q: Vec<(&str, String)> = xnames.iter().map(|x| ("xname", x.clone())).collect();
        let v = c.get_json("/power/v1/status", &q).await?;
        let mut rows = Vec::new();
        for x in &xnames {
            let r = v["status"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["xname"] == x.as_str());
            rows.push(match r {
                Some(r) => r.clone(),
                None => json!({"xname": x, "power": "unknown",
                               "error": "never reported: skyport power status --refresh"}),
            });
        }
        return print(
            g.output,
            &Value::Array(rows),
            &[
                ("XNAME", "xname"),
                ("POWER", "power"),
                ("UPDATED", "updated"),
                ("ERROR", "error"),
            ],
        );
    }
    let operation = operation_for(&a.verb, a.force, a.soft).ok_or_else(|| {
        CliError::Local(anyhow::anyhow!(
            "power {}: use on, off [--force|--soft], reset [--soft], cycle or status",
            a.verb
        ))
    })?;
    let boot = match &a.boot {
        None => None,
        Some(b) => Some(BootTarget::parse(b).ok_or_else(|| {
            CliError::Local(anyhow::anyhow!("--boot {b}: use pxe, http or none"))
        })?),
    };
    let action = json!({"kind": "power", "operation": operation, "boot": boot});
    run_job(g, &c, action, xnames, a.settle, a.wait).await
}

/// `skyport boot override`.
pub async fn boot_override(
    g: &Global,
    targets: &[String],
    groups: &[String],
    to: &str,
    wait_for_it: bool,
) -> CliResult {
    let target = BootTarget::parse(to)
        .ok_or_else(|| CliError::Local(anyhow::anyhow!("--to {to}: use pxe, http or none")))?;
    let c = g.client()?;
    let xnames = nodes(&c, targets, groups).await?;
    run_job(
        g,
        &c,
        json!({"kind": "boot", "target": target}),
        xnames,
        0,
        wait_for_it,
    )
    .await
}

const JOB_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("ACTION", "action"),
    ("STATE", "state"),
    ("TARGETS", "targets"),
    ("CREATED", "created"),
    ("BY", "created_by"),
];

fn job_row(j: &Value) -> Value {
    let a = &j["action"];
    let action = match a["kind"].as_str() {
        Some("power") => match a["boot"].as_str() {
            Some(b) => format!(
                "power {} (boot {b})",
                a["operation"].as_str().unwrap_or("?")
            ),
            None => format!("power {}", a["operation"].as_str().unwrap_or("?")),
        },
        Some("boot") => format!("boot override {}", a["target"].as_str().unwrap_or("?")),
        Some(k) => k.to_string(),
        None => "?".into(),
    };
    json!({"id": j["id"], "action": action, "state": j["state"],
           "targets": j["tasks"].as_array().map(Vec::len).unwrap_or(0),
           "created": skyport_power::pcs::rfc3339(j["created"].as_i64().unwrap_or(0)),
           "created_by": j["created_by"]})
}

pub async fn job(g: &Global, cmd: &JobCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        JobCmd::List => {
            let v = c.get_json(JOBS, &[]).await?;
            if g.output != Output::Table {
                return print(g.output, &v["jobs"], &[]);
            }
            let rows: Vec<Value> = v["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(job_row)
                .collect();
            print(Output::Table, &Value::Array(rows), JOB_COLUMNS)
        }
        JobCmd::Show { id } => {
            let v = c.get_json(&format!("{JOBS}/{}", segment(id)), &[]).await?;
            if matches!(v["state"].as_str(), Some("pending" | "running")) {
                if g.output == Output::Table {
                    print(Output::Table, &job_row(&v), JOB_COLUMNS)?;
                    println!();
                }
                let rows: Vec<Value> = v["tasks"].as_array().cloned().unwrap_or_default();
                return print(g.output, &Value::Array(rows), TASK_COLUMNS);
            }
            report(g, &v)
        }
        JobCmd::Cancel { id } => {
            let v = c
                .send(Method::DELETE, &format!("{JOBS}/{}", segment(id)), None)
                .await?;
            print(g.output, &job_row(&v), JOB_COLUMNS)
        }
    }
}
