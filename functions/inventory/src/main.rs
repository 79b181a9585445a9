//! Lambda entry point of the inventory API (`/hsm/v2`). Configuration, SDK client, store and
//! router are built once per execution environment; each invocation only runs the router.

use skyport_lambda::{CommonConfig, env, init};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = CommonConfig::from_lookup(&env)?;
    let ctx = init(&cfg, "inventory").await?;
    let creds = skyport_fn_inventory::credentials_from_lookup(&env, &ctx.aws)?;
    let auth = cfg.auth_layer(&ctx.store);
    lambda_http::run(skyport_fn_inventory::app(ctx.store, creds, auth)).await
}
