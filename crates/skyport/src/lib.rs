//! The wiring of the local all-in-one server, as a library so the tests build exactly what
//! `skyport serve` mounts: the four API routers and edge sync over one store, behind the auth
//! policy.

use std::sync::Arc;

use axum::Router;
use skyport_inventory::Inventory;
use skyport_store::Store;

/// Every API router over `store`, with the auth policy on every route (`auth = None` is off).
/// `store` should be wrapped in [`skyport_sync::Generational`] so edge agents see changes.
pub fn api(
    store: Arc<dyn Store>,
    settings: skyport_ipxe::Settings,
    blobs: Arc<skyport_images::FsBlobs>,
    cloud_init_url: String,
    creds: Arc<dyn skyport_sync::Credentials>,
    auth: skyport_auth::AuthLayer,
) -> Router {
    let images = skyport_images::ImageService::new(store.clone(), blobs.clone());
    let routes = skyport_inventory::router(Inventory::new(store.clone()))
        .merge(skyport_boot::router(
            skyport_boot::BootService::new(store.clone(), settings).with_images(images.clone()),
        ))
        .merge(skyport_images::router(images, Some(blobs)))
        .merge(skyport_metadata::router(
            skyport_metadata::MetadataService::new(store.clone(), cloud_init_url),
        ))
        .merge(skyport_sync::router(store, creds));
    skyport_auth::auth_layer(routes, auth)
}
