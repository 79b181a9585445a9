//! Lambda entry point of the image registry (`/images/v1`). Configuration, SDK clients, store
//! and router are built once per execution environment.

use skyport_lambda::{CommonConfig, env, init};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = CommonConfig::from_lookup(&env)?;
    let (bucket, prefix) = skyport_fn_images::bucket_from_lookup(&env)?;
    let ctx = init(&cfg, "images").await?;
    let s3 = skyport_fn_images::s3_client(&ctx.aws, &env);
    let auth = cfg.auth_layer(&ctx.store);
    let images = skyport_fn_images::service(ctx.store, s3, bucket, prefix);
    lambda_http::run(skyport_fn_images::app(images, auth)).await
}
