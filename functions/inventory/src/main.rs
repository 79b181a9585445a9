//! Lambda entry point of the inventory API. Everything is built once per execution environment
//! (config, SDK client, store, router); each invocation only runs the router.
//!
//! Configuration (environment): `SKYPORT_TABLE` (DynamoDB table, default `skyport`),
//! `SKYPORT_LOG_FORMAT` (`json` by default here), and the standard AWS SDK variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use std::sync::Arc;

use skyport_http::LogFormat;
use skyport_inventory::Inventory;
use skyport_store_dynamo::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let log_format = std::env::var("SKYPORT_LOG_FORMAT")
        .ok()
        .map(|v| v.parse::<LogFormat>())
        .transpose()?
        .unwrap_or(LogFormat::Json);
    skyport_http::init_tracing(log_format)?;
    let table = std::env::var("SKYPORT_TABLE").unwrap_or_else(|_| "skyport".to_string());
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table.clone());
    if std::env::var("SKYPORT_CREATE_TABLE").is_ok_and(|v| v == "1" || v == "true") {
        // Local development only (cargo lambda watch against DynamoDB Local); in AWS the SAM
        // template owns the table and the function has no CreateTable permission.
        store.ensure_table().await?;
    }
    tracing::info!(%table, "inventory function initialised");
    let app = skyport_http::with_trailing_slash_tolerance(skyport_inventory::router(
        Inventory::new(Arc::new(store)),
    ));
    lambda_http::run(app).await
}
