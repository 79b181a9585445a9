//! The metadata service: OpenCHAMI cloud-init's API under `/cloud-init` over any Skyport store.
//!
//! A node is identified by its IP address (the first `X-Forwarded-For` entry, else the peer
//! address), looked up in the inventory's Ethernet interfaces in the same store; its groups are
//! its inventory group memberships. Admins keep cluster defaults, per-group data and cloud-config
//! files, and per-instance overrides here. The shapes follow upstream's `metadata.go`: JSON field
//! names with dashes, YAML field names with underscores under `instance_data`.

pub mod bss;
mod error;
pub mod resources;
pub mod routes;

use skyport_inventory::ethernet::InterfaceFilter;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyport_inventory::Inventory;
use skyport_store::{Record, Store, StoreError, Table, Write};
use skyport_wire::Component;

pub use error::MetadataError;
pub use routes::{access, router};

pub const DEFAULTS: Table = Table("CloudInitDefaults");
pub const GROUPS: Table = Table("CloudInitGroups");
pub const INSTANCES: Table = Table("CloudInitInstances");

/// The cloud-init tables a site's edge agent copies, and metadata-service's profiles.
pub const SYNCED: [Table; 4] = [DEFAULTS, GROUPS, INSTANCES, resources::profiles::PROFILES];

/// Keeps a site's share of the cloud-init data in `tables` (edge sync): the installation-wide
/// defaults (every site gets them), its groups' data, its nodes' instance data.
pub fn keep_share(
    tables: &mut std::collections::BTreeMap<Table, Vec<skyport_store::Record>>,
    groups: &std::collections::BTreeSet<String>,
    xnames: &std::collections::BTreeSet<String>,
) {
    tables
        .entry(GROUPS)
        .or_default()
        .retain(|r| groups.contains(&r.id));
    tables
        .entry(INSTANCES)
        .or_default()
        .retain(|r| xnames.contains(&r.id));
}

/// Where a cloud-init record of table `t` belongs (edge sync): the defaults everywhere, a
/// group's data where the inventory group has members, a node's instance data at its xname.
/// `None` if `t` is not one of the cloud-init tables.
pub fn placement(t: Table, id: &str) -> Option<skyport_sites::Placement> {
    use skyport_sites::Placement;
    if t == DEFAULTS || t == resources::profiles::PROFILES {
        Some(Placement::Everywhere)
    } else if t == GROUPS {
        Some(Placement::Group(id.to_string()))
    } else if t == INSTANCES {
        Some(Placement::single(id))
    } else {
        None
    }
}

/// The key of the cloud-init data of group `label` (it goes where the group has members).
pub fn key_by_group(label: &str) -> (Table, String) {
    (GROUPS, label.to_string())
}

/// Whether edge sync reads `t` whole for a site's snapshot (the defaults, and group data:
/// few records, placed by group rather than by node).
pub fn read_whole(t: Table) -> bool {
    t == DEFAULTS || t == GROUPS || t == resources::profiles::PROFILES
}

/// `POST /admin/cluster-defaults` body (`cistore.ClusterDefaults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterDefaults {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloud_provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(
        rename = "availability-zone",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub availability_zone: String,
    #[serde(
        rename = "cluster-name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_name: String,
    #[serde(rename = "public-keys", default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    #[serde(rename = "base-url", default, skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    #[serde(
        rename = "boot-subnet",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub boot_subnet: String,
    #[serde(
        rename = "wg-subnet",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub wg_subnet: String,
    #[serde(
        rename = "short-name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub short_name: String,
    #[serde(rename = "nid-length", default, skip_serializing_if = "is_zero")]
    pub nid_length: u32,
    /// What the metadata-service view adds ([`resources::views::Extra`]); never shown or
    /// taken on `/cloud-init`.
    #[serde(
        rename = "skyport:resource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource: Option<resources::views::Extra>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A group's cloud-config file (`cistore.CloudConfigFile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CloudConfigFile {
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filename: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encoding: String,
}

/// Group data (`cistore.GroupData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GroupData {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "meta-data", default, skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<CloudConfigFile>,
    /// What the metadata-service view adds; never shown or taken on `/cloud-init`.
    #[serde(
        rename = "skyport:resource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource: Option<resources::views::Extra>,
}

/// Per-node overrides (`cistore.OpenCHAMIInstanceInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(
        rename = "instance-id",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub instance_id: String,
    #[serde(
        rename = "local-hostname",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub local_hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(
        rename = "instance-type",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub instance_type: String,
    #[serde(
        rename = "cloud-init-base-url",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cloud_init_base_url: String,
    #[serde(rename = "public-keys", default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    /// What the metadata-service view adds; never shown or taken on `/cloud-init`.
    #[serde(
        rename = "skyport:resource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource: Option<resources::views::Extra>,
}

/// `meta-data` as YAML (upstream's yaml tags).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaData {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    #[serde(rename = "local-hostname")]
    pub local_hostname: String,
    pub hostname: String,
    #[serde(rename = "cluster-name")]
    pub cluster_name: String,
    pub instance_data: InstanceData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceData {
    pub v1: InstanceDataV1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct InstanceDataV1 {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub availability_zone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub local_ipv4: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cloud_provider: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    pub vendor_data: VendorData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VendorData {
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cloud_init_base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nid: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub_role: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    pub groups: BTreeMap<String, serde_json::Map<String, Value>>,
}

/// A node as the metadata service sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub component: Component,
    pub ip: String,
    pub groups: Vec<String>,
}

#[derive(Clone)]
pub struct MetadataService {
    store: Arc<dyn Store>,
    inv: Inventory,
    /// Used when cluster defaults name no `base-url`.
    default_base_url: Arc<String>,
    /// Where nodes' user-data fetches are recorded (BSS's endpoint history).
    history: skyport_boot::history::History,
}

/// The key under which a cloud-init record keeps its metadata-service view's additions.
pub const EXTRA_KEY: &str = "skyport:resource";

/// Widest zero-padding `nid-length` may ask for in generated hostnames.
pub const MAX_NID_LENGTH: u32 = 12;

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: Table,
    r: &Record,
) -> Result<T, MetadataError> {
    serde_json::from_str(&r.body).map_err(|source| MetadataError::Corrupt {
        table,
        id: r.id.clone(),
        source,
    })
}

/// `value` as the stored JSON of record `table`/`id`.
fn encode(table: Table, id: &str, value: &impl Serialize) -> Result<String, MetadataError> {
    serde_json::to_string(value).map_err(|source| MetadataError::Encode {
        table,
        id: id.to_string(),
        source,
    })
}

/// Group names: the inventory's label rules (lowercase `[-a-z0-9:._]+`).
pub(crate) fn group_name(s: &str) -> Result<String, MetadataError> {
    let n = s.trim().to_ascii_lowercase();
    if skyport_inventory::filters::valid_label(&n) {
        Ok(n)
    } else {
        Err(MetadataError::BadGroupName {
            name: s.to_string(),
        })
    }
}

impl MetadataService {
    pub fn new(store: Arc<dyn Store>, default_base_url: impl Into<String>) -> Self {
        MetadataService {
            inv: Inventory::new(store.clone()),
            history: skyport_boot::history::History::inline(store.clone()),
            store,
            default_base_url: Arc::new(default_base_url.into()),
        }
    }

    /// Records user-data fetches through `history` instead of writing each one before answering.
    pub fn with_history(mut self, history: skyport_boot::history::History) -> Self {
        self.history = history;
        self
    }

    pub fn history(&self) -> &skyport_boot::history::History {
        &self.history
    }

    // ---- admin ----------------------------------------------------------------------------

    pub async fn defaults(&self) -> Result<ClusterDefaults, MetadataError> {
        match self.store.get(DEFAULTS, "defaults").await? {
            Some(r) => decode(DEFAULTS, &r),
            None => Ok(ClusterDefaults::default()),
        }
    }

    pub async fn set_defaults(&self, d: &ClusterDefaults) -> Result<(), MetadataError> {
        if !d.base_url.is_empty() {
            check_base_url(&d.base_url).map_err(|why| MetadataError::BadBaseUrl {
                field: "base-url",
                value: d.base_url.clone(),
                why,
            })?;
        }
        if d.nid_length > MAX_NID_LENGTH {
            return Err(MetadataError::NidLengthTooLarge {
                value: d.nid_length,
            });
        }
        self.upsert(DEFAULTS, "defaults", d).await
    }

    /// Creates or replaces one stored record with `value`, keeping what the metadata-service
    /// view added to it (a cloud-init write replaces the cloud-init fields only).
    async fn upsert(
        &self,
        table: Table,
        id: impl Into<String>,
        value: &impl Serialize,
    ) -> Result<(), MetadataError> {
        let id = id.into();
        let mut body: Value =
            serde_json::from_str(&encode(table, &id, value)?).map_err(|source| {
                MetadataError::Encode {
                    table,
                    id: id.clone(),
                    source,
                }
            })?;
        if let Some(prev) = self.store.get(table, &id).await?
            && let Ok(Value::Object(p)) = serde_json::from_str::<Value>(&prev.body)
            && let Some(extra) = p.get(EXTRA_KEY)
            && let Value::Object(o) = &mut body
        {
            o.insert(EXTRA_KEY.into(), extra.clone());
        }
        let record = Record::new(id.clone(), encode(table, &id, &body)?);
        self.store
            .write(vec![Write::Upsert { table, record }])
            .await?;
        Ok(())
    }

    /// The stored group `name` (normalised), or 404: an invalid name names no group.
    async fn group_record(&self, name: &str) -> Result<Record, MetadataError> {
        let missing = |name: &str| MetadataError::NoSuchGroup {
            name: name.to_string(),
        };
        let name = group_name(name).map_err(|_| missing(name))?;
        self.store
            .get(GROUPS, &name)
            .await?
            .ok_or_else(|| missing(&name))
    }

    /// Checks group `name`'s file: a known encoding, and content that decodes.
    fn check_group(name: &str, g: &GroupData) -> Result<(), MetadataError> {
        if let Some(f) = &g.file {
            match f.encoding.as_str() {
                "" | "plain" => {}
                "base64" => {
                    base64::engine::general_purpose::STANDARD
                        .decode(f.content.trim())
                        .map_err(|source| MetadataError::BadFileContent {
                            group: name.to_string(),
                            source,
                        })?;
                }
                other => {
                    return Err(MetadataError::BadFileEncoding {
                        group: name.to_string(),
                        encoding: other.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `POST /admin/groups`: 201, 409 if the group exists, 422 if invalid.
    pub async fn create_group(&self, g: &GroupData) -> Result<String, MetadataError> {
        let name = group_name(&g.name)?;
        Self::check_group(&name, g)?;
        let g = GroupData {
            name: name.clone(),
            ..g.clone()
        };
        self.store
            .write(vec![Write::Put {
                table: GROUPS,
                record: Record::new(name.clone(), encode(GROUPS, &name, &g)?),
                prev: None,
            }])
            .await
            .map_err(|e| match e {
                // The write expected no record: the group was there already.
                StoreError::Conflict { .. } => MetadataError::GroupExists { name: name.clone() },
                other => other.into(),
            })?;
        Ok(name)
    }

    /// `PUT /admin/groups/{name}`: create or replace.
    pub async fn put_group(&self, name: &str, g: &GroupData) -> Result<(), MetadataError> {
        let name = group_name(name)?;
        if !g.name.is_empty() && group_name(&g.name)? != name {
            return Err(MetadataError::GroupNameMismatch {
                body: g.name.clone(),
                url: name,
            });
        }
        Self::check_group(&name, g)?;
        let g = GroupData {
            name: name.clone(),
            ..g.clone()
        };
        self.upsert(GROUPS, name, &g).await
    }

    pub async fn get_group(&self, name: &str) -> Result<GroupData, MetadataError> {
        decode(GROUPS, &self.group_record(name).await?)
    }

    pub async fn list_groups(&self) -> Result<BTreeMap<String, GroupData>, MetadataError> {
        let mut out = BTreeMap::new();
        for r in self.store.list_all(GROUPS, None).await? {
            let g: GroupData = decode(GROUPS, &r)?;
            out.insert(r.id, g);
        }
        Ok(out)
    }

    pub async fn delete_group(&self, name: &str) -> Result<(), MetadataError> {
        let r = self.group_record(name).await?;
        self.store
            .write(vec![Write::Delete {
                table: GROUPS,
                prev: r,
            }])
            .await?;
        Ok(())
    }

    /// `PUT /admin/instance-info/{id}`: per-node overrides (the node must be in the inventory).
    pub async fn put_instance_info(
        &self,
        id: &str,
        info: &InstanceInfo,
    ) -> Result<(), MetadataError> {
        if !info.cloud_init_base_url.is_empty() {
            check_base_url(&info.cloud_init_base_url).map_err(|why| MetadataError::BadBaseUrl {
                field: "cloud-init-base-url",
                value: info.cloud_init_base_url.clone(),
                why,
            })?;
        }
        let (c, _) = self
            .inv
            .get_component(id)
            .await
            .map_err(MetadataError::inventory)?;
        let info = InstanceInfo {
            id: c.id.clone(),
            ..info.clone()
        };
        self.upsert(INSTANCES, c.id, &info).await
    }

    // ---- nodes ----------------------------------------------------------------------------

    /// The node with this IP, or 422 as upstream answers for an unknown address.
    pub async fn node_by_ip(&self, ip: &str) -> Result<Node, MetadataError> {
        let ifaces = match ip.parse::<std::net::IpAddr>() {
            Ok(addr) => self
                .inv
                .list_interfaces(&InterfaceFilter::by_ip(addr))
                .await
                .map_err(MetadataError::inventory)?,
            // Not an address: no interface holds it.
            Err(_) => Vec::new(),
        };
        let Some(ei) = ifaces.into_iter().find(|e| !e.component_id.is_empty()) else {
            return Err(MetadataError::NoNodeWithIp { ip: ip.to_string() });
        };
        let mut node = self.node_by_id(&ei.component_id).await?;
        node.ip = ip.to_string();
        Ok(node)
    }

    /// The node with this xname (for impersonation), with its first IP.
    pub async fn node_by_id(&self, id: &str) -> Result<Node, MetadataError> {
        let (component, _) = self
            .inv
            .get_component(id)
            .await
            .map_err(MetadataError::inventory)?;
        let groups = self
            .inv
            .membership(&component.id)
            .await
            .map_err(MetadataError::inventory)?
            .group_labels;
        // Stored component ids are normalised xnames (the inventory refuses others), so the
        // fallback only keeps an odd old record from failing: it has no NICs to look up.
        let ip = match skyport_model::Xname::parse(&component.id) {
            Ok(x) => self
                .inv
                .list_interfaces(&InterfaceFilter::by_component(&x))
                .await
                .map_err(MetadataError::inventory)?
                .into_iter()
                .find_map(|e| e.ip_addresses.into_iter().next().map(|m| m.ip_address))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        Ok(Node {
            component,
            ip,
            groups,
        })
    }

    /// The base URL a node's vendor-data includes from. A stored value that fails the write-time
    /// check (written some other way) is passed over with a warning rather than placed in every
    /// node's `#include`.
    fn base_url(&self, d: &ClusterDefaults, info: &InstanceInfo) -> String {
        let usable = |u: &str, what: &str| {
            if u.is_empty() {
                return false;
            }
            match check_base_url(u) {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(url = u, "stored {what} {why}; not used");
                    false
                }
            }
        };
        let u = if usable(&info.cloud_init_base_url, "cloud-init-base-url") {
            &info.cloud_init_base_url
        } else if usable(&d.base_url, "base-url") {
            &d.base_url
        } else {
            self.default_base_url.as_str()
        };
        u.trim_end_matches('/').to_string()
    }

    async fn instance_info(&self, id: &str) -> Result<InstanceInfo, MetadataError> {
        match self.store.get(INSTANCES, id).await? {
            Some(r) => decode(INSTANCES, &r),
            None => Ok(InstanceInfo::default()),
        }
    }

    pub async fn meta_data(&self, node: &Node) -> Result<MetaData, MetadataError> {
        let d = self.defaults().await?;
        let info = self.instance_info(&node.component.id).await?;
        let generated = hostname(&d, node.component.nid);
        let mut groups = BTreeMap::new();
        let stored = self
            .store
            .get_many(GROUPS, &node.groups)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect::<BTreeMap<_, _>>();
        for g in &node.groups {
            let mut m = serde_json::Map::new();
            m.insert("Description".into(), Value::from("No description Found"));
            if let Some(r) = stored.get(g) {
                let gd: GroupData = decode(GROUPS, r)?;
                if !gd.description.is_empty() {
                    m.insert("Description".into(), Value::from(gd.description));
                }
                for (k, v) in gd.meta_data.unwrap_or_default() {
                    m.insert(k, v);
                }
            }
            groups.insert(g.clone(), m);
        }
        let mut keys = d.public_keys.clone();
        keys.extend(info.public_keys.iter().cloned());
        Ok(MetaData {
            instance_id: if info.instance_id.is_empty() {
                node.component.id.clone()
            } else {
                info.instance_id.clone()
            },
            local_hostname: if info.local_hostname.is_empty() {
                generated.clone()
            } else {
                info.local_hostname.clone()
            },
            hostname: if info.hostname.is_empty() {
                generated
            } else {
                info.hostname.clone()
            },
            cluster_name: d.cluster_name.clone(),
            instance_data: InstanceData {
                v1: InstanceDataV1 {
                    availability_zone: d.availability_zone.clone(),
                    instance_id: info.instance_id.clone(),
                    instance_type: info.instance_type.clone(),
                    region: d.region.clone(),
                    local_ipv4: node.ip.clone(),
                    cloud_provider: d.cloud_provider.clone(),
                    public_keys: keys,
                    vendor_data: VendorData {
                        version: "1.0".into(),
                        cloud_init_base_url: self.base_url(&d, &info),
                        nid: node.component.nid,
                        role: node.component.role.clone(),
                        sub_role: node.component.sub_role.clone(),
                        cluster_name: d.cluster_name.clone(),
                        groups,
                    },
                },
            },
        })
    }

    pub async fn vendor_data(&self, node: &Node) -> Result<String, MetadataError> {
        let d = self.defaults().await?;
        let info = self.instance_info(&node.component.id).await?;
        let base = self.base_url(&d, &info);
        let mut s = String::from("#include\n");
        for g in &node.groups {
            s.push_str(&format!("{base}/{g}.yaml\n"));
        }
        Ok(s)
    }

    /// A group's cloud-config for a member node: the file (base64-decoded when so encoded),
    /// `#cloud-config` when the group has none, 404 when the node is not a member.
    pub async fn group_file(&self, node: &Node, group: &str) -> Result<String, MetadataError> {
        let g = group.to_ascii_lowercase();
        if !node.groups.contains(&g) {
            return Err(MetadataError::NotAMember {
                id: node.component.id.clone(),
                group: g,
            });
        }
        let Some(r) = self.store.get(GROUPS, &g).await? else {
            return Ok("#cloud-config\n".into());
        };
        let gd: GroupData = decode(GROUPS, &r)?;
        match gd.file {
            None => Ok("#cloud-config\n".into()),
            Some(f) if f.encoding == "base64" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(f.content.trim())
                    .map_err(|source| MetadataError::StoredFileNotBase64 {
                        group: g.clone(),
                        source,
                    })?;
                String::from_utf8(bytes)
                    .map_err(|source| MetadataError::StoredFileNotUtf8 { group: g, source })
            }
            Some(f) => Ok(f.content),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn ping(&self) -> Result<(), MetadataError> {
        Ok(self.store.ping().await?)
    }
}

/// Upstream's generated hostname: short-name (or the first two characters of the cluster name)
/// followed by the NID zero-padded to nid-length (default 4).
pub fn hostname(d: &ClusterDefaults, nid: Option<i64>) -> String {
    let prefix: String = if d.short_name.is_empty() {
        d.cluster_name.chars().take(2).collect()
    } else {
        d.short_name.clone()
    };
    let width = if d.nid_length == 0 {
        4
    } else {
        d.nid_length as usize
    };
    format!("{prefix}{:0width$}", nid.unwrap_or(0))
}

/// Longest base URL accepted (browsers and proxies commonly stop at 2 KiB).
const MAX_URL: usize = 2048;

/// A base URL placed on its own line of every node's vendor-data (`#include`): an absolute
/// http(s) URL with a host, one line, no whitespace and nothing a URL would have to escape.
/// The error says why, to follow the field's name.
pub(crate) fn check_base_url(u: &str) -> Result<(), &'static str> {
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|p| {
            u.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &u[p.len()..])
        })
        .ok_or("must be an http(s) URL")?;
    if u.len() > MAX_URL {
        return Err("is longer than 2048 bytes");
    }
    if !u.bytes().all(|b| b.is_ascii_graphic())
        || u.contains(['"', '<', '>', '\\', '^', '`', '{', '|', '}'])
    {
        return Err(
            "must be one line of URL characters (no whitespace, control characters or quotes)",
        );
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.starts_with('@') {
        return Err("has no host");
    }
    Ok(())
}

/// meta-data as YAML that YAML 1.1 readers (cloud-init uses PyYAML) read back unchanged:
/// a string is written plain only when it cannot be mistaken for anything else (`yes`, `on`,
/// `1.0`, `~` and anything with YAML syntax in it are double-quoted, in JSON's escaping, which
/// is valid YAML). Key order is the struct's.
pub fn to_yaml<T: Serialize>(v: &T) -> Result<String, MetadataError> {
    let v = serde_json::to_value(v).map_err(MetadataError::EncodeYaml)?;
    let mut out = String::new();
    match &v {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    Ok(out)
}

fn yaml_plain_ok(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf", ".nan",
        ".inf",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/');
    first_ok
        && !s.ends_with(' ')
        && !s.ends_with(':')
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+-: ".contains(c))
        && !SPECIAL.iter().any(|w| s.eq_ignore_ascii_case(w))
}

pub(crate) fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if yaml_plain_ok(s) => s.clone(),
        Value::String(s) => yaml_quoted(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        // Non-empty collections are never scalars; callers handle them.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A YAML double-quoted scalar that every conformant 1.1 or 1.2 reader reads back unchanged:
/// only printable ASCII is written as itself; everything else is escaped (`\xXX`, `\uXXXX`,
/// `\UXXXXXXXX`). That covers what YAML forbids raw (C0 and C1 controls, U+007F, U+FFFE,
/// U+FFFF: PyYAML refuses the document) and what it would fold in a quoted scalar (U+0085,
/// U+2028 and U+2029 are line breaks in YAML 1.1).
fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(o) if !o.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn yaml_map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_scalar(&Value::String(k.clone())));
        out.push(':');
        yaml_value(v, indent, out);
    }
}

fn yaml_value(v: &Value, indent: usize, out: &mut String) {
    if !is_block(v) {
        out.push(' ');
        out.push_str(&yaml_scalar(v));
        out.push('\n');
        return;
    }
    out.push('\n');
    match v {
        Value::Object(o) => yaml_map(o, indent + 2, out),
        Value::Array(a) => {
            for item in a {
                out.push_str(&" ".repeat(indent + 2));
                out.push('-');
                yaml_value(item, indent + 2, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_as_upstream() {
        let d = ClusterDefaults {
            cluster_name: "demo".into(),
            ..Default::default()
        };
        assert_eq!(hostname(&d, Some(7)), "de0007");
        let d = ClusterDefaults {
            cluster_name: "demo".into(),
            short_name: "nid".into(),
            nid_length: 3,
            ..Default::default()
        };
        assert_eq!(hostname(&d, Some(7)), "nid007");
    }
}
