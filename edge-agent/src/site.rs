//! Serving a site's nodes, wired end to end: the replica and image cache on disk, the
//! node-facing listener, and the loops that keep them fresh (poll the cloud, pre-render boot
//! scripts and prefetch images after each snapshot, store batched endpoint history, report,
//! verify the cached images on a schedule).
//! `skyport-edge daemon --listen` and `skyport up` both run this.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheError, ImageCache};
use crate::cloud::CloudClient;
use crate::metrics::Metrics;
use crate::replica::{Replica, ReplicaError};
use crate::report;
use crate::serve::Site;
use crate::sync::{Polled, Syncer};

#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub data: PathBuf,
    pub listen: std::net::SocketAddr,
    /// How nodes reach `listen` (chain and image URLs).
    pub node_url: String,
    pub sync_interval: Duration,
    pub cache_max_bytes: u64,
    /// Time between two scheduled verifications of every cached image
    /// ([`crate::cache::VERIFY_INTERVAL`] by default).
    pub cache_verify_interval: Duration,
    /// This site's name in reports.
    pub site: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// How often an agent tells the cloud how it is doing, even when it has nothing else to report.
const STATUS_EVERY: Duration = Duration::from_secs(60);

/// Serves the site's nodes from the replica and the image cache, keeping both fresh from the
/// cloud when it is reachable.
pub async fn serve(
    opts: SiteOptions,
    cloud: Option<CloudClient>,
    metrics: Arc<Metrics>,
    bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), SiteError> {
    let cfg = &opts;
    let node_url = opts.node_url.clone();
    std::fs::create_dir_all(&cfg.data).map_err(|e| SiteError::Io {
        what: format!("creating data directory {}", cfg.data.display()),
        source: e,
    })?;
    let replica = Arc::new(Replica::open(&cfg.data)?);
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
        &cfg.data.join("images"),
        cfg.cache_max_bytes,
        cloud.clone(),
        metrics.clone(),
    )
    .await?;
    let site = Site::new(replica.clone(), cache, metrics.clone(), &node_url, 30);
    let listen = opts.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| SiteError::Io {
            what: format!("binding {listen}"),
            source: e,
        })?;
    let local = listener.local_addr().map_err(|e| SiteError::Io {
        what: format!("binding {listen}"),
        source: e,
    })?;
    tracing::info!(listen = %local, node_url = %node_url, "serving nodes");
    if let Some(tx) = bound {
        // The caller may have gone; serving goes on regardless.
        let _ = tx.send(local);
    }
    let app = site
        .router()
        .layer(tower_http::trace::TraceLayer::new_for_http());
    // Node-facing: the LAN may hold idle, slow or hostile clients, so the listener caps
    // connections and times out idle ones (the peer address reaches routes as ConnectInfo).
    // Never cancelled here: serving ends when this future is dropped with the agent.
    let server = skyport_http::server::serve(
        listener,
        app,
        skyport_http::server::Limits::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let fetch = Arc::new(tokio::sync::Notify::new());
    // A file the scheduled verification drops is fetched again by the prefetch right away.
    let verify_loop = site
        .cache
        .clone()
        .verify_every(cfg.cache_verify_interval, fetch.clone());
    let prefetch_loop = {
        let site = site.clone();
        let fetch = fetch.clone();
        async move {
            loop {
                match site.rebuild_index().await {
                    Ok(n) => tracing::info!(scripts = n, "boot scripts pre-rendered"),
                    Err(e) => tracing::error!(error = %e, "pre-rendering boot scripts failed"),
                }
                match site.prefetch().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(missing = n, "referenced images not cached yet"),
                    Err(e) => tracing::error!(error = %e, "prefetch failed"),
                }
                let _ = tokio::time::timeout(Duration::from_secs(60), fetch.notified()).await;
            }
        }
    };
    let sync_loop = async {
        let Some(cloud) = cloud.clone() else {
            tracing::warn!("no cloud URL: serving the stored snapshot only");
            return std::future::pending::<()>().await;
        };
        let syncer = Syncer::new(cloud.clone(), replica.clone(), metrics.clone());
        let mut failing = false;
        let mut last_status: Option<std::time::Instant> = None;
        loop {
            match syncer.poll().await {
                Ok(Polled::Applied(a)) => {
                    tracing::info!(generation = %a.generation, records = a.records, "snapshot applied");
                    site.invalidate_index();
                    fetch.notify_one();
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
            if let Err(e) = site.flush_accesses().await {
                tracing::warn!(error = %e, "could not store endpoint history");
            }
            if !failing {
                let with_status =
                    last_status.is_none_or(|t: std::time::Instant| t.elapsed() >= STATUS_EVERY);
                match report::report_once(&cloud, &replica, &cfg.site, &metrics, with_status).await
                {
                    Ok(s) if with_status || s != report::Sent::default() => {
                        if with_status {
                            last_status = Some(std::time::Instant::now());
                        }
                        if s != report::Sent::default() {
                            tracing::info!(
                                endpoint_history = s.endpoint_history,
                                unknown_macs = s.unknown_macs,
                                "report sent"
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "report not sent; kept for the next try"),
                }
            }
            tokio::time::sleep(cfg.sync_interval).await;
        }
    };
    tokio::select! {
        r = server => r.map_err(|e| SiteError::Io { what: "serving nodes".into(), source: e })?,
        _ = prefetch_loop => {}
        _ = verify_loop => {}
        _ = sync_loop => {}
    }
    Ok(())
}
