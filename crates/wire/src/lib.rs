//! OpenCHAMI SMD wire types: the JSON that crosses `/hsm/v2`, field for field and in upstream's
//! key order, so scripts written against SMD (and `ochami`, Magellan, BSS, cloud-init, coresmd)
//! read Skyport's answers unchanged.
//!
//! Output types (`Component`, `RedfishEndpoint`, ...) hold canonical values: the inventory
//! service validates and normalises before it builds them. Input types (`*In`, `*Patch`) are
//! lenient where upstream is lenient (NIDs as numbers or numeric strings, unknown keys ignored) and
//! carry raw strings so the service can reject bad values with an error naming the field.
//! Magellan's discovery payload (`SchemaVersion: 1`) is [`discovery`], one set of types that the
//! crawler writes and the inventory reads tolerantly (every field optional, strings or numbers
//! accepted, because BMCs report anything).

pub mod de;
pub mod discovery;
pub mod hwinv;
pub mod legacy;
pub mod locks;
pub mod pcs;
pub mod scn;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"code":0,"message":"..."}`: SMD's non-error message (code is always 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub code: i32,
    pub message: String,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Self {
        Message {
            code: 0,
            message: message.into(),
        }
    }
}

/// `{"URI":"/hsm/v2/..."}`: one element of a create response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUri {
    #[serde(rename = "URI")]
    pub uri: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------------------------
// State/Components

/// A component as SMD returns it (hms-base `Component`), with `omitempty` where upstream has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Component {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "State", default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(rename = "Flag", default, skip_serializing_if = "String::is_empty")]
    pub flag: String,
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(
        rename = "SoftwareStatus",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub software_status: String,
    #[serde(rename = "Role", default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(rename = "SubRole", default, skip_serializing_if = "String::is_empty")]
    pub sub_role: String,
    #[serde(rename = "NID", default, skip_serializing_if = "Option::is_none")]
    pub nid: Option<i64>,
    #[serde(rename = "Subtype", default, skip_serializing_if = "String::is_empty")]
    pub subtype: String,
    #[serde(rename = "NetType", default, skip_serializing_if = "String::is_empty")]
    pub net_type: String,
    #[serde(rename = "Arch", default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    #[serde(rename = "Class", default, skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(
        rename = "ReservationDisabled",
        default,
        skip_serializing_if = "is_false"
    )]
    pub reservation_disabled: bool,
    #[serde(rename = "Locked", default, skip_serializing_if = "is_false")]
    pub locked: bool,
}

/// `{"Components":[...]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ComponentArray {
    #[serde(rename = "Components")]
    pub components: Vec<Component>,
}

/// Declares [`ComponentIn`] and [`ComponentPatch`] from one list of the fields a client may set,
/// so both bodies accept the same keys and aliases.
macro_rules! component_inputs {
    ($($(#[$attr:meta])* $field:ident: $ty:ty,)*) => {
        /// A component as a client sends it; every value is checked by the service.
        #[derive(Debug, Clone, PartialEq, Deserialize, Default)]
        pub struct ComponentIn {
            #[serde(rename = "ID", alias = "id", default)]
            pub id: Option<String>,
            /// Ignored: the type is always derived from the xname.
            #[serde(rename = "Type", alias = "type", default)]
            pub r#type: Option<String>,
            $($(#[$attr])* pub $field: $ty,)*
        }

        /// A partial update of one component (the PATCH routes); absent fields are left alone.
        #[derive(Debug, Clone, PartialEq, Deserialize, Default)]
        pub struct ComponentPatch {
            $($(#[$attr])* pub $field: $ty,)*
        }

        impl ComponentPatch {
            /// Whether no field is given.
            pub fn is_empty(&self) -> bool {
                true $(&& self.$field.is_none())*
            }
        }
    };
}

component_inputs! {
    #[serde(rename = "State", alias = "state", default)]
    state: Option<String>,
    #[serde(rename = "Flag", alias = "flag", default)]
    flag: Option<String>,
    #[serde(rename = "Enabled", alias = "enabled", default)]
    enabled: Option<bool>,
    #[serde(rename = "SoftwareStatus", alias = "softwareStatus", alias = "softwarestatus", default)]
    software_status: Option<String>,
    #[serde(rename = "Role", alias = "role", default)]
    role: Option<String>,
    #[serde(rename = "SubRole", alias = "subRole", alias = "subrole", default)]
    sub_role: Option<String>,
    #[serde(rename = "NID", alias = "nid", default, deserialize_with = "de::opt_i64")]
    nid: Option<i64>,
    #[serde(rename = "Subtype", alias = "subtype", default)]
    subtype: Option<String>,
    #[serde(rename = "NetType", alias = "netType", alias = "nettype", default)]
    net_type: Option<String>,
    #[serde(rename = "Arch", alias = "arch", default)]
    arch: Option<String>,
    #[serde(rename = "Class", alias = "class", default)]
    class: Option<String>,
}

/// POST /State/Components body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ComponentsPost {
    #[serde(rename = "Components", alias = "components")]
    pub components: Vec<ComponentIn>,
    #[serde(rename = "force", alias = "Force", default)]
    pub force: bool,
}

/// PUT /State/Components/{xname} body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ComponentPut {
    #[serde(rename = "Component", alias = "component")]
    pub component: ComponentIn,
    #[serde(rename = "Force", alias = "force", default)]
    pub force: bool,
}

/// One entry of PATCH /State/Components/BulkNID.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NidPatch {
    #[serde(rename = "ID", alias = "id")]
    pub id: String,
    #[serde(
        rename = "NID",
        alias = "nid",
        default,
        deserialize_with = "de::opt_i64"
    )]
    pub nid: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NidPatchArray {
    #[serde(rename = "Components", alias = "components")]
    pub components: Vec<NidPatch>,
}

// ---------------------------------------------------------------------------------------------
// Inventory/RedfishEndpoints

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DiscoveryInfo {
    #[serde(
        rename = "LastDiscoveryAttempt",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_discovery_attempt: String,
    #[serde(rename = "LastDiscoveryStatus", default)]
    pub last_discovery_status: String,
    #[serde(
        rename = "RedfishVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub redfish_version: String,
}

/// The `Password` key of a Redfish endpoint: always `""` on the wire, whatever was sent.
/// Upstream always sends the key (its schemas require it; SMD with Vault sends `""`); Skyport
/// never stores a BMC password, so there is nothing else it could send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoPassword;

impl Serialize for NoPassword {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

impl<'de> Deserialize<'de> for NoPassword {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoPassword)
    }
}

/// A Redfish endpoint (BMC) as SMD returns it, except that `Password` is never stored or
/// returned (upstream echoes it back): it is always `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RedfishEndpoint {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Hostname", default)]
    pub hostname: String,
    #[serde(rename = "Domain", default)]
    pub domain: String,
    #[serde(rename = "FQDN", default)]
    pub fqdn: String,
    #[serde(rename = "Enabled", default)]
    pub enabled: bool,
    #[serde(rename = "UUID", default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    #[serde(rename = "User", default)]
    pub user: String,
    #[serde(rename = "Password", default)]
    pub password: NoPassword,
    #[serde(rename = "UseSSDP", default, skip_serializing_if = "is_false")]
    pub use_ssdp: bool,
    #[serde(rename = "MACRequired", default, skip_serializing_if = "is_false")]
    pub mac_required: bool,
    #[serde(rename = "MACAddr", default, skip_serializing_if = "String::is_empty")]
    pub mac_addr: String,
    #[serde(
        rename = "IPAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ip_address: String,
    #[serde(rename = "RediscoverOnUpdate", default)]
    pub rediscover_on_update: bool,
    #[serde(
        rename = "TemplateID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub template_id: String,
    #[serde(rename = "DiscoveryInfo", default)]
    pub discovery_info: DiscoveryInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RedfishEndpointArray {
    #[serde(rename = "RedfishEndpoints")]
    pub redfish_endpoints: Vec<RedfishEndpoint>,
}

/// A Redfish endpoint as a client (admin, `ochami`, Magellan, the edge agent) sends it. With
/// `SchemaVersion >= 1` it also carries the crawl of the BMC ([`discovery`]'s `Systems` and
/// `Managers`).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct RedfishEndpointIn {
    #[serde(
        rename = "ID",
        alias = "id",
        default,
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(rename = "Type", default, deserialize_with = "de::opt_string")]
    pub r#type: Option<String>,
    #[serde(rename = "Name", default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    #[serde(rename = "Hostname", default, deserialize_with = "de::opt_string")]
    pub hostname: Option<String>,
    #[serde(rename = "Domain", default, deserialize_with = "de::opt_string")]
    pub domain: Option<String>,
    #[serde(rename = "FQDN", default, deserialize_with = "de::opt_string")]
    pub fqdn: Option<String>,
    #[serde(rename = "Enabled", default)]
    pub enabled: Option<bool>,
    #[serde(rename = "UUID", default, deserialize_with = "de::opt_string")]
    pub uuid: Option<String>,
    #[serde(rename = "User", default, deserialize_with = "de::opt_string")]
    pub user: Option<String>,
    /// Accepted so clients need not change, then dropped: credentials never reach storage.
    #[serde(rename = "Password", default, deserialize_with = "de::opt_string")]
    pub password: Option<String>,
    #[serde(rename = "UseSSDP", default)]
    pub use_ssdp: Option<bool>,
    #[serde(rename = "MACRequired", alias = "MacRequired", default)]
    pub mac_required: Option<bool>,
    #[serde(rename = "MACAddr", default, deserialize_with = "de::opt_string")]
    pub mac_addr: Option<String>,
    #[serde(rename = "IPAddress", default, deserialize_with = "de::opt_string")]
    pub ip_address: Option<String>,
    #[serde(rename = "RediscoverOnUpdate", default)]
    pub rediscover_on_update: Option<bool>,
    #[serde(rename = "TemplateID", default, deserialize_with = "de::opt_string")]
    pub template_id: Option<String>,
    #[serde(rename = "SchemaVersion", default, deserialize_with = "de::opt_f64")]
    pub schema_version: Option<f64>,
    #[serde(rename = "Systems", default, deserialize_with = "de::vec_or_null")]
    pub systems: Vec<discovery::System>,
    #[serde(rename = "Managers", default, deserialize_with = "de::vec_or_null")]
    pub managers: Vec<discovery::Manager>,
    /// A crawl's services ([`discovery::Service`]); `None` when the document has none, which
    /// leaves the stored ServiceEndpoints as they are.
    #[serde(rename = "Services", default)]
    pub services: Option<Vec<discovery::Service>>,
}

/// PATCH /Inventory/RedfishEndpoints/{xname}: every field optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct RedfishEndpointPatch {
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    #[serde(rename = "Hostname", default)]
    pub hostname: Option<String>,
    #[serde(rename = "Domain", default)]
    pub domain: Option<String>,
    #[serde(rename = "FQDN", default)]
    pub fqdn: Option<String>,
    #[serde(rename = "Enabled", default)]
    pub enabled: Option<bool>,
    #[serde(rename = "UUID", default)]
    pub uuid: Option<String>,
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "Password", default)]
    pub password: Option<String>,
    #[serde(rename = "UseSSDP", default)]
    pub use_ssdp: Option<bool>,
    #[serde(rename = "MACRequired", alias = "MacRequired", default)]
    pub mac_required: Option<bool>,
    #[serde(rename = "MACAddr", default)]
    pub mac_addr: Option<String>,
    #[serde(rename = "IPAddress", default)]
    pub ip_address: Option<String>,
    #[serde(rename = "RediscoverOnUpdate", default)]
    pub rediscover_on_update: Option<bool>,
    #[serde(rename = "TemplateID", default)]
    pub template_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Inventory/ComponentEndpoints

/// A ComponentEndpoint: a Redfish resource (system, manager) of a Redfish endpoint. The
/// RF-type-specific block (`RedfishSystemInfo`, `RedfishManagerInfo`, ...) is kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ComponentEndpoint {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "Domain", default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(rename = "FQDN", default, skip_serializing_if = "String::is_empty")]
    pub fqdn: String,
    #[serde(rename = "RedfishType")]
    pub redfish_type: String,
    /// Always sent, even empty (no `omitempty` upstream).
    #[serde(rename = "RedfishSubtype", default)]
    pub redfish_subtype: String,
    #[serde(rename = "MACAddr", default, skip_serializing_if = "String::is_empty")]
    pub mac_addr: String,
    #[serde(rename = "UUID", default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    #[serde(rename = "OdataID")]
    pub odata_id: String,
    #[serde(rename = "RedfishEndpointID")]
    pub redfish_endpoint_id: String,
    #[serde(rename = "Enabled")]
    pub enabled: bool,
    #[serde(rename = "RedfishEndpointFQDN")]
    pub redfish_endpoint_fqdn: String,
    #[serde(rename = "RedfishURL")]
    pub redfish_url: String,
    #[serde(rename = "ComponentEndpointType")]
    pub component_endpoint_type: String,
    #[serde(
        rename = "RedfishSystemInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redfish_system_info: Option<Value>,
    #[serde(
        rename = "RedfishManagerInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redfish_manager_info: Option<Value>,
    #[serde(
        rename = "RedfishChassisInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redfish_chassis_info: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ComponentEndpointArray {
    #[serde(rename = "ComponentEndpoints")]
    pub component_endpoints: Vec<ComponentEndpoint>,
}

// ---------------------------------------------------------------------------------------------
// Inventory/EthernetInterfaces

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IpMapping {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "Network", default, skip_serializing_if = "String::is_empty")]
    pub network: String,
}

/// An Ethernet interface as SMD returns it; every key always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EthernetInterface {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "MACAddress")]
    pub mac_address: String,
    #[serde(rename = "LastUpdate")]
    pub last_update: String,
    #[serde(rename = "ComponentID")]
    pub component_id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "IPAddresses")]
    pub ip_addresses: Vec<IpMapping>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct IpMappingIn {
    #[serde(rename = "IPAddress", alias = "ipaddress", default)]
    pub ip_address: Option<String>,
    #[serde(rename = "Network", alias = "network", default)]
    pub network: Option<String>,
}

/// POST /Inventory/EthernetInterfaces body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct EthernetInterfaceIn {
    #[serde(rename = "Description", alias = "description", default)]
    pub description: Option<String>,
    #[serde(
        rename = "MACAddress",
        alias = "macaddress",
        alias = "MACAddr",
        default
    )]
    pub mac_address: Option<String>,
    #[serde(rename = "ComponentID", alias = "componentid", default)]
    pub component_id: Option<String>,
    #[serde(
        rename = "IPAddresses",
        alias = "ipaddresses",
        default,
        deserialize_with = "de::vec_or_null"
    )]
    pub ip_addresses: Vec<IpMappingIn>,
}

/// PATCH /Inventory/EthernetInterfaces/{id} body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct EthernetInterfacePatch {
    #[serde(rename = "Description", alias = "description", default)]
    pub description: Option<String>,
    #[serde(rename = "ComponentID", alias = "componentid", default)]
    pub component_id: Option<String>,
    #[serde(rename = "IPAddresses", alias = "ipaddresses", default)]
    pub ip_addresses: Option<Vec<IpMappingIn>>,
}

/// PATCH /Inventory/EthernetInterfaces/{id}/IPAddresses/{ip} body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct IpMappingPatch {
    #[serde(rename = "Network", alias = "network", default)]
    pub network: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// groups and memberships

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Members {
    #[serde(default)]
    pub ids: Vec<String>,
}

/// A group as SMD returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Group {
    pub label: String,
    #[serde(default)]
    pub description: String,
    #[serde(
        rename = "exclusiveGroup",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub exclusive_group: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub members: Members,
}

/// POST /groups body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct GroupIn {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "exclusiveGroup", alias = "exclusivegroup", default)]
    pub exclusive_group: Option<String>,
    #[serde(default, deserialize_with = "de::vec_or_null")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub members: Option<Members>,
}

/// PATCH /groups/{label} body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct GroupPatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// POST /groups/{label}/members body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemberId {
    pub id: String,
}

/// PUT /groups/{label}/members body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemberList {
    #[serde(default)]
    pub group: Option<String>,
    pub ids: Vec<String>,
}

/// A partition as SMD returns it (`pkg/sm/groups.go`): description and tags only when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Partition {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub members: Members,
}

/// POST /partitions body.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct PartitionIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "de::vec_or_null")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub members: Option<Members>,
}

/// A node's planned NID, Role and SubRole (`Defaults/NodeMaps`, SMD's `pkg/sm/nodemap.go`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeMap {
    #[serde(rename = "ID", alias = "id", default)]
    pub id: String,
    #[serde(rename = "NID", alias = "nid", default)]
    pub nid: i64,
    #[serde(
        rename = "Role",
        alias = "role",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub role: String,
    #[serde(
        rename = "SubRole",
        alias = "subRole",
        alias = "subrole",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub sub_role: String,
    #[serde(
        rename = "NodeInfo",
        alias = "nodeInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeMapArray {
    #[serde(rename = "NodeMaps")]
    pub node_maps: Vec<NodeMap>,
}

/// What powers a component (`sysinfo/powermaps`, SMD's `pkg/sm/powermap.go`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PowerMap {
    #[serde(default)]
    pub id: String,
    #[serde(
        rename = "poweredBy",
        alias = "poweredby",
        default,
        deserialize_with = "de::vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub powered_by: Vec<String>,
}

/// GET /memberships element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Membership {
    pub id: String,
    #[serde(rename = "groupLabels")]
    pub group_labels: Vec<String>,
    #[serde(rename = "partitionName")]
    pub partition_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_omits_empty_fields_like_smd() {
        let c = Component {
            id: "x1c0s0b0n0".into(),
            r#type: "Node".into(),
            state: "Ready".into(),
            flag: "OK".into(),
            enabled: Some(true),
            role: "Compute".into(),
            nid: Some(1),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap_or_default(),
            r#"{"ID":"x1c0s0b0n0","Type":"Node","State":"Ready","Flag":"OK","Enabled":true,"Role":"Compute","NID":1}"#
        );
    }

    #[test]
    fn component_bodies_take_the_same_keys_and_aliases() {
        // The PATCH body once took `softwarestatus` and the POST/PUT body did not; both take
        // every spelling now.
        for key in ["SoftwareStatus", "softwareStatus", "softwarestatus"] {
            let body = format!(r#"{{"{key}":"AdminStatus"}}"#);
            let full: ComponentIn = serde_json::from_str(&body).unwrap_or_default();
            let patch: ComponentPatch = serde_json::from_str(&body).unwrap_or_default();
            assert_eq!(
                full.software_status.as_deref(),
                Some("AdminStatus"),
                "{key}"
            );
            assert_eq!(patch.software_status, full.software_status, "{key}");
        }
        let lower = r#"{"state":"On","flag":"OK","enabled":false,"role":"Compute","subrole":"Worker",
            "nid":"7","subtype":"River","nettype":"Sling","arch":"X86","class":"River"}"#;
        let full: ComponentIn = serde_json::from_str(lower).unwrap_or_default();
        let patch: ComponentPatch = serde_json::from_str(lower).unwrap_or_default();
        assert_eq!(full.nid, Some(7));
        assert!(!patch.is_empty() && ComponentPatch::default().is_empty());
        assert_eq!(
            (
                patch.state,
                patch.flag,
                patch.enabled,
                patch.role,
                patch.sub_role
            ),
            (
                full.state,
                full.flag,
                full.enabled,
                full.role,
                full.sub_role
            )
        );
        assert_eq!(
            (
                patch.nid,
                patch.subtype,
                patch.net_type,
                patch.arch,
                patch.class
            ),
            (full.nid, full.subtype, full.net_type, full.arch, full.class)
        );
    }

    #[test]
    fn nid_accepts_numbers_and_numeric_strings() {
        let a: ComponentIn =
            serde_json::from_str(r#"{"ID":"x1c0s0b0n0","NID":"12"}"#).unwrap_or_default();
        assert_eq!(a.nid, Some(12));
        let b: ComponentIn =
            serde_json::from_str(r#"{"ID":"x1c0s0b0n0","NID":12}"#).unwrap_or_default();
        assert_eq!(b.nid, Some(12));
        assert!(serde_json::from_str::<ComponentIn>(r#"{"NID":"twelve"}"#).is_err());
        assert!(serde_json::from_str::<ComponentIn>(r#"{"NID":1.5}"#).is_err());
    }
}

/// SMD's `ServiceEndpoint`: a Redfish service (accounts, sessions, events, tasks, updates) of a
/// BMC, as its crawl found it. `RedfishEndpointFQDN` and `RedfishURL` (the FQDN followed by
/// `OdataID`) are the endpoint's as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEndpoint {
    #[serde(rename = "RedfishEndpointID")]
    pub redfish_endpoint_id: String,
    #[serde(rename = "RedfishType")]
    pub redfish_type: String,
    #[serde(
        rename = "RedfishSubtype",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub redfish_subtype: String,
    #[serde(rename = "UUID", default)]
    pub uuid: String,
    #[serde(rename = "OdataID")]
    pub odata_id: String,
    #[serde(rename = "RedfishEndpointFQDN", default)]
    pub fqdn: String,
    #[serde(rename = "RedfishURL", default)]
    pub url: String,
    #[serde(
        rename = "ServiceInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_info: Option<serde_json::Value>,
}

/// `{"ServiceEndpoints": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceEndpointArray {
    #[serde(rename = "ServiceEndpoints")]
    pub service_endpoints: Vec<ServiceEndpoint>,
}
