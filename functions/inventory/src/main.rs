//! Lambda entry point of the inventory API. Everything is built once per execution environment
//! (config, SDK client, store, router); each invocation only runs the router.

use std::sync::Arc;

use skyport_fn_inventory::{Config, app};
use skyport_store_dynamo::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = Config::from_env()?;
    skyport_http::init_tracing(cfg.log_format)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), cfg.table.clone());
    if cfg.create_table {
        // Local development only (cargo lambda watch against DynamoDB Local); in AWS the SAM
        // template owns the table and the function has no CreateTable permission.
        store.ensure_table().await?;
    }
    tracing::info!(table = %cfg.table, "inventory function initialised");
    lambda_http::run(app(Arc::new(store))).await
}
