//! Where a client's bearer token comes from: none, a fixed token (an admin's, or local mode's
//! `skyport token --scope edge`), or OAuth 2 client credentials (a site's Cognito app client)
//! exchanged at the token URL, cached, and refreshed a minute before it expires or when the
//! API says 401.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint {url}: {reason}")]
    Endpoint { url: String, reason: String },
}

/// Client credentials; `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Requested scope (`skyport/edge`).
    pub scope: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

enum Kind {
    None,
    Fixed(String),
    Client {
        creds: ClientCredentials,
        cached: Mutex<Option<(String, Instant)>>,
    },
}

/// Where the bearer token comes from.
pub struct TokenSource {
    kind: Kind,
    http: reqwest::Client,
}

impl TokenSource {
    pub fn none() -> Self {
        Self::from_kind(Kind::None)
    }

    pub fn fixed(token: String) -> Self {
        Self::from_kind(Kind::Fixed(token))
    }

    pub fn client_credentials(creds: ClientCredentials) -> Self {
        Self::from_kind(Kind::Client {
            creds,
            cached: Mutex::new(None),
        })
    }

    fn from_kind(kind: Kind) -> Self {
        Self {
            kind,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .user_agent(concat!("skyport/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The token to send now, fetching or refreshing it when needed.
    pub async fn token(&self) -> Result<Option<String>, TokenError> {
        match &self.kind {
            Kind::None => Ok(None),
            Kind::Fixed(t) => Ok(Some(t.clone())),
            Kind::Client { creds, cached } => {
                let mut c = cached.lock().await;
                if let Some((t, until)) = c.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some(t.clone()));
                }
                let (t, until) = self.fetch(creds).await?;
                *c = Some((t.clone(), until));
                Ok(Some(t))
            }
        }
    }

    /// Forgets a cached token the API refused, so the next call fetches a new one.
    pub async fn invalidate(&self) {
        if let Kind::Client { cached, .. } = &self.kind {
            *cached.lock().await = None;
        }
    }

    async fn fetch(&self, creds: &ClientCredentials) -> Result<(String, Instant), TokenError> {
        let err = |reason: String| TokenError::Endpoint {
            url: creds.token_url.clone(),
            reason,
        };
        let body = format!(
            "grant_type=client_credentials&scope={}",
            form_encode(&creds.scope)
        );
        let resp = self
            .http
            .post(&creds.token_url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| err(crate::chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            )));
        }
        let t: TokenResponse =
            serde_json::from_str(&text).map_err(|e| err(format!("unexpected answer: {e}")))?;
        // Refresh a minute early so a token never expires in flight.
        let life = t.expires_in.unwrap_or(300).saturating_sub(60).max(1);
        tracing::info!(client_id = %creds.client_id, expires_in = life + 60, "obtained a cloud token");
        Ok((t.access_token, Instant::now() + Duration::from_secs(life)))
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl From<Option<String>> for TokenSource {
    /// A fixed token if there is one (blank counts as none), else none.
    fn from(token: Option<String>) -> Self {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(t) => TokenSource::fixed(t),
            None => TokenSource::none(),
        }
    }
}
