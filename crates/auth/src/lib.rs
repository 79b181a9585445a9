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
//! | `skyport/edge` | an edge agent: its own site's snapshot and reports, pushing discovery results (`RedfishEndpoints`) for its site, image downloads |
//!
//! An edge token belongs to one site: its client ID is looked up in the site registry on every
//! request (so revocation takes effect at once), and the site goes into the [`Principal`].
//! Cognito app clients created by site registration are not in the configured audience list;
//! an edge-only token whose client is a registered site's is accepted as this API's.
//!
//! Node-facing routes stay anonymous because a booting node has no token: boot scripts,
//! cloud-init data for the asking node, signed blob URLs, and health checks.

pub mod config;
pub mod jwks;
pub mod layer;
pub mod local;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use config::{AuthConfig, AuthConfigError, AuthMode, AuthSettings, JwksConfig};
pub use jwks::{Jwks, KeySource};
pub use layer::{AuthLayer, auth_layer};
pub use local::LocalIssuer;
pub use skyport_http::access::{Access, Declared, Need};

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
    #[error("edge client {0:?} belongs to no registered site (revoked, or never issued)")]
    NoSite(String),
    #[error("looking up the site of an edge client: {0}")]
    SiteLookup(String),
}

impl AuthError {
    /// 403 for a valid token without the scope; 401 for everything about the token itself.
    pub fn forbidden(&self) -> bool {
        matches!(self, AuthError::Scope { .. } | AuthError::NoSite(_))
    }
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sub: String,
    pub client_id: Option<String>,
    /// Scopes without the `skyport/` prefix (`read`, `write`, `admin`, `edge`).
    pub scopes: BTreeSet<String>,
    /// The site an edge agent's token belongs to (resolved from its client ID by the
    /// [`SiteResolver`]); `None` for people and services that see every site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// An edge agent's token: `edge` without `write` or `admin`. Such a token speaks for one
    /// site only, and is refused unless its client belongs to a registered site.
    pub fn is_edge_only(&self) -> bool {
        self.has("edge") && !self.has("write") && !self.has("admin")
    }
}

/// Maps an edge client ID to the site it was issued for. Implemented over the store by the
/// site registry (`skyport-sites`); a revoked or unknown client maps to `None`.
#[async_trait::async_trait]
pub trait SiteResolver: Send + Sync {
    async fn site_of(&self, client_id: &str) -> Result<Option<String>, SiteLookupError>;
}

/// The site registry could not answer (unreachable, or a record unreadable): the request is
/// answered 503, since the token may well be valid.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct SiteLookupError {
    /// What was being read (`reading edge client <id>`).
    pub context: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SiteLookupError {
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        SiteLookupError {
            context: context.into(),
            source: source.into(),
        }
    }
}
