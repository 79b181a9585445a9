//! OpenCHAMI v0.2's `metadata-service` (reference `openchami-v0.2.md` §3) over the same data as
//! `/cloud-init`: the `ClusterDefaults`, `Group` and `InstanceInfo` resources are views of the
//! cloud-init service's records (one record each, as before), so an admin can write through
//! either generation and a node reads the same data through either ([`views`]); the node-facing
//! documents are rendered as metadata-service renders them ([`render`]).
//!
//! The kinds' uids are their records' keys (`group-compute`, `instanceinfo-x1000c0s0b0n0`,
//! `clusterdefaults-defaults`) rather than random: the key is what both generations share.

pub mod profiles;
pub mod render;
pub mod routes;
pub mod template;
pub mod views;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skyport_resource::{Invalid, Kind, Resource};
use skyport_wire::de::Shape;

/// A URL as upstream's `url` validation tag accepts it for `base_url`: a scheme and a host.
fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
}

/// `ClusterDefaults.spec`, in upstream's field order; `base_url` and `cluster_name` are always
/// written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefaultsSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub base_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloud_provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub availability_zone: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub short_name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nid_length: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The status of ClusterDefaults and InstanceInfo; `ready` is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadyStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub ready: bool,
}

const READY: Shape = Shape::Struct(&[
    ("phase", Shape::Opaque),
    ("message", Shape::Opaque),
    ("ready", Shape::Opaque),
]);

pub struct ClusterDefaults;

impl Kind for ClusterDefaults {
    const KIND: &'static str = "ClusterDefaults";
    // Upstream's generator pluralises by adding `s`: `/clusterdefaultss`.
    const PLURAL: &'static str = "clusterdefaultss";
    const UID_PREFIX: &'static str = "clusterdefaults";
    type Spec = DefaultsSpec;
    type Status = ReadyStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("description", Shape::Opaque),
        ("base_url", Shape::Opaque),
        ("cloud_provider", Shape::Opaque),
        ("region", Shape::Opaque),
        ("availability_zone", Shape::Opaque),
        ("cluster_name", Shape::Opaque),
        ("short_name", Shape::Opaque),
        ("nid_length", Shape::Opaque),
        ("public_keys", Shape::Opaque),
    ]);
    const STATUS: Shape = READY;

    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        let s = &r.spec;
        let mut out = Vec::new();
        if s.description.chars().count() > 200 {
            out.push("description must be at most 200".to_string());
        }
        if s.base_url.is_empty() {
            out.push("base_url is required".into());
        } else if !is_url(&s.base_url) {
            out.push("base_url must be a valid URL".into());
        } else if let Err(why) = crate::check_base_url(&s.base_url) {
            out.push(format!("base_url {why}"));
        }
        if s.cluster_name.is_empty() {
            out.push("cluster_name is required".into());
        }
        if s.nid_length < 0 {
            out.push("nid_length must be at least 0".into());
        } else if s.nid_length > 10 {
            out.push("nid_length must be at most 10".into());
        }
        Invalid::check(out)
    }
}

/// `Group.spec`: a template (cloud-config text with variables) and metadata (strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(
        rename = "metaData",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub meta_data: BTreeMap<String, String>,
    #[serde(
        rename = "osVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
}

/// One entry of a Group's template history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateVersion {
    pub version: String,
    pub timestamp: String,
    pub valid: bool,
    #[serde(
        rename = "errorMessage",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub error_message: String,
}

/// `Group.status`, filled by validation; `valid` is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    #[serde(default)]
    pub valid: bool,
    #[serde(
        rename = "errorMessage",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub error_message: String,
    #[serde(
        rename = "requiredVariables",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub required_variables: Vec<String>,
    #[serde(
        rename = "currentTemplateVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub current_template_version: String,
    #[serde(
        rename = "templateHistory",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub template_history: Vec<TemplateVersion>,
}

/// How many template versions a Group's status keeps (upstream's 10).
pub const TEMPLATE_HISTORY: usize = 10;

pub struct Group;

impl Kind for Group {
    const KIND: &'static str = "Group";
    const PLURAL: &'static str = "groups";
    const UID_PREFIX: &'static str = "group";
    type Spec = GroupSpec;
    type Status = GroupStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("description", Shape::Opaque),
        ("template", Shape::Opaque),
        ("metaData", Shape::Opaque),
        ("osVersion", Shape::Opaque),
    ]);
    const STATUS: Shape = Shape::Struct(&[
        ("valid", Shape::Opaque),
        ("errorMessage", Shape::Opaque),
        ("requiredVariables", Shape::Opaque),
        ("currentTemplateVersion", Shape::Opaque),
        ("templateHistory", Shape::Opaque),
    ]);

    /// Upstream's `Validate`: the template's variables resolve, it renders, the result is
    /// YAML; then the status records the variables and the template's version.
    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        if r.metadata.name.is_empty() {
            return Err(Invalid::one("name is required"));
        }
        let vars = if r.spec.template.is_empty() {
            Vec::new()
        } else {
            template::check(&r.spec.template, &r.spec.meta_data).map_err(Invalid::one)?
        };
        let version = template_version(&r.spec.template);
        let st = &mut r.status;
        st.valid = true;
        st.error_message.clear();
        st.required_variables = vars;
        st.current_template_version = version.clone();
        let now = skyport_resource::timestamp();
        match st
            .template_history
            .iter_mut()
            .find(|h| h.version == version)
        {
            Some(h) => {
                h.timestamp = now;
                h.valid = true;
            }
            None => st.template_history.push(TemplateVersion {
                version,
                timestamp: now,
                valid: true,
                error_message: String::new(),
            }),
        }
        let excess = st.template_history.len().saturating_sub(TEMPLATE_HISTORY);
        st.template_history.drain(..excess);
        Ok(())
    }
}

/// `v-` and the first 4 bytes of the template's SHA-256, in hex.
pub fn template_version(t: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(t.as_bytes());
    format!("v-{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// `InstanceInfo.spec`; `instance_id` is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloud_init_base_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_profile: String,
}

pub struct InstanceInfo;

impl Kind for InstanceInfo {
    const KIND: &'static str = "InstanceInfo";
    const PLURAL: &'static str = "instanceinfos";
    const UID_PREFIX: &'static str = "instanceinfo";
    type Spec = InstanceSpec;
    type Status = ReadyStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("description", Shape::Opaque),
        ("instance_id", Shape::Opaque),
        ("local_hostname", Shape::Opaque),
        ("hostname", Shape::Opaque),
        ("cloud_init_base_url", Shape::Opaque),
        ("public_keys", Shape::Opaque),
        ("default_profile", Shape::Opaque),
    ]);
    const STATUS: Shape = READY;

    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        let s = &r.spec;
        let mut out = Vec::new();
        if s.description.chars().count() > 200 {
            out.push("description must be at most 200".to_string());
        }
        if s.instance_id.is_empty() {
            out.push("instance_id is required".into());
        }
        if !s.cloud_init_base_url.is_empty() {
            if !is_url(&s.cloud_init_base_url) {
                out.push("cloud_init_base_url must be a valid URL".into());
            } else if let Err(why) = crate::check_base_url(&s.cloud_init_base_url) {
                out.push(format!("cloud_init_base_url {why}"));
            }
        }
        Invalid::check(out)
    }
}
