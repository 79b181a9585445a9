//! How inventory objects become store records: the table each lives in, its id, and the lookup
//! and unique keys that make filtered listing cheap and duplicates impossible.
//!
//! | table | id | lookups | uniques |
//! |---|---|---|---|
//! | `Components` | xname | `type`, `nid` | `nid` |
//! | `RedfishEndpoints` | xname | `type` | `rfe-fqdn`, `bmc-mac` |
//! | `ComponentEndpoints` | xname | `type`, `rfep` (parent endpoint) | |
//! | `EthernetInterfaces` | MAC as bare hex (so one MAC is one record) | `ip`, `componentid`, `type` | |
//! | `Groups` | label | `member`, `tag` | `excl:<exclusiveGroup>` per member |
//! | `HardwareInventory` | location xname | `bmc` (replaced per discovery), `node`, `type`, `fru` | |
//! | `Partitions` | name | `member`, `tag` | `partition` per member (one partition per component) |
//! | `Reservations` | xname (one reservation per component) | | |
//! | `NodeMaps` | node xname | | `nodemap-nid` (one map per NID) |
//! | `PowerMaps` | xname | | |
//! | `ServiceEndpoints` | `<endpoint xname>/<RedfishType>` | `rfep` (the endpoint), `service` | |

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use skyport_http::ApiError;
use skyport_store::{Record, Table};
use skyport_wire::locks::Reservation;
use skyport_wire::{
    Component, ComponentEndpoint, EthernetInterface, Group, NodeMap, Partition, PowerMap,
    RedfishEndpoint, ServiceEndpoint,
};

pub const COMPONENTS: Table = Table("Components");
pub const REDFISH_ENDPOINTS: Table = Table("RedfishEndpoints");
pub const COMPONENT_ENDPOINTS: Table = Table("ComponentEndpoints");
pub const ETHERNET_INTERFACES: Table = Table("EthernetInterfaces");
pub const GROUPS: Table = Table("Groups");
pub const HARDWARE: Table = Table("HardwareInventory");
pub const PARTITIONS: Table = Table("Partitions");
pub const RESERVATIONS: Table = Table("Reservations");
pub const NODE_MAPS: Table = Table("NodeMaps");
pub const POWER_MAPS: Table = Table("PowerMaps");
pub const SERVICE_ENDPOINTS: Table = Table("ServiceEndpoints");

/// The unique-key name for NIDs; shared with services that resolve nodes by NID.
pub const NID_KEY: &str = "nid";

fn body<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(format!("encoding record: {e}")))
}

/// Records keyed by their id, for merging what exists with what is being written.
pub(crate) fn by_id(recs: Vec<Record>) -> BTreeMap<String, Record> {
    recs.into_iter().map(|r| (r.id.clone(), r)).collect()
}

/// The ids asked for that `found` (what a `get_many` of them returned) lacks, comma-separated
/// in asked order; `None` when every one was found.
pub(crate) fn missing(ids: &[String], found: &[Record]) -> Option<String> {
    let missing: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !found.iter().any(|r| r.id == *id))
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

pub fn decode<T: DeserializeOwned>(table: Table, r: &Record) -> Result<T, ApiError> {
    serde_json::from_str(&r.body).map_err(|e| {
        ApiError::Internal(format!("stored record {table}/{} is unreadable: {e}", r.id))
    })
}

pub fn component(c: &Component) -> Result<Record, ApiError> {
    let mut r = Record::new(c.id.clone(), body(c)?).with_lookup("type", c.r#type.clone());
    if let Some(n) = c.nid {
        r = r
            .with_lookup(NID_KEY, n.to_string())
            .with_unique(NID_KEY, n.to_string());
    }
    Ok(r)
}

pub fn redfish_endpoint(e: &RedfishEndpoint) -> Result<Record, ApiError> {
    let mut r = Record::new(e.id.clone(), body(e)?).with_lookup("type", e.r#type.clone());
    if !e.fqdn.is_empty() {
        r = r.with_unique("rfe-fqdn", e.fqdn.to_ascii_lowercase());
    }
    if !e.mac_addr.is_empty() {
        r = r.with_unique("bmc-mac", e.mac_addr.clone());
    }
    Ok(r)
}

pub fn component_endpoint(ce: &ComponentEndpoint) -> Result<Record, ApiError> {
    Ok(Record::new(ce.id.clone(), body(ce)?)
        .with_lookup("type", ce.r#type.clone())
        .with_lookup("rfep", ce.redfish_endpoint_id.clone()))
}

pub fn ethernet_interface(ei: &EthernetInterface) -> Result<Record, ApiError> {
    let mut r = Record::new(ei.id.clone(), body(ei)?);
    for ip in &ei.ip_addresses {
        if !r
            .lookups
            .iter()
            .any(|k| k.name == "ip" && k.value == ip.ip_address)
        {
            r = r.with_lookup("ip", ip.ip_address.clone());
        }
    }
    if !ei.component_id.is_empty() {
        r = r
            .with_lookup("componentid", ei.component_id.clone())
            .with_lookup("type", ei.r#type.clone());
    }
    Ok(r)
}

pub fn group(g: &Group) -> Result<Record, ApiError> {
    let mut r = Record::new(g.label.clone(), body(g)?);
    for m in &g.members.ids {
        r = r.with_lookup("member", m.clone());
        if !g.exclusive_group.is_empty() {
            r = r.with_unique(&format!("excl:{}", g.exclusive_group), m.clone());
        }
    }
    for t in &g.tags {
        r = r.with_lookup("tag", t.clone());
    }
    Ok(r)
}

pub fn partition(p: &Partition) -> Result<Record, ApiError> {
    let mut r = Record::new(p.name.clone(), body(p)?);
    for m in &p.members.ids {
        r = r
            .with_lookup("member", m.clone())
            .with_unique(crate::partitions::PARTITION_KEY, m.clone());
    }
    for t in &p.tags {
        r = r.with_lookup("tag", t.clone());
    }
    Ok(r)
}

pub fn reservation(v: &Reservation) -> Result<Record, ApiError> {
    Ok(Record::new(v.id.clone(), body(v)?))
}

pub fn node_map(m: &NodeMap) -> Result<Record, ApiError> {
    Ok(Record::new(m.id.clone(), body(m)?)
        .with_unique(crate::nodemaps::NODE_MAP_NID, m.nid.to_string()))
}

pub fn power_map(m: &PowerMap) -> Result<Record, ApiError> {
    Ok(Record::new(m.id.clone(), body(m)?))
}

pub fn service_endpoint(se: &ServiceEndpoint) -> Result<Record, ApiError> {
    Ok(Record::new(
        format!("{}/{}", se.redfish_endpoint_id, se.redfish_type),
        body(se)?,
    )
    .with_lookup("rfep", se.redfish_endpoint_id.clone())
    .with_lookup("service", se.redfish_type.clone()))
}
