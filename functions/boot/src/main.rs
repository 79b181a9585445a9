//! Lambda entry point of the boot API (`/boot/v1`). Configuration, SDK client, store and router
//! are built once per execution environment; each invocation only runs the router.

use std::sync::Arc;

use skyport_lambda::{CommonConfig, env, init};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = CommonConfig::from_lookup(&env)?;
    let settings = skyport_fn_boot::settings_from_lookup(&env)?;
    let store = init(&cfg, "boot").await?;
    lambda_http::run(skyport_fn_boot::app(Arc::new(store), settings)).await
}
