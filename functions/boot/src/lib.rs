//! The boot Lambda function's configuration and app, separate from `main` so tests can feed it
//! real API Gateway events.

use std::sync::Arc;

use skyport_boot::BootService;
use skyport_ipxe::{Settings, Slot, check_value};
use skyport_lambda::ConfigError;
use skyport_store::Store;

/// Boot-script settings from the environment:
/// `SKYPORT_PUBLIC_URL` (required: the base URL nodes chain back to),
/// `SKYPORT_CLOUD_INIT_URL` (default `<public>/cloud-init`),
/// `SKYPORT_BOOT_RETRY_DELAY` (seconds, default 30).
pub fn settings_from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let url = |name: &'static str, v: String| -> Result<String, ConfigError> {
        let v = v.trim().trim_end_matches('/').to_string();
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            return Err(ConfigError::invalid(
                name,
                v,
                "must start with http:// or https://",
            ));
        }
        if let Err(e) = check_value(Slot::Kernel, &v) {
            return Err(ConfigError::invalid(name, v, e));
        }
        Ok(v)
    };
    let public = url(
        "SKYPORT_PUBLIC_URL",
        get("SKYPORT_PUBLIC_URL").ok_or(ConfigError::Missing {
            var: "SKYPORT_PUBLIC_URL",
            why: "the URL nodes use to reach this API",
        })?,
    )?;
    let cloud_init = match get("SKYPORT_CLOUD_INIT_URL") {
        Some(v) => url("SKYPORT_CLOUD_INIT_URL", v)?,
        None => format!("{public}/cloud-init"),
    };
    let retry_delay = match get("SKYPORT_BOOT_RETRY_DELAY") {
        Some(v) => match v.parse::<u32>().ok().filter(|d| (1..=3600).contains(d)) {
            Some(d) => d,
            None => {
                return Err(ConfigError::invalid(
                    "SKYPORT_BOOT_RETRY_DELAY",
                    v,
                    "expected 1..3600 seconds",
                ));
            }
        },
        None => 30,
    };
    Ok(Settings {
        retry_delay,
        chain_base: public,
        advertise: Some(cloud_init),
        ..Settings::default()
    })
}

/// The service Lambda runs: the boot Router (resolving image references when `images` is
/// given), finished as every Skyport app is.
///
/// Endpoint history is written inline, before the boot script is answered (the service's
/// default, `skyport_boot::history::History::inline`), not by a background writer as in
/// `skyport serve`: Lambda freezes the execution environment once the response is sent, so
/// queued accesses would wait frozen and be lost with the environment, and nothing here needs
/// the queue, since the single `UpdateItem` of one history item waits for no other writer (the
/// stall behind bulk writes is the embedded store's single writer).
///
/// The operator console (`/console`) is served here too: its pages are rendered from the same
/// table on every request, so they need a function, not static files in S3, and this one
/// already renders the exact boot scripts the node page shows; a function of its own would be
/// one more artifact to build and one more cold start. `console` is its OAuth client (Cognito's
/// hosted UI); without one it takes pasted tokens.
pub fn app(
    store: Arc<dyn Store>,
    settings: Settings,
    images: Option<skyport_images::ImageService>,
    auth: skyport_auth::AuthLayer,
    console: Option<skyport_console::OAuthClient>,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    let mut svc = BootService::new(store.clone(), settings);
    if let Some(i) = images {
        svc = svc.with_images(i);
    }
    let console = skyport_console::Console::new(
        store,
        svc.clone(),
        skyport_console::Place::Cloud,
        skyport_console::sign_in(&auth, console),
    );
    skyport_http::app(
        skyport_auth::auth_layer(
            skyport_boot::router(svc),
            &[skyport_boot::access, skyport_console::access],
            auth,
        )
        .merge(console.router()),
    )
}
