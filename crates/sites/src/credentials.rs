//! Where a site's edge credentials come from: a [`Credentials`] backend creates and deletes
//! OAuth 2 client-credentials clients (Cognito app clients in AWS, the local server's own
//! clients with [`LocalCredentials`]); [`NoCredentials`] says why none can be issued here.

use serde::{Deserialize, Serialize};

/// A credentials backend failed; `reason` is what the backend said (shown to the admin, who
/// registered or rotated, as a 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CredentialsError {
    pub reason: String,
}

impl CredentialsError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Credentials just issued; the secret is never stored in clear nor shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClient {
    pub client_id: String,
    pub client_secret: String,
    /// Where the agent exchanges them for tokens (OAuth 2 client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip)]
    pub(crate) kind: String,
}

impl NewClient {
    pub fn new(client_id: String, client_secret: String, token_url: Option<String>) -> Self {
        Self {
            client_id,
            client_secret,
            token_url,
            kind: String::new(),
        }
    }
}

/// Where edge clients are created and deleted.
#[async_trait::async_trait]
pub trait Credentials: Send + Sync {
    /// `local` or `cognito`.
    fn kind(&self) -> &'static str;
    /// Creates a client for `site` (client credentials grant, scope `skyport/edge`).
    async fn create(&self, site: &str) -> Result<NewClient, CredentialsError>;
    /// Deletes a client; deleting one that is already gone is not an error.
    async fn delete(&self, client_id: &str) -> Result<(), CredentialsError>;
}

/// Clients of the local server's token endpoint: random IDs and secrets, nothing to call.
pub struct LocalCredentials {
    token_url: Option<String>,
}

impl LocalCredentials {
    /// `token_url`: the server's public `…/oauth2/token`, handed to new clients.
    pub fn new(token_url: Option<String>) -> Self {
        Self { token_url }
    }
}

fn random_b64(bytes: usize) -> Result<String, CredentialsError> {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| CredentialsError::new(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn random_hex(bytes: usize) -> Result<String, CredentialsError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| CredentialsError::new(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[async_trait::async_trait]
impl Credentials for LocalCredentials {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn create(&self, _site: &str) -> Result<NewClient, CredentialsError> {
        Ok(NewClient::new(
            format!("skyport-{}", random_hex(10)?),
            random_b64(32)?,
            self.token_url.clone(),
        ))
    }

    async fn delete(&self, _client_id: &str) -> Result<(), CredentialsError> {
        Ok(())
    }
}

/// No way to issue credentials here (a local server verifying an external issuer's tokens, or
/// with authentication off): registering or rotating answers 503 with the reason.
pub struct NoCredentials(pub &'static str);

#[async_trait::async_trait]
impl Credentials for NoCredentials {
    fn kind(&self) -> &'static str {
        "none"
    }

    async fn create(&self, _site: &str) -> Result<NewClient, CredentialsError> {
        Err(CredentialsError::new(self.0))
    }

    async fn delete(&self, _client_id: &str) -> Result<(), CredentialsError> {
        Ok(())
    }
}
