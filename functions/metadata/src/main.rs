//! Lambda entry point of the cloud-init metadata API (`/cloud-init`). Configuration, SDK client,
//! store and router are built once per execution environment.

use skyport_lambda::{CommonConfig, env, init};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = CommonConfig::from_lookup(&env)?;
    let base = skyport_fn_metadata::base_url_from_lookup(&env)?;
    let store = init(&cfg, "metadata").await?.store;
    let auth = cfg.auth_layer(&store);
    lambda_http::run(skyport_fn_metadata::app(store, base, auth)).await
}
