//! Lambda entry point of the boot API (`/boot/v1`). Configuration, SDK client, store and router
//! are built once per execution environment; each invocation only runs the router.

use std::sync::Arc;

use skyport_lambda::{CommonConfig, env, init};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = CommonConfig::from_lookup(&env)?;
    let settings = skyport_fn_boot::settings_from_lookup(&env)?;
    let ctx = init(&cfg, "boot").await?;
    let store: Arc<dyn skyport_store::Store> = ctx.store;
    // With an image bucket, boot parameters may name image:<id> and s3:// references.
    let images = match std::env::var("SKYPORT_IMAGE_BUCKET") {
        Ok(_) => {
            let (bucket, prefix) = skyport_fn_images::bucket_from_lookup(&env)?;
            Some(skyport_fn_images::service(
                store.clone(),
                skyport_fn_images::s3_client(&ctx.aws, &env),
                bucket,
                prefix,
            ))
        }
        Err(_) => None,
    };
    let auth = cfg.auth_layer(&store);
    let console = skyport_console::ConsoleSettings::from_lookup(&env).resolve()?;
    lambda_http::run(skyport_fn_boot::app(store, settings, images, auth, console)).await
}
