//! The inventory Lambda function's app, separate from `main` so tests can feed it real API
//! Gateway events.

use std::sync::Arc;

use skyport_inventory::Inventory;
use skyport_store::Store;

/// The service Lambda runs: the inventory Router and the edge sync routes (`/edge/v1`), finished
/// as every Skyport app is.
pub fn app(
    store: Arc<dyn Store>,
    creds: Arc<dyn skyport_sites::Credentials>,
    auth: skyport_auth::AuthLayer,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    skyport_http::app(skyport_auth::auth_layer(
        skyport_inventory::router(Inventory::new(store.clone()))
            .merge(skyport_sites::router(store.clone(), creds))
            .merge(skyport_power::router(
                skyport_power::Jobs::new(store.clone()),
                Inventory::new(store.clone()),
            ))
            .merge(skyport_boot::flight::router(store.clone()))
            .merge(skyport_sync::router(store)),
        &[
            skyport_inventory::access,
            skyport_sites::access,
            skyport_boot::flight::access,
            skyport_sync::access,
        ],
        auth,
    ))
}

/// Where site registration gets edge credentials: Cognito app clients of the stack's user pool
/// (`SKYPORT_USER_POOL_ID`, set by the template), or nowhere (local development through
/// `cargo lambda watch`: sites can be listed and assigned, but registering answers 503).
pub fn credentials_from_lookup(
    get: &dyn Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<Arc<dyn skyport_sites::Credentials>, skyport_lambda::ConfigError> {
    match get("SKYPORT_USER_POOL_ID").filter(|s| !s.trim().is_empty()) {
        Some(pool) => {
            let token_url = get("SKYPORT_TOKEN_URL").filter(|s| !s.trim().is_empty());
            let mut b = aws_sdk_cognitoidentityprovider::config::Builder::from(aws);
            if let Some(url) = get("SKYPORT_COGNITO_ENDPOINT_URL") {
                b = b.endpoint_url(url);
            }
            Ok(Arc::new(cognito::CognitoCredentials::new(
                aws_sdk_cognitoidentityprovider::Client::from_conf(b.build()),
                pool.trim().to_string(),
                token_url,
            )))
        }
        None => Ok(Arc::new(skyport_sites::NoCredentials(
            "no user pool is configured (SKYPORT_USER_POOL_ID) to create edge clients in",
        ))),
    }
}

pub mod cognito;
