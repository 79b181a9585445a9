//! The agent's facade: everything `skyport-edge` and `skyport up` do with a site, behind one
//! type. [`Agent::run`] is the daemon (discovery passes, the outbox push, serving nodes, sync,
//! each a supervised task, stopped in order by its `CancellationToken`); the other methods are
//! the one-shot work an admin does on site (one discovery pass, flushing or listing the outbox).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use skyport_redfish::{CrawlOptions, Credentials, Limits, PinStore, TlsPolicy};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cloud::push::{self, PushError, Pusher};
use crate::cloud::{CloudClient, CloudError, TokenSource};
use crate::config::EdgeConfig;
use crate::discovery::outbox::{Outbox, OutboxError, Queued};
use crate::discovery::secrets::{SecretStore, SecretsError};
use crate::discovery::sitemap::{SiteMap, SiteMapError};
use crate::discovery::targets::{self, TargetError};
use crate::discovery::{self, CredentialSource, DiscoverOptions, Found, Status};
use crate::hardware::directory::{BmcEntry, Directory};
use crate::hardware::exec::{Executor, Gate, Outcome, Rediscover, TlsSource};
use crate::hardware::jobs::{JobsLoop, Journal};
use crate::metrics::Metrics;
use crate::node::site::{NodeService, SiteError, SiteOptions};
use crate::supervise::{SHUTDOWN_GRACE, Supervisor};
use skyport_power::{Action, TaskState};

/// Results pushed at once.
const PUSH_PARALLEL: usize = 8;
/// Time between two outbox flushes in daemon mode.
const PUSH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "daemon mode needs something to do: targets to discover (`subnets`, SKYPORT_EDGE_SUBNETS) and/or an address to serve nodes on (`listen`, SKYPORT_EDGE_LISTEN)"
    )]
    NothingToDo,
    #[error("{0} needs a cloud to push to: pass --cloud-url or set SKYPORT_EDGE_CLOUD_URL")]
    NoCloud(&'static str),
    #[error("serving nodes needs node_url (SKYPORT_EDGE_NODE_URL)")]
    NoNodeUrl,
    #[error("a BMC user without a password: set SKYPORT_EDGE_BMC_PASSWORD")]
    UserWithoutPassword,
    #[error("a BMC password without a user: set --bmc-user")]
    PasswordWithoutUser,
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the agent store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Node(#[from] SiteError),
    #[error(transparent)]
    Targets(#[from] TargetError),
    #[error(transparent)]
    SiteMap(#[from] SiteMapError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Tls(#[from] skyport_redfish::tls::TlsError),
    /// A task's run ended for a reason of its own (the supervisor logs it and restarts it).
    #[error("{0}")]
    Stopped(String),
}

/// What a running agent has reached, for whoever started it (`skyport up` waits for the node
/// listener before printing its URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    /// Where nodes are served, once the listener is bound.
    pub node_addr: Option<SocketAddr>,
    /// Where the operator console is served, once its listener is bound.
    pub console_addr: Option<SocketAddr>,
    /// The generation of the last snapshot put in service by this run.
    pub generation: Option<String>,
}

/// One discovery pass's results, and how many were pushed while it ran.
#[derive(Debug)]
pub struct Discovery {
    pub found: Vec<Found>,
    pub pushed: usize,
}

/// What a flush achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flushed {
    pub pushed: usize,
    /// Results still queued (waiting, backing off or parked).
    pub queued: usize,
    pub last_error: Option<String>,
}

/// A queued result as `skyport-edge outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedResult {
    pub id: String,
    pub attempts: u32,
    /// Refused by the cloud and parked until `outbox retry`.
    pub parked: bool,
    pub last_error: Option<String>,
}

struct Inner {
    cfg: EdgeConfig,
    cloud: Option<CloudClient>,
    metrics: Arc<Metrics>,
    state: watch::Sender<AgentState>,
}

/// A site's agent over its resolved configuration. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct Agent(Arc<Inner>);

impl Agent {
    /// Checks what can be checked without I/O (the cloud URL and token settings).
    pub fn new(cfg: EdgeConfig) -> Result<Self, AgentError> {
        let cloud = match &cfg.cloud_url {
            None => None,
            Some(url) => {
                let token = match (&cfg.token, &cfg.client) {
                    (Some(t), _) => TokenSource::fixed(t.clone()),
                    (None, Some(c)) => TokenSource::client_credentials(c.clone()),
                    (None, None) => TokenSource::none(),
                };
                Some(crate::cloud::connect(url, token)?)
            }
        };
        Ok(Self(Arc::new(Inner {
            cfg,
            cloud,
            metrics: Arc::new(Metrics::default()),
            state: watch::Sender::new(AgentState::default()),
        })))
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.0.cfg
    }

    /// The cloud API root results are pushed to, if one is configured.
    pub fn cloud_url(&self) -> Option<&str> {
        self.0.cloud.as_ref().map(CloudClient::base)
    }

    /// Follows the agent's [`AgentState`] while it runs.
    pub fn watch(&self) -> watch::Receiver<AgentState> {
        self.0.state.subscribe()
    }

    /// The daemon: discovery every `interval` with a continuous push (with `subnets`), and
    /// serving the site's nodes from the synced copy (with `listen`), until `cancel`. Start-up
    /// problems (nothing to do, no cloud, an address in use, an unreadable data directory) are
    /// errors; afterwards a failing task is logged and restarted, and queued results stay on
    /// disk when it stops.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), AgentError> {
        let cfg = &self.0.cfg;
        if cfg.subnets.is_empty() && cfg.listen.is_none() {
            return Err(AgentError::NothingToDo);
        }
        if self.0.cloud.is_none() && !cfg.subnets.is_empty() {
            return Err(AgentError::NoCloud("discovery"));
        }
        let outbox = self.open_outbox()?;
        tracing::info!(
            cloud = self.cloud_url().unwrap_or("none"),
            interval_s = cfg.interval.as_secs(),
            listen = ?cfg.listen,
            site = %cfg.site,
            "edge agent started"
        );
        let mut sup = Supervisor::new(cancel.clone());
        if let Some(listen) = cfg.listen {
            let node_url = cfg.node_url.clone().ok_or(AgentError::NoNodeUrl)?;
            let opts = SiteOptions {
                data: cfg.data.clone(),
                listen,
                node_url,
                sync_interval: cfg.sync_interval,
                cache_max_bytes: cfg.cache_max_bytes,
                cache_verify_interval: cfg.cache_verify_interval,
                site: cfg.site.clone(),
                dhcp: cfg.dhcp.clone(),
            };
            let node =
                NodeService::open(opts, self.0.cloud.clone(), self.0.metrics.clone()).await?;
            let state = self.0.state.clone();
            node.spawn(&mut sup, move |a| {
                let generation = a.generation.clone();
                state.send_modify(|s| s.generation = Some(generation));
            });
            let addr = node.local_addr();
            self.0.state.send_modify(|s| s.node_addr = Some(addr));
            if let Some(at) = cfg.console_listen {
                let console = crate::node::console::ConsoleServer::open(
                    &node,
                    at,
                    cfg.console_admin_token.clone(),
                    outbox.clone(),
                    cfg.sync_interval,
                )
                .await?;
                let console_addr = console.local_addr();
                self.0
                    .state
                    .send_modify(|s| s.console_addr = Some(console_addr));
                sup.spawn("console", move |cancel| {
                    let c = console.clone();
                    async move { Ok(c.serve(cancel).await?) }
                });
            }
        }
        if let Some(cloud) = self.0.cloud.clone() {
            let (outbox, metrics) = (outbox.clone(), self.0.metrics.clone());
            sup.spawn("push", move |cancel| {
                let pusher = Pusher::from_cloud(cloud.clone());
                let (outbox, metrics) = (outbox.clone(), metrics.clone());
                async move {
                    push_loop(&outbox, &pusher, &metrics, cancel).await;
                    Ok(())
                }
            });
        }
        if let Some(cloud) = self.0.cloud.clone() {
            let lp = Arc::new(JobsLoop {
                cloud,
                journal: Journal::new(outbox.store().clone()),
                exec: self.executor(&outbox)?,
                poll: cfg.power.poll_interval,
                depth: self.0.metrics.jobs_pending.clone(),
            });
            sup.spawn("jobs", move |cancel| {
                let lp = lp.clone();
                async move {
                    lp.run(cancel)
                        .await
                        .map_err(|e| AgentError::Stopped(e.to_string()))
                }
            });
        }
        if !cfg.subnets.is_empty() {
            let me = self.clone();
            let outbox = outbox.clone();
            sup.spawn("discovery", move |cancel| {
                let (me, outbox) = (me.clone(), outbox.clone());
                async move {
                    while !cancel.is_cancelled() {
                        tokio::select! {
                            r = me.pass(&[], Some(outbox.clone()), &|_| {}) => match r {
                                Ok(found) => tracing::info!(summary = %summary(&found), "discovery run done"),
                                Err(e) => tracing::error!(error = %e, "discovery run failed"),
                            },
                            // A pass in flight is abandoned: what it queued so far stays queued.
                            _ = cancel.cancelled() => break,
                        }
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = tokio::time::sleep(me.0.cfg.interval) => {}
                        }
                    }
                    Ok(())
                }
            });
        }
        sup.wait(SHUTDOWN_GRACE).await;
        let queued = outbox.depth().await.unwrap_or(0);
        tracing::info!(queued, "edge agent stopped; queued results stay on disk");
        Ok(())
    }

    /// One discovery pass over the configured subnets and `hosts`; with `queue`, every result
    /// is queued in the outbox and pushed while the pass runs (`on_target` hears of each
    /// target as it is done).
    pub async fn discover(
        &self,
        hosts: &[String],
        queue: bool,
        on_target: &(dyn Fn(&Found) + Sync),
    ) -> Result<Discovery, AgentError> {
        if !queue {
            let found = self.pass(hosts, None, on_target).await?;
            return Ok(Discovery { found, pushed: 0 });
        }
        let pusher = self.pusher()?;
        let outbox = self.open_outbox()?;
        let (found, rep) = push::push_during(
            &outbox,
            &pusher,
            PUSH_PARALLEL,
            self.pass(hosts, Some(outbox.clone()), on_target),
        )
        .await?;
        Ok(Discovery {
            found: found?,
            pushed: rep.pushed,
        })
    }

    /// How many targets a pass over the configured subnets and `hosts` probes.
    pub fn target_count(&self, hosts: &[String]) -> Result<usize, AgentError> {
        let mut specs = self.0.cfg.subnets.clone();
        specs.extend(hosts.iter().cloned());
        Ok(targets::expand(&specs, &self.0.cfg.ports)?.len())
    }

    /// Pushes what is due, retrying until `timeout`; the rest stays queued.
    pub async fn flush(&self, timeout: Duration) -> Result<Flushed, AgentError> {
        let pusher = self.pusher()?;
        let outbox = self.open_outbox()?;
        let rep = push::drain(&outbox, &pusher, PUSH_PARALLEL, timeout).await?;
        Ok(Flushed {
            pushed: rep.pushed,
            queued: outbox.depth().await?,
            last_error: rep.last_error,
        })
    }

    /// Every queued result.
    pub async fn queued(&self) -> Result<Vec<QueuedResult>, AgentError> {
        Ok(self
            .open_outbox()?
            .all()
            .await?
            .into_iter()
            .map(|q: Queued| QueuedResult {
                id: q.id().to_string(),
                attempts: q.entry.attempts,
                parked: q.entry.rejected,
                last_error: q.entry.last_error,
            })
            .collect())
    }

    /// Makes parked and backing-off results due again; how many.
    pub async fn retry_queued(&self) -> Result<usize, AgentError> {
        Ok(self.open_outbox()?.retry_all().await?)
    }

    /// Runs `action` on `xnames` here and now, without the cloud, staggered as jobs are, on the
    /// nodes this agent's discovery found; `on_done` hears of each node as it ends. For an admin
    /// on site (`skyport-edge power`); the cloud's jobs are not involved and not told.
    pub async fn act(
        &self,
        action: Action,
        xnames: Vec<String>,
        settle: Duration,
        on_done: Arc<dyn Fn(&Outcome) + Send + Sync>,
    ) -> Result<Vec<Outcome>, AgentError> {
        let outbox = self.open_outbox()?;
        let exec = self.executor(&outbox)?;
        let gate = Arc::new(Collect {
            done: std::sync::Mutex::new(Vec::new()),
            on_done,
        });
        exec.staggered(
            action,
            xnames,
            settle,
            gate.clone(),
            &CancellationToken::new(),
        )
        .await;
        let mut out = std::mem::take(&mut *gate.done.lock().unwrap_or_else(|p| p.into_inner()));
        out.sort_by(|a, b| a.xname.cmp(&b.xname));
        Ok(out)
    }

    /// Every BMC this agent's discovery recorded for jobs, with its nodes.
    pub async fn bmcs(&self) -> Result<Vec<(String, String, Vec<String>)>, AgentError> {
        let outbox = self.open_outbox()?;
        let all = Directory::new(outbox.store().clone())
            .all()
            .await
            .map_err(|e| AgentError::Stopped(e.to_string()))?;
        Ok(all
            .into_iter()
            .map(|b| {
                (
                    b.xname,
                    b.url,
                    b.nodes.into_iter().map(|n| n.xname).collect(),
                )
            })
            .collect())
    }

    /// The executor of jobs, whose Discover tasks crawl with this agent's discovery and queue
    /// in `outbox`.
    fn executor(&self, outbox: &Outbox) -> Result<Executor, AgentError> {
        let store = outbox.store().clone();
        let (o, pins) = self.options()?;
        // With trust on first use, each task reads the pins discovery keeps, so a BMC found
        // after the agent started is held to the certificate discovery pinned.
        let tls = match pins {
            Some(_) => TlsSource::Pinned(self.0.cfg.data.join("bmc-pins.json")),
            None => TlsSource::Fixed(o.tls),
        };
        Ok(Executor::new(
            Directory::new(store),
            tls,
            o.credentials,
            o.auth,
            o.limits,
            self.0.cfg.power.clone(),
        )
        .with_rediscover(Arc::new(Recrawl {
            agent: self.clone(),
            outbox: outbox.clone(),
        })))
    }

    fn pusher(&self) -> Result<Pusher, AgentError> {
        match &self.0.cloud {
            Some(c) => Ok(Pusher::from_cloud(c.clone())),
            None => Err(AgentError::NoCloud("pushing results")),
        }
    }

    fn open_outbox(&self) -> Result<Outbox, AgentError> {
        let data = &self.0.cfg.data;
        std::fs::create_dir_all(data).map_err(|e| AgentError::Io {
            what: "creating data directory",
            path: data.display().to_string(),
            source: e,
        })?;
        let path = data.join("edge.sqlite");
        let store =
            skyport_store_sqlite::SqliteStore::open(&path).map_err(|e| AgentError::Store {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Outbox::new(Arc::new(store)))
    }

    async fn pass(
        &self,
        hosts: &[String],
        outbox: Option<Outbox>,
        on_target: &(dyn Fn(&Found) + Sync),
    ) -> Result<Vec<Found>, AgentError> {
        let cfg = &self.0.cfg;
        let mut specs = cfg.subnets.clone();
        specs.extend(hosts.iter().cloned());
        let targets = targets::expand(&specs, &cfg.ports)?;
        self.pass_over(targets, outbox, on_target).await
    }

    async fn pass_over(
        &self,
        targets: Vec<targets::Target>,
        outbox: Option<Outbox>,
        on_target: &(dyn Fn(&Found) + Sync),
    ) -> Result<Vec<Found>, AgentError> {
        let (opts, pins) = self.options()?;
        let found = discovery::run(targets, Arc::new(opts), outbox, on_target).await;
        if let Some(p) = pins {
            p.save()?;
        }
        Ok(found)
    }

    fn options(&self) -> Result<(DiscoverOptions, Option<Arc<PinStore>>), AgentError> {
        let cfg = &self.0.cfg;
        let mut pins = None;
        let tls = if cfg.insecure {
            tracing::warn!("BMC certificates are not verified (--insecure)");
            TlsPolicy::Insecure
        } else if let Some(ca) = &cfg.ca_bundle {
            TlsPolicy::ca_bundle(ca)?
        } else {
            std::fs::create_dir_all(&cfg.data).map_err(|e| AgentError::Io {
                what: "creating data directory",
                path: cfg.data.display().to_string(),
                source: e,
            })?;
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
            (Some(_), None) => return Err(AgentError::UserWithoutPassword),
            (None, Some(_)) => return Err(AgentError::PasswordWithoutUser),
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
}

/// The gate of a local run: every task runs; outcomes are collected and announced.
struct Collect {
    done: std::sync::Mutex<Vec<Outcome>>,
    on_done: Arc<dyn Fn(&Outcome) + Send + Sync>,
}

#[async_trait::async_trait]
impl Gate for Collect {
    async fn start(&self, _xname: &str) -> Option<Outcome> {
        None
    }
    async fn done(&self, o: Outcome) {
        (self.on_done)(&o);
        self.done.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    }
}

async fn push_loop(outbox: &Outbox, pusher: &Pusher, metrics: &Metrics, cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        match push::flush_once(outbox, pusher, PUSH_PARALLEL).await {
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
            metrics.outbox_depth.store(d as u64, Ordering::Relaxed);
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(PUSH_EVERY) => {}
        }
    }
}

/// `3 target(s): 1 discovered, 1 skipped, 0 failed, 1 without Redfish`.
pub fn summary(found: &[Found]) -> String {
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

/// Discover tasks: the BMC crawled again by the agent's own discovery (its limits, TLS policy,
/// credentials and site map), the result queued in the outbox like any pass's.
struct Recrawl {
    agent: Agent,
    outbox: Outbox,
}

#[async_trait::async_trait]
impl Rediscover for Recrawl {
    async fn crawl(&self, bmc: &BmcEntry) -> Outcome {
        let t = targets::Target {
            host: bmc.host.clone(),
            port: bmc.port,
        };
        match self
            .agent
            .pass_over(vec![t], Some(self.outbox.clone()), &|_| {})
            .await
        {
            Ok(found) => recrawl_outcome(&bmc.xname, found.first()),
            Err(e) => Outcome::failed(&bmc.xname, TaskState::Failed, e.to_string()),
        }
    }
}

/// What a Discover task ended as, from the one target its pass crawled.
fn recrawl_outcome(xname: &str, found: Option<&Found>) -> Outcome {
    let Some(f) = found else {
        return Outcome::failed(
            xname,
            TaskState::Failed,
            "the crawl reported nothing".into(),
        );
    };
    let r = &f.row;
    match r.status {
        Status::Discovered => {
            let mut detail = format!(
                "crawled: {} systems in {} requests, queued for the inventory",
                r.systems, r.requests
            );
            if let Some(now) = r.xname.as_deref().filter(|n| *n != xname) {
                detail.push_str(&format!("; the site map names it {now} now"));
            }
            Outcome::new(xname, TaskState::Succeeded, detail)
        }
        Status::Skipped | Status::Failed | Status::Absent => Outcome::failed(
            xname,
            TaskState::Failed,
            r.reason
                .clone()
                .unwrap_or_else(|| format!("{}: {:?}", r.target, r.status)),
        ),
    }
}
