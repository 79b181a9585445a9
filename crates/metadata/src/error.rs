//! The metadata service's domain error, [`MetadataError`]: what went wrong with which group,
//! node, IP address, field or stored record. The texts are the `detail` strings the API has
//! always answered with (tests and cloud-init clients match on them); `routes.rs` alone turns
//! them into HTTP answers.

use skyport_http::ApiError;
use skyport_store::{StoreError, Table};

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// `name` as sent: it is not a valid group name (the inventory's label rules).
    #[error("group name {name:?} is invalid: use lowercase letters, digits and -:._")]
    BadGroupName { name: String },
    /// No group `name` is stored (an invalid name names no group either; then `name` is as sent).
    #[error("no such group: {name}")]
    NoSuchGroup { name: String },
    /// A create found the group already there.
    #[error("group {name} already exists")]
    GroupExists { name: String },
    /// A group body's `name` differs from the one in the URL.
    #[error("name {body:?} in the body does not match {url}")]
    GroupNameMismatch { body: String, url: String },
    /// Group `group`'s `file.encoding` is neither `plain` nor `base64`.
    #[error("file.encoding {encoding:?}: expected plain or base64")]
    BadFileEncoding { group: String, encoding: String },
    /// Group `group`'s `file.content` is declared base64 but is not.
    #[error("file.content is not valid base64: {source}")]
    BadFileContent {
        group: String,
        source: base64::DecodeError,
    },
    /// A base URL (`field` is `base-url` or `cloud-init-base-url`) fails the vendor-data
    /// `#include` rules; `why` follows the field's name and value.
    #[error("{field} {value:?} {why}")]
    BadBaseUrl {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    /// The cluster defaults' `nid-length` is above [`crate::MAX_NID_LENGTH`].
    #[error("nid-length {value} is larger than {max}", max = crate::MAX_NID_LENGTH)]
    NidLengthTooLarge { value: u32 },
    /// No Ethernet interface in the inventory holds `ip` (upstream answers 422).
    #[error("no node has IP address {ip}")]
    NoNodeWithIp { ip: String },
    /// Node `id` asked for the file of a group it is not a member of.
    #[error("{id} is not a member of group {group}")]
    NotAMember { id: String, group: String },
    /// A group's template (metadata-service) did not render for a node.
    #[error("group {group}: {reason}")]
    Template { group: String, reason: String },
    /// Group `group`'s stored file is marked base64 but does not decode (written some other way).
    #[error("group {group}: stored file is not base64: {source}")]
    StoredFileNotBase64 {
        group: String,
        source: base64::DecodeError,
    },
    /// Group `group`'s stored file decodes to bytes that are not UTF-8.
    #[error("group {group}: file is not UTF-8")]
    StoredFileNotUtf8 {
        group: String,
        source: std::string::FromUtf8Error,
    },
    /// A stored record of this service's tables does not decode.
    #[error("stored {table}/{id} is unreadable: {source}")]
    Corrupt {
        table: Table,
        id: String,
        source: serde_json::Error,
    },
    /// A record for `table`/`id` could not be encoded for storage.
    #[error("encoding: {source}")]
    Encode {
        table: Table,
        id: String,
        source: serde_json::Error,
    },
    /// A meta-data document could not be turned into YAML.
    #[error("encoding YAML: {0}")]
    EncodeYaml(#[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An error from the inventory crate (a node's component, group memberships or interfaces),
    /// already an HTTP answer there: it is passed on as the inventory decided it. Only errors
    /// that come from `skyport_inventory` go here (when the inventory has its own domain error
    /// for these operations, this variant carries that instead).
    #[error(transparent)]
    Inventory(ApiError),
}

impl MetadataError {
    /// Wraps an error from a `skyport_inventory` call (its operations return `ApiError` or
    /// `InventoryError`, which becomes an `ApiError` the inventory's way).
    pub(crate) fn inventory(e: impl Into<ApiError>) -> Self {
        MetadataError::Inventory(e.into())
    }
}
