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

/// The boot service's tables a site's edge agent copies: BSS's entries, the BootConfigurations
/// and Node resources of the boot-service view (its BMC resources boot nothing).
pub const SYNCED: [Table; 3] = [
    BOOT_PARAMS,
    crate::resources::BOOT_CONFIGS,
    crate::resources::BOOT_NODES,
];

/// Keeps a site's share of the boot parameters in `tables` (edge sync's reference
/// definition): by a host it owns (`mine`), by its NICs' MACs, by its nodes' NIDs (from the
/// inventory's share).
pub fn keep_share(
    tables: &mut std::collections::BTreeMap<Table, Vec<Record>>,
    inventory: &skyport_inventory::reads::Share,
    mine: impl Fn(&str) -> bool,
) {
    // A BootConfiguration may select any site's nodes (by group, pattern or catch-all).
    tables.entry(crate::resources::BOOT_CONFIGS).or_default();
    tables
        .entry(crate::resources::BOOT_NODES)
        .or_default()
        .retain(|r| node_resource_xname(r).is_some_and(|x| mine(&x)));
    let params = tables.entry(BOOT_PARAMS).or_default();
    params.retain(|r| match NodeKey::from_record_id(&r.id) {
        Some(NodeKey::Host(x)) => mine(&x),
        // A role's, `Default`'s and `Unknown-<arch>`'s parameters serve any site's nodes.
        Some(NodeKey::Tag(_)) => true,
        Some(NodeKey::Mac(m)) => inventory.macs.contains(&m),
        Some(NodeKey::Nid(n)) => inventory.nids.contains(&n),
        None => false,
    });
}

/// The id prefixes of the records of the boot service's indexed tables that every site gets
/// (placed [`skyport_sites::Placement::Everywhere`]): BSS's tags. A site's snapshot finds them
/// by prefix, since the placement index holds only records with an xname.
pub const EVERYWHERE_IDS: &[(Table, &str)] = &[(BOOT_PARAMS, "tag:")];

/// Whether edge sync reads `t` whole for a site's snapshot instead of through its placement
/// index: BootConfigurations are few, installation-wide, and may select any site's nodes.
pub fn read_whole(t: Table) -> bool {
    t == crate::resources::BOOT_CONFIGS
}

/// The xname a stored `Node` resource names.
fn node_resource_xname(r: &Record) -> Option<String> {
    serde_json::from_str::<Value>(&r.body)
        .ok()?
        .pointer("/spec/xname")?
        .as_str()
        .map(str::to_string)
}

/// Where a record of the boot service's table `t` belongs (edge sync): a boot parameters entry
/// by host at the node's xname, by MAC where the inventory's interface with that MAC is, by
/// NID where the component holding it is; a BootConfiguration everywhere (it may select any
/// site's nodes); a Node resource at its xname. `None` if `t` is not a synced table of the
/// boot service.
pub fn placement(t: Table, r: &Record) -> Option<skyport_sites::Placement> {
    use skyport_sites::Placement;
    if t == crate::resources::BOOT_CONFIGS {
        return Some(Placement::Everywhere);
    }
    if t == crate::resources::BOOT_NODES {
        return Some(node_resource_xname(r).map_or(Placement::Nowhere, |x| Placement::single(&x)));
    }
    let id = r.id.as_str();
    (t == BOOT_PARAMS).then(|| match NodeKey::from_record_id(id) {
        Some(NodeKey::Host(x)) => Placement::single(&x),
        Some(NodeKey::Tag(_)) => Placement::Everywhere,
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub params: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initrd: String,
    /// Always sent, in BSS's shape ([`cloud_init_out`]): Go writes the struct value even when
    /// it is empty.
    #[serde(rename = "cloud-init", default, serialize_with = "cloud_init_out")]
    pub cloud_init: Option<Value>,
}

/// BSS's `CloudInit` as Go writes it: `meta-data` and `user-data` (an object or `null`), then
/// `phone-home` with its six string keys (and `pub_key_ed25519`, its one `omitempty` key).
/// Keys BSS does not have are not sent.
pub fn cloud_init_out<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    let get = |k: &str| v.as_ref().and_then(|v| v.get(k));
    let object_or_null = |k: &str| match get(k) {
        Some(o @ Value::Object(_)) => o.clone(),
        _ => Value::Null,
    };
    let mut phone = serde_json::Map::new();
    for k in [
        "pub_key_dsa",
        "pub_key_rsa",
        "pub_key_ecdsa",
        "pub_key_ed25519",
        "instance_id",
        "hostname",
        "fqdn",
    ] {
        let text = get("phone-home")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if k != "pub_key_ed25519" || !text.is_empty() {
            phone.insert(k.to_string(), Value::from(text));
        }
    }
    let mut o = serde_json::Map::new();
    o.insert("meta-data".into(), object_or_null("meta-data"));
    o.insert("user-data".into(), object_or_null("user-data"));
    o.insert("phone-home".into(), Value::Object(phone));
    serde::Serialize::serialize(&Value::Object(o), s)
}

/// A request's `cloud-init`, or `None` when it carries nothing: Go clients (BSS's own types,
/// `ochami`) always send the block, with `null` maps and empty strings, and a PATCH with such
/// a block must not wipe what is stored.
pub fn given_cloud_init(v: Option<&Value>) -> Option<Value> {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Object(o) => o.values().all(empty),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    v.filter(|v| !empty(v)).cloned()
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
    /// What the boot-service view of this entry holds that BSS's shape has no room for
    /// (its name, labels, timestamps, priority, status), once it was written through that view.
    #[serde(
        rename = "boot-service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource: Option<crate::resources::configs::Extra>,
}

/// One node key of a request, with its record id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKey {
    Host(String),
    /// A `hosts` entry that names no node but a set of them, as BSS's tags: a role
    /// (`Compute`), [`DEFAULT_TAG`], [`GLOBAL_TAG`] or `Unknown-<arch>` (what unknown nodes of
    /// that iPXE `${buildarch}` boot).
    Tag(String),
    Mac(Mac),
    Nid(i64),
}

/// The `hosts` tag whose parameters a node without its own, its MAC's, its NID's or its
/// role's gets (hms-bss `DefaultTag`).
pub const DEFAULT_TAG: &str = "Default";
/// The `hosts` tag of cloud-init data for every node (hms-bss `GlobalTag`).
pub const GLOBAL_TAG: &str = "Global";
/// The prefix of the tags unknown nodes boot by architecture (hms-bss `unknownPrefix`).
pub const UNKNOWN_PREFIX: &str = "Unknown-";

/// The tag `h` is, canonically spelt (`compute` is the role `Compute`), or `None` if `h` is no
/// tag BSS knows: a role of hms-base, `Default`, `Global` or `Unknown-<arch>` with an iPXE
/// architecture name (letters, digits, `_`; at most 16).
pub fn tag(h: &str) -> Option<String> {
    let h = h.trim();
    for t in [DEFAULT_TAG, GLOBAL_TAG] {
        if h.eq_ignore_ascii_case(t) {
            return Some(t.to_string());
        }
    }
    if let Ok(r) = h.parse::<skyport_model::Role>() {
        return Some(r.as_str().to_string());
    }
    let arch = h
        .get(..UNKNOWN_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(UNKNOWN_PREFIX))
        .map(|_| &h[UNKNOWN_PREFIX.len()..])?;
    let ok = (1..=16).contains(&arch.len())
        && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| format!("{UNKNOWN_PREFIX}{arch}"))
}

impl NodeKey {
    pub fn record_id(&self) -> String {
        match self {
            NodeKey::Host(x) => format!("host:{x}"),
            NodeKey::Tag(t) => format!("tag:{t}"),
            NodeKey::Mac(m) => format!("mac:{m}"),
            NodeKey::Nid(n) => format!("nid:{n}"),
        }
    }

    pub(crate) fn from_record_id(id: &str) -> Option<NodeKey> {
        let (kind, v) = id.split_once(':')?;
        match kind {
            "host" => Some(NodeKey::Host(v.to_string())),
            "tag" => Some(NodeKey::Tag(v.to_string())),
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
            NodeKey::Host(x) | NodeKey::Tag(x) => p.hosts.push(x.clone()),
            NodeKey::Mac(m) => p.macs.push(m.to_string()),
            NodeKey::Nid(n) => p.nids.push(*n),
        }
        p
    }
}

/// The node keys a request names: hosts must be Node xnames (as BSS's `CheckXnames`) or BSS's
/// tags ([`tag`]), MACs any spelling (stored lowercase with colons), NIDs non-negative.
pub fn node_keys(p: &BootParams) -> Result<Vec<NodeKey>, BootError> {
    let mut keys = Vec::new();
    for (i, h) in p.hosts.iter().enumerate() {
        let x = match Xname::parse(h) {
            Ok(x) => x,
            Err(_) => match tag(h) {
                Some(t) => {
                    keys.push(NodeKey::Tag(t));
                    continue;
                }
                None => {
                    return Err(BootError::BadHost {
                        index: i,
                        value: h.clone(),
                    });
                }
            },
        };
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

/// The node keys a lookup names, skipping values that cannot name one (they match nothing, as
/// in BSS's GET).
pub fn node_keys_matching(p: &BootParams) -> Vec<NodeKey> {
    let mut keys = Vec::new();
    for h in &p.hosts {
        let q = BootParams {
            hosts: vec![h.clone()],
            ..BootParams::default()
        };
        keys.extend(node_keys(&q).unwrap_or_default());
    }
    for m in &p.macs {
        if let Ok(mac) = Mac::parse(m) {
            keys.push(NodeKey::Mac(mac));
        }
    }
    for n in &p.nids {
        if (0..=i64::from(i32::MAX)).contains(n) {
            keys.push(NodeKey::Nid(*n));
        }
    }
    keys.sort();
    keys.dedup();
    keys
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
        // A BSS write keeps what the boot-service view added to the entry.
        let extra = cur.as_ref().and_then(|c| c.resource.clone());
        let mut next = f(cur)?;
        if next.resource.is_none() {
            next.resource = extra;
        }
        ops.push(Write::Put {
            table: BOOT_PARAMS,
            record: record(k, &next)?,
            prev: prev.cloned(),
        });
    }
    Ok(ops)
}
