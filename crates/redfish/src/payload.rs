//! The SMD `SchemaVersion: 1` RedfishEndpoint that Magellan sends (flat endpoint fields, then
//! snake_case `Systems` and `Managers`), built from a crawl. Any SMD in OpenCHAMI mode, and the
//! Skyport inventory, derive components, ComponentEndpoints and EthernetInterfaces from it.
//!
//! Differences from Magellan, on purpose: the FQDN keeps a non-default port; NICs without a real
//! MAC, host-interface NICs (the same on every iLO) and auxiliary managers (Cray MCUs) are left
//! out, so one BMC's data cannot collide with another's; zero counts from a powered-off OpenBMC
//! host are omitted rather than stored as "no CPUs"; the password is never part of it.
//!
//! The document's types live in [`skyport_wire::discovery`], which the inventory reads with; this
//! module only fills them from a crawl.

use std::collections::HashSet;

use skyport_model::Mac;
pub use skyport_wire::discovery::{
    Adapter, EndpointPayload, Ethernet, Hardware, Links, Manager, NetworkInterface, Power, System,
};

use crate::model::{BmcInventory, Nic};
use crate::vendor;

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

fn ethernet(base: &str, n: &Nic, seen: &mut HashSet<Mac>) -> Option<Ethernet> {
    let mac = n.mac.or(n.permanent_mac)?;
    if n.host_interface || !seen.insert(mac) {
        return None;
    }
    Some(Ethernet {
        uri: Some(format!("{base}{}", n.path)),
        mac: Some(mac.to_string()),
        ip: n.ipv4.first().map(|ip| ip.to_string()),
        name: n.name.clone().or_else(|| n.id.clone()),
        description: n.description.clone(),
        enabled: n.enabled,
    })
}

/// The systems that become nodes `<bmc>n0`, `n1`, …, in that order: one per distinct system (by
/// UUID, or by path when the BMC reports none), as the inventory derives nodes from this payload
/// (`skyport_inventory::redfish::derive`; the edge agent's tests hold the two together).
pub fn node_systems(inv: &BmcInventory) -> Vec<&crate::model::System> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for s in &inv.systems {
        let key = match s.uuid.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => format!("uuid:{}", u.to_ascii_lowercase()),
            None => format!("uri:{}", s.path),
        };
        if !seen.contains(&key) {
            seen.push(key);
            out.push(s);
        }
    }
    out
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
        .map(|m| Manager {
            uri: Some(format!("{base}{}", m.path)),
            uuid: m.uuid.clone(),
            name: m.name.clone(),
            description: None,
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
            System {
                uri: Some(format!("{base}{}", s.path)),
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
                    .map(|ni| NetworkInterface {
                        uri: format!("{base}{}", ni.path),
                        name: ni.name.clone(),
                        description: ni.description.clone(),
                        adapter: ni.adapter.as_ref().map(|a| Adapter {
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
                power: Some(Power {
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
                links: Some(Links {
                    chassis: s.chassis.clone(),
                    managers: s.managed_by.clone(),
                }),
                health: s.health.clone(),
                hardware: s
                    .hardware
                    .iter()
                    .map(|h| Hardware {
                        uri: h.uri.as_ref().map(|p| format!("{base}{p}")),
                        ..h.clone()
                    })
                    .collect(),
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
        services: inv.services.clone(),
    }
}

fn vendor_of(inv: &BmcInventory) -> &'static dyn vendor::Vendor {
    vendor::by_name(&inv.vendor)
}
