//! The wiring of the local all-in-one server, as a library so the tests build exactly what
//! `skyport serve` mounts: the API routers (inventory, boot, images, cloud-init, power and jobs)
//! and edge sync over one store, behind the auth
//! policy, and the server's background work (the endpoint-history writer).

use std::sync::Arc;

use axum::Router;
use skyport_boot::history::{History, HistoryConfig};
use skyport_inventory::Inventory;
use skyport_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The access declarations of every service [`api`] mounts.
pub const SERVICES: &[skyport_http::access::Declared] = &[
    skyport_inventory::access,
    skyport_boot::access,
    skyport_boot::flight::access,
    skyport_images::access,
    skyport_metadata::access,
    skyport_metadata::bss::access,
    skyport_sites::access,
    skyport_sync::access,
    skyport_power::access,
];

/// Every API router over `store`, with the auth policy on every route (`auth = None` is off).
/// `store` should be a [`skyport_sync::ChangeLog::local`] store so edge agents, with a site or
/// for the whole installation, see changes, under a [`skyport_inventory::scn::Notifying`] one
/// so component changes are notified to SCN subscribers.
/// The boot and cloud-init services record nodes' fetches through `history`; `None` writes
/// that endpoint history inline, before each answer (`skyport serve` passes [`history`], a
/// background writer).
pub fn api(
    store: Arc<dyn Store>,
    settings: skyport_ipxe::Settings,
    blobs: Arc<skyport_images::FsBlobs>,
    cloud_init_url: String,
    creds: Arc<dyn skyport_sites::Credentials>,
    auth: skyport_auth::AuthLayer,
    history: Option<History>,
) -> Router {
    let history = history.unwrap_or_else(|| History::inline(store.clone()));
    let images = skyport_images::ImageService::new(store.clone(), blobs.clone());
    let routes = skyport_inventory::router(Inventory::new(store.clone()))
        .merge(skyport_boot::router(
            skyport_boot::BootService::new(store.clone(), settings)
                .with_images(images.clone())
                .with_history(history.clone()),
        ))
        .merge(skyport_images::router(images, Some(blobs)))
        .merge({
            let svc = skyport_metadata::MetadataService::new(store.clone(), cloud_init_url)
                .with_history(history);
            skyport_metadata::router(svc.clone()).merge(skyport_metadata::bss::router(svc))
        })
        .merge(skyport_sites::router(store.clone(), creds))
        .merge(skyport_power::router(
            skyport_power::Jobs::new(store.clone()),
            Inventory::new(store.clone()),
        ))
        .merge(skyport_boot::flight::router(store.clone()))
        .merge(skyport_sync::router_with(
            store,
            skyport_sync::Limits {
                whole_installation: true,
                ..skyport_sync::Limits::default()
            },
        ));
    skyport_auth::auth_layer(routes, SERVICES, auth)
}

/// The operator console over `store` (mount it beside [`api`]: its pages check their own
/// session, signed in as `auth` verifies API tokens, through `oauth` when given).
pub fn console(
    store: Arc<dyn Store>,
    settings: skyport_ipxe::Settings,
    blobs: Arc<skyport_images::FsBlobs>,
    auth: &skyport_auth::AuthLayer,
    oauth: Option<skyport_console::OAuthClient>,
) -> Router {
    let images = skyport_images::ImageService::new(store.clone(), blobs);
    let boot = skyport_boot::BootService::new(store.clone(), settings).with_images(images);
    skyport_console::Console::new(
        store,
        boot,
        skyport_console::Place::Local,
        skyport_console::sign_in(auth, oauth),
    )
    .router()
}

/// The local server's endpoint history: queued, and written by a task in `tasks` that writes
/// what is still queued once `cancel` is cancelled. Booting nodes then never wait for the
/// embedded store's single writer (a bulk POST can hold it for seconds).
pub fn history(
    store: Arc<dyn Store>,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> History {
    History::spawn(store, HistoryConfig::default(), tasks, cancel)
}
