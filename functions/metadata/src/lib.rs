//! The metadata Lambda function's configuration and app, separate from `main` so tests can feed
//! it real API Gateway events. API Gateway sets `X-Forwarded-For`, which identifies the node.

use std::sync::Arc;

use skyport_lambda::ConfigError;
use skyport_metadata::MetadataService;
use skyport_store::Store;

/// `SKYPORT_CLOUD_INIT_URL`: the base URL written into vendor-data and meta-data when cluster
/// defaults name none (required).
pub fn base_url_from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let v = get("SKYPORT_CLOUD_INIT_URL").ok_or(ConfigError::Missing {
        var: "SKYPORT_CLOUD_INIT_URL",
        why: "the URL nodes use to reach cloud-init",
    })?;
    let v = v.trim().trim_end_matches('/').to_string();
    if !(v.starts_with("http://") || v.starts_with("https://")) || v.contains(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "SKYPORT_CLOUD_INIT_URL",
            v,
            "expected an http(s) URL",
        ));
    }
    Ok(v)
}

/// The service Lambda runs: the metadata Router, finished as every Skyport app is.
pub fn app(
    store: Arc<dyn Store>,
    base_url: String,
    auth: skyport_auth::AuthLayer,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    let svc = MetadataService::new(store, base_url);
    skyport_http::app(skyport_auth::auth_layer(
        skyport_metadata::router(svc.clone()).merge(skyport_metadata::bss::router(svc)),
        &[skyport_metadata::access, skyport_metadata::bss::access],
        auth,
    ))
}
