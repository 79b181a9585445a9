//! What every Skyport Lambda function shares: the environment configuration common to all of
//! them, logging, and the DynamoDB store (SDK client built once per execution environment).

use skyport_auth::{AuthConfig, AuthMode, AuthSettings, JwksConfig};
use skyport_http::{LogFormat, LogOutput};
use skyport_store_dynamo::DynamoStore;

/// A setting the functions cannot start with; names the variable, and the value when one was
/// given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    #[error("{var}={value:?}: {source}")]
    Invalid {
        var: &'static str,
        value: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Auth(#[from] skyport_auth::AuthConfigError),
}

impl ConfigError {
    /// `var` is set to `value`, which is refused for `reason` (a message or an error).
    pub fn invalid(
        var: &'static str,
        value: impl Into<String>,
        reason: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ConfigError::Invalid {
            var,
            value: value.into(),
            source: reason.into(),
        }
    }
}

/// The SDK clients' TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS settings: {0}")]
pub struct TlsError(#[source] aws_smithy_http_client::HttpClientError);

/// Settings every function reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    /// `SKYPORT_TABLE`: the DynamoDB table (default `skyport`).
    pub table: String,
    /// `SKYPORT_LOG_FORMAT`: `json` (default) or `text`.
    pub log_format: LogFormat,
    /// `SKYPORT_CREATE_TABLE`: create the table at start-up (DynamoDB Local only).
    pub create_table: bool,
    /// Token verification (`SKYPORT_AUTH*`, as for `skyport serve`); `None` only when
    /// `SKYPORT_AUTH=off` was asked for.
    pub auth: Option<JwksConfig>,
    /// `SKYPORT_TLS_ROOTS`: which CAs the AWS SDK clients trust.
    pub tls_roots: TlsRoots,
}

/// The roots of trust of the SDK clients' HTTPS connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// `amazon` (default): Amazon Trust Services' roots, built in. The functions only talk to
    /// AWS endpoints, which chain to them, and a cold start then parses six certificates
    /// instead of the system store (measured: the largest share of init time).
    Amazon,
    /// `system`: the platform's trust store, for an S3- or DynamoDB-compatible endpoint with
    /// a certificate from another CA (`AWS_ENDPOINT_URL_*`).
    System,
}

/// Amazon Root CA 1-4 and the Starfield roots that cross-sign them
/// (<https://www.amazontrust.com/repository/>).
pub const AMAZON_TRUST_SERVICES_PEM: &str = include_str!("amazon-trust-services.pem");

impl TlsRoots {
    /// The SDK's HTTPS client trusting these roots.
    pub fn http_client(self) -> Result<aws_sdk_dynamodb::config::SharedHttpClient, TlsError> {
        use aws_smithy_http_client::tls;
        let store = match self {
            TlsRoots::Amazon => tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(AMAZON_TRUST_SERVICES_PEM.as_bytes()),
            TlsRoots::System => tls::TrustStore::default(),
        };
        let ctx = tls::TlsContext::builder()
            .with_trust_store(store)
            .build()
            .map_err(TlsError)?;
        Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(ctx)
            .build_https())
    }
}

impl CommonConfig {
    /// The verifier every request of this execution environment shares (keys fetched lazily,
    /// then cached); edge tokens are mapped to their site through the registry in `store`.
    pub fn auth_layer(
        &self,
        store: &std::sync::Arc<dyn skyport_store::Store>,
    ) -> skyport_auth::AuthLayer {
        self.auth.as_ref().map(|a| {
            std::sync::Arc::new(a.verifier().with_sites(std::sync::Arc::new(
                skyport_sites::StoreSites(store.clone()),
            )))
        })
    }
}

impl CommonConfig {
    /// Resolves from `get(name)`; an invalid value is an error naming the variable.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let log_format = match get("SKYPORT_LOG_FORMAT") {
            Some(v) => v
                .parse()
                .map_err(|e| ConfigError::invalid("SKYPORT_LOG_FORMAT", v, e))?,
            None => LogFormat::Json,
        };
        let create_table = match get("SKYPORT_CREATE_TABLE").as_deref() {
            Some("1" | "true") => true,
            Some("0" | "false") | None => false,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "SKYPORT_CREATE_TABLE",
                    other,
                    "expected true or false",
                ));
            }
        };
        let table = get("SKYPORT_TABLE").unwrap_or_else(|| "skyport".to_string());
        if table.is_empty() {
            return Err(ConfigError::invalid("SKYPORT_TABLE", table, "is empty"));
        }
        let auth = match AuthSettings::from_lookup(get).resolve(AuthMode::Jwks)? {
            AuthConfig::Jwks(j) => Some(j),
            AuthConfig::Off => None,
            AuthConfig::Local => {
                return Err(ConfigError::invalid(
                    skyport_auth::config::ENV_MODE,
                    "local",
                    "a function has no local issuer: expected jwks or off",
                ));
            }
        };
        let tls_roots = match get("SKYPORT_TLS_ROOTS").as_deref() {
            None | Some("amazon") => TlsRoots::Amazon,
            Some("system") => TlsRoots::System,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "SKYPORT_TLS_ROOTS",
                    other,
                    "expected amazon or system",
                ));
            }
        };
        Ok(CommonConfig {
            table,
            log_format,
            create_table,
            auth,
            tls_roots,
        })
    }
}

/// The process environment as a lookup.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What every function builds at cold start.
pub struct Init {
    /// The table, stamping the edge sync generation on every change edge agents copy.
    pub store: std::sync::Arc<dyn skyport_store::Store>,
    /// The AWS configuration, for functions that need more SDK clients (S3).
    pub aws: aws_config::SdkConfig,
}

/// Cold-start initialisation: logging, AWS configuration and the store.
pub async fn init(
    cfg: &CommonConfig,
    function: &str,
) -> Result<Init, Box<dyn std::error::Error + Send + Sync>> {
    skyport_http::init_tracing(cfg.log_format, "info", LogOutput::Stdout)?;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cfg.tls_roots.http_client()?)
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), cfg.table.clone());
    if cfg.create_table {
        // Local development only (cargo lambda watch against DynamoDB Local); in AWS the SAM
        // template owns the table and the functions have no CreateTable permission.
        store.ensure_table().await?;
    }
    tracing::info!(function, table = %cfg.table, "function initialised");
    // Edge agents in the cloud always have a site: no whole-installation log.
    let store = std::sync::Arc::new(skyport_sync::ChangeLog::new(std::sync::Arc::new(store)));
    // Component changes carry their SCN notifications, whichever function makes them.
    let store = std::sync::Arc::new(skyport_inventory::scn::Notifying::new(store));
    // One read per cold start, so an upgrade that skipped its reindex step shows in the logs
    // (site snapshots are correct meanwhile, but read every synced table).
    match skyport_sync::changes::index_complete(store.as_ref()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            function,
            "the edge sync placement index is not complete: POST /edge/v1/reindex once (docs/operations.md)"
        ),
        Err(e) => {
            tracing::warn!(function, error = %e, "could not check the edge sync placement index")
        }
    }
    Ok(Init { store, aws })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(k: &str) -> Option<String> {
        match k {
            "SKYPORT_AUTH_ISSUER" => {
                Some("https://cognito-idp.us-east-1.amazonaws.com/pool".into())
            }
            "SKYPORT_AUTH_AUDIENCE" => Some("client-a, client-b".into()),
            _ => None,
        }
    }

    #[test]
    fn auth_is_required_unless_switched_off() {
        let e = CommonConfig::from_lookup(&|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("SKYPORT_AUTH_ISSUER"), "{e}");
        let c = CommonConfig::from_lookup(&with_auth).unwrap();
        let a = c.auth.unwrap();
        assert_eq!(a.audiences, ["client-a", "client-b"]);
        assert_eq!(
            a.jwks_url,
            "https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json"
        );
        let off = CommonConfig::from_lookup(&|k| (k == "SKYPORT_AUTH").then(|| "off".into()));
        assert!(off.unwrap().auth.is_none());
        assert!(
            CommonConfig::from_lookup(&|k| (k == "SKYPORT_AUTH").then(|| "maybe".into())).is_err()
        );
    }

    /// [`with_auth`], plus `name=value`.
    fn with_auth_and(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| {
            (k == name)
                .then(|| value.to_string())
                .or_else(|| with_auth(k))
        }
    }

    #[test]
    fn the_auth_settings_are_the_local_servers() {
        // The names `skyport serve` reads are read here too, with the same mode names.
        let c = CommonConfig::from_lookup(&|k| match k {
            "SKYPORT_AUTH" => Some("jwks".into()),
            "SKYPORT_AUTH_JWKS" => Some("/etc/skyport/jwks.json".into()),
            _ => with_auth(k),
        })
        .unwrap();
        assert_eq!(c.auth.unwrap().jwks_url, "/etc/skyport/jwks.json");
        let jwt = CommonConfig::from_lookup(&with_auth_and("SKYPORT_AUTH", "jwt"));
        assert!(jwt.unwrap().auth.is_some());
        // A function has no signing key of its own.
        let e = CommonConfig::from_lookup(&with_auth_and("SKYPORT_AUTH", "local"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SKYPORT_AUTH=\"local\""), "{e}");
    }

    #[test]
    fn the_built_in_roots_are_amazons_and_parse() {
        let c = CommonConfig::from_lookup(&with_auth).unwrap();
        assert_eq!(c.tls_roots, TlsRoots::Amazon);
        assert!(
            CommonConfig::from_lookup(&|k| (k == "SKYPORT_TLS_ROOTS")
                .then(|| "none".into())
                .or_else(|| with_auth(k)))
            .is_err()
        );
        // Six certificates, each one a CA's self-signed root that the TLS stack can load.
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> =
            rustls_pki_types::CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(certs.len(), 6);
        let mut roots = rustls::RootCertStore::empty();
        assert_eq!(roots.add_parsable_certificates(certs), (6, 0));
        assert!(TlsRoots::Amazon.http_client().is_ok());
        assert!(TlsRoots::System.http_client().is_ok());
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = CommonConfig::from_lookup(&with_auth).unwrap();
        assert_eq!(
            (c.table.as_str(), c.create_table, c.log_format),
            ("skyport", false, LogFormat::Json)
        );
        for (var, bad) in [
            ("SKYPORT_CREATE_TABLE", "maybe"),
            ("SKYPORT_LOG_FORMAT", "xml"),
        ] {
            let e = CommonConfig::from_lookup(&|k| {
                (k == var).then(|| bad.into()).or_else(|| with_auth(k))
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains(var), "{e}");
        }
        assert!(
            CommonConfig::from_lookup(&|k| (k == "SKYPORT_TABLE")
                .then(String::new)
                .or_else(|| with_auth(k)))
            .is_err()
        );
    }
}
