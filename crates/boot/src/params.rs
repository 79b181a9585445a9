//! Boot parameters (`/boot/v1/bootparameters`): BSS's `BootParams` shape, validated on write
//! (MACs, Node xnames, NIDs, and iPXE safety of kernel, initrd and params), stored one record per
//! host, MAC or NID so a node's configuration is a single read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyport_ipxe::{Slot, check_value};
use skyport_model::{HmsType, Mac, Xname};
use skyport_store::{Record, Table, Write};

use crate::BootError;

pub const BOOT_PARAMS: Table = Table("BootParams");

/// The boot service's table a site's edge agent copies.
pub const SYNCED: [Table; 1] = [BOOT_PARAMS];

/// Keeps a site's share of the boot parameters in `tables` (edge sync's reference
/// definition): by a host it owns (`mine`), by its NICs' MACs, by its nodes' NIDs (from the
/// inventory's share).
pub fn keep_share(
    tables: &mut std::collections::BTreeMap<Table, Vec<Record>>,
    inventory: &skyport_inventory::reads::Share,
    mine: impl Fn(&str) -> bool,
) {
    let params = tables.entry(BOOT_PARAMS).or_default();
    params.retain(|r| match NodeKey::from_record_id(&r.id) {
        Some(NodeKey::Host(x)) => mine(&x),
        Some(NodeKey::Mac(m)) => inventory.macs.contains(&m),
        Some(NodeKey::Nid(n)) => inventory.nids.contains(&n),
        None => false,
    });
}

/// Where a boot parameters record of table `t` belongs (edge sync): by host, at the node's
/// xname; by MAC, where the inventory's interface with that MAC is; by NID, where the component
/// holding it is. `None` if `t` is not the boot service's synced table.
pub fn placement(t: Table, id: &str) -> Option<skyport_sites::Placement> {
    use skyport_sites::Placement;
    (t == BOOT_PARAMS).then(|| match NodeKey::from_record_id(id) {
        Some(NodeKey::Host(x)) => Placement::single(&x),
        Some(NodeKey::Mac(m)) => Placement::Interface(m),
        Some(NodeKey::Nid(n)) => Placement::Nid(n),
        None => Placement::Nowhere,
    })
}

/// The key of the boot parameters stored for `mac` (they go where its interface goes).
pub fn key_by_mac(mac: &Mac) -> (Table, String) {
    (BOOT_PARAMS, NodeKey::Mac(*mac).record_id())
}

/// The key of the boot parameters stored for `nid` (they go where the component holding it
/// goes).
pub fn key_by_nid(nid: i64) -> (Table, String) {
    (BOOT_PARAMS, NodeKey::Nid(nid).record_id())
}

/// Every image id the stored boot parameters reference.
pub async fn referenced_images(
    store: &dyn skyport_store::Store,
) -> Result<std::collections::BTreeSet<String>, BootError> {
    let mut ids = std::collections::BTreeSet::new();
    for r in store.list_all(BOOT_PARAMS, None).await? {
        let (_, c) = decode(&r)?;
        for v in [&c.kernel, &c.initrd] {
            if let Some(id) = v.strip_prefix("image:") {
                ids.insert(id.to_string());
            }
        }
    }
    Ok(ids)
}

/// BSS's `BootParams` (`pkg/bssTypes/types.go`), as request and response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BootParams {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nids: Vec<i64>,
    #[serde(default)]
    pub params: String,
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub initrd: String,
    #[serde(
        rename = "cloud-init",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_init: Option<Value>,
}

/// What is stored for one host, MAC or NID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BootConfig {
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub initrd: String,
    #[serde(default)]
    pub params: String,
    #[serde(
        rename = "cloud-init",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_init: Option<Value>,
}

/// One node key of a request, with its record id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKey {
    Host(String),
    Mac(Mac),
    Nid(i64),
}

impl NodeKey {
    pub fn record_id(&self) -> String {
        match self {
            NodeKey::Host(x) => format!("host:{x}"),
            NodeKey::Mac(m) => format!("mac:{m}"),
            NodeKey::Nid(n) => format!("nid:{n}"),
        }
    }

    fn from_record_id(id: &str) -> Option<NodeKey> {
        let (kind, v) = id.split_once(':')?;
        match kind {
            "host" => Some(NodeKey::Host(v.to_string())),
            "mac" => Mac::parse(v).ok().map(NodeKey::Mac),
            "nid" => v.parse().ok().map(NodeKey::Nid),
            _ => None,
        }
    }

    /// The response element for this key and its stored configuration.
    pub fn to_params(&self, c: &BootConfig) -> BootParams {
        let mut p = BootParams {
            params: c.params.clone(),
            kernel: c.kernel.clone(),
            initrd: c.initrd.clone(),
            cloud_init: c.cloud_init.clone(),
            ..Default::default()
        };
        match self {
            NodeKey::Host(x) => p.hosts.push(x.clone()),
            NodeKey::Mac(m) => p.macs.push(m.to_string()),
            NodeKey::Nid(n) => p.nids.push(*n),
        }
        p
    }
}

/// The node keys a request names: hosts must be Node xnames (as BSS's `CheckXnames`), MACs any
/// spelling (stored lowercase with colons), NIDs non-negative.
pub fn node_keys(p: &BootParams) -> Result<Vec<NodeKey>, BootError> {
    let mut keys = Vec::new();
    for (i, h) in p.hosts.iter().enumerate() {
        let x = Xname::parse(h).map_err(|_| BootError::BadHost {
            index: i,
            value: h.clone(),
        })?;
        if !matches!(x.hms_type(), HmsType::Node | HmsType::VirtualNode) {
            return Err(BootError::NotANode {
                index: i,
                hms_type: x.hms_type(),
                xname: x,
            });
        }
        keys.push(NodeKey::Host(x.to_string()));
    }
    for (i, m) in p.macs.iter().enumerate() {
        let mac = Mac::parse(m).map_err(|source| BootError::BadMac { index: i, source })?;
        keys.push(NodeKey::Mac(mac));
    }
    for (i, n) in p.nids.iter().enumerate() {
        if !(0..=i64::from(i32::MAX)).contains(n) {
            return Err(BootError::BadNid { index: i, nid: *n });
        }
        keys.push(NodeKey::Nid(*n));
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Rejects kernel, initrd and params that could not be placed in a boot script safely.
pub fn check_config(c: &BootConfig) -> Result<(), BootError> {
    let check = |slot, v: &str| check_value(slot, v).map_err(BootError::Unsafe);
    if !c.kernel.is_empty() {
        check(Slot::Kernel, &c.kernel)?;
    }
    if !c.initrd.is_empty() {
        check(Slot::Initrd, &c.initrd)?;
    }
    check(Slot::Params, &c.params)
}

pub fn record(key: &NodeKey, c: &BootConfig) -> Result<Record, BootError> {
    let body = serde_json::to_string(c).map_err(BootError::Encode)?;
    let mut r = Record::new(key.record_id(), body);
    // Lets DELETE-by-configuration and dumpstate find entries by kernel without a scan of params.
    if !c.kernel.is_empty() {
        r = r.with_lookup("kernel", c.kernel.clone());
    }
    Ok(r)
}

pub fn decode(r: &Record) -> Result<(NodeKey, BootConfig), BootError> {
    let key = NodeKey::from_record_id(&r.id).ok_or_else(|| BootError::BadId(r.id.clone()))?;
    let c = serde_json::from_str(&r.body).map_err(|source| BootError::Corrupt {
        id: r.id.clone(),
        source,
    })?;
    Ok((key, c))
}

/// Groups entries with identical configuration into one response element per key type, as
/// clients expect to read them back (one element per node is also accepted by BSS clients).
pub fn to_response(entries: Vec<(NodeKey, BootConfig)>) -> Vec<BootParams> {
    entries.iter().map(|(k, c)| k.to_params(c)).collect()
}

pub(crate) fn by_id(recs: Vec<Record>) -> BTreeMap<String, Record> {
    recs.into_iter().map(|r| (r.id.clone(), r)).collect()
}

pub(crate) fn put_ops(
    keys: &[NodeKey],
    existing: &BTreeMap<String, Record>,
    f: impl Fn(Option<BootConfig>) -> Result<BootConfig, BootError>,
) -> Result<Vec<Write>, BootError> {
    let mut ops = Vec::new();
    for k in keys {
        let prev = existing.get(&k.record_id());
        let cur = prev.map(decode).transpose()?.map(|(_, c)| c);
        let next = f(cur)?;
        ops.push(Write::Put {
            table: BOOT_PARAMS,
            record: record(k, &next)?,
            prev: prev.cloned(),
        });
    }
    Ok(ops)
}
