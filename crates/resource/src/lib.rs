//! The Fabrica resource envelope of OpenCHAMI's v0.2 services (`boot-service`,
//! `metadata-service`), as their generated code behaves (`../shared/reference/openchami-v0.2.md`
//! §1): one resource is `{apiVersion, kind, metadata, spec, status}` in that order, with a
//! `<prefix>-<8 hex>` uid, RFC 3339 nanosecond timestamps, and Go's lenient decoding (keys in
//! any case, unknown keys ignored). A service declares each of its kinds as a [`Kind`] (names,
//! spec and status types, the field shape for decoding, its validation); [`store`] keeps them,
//! [`patch`] applies the four patch content types, and [`routes`] answers the generated routes
//! (list, create, get, replace, patch, delete, status) with upstream's codes and texts.

pub mod patch;
pub mod routes;
pub mod store;

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyport_wire::de::{Shape, go_keys};

pub use routes::router;
pub use store::{Collection, Stored};

/// The `apiVersion` every resource is stored and answered with: each kind registers only `v1`
/// upstream, and the version negotiation writes the bare version.
pub const API_VERSION: &str = "v1";

/// Go's zero `time.Time` as JSON writes it: what a never-set timestamp reads as.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One kind of resource of a service.
pub trait Kind: Send + Sync + 'static {
    /// `BootConfiguration`: the `kind` member and the start of error texts.
    const KIND: &'static str;
    /// `bootconfigurations`: the collection's path segment.
    const PLURAL: &'static str;
    /// `bootconfiguration`: what a uid starts with.
    const UID_PREFIX: &'static str;
    type Spec: Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq + Send + Sync;
    type Status: Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq + Send + Sync;
    /// The spec's Go field names, for [`go_keys`].
    const SPEC: Shape;
    /// The status's Go field names.
    const STATUS: Shape;

    /// The kind's checks (struct tags, then `Validate`), each failure one text; run on create,
    /// replace, patch and status writes. May fill status, as some kinds' `Validate` does.
    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid>
    where
        Self: Sized;
}

/// What a resource failed: upstream's texts, joined as `validation failed: a; b`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation failed: {}", .0.join("; "))]
pub struct Invalid(pub Vec<String>);

impl Invalid {
    pub fn one(m: impl Into<String>) -> Self {
        Invalid(vec![m.into()])
    }

    /// `Ok` when nothing was found wrong.
    pub fn check(found: Vec<String>) -> Result<(), Invalid> {
        if found.is_empty() {
            Ok(())
        } else {
            Err(Invalid(found))
        }
    }
}

/// `metadata`, in Fabrica's field order; `namespace` and `resourceVersion` are kept when a
/// client sends them (upstream copies the whole metadata) and never set here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(
        rename = "resourceVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "createdAt", default = "zero_time")]
    pub created_at: String,
    #[serde(rename = "updatedAt", default = "zero_time")]
    pub updated_at: String,
}

fn zero_time() -> String {
    ZERO_TIME.to_string()
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            name: String::new(),
            uid: String::new(),
            namespace: String::new(),
            resource_version: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            created_at: zero_time(),
            updated_at: zero_time(),
        }
    }
}

/// The shape of `metadata` for decoding; label and annotation keys are data.
pub const META: Shape = Shape::Struct(&[
    ("name", Shape::Opaque),
    ("uid", Shape::Opaque),
    ("namespace", Shape::Opaque),
    ("resourceVersion", Shape::Opaque),
    ("labels", Shape::Opaque),
    ("annotations", Shape::Opaque),
    ("createdAt", Shape::Opaque),
    ("updatedAt", Shape::Opaque),
]);

/// One resource. `status` is always written (Go ignores `omitempty` on a struct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = ""))]
pub struct Resource<K: Kind> {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub metadata: Meta,
    pub spec: K::Spec,
    #[serde(default)]
    pub status: K::Status,
}

impl<K: Kind> Resource<K> {
    /// A new resource of kind `K` with a fresh uid, created now.
    pub fn new(metadata: Meta, spec: K::Spec) -> Result<Self, NoRandomness> {
        let now = timestamp();
        Ok(Resource {
            api_version: API_VERSION.into(),
            kind: K::KIND.into(),
            metadata: Meta {
                uid: new_uid(K::UID_PREFIX)?,
                created_at: now.clone(),
                updated_at: now,
                ..metadata
            },
            spec,
            status: K::Status::default(),
        })
    }

    pub fn uid(&self) -> &str {
        &self.metadata.uid
    }
}

/// The system had no randomness to give a uid.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a resource uid: {0}")]
pub struct NoRandomness(#[source] getrandom::Error);

/// `<prefix>-<8 lowercase hex>` from 4 random bytes (fabrica `resource.GenerateUID`).
pub fn new_uid(prefix: &str) -> Result<String, NoRandomness> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(NoRandomness)?;
    Ok(format!(
        "{prefix}-{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3]
    ))
}

/// Now, as Go's `time.Time` marshals in UTC: RFC 3339 with up to nine fractional digits,
/// trailing zeros dropped.
pub fn timestamp() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// `t` as Go's RFC3339Nano writes it.
pub fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// A create or replace body (`Create<Kind>Request`): `metadata`, `spec`, and top-level
/// `labels`/`annotations` merged into the metadata's.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = ""))]
pub struct Request<K: Kind> {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: K::Spec,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A request body that Go's decoder would not read.
#[derive(Debug, thiserror::Error)]
#[error("invalid request body: {0}")]
pub struct BadBody(#[source] pub serde_json::Error);

impl<K: Kind> Request<K> {
    /// Reads a body as Go's `encoding/json` would: keys in any case, unknown keys ignored.
    pub fn decode(body: &[u8]) -> Result<Self, BadBody> {
        let v: Value = serde_json::from_slice(body).map_err(BadBody)?;
        let shape = Shape::Struct(&[
            ("metadata", META),
            ("spec", Shape::Opaque),
            ("labels", Shape::Opaque),
            ("annotations", Shape::Opaque),
        ]);
        let mut v = go_keys(v, shape);
        if let Some(spec) = v.get_mut("spec") {
            *spec = go_keys(spec.take(), K::SPEC);
        }
        null_is_default(&mut v);
        serde_json::from_value(v).map_err(BadBody)
    }
}

/// Go reads `null` as "leave the zero value": serde's defaults do the same once the key is gone.
fn null_is_default(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        m.values_mut().for_each(null_is_default);
    }
}

/// A spec or status from JSON as Go reads it into `T` (keys in any case, `null` as zero).
pub fn decode_as<T: DeserializeOwned>(v: Value, shape: Shape) -> Result<T, serde_json::Error> {
    let mut v = go_keys(v, shape);
    null_is_default(&mut v);
    serde_json::from_value(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn timestamps_are_written_as_go_writes_them() {
        let t = time::macros::datetime!(2026-08-20 17:14:32.123456789 UTC);
        assert_eq!(format_time(t), "2026-08-20T17:14:32.123456789Z");
        let t = time::macros::datetime!(2026-08-20 17:14:32.1 UTC);
        assert_eq!(format_time(t), "2026-08-20T17:14:32.1Z");
        let t = time::macros::datetime!(2026-08-20 17:14:32 UTC);
        assert_eq!(format_time(t), "2026-08-20T17:14:32Z");
    }

    #[test]
    fn uids_have_the_prefix_and_eight_hex_digits() {
        let u = new_uid("bootconfiguration").unwrap();
        let hex = u.strip_prefix("bootconfiguration-").unwrap();
        assert_eq!(hex.len(), 8);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
