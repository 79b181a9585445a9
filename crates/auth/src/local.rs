//! The local issuer: an ES256 key kept in the local server's data directory (created on first
//! use, mode 0600), its public JWKS, and minting of tokens for `skyport token`. Local mode
//! verifies exactly the same JWTs as the cloud, just from a different issuer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::SCOPE_PREFIX;

pub const LOCAL_ISSUER: &str = "skyport-local";
pub const LOCAL_AUDIENCE: &str = "skyport";
/// The scopes `skyport token` knows.
pub const SCOPES: &[&str] = &["read", "write", "admin", "edge"];

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("signing key {path}: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error("unknown scope {0:?}: expected read, write, admin or edge")]
    Scope(String),
    #[error("signing a token: {0}")]
    Sign(String),
}

/// What is wrong with the signing key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a PKCS#8 key that the crypto library can read (or none could be generated).
    #[error(transparent)]
    Pkcs8(#[from] rcgen::Error),
    #[error("not a P-256 key")]
    NotP256,
    #[error(transparent)]
    Jwk(#[from] serde_json::Error),
}

pub struct LocalIssuer {
    encoding: EncodingKey,
    kid: String,
    jwks: JwkSet,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    scope: String,
    token_use: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl LocalIssuer {
    /// The key file under `dir` (`<data>/auth/signing-key.pk8`).
    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join("auth").join("signing-key.pk8")
    }

    /// Loads the key in `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, LocalError> {
        let path = Self::key_path(dir);
        let err = |source: KeyError| LocalError::Key {
            path: path.clone(),
            source,
        };
        let der = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kp = rcgen::KeyPair::generate().map_err(|e| err(e.into()))?;
                let der = kp.serialize_der();
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| err(e.into()))?;
                }
                write_private(&path, &der).map_err(|e| err(e.into()))?;
                der
            }
            Err(e) => return Err(err(e.into())),
        };
        Self::from_pkcs8(&der).map_err(err)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let kp = rcgen::KeyPair::try_from(der)?;
        let raw = kp.public_key_raw();
        if raw.len() != 65 || raw[0] != 4 {
            return Err(KeyError::NotP256);
        }
        let kid = hex::encode(&Sha256::digest(raw)[..8]);
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }]}))?;
        Ok(Self {
            encoding: EncodingKey::from_ec_der(der),
            kid,
            jwks,
        })
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn kid(&self) -> String {
        self.kid.clone()
    }

    /// Signs arbitrary claims with this key (tests craft wrong tokens with it).
    pub fn sign_claims(&self, claims: &serde_json::Value) -> Result<String, LocalError> {
        self.sign_claims_with_kid(claims, &self.kid)
    }

    /// Signs with this key but names another key id (a forgery, for tests).
    pub fn sign_claims_with_kid(
        &self,
        claims: &serde_json::Value,
        kid: &str,
    ) -> Result<String, LocalError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        encode(&header, claims, &self.encoding).map_err(|e| LocalError::Sign(e.to_string()))
    }

    /// A token for `sub` with `scopes` (`read`, `write`, `admin`, `edge`), valid for `ttl`.
    pub fn mint(&self, sub: &str, scopes: &[String], ttl: Duration) -> Result<String, LocalError> {
        self.mint_inner(sub, None, scopes, ttl)
    }

    /// A machine token for an app client (what the local token endpoint issues to an edge
    /// agent for its client credentials): `client_id` and `sub` are the client's ID.
    pub fn mint_for_client(
        &self,
        client_id: &str,
        scopes: &[String],
        ttl: Duration,
    ) -> Result<String, LocalError> {
        self.mint_inner(client_id, Some(client_id), scopes, ttl)
    }

    fn mint_inner(
        &self,
        sub: &str,
        client_id: Option<&str>,
        scopes: &[String],
        ttl: Duration,
    ) -> Result<String, LocalError> {
        for s in scopes {
            if !SCOPES.contains(&s.as_str()) {
                return Err(LocalError::Scope(s.clone()));
            }
        }
        let now = skyport_model::now();
        let claims = Claims {
            iss: LOCAL_ISSUER,
            sub,
            aud: LOCAL_AUDIENCE,
            iat: now,
            nbf: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            scope: scopes
                .iter()
                .map(|s| format!("{SCOPE_PREFIX}{s}"))
                .collect::<Vec<_>>()
                .join(" "),
            token_use: "access",
            client_id,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding).map_err(|e| LocalError::Sign(e.to_string()))
    }
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)?;
    f.sync_all()
}
