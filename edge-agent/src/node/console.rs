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
use crate::node::serve::Site;
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

/// The console of site `name` over what `site` serves from.
pub(crate) fn console(
    site: &Site,
    name: &str,
    admin_token: Option<String>,
    outbox: Outbox,
    sync_interval: Duration,
) -> Console {
    let side = Side {
        site: name.to_string(),
        replica: site.replica.clone(),
        metrics: site.metrics.clone(),
        outbox,
        silent_after: (sync_interval * 3).max(Duration::from_secs(60)),
    };
    Console::new(
        site.replica.store(),
        site.boot.clone(),
        Place::Edge(Arc::new(side)),
        SignIn::EdgeAdmin(admin_token),
    )
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
        let console = console(
            node.site(),
            node.site_name(),
            admin_token,
            outbox,
            sync_interval,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const ADMIN: &str = "an-admin-token-of-this-site";

    async fn call(app: &axum::Router, req: Request<Body>) -> (u16, Option<String>, String) {
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let cookie = r
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, cookie, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
        let mut r = Request::get(uri).header(header::HOST, "10.0.0.5:8081");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        r.body(Body::empty()).unwrap()
    }

    fn post(uri: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
        let mut r = Request::post(uri)
            .header(header::HOST, "10.0.0.5:8081")
            .header(header::ORIGIN, "http://10.0.0.5:8081")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        r.body(Body::from(form.to_string())).unwrap()
    }

    /// Everyone who reaches the agent's console reads; its admin token, and only it, acts.
    #[tokio::test]
    async fn anyone_reads_the_sites_console_and_only_its_admin_token_acts() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let replica = Arc::new(Replica::open(dir.path()).unwrap());
        let cache = crate::node::cache::ImageCache::open(
            &dir.path().join("images"),
            1 << 30,
            None,
            metrics.clone(),
        )
        .await
        .unwrap();
        let site = Site::new(replica, cache, metrics, "http://10.0.0.5:8080", 30);
        let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("outbox.db")).unwrap();
        let outbox = Outbox::new(Arc::new(store));
        outbox
            .enqueue(skyport_redfish::payload::EndpointPayload {
                id: "x3000c0s1b0".into(),
                r#type: String::new(),
                name: String::new(),
                fqdn: "10.0.0.21".into(),
                user: "root".into(),
                mac_required: false,
                rediscover_on_update: false,
                mac_addr: None,
                schema_version: 1,
                systems: Vec::new(),
                managers: Vec::new(),
                services: Vec::new(),
            })
            .await
            .unwrap();
        let q = outbox.all().await.unwrap().remove(0);
        outbox
            .fail(&q, "HTTP 403: x3000c0s1b0 belongs to another site", true)
            .await
            .unwrap();
        let app = console(
            &site,
            "lab",
            Some(ADMIN.into()),
            outbox.clone(),
            Duration::from_secs(10),
        )
        .router();

        // Anonymous: the page, the parked result and why, no way to act.
        let (s, _, body) = call(&app, get("/console/discovery", None)).await;
        assert_eq!(s, 200, "{body}");
        assert!(
            body.contains("edge site lab") && body.contains("Read-only"),
            "{body}"
        );
        assert!(body.contains("parked (refused by the cloud)"), "{body}");
        assert!(body.contains("belongs to another site"), "{body}");
        assert!(!body.contains("Retry all now"), "{body}");
        let (s, _, _) = call(&app, post("/console/discovery/retry", None, "csrf=x")).await;
        assert_eq!(s, 403);

        // A wrong token is refused; the admin token signs in.
        let (s, cookie, _) = call(
            &app,
            post("/console/login", None, "token=not-the-admin-token"),
        )
        .await;
        assert_eq!(s, 303);
        assert!(cookie.is_none());
        let (s, cookie, _) = call(
            &app,
            post(
                "/console/login",
                None,
                &format!("token={ADMIN}&next=/console/discovery"),
            ),
        )
        .await;
        assert_eq!(s, 303);
        let cookie = cookie.unwrap();
        let (_, _, body) = call(&app, get("/console/discovery", Some(&cookie))).await;
        assert!(
            body.contains("Retry all now") && !body.contains("Read-only"),
            "{body}"
        );
        // The cookie is derived from the token, never the token itself.
        assert!(!cookie.contains(ADMIN), "{cookie}");
        let csrf =
            skyport_console::session::csrf_for(&skyport_console::session::edge_session(ADMIN));
        // The form token must match the session, and the form come from this console.
        let (s, _, _) = call(
            &app,
            post("/console/discovery/retry", Some(&cookie), "csrf=forged"),
        )
        .await;
        assert_eq!(s, 403);
        let mut foreign = post(
            "/console/discovery/retry",
            Some(&cookie),
            &format!("csrf={csrf}"),
        );
        foreign
            .headers_mut()
            .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        let (s, _, _) = call(&app, foreign).await;
        assert_eq!(s, 403);
        assert!(outbox.all().await.unwrap()[0].entry.rejected);
        let (s, _, _) = call(
            &app,
            post(
                "/console/discovery/retry",
                Some(&cookie),
                &format!("csrf={csrf}"),
            ),
        )
        .await;
        assert_eq!(s, 303);
        assert!(
            !outbox.all().await.unwrap()[0].entry.rejected,
            "retried: due again"
        );

        // Power is the cloud's: not offered, and refused if asked for.
        let (s, _, _) = call(
            &app,
            post(
                "/console/nodes/x3000c0s1b0n0/power",
                Some(&cookie),
                &format!("csrf={csrf}&op=on"),
            ),
        )
        .await;
        assert_eq!(s, 403);

        // What a browser sends is checked: a page, not a panic or an empty answer.
        for (uri, want, says) in [
            (
                "/console/nodes/not-a-node",
                400,
                "neither an xname nor a MAC",
            ),
            ("/console/boots?group=nope", 404, "no such group: nope"),
            (
                "/console/nodes/x3000c0s1b0n0/power?op=on",
                403,
                "through the cloud's console",
            ),
            ("/console/jobs/no-such-job", 404, "Not Found"),
        ] {
            let (s, _, body) = call(&app, get(uri, Some(&cookie))).await;
            assert_eq!(s, want, "{uri}: {body}");
            assert!(
                body.contains(says) && body.contains("<h1>"),
                "{uri}: {body}"
            );
        }

        // Without an admin token configured, nobody signs in.
        let ro = console(&site, "lab", None, outbox, Duration::from_secs(10)).router();
        let (s, _, body) = call(&ro, get("/console/login", None)).await;
        assert_eq!(s, 200);
        assert!(body.contains("no admin token configured"), "{body}");
        let (s, _, _) = call(&ro, post("/console/login", None, &format!("token={ADMIN}"))).await;
        assert_eq!(s, 303);
    }
}
