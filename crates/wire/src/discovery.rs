//! Magellan's discovery document: the SMD `SchemaVersion: 1` RedfishEndpoint POST body, flat
//! endpoint fields then snake_case `Systems` and `Managers` (Magellan's
//! `pkg/schemas/inventory.go`). One set of types for both ends: the crawler
//! (`skyport-redfish`) writes them, the inventory reads them inside a
//! [`crate::RedfishEndpointIn`].
//!
//! Written, every type gives Magellan's keys in Magellan's order and leaves out what a crawl did
//! not learn. Read, every field is optional and tolerant, because a document can come from any
//! Magellan and carries whatever the BMC reported: strings or numbers where text belongs, `null`
//! where a list belongs, text where a count belongs (read as missing). Fields the inventory
//! carries but never reads (network adapters, chassis details, serial consoles) take anything
//! and keep what reads as the expected type, so one odd value cannot refuse a whole discovery.

use serde::{Deserialize, Serialize};

// Short names keep each field's attribute on one line.
use crate::de::{
    opt_bool, opt_parsed as number, opt_string as text, or_default as carried, vec_lenient,
    vec_or_null as list, vec_string as texts,
};

/// The whole document as the crawler sends it. The inventory reads the same JSON as a
/// [`crate::RedfishEndpointIn`], which also takes what admins and `ochami` send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointPayload {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "FQDN")]
    pub fqdn: String,
    #[serde(rename = "User")]
    pub user: String,
    #[serde(rename = "MACRequired")]
    pub mac_required: bool,
    #[serde(rename = "RediscoverOnUpdate")]
    pub rediscover_on_update: bool,
    #[serde(rename = "MACAddr", skip_serializing_if = "Option::is_none")]
    pub mac_addr: Option<String>,
    #[serde(rename = "SchemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "Systems")]
    pub systems: Vec<System>,
    #[serde(rename = "Managers")]
    pub managers: Vec<Manager>,
    /// Skyport's addition: the services the BMC's service root links, for SMD's
    /// `Inventory/ServiceEndpoints` (SMD's own crawl finds them; Magellan does not send them,
    /// and SMD's decoder ignores the key).
    #[serde(rename = "Services", default, skip_serializing_if = "empty")]
    pub services: Vec<Service>,
}

/// One service of a BMC (SMD's `ServiceDescription` as its crawl fills it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// SMD's name for it: `AccountService`, `SessionService`, `EventService`, `TaskService`,
    /// `UpdateService`.
    #[serde(rename = "RedfishType")]
    pub redfish_type: String,
    /// The service root's link to it.
    #[serde(rename = "OdataID")]
    pub odata_id: String,
    /// The service's document, with the fields SMD keeps; absent when it could not be read.
    #[serde(
        rename = "ServiceInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_info: Option<serde_json::Value>,
}

fn none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

fn empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// An Ethernet interface of a system or a manager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ethernet {
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub mac: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "opt_bool", skip_serializing_if = "none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Power {
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "texts", skip_serializing_if = "empty")]
    pub power_control_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, deserialize_with = "texts", skip_serializing_if = "empty")]
    pub chassis: Vec<String>,
    #[serde(default, deserialize_with = "texts", skip_serializing_if = "empty")]
    pub managers: Vec<String>,
}

/// The adapter behind a [`NetworkInterface`]; carried, never read by the inventory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A system's network interface (a NIC card); carried, never read by the inventory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<Adapter>,
}

/// A ComputerSystem: one node of the BMC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct System {
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub manufacturer: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub system_type: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub serial: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub bios_version: Option<String>,
    #[serde(default, deserialize_with = "list", skip_serializing_if = "empty")]
    pub ethernet_interfaces: Vec<Ethernet>,
    #[serde(default, deserialize_with = "carried", skip_serializing_if = "empty")]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default, deserialize_with = "texts", skip_serializing_if = "empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "none")]
    pub power: Option<Power>,
    #[serde(default, deserialize_with = "number", skip_serializing_if = "none")]
    pub processor_count: Option<u64>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub processor_type: Option<String>,
    /// GiB.
    #[serde(default, deserialize_with = "number", skip_serializing_if = "none")]
    pub memory_total: Option<f64>,
    #[serde(default, deserialize_with = "carried", skip_serializing_if = "none")]
    pub chassis_sku: Option<String>,
    #[serde(default, deserialize_with = "carried", skip_serializing_if = "none")]
    pub chassis_serial: Option<String>,
    #[serde(default, deserialize_with = "carried", skip_serializing_if = "none")]
    pub chassis_manufacturer: Option<String>,
    #[serde(default, deserialize_with = "carried", skip_serializing_if = "none")]
    pub chassis_model: Option<String>,
    #[serde(default, skip_serializing_if = "none")]
    pub links: Option<Links>,
    /// Skyport: the system's `Status.Health` (else `HealthRollup`). Magellan sends none.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub health: Option<String>,
    /// Skyport: what the system is made of (processors, accelerators, memory, drives, its
    /// chassis' power supplies), for SMD's hardware inventory. Magellan sends none; an entry
    /// that does not read as one is dropped, never the document.
    #[serde(
        default,
        deserialize_with = "vec_lenient",
        skip_serializing_if = "empty"
    )]
    pub hardware: Vec<Hardware>,
}

/// What a piece of hardware is, as SMD types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HardwareKind {
    Processor,
    /// A GPU, FPGA or other accelerator (SMD's NodeAccel).
    Accelerator,
    Memory,
    Drive,
    /// A power supply of the system's chassis (SMD's NodeEnclosurePowerSupply).
    PowerSupply,
}

/// One piece of a system's hardware, as its BMC reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub kind: HardwareKind,
    /// The Redfish resource (`/redfish/v1/Systems/1/Memory/DIMM1`).
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub manufacturer: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub serial: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub part_number: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub firmware_version: Option<String>,
    /// `Status.Health`: `OK`, `Warning` or `Critical`.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub health: Option<String>,
    /// `Status.State`: `Absent` means an empty slot.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub state: Option<String>,
    /// The kind's own Redfish properties SMD shows (`CapacityMiB`, `TotalCores`, `Socket`, …),
    /// under their Redfish names.
    #[serde(
        default,
        deserialize_with = "carried",
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// A Manager: the BMC itself (auxiliary controllers are left out by the crawler).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manager {
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub name: Option<String>,
    /// Magellan may send it; the crawler does not.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub model: Option<String>,
    #[serde(
        rename = "type",
        default,
        deserialize_with = "text",
        skip_serializing_if = "none"
    )]
    pub r#type: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "none")]
    pub firmware_version: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub ethernet_interfaces: Vec<Ethernet>,
    #[serde(default, deserialize_with = "texts", skip_serializing_if = "empty")]
    pub actions: Vec<String>,
    #[serde(default, deserialize_with = "carried")]
    pub serial_console: Vec<String>,
    #[serde(default, deserialize_with = "texts")]
    pub command_shell: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_read_numbers_and_numeric_text_and_drop_the_rest() {
        let s: System = serde_json::from_str(
            r#"{"processor_count":"4","memory_total":96,"chassis_sku":["odd"],"network_interfaces":7}"#,
        )
        .unwrap();
        assert_eq!((s.processor_count, s.memory_total), (Some(4), Some(96.0)));
        assert_eq!(s.chassis_sku, None);
        assert!(s.network_interfaces.is_empty());
        let s: System =
            serde_json::from_str(r#"{"processor_count":"N/A","memory_total":"unknown"}"#).unwrap();
        assert_eq!((s.processor_count, s.memory_total), (None, None));
        // Text fields still refuse what cannot be text, naming what was expected.
        let e = serde_json::from_str::<System>(r#"{"processor_count":[1]}"#).unwrap_err();
        assert!(
            e.to_string().contains("expected a string, got an array"),
            "{e}"
        );
    }
}
