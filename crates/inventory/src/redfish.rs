//! `Inventory/RedfishEndpoints` and `Inventory/ComponentEndpoints`: BMC records, and what a
//! discovery payload (Magellan's `SchemaVersion: 1`) derives from them: the BMC component,
//! `<ID>n<k>` node components, their ComponentEndpoints and EthernetInterfaces. An endpoint and
//! everything derived from it are written in one atomic batch.
//!
//! Deliberate differences from SMD, each fixing an upstream bug:
//! * a stored endpoint answers 201, never a 409 on top of the stored data;
//! * passwords are dropped on input, so they are never stored or returned;
//! * re-discovery does not blank an existing component's State/Flag/Arch/Class;
//! * a discovered node gets its node map's NID and Role (`Defaults/NodeMaps`), else SMD's
//!   xname-derived default NID (upstream's V2 parser numbers them 1..k per BMC, which hands
//!   NID 1 to every BMC's first node, and never reads node maps); an existing node keeps its
//!   NID and Role;
//! * systems without a UUID are told apart by their Redfish URI instead of collapsing into one;
//! * MACs are normalised and placeholders ("Not Available") dropped, an interface without an IP
//!   is kept (with no IP) instead of being refused, and a MAC already owned by another component
//!   is a 409 naming that component unless the update is forced (PUT).

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::json;
use skyport_http::ApiError;
use skyport_model::{HmsType, Mac, MacError, Xname};
use skyport_store::{IndexKey, Record, StoreError, Write};
use skyport_wire::{
    Component, ComponentEndpoint, DiscoveryInfo, EthernetInterface, IpMapping, RedfishEndpoint,
    RedfishEndpointIn, RedfishEndpointPatch, discovery,
};

use crate::components::{apply_node_defaults, nid_conflict};
use crate::error::{EndpointError, InventoryError};
use crate::filters::{ComponentEndpointFilter, EndpointFilter, ids, single};
use crate::records::{
    self, COMPONENT_ENDPOINTS, COMPONENTS, ETHERNET_INTERFACES, REDFISH_ENDPOINTS,
};
use crate::{Candidates, Fail, Inventory, now_rfc3339, retrying};

const DUP_ENDPOINT: &str =
    "operation would conflict with an existing resource that has the same FQDN or xname ID.";
/// SMD's PUT and PATCH say it shorter (smd-api.go doRedfishEndpointPut/Patch).
const DUP_ENDPOINT_PUT: &str =
    "operation would conflict with an existing resource that has the same FQDN";
const DUP_MAC: &str = "operation would conflict with an existing component ethernet interface that has the same MAC address.";

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// A usable IP from discovery data: placeholders (`N/A`, `0.0.0.0`, `::`) are missing.
fn real_ip(s: Option<&str>) -> Option<String> {
    let ip = parse_ip(s?)?;
    (!ip.is_unspecified()).then(|| ip.to_string())
}

/// A MAC from discovery data: placeholders are missing; garbage is missing too (BMCs report
/// anything), but never stored.
fn real_mac(s: Option<&str>) -> Option<Mac> {
    Mac::parse(s?).ok()
}

/// Validates and normalises an endpoint as SMD's `NewRedfishEPDescription` does: Type from the
/// xname (a controller type), Hostname/Domain/FQDN made consistent, IP checked, MAC normalised.
pub fn normalize_endpoint(
    raw: &RedfishEndpointIn,
    url_id: Option<&Xname>,
) -> Result<RedfishEndpoint, EndpointError> {
    let mut domain = raw
        .domain
        .as_deref()
        .unwrap_or("")
        .trim_matches(|c| c == '.' || c == ' ')
        .to_string();
    let mut hostname = raw.hostname.as_deref().unwrap_or("").trim().to_string();
    let mut host_is_ip = false;
    if !hostname.is_empty() {
        if let Some(ip) = parse_ip(&hostname) {
            hostname = ip.to_string();
            host_is_ip = true;
        } else if hostname.contains('.') {
            return Err(EndpointError::HostnameNotBasename);
        }
    }
    let fqdn_in = raw.fqdn.as_deref().unwrap_or("").trim().to_string();
    // `10.0.0.5:8443`: a BMC on a non-default port (SMD and Magellan drop the port, which makes
    // the endpoint unreachable); the address is the host, the FQDN keeps the port.
    let socket_fqdn = fqdn_in.parse::<std::net::SocketAddr>().ok();
    if let Some(sa) = socket_fqdn {
        if hostname.is_empty() {
            hostname = sa.ip().to_string();
            host_is_ip = true;
        }
    } else if !fqdn_in.is_empty() {
        if let Some(ip) = parse_ip(&fqdn_in) {
            if hostname.is_empty() {
                hostname = ip.to_string();
                host_is_ip = true;
            }
        } else {
            let (h, d) = fqdn_in.split_once('.').unwrap_or((&fqdn_in, ""));
            if hostname.is_empty() {
                hostname = h.to_string();
            }
            if domain.is_empty() && hostname == h {
                domain = d.to_string();
            }
        }
    }
    let id_raw = raw.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let id = match (id_raw, url_id) {
        (Some(s), _) => Xname::parse(s).map_err(|_| EndpointError::NotAnXname(s.into()))?,
        (None, Some(u)) => u.clone(),
        (None, None) if !hostname.is_empty() && !host_is_ip => {
            Xname::parse(&hostname).map_err(|_| EndpointError::NotAnXname(hostname.clone()))?
        }
        (None, None) => return Err(EndpointError::NoXname),
    };
    if let Some(u) = url_id
        && u != &id
    {
        return Err(EndpointError::IdMismatch);
    }
    if !id.hms_type().is_redfish_controller() {
        return Err(EndpointError::NotAController {
            id: id.to_string(),
            hms_type: id.hms_type(),
        });
    }
    if hostname.is_empty() {
        hostname = id.to_string();
    }
    let fqdn = if let Some(sa) = socket_fqdn.filter(|sa| sa.ip().to_string() == hostname) {
        sa.to_string()
    } else if host_is_ip || domain.is_empty() {
        hostname.clone()
    } else {
        format!("{hostname}.{domain}")
    };
    if !fqdn_in.is_empty()
        && !fqdn_in.eq_ignore_ascii_case(&fqdn)
        && parse_ip(&fqdn_in).is_none()
        && socket_fqdn.is_none()
    {
        return Err(EndpointError::FqdnConflict {
            derived: fqdn,
            given: fqdn_in,
        });
    }
    let mut ip_address = String::new();
    if let Some(ip) = raw
        .ip_address
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let parsed = parse_ip(ip).ok_or_else(|| EndpointError::BadIpAddress(ip.into()))?;
        if host_is_ip && parsed.to_string() != hostname {
            return Err(EndpointError::IpConflict {
                hostname,
                ip: ip.into(),
            });
        }
        ip_address = parsed.to_string();
    } else if host_is_ip {
        ip_address = hostname.clone();
    }
    let mac_addr = match raw
        .mac_addr
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => String::new(),
        Some(m) => match Mac::parse(m) {
            Ok(mac) => mac.to_string(),
            Err(MacError::Placeholder { .. }) => String::new(),
            Err(e) => return Err(EndpointError::BadMac(e)),
        },
    };
    let discovered = !raw.systems.is_empty() || !raw.managers.is_empty();
    Ok(RedfishEndpoint {
        r#type: id.hms_type().to_string(),
        id: id.to_string(),
        name: raw.name.clone().unwrap_or_default(),
        hostname,
        domain,
        fqdn,
        enabled: raw.enabled.unwrap_or(true),
        uuid: raw.uuid.clone().unwrap_or_default().trim().to_string(),
        user: raw.user.clone().unwrap_or_default(),
        password: skyport_wire::NoPassword,
        use_ssdp: raw.use_ssdp.unwrap_or(false),
        mac_required: raw.mac_required.unwrap_or(false),
        mac_addr,
        ip_address,
        rediscover_on_update: raw.rediscover_on_update.unwrap_or(false),
        template_id: raw.template_id.clone().unwrap_or_default(),
        discovery_info: DiscoveryInfo {
            last_discovery_attempt: if discovered {
                now_rfc3339()
            } else {
                String::new()
            },
            last_discovery_status: if discovered {
                "DiscoverOK"
            } else {
                "NotYetQueried"
            }
            .into(),
            redfish_version: String::new(),
        },
    })
}

/// Everything a discovery payload derives besides the endpoint itself.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Derived {
    pub components: Vec<Component>,
    pub endpoints: Vec<ComponentEndpoint>,
    pub interfaces: Vec<EthernetInterface>,
    /// SMD's hardware inventory of the BMC's nodes ([`crate::hardware`]).
    pub hardware: Vec<skyport_wire::hwinv::HwInvByLoc>,
    /// The flag each node's reported health sets, by xname.
    pub health: std::collections::BTreeMap<String, skyport_model::Flag>,
}

fn uri_path(u: &str) -> String {
    // Magellan sends full URLs; SMD keeps the path only.
    if let Some(rest) = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
    {
        return rest
            .find('/')
            .map_or_else(|| "/".to_string(), |i| rest[i..].to_string());
    }
    u.to_string()
}

fn interfaces_for(
    component: &Xname,
    nics: &[discovery::Ethernet],
    now: &str,
    out: &mut Vec<EthernetInterface>,
) {
    for nic in nics {
        let Some(mac) = real_mac(nic.mac.as_deref()) else {
            continue;
        };
        if out.iter().any(|e| e.id == mac.id()) {
            continue;
        }
        out.push(EthernetInterface {
            id: mac.id(),
            description: nic.description.clone().unwrap_or_default(),
            mac_address: mac.to_string(),
            last_update: now.to_string(),
            component_id: component.to_string(),
            r#type: component.hms_type().to_string(),
            ip_addresses: real_ip(nic.ip.as_deref())
                .map(|ip| {
                    vec![IpMapping {
                        ip_address: ip,
                        network: String::new(),
                    }]
                })
                .unwrap_or_default(),
        });
    }
}

/// The ComponentEndpoint of `ep` for its Redfish resource of type `redfish_type` (`Manager`,
/// `ComputerSystem`) at `uri`, which describes the component `x`.
fn component_endpoint(
    ep: &RedfishEndpoint,
    x: &Xname,
    redfish_type: &str,
    uri: &str,
) -> ComponentEndpoint {
    ComponentEndpoint {
        id: x.to_string(),
        r#type: x.hms_type().to_string(),
        redfish_type: redfish_type.into(),
        odata_id: uri.into(),
        redfish_endpoint_id: ep.id.clone(),
        enabled: true,
        redfish_endpoint_fqdn: ep.fqdn.clone(),
        redfish_url: format!("{}{uri}", ep.fqdn),
        component_endpoint_type: format!("ComponentEndpoint{redfish_type}"),
        ..Default::default()
    }
}

/// The `Actions` block of the resource at `uri` offering `action` (`Manager.Reset`,
/// `ComputerSystem.Reset`) with the reset types `allowed`.
fn reset_action(uri: &str, action: &str, allowed: &[String]) -> serde_json::Value {
    let mut actions = serde_json::Map::new();
    actions.insert(
        format!("#{action}"),
        // hms-base `ActionReset`'s key order; no reset types is Go's nil slice, `null`.
        json!({
            "ResetType@Redfish.AllowableValues": if allowed.is_empty() { serde_json::Value::Null } else { json!(allowed) },
            "@Redfish.ActionInfo": format!("{uri}/ResetActionInfo"),
            "target": format!("{uri}/Actions/{action}"),
        }),
    );
    serde_json::Value::Object(actions)
}

/// One `EthernetNICInfo` entry in SMD's key order (`rf.EthernetNICInfo`), its `omitempty`
/// keys left out when empty.
fn nic_info(
    redfish_id: &str,
    odata_id: &str,
    description: &str,
    hostname: &str,
    enabled: bool,
    mac: &Mac,
    permanent: bool,
) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert("RedfishId".into(), json!(redfish_id));
    o.insert("@odata.id".into(), json!(odata_id));
    if !description.is_empty() {
        o.insert("Description".into(), json!(description));
    }
    if !hostname.is_empty() {
        o.insert("Hostname".into(), json!(hostname));
    }
    o.insert("InterfaceEnabled".into(), json!(enabled));
    o.insert("MACAddress".into(), json!(mac.to_string()));
    if permanent {
        o.insert("PermanentMACAddress".into(), json!(mac.to_string()));
    }
    serde_json::Value::Object(o)
}

/// A system's or manager's info block: `Name` and `EthernetNICInfo` only when not empty
/// (`omitempty` upstream), in SMD's key order.
fn info_block(
    name: Option<&str>,
    actions: serde_json::Value,
    nics: Vec<serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut o = serde_json::Map::new();
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        o.insert("Name".into(), json!(n));
    }
    o.insert("Actions".into(), actions);
    if !nics.is_empty() {
        o.insert("EthernetNICInfo".into(), json!(nics));
    }
    o
}

/// SMD's V2 parser, minus its bugs (see the module docs). Pure: no I/O.
pub fn derive(ep: &RedfishEndpoint, raw: &RedfishEndpointIn) -> Derived {
    let mut d = Derived::default();
    let Ok(bmc) = Xname::parse(&ep.id) else {
        return d;
    };
    let now = now_rfc3339();
    if !raw.managers.is_empty() {
        d.components.push(Component {
            id: bmc.to_string(),
            r#type: bmc.hms_type().to_string(),
            state: "Ready".into(),
            flag: "OK".into(),
            enabled: Some(true),
            ..Default::default()
        });
    }
    for m in &raw.managers {
        let uri = uri_path(m.uri.as_deref().unwrap_or(""));
        let nics: Vec<serde_json::Value> = m
            .ethernet_interfaces
            .iter()
            .filter_map(|n| {
                let mac = real_mac(n.mac.as_deref())?;
                Some(nic_info(
                    "",
                    "",
                    n.description.as_deref().unwrap_or_default(),
                    n.name.as_deref().unwrap_or_default(),
                    n.enabled.unwrap_or(true),
                    &mac,
                    true,
                ))
            })
            .collect();
        d.endpoints.retain(|e| e.id != bmc.as_str());
        d.endpoints.push(ComponentEndpoint {
            redfish_subtype: m.r#type.clone().unwrap_or_default(),
            uuid: m.uuid.clone().unwrap_or_default(),
            redfish_manager_info: Some({
                let mut o = info_block(
                    m.name.as_deref(),
                    reset_action(&uri, "Manager.Reset", &m.actions),
                    nics,
                );
                o.insert(
                    "CommandShell".into(),
                    json!({"ServiceEnabled": true, "MaxConcurrentSessions": 65536,
                           "ConnectTypesSupported": m.command_shell}),
                );
                serde_json::Value::Object(o)
            }),
            ..component_endpoint(ep, &bmc, "Manager", &uri)
        });
        interfaces_for(&bmc, &m.ethernet_interfaces, &now, &mut d.interfaces);
    }
    if bmc.hms_type() != HmsType::NodeBmc {
        return d;
    }
    // One node per distinct system: by UUID, or by URI when the BMC reports no UUID.
    let mut seen: Vec<String> = Vec::new();
    for sys in &raw.systems {
        let uri = uri_path(sys.uri.as_deref().unwrap_or(""));
        let key = match sys.uuid.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => format!("uuid:{}", u.to_ascii_lowercase()),
            None => format!("uri:{uri}"),
        };
        if seen.contains(&key) {
            continue;
        }
        let k = seen.len() as u32;
        seen.push(key);
        let Some(node) = bmc.child_node(k) else {
            continue;
        };
        let state = match sys.power.as_ref().and_then(|p| p.state.as_deref()) {
            Some(s) if s.eq_ignore_ascii_case("off") => "Off",
            _ => "On",
        };
        let health = crate::hardware::flag_of(sys);
        let mut c = Component {
            id: node.to_string(),
            r#type: node.hms_type().to_string(),
            state: state.into(),
            flag: health.unwrap_or(skyport_model::Flag::Ok).to_string(),
            enabled: Some(true),
            ..Default::default()
        };
        if let Some(h) = health {
            d.health.insert(node.to_string(), h);
        }
        d.hardware.extend(crate::hardware::derive(&bmc, &node, sys));
        apply_node_defaults(&mut c, &node);
        d.components.push(c);
        let chassis0 = sys
            .links
            .as_ref()
            .and_then(|l| l.chassis.first())
            .map(|c| uri_path(c));
        let power_url = chassis0.as_ref().map(|c| {
            let parent = c
                .trim_end_matches('/')
                .rsplit_once('/')
                .map_or("", |(p, _)| p);
            format!("{parent}/Power")
        });
        let power_control: Vec<serde_json::Value> = sys
            .power
            .as_ref()
            .map(|p| p.power_control_ids.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|pc| {
                let pc = uri_path(pc);
                let mut related = vec![json!({"@odata.id": uri})];
                if let Some(c) = &chassis0 {
                    related.push(json!({"@odata.id": c}));
                }
                json!({
                    "@odata.id": pc,
                    "MemberId": pc.rsplit('/').next().unwrap_or(""),
                    "Name": "System Power Control",
                    "RelatedItem": related,
                })
            })
            .collect();
        let nics: Vec<serde_json::Value> = sys
            .ethernet_interfaces
            .iter()
            .filter_map(|n| {
                let mac = real_mac(n.mac.as_deref())?;
                let u = uri_path(n.uri.as_deref().unwrap_or(""));
                Some(nic_info(
                    &u,
                    &u,
                    n.description.as_deref().unwrap_or_default(),
                    "",
                    n.enabled.unwrap_or(true),
                    &mac,
                    false,
                ))
            })
            .collect();
        let mut obj = info_block(
            sys.name.as_deref(),
            reset_action(&uri, "ComputerSystem.Reset", &sys.actions),
            nics,
        );
        if let Some(p) = power_url {
            obj.insert("PowerURL".into(), json!(p));
        }
        if !power_control.is_empty() {
            obj.insert("PowerControl".into(), json!(power_control));
        }
        let info = serde_json::Value::Object(obj);
        d.endpoints.push(ComponentEndpoint {
            redfish_subtype: sys.system_type.clone().unwrap_or_default(),
            uuid: sys.uuid.clone().unwrap_or_default(),
            redfish_system_info: Some(info),
            ..component_endpoint(ep, &node, "ComputerSystem", &uri)
        });
        interfaces_for(&node, &sys.ethernet_interfaces, &now, &mut d.interfaces);
    }
    d
}

/// Maps a duplicate FQDN/MAC/NID to the 409 text an admin can act on.
fn endpoint_conflict(e: StoreError, post: bool) -> Fail {
    match e {
        StoreError::Duplicate { key, owner }
            if key.name.starts_with("rfe-") || key.name == "bmc-mac" =>
        {
            let detail = if post { DUP_ENDPOINT } else { DUP_ENDPOINT_PUT };
            Fail::Api(ApiError::conflict(detail).context(format!(
                "{} {} belongs to {}",
                key.name
                    .trim_start_matches("rfe-")
                    .trim_start_matches("bmc-"),
                key.value,
                owner.trim_start_matches("RedfishEndpoints/")
            )))
        }
        other => nid_conflict(other),
    }
}

impl Inventory {
    /// A failed endpoint batch as the caller may see it. A site's token whose endpoint
    /// collided with another site's record (its FQDN, BMC MAC, a node's NID) is refused
    /// without learning which record or whose ([`skyport_sites::ownership::refuse`]).
    async fn endpoint_refusal(&self, e: StoreError, site: Option<&str>, post: bool) -> Fail {
        if let (Some(site), StoreError::Duplicate { key, owner }) = (site, &e) {
            match skyport_sites::ownership::held_by_other_site(self.store.as_ref(), site, owner)
                .await
            {
                Ok(true) => {
                    return Fail::from(skyport_sites::ownership::refuse(
                        site,
                        &format!("{} {} is held by {owner}", key.name, key.value),
                    ));
                }
                Ok(false) => {}
                Err(err) => return Fail::from(err),
            }
        }
        endpoint_conflict(e, post)
    }

    /// The batch that stores `ep` with everything `raw` derives, merged into what exists.
    async fn endpoint_ops(
        &self,
        ep: &RedfishEndpoint,
        prev: Option<Record>,
        raw: &RedfishEndpointIn,
        force: bool,
        site: Option<&str>,
    ) -> Result<Vec<Write>, Fail> {
        let exists = prev.is_some();
        let mut ops = vec![Write::Put {
            table: REDFISH_ENDPOINTS,
            record: records::redfish_endpoint(ep)?,
            prev,
        }];
        let d = derive(ep, raw);
        let ids: Vec<String> = d.components.iter().map(|c| c.id.clone()).collect();
        if let Some(site) = site {
            // An edge agent's push claims the BMC (and the nodes under it) for its site, in the
            // same batch, and may not touch another site's.
            let x = Xname::parse(&ep.id)
                .map_err(|e| Fail::Api(ApiError::bad_request(format!("{}: {e}", ep.id))))?;
            let now = skyport_model::now();
            ops.extend(
                skyport_sites::ownership::claim_ops(
                    self.store.as_ref(),
                    site,
                    &x,
                    &ids,
                    exists,
                    now,
                )
                .await?,
            );
        }
        let existing = records::by_id(self.store.get_many(COMPONENTS, &ids).await?);
        let new: Vec<String> = ids
            .iter()
            .filter(|id| !existing.contains_key(*id))
            .cloned()
            .collect();
        // A node discovery creates takes the NID and Role its node map plans.
        let plans = self.planned(&new).await?;
        for c in &d.components {
            let health = d.health.get(&c.id).copied();
            let (record, prev) = match existing.get(&c.id) {
                None => {
                    let mut c = c.clone();
                    if let Some(m) = plans.get(&c.id) {
                        crate::nodemaps::apply_plan(&mut c, m, false, false);
                    }
                    (c, None)
                }
                Some(r) => {
                    // Re-discovery refreshes what discovery knows and keeps what admins set;
                    // the BMC's health report is discovery's to set, an admin's lock is not.
                    let mut cur: Component = records::decode(COMPONENTS, r)?;
                    cur.state = c.state.clone();
                    if cur.flag.is_empty()
                        || (health.is_some() && cur.flag != skyport_model::Flag::Locked.to_string())
                    {
                        cur.flag = c.flag.clone();
                    }
                    (cur, Some(r.clone()))
                }
            };
            ops.push(Write::Put {
                table: COMPONENTS,
                record: records::component(&record)?,
                prev,
            });
        }
        ops.extend(crate::hardware::replace_ops(self, &ep.id, d.hardware.clone()).await?);
        if let Some(services) = &raw.services {
            let new = crate::services::from_payload(ep, services)?;
            ops.extend(self.service_ops(&ep.id, &new).await?);
        }
        let ce_ids: Vec<String> = d.endpoints.iter().map(|c| c.id.clone()).collect();
        let existing_ce = records::by_id(self.store.get_many(COMPONENT_ENDPOINTS, &ce_ids).await?);
        for ce in &d.endpoints {
            ops.push(Write::Put {
                table: COMPONENT_ENDPOINTS,
                record: records::component_endpoint(ce)?,
                prev: existing_ce.get(&ce.id).cloned(),
            });
        }
        let ei_ids: Vec<String> = d.interfaces.iter().map(|e| e.id.clone()).collect();
        let existing_ei = records::by_id(self.store.get_many(ETHERNET_INTERFACES, &ei_ids).await?);
        for ei in &d.interfaces {
            let prev = existing_ei.get(&ei.id);
            let mut ei = ei.clone();
            if let Some(r) = prev {
                let old: EthernetInterface = records::decode(ETHERNET_INTERFACES, r)?;
                if let Some(site) = site
                    && !old.component_id.is_empty()
                    && old.component_id != ei.component_id
                {
                    // Not even a forced update moves another site's NIC.
                    if let Some(check) = skyport_sites::ownership::check_owned(
                        self.store.as_ref(),
                        site,
                        &old.component_id,
                    )
                    .await?
                    {
                        ops.push(check);
                    }
                }
                if !force && !old.component_id.is_empty() && old.component_id != ei.component_id {
                    return Err(Fail::Api(
                        ApiError::conflict(DUP_MAC)
                            .context(format!("{} is {}'s", ei.mac_address, old.component_id)),
                    ));
                }
                // Keep IPs learned elsewhere (DHCP) when discovery saw none.
                if ei.ip_addresses.is_empty() {
                    ei.ip_addresses = old.ip_addresses;
                }
                if ei.description.is_empty() {
                    ei.description = old.description;
                }
            }
            ops.push(Write::Put {
                table: ETHERNET_INTERFACES,
                record: records::ethernet_interface(&ei)?,
                prev: prev.cloned(),
            });
        }
        Ok(ops)
    }

    /// `POST /Inventory/RedfishEndpoints`: one endpoint or `{"RedfishEndpoints":[...]}`, all
    /// validated before anything is written, stored with their derivations in one batch.
    pub async fn post_endpoints(
        &self,
        raws: &[RedfishEndpointIn],
        site: Option<&str>,
    ) -> Result<Vec<String>, InventoryError> {
        let mut eps = Vec::with_capacity(raws.len());
        let mut seen = HashSet::new();
        for (index, raw) in raws.iter().enumerate() {
            let ep = normalize_endpoint(raw, None).map_err(|source| {
                if raws.len() > 1 {
                    InventoryError::Endpoints { index, source }
                } else {
                    InventoryError::Endpoint(source)
                }
            })?;
            if !seen.insert(ep.id.clone()) {
                return Err(ApiError::conflict(DUP_ENDPOINT)
                    .context(format!("{} given twice", ep.id))
                    .into());
            }
            eps.push(ep);
        }
        let attempt = async || {
            let mut ops = Vec::new();
            for (ep, raw) in eps.iter().zip(raws) {
                if self.store.get(REDFISH_ENDPOINTS, &ep.id).await?.is_some() {
                    if let Some(site) = site {
                        // Only the site's own BMC is said to exist; another site's is refused
                        // as one the token may not create.
                        let x = Xname::parse(&ep.id).map_err(|e| {
                            Fail::Api(ApiError::bad_request(format!("{}: {e}", ep.id)))
                        })?;
                        let now = skyport_model::now();
                        skyport_sites::ownership::claim_ops(
                            self.store.as_ref(),
                            site,
                            &x,
                            &[],
                            true,
                            now,
                        )
                        .await?;
                    }
                    return Err(Fail::Api(
                        ApiError::conflict(DUP_ENDPOINT).context(format!("{} exists", ep.id)),
                    ));
                }
                ops.extend(self.endpoint_ops(ep, None, raw, false, site).await?);
            }
            dedupe_ops(&mut ops);
            match self.store.write(ops).await {
                Ok(()) => Ok(()),
                // A create that lost the race to another create of the same ID.
                Err(StoreError::Conflict { ref table, .. })
                    if table == REDFISH_ENDPOINTS.name() =>
                {
                    Err(Fail::Api(ApiError::conflict(DUP_ENDPOINT)))
                }
                Err(other) => Err(self.endpoint_refusal(other, site, true).await),
            }
        };
        retrying!(attempt())?;
        Ok(eps
            .iter()
            .map(|e| format!("{}/Inventory/RedfishEndpoints/{}", crate::BASE, e.id))
            .collect())
    }

    /// `PUT /Inventory/RedfishEndpoints/{xname}`: create or replace, re-deriving with force
    /// (Magellan's `--force-update` path). Returns the endpoint and whether it was created.
    pub async fn put_endpoint(
        &self,
        url_id: &str,
        raw: &RedfishEndpointIn,
        site: Option<&str>,
    ) -> Result<(RedfishEndpoint, bool), InventoryError> {
        let x =
            Xname::parse(url_id).map_err(|_| ApiError::bad_request("xname in URL is not valid"))?;
        let ep = normalize_endpoint(raw, Some(&x)).map_err(InventoryError::Endpoint)?;
        let attempt = async || {
            let prev = self.store.get(REDFISH_ENDPOINTS, &ep.id).await?;
            let created = prev.is_none();
            let mut ops = self.endpoint_ops(&ep, prev, raw, true, site).await?;
            dedupe_ops(&mut ops);
            if let Err(e) = self.store.write(ops).await {
                return Err(self.endpoint_refusal(e, site, false).await);
            }
            Ok::<bool, Fail>(created)
        };
        let created = retrying!(attempt())?;
        Ok((ep, created))
    }

    /// `PATCH /Inventory/RedfishEndpoints/{xname}`: merge, re-validate, store.
    pub async fn patch_endpoint(
        &self,
        id: &str,
        patch: &RedfishEndpointPatch,
    ) -> Result<RedfishEndpoint, InventoryError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("xname in URL is not valid"))?;
        let attempt = async || {
            let Some(r) = self.store.get(REDFISH_ENDPOINTS, x.as_str()).await? else {
                return Err(Fail::Api(ApiError::not_found(format!(
                    "No such entry: {x}"
                ))));
            };
            let cur: RedfishEndpoint = records::decode(REDFISH_ENDPOINTS, &r)?;
            let pick =
                |p: &Option<String>, c: &str| Some(p.clone().unwrap_or_else(|| c.to_string()));
            // A new IP on an IP-named endpoint renames it, as in SMD.
            let host_was_ip = parse_ip(&cur.hostname).is_some();
            let new_ip = patch.ip_address.clone();
            let hostname = match (&patch.hostname, host_was_ip, &new_ip) {
                (Some(h), _, _) => Some(h.clone()),
                (None, true, Some(ip)) => Some(ip.clone()),
                _ => Some(cur.hostname.clone()),
            };
            let fqdn = match (
                &patch.fqdn,
                patch.hostname.is_some()
                    || patch.domain.is_some()
                    || (host_was_ip && new_ip.is_some()),
            ) {
                (Some(f), _) => Some(f.clone()),
                (None, true) => None,
                (None, false) => Some(cur.fqdn.clone()),
            };
            let raw = RedfishEndpointIn {
                id: Some(cur.id.clone()),
                name: pick(&patch.name, &cur.name),
                hostname,
                domain: pick(&patch.domain, &cur.domain),
                fqdn,
                enabled: Some(patch.enabled.unwrap_or(cur.enabled)),
                uuid: pick(&patch.uuid, &cur.uuid),
                user: pick(&patch.user, &cur.user),
                use_ssdp: Some(patch.use_ssdp.unwrap_or(cur.use_ssdp)),
                mac_required: Some(patch.mac_required.unwrap_or(cur.mac_required)),
                mac_addr: pick(&patch.mac_addr, &cur.mac_addr),
                ip_address: pick(&new_ip, &cur.ip_address),
                rediscover_on_update: Some(
                    patch
                        .rediscover_on_update
                        .unwrap_or(cur.rediscover_on_update),
                ),
                template_id: pick(&patch.template_id, &cur.template_id),
                ..Default::default()
            };
            // The merge is refused as it stands, not retried: nothing was written.
            let mut ep = match normalize_endpoint(&raw, Some(&x)) {
                Ok(ep) => ep,
                Err(e) => return Ok(Err(e)),
            };
            ep.discovery_info = cur.discovery_info.clone();
            self.store
                .write(vec![Write::Put {
                    table: REDFISH_ENDPOINTS,
                    record: records::redfish_endpoint(&ep)?,
                    prev: Some(r),
                }])
                .await
                .map_err(|e| endpoint_conflict(e, false))?;
            Ok::<_, Fail>(Ok(ep))
        };
        retrying!(attempt())?.map_err(InventoryError::Endpoint)
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<RedfishEndpoint, ApiError> {
        records::decode(
            REDFISH_ENDPOINTS,
            &self.by_xname(REDFISH_ENDPOINTS, id).await?,
        )
    }

    pub async fn list_endpoints(
        &self,
        f: &EndpointFilter,
    ) -> Result<Vec<RedfishEndpoint>, ApiError> {
        let from = Candidates::choose(ids(&f.by.ids), &[("type", single(&f.by.types))]);
        self.select(REDFISH_ENDPOINTS, from, |e| f.matches(e)).await
    }

    /// Deletes endpoints with their ComponentEndpoints and ServiceEndpoints; the components they described become
    /// Empty/OK (the hardware is no longer known to be there), as in SMD.
    pub async fn delete_endpoints(&self, ids: Option<&[String]>) -> Result<usize, ApiError> {
        let attempt = async || {
            let eps = self
                .deletion_targets(REDFISH_ENDPOINTS, ids, "no such xname.")
                .await?;
            let mut total = 0;
            for chunk in eps.chunks(50) {
                let mut ops = Vec::new();
                let mut ces = Vec::new();
                for ep in chunk {
                    let key = IndexKey::new("rfep", ep.id.clone());
                    ces.extend(self.store.list_all(COMPONENT_ENDPOINTS, Some(&key)).await?);
                    ops.extend(self.service_deletes(&ep.id).await?);
                    ops.push(Write::Delete {
                        table: REDFISH_ENDPOINTS,
                        prev: ep.clone(),
                    });
                }
                ops.extend(self.retire_component_endpoints(ces).await?);
                total += chunk.len();
                self.store.write(ops).await?;
            }
            Ok::<usize, Fail>(total)
        };
        retrying!(attempt())
    }

    /// Deletes the ComponentEndpoints `ces` and sets the components they described to
    /// State=Empty, Flag=OK.
    async fn retire_component_endpoints(&self, ces: Vec<Record>) -> Result<Vec<Write>, Fail> {
        let ids: Vec<String> = ces.iter().map(|r| r.id.clone()).collect();
        let mut ops = Vec::new();
        for r in self.store.get_many(COMPONENTS, &ids).await? {
            let mut c: Component = records::decode(COMPONENTS, &r)?;
            c.state = "Empty".into();
            c.flag = "OK".into();
            ops.push(Write::Put {
                table: COMPONENTS,
                record: records::component(&c)?,
                prev: Some(r),
            });
        }
        ops.extend(ces.into_iter().map(|prev| Write::Delete {
            table: COMPONENT_ENDPOINTS,
            prev,
        }));
        Ok(ops)
    }

    pub async fn list_component_endpoints(
        &self,
        f: &ComponentEndpointFilter,
    ) -> Result<Vec<ComponentEndpoint>, ApiError> {
        let from = Candidates::choose(
            ids(&f.by.ids),
            &[
                ("rfep", single(&f.endpoints)),
                ("type", single(&f.by.types)),
            ],
        );
        self.select(COMPONENT_ENDPOINTS, from, |ce| f.matches(ce))
            .await
    }

    /// `GET /Inventory/ComponentEndpoints/{xname}`: as SMD, an xname of letters and digits
    /// that is not valid is the client's error (400), anything else that names no endpoint is
    /// a 404 (SMD's filter turns other characters into an empty ID, which matches nothing).
    pub async fn get_component_endpoint(&self, id: &str) -> Result<ComponentEndpoint, ApiError> {
        let id = id.trim();
        if !id.is_empty()
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && Xname::parse(id).is_err()
        {
            return Err(ApiError::bad_request("Argument was not a valid xname ID"));
        }
        records::decode(
            COMPONENT_ENDPOINTS,
            &self.by_xname(COMPONENT_ENDPOINTS, id).await?,
        )
    }

    pub async fn delete_component_endpoints(&self, id: Option<&str>) -> Result<usize, ApiError> {
        let x = match id {
            Some(id) => Some(vec![
                Xname::parse(id)
                    .map_err(|_| ApiError::bad_request("Argument was not a valid xname ID"))?
                    .to_string(),
            ]),
            None => None,
        };
        let attempt = async || {
            let ces = self
                .deletion_targets(COMPONENT_ENDPOINTS, x.as_deref(), "no such xname.")
                .await?;
            let mut total = 0;
            for chunk in ces.chunks(100) {
                let ops = self.retire_component_endpoints(chunk.to_vec()).await?;
                total += chunk.len();
                self.store.write(ops).await?;
            }
            Ok::<usize, Fail>(total)
        };
        retrying!(attempt())
    }
}

/// Several endpoints in one POST may derive the same record (a shared interface); keep the last.
fn dedupe_ops(ops: &mut Vec<Write>) {
    let mut seen = HashSet::new();
    let mut keep = vec![true; ops.len()];
    for (i, op) in ops.iter().enumerate().rev() {
        if !seen.insert((op.table(), op.id().to_string())) {
            keep[i] = false;
        }
    }
    let mut it = keep.into_iter();
    ops.retain(|_| it.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(json: &str) -> RedfishEndpointIn {
        serde_json::from_str(json).unwrap()
    }

    proptest::proptest! {
        // Endpoint fields come from admins and BMCs: any strings yield an endpoint or an error.
        #[test]
        fn any_endpoint_fields_are_handled(
            id in "\\PC{0,16}|x[0-9]{1,4}c[0-7]s[0-9]{1,2}b[0-9]",
            fqdn in "\\PC{0,20}|[0-9]{1,3}(\\.[0-9]{1,3}){3}",
            host in "\\PC{0,12}",
            ip in "\\PC{0,16}",
            mac in "\\PC{0,18}",
        ) {
            let r = RedfishEndpointIn {
                id: Some(id), fqdn: Some(fqdn), hostname: Some(host), ip_address: Some(ip),
                mac_addr: Some(mac), ..Default::default()
            };
            if let Ok(ep) = normalize_endpoint(&r, None) {
                proptest::prop_assert!(Xname::parse(&ep.id).is_ok());
                let _ = derive(&ep, &r);
            }
        }
    }

    #[test]
    fn magellan_ip_fqdn_becomes_hostname_and_ip() {
        let ep = normalize_endpoint(&raw(r#"{"ID":"x1000c1s7b0","FQDN":"172.16.0.101","User":"root","Password":"secret","MACRequired":true}"#), None).unwrap();
        assert_eq!(ep.hostname, "172.16.0.101");
        assert_eq!(ep.domain, "");
        assert_eq!(ep.fqdn, "172.16.0.101");
        assert_eq!(ep.ip_address, "172.16.0.101");
        assert_eq!(ep.r#type, "NodeBMC");
        assert!(ep.enabled);
        assert!(!serde_json::to_string(&ep).unwrap().contains("secret"));
    }

    #[test]
    fn hostname_domain_and_fqdn_agree() {
        let ep = normalize_endpoint(
            &raw(r#"{"ID":"x1c0s0b0","FQDN":"x1c0s0b0.mgmt.example.com"}"#),
            None,
        )
        .unwrap();
        assert_eq!(
            (ep.hostname.as_str(), ep.domain.as_str()),
            ("x1c0s0b0", "mgmt.example.com")
        );
        let ep =
            normalize_endpoint(&raw(r#"{"Hostname":"x1c0s0b0","Domain":".lab."}"#), None).unwrap();
        assert_eq!(ep.fqdn, "x1c0s0b0.lab");
        assert_eq!(ep.id, "x1c0s0b0");
        assert!(
            normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0n0"}"#), None)
                .unwrap_err()
                .to_string()
                .contains("wrong type")
        );
        assert!(
            normalize_endpoint(&raw(r#"{}"#), None)
                .unwrap_err()
                .to_string()
                .contains("No xname")
        );
        assert!(
            normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","IPAddress":"10.1.1.300"}"#), None)
                .unwrap_err()
                .to_string()
                .contains("not a valid IP")
        );
        assert!(normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","Hostname":"a.b"}"#), None).is_err());
        // Placeholder MACs are dropped, malformed ones refused.
        assert_eq!(
            normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","MACAddr":"Not Available"}"#), None)
                .unwrap()
                .mac_addr,
            ""
        );
        assert!(normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","MACAddr":"zz:zz"}"#), None).is_err());
    }

    #[test]
    fn fqdn_with_port_keeps_the_port_and_yields_the_address() {
        let ep =
            normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","FQDN":"127.0.1.5:8443"}"#), None).unwrap();
        assert_eq!(ep.fqdn, "127.0.1.5:8443");
        assert_eq!(ep.hostname, "127.0.1.5");
        assert_eq!(ep.ip_address, "127.0.1.5");
        let ep =
            normalize_endpoint(&raw(r#"{"ID":"x1c0s0b0","FQDN":"[fd00::5]:443"}"#), None).unwrap();
        assert_eq!(
            (ep.fqdn.as_str(), ep.ip_address.as_str()),
            ("[fd00::5]:443", "fd00::5")
        );
    }

    #[test]
    fn derivation_dedupes_systems_and_names_nodes() {
        let r = raw(r#"{"ID":"x1000c1s7b0","FQDN":"10.0.0.5","SchemaVersion":1,
            "Managers":[{"uri":"https://10.0.0.5/redfish/v1/Managers/BMC","name":"Manager","type":"BMC",
               "ethernet_interfaces":[{"mac":"AA:BB:CC:00:00:01","ip":"10.0.0.5"},{"mac":"Not Available","ip":"0.0.0.0"}]}],
            "Systems":[
               {"uri":"/redfish/v1/Systems/1","uuid":"U-1","power":{"state":"Off"},"links":{"chassis":["/redfish/v1/Chassis/1"]},
                "ethernet_interfaces":[{"mac":"aa-bb-cc-00-00-10","ip":"N/A"}]},
               {"uri":"/redfish/v1/Systems/1b","uuid":"u-1"},
               {"uri":"/redfish/v1/Systems/2","uuid":""},
               {"uri":"/redfish/v1/Systems/3"}]}"#);
        let ep = normalize_endpoint(&r, None).unwrap();
        assert_eq!(ep.discovery_info.last_discovery_status, "DiscoverOK");
        let d = derive(&ep, &r);
        let ids: Vec<&str> = d.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "x1000c1s7b0",
                "x1000c1s7b0n0",
                "x1000c1s7b0n1",
                "x1000c1s7b0n2"
            ]
        );
        assert_eq!(d.components[1].state, "Off");
        assert_eq!(
            d.components[1].nid,
            Xname::parse("x1000c1s7b0n0")
                .unwrap()
                .default_nid()
                .map(|n| n as i64)
        );
        assert_eq!(d.components[1].role, "Compute");
        let macs: Vec<(&str, &str, usize)> = d
            .interfaces
            .iter()
            .map(|e| (e.id.as_str(), e.component_id.as_str(), e.ip_addresses.len()))
            .collect();
        assert_eq!(
            macs,
            [
                ("aabbcc000001", "x1000c1s7b0", 1),
                ("aabbcc000010", "x1000c1s7b0n0", 0)
            ]
        );
        let sys = d
            .endpoints
            .iter()
            .find(|e| e.id == "x1000c1s7b0n0")
            .unwrap();
        assert_eq!(
            sys.redfish_system_info.as_ref().unwrap()["PowerURL"],
            "/redfish/v1/Chassis/Power"
        );
        assert_eq!(
            sys.component_endpoint_type,
            "ComponentEndpointComputerSystem"
        );
        assert_eq!(
            sys.redfish_system_info.as_ref().unwrap()["Actions"]["#ComputerSystem.Reset"]["target"],
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
        );
        let mgr = d.endpoints.iter().find(|e| e.id == "x1000c1s7b0").unwrap();
        assert_eq!(mgr.odata_id, "/redfish/v1/Managers/BMC");
        assert_eq!(mgr.redfish_url, "10.0.0.5/redfish/v1/Managers/BMC");
        assert_eq!(
            (
                mgr.component_endpoint_type.as_str(),
                mgr.redfish_subtype.as_str()
            ),
            ("ComponentEndpointManager", "BMC")
        );
        assert_eq!(
            mgr.redfish_manager_info.as_ref().unwrap()["Actions"]["#Manager.Reset"]["@Redfish.ActionInfo"],
            "/redfish/v1/Managers/BMC/ResetActionInfo"
        );
    }
}
