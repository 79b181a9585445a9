//! The inventory's domain errors: what is wrong with a component or a Redfish endpoint a client
//! sent ([`ValidationError`], [`EndpointError`], each naming the field and the value), and
//! [`InventoryError`], which adds which entry of the request it was. The texts are SMD's (clients
//! and scripts match on them); `routes.rs` alone turns them into HTTP answers (400).

use skyport_http::ApiError;
use skyport_model::{HmsType, MacError};

use crate::components::MAX_NID;

/// A component value a client sent that the inventory does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// `field` is the name clients know it by (`state`, `subRole`, `xname ID`, ...); `value`
    /// as sent, trimmed (empty when missing).
    #[error("{field} '{value}' is invalid")]
    Invalid { field: &'static str, value: String },
    #[error("ID in URL and POST body do not match")]
    IdMismatch,
    #[error("NID {0} is out of range (0..={MAX_NID}, or -1 for none)")]
    NidOutOfRange(i64),
}

impl ValidationError {
    pub(crate) fn invalid(field: &'static str, value: &str) -> Self {
        ValidationError::Invalid {
            field,
            value: value.to_string(),
        }
    }
}

/// A Redfish endpoint description that cannot be made consistent (SMD's
/// `NewRedfishEPDescription` checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("Hostname is not a basename or IP address.")]
    HostnameNotBasename,
    #[error("{0} is not a valid locational xname ID")]
    NotAnXname(String),
    #[error("No xname ID found")]
    NoXname,
    #[error("xname in URL and PUT body do not match")]
    IdMismatch,
    #[error("xname ID {id} has wrong type for RF endpoint: {hms_type}")]
    NotAController { id: String, hms_type: HmsType },
    #[error("host/domain conflicts with FQDN: '{derived}' != '{given}'")]
    FqdnConflict { derived: String, given: String },
    #[error("IPAddress is not a valid IP address: '{0}'")]
    BadIpAddress(String),
    #[error("hostname IP address conflicts with given IP address: '{hostname}' != '{ip}'")]
    IpConflict { hostname: String, ip: String },
    #[error("MACAddr: {0}")]
    BadMac(#[source] MacError),
}

/// Why an inventory operation that validates client input failed: which entry was invalid, or
/// an answer already decided (not found, conflict, store trouble) as an [`ApiError`].
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Entry `index` of a bulk `POST /State/Components`.
    #[error("couldn't validate components: Components[{index}]: {source}")]
    Components {
        index: usize,
        source: ValidationError,
    },
    /// The body of `PUT /State/Components/{xname}`.
    #[error("couldn't validate component: {0}")]
    Component(#[source] ValidationError),
    /// A component PATCH body.
    #[error("couldn't validate patch: {0}")]
    Patch(#[source] ValidationError),
    /// A value checked on its own (a BulkNID entry's NID).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Entry `index` of a `POST /Inventory/RedfishEndpoints` with several endpoints.
    #[error("couldn't validate endpoint data at idx {index}: {source}")]
    Endpoints { index: usize, source: EndpointError },
    /// The one endpoint of a POST, PUT or PATCH.
    #[error("couldn't validate endpoint data: {0}")]
    Endpoint(#[source] EndpointError),
    #[error(transparent)]
    Api(#[from] ApiError),
}
