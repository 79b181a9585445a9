//! Verifying tokens against a JWKS. Keys are cached by `kid`; a token with an unknown `kid`
//! triggers one refresh, at most once per [`REFRESH_EVERY`], so a flood of forged `kid`s cannot
//! hammer the issuer; when the issuer is unreachable, the cached keys keep working.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::{AuthError, Principal, SCOPE_PREFIX};

/// Least time between two JWKS downloads.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A fixed set (the local issuer's public key).
    Static(JwkSet),
    /// A JWKS file on disk, re-read on refresh.
    File(PathBuf),
    /// A JWKS URL (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`).
    Url(String),
}

struct Cache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    refreshed: Option<Instant>,
}

/// A verifier: keys plus the issuer and audiences this API accepts.
pub struct Jwks {
    source: KeySource,
    /// Built on the first download, and only for URL sources: loading the system trust store
    /// is a measurable share of a Lambda's cold start, and a function whose first requests need
    /// no keys (health checks, node routes) should not pay for it.
    http: std::sync::OnceLock<reqwest::Client>,
    issuer: String,
    audiences: Vec<String>,
    sites: Option<std::sync::Arc<dyn crate::SiteResolver>>,
    cache: RwLock<Cache>,
    refreshing: Mutex<()>,
    /// Downloads made (for tests of the rate limit).
    pub fetches: std::sync::atomic::AtomicUsize,
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    aud: Option<Aud>,
    /// Cognito access tokens carry the app client here instead of `aud`.
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<Scopes>,
    #[serde(default)]
    scp: Option<Scopes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    /// OAuth 2 / Cognito: space-separated.
    Spaced(String),
    /// TokenSmith and others: an array.
    List(Vec<String>),
}

impl Scopes {
    fn items(&self) -> Vec<&str> {
        match self {
            Scopes::Spaced(s) => s.split_whitespace().collect(),
            Scopes::List(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn parse_set(set: &JwkSet) -> HashMap<String, (DecodingKey, Algorithm)> {
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match jwk.common.key_algorithm.map(|a| a.to_string()) {
            Some(a) => a.parse::<Algorithm>().ok(),
            None => match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                _ => None,
            },
        };
        let (Some(alg), Ok(key)) = (alg, DecodingKey::from_jwk(jwk)) else {
            tracing::warn!(kid = %kid, "skipping a JWKS key that cannot verify tokens");
            continue;
        };
        out.insert(kid, (key, alg));
    }
    out
}

impl Jwks {
    pub fn new(source: KeySource, issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        let keys = match &source {
            KeySource::Static(set) => parse_set(set),
            _ => HashMap::new(),
        };
        Self {
            source,
            http: std::sync::OnceLock::new(),
            issuer: issuer.into(),
            audiences,
            sites: None,
            cache: RwLock::new(Cache {
                keys,
                refreshed: None,
            }),
            refreshing: Mutex::new(()),
            fetches: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    async fn load(&self) -> Result<JwkSet, AuthError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.source {
            KeySource::Static(s) => Ok(s.clone()),
            KeySource::File(p) => {
                let text = tokio::fs::read_to_string(p)
                    .await
                    .map_err(|e| AuthError::Keys(format!("{}: {e}", p.display())))?;
                serde_json::from_str(&text)
                    .map_err(|e| AuthError::Keys(format!("{}: {e}", p.display())))
            }
            KeySource::Url(u) => {
                let http = self.http.get_or_init(|| {
                    reqwest::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap_or_default()
                });
                let resp = http
                    .get(u)
                    .send()
                    .await
                    .map_err(|e| AuthError::Keys(format!("{u}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(AuthError::Keys(format!("{u}: HTTP {}", resp.status())));
                }
                resp.json()
                    .await
                    .map_err(|e| AuthError::Keys(format!("{u}: {e}")))
            }
        }
    }

    /// Reloads the keys unless that happened less than [`REFRESH_EVERY`] ago. A failure keeps
    /// the keys already cached.
    async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        if self
            .cache
            .read()
            .await
            .refreshed
            .is_some_and(|t| t.elapsed() < REFRESH_EVERY)
        {
            return;
        }
        let loaded = self.load().await;
        let mut c = self.cache.write().await;
        c.refreshed = Some(Instant::now());
        match loaded {
            Ok(set) => {
                let keys = parse_set(&set);
                if !keys.is_empty() {
                    c.keys = keys;
                }
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping cached keys"),
        }
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        if let Some(k) = self.cache.read().await.keys.get(kid) {
            return Some(k.clone());
        }
        self.refresh().await;
        self.cache.read().await.keys.get(kid).cloned()
    }

    /// Verifies a token: signature by a known key, expiry, issuer, audience (or Cognito's
    /// `client_id`). Scopes are returned, not checked here.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let (key, alg) = self.key(&kid).await.ok_or(AuthError::UnknownKey)?;
        if header.alg != alg {
            return Err(AuthError::BadSignature);
        }
        let mut v = Validation::new(alg);
        v.leeway = 30;
        v.validate_aud = false;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss"]);
        let data = decode::<RawClaims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::NotYetValid,
                K::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        let c = data.claims;
        if c.iss != self.issuer {
            return Err(AuthError::WrongIssuer(c.iss));
        }
        let auds: Vec<String> = match c.aud {
            Some(Aud::One(a)) => vec![a],
            Some(Aud::Many(a)) => a,
            None => Vec::new(),
        };
        let audience_ok = auds
            .iter()
            .chain(c.client_id.iter())
            .any(|a| self.audiences.iter().any(|x| x == a));
        let scopes = c
            .scope
            .iter()
            .chain(c.scp.iter())
            .flat_map(|s| s.items())
            .filter_map(|s| s.strip_prefix(SCOPE_PREFIX))
            .map(str::to_string)
            .collect();
        let mut p = Principal {
            sub: c.sub,
            client_id: c.client_id,
            scopes,
            site: None,
        };
        if !p.is_edge_only() {
            return if audience_ok {
                Ok(p)
            } else {
                Err(AuthError::WrongAudience)
            };
        }
        // An edge agent's token: its client must be a registered site's, whatever the
        // audience list says (site clients are created after deployment).
        let (Some(sites), Some(client)) = (&self.sites, p.client_id.clone()) else {
            return if audience_ok && self.sites.is_none() {
                Ok(p)
            } else if audience_ok {
                Err(AuthError::NoSite(p.sub.clone()))
            } else {
                Err(AuthError::WrongAudience)
            };
        };
        match sites.site_of(&client).await {
            Ok(Some(site)) => {
                p.site = Some(site);
                Ok(p)
            }
            Ok(None) if audience_ok => Err(AuthError::NoSite(client)),
            Ok(None) => Err(AuthError::WrongAudience),
            Err(e) => Err(AuthError::SiteLookup(e.to_string())),
        }
    }

    /// Makes edge tokens site-scoped: each one's client ID must map to a registered site.
    pub fn with_sites(mut self, sites: std::sync::Arc<dyn crate::SiteResolver>) -> Self {
        self.sites = Some(sites);
        self
    }
}
