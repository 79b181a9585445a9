//! The boot service's domain error, [`BootError`]: what was wrong with a boot-parameters request
//! (which entry, which field), which nodes had no parameters, which image could not be used, and
//! the store, image and inventory failures underneath. The texts are BSS's where BSS has one
//! (clients and scripts match on them); `routes.rs` alone turns them into HTTP answers.

use skyport_http::ApiError;
use skyport_images::ImageError;
use skyport_ipxe::UnsafeValue;
use skyport_model::{HmsType, MacError, Xname};
use skyport_store::StoreError;

/// Why an operation of [`crate::BootService`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    // ---- the request (400) ------------------------------------------------------------------
    #[error("Bad Request: no hosts, macs or nids given")]
    NoNodes,
    #[error("Bad Request: need at least one of params, kernel or initrd")]
    NothingToSet,
    #[error("Bad Request: nothing to update (give kernel, initrd, params or cloud-init)")]
    NothingToUpdate,
    /// A DELETE that names neither nodes nor a whole configuration.
    #[error("Bad Request: give hosts, macs or nids, or kernel+initrd+params")]
    NoSelection,
    #[error(
        "hosts[{index}]: {value:?} is not a valid xname, a role, Default, Global or Unknown-<arch>"
    )]
    BadHost { index: usize, value: String },
    #[error("hosts[{index}]: {xname} is a {hms_type}, not a Node")]
    NotANode {
        index: usize,
        xname: Xname,
        hms_type: HmsType,
    },
    #[error("macs[{index}]: {source}")]
    BadMac { index: usize, source: MacError },
    #[error("nids[{index}]: NID {nid} is out of range")]
    BadNid { index: usize, nid: i64 },
    /// A kernel, initrd or params value that could not be placed in a script safely.
    #[error(transparent)]
    Unsafe(#[from] UnsafeValue),
    #[error("{field}: {value:?} is not an s3://bucket/key URL")]
    BadS3Url { field: &'static str, value: String },
    #[error("{field}: image references need the image registry, which is not configured here")]
    NoRegistry { field: &'static str },
    #[error("{field}: no such image: {id}")]
    NoSuchImage { field: &'static str, id: String },
    /// A POST naming nodes that already have parameters (BSS's text, from its postgres backend).
    #[error("Bad Request: postgres.Add: No nodes to add (possible duplicate(s)): {}", .ids.join(", "))]
    Duplicate { ids: Vec<String> },
    /// A boot script request's `mac=`.
    #[error("mac: {0}")]
    ScriptMac(#[source] MacError),
    /// A boot script request's `nid=`, as sent.
    #[error("nid: {0:?} is not a NID")]
    ScriptNid(String),
    #[error("Need a mac=, name=, or nid= parameter")]
    NoScriptKey,

    /// A `GET /hosts?nid=` value that is no integer (BSS's text).
    #[error("Bad Request - Invalid nid '{0}'")]
    BadHostNid(String),

    // ---- nothing there (404) ------------------------------------------------------------------
    /// `GET /hosts?name=` naming no node (BSS's text).
    #[error("Not Found - Unknown host name '{0}'")]
    UnknownHost(String),
    #[error("Not Found - Unknown MAC address '{0}'")]
    UnknownHostMac(String),
    #[error("Not Found - Unknown NID '{0}'")]
    UnknownHostNid(String),
    /// A PATCH of nodes without parameters (their record ids).
    #[error("Not Found: no boot parameters for {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error("Not Found: no matching boot parameters")]
    NoMatch,
    #[error("Cannot find boot parameters for requested hosts, MACs or NIDs")]
    NotFound,

    // ---- stored data that cannot be served (422, 500) -------------------------------------------
    /// An `image:`/`s3://` reference where no registry is configured.
    #[error("{value}: no image registry configured")]
    Unresolvable { value: String },
    #[error("stored boot parameters have a bad id {0:?}")]
    BadId(String),
    #[error("stored boot parameters {id} are unreadable: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    #[error("stored endpoint history {id} is unreadable: {source}")]
    CorruptHistory {
        id: String,
        source: serde_json::Error,
    },
    #[error("encoding boot config: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("encoding endpoint history {id}: {source}")]
    EncodeHistory {
        id: String,
        source: serde_json::Error,
    },
    #[error("stored boot parameters cannot be rendered: {0}")]
    Render(#[source] UnsafeValue),

    // ---- underneath ---------------------------------------------------------------------------
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An answer of the inventory, which the boot service reads nodes and NICs from (already
    /// an HTTP answer: the inventory decides its own statuses).
    #[error(transparent)]
    Inventory(#[from] ApiError),
}

impl BootError {
    /// A store conflict on a POST is a duplicate (another writer created the entry first).
    pub(crate) fn on_create(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { id, .. } => BootError::Duplicate { ids: vec![id] },
            other => other.into(),
        }
    }
}
