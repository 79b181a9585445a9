//! What a crawl learns about one BMC, already cleaned: placeholders are `None`, MACs and IPs are
//! parsed, links are normalised paths. This is what `--output json|yaml` prints and what the
//! SMD payload is built from.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use skyport_model::Mac;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BmcInventory {
    /// `scheme://host:port` crawled.
    pub url: String,
    pub service_root: ServiceRoot,
    /// The vendor module that handled quirks (`hpe`, `cray`, `openbmc`, `generic`).
    pub vendor: String,
    pub managers: Vec<Manager>,
    pub systems: Vec<System>,
    pub chassis: Vec<Chassis>,
    /// The BMC's own MAC: the manager NIC whose IPv4 is the address we connected to.
    pub bmc_mac: Option<Mac>,
    /// The services the service root links (SMD's ServiceEndpoints).
    #[serde(default)]
    pub services: Vec<skyport_wire::discovery::Service>,
    /// Resources that could not be read; the rest of the crawl still counts.
    pub warnings: Vec<String>,
    /// HTTP requests made.
    pub requests: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRoot {
    pub redfish_version: Option<String>,
    pub uuid: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub session_service: Option<String>,
    pub sessions: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub path: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub mac: Option<Mac>,
    pub permanent_mac: Option<Mac>,
    pub ipv4: Vec<Ipv4Addr>,
    pub enabled: Option<bool>,
    pub state: Option<String>,
    /// A NIC facing the host (Redfish host interface): never the BMC's identity.
    #[serde(default)]
    pub host_interface: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manager {
    pub path: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub manager_type: Option<String>,
    pub model: Option<String>,
    pub firmware_version: Option<String>,
    pub uuid: Option<String>,
    pub ethernet_interfaces: Vec<Nic>,
    pub serial_console: Vec<String>,
    pub command_shell: Vec<String>,
    pub reset_types: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkAdapter {
    pub path: String,
    pub manufacturer: Option<String>,
    pub name: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub path: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub adapter: Option<NetworkAdapter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct System {
    pub path: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub sku: Option<String>,
    pub system_type: Option<String>,
    pub power_state: Option<String>,
    pub bios_version: Option<String>,
    pub processor_count: Option<u64>,
    pub processor_model: Option<String>,
    pub memory_gib: Option<f64>,
    /// Whether the system advertises a `SerialConsole` block (Redfish ≥ 1.13).
    pub serial_console: bool,
    pub reset_types: Vec<String>,
    /// Where `ComputerSystem.Reset` is posted (the action's `target`), as a path on the BMC;
    /// `None` when the BMC did not say (the standard `{path}/Actions/ComputerSystem.Reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_target: Option<String>,
    /// Boot override targets the BMC accepts (`Pxe`, `UefiHttp`, ...); empty when not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boot_targets: Vec<String>,
    pub managed_by: Vec<String>,
    pub chassis: Vec<String>,
    pub ethernet_interfaces: Vec<Nic>,
    pub network_interfaces: Vec<NetworkInterface>,
    pub power_control_ids: Vec<String>,
    /// Where the system was found: under `/Systems`, under a chassis' links, or both.
    pub found_via: Vec<String>,
    /// `Status.Health` (else `HealthRollup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Processors, accelerators, memory, drives and its chassis' power supplies; `uri` holds
    /// the path on the BMC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<skyport_wire::discovery::Hardware>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chassis {
    pub path: String,
    pub id: Option<String>,
    pub chassis_type: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub sku: Option<String>,
    pub power_state: Option<String>,
    pub computer_systems: Vec<String>,
    /// The (deprecated) `Power` resource, where power controls live.
    pub power: Option<String>,
}
