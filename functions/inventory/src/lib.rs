//! The inventory Lambda function's app, separate from `main` so tests can feed it real API
//! Gateway events.

use std::sync::Arc;

use skyport_inventory::Inventory;
use skyport_store::Store;

/// The service Lambda runs: the inventory Router and the edge sync routes (`/edge/v1`), finished
/// as every Skyport app is.
pub fn app(
    store: Arc<dyn Store>,
    auth: skyport_auth::AuthLayer,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    skyport_http::app(skyport_auth::auth_layer(
        skyport_inventory::router(Inventory::new(store.clone())).merge(skyport_sync::router(store)),
        auth,
    ))
}
