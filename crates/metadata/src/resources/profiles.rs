//! Profiles of metadata-service (reference §3.3.5, §3.11): a named variant of one group's
//! cloud-config (`groupRef`) with its own template and metadata, an optional parent profile,
//! and a time to live. A node asks for one in its URL (`/profile=<name>/<group>.yaml`,
//! `/profile=<name>/vendor-data`), or gets its InstanceInfo's `default_profile`; a missing or
//! expired profile falls back to the plain group. Profiles expire and are never deleted
//! (upstream's design): a DELETE is 405.
//!
//! Upstream has no cloud-init equivalent, so profiles have their own table; the edge agent gets
//! every profile (few, installation-wide).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skyport_resource::store::{Change, Collection, CollectionError, Stored};
use skyport_resource::{Invalid, Kind, Resource};
use skyport_store::Table;
use skyport_wire::de::Shape;

/// Profile resources.
pub const PROFILES: Table = Table("CloudInitProfiles");

/// How deep a chain of parent profiles is followed (a cycle stops there too).
pub const MAX_PARENTS: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileSpec {
    #[serde(rename = "groupRef", default)]
    pub group_ref: String,
    #[serde(
        rename = "parentProfile",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub parent_profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(
        rename = "templateEncoding",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub template_encoding: String,
    #[serde(
        rename = "metaData",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub meta_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ttl_seconds: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileStatus {
    #[serde(default)]
    pub expired: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expired_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile;

fn parse_time(s: &str) -> Result<time::OffsetDateTime, time::error::Parse> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
}

impl Kind for Profile {
    const KIND: &'static str = "Profile";
    const PLURAL: &'static str = "profiles";
    const UID_PREFIX: &'static str = "profile";
    type Spec = ProfileSpec;
    type Status = ProfileStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("groupRef", Shape::Opaque),
        ("parentProfile", Shape::Opaque),
        ("template", Shape::Opaque),
        ("templateEncoding", Shape::Opaque),
        ("metaData", Shape::Opaque),
        ("expires_at", Shape::Opaque),
        ("ttl_seconds", Shape::Opaque),
    ]);
    const STATUS: Shape = Shape::Struct(&[
        ("expired", Shape::Opaque),
        ("expired_at", Shape::Opaque),
        ("expires_at", Shape::Opaque),
    ]);

    /// Upstream's `Validate`: a group to apply to, a known encoding (base64 is decoded here),
    /// a readable expiry; the expiry is `expires_at`, else set once from `ttl_seconds`.
    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        use base64::Engine as _;
        if r.metadata.name.is_empty() {
            return Err(Invalid::one("name is required"));
        }
        if r.spec.group_ref.is_empty() {
            return Err(Invalid::one("groupRef is required"));
        }
        match r.spec.template_encoding.as_str() {
            "" | "plain" => {}
            "base64" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r.spec.template.trim())
                    .map_err(|e| Invalid::one(format!("template is not valid base64: {e}")))?;
                r.spec.template = String::from_utf8(bytes)
                    .map_err(|e| Invalid::one(format!("template is not UTF-8: {e}")))?;
            }
            _ => return Err(Invalid::one("unsupported template encoding")),
        }
        r.spec.template_encoding.clear();
        if !r.spec.template.is_empty() {
            super::template::check(&r.spec.template, &r.spec.meta_data).map_err(Invalid::one)?;
        }
        let now = time::OffsetDateTime::now_utc();
        if !r.spec.expires_at.is_empty() {
            let t = parse_time(&r.spec.expires_at)
                .map_err(|e| Invalid::one(format!("invalid expires_at: {e}")))?;
            r.status.expires_at = skyport_resource::format_time(t);
        } else if r.spec.ttl_seconds > 0 && r.status.expires_at.is_empty() {
            let t = now + time::Duration::seconds(r.spec.ttl_seconds);
            r.status.expires_at = skyport_resource::format_time(t);
        }
        if expired_at(r, now) && !r.status.expired {
            r.status.expired = true;
            r.status.expired_at = skyport_resource::format_time(now);
        }
        Ok(())
    }
}

/// Whether profile `r` has expired by `now`.
pub fn expired_at(r: &Resource<Profile>, now: time::OffsetDateTime) -> bool {
    !r.status.expires_at.is_empty() && parse_time(&r.status.expires_at).is_ok_and(|t| now > t)
}

/// The profiles collection: stored as they are; never deleted.
#[derive(Clone)]
pub struct Profiles(pub Stored<Profile>);

#[async_trait::async_trait]
impl Collection<Profile> for Profiles {
    async fn list(&self) -> Result<Vec<Resource<Profile>>, CollectionError> {
        self.0.list().await
    }
    async fn get(&self, uid: &str) -> Result<Option<Resource<Profile>>, CollectionError> {
        self.0.get(uid).await
    }
    async fn insert(&self, r: Resource<Profile>) -> Result<Resource<Profile>, CollectionError> {
        self.0.insert(r).await
    }
    async fn update(
        &self,
        uid: &str,
        change: Change<'_, Profile>,
    ) -> Result<Option<Resource<Profile>>, CollectionError> {
        self.0.update(uid, change).await
    }
    async fn delete(&self, uid: &str) -> Result<Option<Resource<Profile>>, CollectionError> {
        match self.0.get(uid).await? {
            None => Ok(None),
            Some(_) => Err(CollectionError::NotAllowed(
                "profiles are not deleted: they expire (set expires_at or ttl_seconds)".into(),
            )),
        }
    }
}

/// The live profile named `name` (the newest of that name), with its parents, child first;
/// `None` if there is none or it has expired. `all` is every stored profile.
pub fn chain(all: &[Resource<Profile>], name: &str) -> Option<Vec<Resource<Profile>>> {
    let now = time::OffsetDateTime::now_utc();
    let newest = |n: &str| {
        all.iter()
            .filter(|p| p.metadata.name == n)
            .max_by(|a, b| a.metadata.updated_at.cmp(&b.metadata.updated_at))
            .cloned()
    };
    let first = newest(name).filter(|p| !expired_at(p, now))?;
    let mut out = vec![first];
    while out.len() < MAX_PARENTS {
        let parent = out
            .last()
            .map(|p| p.spec.parent_profile.clone())
            .unwrap_or_default();
        if parent.is_empty() || out.iter().any(|p| p.metadata.name == parent) {
            break;
        }
        match newest(&parent).filter(|p| !expired_at(p, now)) {
            Some(p) => out.push(p),
            None => break,
        }
    }
    Some(out)
}

/// Whether a profile's `groupRef` names group `label` (by name, or by its uid).
pub fn applies_to(p: &Resource<Profile>, label: &str) -> bool {
    p.spec.group_ref == label || p.spec.group_ref == format!("group-{label}")
}
