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
    /// Token verification; `None` only when `SKYPORT_AUTH=off` was asked for.
    pub auth: Option<AuthSettings>,
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
    pub fn http_client(self) -> Result<aws_sdk_dynamodb::config::SharedHttpClient, String> {
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
            .map_err(|e| format!("TLS settings: {e}"))?;
        Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(ctx)
            .build_https())
    }
}

/// Who may sign tokens for this API.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// `SKYPORT_AUTH_ISSUER`: the `iss` to accept (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool>`).
    pub issuer: String,
    /// `SKYPORT_AUTH_AUDIENCE`: comma-separated `aud`/`client_id` values to accept.
    pub audiences: Vec<String>,
    /// `SKYPORT_AUTH_JWKS_URL`: default `<issuer>/.well-known/jwks.json`.
    pub jwks_url: String,
}

impl CommonConfig {
    /// The verifier every request of this execution environment shares (keys fetched lazily,
    /// then cached); edge tokens are mapped to their site through the registry in `store`.
    pub fn auth_layer(
        &self,
        store: &std::sync::Arc<dyn skyport_store::Store>,
    ) -> skyport_auth::AuthLayer {
        self.auth.as_ref().map(|a| {
            // A file (`file:///…` or a path) serves local development against the local issuer.
            let source = match a.jwks_url.strip_prefix("file://") {
                Some(path) => skyport_auth::KeySource::File(path.into()),
                None if a.jwks_url.starts_with('/') => {
                    skyport_auth::KeySource::File(a.jwks_url.clone().into())
                }
                None => skyport_auth::KeySource::Url(a.jwks_url.clone()),
            };
            std::sync::Arc::new(
                skyport_auth::Jwks::new(source, a.issuer.clone(), a.audiences.clone())
                    .with_sites(std::sync::Arc::new(skyport_sync::StoreSites(store.clone()))),
            )
        })
    }
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
        let auth = match get("SKYPORT_AUTH").as_deref() {
            Some("off") => None,
            None | Some("jwt") => {
                let issuer = get("SKYPORT_AUTH_ISSUER")
                    .filter(|s| !s.trim().is_empty())
                    .ok_or("SKYPORT_AUTH_ISSUER is not set (or set SKYPORT_AUTH=off for a lab)")?;
                let issuer = issuer.trim().trim_end_matches('/').to_string();
                let audiences: Vec<String> = get("SKYPORT_AUTH_AUDIENCE")
                    .unwrap_or_default()
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if audiences.is_empty() {
                    return Err("SKYPORT_AUTH_AUDIENCE is not set".into());
                }
                let jwks_url = get("SKYPORT_AUTH_JWKS_URL")
                    .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
                Some(AuthSettings {
                    issuer,
                    audiences,
                    jwks_url,
                })
            }
            Some(other) => return Err(format!("SKYPORT_AUTH={other:?}: expected jwt or off")),
        };
        let tls_roots = match get("SKYPORT_TLS_ROOTS").as_deref() {
            None | Some("amazon") => TlsRoots::Amazon,
            Some("system") => TlsRoots::System,
            Some(other) => {
                return Err(format!(
                    "SKYPORT_TLS_ROOTS={other:?}: expected amazon or system"
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
    skyport_http::init_tracing(cfg.log_format)?;
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
    let store = std::sync::Arc::new(skyport_sync::Generational::new(std::sync::Arc::new(store)));
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
        let e = CommonConfig::from_lookup(&|_| None).unwrap_err();
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
        let e = CommonConfig::from_lookup(&|k| {
            (k == "SKYPORT_CREATE_TABLE")
                .then(|| "maybe".into())
                .or_else(|| with_auth(k))
        })
        .unwrap_err();
        assert!(e.contains("SKYPORT_CREATE_TABLE"));
        let e = CommonConfig::from_lookup(&|k| {
            (k == "SKYPORT_LOG_FORMAT")
                .then(|| "xml".into())
                .or_else(|| with_auth(k))
        })
        .unwrap_err();
        assert!(e.contains("SKYPORT_LOG_FORMAT"));
        assert!(
            CommonConfig::from_lookup(&|k| (k == "SKYPORT_TABLE")
                .then(String::new)
                .or_else(|| with_auth(k)))
            .is_err()
        );
    }
}
