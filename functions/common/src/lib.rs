//! What every Skyport Lambda function shares: the environment configuration common to all of
//! them, logging, and the DynamoDB store (SDK client built once per execution environment).

use skyport_http::LogFormat;
use skyport_store_dynamo::DynamoStore;

/// Settings every function reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    /// `SKYPORT_TABLE`: the DynamoDB table (default `skyport`).
    pub table: String,
    /// `SKYPORT_LOG_FORMAT`: `json` (default) or `text`.
    pub log_format: LogFormat,
    /// `SKYPORT_CREATE_TABLE`: create the table at start-up (DynamoDB Local only).
    pub create_table: bool,
}

impl CommonConfig {
    /// Resolves from `get(name)`; an invalid value is an error naming the variable.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
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
        Ok(CommonConfig {
            table,
            log_format,
            create_table,
        })
    }
}

/// The process environment as a lookup.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What every function builds at cold start.
pub struct Init {
    pub store: DynamoStore,
    /// The AWS configuration, for functions that need more SDK clients (S3).
    pub aws: aws_config::SdkConfig,
}

/// Cold-start initialisation: logging, AWS configuration and the store.
pub async fn init(
    cfg: &CommonConfig,
    function: &str,
) -> Result<Init, Box<dyn std::error::Error + Send + Sync>> {
    skyport_http::init_tracing(cfg.log_format)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), cfg.table.clone());
    if cfg.create_table {
        // Local development only (cargo lambda watch against DynamoDB Local); in AWS the SAM
        // template owns the table and the functions have no CreateTable permission.
        store.ensure_table().await?;
    }
    tracing::info!(function, table = %cfg.table, "function initialised");
    Ok(Init { store, aws })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let c = CommonConfig::from_lookup(&|_| None).unwrap();
        assert_eq!(
            (c.table.as_str(), c.create_table, c.log_format),
            ("skyport", false, LogFormat::Json)
        );
        let e =
            CommonConfig::from_lookup(&|k| (k == "SKYPORT_CREATE_TABLE").then(|| "maybe".into()))
                .unwrap_err();
        assert!(e.contains("SKYPORT_CREATE_TABLE"));
        let e = CommonConfig::from_lookup(&|k| (k == "SKYPORT_LOG_FORMAT").then(|| "xml".into()))
            .unwrap_err();
        assert!(e.contains("SKYPORT_LOG_FORMAT"));
        assert!(CommonConfig::from_lookup(&|k| (k == "SKYPORT_TABLE").then(String::new)).is_err());
    }
}
