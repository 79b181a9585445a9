//! `skyport serve`: the inventory API (and, as they land, the boot and metadata APIs) on the
//! embedded SQLite store, on one listener, until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use skyport_store::Store;
use skyport_store_sqlite::SqliteStore;
use tower_http::trace::TraceLayer;

use skyport_auth::AuthConfig;

use crate::config::ServeConfig;

pub async fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    // A second subscriber (tests embedding this) is not an error worth stopping for.
    if let Err(e) =
        skyport_http::init_tracing(cfg.log_format, "info", skyport_http::LogOutput::Stdout)
    {
        eprintln!("skyport: {e}");
    }
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data directory {}", cfg.data.display()))?;
    let db = cfg.data.join("skyport.db");
    // Every change an edge agent needs goes to the change log, per site and for agents
    // without one (see skyport-sync).
    // Every component change also stores its state change notifications (SMD's SCN), in
    // the same batch.
    let store: Arc<dyn Store> = skyport_inventory::scn::Notifying::wrap(
        skyport_sync::ChangeLog::local(Arc::new(SqliteStore::open(&db)?)),
    );
    // Data from before the placement index: index it once, so site snapshots read by range.
    if !skyport_sync::changes::index_complete(store.as_ref()).await? {
        let n = skyport_sync::changes::backfill(store.as_ref()).await?;
        tracing::info!(items = n, "placement index built");
    }
    let settings = skyport_ipxe::Settings {
        retry_delay: cfg.boot_retry_delay,
        chain_base: cfg.public_url.clone(),
        advertise: Some(cfg.cloud_init_url.clone()),
        ..skyport_ipxe::Settings::default()
    };
    let blobs = Arc::new(
        skyport_images::FsBlobs::open(&cfg.data, &cfg.public_url)
            .with_context(|| format!("opening image storage in {}", cfg.data.display()))?,
    );
    let sites = Arc::new(skyport_sites::StoreSites(store.clone()));
    let mut local_issuer = None;
    let (auth, jwks_doc) = match &cfg.auth {
        AuthConfig::Off => {
            tracing::warn!(
                "authentication is OFF: anyone who can reach this port can change everything"
            );
            (None, None)
        }
        AuthConfig::Local => {
            let issuer = skyport_auth::LocalIssuer::load_or_create(&cfg.data)?;
            let set = issuer.jwks().clone();
            let doc = serde_json::to_value(&set)?;
            let jwks = skyport_auth::Jwks::new(
                skyport_auth::KeySource::Static(set),
                skyport_auth::local::LOCAL_ISSUER,
                vec![skyport_auth::local::LOCAL_AUDIENCE.to_string()],
            )
            .with_sites(sites);
            local_issuer = Some(Arc::new(issuer));
            (Some(Arc::new(jwks)), Some(doc))
        }
        AuthConfig::Jwks(j) => (Some(Arc::new(j.verifier().with_sites(sites))), None),
    };
    // Site clients get tokens from this server's own endpoint (local issuer only).
    let token_url = local_issuer
        .as_ref()
        .map(|_| format!("{}/oauth2/token", cfg.public_url.trim_end_matches('/')));
    let creds: Arc<dyn skyport_sites::Credentials> = match token_url {
        Some(url) => Arc::new(skyport_sites::LocalCredentials::new(Some(url))),
        None => Arc::new(skyport_sites::NoCredentials(
            "this server issues no tokens (auth is off, or tokens come from an external \
             issuer): create the site's client there",
        )),
    };
    // Background work, supervised: cancelled after the listener has drained, then awaited, so
    // what it has queued (endpoint history) is written before the process exits.
    let mut background = tokio::task::JoinSet::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let history = skyport::history(store.clone(), &mut background, cancel.clone());
    // SCN subscribers hear of changes within a second, and again until they take them.
    let delivery = skyport_inventory::scn::Delivery::new(
        store.clone(),
        skyport_inventory::scn::DeliveryOptions::default(),
    )?;
    background.spawn(delivery.run(std::time::Duration::from_secs(1), cancel.clone()));
    let console = skyport::console(
        store.clone(),
        settings.clone(),
        blobs.clone(),
        &auth,
        cfg.console.clone(),
    );
    let mut routes = skyport::api(
        store.clone(),
        settings,
        blobs,
        cfg.cloud_init_url.clone(),
        creds,
        auth,
        Some(history.clone()),
    );
    routes = routes.merge(console);
    if let Some(issuer) = local_issuer {
        routes = routes.merge(skyport_sites::token::router(store, issuer));
    }
    if let Some(doc) = jwks_doc {
        // The local issuer's public keys, for edge agents and tools that verify its tokens.
        routes = routes.route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        );
    }
    let routes = routes.layer(TraceLayer::new_for_http());
    let app = skyport_http::app(routes);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %db.display(), "skyport serving");
    println!(
        "Skyport is up on http://{addr}: inventory {}, boot {}, cloud-init {}, images {} (store: {})",
        skyport_inventory::BASE,
        skyport_boot::routes::BASE,
        skyport_metadata::routes::BASE,
        skyport_images::routes::BASE,
        db.display()
    );
    // The server hands routes the peer address (ConnectInfo), which the metadata service uses
    // when no proxy set X-Forwarded-For; it caps connections and times out idle ones.
    let stop = tokio_util::sync::CancellationToken::new();
    let server = skyport_http::server::serve(
        listener,
        app,
        skyport_http::server::Limits::default(),
        stop.clone(),
    );
    tokio::pin!(server);
    let signal = shutdown();
    tokio::pin!(signal);
    let served = loop {
        tokio::select! {
            r = &mut server => break r.context("serving"),
            () = &mut signal, if !stop.is_cancelled() => stop.cancel(),
            Some(r) = background.join_next() => {
                // Background tasks end only when cancelled. One that ends early is a bug; the
                // server keeps serving (history is best effort, its loss is counted as drops).
                tracing::error!(outcome = ?r.err(), "a background task stopped while serving");
            }
        }
    };
    cancel.cancel();
    stop_background(background).await;
    let h = history.stats();
    tracing::info!(
        history_written = h.written,
        history_dropped = h.dropped,
        history_failed = h.failed,
        "skyport stopped"
    );
    served
}

/// Waits for the background tasks to finish their shutdown work; a task still busy after
/// [`BACKGROUND_GRACE`] (a store that does not answer) is abandoned with a warning.
async fn stop_background(mut tasks: tokio::task::JoinSet<()>) {
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "a background task failed");
            }
        }
    };
    if tokio::time::timeout(BACKGROUND_GRACE, drain).await.is_err() {
        tracing::warn!(
            "background tasks still busy after {BACKGROUND_GRACE:?}; stopping without them"
        );
    }
}

const BACKGROUND_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
                let _interrupted = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _interrupted = ctrl_c.await;
    }
}
