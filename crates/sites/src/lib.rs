//! Sites: the clusters an installation spans, each served by its own edge agent. This crate
//! owns everything about them, and their tables:
//! - the registry ([`registry`]): one [`SITES`] record per registered site, its agent's
//!   client credentials ([`credentials`]: Cognito app clients or the local server's own), and
//!   the resolver that tells the auth layer which site an edge token speaks for;
//! - ownership ([`ownership`]): which site owns which xname subtree, checked by the inventory
//!   inside its own write batches;
//! - placement ([`placement`]): which sites a synced record belongs to, resolved through
//!   ownership;
//! - each agent's last status ([`status`]), beside its registration;
//! - the local server's OAuth 2 token endpoint ([`token`]);
//! - the admin routes under `/edge/v1/sites` ([`routes`]), where [`SiteError`] ([`error`])
//!   becomes HTTP answers.
//!
//! What a site's agent copies and reports (snapshot, filter, reports) is `skyport-sync`'s.

pub mod credentials;
pub mod error;
pub mod ownership;
pub mod placement;
pub mod registry;
pub mod routes;
pub mod status;
pub mod token;

pub use credentials::{Credentials, CredentialsError, LocalCredentials, NewClient, NoCredentials};
pub use error::SiteError;
pub use ownership::{Assignment, Ownership, REFUSED};
pub use placement::Placement;
pub use registry::{Registry, SiteView, StoreSites, check_local_secret};
pub use routes::{access, router};
pub use status::{EdgeStatus, record_status};

use skyport_store::Table;

/// One record per registered site, keyed by name, and each site's last status, keyed
/// `<name>/status` ([`status`]).
pub const SITES: Table = Table("Sites");
