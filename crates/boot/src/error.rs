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
    /// A PUT with neither params, kernel nor initrd (BSS's postgres `Set`).
    #[error("No data")]
    NothingToSet,
    /// A PATCH with nothing to change (BSS: 404).
    #[error("Not Found: postgres.Update: must specify at least one of params, kernel, or initrd")]
    NothingToUpdate,
    /// A `hosts` entry that is neither a valid xname nor a tag (the context says which).
    #[error("Bad Request: invalid xname: {value}")]
    BadHost { index: usize, value: String },
    #[error("Bad Request: invalid xname type: {hms_type}")]
    NotANode {
        index: usize,
        xname: Xname,
        hms_type: HmsType,
    },
    /// BSS's text, with the newline its `fmt.Errorf` puts at the end.
    #[error("Bad Request: invalid MAC address format: {}\n", mac_input(.source))]
    BadMac { index: usize, source: MacError },
    /// A NID that is not a NID: above BSS's int32 (its JSON decoder's text), or negative.
    #[error("{}", nid_text(*.nid))]
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
    /// A POST naming nodes that already have parameters (BSS's text, from its postgres backend;
    /// which ones is the context).
    #[error("Bad Request: postgres.Add: data already exists")]
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
    /// A PATCH of nodes without parameters (their record ids), in BSS's postgres words.
    #[error("Not Found: postgres.Update: data does not exist: nodes table: {}", missing_lists(.0))]
    Missing(Vec<String>),
    /// A GET that found nothing; `kinds` is what it asked by (`Hosts`, `MACs`, `NIDs`), as BSS
    /// words it.
    #[error("Cannot find boot parameters for requested {}", or_list(.kinds))]
    NotFound { kinds: Vec<&'static str> },

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
    /// Reading or writing the boot-service resources (their table, decoding, validation).
    #[error(transparent)]
    Resource(#[from] skyport_resource::store::CollectionError),
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An answer of the inventory, which the boot service reads nodes and NICs from (already
    /// an HTTP answer: the inventory decides its own statuses).
    #[error(transparent)]
    Inventory(#[from] ApiError),
}

/// `a`, `a or b`, `a, b or c` (BSS's wording of what was asked).
fn or_list(kinds: &[&str]) -> String {
    match kinds.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// `macs=[a b] xnames=[x] nids=[7]`: record ids sorted into BSS's lists (Go's `%v`).
fn missing_lists(ids: &[String]) -> String {
    let mut macs = Vec::new();
    let mut xnames = Vec::new();
    let mut nids = Vec::new();
    for id in ids {
        match id.split_once(':') {
            Some(("mac", m)) => macs.push(m),
            Some(("nid", n)) => nids.push(n),
            Some((_, x)) => xnames.push(x),
            None => xnames.push(id.as_str()),
        }
    }
    format!(
        "macs=[{}] xnames=[{}] nids=[{}]",
        macs.join(" "),
        xnames.join(" "),
        nids.join(" ")
    )
}

fn mac_input(e: &MacError) -> &str {
    match e {
        MacError::Invalid { input, .. } | MacError::Placeholder { input } => input,
    }
}

fn nid_text(nid: i64) -> String {
    if nid > i64::from(i32::MAX) || nid < i64::from(i32::MIN) {
        format!(
            "Bad Request: json: cannot unmarshal number {nid} into Go struct field BootParams.nids of type int32"
        )
    } else {
        "An argument was out of range".to_string()
    }
}

impl BootError {
    /// What the problem's `context` member adds to the text: which entry of the request, which
    /// records.
    pub fn context(&self) -> Option<String> {
        match self {
            BootError::BadHost { index, .. } => Some(format!(
                "hosts[{index}]: not a valid xname, a role, Default, Global or Unknown-<arch>"
            )),
            BootError::NotANode { index, xname, .. } => {
                Some(format!("hosts[{index}]: {xname} is not a Node"))
            }
            BootError::BadMac { index, source } => Some(format!("macs[{index}]: {source}")),
            BootError::BadNid { index, nid } => Some(format!("nids[{index}]: {nid}")),
            BootError::Duplicate { ids } => Some(format!("existing: {}", ids.join(", "))),
            _ => None,
        }
    }

    /// A store conflict on a POST is a duplicate (another writer created the entry first).
    pub(crate) fn on_create(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { id, .. } => BootError::Duplicate { ids: vec![id] },
            other => other.into(),
        }
    }
}
