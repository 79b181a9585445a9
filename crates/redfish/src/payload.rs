//! The SMD `SchemaVersion: 1` RedfishEndpoint that Magellan sends (flat endpoint fields, then
//! snake_case `Systems` and `Managers`), built from a crawl. Any SMD in OpenCHAMI mode, and the
//! Skyport inventory, derive components, ComponentEndpoints and EthernetInterfaces from it.
//!
//! Differences from Magellan, on purpose: the FQDN keeps a non-default port; NICs without a real
//! MAC, host-interface NICs (the same on every iLO) and auxiliary managers (Cray MCUs) are left
//! out, so one BMC's data cannot collide with another's; zero counts from a powered-off OpenBMC
//! host are omitted rather than stored as "no CPUs"; the password is never part of it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use skyport_model::Mac;

use crate::model::{BmcInventory, Nic};
use crate::vendor;

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
    pub systems: Vec<PSystem>,
    #[serde(rename = "Managers")]
    pub managers: Vec<PManager>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PEthernet {
    pub uri: String,
    pub mac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PPower {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub power_control_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PLinks {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chassis: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub managers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PAdapter {
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PNetworkInterface {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<PAdapter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PSystem {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bios_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ethernet_interfaces: Vec<PEthernet>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub network_interfaces: Vec<PNetworkInterface>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<PPower>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chassis_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<PLinks>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PManager {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub ethernet_interfaces: Vec<PEthernet>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub actions: Vec<String>,
    pub serial_console: Vec<String>,
    pub command_shell: Vec<String>,
}

/// Who the endpoint is and how it was reached.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The BMC's controller xname.
    pub xname: String,
    /// `host` or `host:port` when the port is not 443.
    pub fqdn: String,
    /// The BMC user the crawl authenticated as (never the password).
    pub user: String,
}

fn ethernet(base: &str, n: &Nic, seen: &mut HashSet<Mac>) -> Option<PEthernet> {
    let mac = n.mac.or(n.permanent_mac)?;
    if n.host_interface || !seen.insert(mac) {
        return None;
    }
    Some(PEthernet {
        uri: format!("{base}{}", n.path),
        mac: mac.to_string(),
        ip: n.ipv4.first().map(|ip| ip.to_string()),
        name: n.name.clone().or_else(|| n.id.clone()),
        description: n.description.clone(),
        enabled: n.enabled,
    })
}

/// Builds the payload for one crawled BMC.
pub fn build(inv: &BmcInventory, who: &Identity) -> EndpointPayload {
    let base = inv.url.trim_end_matches('/');
    let v = vendor_of(inv);
    let mut seen = HashSet::new();
    let managers = inv
        .managers
        .iter()
        .filter(|m| !v.is_auxiliary(m))
        .map(|m| PManager {
            uri: format!("{base}{}", m.path),
            uuid: m.uuid.clone(),
            name: m.name.clone(),
            model: m.model.clone(),
            r#type: m.manager_type.clone(),
            firmware_version: m.firmware_version.clone(),
            ethernet_interfaces: m
                .ethernet_interfaces
                .iter()
                .filter(|n| !v.is_host_interface(n))
                .filter_map(|n| ethernet(base, n, &mut seen))
                .collect(),
            actions: m.reset_types.clone(),
            serial_console: m.serial_console.clone(),
            command_shell: m.command_shell.clone(),
        })
        .collect();
    let systems = inv
        .systems
        .iter()
        .map(|s| {
            let ch = s
                .chassis
                .first()
                .and_then(|c| inv.chassis.iter().find(|x| &x.path == c));
            let unknown_counts = v.name() == "openbmc" && vendor::openbmc::counts_unknown(s);
            PSystem {
                uri: format!("{base}{}", s.path),
                uuid: s.uuid.clone(),
                manufacturer: s.manufacturer.clone(),
                system_type: s.system_type.clone(),
                name: s.name.clone(),
                model: s.model.clone(),
                serial: s.serial.clone(),
                bios_version: s.bios_version.clone(),
                ethernet_interfaces: s
                    .ethernet_interfaces
                    .iter()
                    .filter_map(|n| ethernet(base, n, &mut seen))
                    .collect(),
                network_interfaces: s
                    .network_interfaces
                    .iter()
                    .map(|ni| PNetworkInterface {
                        uri: format!("{base}{}", ni.path),
                        name: ni.name.clone(),
                        description: ni.description.clone(),
                        adapter: ni.adapter.as_ref().map(|a| PAdapter {
                            uri: format!("{base}{}", a.path),
                            manufacturer: a.manufacturer.clone(),
                            name: a.name.clone(),
                            model: a.model.clone(),
                            serial: a.serial.clone(),
                            description: a.description.clone(),
                        }),
                    })
                    .collect(),
                actions: s.reset_types.clone(),
                power: Some(PPower {
                    state: s.power_state.clone(),
                    power_control_ids: s.power_control_ids.clone(),
                }),
                processor_count: s.processor_count.filter(|c| !(unknown_counts && *c == 0)),
                processor_type: s.processor_model.clone(),
                memory_total: s.memory_gib.filter(|m| !(unknown_counts && *m == 0.0)),
                chassis_sku: ch.and_then(|c| c.sku.clone()),
                chassis_serial: ch.and_then(|c| c.serial.clone()),
                chassis_manufacturer: ch.and_then(|c| c.manufacturer.clone()),
                chassis_model: ch.and_then(|c| c.model.clone()),
                links: Some(PLinks {
                    chassis: s.chassis.clone(),
                    managers: s.managed_by.clone(),
                }),
            }
        })
        .collect();
    EndpointPayload {
        id: who.xname.clone(),
        r#type: String::new(),
        name: String::new(),
        fqdn: who.fqdn.clone(),
        user: who.user.clone(),
        mac_required: true,
        rediscover_on_update: false,
        mac_addr: inv.bmc_mac.map(|m| m.to_string()),
        schema_version: 1,
        systems,
        managers,
    }
}

fn vendor_of(inv: &BmcInventory) -> &'static dyn vendor::Vendor {
    match inv.vendor.as_str() {
        "hpe" => &vendor::hpe::Hpe,
        "cray" => &vendor::cray::Cray,
        "openbmc" => &vendor::openbmc::OpenBmc,
        _ => &vendor::generic::Generic,
    }
}
