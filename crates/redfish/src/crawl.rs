//! The walk of one BMC: ServiceRoot, Managers (+EthernetInterfaces, HostInterfaces), Systems
//! (+EthernetInterfaces, optionally NetworkInterfaces → NetworkAdapter, reset types), Chassis
//! (+Links, power controls), always following `@odata.id` and `Members@odata.nextLink`; with
//! `hardware` (the default) also each system's Processors, Memory and Storage drives and its
//! chassis' power supplies, for SMD's hardware inventory.
//!
//! A dead link or a garbage document costs that one resource (a warning); a BMC that stops
//! answering, refuses the credentials, changes its certificate or passes its memory budget ends
//! the crawl with that reason. Each document is parsed into only the fields read from it
//! ([`crate::fields`]); what is kept is charged to the client's memory budget for the whole
//! crawl, since the inventory holds it, so a collection of huge members fails on the budget
//! rather than growing the agent.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

use futures::{StreamExt, stream};
use serde_json::Value;

use crate::client::{BmcClient, FetchError};
use crate::fields::{self, Shape};
use crate::model::{
    BmcInventory, Chassis, Manager, NetworkAdapter, NetworkInterface, Nic, ServiceRoot, System,
};
use crate::res::{
    bool_at, ipv4_addresses, link_at, links, mac_at, num_path, str_at, str_path, strings,
};
use crate::vendor;
use skyport_wire::discovery::{Hardware, HardwareKind};

#[derive(Clone, Debug)]
pub struct CrawlOptions {
    /// Also walk `Systems/*/NetworkInterfaces` and their `NetworkAdapter`s.
    pub network_interfaces: bool,
    /// Member GETs in flight at once within one collection (gofish uses 3).
    pub parallel: usize,
    /// Also walk each system's Processors, Memory and Storage (one GET per member).
    pub hardware: bool,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        Self {
            network_interfaces: false,
            parallel: 3,
            hardware: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Managers, Systems and Chassis all unreadable: nothing worth recording.
    #[error("no usable inventory: {0}")]
    Empty(String),
}

/// Warnings kept per crawl; a BMC with thousands of broken links gets a count for the rest.
const MAX_WARNINGS: usize = 200;

struct Walk<'a> {
    c: &'a BmcClient,
    opts: &'a CrawlOptions,
    warnings: Mutex<Vec<String>>,
    /// Warnings beyond [`MAX_WARNINGS`], counted only.
    dropped_warnings: std::sync::atomic::AtomicUsize,
    /// System NICs that are the host side of a host interface (`HostEthernetInterfaces`).
    host_side: Mutex<HashSet<String>>,
}

impl Walk<'_> {
    fn warn(&self, msg: String) {
        tracing::debug!(bmc = %self.c.key(), warning = %msg, "resource skipped");
        let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() < MAX_WARNINGS {
            w.push(msg);
        } else {
            self.dropped_warnings
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn take_warnings(self) -> Vec<String> {
        let mut w = self
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let dropped = self.dropped_warnings.into_inner();
        if dropped > 0 {
            w.push(format!("{dropped} more warnings not shown"));
        }
        w
    }

    /// GETs a link, keeping `shape`'s fields. A resource-level failure is a warning and `None`; a
    /// BMC-level one is `Err`.
    async fn fetch(
        &self,
        link: &str,
        shape: &'static Shape,
    ) -> Result<Option<(String, Value)>, FetchError> {
        let path = match self.c.resolve(link) {
            Ok(p) => p,
            Err(e) => {
                self.warn(e.to_string());
                return Ok(None);
            }
        };
        match self.c.get(&path, shape).await {
            Ok(v) => Ok(Some((path, v))),
            Err(e) if e.is_resource_level() => {
                self.warn(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// GETs several links, a few at a time, keeping their order. The first BMC-level failure
    /// (a timeout, the memory budget) ends it: the requests still in flight are dropped and the
    /// rest never made.
    async fn fetch_all(
        &self,
        links: Vec<String>,
        shape: &'static Shape,
    ) -> Result<Vec<(String, Value)>, FetchError> {
        let mut results = stream::iter(links)
            .map(|l| async move { self.fetch(&l, shape).await })
            .buffered(self.opts.parallel.max(1));
        let mut out = Vec::new();
        while let Some(r) = results.next().await {
            if let Some(x) = r? {
                out.push(x);
            }
        }
        Ok(out)
    }

    /// The member links of a collection, across `Members@odata.nextLink` pages, de-duplicated,
    /// bounded by the member and page limits, stopping at a page seen before.
    async fn members(&self, collection: &str) -> Result<Vec<String>, FetchError> {
        let limits = self.c.limits();
        let mut out: Vec<String> = Vec::new();
        let mut seen_members = HashSet::new();
        let mut seen_pages = HashSet::new();
        let mut next = Some(collection.to_string());
        while let Some(link) = next.take() {
            let Ok(page_path) = self.c.resolve(&link) else {
                self.warn(format!("{link}: page link leaves the BMC"));
                break;
            };
            if !seen_pages.insert(page_path.clone()) {
                self.warn(format!("{collection}: nextLink loops back to {page_path}"));
                break;
            }
            if seen_pages.len() > limits.max_pages {
                self.warn(format!(
                    "{collection}: more than {} pages; rest ignored",
                    limits.max_pages
                ));
                break;
            }
            let Some((_, page)) = self.fetch(&link, &fields::COLLECTION).await? else {
                break;
            };
            for m in links(page.get("Members")) {
                let Ok(p) = self.c.resolve(&m) else {
                    self.warn(format!("{collection}: member {m} leaves the BMC"));
                    continue;
                };
                if out.len() >= limits.max_members {
                    self.warn(format!(
                        "{collection}: more than {} members; rest ignored",
                        limits.max_members
                    ));
                    return Ok(out);
                }
                if seen_members.insert(p.clone()) {
                    out.push(p);
                }
            }
            next = page
                .get("Members@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(out)
    }

    async fn nics(&self, owner: &Value) -> Result<Vec<Nic>, FetchError> {
        let Some(coll) = link_at(owner, "EthernetInterfaces") else {
            return Ok(Vec::new());
        };
        let members = self.members(&coll).await?;
        Ok(self
            .fetch_all(members, &fields::NIC)
            .await?
            .into_iter()
            .map(|(path, v)| nic(path, &v))
            .collect())
    }

    /// The system's processors (and accelerators), memory modules and drives.
    async fn hardware(&self, sys: &Value) -> Result<Vec<Hardware>, FetchError> {
        let mut out = Vec::new();
        if let Some(coll) = link_at(sys, "Processors") {
            let members = self.members(&coll).await?;
            for (p, v) in self.fetch_all(members, &fields::PROCESSOR).await? {
                let kind = match str_at(&v, "ProcessorType").as_deref() {
                    Some("GPU" | "Accelerator" | "FPGA" | "DSP") => HardwareKind::Accelerator,
                    _ => HardwareKind::Processor,
                };
                out.push(hardware_of(kind, p, &v, PROCESSOR_PROPS));
            }
        }
        if let Some(coll) = link_at(sys, "Memory") {
            let members = self.members(&coll).await?;
            for (p, v) in self.fetch_all(members, &fields::MEMORY).await? {
                out.push(hardware_of(HardwareKind::Memory, p, &v, MEMORY_PROPS));
            }
        }
        if let Some(coll) = link_at(sys, "Storage") {
            let members = self.members(&coll).await?;
            let mut drives = Vec::new();
            for (_, st) in self.fetch_all(members, &fields::STORAGE).await? {
                for d in links(st.get("Drives")) {
                    if let Ok(d) = self.c.resolve(&d)
                        && !drives.contains(&d)
                    {
                        drives.push(d);
                    }
                }
            }
            for (p, v) in self.fetch_all(drives, &fields::DRIVE).await? {
                out.push(hardware_of(HardwareKind::Drive, p, &v, DRIVE_PROPS));
            }
        }
        Ok(out)
    }

    async fn reset_types(&self, res: &Value, action: &str) -> Result<Vec<String>, FetchError> {
        let Some(a) = res.get("Actions").and_then(|a| a.get(action)) else {
            return Ok(Vec::new());
        };
        let direct = strings(a.get("ResetType@Redfish.AllowableValues"));
        if !direct.is_empty() {
            return Ok(direct);
        }
        let Some(info) = a.get("@Redfish.ActionInfo").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        let Some((_, info)) = self.fetch(info, &fields::ACTION_INFO).await? else {
            return Ok(Vec::new());
        };
        let params = match info.get("Parameters") {
            Some(Value::Array(p)) => p.clone(),
            _ => Vec::new(),
        };
        Ok(params
            .iter()
            .find(|p| p.get("Name").and_then(Value::as_str) == Some("ResetType"))
            .map(|p| strings(p.get("AllowableValues")))
            .unwrap_or_default())
    }

    async fn manager(&self, path: String, v: Value) -> Result<Manager, FetchError> {
        let mut ethernet_interfaces = self.nics(&v).await?;
        // NICs that face the host (Redfish host interfaces) are the same on every BMC of a model
        // and never identify the BMC.
        if let Some(coll) = link_at(&v, "HostInterfaces") {
            let members = self.members(&coll).await?;
            for (_, hi) in self.fetch_all(members, &fields::HOST_INTERFACE).await? {
                if let Some(target) = link_at(&hi, "ManagerEthernetInterface")
                    && let Ok(target) = self.c.resolve(&target)
                {
                    for n in ethernet_interfaces.iter_mut().filter(|n| n.path == target) {
                        n.host_interface = true;
                    }
                }
                if let Some(coll) = link_at(&hi, "HostEthernetInterfaces") {
                    let host = self.members(&coll).await?;
                    self.host_side
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(host);
                }
            }
        }
        Ok(Manager {
            id: str_at(&v, "Id"),
            name: str_at(&v, "Name"),
            manager_type: str_at(&v, "ManagerType"),
            model: str_at(&v, "Model"),
            firmware_version: str_at(&v, "FirmwareVersion"),
            uuid: str_at(&v, "UUID"),
            serial_console: strings(
                v.get("SerialConsole")
                    .and_then(|s| s.get("ConnectTypesSupported")),
            ),
            command_shell: strings(
                v.get("CommandShell")
                    .and_then(|s| s.get("ConnectTypesSupported")),
            ),
            reset_types: self.reset_types(&v, "#Manager.Reset").await?,
            ethernet_interfaces,
            path,
        })
    }

    async fn system(&self, path: String, v: Value) -> Result<System, FetchError> {
        let ethernet_interfaces = self.nics(&v).await?;
        let mut network_interfaces = Vec::new();
        if self.opts.network_interfaces
            && let Some(coll) = link_at(&v, "NetworkInterfaces")
        {
            let members = self.members(&coll).await?;
            for (p, ni) in self.fetch_all(members, &fields::NETWORK_INTERFACE).await? {
                let adapter = match ni.get("Links").and_then(|l| link_at(l, "NetworkAdapter")) {
                    Some(a) => self
                        .fetch(&a, &fields::NETWORK_ADAPTER)
                        .await?
                        .map(|(ap, a)| NetworkAdapter {
                            path: ap,
                            manufacturer: str_at(&a, "Manufacturer"),
                            name: str_at(&a, "Name"),
                            model: str_at(&a, "Model"),
                            serial: str_at(&a, "SerialNumber"),
                            description: str_at(&a, "Description"),
                        }),
                    None => None,
                };
                network_interfaces.push(NetworkInterface {
                    path: p,
                    name: str_at(&ni, "Name"),
                    description: str_at(&ni, "Description"),
                    adapter,
                });
            }
        }
        let resolve = |x: &str| self.c.resolve(x).ok();
        let hardware = if self.opts.hardware {
            self.hardware(&v).await?
        } else {
            Vec::new()
        };
        let mut sys = parse_system(path, &v, &resolve);
        sys.hardware = hardware;
        if sys.reset_types.is_empty() {
            // Only `@Redfish.ActionInfo` (Cray EX, Gigabyte): one more GET.
            sys.reset_types = self.reset_types(&v, "#ComputerSystem.Reset").await?;
        }
        sys.ethernet_interfaces = ethernet_interfaces;
        sys.network_interfaces = network_interfaces;
        Ok(sys)
    }
}

/// The fields of a ComputerSystem document itself (no fetching): what the lenient readers make
/// of whatever the BMC sent. `resolve` turns links into paths on the BMC (or refuses them).
pub fn parse_system(path: String, v: &Value, resolve: &dyn Fn(&str) -> Option<String>) -> System {
    let l = v.get("Links");
    let resolve_all = |key: &str| -> Vec<String> {
        links(l.and_then(|l| l.get(key)))
            .iter()
            .filter_map(|x| resolve(x))
            .collect()
    };
    System {
        id: str_at(v, "Id"),
        name: str_at(v, "Name"),
        uuid: str_at(v, "UUID"),
        manufacturer: str_at(v, "Manufacturer"),
        model: str_at(v, "Model"),
        serial: str_at(v, "SerialNumber"),
        sku: str_at(v, "SKU"),
        system_type: str_at(v, "SystemType"),
        power_state: str_at(v, "PowerState"),
        bios_version: str_at(v, "BiosVersion"),
        processor_count: num_path(v, &["ProcessorSummary", "Count"])
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n < 1e9)
            .map(|n| n as u64),
        processor_model: str_path(v, &["ProcessorSummary", "Model"]),
        memory_gib: num_path(v, &["MemorySummary", "TotalSystemMemoryGiB"]).filter(|n| *n >= 0.0),
        serial_console: v.get("SerialConsole").is_some_and(Value::is_object),
        reset_types: strings(
            v.get("Actions")
                .and_then(|a| a.get("#ComputerSystem.Reset"))
                .and_then(|a| a.get("ResetType@Redfish.AllowableValues")),
        ),
        reset_target: v
            .get("Actions")
            .and_then(|a| a.get("#ComputerSystem.Reset"))
            .and_then(|a| a.get("target"))
            .and_then(Value::as_str)
            .and_then(resolve),
        boot_targets: strings(
            v.get("Boot")
                .and_then(|b| b.get("BootSourceOverrideTarget@Redfish.AllowableValues")),
        ),
        managed_by: resolve_all("ManagedBy"),
        chassis: resolve_all("Chassis"),
        ethernet_interfaces: Vec::new(),
        network_interfaces: Vec::new(),
        power_control_ids: Vec::new(),
        found_via: vec!["Systems".into()],
        health: health_of(v),
        hardware: Vec::new(),
        path,
    }
}

const PROCESSOR_PROPS: &[&str] = &[
    "Socket",
    "ProcessorType",
    "ProcessorArchitecture",
    "InstructionSet",
    "MaxSpeedMHz",
    "TotalCores",
    "TotalThreads",
];
const MEMORY_PROPS: &[&str] = &[
    "DeviceLocator",
    "CapacityMiB",
    "MemoryType",
    "MemoryDeviceType",
    "BaseModuleType",
    "OperatingSpeedMhz",
    "ErrorCorrection",
];
const DRIVE_PROPS: &[&str] = &["CapacityBytes", "Protocol", "MediaType"];
const PSU_PROPS: &[&str] = &["PowerCapacityWatts"];

/// One piece of hardware from its Redfish document (already cut to its shape's fields).
pub fn hardware_of(kind: HardwareKind, path: String, v: &Value, props: &[&str]) -> Hardware {
    let properties = props
        .iter()
        .filter_map(|k| {
            v.get(*k)
                .filter(|x| !x.is_null())
                .map(|x| ((*k).to_string(), x.clone()))
        })
        .collect();
    Hardware {
        kind,
        uri: Some(path),
        id: str_at(v, "Id"),
        name: str_at(v, "Name"),
        manufacturer: str_at(v, "Manufacturer"),
        model: str_at(v, "Model"),
        serial: str_at(v, "SerialNumber"),
        part_number: str_at(v, "PartNumber"),
        firmware_version: str_at(v, "FirmwareVersion")
            .or_else(|| str_at(v, "Revision"))
            .or_else(|| str_at(v, "Version")),
        health: health_of(v),
        state: str_path(v, &["Status", "State"]),
        properties,
    }
}

/// `Status.Health`, else `Status.HealthRollup`.
pub fn health_of(v: &Value) -> Option<String> {
    str_path(v, &["Status", "Health"]).or_else(|| str_path(v, &["Status", "HealthRollup"]))
}

/// An EthernetInterface document, leniently.
pub fn nic(path: String, v: &Value) -> Nic {
    Nic {
        id: str_at(v, "Id"),
        name: str_at(v, "Name"),
        description: str_at(v, "Description"),
        mac: mac_at(v, "MACAddress"),
        permanent_mac: mac_at(v, "PermanentMACAddress"),
        ipv4: ipv4_addresses(v),
        enabled: bool_at(v, "InterfaceEnabled"),
        state: str_path(v, &["Status", "State"]),
        host_interface: false,
        path,
    }
}

/// A Chassis document, leniently.
pub fn chassis(path: String, v: &Value, c: &BmcClient) -> Chassis {
    Chassis {
        id: str_at(v, "Id"),
        chassis_type: str_at(v, "ChassisType"),
        manufacturer: str_at(v, "Manufacturer"),
        model: str_at(v, "Model"),
        serial: str_at(v, "SerialNumber"),
        sku: str_at(v, "SKU"),
        power_state: str_at(v, "PowerState"),
        computer_systems: links(v.get("Links").and_then(|l| l.get("ComputerSystems")))
            .iter()
            .filter_map(|x| c.resolve(x).ok())
            .collect(),
        power: link_at(v, "Power").and_then(|p| c.resolve(&p).ok()),
        path,
    }
}

/// Crawls one BMC. `root` is the service root the scan already fetched, if any; `connected_ip`
/// is the address the BMC was reached at, which picks its MAC among the manager NICs.
pub async fn crawl(
    c: &BmcClient,
    root: Option<Value>,
    connected_ip: Option<IpAddr>,
    opts: &CrawlOptions,
) -> Result<BmcInventory, CrawlError> {
    let root = match root {
        Some(r) => r,
        None => c.service_root().await?,
    };
    let w = Walk {
        c,
        opts,
        warnings: Mutex::new(Vec::new()),
        dropped_warnings: std::sync::atomic::AtomicUsize::new(0),
        host_side: Mutex::new(HashSet::new()),
    };
    let sessions = root
        .get("Links")
        .and_then(|l| link_at(l, "Sessions"))
        .or_else(|| {
            link_at(&root, "SessionService")
                .map(|s| format!("{}/Sessions", s.trim_end_matches('/')))
        });
    c.login(sessions.as_deref()).await?;
    let result = walk(&w, &root).await;
    // The session is deleted whatever happened; a failed logout is worth a warning, not the
    // crawl.
    if let Err(e) = c.logout().await {
        w.warn(format!("session logout: {e}"));
    }
    let mut inv = result?;
    if inv.managers.is_empty() && inv.systems.is_empty() && inv.chassis.is_empty() {
        let warnings = w.take_warnings();
        return Err(CrawlError::Empty(
            warnings
                .into_iter()
                .next()
                .unwrap_or_else(|| "the service root links no Managers, Systems or Chassis".into()),
        ));
    }
    inv.service_root = ServiceRoot {
        redfish_version: str_at(&root, "RedfishVersion"),
        uuid: str_at(&root, "UUID"),
        vendor: str_at(&root, "Vendor"),
        product: str_at(&root, "Product"),
        session_service: link_at(&root, "SessionService").and_then(|s| c.resolve(&s).ok()),
        sessions,
    };
    let v = vendor::detect(&root, &inv);
    v.finish(&mut inv);
    inv.vendor = v.name().to_string();
    inv.bmc_mac = bmc_mac(&inv, connected_ip, v);
    if inv.bmc_mac.is_none() {
        w.warn(match connected_ip {
            Some(ip) => format!("no manager NIC has the address {ip}; BMC MAC unknown"),
            None => "BMC reached by name; BMC MAC unknown".into(),
        });
    }
    inv.warnings = w.take_warnings();
    inv.url = c.base().as_str().trim_end_matches('/').to_string();
    inv.requests = c.requests();
    Ok(inv)
}

async fn walk(w: &Walk<'_>, root: &Value) -> Result<BmcInventory, CrawlError> {
    let mut inv = BmcInventory::default();
    if let Some(coll) = link_at(root, "Managers") {
        let members = w.members(&coll).await?;
        for (path, v) in w.fetch_all(members, &fields::MANAGER).await? {
            inv.managers.push(w.manager(path, v).await?);
        }
    }
    if let Some(coll) = link_at(root, "Systems") {
        let members = w.members(&coll).await?;
        for (path, v) in w.fetch_all(members, &fields::SYSTEM).await? {
            inv.systems.push(w.system(path, v).await?);
        }
    }
    if let Some(coll) = link_at(root, "Chassis") {
        let members = w.members(&coll).await?;
        for (path, v) in w.fetch_all(members, &fields::CHASSIS).await? {
            inv.chassis.push(chassis(path, &v, w.c));
        }
    }
    // Systems that only a chassis links to (some BMCs have no /Systems entry for them).
    let mut extra = Vec::new();
    for ch in &inv.chassis {
        for s in &ch.computer_systems {
            match inv.systems.iter_mut().find(|x| &x.path == s) {
                Some(sys) if !sys.found_via.iter().any(|f| f == "Chassis") => {
                    sys.found_via.push("Chassis".into());
                }
                Some(_) => {}
                None if !extra.contains(s) => extra.push(s.clone()),
                None => {}
            }
        }
    }
    for (path, v) in w.fetch_all(extra, &fields::SYSTEM).await? {
        let mut sys = w.system(path, v).await?;
        sys.found_via = vec!["Chassis".into()];
        inv.systems.push(sys);
    }
    let host_side = w
        .host_side
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for n in inv
        .systems
        .iter_mut()
        .flat_map(|s| s.ethernet_interfaces.iter_mut())
    {
        if host_side.contains(&n.path) {
            n.host_interface = true;
        }
    }
    // The services SMD lists as ServiceEndpoints. One that cannot be read is still listed (as
    // SMD does), without its document.
    for (prop, kind, shape) in &fields::SERVICES {
        let Some(link) = link_at(root, prop) else {
            continue;
        };
        let info = w.fetch(&link, shape).await?.map(|(_, v)| v);
        inv.services.push(skyport_wire::discovery::Service {
            redfish_type: (*kind).to_string(),
            odata_id: link,
            service_info: info,
        });
    }
    // Power controls of each system's first chassis (SMD builds PowerURL from the same chassis).
    for i in 0..inv.systems.len() {
        let Some(ch) = inv.systems[i].chassis.first().cloned() else {
            continue;
        };
        let power = inv
            .chassis
            .iter()
            .find(|c| c.path == ch)
            .and_then(|c| c.power.clone());
        let Some(power) = power else { continue };
        if let Some((_, p)) = w.fetch(&power, &fields::POWER).await? {
            let ids = match p.get("PowerControl") {
                Some(Value::Array(a)) => a.iter().filter_map(crate::res::odata_id).collect(),
                _ => Vec::new(),
            };
            inv.systems[i].power_control_ids = ids;
            if w.opts.hardware
                && let Some(Value::Array(psus)) = p.get("PowerSupplies")
            {
                for (k, s) in psus.iter().enumerate() {
                    let path = str_at(s, "@odata.id")
                        .unwrap_or_else(|| format!("{power}#/PowerSupplies/{k}"));
                    let mut h = hardware_of(HardwareKind::PowerSupply, path, s, PSU_PROPS);
                    h.id = h.id.or_else(|| str_at(s, "MemberId"));
                    inv.systems[i].hardware.push(h);
                }
            }
        }
    }
    Ok(inv)
}

fn bmc_mac(
    inv: &BmcInventory,
    connected_ip: Option<IpAddr>,
    v: &dyn vendor::Vendor,
) -> Option<skyport_model::Mac> {
    let IpAddr::V4(ip) = connected_ip? else {
        return None;
    };
    inv.managers
        .iter()
        .flat_map(|m| m.ethernet_interfaces.iter())
        .filter(|n| !n.host_interface && !v.is_host_interface(n))
        .find(|n| n.ipv4.contains(&ip))
        .and_then(|n| n.mac.or(n.permanent_mac))
}
