//! The inventory Lambda function's app, separate from `main` so tests can feed it real API
//! Gateway events.

use std::sync::Arc;

use skyport_inventory::Inventory;
use skyport_store::Store;

/// The service Lambda runs: the inventory Router and the edge sync routes (`/edge/v1`), finished
/// as every Skyport app is, and the scheduled SCN delivery ([`scheduled`]).
pub fn app(
    store: Arc<dyn Store>,
    creds: Arc<dyn skyport_sites::Credentials>,
    auth: skyport_auth::AuthLayer,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    let delivery = skyport_inventory::scn::Delivery::new(
        store.clone(),
        skyport_inventory::scn::DeliveryOptions::default(),
    );
    let routes = skyport_auth::auth_layer(
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
    );
    skyport_http::app(match delivery {
        Ok(d) => routes.merge(scheduled(d)),
        Err(e) => {
            tracing::error!(error = %e, "no SCN delivery in this execution environment");
            routes
        }
    })
}

/// Time one scheduled invocation spends delivering (the function's timeout is 29 s).
const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// The schedule's invocation (every minute, `template.yaml`): EventBridge invokes the function
/// directly, and `lambda_http` hands an event that is no HTTP request to the router as
/// `POST /events`, marked pass-through. No API route leads here, and a request that is not
/// such an event is a 404, so nothing from outside reaches it.
pub fn scheduled(delivery: skyport_inventory::scn::Delivery) -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new().route(
        "/events",
        axum::routing::post(move |req: axum::extract::Request| {
            let delivery = delivery.clone();
            async move {
                let direct = matches!(
                    req.extensions()
                        .get::<lambda_http::request::RequestContext>(),
                    Some(lambda_http::request::RequestContext::PassThrough)
                );
                if !direct {
                    return skyport_http::ApiError::not_found("no such route").into_response();
                }
                match delivery.drain(DELIVERY_BUDGET).await {
                    Ok(r) => {
                        tracing::info!(
                            delivered = r.delivered,
                            failed = r.failed,
                            unwanted = r.unwanted,
                            dropped = r.dropped,
                            pending = r.pending,
                            "SCN delivery"
                        );
                        axum::Json(serde_json::json!({
                            "delivered": r.delivered, "failed": r.failed,
                            "pending": r.pending, "dropped": r.dropped,
                        }))
                        .into_response()
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SCN delivery failed");
                        skyport_http::ApiError::Internal(e.to_string()).into_response()
                    }
                }
            }
        }),
    )
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
