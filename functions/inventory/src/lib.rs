//! The inventory Lambda function's wiring, separate from `main` so tests can feed it real API
//! Gateway events: configuration from the environment and the app (the shared inventory Router).

use std::sync::Arc;

use skyport_http::LogFormat;
use skyport_inventory::Inventory;
use skyport_store::Store;

/// The function's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub table: String,
    pub log_format: LogFormat,
    /// Create the table at start-up: for DynamoDB Local only.
    pub create_table: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Resolves the configuration from `get(name)`; an invalid value is an error naming it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let log_format = match get("SKYPORT_LOG_FORMAT") {
            Some(v) => v.parse().map_err(|e| format!("SKYPORT_LOG_FORMAT: {e}"))?,
            None => LogFormat::Json,
        };
        let create_table = match get("SKYPORT_CREATE_TABLE").as_deref() {
            Some("1" | "true") => true,
            Some("0" | "false") | None => false,
            Some(other) => {
                return Err(format!(
                    "SKYPORT_CREATE_TABLE={other:?}: expected true or false"
                ));
            }
        };
        let table = get("SKYPORT_TABLE").unwrap_or_else(|| "skyport".to_string());
        if table.is_empty() {
            return Err("SKYPORT_TABLE is empty".into());
        }
        Ok(Config {
            table,
            log_format,
            create_table,
        })
    }
}

/// The service Lambda runs: the inventory Router with SMD's trailing-slash tolerance.
pub fn app(store: Arc<dyn Store>) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    skyport_http::app(skyport_inventory::router(Inventory::new(store)))
}
