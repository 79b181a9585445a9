//! Authentication and authorisation for every Skyport API. A bearer JWT is verified against a
//! JWKS (Cognito's, or the local issuer's), for issuer, audience and expiry; then the route's
//! requirement is checked against the token's scopes — which OpenCHAMI never does.
//!
//! Scopes (`skyport/<name>`, a Cognito resource server named `skyport`):
//!
//! | scope | grants |
//! |---|---|
//! | `skyport/read` | every protected `GET` |
//! | `skyport/write` | read, plus creating, changing and deleting records |
//! | `skyport/admin` | everything, including `dumpstate` and cloud-init administration |
//! | `skyport/edge` | read, plus pushing discovery results (`RedfishEndpoints`) — an edge agent |
//!
//! Node-facing routes stay anonymous because a booting node has no token: boot scripts,
//! cloud-init data for the asking node, signed blob URLs, and health checks.

pub mod jwks;
pub mod layer;
pub mod local;
pub mod policy;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use jwks::{Jwks, KeySource};
pub use layer::{AuthLayer, auth_layer};
pub use local::LocalIssuer;
pub use policy::{Access, Need};

/// The resource-server prefix of every scope.
pub const SCOPE_PREFIX: &str = "skyport/";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issuer {0:?} is not trusted")]
    WrongIssuer(String),
    #[error("token audience is not this API")]
    WrongAudience,
    #[error("this route needs {need}; the token grants {granted}")]
    Scope { need: String, granted: String },
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

impl AuthError {
    /// 403 for a valid token without the scope; 401 for everything about the token itself.
    pub fn forbidden(&self) -> bool {
        matches!(self, AuthError::Scope { .. })
    }
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sub: String,
    pub client_id: Option<String>,
    /// Scopes without the `skyport/` prefix (`read`, `write`, `admin`, `edge`).
    pub scopes: BTreeSet<String>,
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}
