//! Typed reads of the inventory for the other services, edge sync and the edge agent: they
//! resolve nodes through these and never name the inventory's tables, keys or JSON fields.
//! Reads that ride in another service's own batch (`skyport_boot`'s one-round-trip lookups)
//! take their keys from here and hand the records back to [`decode_read`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use skyport_http::ApiError;
use skyport_model::Mac;
use skyport_sites::Placement;
use skyport_store::{Record, Store, Table};
use skyport_wire::{Component, EthernetInterface};

use crate::records::{COMPONENTS, ETHERNET_INTERFACES, GROUPS, decode};

/// The inventory's tables a site's edge agent copies.
pub const SYNCED: [Table; 3] = [COMPONENTS, ETHERNET_INTERFACES, GROUPS];

/// The key of the interface with `mac`, for a batch read.
pub fn interface_key(mac: &Mac) -> (Table, String) {
    (ETHERNET_INTERFACES, mac.id())
}

/// The key of the component `xname`, for a batch read.
pub fn component_key(xname: &str) -> (Table, String) {
    (COMPONENTS, xname.to_string())
}

/// An inventory record read in another service's batch.
pub enum Read {
    Component(Box<Component>),
    /// An interface, by the component it names (empty: none).
    InterfaceOf(String),
}

/// Decodes a record of such a batch; `None` if it is not the inventory's.
pub fn decode_read(table: Table, r: &Record) -> Result<Option<Read>, ApiError> {
    if table == COMPONENTS {
        return Ok(Some(Read::Component(Box::new(decode(COMPONENTS, r)?))));
    }
    if table == ETHERNET_INTERFACES {
        let ei: EthernetInterface = decode(ETHERNET_INTERFACES, r)?;
        return Ok(Some(Read::InterfaceOf(ei.component_id)));
    }
    Ok(None)
}

/// Whether the inventory has an interface with `mac`.
pub async fn knows_mac(store: &dyn Store, mac: &Mac) -> Result<bool, skyport_store::StoreError> {
    Ok(store.get(ETHERNET_INTERFACES, &mac.id()).await?.is_some())
}

/// Every interface's MAC (interfaces whose stored MAC does not parse are skipped: they can
/// never match a node's request anyway).
pub async fn interface_macs(store: &dyn Store) -> Result<Vec<Mac>, skyport_store::StoreError> {
    Ok(interface_addresses(store)
        .await?
        .into_iter()
        .map(|i| i.mac)
        .collect())
}

/// An interface as the edge agent's DHCP server needs it: whose it is and the IPv4 addresses
/// reserved for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddresses {
    pub mac: Mac,
    /// The component the interface belongs to (empty when it names none).
    pub xname: String,
    pub ipv4: Vec<std::net::Ipv4Addr>,
}

/// The component the interface with `mac` names, if the inventory has it and it names one.
pub async fn interface_owner(
    store: &dyn Store,
    mac: &Mac,
) -> Result<Option<String>, skyport_store::StoreError> {
    Ok(store
        .get(ETHERNET_INTERFACES, &mac.id())
        .await?
        .and_then(|r| serde_json::from_str::<EthernetInterface>(&r.body).ok())
        .map(|ei| ei.component_id)
        .filter(|c| !c.is_empty()))
}

/// Every interface with its component and IPv4 addresses (interfaces whose MAC does not parse
/// are skipped; addresses that do not parse or are IPv6 are left out).
pub async fn interface_addresses(
    store: &dyn Store,
) -> Result<Vec<InterfaceAddresses>, skyport_store::StoreError> {
    Ok(store
        .list_all(ETHERNET_INTERFACES, None)
        .await?
        .iter()
        .filter_map(|r| {
            let ei: EthernetInterface = serde_json::from_str(&r.body).ok()?;
            Some(InterfaceAddresses {
                mac: Mac::parse(&ei.mac_address).ok()?,
                xname: ei.component_id,
                ipv4: ei
                    .ip_addresses
                    .iter()
                    .filter_map(|m| m.ip_address.parse().ok())
                    .collect(),
            })
        })
        .collect())
}

/// What a site's share of the inventory holds, for the other services' shares.
#[derive(Debug, Default, Clone)]
pub struct Share {
    pub xnames: BTreeSet<String>,
    pub nids: BTreeSet<i64>,
    /// MACs of the site's interfaces.
    pub macs: BTreeSet<Mac>,
    /// Labels of the groups with a member at the site.
    pub groups: BTreeSet<String>,
}

fn field(body: &str, name: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get(name).cloned())
}

/// Keeps a site's share of the inventory's tables in `tables` (edge sync): the components it
/// owns (`mine`), the NICs naming them (a NIC naming no component belongs to no site), and the
/// groups with a member there, trimmed to those members.
pub fn keep_share(tables: &mut BTreeMap<Table, Vec<Record>>, mine: impl Fn(&str) -> bool) -> Share {
    let comps = tables.entry(COMPONENTS).or_default();
    comps.retain(|r| mine(&r.id));
    let xnames: BTreeSet<String> = comps.iter().map(|r| r.id.clone()).collect();
    let nids: BTreeSet<i64> = comps
        .iter()
        .filter_map(|r| field(&r.body, "NID").and_then(|v| v.as_i64()))
        .collect();

    let nics = tables.entry(ETHERNET_INTERFACES).or_default();
    // A NIC counts by the xname it names, whether or not that node has a component yet.
    nics.retain(|r| {
        field(&r.body, "ComponentID")
            .and_then(|v| v.as_str().map(str::to_string))
            .is_some_and(|c| mine(&c))
    });
    let macs: BTreeSet<Mac> = nics
        .iter()
        .filter_map(|r| field(&r.body, "MACAddress"))
        .filter_map(|v| v.as_str().and_then(|m| Mac::parse(m).ok()))
        .collect();

    let groups = tables.entry(GROUPS).or_default();
    groups.retain_mut(|r| keep_group(r, |x| xnames.contains(x)));
    let labels = groups.iter().map(|r| r.id.clone()).collect();
    Share {
        xnames,
        nids,
        macs,
        groups: labels,
    }
}

/// What follows an inventory record to the sites it is placed at (edge sync): other services'
/// records keyed by its MAC, its NID or its group label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follows {
    pub mac: Option<Mac>,
    pub nid: Option<i64>,
    pub group: Option<String>,
}

/// Where an inventory record of synced table `t` belongs (edge sync): a component by its own
/// xname, an interface by the component it names, a group by its members; and what follows it.
/// `None` if `t` is not one of the inventory's synced tables.
pub fn placement(t: Table, r: &Record) -> Option<(Placement, Follows)> {
    if t == COMPONENTS {
        let nid = field(&r.body, "NID").and_then(|v| v.as_i64());
        Some((
            Placement::single(&r.id),
            Follows {
                nid,
                ..Follows::default()
            },
        ))
    } else if t == ETHERNET_INTERFACES {
        let p = interface_placement(r);
        let mac =
            field(&r.body, "MACAddress").and_then(|v| v.as_str().and_then(|m| Mac::parse(m).ok()));
        Some((
            p,
            Follows {
                mac,
                ..Follows::default()
            },
        ))
    } else if t == GROUPS {
        Some((
            Placement::Xnames(members(r)),
            Follows {
                group: Some(r.id.clone()),
                ..Follows::default()
            },
        ))
    } else {
        None
    }
}

fn interface_placement(r: &Record) -> Placement {
    field(&r.body, "ComponentID")
        .and_then(|v| v.as_str().map(Placement::single))
        .unwrap_or(Placement::Nowhere)
}

fn members(r: &Record) -> Vec<String> {
    field(&r.body, "members")
        .and_then(|m| m.get("ids").cloned())
        .and_then(|ids| serde_json::from_value::<Vec<String>>(ids).ok())
        .unwrap_or_default()
}

/// Where the interfaces with `macs` are (the xname each names), for placing what follows them.
pub async fn interface_places(
    store: &dyn Store,
    macs: &[Mac],
) -> Result<BTreeMap<Mac, Placement>, skyport_store::StoreError> {
    let keys: Vec<(Table, String)> = macs.iter().map(interface_key).collect();
    let mut out = BTreeMap::new();
    for (_, r) in store.get_keys(&keys).await? {
        if let Some(m) = macs.iter().find(|m| m.id() == r.id) {
            out.insert(*m, interface_placement(&r));
        }
    }
    Ok(out)
}

/// The component holding `nid`, if any.
pub async fn nid_holder(
    store: &dyn Store,
    nid: i64,
) -> Result<Option<String>, skyport_store::StoreError> {
    let key = skyport_store::IndexKey::new(crate::records::NID_KEY, nid.to_string());
    Ok(store
        .get_unique(&key)
        .await?
        .filter(|(t, _)| t == COMPONENTS.name())
        .map(|(_, id)| id))
}

/// The labels of the groups `xname` is a member of (partitions are not groups), in label order.
pub async fn group_labels(
    store: &dyn Store,
    xname: &str,
) -> Result<Vec<String>, skyport_store::StoreError> {
    let key = skyport_store::IndexKey::new("member", xname.to_string());
    Ok(store
        .list_all(GROUPS, Some(&key))
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The members of the groups `labels` (groups that do not exist are left out).
pub async fn group_members(
    store: &dyn Store,
    labels: &[String],
) -> Result<BTreeMap<String, Vec<String>>, skyport_store::StoreError> {
    Ok(store
        .get_many(GROUPS, labels)
        .await?
        .iter()
        .map(|r| (r.id.clone(), members(r)))
        .collect())
}

/// Whether records of `t` are seen per member (groups: a site sees its own members only).
pub fn per_member(t: Table) -> bool {
    t == GROUPS
}

/// Whether edge sync reads `t` whole for a site's snapshot instead of through its placement
/// index: groups are few, and each names many nodes.
pub fn read_whole(t: Table) -> bool {
    t == GROUPS
}

/// A group as a site sees it: trimmed to the members `keep` accepts (with their index keys);
/// `None` if it keeps none.
pub fn trim_group(r: &Record, keep: impl Fn(&str) -> bool) -> Option<Record> {
    let mut r = r.clone();
    keep_group(&mut r, keep).then_some(r)
}

/// Drops other sites' members from a group; false if none of its members is the site's.
fn keep_group(r: &mut Record, keep: impl Fn(&str) -> bool) -> bool {
    let Ok(mut v) = serde_json::from_str::<Value>(&r.body) else {
        return false;
    };
    let Some(ids) = v
        .get_mut("members")
        .and_then(|m| m.get_mut("ids"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    ids.retain(|id| id.as_str().is_some_and(&keep));
    if ids.is_empty() {
        return false;
    }
    let Ok(body) = serde_json::to_string(&v) else {
        return false;
    };
    r.body = body;
    let member_key = |k: &skyport_store::IndexKey| {
        !(k.name == "member" || k.name.starts_with("excl:")) || keep(&k.value)
    };
    r.lookups.retain(member_key);
    r.uniques.retain(member_key);
    true
}
