//! The agent's one HTTP client for the cloud APIs: base URL, system trust store, bearer token
//! (sent on every call, fetched again once when the cloud answers 401), and the timeouts every
//! call shares. Pushes, sync, reports and image downloads all go through it.

use std::sync::Arc;
use std::time::Duration;

use skyport_redfish::client::error_chain;

use crate::token::TokenSource;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("cloud URL {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("TLS setup for the cloud connection: {0}")]
    Tls(String),
    #[error("building the HTTP client: {0}")]
    Build(String),
}

/// How long one API call (not an image download) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct CloudClient {
    http: reqwest::Client,
    base: String,
    token: Arc<TokenSource>,
}

impl CloudClient {
    /// `base` is the API root (`https://…/` or `http://127.0.0.1:27779`), without a service
    /// prefix.
    pub fn new(base: &str, token: TokenSource) -> Result<Self, CloudError> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CloudError::BadUrl(base));
        }
        let mut roots = rustls::RootCertStore::empty();
        // The system trust store (honours SSL_CERT_FILE); an empty one only matters for https.
        for cert in rustls_native_certs::load_native_certs().certs {
            if roots.add(cert).is_err() {
                tracing::debug!("skipping an unusable system CA certificate");
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CloudError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // No total timeout on the client: image downloads run as long as bytes keep coming.
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .user_agent(concat!("skyport-edge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CloudError::Build(e.to_string()))?;
        Ok(Self {
            http,
            base,
            token: Arc::new(token),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request `build` makes, with the bearer token; on 401 fetches a new token and
    /// sends once more. `Err` is a transport or token failure, described with its URL.
    pub async fn send(
        &self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let once = || async {
            let mut req = build(&self.http);
            let token = self.token.token().await.map_err(|e| e.to_string())?;
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
                .await
                .map_err(|e| format!("{url}: {}", error_chain(&e)))
        };
        let resp = once().await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            // A token revoked or expired early: fetch a fresh one once before giving up.
            self.token.invalidate().await;
            return once().await;
        }
        Ok(resp)
    }
}

/// The `detail` of an RFC 7807 answer, or the start of whatever else the body was.
pub async fn problem_detail(resp: reqwest::Response) -> String {
    let body = resp.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}
