//! Serving a site's nodes, wired end to end: the replica and image cache on disk, the
//! node-facing listener, and the loops that keep them fresh (poll the cloud, pre-render boot
//! scripts and prefetch images after each snapshot, store batched endpoint history, report,
//! verify the cached images on a schedule), each a task of the agent's supervisor.
//! `skyport-edge daemon --listen` and `skyport up` both run this through `Agent::run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::cloud::CloudClient;
use crate::cloud::report;
use crate::cloud::sync::{Polled, Syncer};
use crate::metrics::Metrics;
use crate::node::cache::{CacheError, ImageCache};
use crate::node::dhcp::DhcpService;
use crate::node::dhcp::answer::Hosts;
use crate::node::recorder::{Names, Recorder};
use crate::node::replica::{Applied, Replica, ReplicaError};
use crate::node::serve::Site;
use crate::node::tftp::{Ended, TftpServer};
use crate::supervise::Supervisor;
use skyport_boot::flight::Stage;

#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub data: PathBuf,
    pub listen: std::net::SocketAddr,
    /// How nodes reach `listen` (chain and image URLs).
    pub node_url: String,
    pub sync_interval: Duration,
    pub cache_max_bytes: u64,
    /// Time between two scheduled verifications of every cached image
    /// ([`crate::node::cache::VERIFY_INTERVAL`] by default).
    pub cache_verify_interval: Duration,
    /// This site's name in reports.
    pub site: String,
    /// DHCP and TFTP on the provisioning network.
    pub dhcp: Option<crate::node::dhcp::DhcpConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Dhcp(#[from] crate::node::dhcp::DhcpError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// How often an agent tells the cloud how it is doing, even when it has nothing else to report.
const STATUS_EVERY: Duration = Duration::from_secs(60);

/// The node-facing service: opened (replica, cache, listener bound) before the agent's tasks
/// start, so a wrong address or an unreadable data directory stops the agent at start-up
/// instead of being retried forever.
pub struct NodeService {
    opts: SiteOptions,
    site: Site,
    replica: Arc<Replica>,
    cloud: Option<CloudClient>,
    metrics: Arc<Metrics>,
    /// Wakes the prefetch: a new snapshot, or the scheduled verification dropped a file.
    fetch: Arc<Notify>,
    /// The listener bound at start-up; a restarted serving task binds the address again.
    listener: Mutex<Option<tokio::net::TcpListener>>,
    local: SocketAddr,
    dhcp: Option<Arc<DhcpService>>,
    tftp: Option<Arc<TftpServer>>,
    recorder: Arc<Recorder>,
}

impl NodeService {
    pub async fn open(
        opts: SiteOptions,
        cloud: Option<CloudClient>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, SiteError> {
        std::fs::create_dir_all(&opts.data).map_err(|e| SiteError::Io {
            what: format!("creating data directory {}", opts.data.display()),
            source: e,
        })?;
        let replica = Arc::new(Replica::open(&opts.data)?);
        match replica.applied().await? {
            Some(a) => {
                metrics
                    .snapshot_applied_at
                    .store(a.applied_at, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(generation = %a.generation, records = a.records,
                    "serving the stored snapshot until the cloud answers");
            }
            None => tracing::warn!(
                "no snapshot stored yet: nodes get the retry script until the cloud answers"
            ),
        }
        let cache = ImageCache::open(
            &opts.data.join("images"),
            opts.cache_max_bytes,
            cloud.clone(),
            metrics.clone(),
        )
        .await?;
        let recorder = Recorder::new(replica.store(), metrics.clone());
        let site = Site::new(replica.clone(), cache, metrics.clone(), &opts.node_url, 30)
            .with_ipxe_dir(opts.dhcp.as_ref().map(|d| d.ipxe_dir.clone()))
            .with_recorder(recorder.clone());
        let listener = bind(opts.listen).await?;
        let local = listener.local_addr().map_err(|e| SiteError::Io {
            what: format!("binding {}", opts.listen),
            source: e,
        })?;
        tracing::info!(listen = %local, node_url = %opts.node_url, "serving nodes");
        let (dhcp, tftp) = match &opts.dhcp {
            None => (None, None),
            Some(cfg) => {
                let noted = site.clone();
                let unknown: crate::node::dhcp::OnUnknown = Arc::new(move |mac, ip| {
                    let site = noted.clone();
                    Box::pin(async move {
                        site.note_unknown(mac, ip).await;
                    })
                });
                let dhcp = DhcpService::open(
                    cfg,
                    &opts.node_url,
                    replica.store(),
                    metrics.clone(),
                    unknown,
                    recorder.clone(),
                )
                .await?;
                let addrs: Vec<std::net::Ipv4Addr> =
                    dhcp.addresses().into_iter().map(|(_, a)| a).collect();
                let tftp = TftpServer::open(
                    &addrs,
                    69,
                    cfg.ipxe_dir.clone(),
                    metrics.clone(),
                    tftp_events(recorder.clone()),
                )
                .await
                .map_err(|e| SiteError::Io {
                    what: "starting TFTP".into(),
                    source: e,
                })?;
                (Some(dhcp), Some(tftp))
            }
        };
        refresh_names(&replica, dhcp.as_deref(), &recorder).await;
        Ok(Arc::new(Self {
            dhcp,
            tftp,
            recorder,
            opts,
            site,
            replica,
            cloud,
            metrics,
            fetch: Arc::new(Notify::new()),
            listener: Mutex::new(Some(listener)),
            local,
        }))
    }

    /// What the agent serves from (the console reads it too).
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// This site's name.
    pub fn site_name(&self) -> &str {
        &self.opts.site
    }

    /// Where nodes are served (the bound address, also when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Starts the service's tasks; `applied` hears of every snapshot put in service.
    pub fn spawn(
        self: &Arc<Self>,
        sup: &mut Supervisor,
        applied: impl Fn(&Applied) + Clone + Send + Sync + 'static,
    ) {
        let me = self.clone();
        sup.spawn("serve-nodes", move |cancel| {
            let me = me.clone();
            async move { Ok(me.serve(cancel).await?) }
        });
        if let Some(dhcp) = self.dhcp.clone() {
            let d = dhcp.clone();
            sup.spawn("dhcp", move |cancel| {
                let d = d.clone();
                async move {
                    d.serve(cancel).await;
                    Ok(())
                }
            });
            sup.spawn("dhcp-leases", move |cancel| {
                let d = dhcp.clone();
                async move {
                    d.write_leases(cancel).await;
                    Ok(())
                }
            });
        }
        let recorder = self.recorder.clone();
        sup.spawn("boot-events", move |cancel| {
            let r = recorder.clone();
            async move {
                r.write(cancel).await;
                Ok(())
            }
        });
        if let Some(tftp) = self.tftp.clone() {
            sup.spawn("tftp", move |cancel| {
                let t = tftp.clone();
                async move {
                    t.serve(cancel).await;
                    Ok(())
                }
            });
        }
        let me = self.clone();
        sup.spawn("prefetch", move |cancel| {
            let me = me.clone();
            async move {
                me.prefetch(cancel).await;
                Ok(())
            }
        });
        let me = self.clone();
        sup.spawn("verify-cache", move |cancel| {
            let me = me.clone();
            async move {
                let verify = me
                    .site
                    .cache
                    .clone()
                    .verify_every(me.opts.cache_verify_interval, me.fetch.clone());
                tokio::select! {
                    _ = verify => {}
                    _ = cancel.cancelled() => {}
                }
                Ok(())
            }
        });
        if let Some(cloud) = self.cloud.clone() {
            let me = self.clone();
            sup.spawn("sync", move |cancel| {
                let (me, cloud, applied) = (me.clone(), cloud.clone(), applied.clone());
                async move {
                    me.sync(cloud, cancel, applied).await;
                    Ok(())
                }
            });
        } else {
            tracing::warn!("no cloud URL: serving the stored snapshot only");
        }
    }

    /// Serves nodes until cancelled; connections in flight get the HTTP server's grace period.
    async fn serve(&self, cancel: CancellationToken) -> Result<(), SiteError> {
        let taken = self.listener.lock().await.take();
        let listener = match taken {
            Some(l) => l,
            None => bind(self.local).await?,
        };
        let app = self
            .site
            .router()
            .layer(tower_http::trace::TraceLayer::new_for_http());
        // Node-facing: the LAN may hold idle, slow or hostile clients, so the listener caps
        // connections and times out idle ones (the peer address reaches routes as ConnectInfo).
        skyport_http::server::serve(
            listener,
            app,
            skyport_http::server::Limits::default(),
            cancel,
        )
        .await
        .map_err(|e| SiteError::Io {
            what: "serving nodes".into(),
            source: e,
        })
    }

    /// Pre-renders boot scripts and fetches referenced images, again after every snapshot and
    /// every minute.
    async fn prefetch(&self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            match self.site.rebuild_index().await {
                Ok(n) => tracing::info!(scripts = n, "boot scripts pre-rendered"),
                Err(e) => tracing::error!(error = %e, "pre-rendering boot scripts failed"),
            }
            refresh_names(&self.replica, self.dhcp.as_deref(), &self.recorder).await;
            match self.site.prefetch().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(missing = n, "referenced images not cached yet"),
                Err(e) => tracing::error!(error = %e, "prefetch failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = self.fetch.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }

    /// Polls the cloud every sync interval, stores endpoint history and reports; on
    /// cancellation stores what nodes fetched since the last round, so nothing is lost.
    async fn sync(
        &self,
        cloud: CloudClient,
        cancel: CancellationToken,
        applied: impl Fn(&Applied),
    ) {
        let syncer = Syncer::new(cloud.clone(), self.replica.clone(), self.metrics.clone());
        let mut failing = false;
        let mut last_status: Option<Instant> = None;
        while !cancel.is_cancelled() {
            match syncer.poll().await {
                Ok(Polled::Applied(a)) => {
                    tracing::info!(generation = %a.generation, records = a.records, "snapshot applied");
                    self.site.invalidate_index();
                    self.fetch.notify_one();
                    applied(&a);
                    failing = false;
                }
                Ok(Polled::Unchanged) => {
                    if failing {
                        tracing::info!("cloud reachable again; snapshot unchanged");
                    }
                    failing = false;
                }
                Err(e) => {
                    // Logged once per outage, not every interval.
                    if !failing {
                        tracing::error!(error = %e, "sync failed; serving the last good snapshot");
                    }
                    failing = true;
                }
            }
            if let Err(e) = self.site.flush_accesses().await {
                tracing::warn!(error = %e, "could not store endpoint history");
            }
            if !failing {
                let with_status = last_status.is_none_or(|t| t.elapsed() >= STATUS_EVERY);
                match report::report_once(
                    &cloud,
                    &self.replica,
                    &self.opts.site,
                    &self.metrics,
                    with_status,
                )
                .await
                {
                    Ok(s) if with_status || s != report::Sent::default() => {
                        if with_status {
                            last_status = Some(Instant::now());
                        }
                        if s != report::Sent::default() {
                            tracing::info!(
                                endpoint_history = s.endpoint_history,
                                unknown_macs = s.unknown_macs,
                                boot_events = s.boot_events,
                                "report sent"
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "report not sent; kept for the next try"),
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(self.opts.sync_interval) => {}
            }
        }
        if let Err(e) = self.site.flush_accesses().await {
            tracing::warn!(error = %e, "could not store endpoint history at shutdown");
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, SiteError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| SiteError::Io {
            what: format!("binding {addr}"),
            source: e,
        })
}

/// Puts the replica's interfaces and reserved addresses in the hands of the DHCP server and
/// of the flight recorder (which names nodes by them).
async fn refresh_names(replica: &Replica, dhcp: Option<&DhcpService>, recorder: &Recorder) {
    match skyport_inventory::reads::interface_addresses(replica.store().as_ref()).await {
        Ok(list) => {
            let mut names = Names::default();
            for i in &list {
                if !i.xname.is_empty() {
                    names.xnames.insert(i.mac, i.xname.clone());
                }
                for ip in &i.ipv4 {
                    names.reserved.insert(*ip, i.mac);
                }
            }
            recorder.set_names(names);
            if let Some(dhcp) = dhcp {
                let hosts = Hosts::build(list);
                tracing::info!(interfaces = hosts.len(), "DHCP hosts loaded");
                dhcp.engine().set_hosts(hosts);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "inventory names not loaded; keeping the previous ones")
        }
    }
}

/// TFTP transfers as boot events (a size probe the client ends at once is not a failure).
fn tftp_events(recorder: Arc<Recorder>) -> crate::node::tftp::OnTransfer {
    Arc::new(move |ip, file: &str, ended: &Ended| {
        let (detail, failed) = match ended {
            Ended::Done { bytes } => (format!("{file}: {bytes} bytes"), false),
            Ended::Aborted { bytes: 0, why } if why.starts_with("client error") => {
                (format!("{file}: size probe"), false)
            }
            Ended::Aborted { bytes, why } => {
                (format!("{file}: aborted after {bytes} bytes ({why})"), true)
            }
            Ended::Refused(why) => (format!("{file}: refused ({why})"), true),
        };
        recorder.event(Stage::Tftp, None, Some(ip), detail, failed);
    })
}
