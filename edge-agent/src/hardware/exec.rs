//! Running one action on many nodes through their BMCs, staggered: targets are grouped by
//! chassis (an xname's `x…c…` prefix; a target without one shares its cabinet's lane), each
//! chassis runs at most `per_chassis` tasks at once with task starts at least `delay` apart,
//! and all chassis proceed side by side within `concurrency` tasks for the site. So a rack's
//! BMCs, or its power supplies, never see a whole group at once, and a thousand-node reset
//! takes about `ceil(n_chassis_max / per_chassis)` rounds of one BMC operation each.
//!
//! A task resolves its node in the agent's directory, takes the credentials the agent holds
//! for exactly that BMC, and runs the Redfish operation (`skyport_redfish::power`). What
//! happens around each task (journaling it, checking it was not cancelled) is the caller's
//! [`Gate`]: the cloud's jobs and an admin's local command share this code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skyport_power::{Action, TaskState};
use skyport_redfish::power::{self, PowerError, PowerState, Timing};
use skyport_redfish::{AuthMode, BmcClient, Limits, PinStore, TlsPolicy, vendor};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::PowerSettings;
use crate::discovery::CredentialSource;
use crate::discovery::targets::Target;
use crate::hardware::directory::{BmcEntry, Directory};

/// What one task ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub xname: String,
    pub state: TaskState,
    pub detail: String,
    pub error: String,
    pub power: Option<PowerState>,
}

impl Outcome {
    pub fn new(xname: &str, state: TaskState, detail: impl Into<String>) -> Self {
        Self {
            xname: xname.to_string(),
            state,
            detail: detail.into(),
            error: String::new(),
            power: None,
        }
    }

    pub fn failed(xname: &str, state: TaskState, error: String) -> Self {
        Self {
            error,
            ..Self::new(xname, state, "")
        }
    }
}

/// What happens around each task.
#[async_trait::async_trait]
pub trait Gate: Send + Sync {
    /// Right before `xname` starts. `Some` does not run it and ends it with that outcome
    /// (cancelled, expired); `None` runs it.
    async fn start(&self, xname: &str) -> Option<Outcome>;
    /// When it ended.
    async fn done(&self, outcome: Outcome);
}

/// Where a task's TLS policy comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// A CA bundle, or no verification: the same for every task.
    Fixed(TlsPolicy),
    /// Trust on first use: the pins discovery keeps in this file, read for each task. A BMC
    /// with no pin yet is refused: only discovery pins a certificate, never an action.
    Pinned(std::path::PathBuf),
}

/// Crawls one BMC again for a Discover task: the agent's own discovery, with its limits, its
/// TLS policy and its outbox, so the result reaches the inventory as any pass's does.
#[async_trait::async_trait]
pub trait Rediscover: Send + Sync {
    async fn crawl(&self, bmc: &BmcEntry) -> Outcome;
}

struct Inner {
    rediscover: std::sync::OnceLock<Arc<dyn Rediscover>>,
    directory: Directory,
    tls: TlsSource,
    credentials: CredentialSource,
    auth: AuthMode,
    limits: Limits,
    settings: PowerSettings,
}

/// Runs actions on nodes this agent discovered. Cheap to clone.
#[derive(Clone)]
pub struct Executor(Arc<Inner>);

/// The lane a target runs in: its chassis, else its cabinet, else itself.
pub fn lane(xname: &str) -> &str {
    let b = xname.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    if b.first() != Some(&b'x') {
        return xname;
    }
    let cab = digits(1);
    if cab == 1 {
        return xname;
    }
    if b.get(cab) == Some(&b'c') {
        let ch = digits(cab + 1);
        if ch > cab + 1 {
            return &xname[..ch];
        }
    }
    &xname[..cab]
}

impl Executor {
    pub fn new(
        directory: Directory,
        tls: TlsSource,
        credentials: CredentialSource,
        auth: AuthMode,
        limits: Limits,
        settings: PowerSettings,
    ) -> Self {
        Self(Arc::new(Inner {
            rediscover: std::sync::OnceLock::new(),
            directory,
            tls,
            credentials,
            auth,
            limits,
            settings,
        }))
    }

    /// Runs Discover tasks with `r` from now on. Without it a Discover task ends unsupported,
    /// saying this agent does not discover.
    pub fn with_rediscover(self, r: Arc<dyn Rediscover>) -> Self {
        if self.0.rediscover.set(r).is_err() {
            tracing::debug!("rediscover already set; the first one stays");
        }
        self
    }

    /// A Discover task: the BMC `xname` as this agent last reached it, crawled again.
    async fn discover(&self, xname: &str) -> Outcome {
        let Some(r) = self.0.rediscover.get() else {
            return Outcome::failed(
                xname,
                TaskState::Unsupported,
                "this agent does not run discovery".into(),
            );
        };
        match self.0.directory.bmc(xname).await {
            Err(e) => Outcome::failed(xname, TaskState::Failed, e.to_string()),
            Ok(None) => Outcome::failed(
                xname,
                TaskState::Failed,
                "no BMC known by this xname: this site's agent has not discovered it (its \
                 discovery passes find BMCs; a Discover only crawls a known one again)"
                    .into(),
            ),
            Ok(Some(bmc)) => r.crawl(&bmc).await,
        }
    }

    /// Runs `action` on one node, waiting up to `settle` for the state it asks for.
    pub async fn one(&self, action: Action, xname: &str, settle: Duration) -> Outcome {
        match action {
            Action::Discover => return self.discover(xname).await,
            Action::Unknown => {
                return Outcome::failed(
                    xname,
                    TaskState::Unsupported,
                    "this agent does not know this job's action: upgrade it".into(),
                );
            }
            _ => {}
        }
        self.on_node(action, xname, settle).await
    }

    async fn on_node(&self, action: Action, xname: &str, settle: Duration) -> Outcome {
        let found = match self.0.directory.node(xname).await {
            Ok(f) => f,
            Err(e) => return Outcome::failed(xname, TaskState::Failed, e.to_string()),
        };
        let Some((bmc, sys)) = found else {
            return Outcome::failed(
                xname,
                TaskState::Failed,
                "no BMC known for this node: this site's agent has not discovered it".into(),
            );
        };
        let creds = self.0.credentials.for_target(&Target {
            host: bmc.host.clone(),
            port: bmc.port,
        });
        let tls = match &self.0.tls {
            TlsSource::Fixed(t) => t.clone(),
            TlsSource::Pinned(path) => {
                let pins = match PinStore::load(path) {
                    Ok(p) => p,
                    Err(e) => return Outcome::failed(xname, TaskState::Failed, e.to_string()),
                };
                let key = skyport_redfish::client::bmc_key(&bmc.url).unwrap_or_default();
                if bmc.url.starts_with("https:") && pins.get(&key).is_none() {
                    return Outcome::failed(
                        xname,
                        TaskState::Failed,
                        format!(
                            "no certificate pinned for the BMC at {key}: discovery pins it first"
                        ),
                    );
                }
                TlsPolicy::Tofu(Arc::new(pins))
            }
        };
        let client = match BmcClient::new(&bmc.url, &tls, creds, self.0.auth, self.0.limits.clone())
        {
            Ok(c) => c,
            Err(e) => return Outcome::failed(xname, TaskState::Failed, e.to_string()),
        };
        if let Err(e) = client.login(None).await {
            return Outcome::failed(xname, TaskState::Failed, e.to_string());
        }
        let v = vendor::by_name(&bmc.vendor);
        let timing = Timing {
            graceful: self.0.settings.graceful_timeout,
            settle,
            ..Timing::default()
        };
        let r = match action {
            Action::Status => power::status(&client, &sys.path).await.map(|s| {
                let boot = match (s.boot.target, s.boot.enabled) {
                    (Some(t), Some(e)) if e != "Disabled" => format!("; next boot {t} ({e})"),
                    _ => String::new(),
                };
                (format!("{}{boot}", s.state), Some(s.state))
            }),
            Action::Boot { target } => power::set_boot(&client, &sys, v, target).await.map(|b| {
                (
                    format!(
                        "next boot {} ({})",
                        b.target.unwrap_or_default(),
                        b.enabled.unwrap_or_default()
                    ),
                    None,
                )
            }),
            // `one` answers these before a node is looked up.
            Action::Discover | Action::Unknown => Err(PowerError::Unsupported {
                system: sys.path.clone(),
                what: "discovery",
                allowed: "none: a Discover targets a BMC".into(),
            }),
            Action::Power { operation, boot } => {
                let set = match boot {
                    Some(b) => power::set_boot(&client, &sys, v, b).await.map(Some),
                    None => Ok(None),
                };
                match set {
                    Err(e) => Err(e),
                    Ok(b) => power::run(&client, &sys, v, operation, &timing)
                        .await
                        .map(|o| {
                            let calls: Vec<&str> = o.calls.iter().map(|c| c.as_str()).collect();
                            let mut detail = if calls.is_empty() {
                                format!("already {}", o.state)
                            } else {
                                format!("{} → {}", calls.join(", "), o.state)
                            };
                            if let Some(b) = b {
                                detail.push_str(&format!(
                                    "; next boot {}",
                                    b.target.unwrap_or_default()
                                ));
                            }
                            (detail, Some(o.state))
                        }),
                }
            }
        };
        if let Err(e) = client.logout().await {
            tracing::debug!(bmc = %bmc.url, xname, error = %e, "BMC session not closed");
        }
        match r {
            Ok((detail, power)) => Outcome {
                power,
                ..Outcome::new(xname, TaskState::Succeeded, detail)
            },
            Err(e @ (PowerError::Unsupported { .. } | PowerError::BootUnsupported { .. })) => {
                Outcome::failed(xname, TaskState::Unsupported, e.to_string())
            }
            Err(e) => {
                tracing::warn!(bmc = %bmc.url, xname, error = %e, "power task failed");
                Outcome::failed(xname, TaskState::Failed, e.to_string())
            }
        }
    }

    /// Runs `action` on every target, staggered (see the module docs); `gate` hears of each
    /// start and end. Returns when every target ended, or when `cancel` fires (tasks in flight
    /// are then dropped: their gate saw them start and never end).
    pub async fn staggered(
        &self,
        action: Action,
        xnames: Vec<String>,
        settle: Duration,
        gate: Arc<dyn Gate>,
        cancel: &CancellationToken,
    ) {
        let mut lanes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for x in xnames {
            lanes.entry(lane(&x).to_string()).or_default().push(x);
        }
        let site = Arc::new(Semaphore::new(self.0.settings.concurrency.max(1)));
        let mut set = JoinSet::new();
        for (_, xs) in lanes {
            let (me, gate, site) = (self.clone(), gate.clone(), site.clone());
            set.spawn(async move { me.lane(action, xs, settle, gate, site).await });
        }
        let all = async { while set.join_next().await.is_some() {} };
        tokio::select! {
            _ = all => {}
            _ = cancel.cancelled() => set.abort_all(),
        }
    }

    async fn lane(
        &self,
        action: Action,
        xs: Vec<String>,
        settle: Duration,
        gate: Arc<dyn Gate>,
        site: Arc<Semaphore>,
    ) {
        let s = &self.0.settings;
        let chassis = Arc::new(Semaphore::new(s.per_chassis.max(1)));
        let mut tasks = JoinSet::new();
        let mut last: Option<Instant> = None;
        for x in xs {
            let (Ok(c), Ok(p)) = (
                chassis.clone().acquire_owned().await,
                site.clone().acquire_owned().await,
            ) else {
                return;
            };
            if let Some(l) = last {
                tokio::time::sleep_until(l + s.delay).await;
            }
            if let Some(o) = gate.start(&x).await {
                gate.done(o).await;
                continue;
            }
            last = Some(Instant::now());
            let (me, gate) = (self.clone(), gate.clone());
            tasks.spawn(async move {
                let o = me.one(action, &x, settle).await;
                gate.done(o).await;
                drop((c, p));
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::lane;

    #[test]
    fn lanes_are_chassis_then_cabinets() {
        assert_eq!(lane("x1000c3s7b0n1"), "x1000c3");
        assert_eq!(lane("x3000c0s1b0n0"), "x3000c0");
        assert_eq!(lane("x1000"), "x1000");
        assert_eq!(lane("x9c"), "x9");
        assert_eq!(lane("d0"), "d0");
        assert_eq!(lane("x"), "x");
    }
}
