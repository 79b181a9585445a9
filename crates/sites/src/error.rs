//! The sites' domain error, [`SiteError`]: which site, client or xname assignment a request
//! named wrongly or could not have, a site's change refused because it touches another site's
//! records ([`SiteError::Refused`], blind: its text is [`REFUSED`] and nothing else), and the
//! store and credentials-backend failures underneath. Each variant's text is the `detail`
//! clients get today (scripts and the edge agent match on them); `routes.rs` alone turns them
//! into HTTP answers.

use skyport_model::{Xname, XnameError};
use skyport_store::StoreError;

use crate::credentials::CredentialsError;
use crate::ownership::REFUSED;

/// Why an operation on the site registry or on xname ownership failed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("site name {name:?}: use 1-63 lowercase letters, digits and inner hyphens")]
    BadName { name: String },
    /// A site description over 500 bytes or with control characters.
    #[error("description: at most 500 printable characters")]
    BadDescription,
    /// An xname in a request path that does not parse.
    #[error("{xname}: {source}")]
    BadXname { xname: String, source: XnameError },
    #[error("no such site: {name}")]
    NoSuchSite { name: String },
    #[error("site {name} is already registered")]
    AlreadyRegistered { name: String },
    #[error("site {site} has no client {client_id}")]
    NoSuchClient { site: String, client_id: String },
    /// Unassigning an xname no site has an assignment of exactly.
    #[error("{xname} is not assigned")]
    NotAssigned { xname: String },
    /// Unassigning `xname` from `site` while `owner` holds it.
    #[error("{xname} is assigned to site {owner}, not {site}")]
    AssignedElsewhere {
        xname: String,
        owner: String,
        site: String,
    },
    /// An admin's assignment kept losing the race to other writers of the same xname.
    #[error("{xname} is being reassigned concurrently; try again")]
    ReassignedConcurrently { xname: String },
    /// `site`'s token tried to change another site's records. The text is [`REFUSED`] alone:
    /// which record and whose is logged where the refusal is made
    /// ([`crate::ownership::refuse`]), never answered.
    #[error("{}", REFUSED)]
    Refused { site: String },
    /// `site`'s agent pushed BMC `xname`, which is in the inventory but assigned to no site.
    #[error(
        "{xname} is in the inventory but assigned to no site; an admin assigns it \
         (skyport site assign {site} {xname}) before this site's agent may update it"
    )]
    Unassigned { site: String, xname: Xname },
    /// The credentials backend could not create `site`'s client.
    #[error("creating credentials for site {site}: {source}")]
    Credentials {
        site: String,
        source: CredentialsError,
    },
    /// A record (`what` `id`: a site, a client, a status) that cannot be encoded for the store
    /// (the text is the one every service answers for this).
    #[error("encoding: {source}")]
    Encode {
        what: &'static str,
        id: String,
        source: serde_json::Error,
    },
    #[error("encoding assignment {xname}: {source}")]
    EncodeAssignment {
        xname: String,
        source: serde_json::Error,
    },
    /// A stored record (`what`: `site`, `site status`, `client`, `site assignment`) that cannot
    /// be read back.
    #[error("stored {what} {id} is unreadable: {source}")]
    Corrupt {
        what: &'static str,
        id: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `value`, the `what` record `id`, as the JSON body the store keeps.
pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    id: &str,
    value: &T,
) -> Result<String, SiteError> {
    serde_json::to_string(value).map_err(|source| SiteError::Encode {
        what,
        id: id.to_string(),
        source,
    })
}
