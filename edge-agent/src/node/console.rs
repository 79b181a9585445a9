//! The operator console at the edge: the same pages as the cloud's (`skyport-console`), over
//! the agent's own copy, on their own listener (`console_listen`, e.g. the management network,
//! never the node-facing port). Anyone who reaches it reads; the configured admin token acts
//! (retrying queued discovery results). It shows the site's boots with the cloud gone, which
//! is when an admin needs it most.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use skyport_console::pages::OutboxRow;
use skyport_console::{Console, EdgeSide, EdgeSideError, Place, SignIn};
use tokio_util::sync::CancellationToken;

use crate::discovery::outbox::Outbox;
use crate::metrics::Metrics;
use crate::node::replica::Replica;
use crate::node::site::{NodeService, SiteError};

/// What the agent tells its console.
struct Side {
    site: String,
    replica: Arc<Replica>,
    metrics: Arc<Metrics>,
    outbox: Outbox,
    /// Silence from the cloud beyond which it is shown unreachable.
    silent_after: Duration,
}

#[async_trait::async_trait]
impl EdgeSide for Side {
    fn site(&self) -> String {
        self.site.clone()
    }

    async fn status(&self) -> skyport_sites::EdgeStatus {
        crate::cloud::report::status(&self.replica, &self.metrics).await
    }

    fn cloud_heard(&self) -> (Option<i64>, i64) {
        let last = self.metrics.last_sync_ok.load(Ordering::Relaxed);
        (
            (last > 0).then(|| skyport_model::now() - last),
            self.silent_after.as_secs() as i64,
        )
    }

    async fn outbox(&self) -> Result<Vec<OutboxRow>, EdgeSideError> {
        let all = self.outbox.all().await.map_err(|e| EdgeSideError {
            what: "reading the discovery outbox",
            reason: e.to_string(),
        })?;
        Ok(all
            .into_iter()
            .map(|q| OutboxRow {
                id: q.id().to_string(),
                attempts: q.entry.attempts,
                parked: q.entry.rejected,
                last_error: q.entry.last_error,
            })
            .collect())
    }

    async fn retry_outbox(&self) -> Result<usize, EdgeSideError> {
        self.outbox.retry_all().await.map_err(|e| EdgeSideError {
            what: "retrying the discovery outbox",
            reason: e.to_string(),
        })
    }
}

/// The console's listener, bound at start-up so a wrong address stops the agent at once.
pub struct ConsoleServer {
    app: axum::Router,
    addr: SocketAddr,
    listener: tokio::sync::Mutex<Option<tokio::net::TcpListener>>,
}

impl ConsoleServer {
    pub async fn open(
        node: &NodeService,
        listen: SocketAddr,
        admin_token: Option<String>,
        outbox: Outbox,
        sync_interval: Duration,
    ) -> Result<Arc<Self>, SiteError> {
        let site = node.site();
        let side = Side {
            site: node.site_name().to_string(),
            replica: site.replica.clone(),
            metrics: site.metrics.clone(),
            outbox,
            silent_after: (sync_interval * 3).max(Duration::from_secs(60)),
        };
        let console = Console::new(
            site.replica.store(),
            site.boot.clone(),
            Place::Edge(Arc::new(side)),
            SignIn::EdgeAdmin(admin_token),
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| SiteError::Io {
                what: format!("binding the console's {listen}"),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| SiteError::Io {
            what: format!("binding the console's {listen}"),
            source: e,
        })?;
        tracing::info!(listen = %addr, "serving the operator console");
        Ok(Arc::new(Self {
            app: console
                .router()
                .layer(tower_http::trace::TraceLayer::new_for_http()),
            addr,
            listener: tokio::sync::Mutex::new(Some(listener)),
        }))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `cancel` (a restarted task binds the address again).
    pub async fn serve(&self, cancel: CancellationToken) -> Result<(), SiteError> {
        let taken = self.listener.lock().await.take();
        let listener = match taken {
            Some(l) => l,
            None => tokio::net::TcpListener::bind(self.addr)
                .await
                .map_err(|e| SiteError::Io {
                    what: format!("binding the console's {}", self.addr),
                    source: e,
                })?,
        };
        skyport_http::server::serve(
            listener,
            skyport_http::app(self.app.clone()),
            skyport_http::server::Limits::default(),
            cancel,
        )
        .await
        .map_err(|e| SiteError::Io {
            what: "serving the console".into(),
            source: e,
        })
    }
}
