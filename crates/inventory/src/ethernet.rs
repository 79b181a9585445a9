//! `Inventory/EthernetInterfaces`: the MAC ↔ IP ↔ component map that DHCP (coresmd), the boot
//! service and cloud-init resolve nodes through. One record per MAC (the MAC is the key), so a
//! duplicate MAC is impossible by construction.
//!
//! Differences from SMD, fixing its Postgres-path bugs: an unknown interface is a 404 on every
//! route (upstream answers 200 `{}` or 500), a PATCH of an IP without `Network` is a 400 (upstream
//! wipes every IP, then panics), and MAC filters and ids accept any MAC spelling.

use std::net::IpAddr;

use skyport_http::{ApiError, QueryParams};
use skyport_model::{HmsType, Mac, Xname};
use skyport_store::Write;
use skyport_wire::{
    EthernetInterface, EthernetInterfaceIn, EthernetInterfacePatch, IpMapping, IpMappingIn,
};

use crate::filters::single;
use crate::records::{self, ETHERNET_INTERFACES};
use crate::{Candidates, Fail, Inventory, now_rfc3339, retrying};

fn ip_mapping(m: &IpMappingIn, field: &str) -> Result<IpMapping, ApiError> {
    let raw = m.ip_address.as_deref().unwrap_or("").trim();
    let ip: IpAddr = raw.parse().map_err(|_| {
        ApiError::bad_request("Invalid CompEthInterface IP Address")
            .context(format!("{field}: {raw:?}"))
    })?;
    Ok(IpMapping {
        ip_address: ip.to_string(),
        network: m.network.clone().unwrap_or_default(),
    })
}

fn ip_list(items: &[IpMappingIn]) -> Result<Vec<IpMapping>, ApiError> {
    let mut out: Vec<IpMapping> = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let ip = ip_mapping(m, &format!("IPAddresses[{i}].IPAddress"))?;
        if out.iter().any(|o| o.ip_address == ip.ip_address) {
            return Err(ApiError::bad_request(
                "operation would conflict with an existing IP Address on the same ethernet interface.",
            )
            .context(format!("IPAddresses[{i}]: {} is listed twice", ip.ip_address)));
        }
        out.push(ip);
    }
    Ok(out)
}

/// An interface id in any MAC spelling (`a4bf012b7310`, `a4:bf:...`) to the stored key.
fn iface_id(id: &str) -> Result<String, ApiError> {
    Mac::parse(id)
        .map(|m| m.id())
        .map_err(|_| ApiError::not_found(format!("No such component ethernet interface: {id}")))
}

/// What SMD answers for a MAC it cannot read (`rf.NormalizeVerifyMAC`'s text, sent as is):
/// the wrong number of hex digits, or Go's ParseInt failure on what is there.
fn upstream_mac_error(raw: &str) -> String {
    let digits: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect::<String>()
        .to_ascii_lowercase();
    if digits.len() != 12 {
        "MAC string has invalid length".to_string()
    } else {
        format!("strconv.ParseInt: parsing \"{digits}\": invalid syntax")
    }
}

fn component_and_type(cid: Option<&str>) -> Result<(String, String), ApiError> {
    match cid.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok((String::new(), String::new())),
        Some(c) => {
            let x = Xname::parse(c).map_err(|_| {
                ApiError::bad_request("Invalid CompEthInterface component ID")
                    .context(format!("ComponentID: {c:?}"))
            })?;
            Ok((x.to_string(), x.hms_type().to_string()))
        }
    }
}

fn rfc3339(name: &str, v: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).map_err(|_| {
        ApiError::bad_request("bad query param: Argument was not in a valid RFC3339 time format")
            .context(format!("{name}={v:?}"))
    })
}

impl Inventory {
    pub async fn post_interface(&self, body: &EthernetInterfaceIn) -> Result<String, ApiError> {
        let raw = body.mac_address.as_deref().unwrap_or("");
        let mac = Mac::parse(raw).map_err(|e| {
            ApiError::bad_request(upstream_mac_error(raw)).context(format!("MACAddress: {e}"))
        })?;
        let (component_id, r#type) = component_and_type(body.component_id.as_deref())?;
        let ei = EthernetInterface {
            id: mac.id(),
            description: body.description.clone().unwrap_or_default(),
            mac_address: mac.to_string(),
            last_update: now_rfc3339(),
            component_id,
            r#type,
            ip_addresses: ip_list(&body.ip_addresses)?,
        };
        self.store
            .write(vec![Write::Put {
                table: ETHERNET_INTERFACES,
                record: records::ethernet_interface(&ei)?,
                prev: None,
            }])
            .await
            .map_err(|e| {
                ApiError::on_create(e, || {
                    "operation would conflict with an existing component ethernet interface that has the same MAC address.".into()
                })
            })?;
        Ok(format!(
            "{}/Inventory/EthernetInterfaces/{}",
            crate::BASE,
            ei.id
        ))
    }

    pub async fn get_interface(&self, id: &str) -> Result<EthernetInterface, ApiError> {
        let key = iface_id(id)?;
        let r = self
            .store
            .get(ETHERNET_INTERFACES, &key)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("No such component ethernet interface: {id}"))
            })?;
        records::decode(ETHERNET_INTERFACES, &r)
    }

    /// GET with SMD's filters; IP and component lookups use their index.
    pub async fn list_interfaces(
        &self,
        f: &InterfaceFilter,
    ) -> Result<Vec<EthernetInterface>, ApiError> {
        let mut keys = f.ids.clone();
        keys.extend(
            f.macs
                .iter()
                .filter_map(|m| Mac::parse(m).ok())
                .map(|m| m.id()),
        );
        let from = Candidates::choose(
            keys,
            &[
                ("ip", single(&f.ips)),
                ("componentid", single(&f.cids)),
                ("type", single(&f.types)),
            ],
        );
        self.select(ETHERNET_INTERFACES, from, |e| f.matches(e))
            .await
    }

    /// Read-modify-write of one interface, recomputed on a lost race.
    async fn modify_interface<T>(
        &self,
        id: &str,
        f: impl Fn(&mut EthernetInterface) -> Result<T, ApiError>,
    ) -> Result<(EthernetInterface, T), ApiError> {
        let key = iface_id(id)?;
        let attempt = async || {
            let Some(r) = self.store.get(ETHERNET_INTERFACES, &key).await? else {
                return Err(Fail::Api(ApiError::not_found(format!(
                    "No such component ethernet interface: {id}"
                ))));
            };
            let mut e: EthernetInterface = records::decode(ETHERNET_INTERFACES, &r)?;
            let out = f(&mut e)?;
            self.store
                .write(vec![Write::Put {
                    table: ETHERNET_INTERFACES,
                    record: records::ethernet_interface(&e)?,
                    prev: Some(r),
                }])
                .await?;
            Ok::<_, Fail>((e, out))
        };
        retrying!(attempt())
    }

    pub async fn patch_interface(
        &self,
        id: &str,
        p: &EthernetInterfacePatch,
    ) -> Result<EthernetInterface, ApiError> {
        if p.description.is_none() && p.component_id.is_none() && p.ip_addresses.is_none() {
            return Err(ApiError::bad_request(
                "Request must have at least one patch field.",
            ));
        }
        // SMD's PATCH answers a bad component ID with its store's text.
        let bad_cid = |c: &str| {
            ApiError::bad_request("bad query param: Argument was not a valid xname ID")
                .context(format!("ComponentID: {c:?}"))
        };
        let cid = match p.component_id.as_deref() {
            Some(c) => Some(match component_and_type(Some(c)) {
                Ok((x, _)) if x.is_empty() => return Err(bad_cid(c)),
                Ok(xt) => xt,
                Err(_) => return Err(bad_cid(c)),
            }),
            None => None,
        };
        let ips = p.ip_addresses.as_deref().map(ip_list).transpose()?;
        let (e, ()) = self
            .modify_interface(id, |e| {
                if let Some(d) = &p.description {
                    e.description = d.clone();
                }
                if let Some((x, t)) = &cid {
                    e.component_id = x.clone();
                    e.r#type = t.clone();
                }
                if let Some(ips) = &ips {
                    e.ip_addresses = ips.clone();
                    e.last_update = now_rfc3339();
                }
                Ok(())
            })
            .await
            .map_err(|e| match e.kind() {
                // SMD's PATCH of an unknown interface says so without the ID.
                ApiError::NotFound(_) => {
                    ApiError::not_found("no such component ethernet interface.")
                }
                _ => e,
            })?;
        Ok(e)
    }

    pub async fn add_interface_ip(&self, id: &str, m: &IpMappingIn) -> Result<String, ApiError> {
        let ip = ip_mapping(m, "IPAddress")?;
        let (e, ()) = self
            .modify_interface(id, |e| {
                if e.ip_addresses.iter().any(|x| x.ip_address == ip.ip_address) {
                    return Err(ApiError::conflict(
                        "operation would conflict with an existing IP Address on the same ethernet interface.",
                    ));
                }
                e.ip_addresses.push(ip.clone());
                e.last_update = now_rfc3339();
                Ok(())
            })
            .await?;
        Ok(format!(
            "{}/Inventory/EthernetInterfaces/{}/IPAddresses/{}",
            crate::BASE,
            e.id,
            ip.ip_address
        ))
    }

    pub async fn patch_interface_ip(
        &self,
        id: &str,
        ip: &str,
        network: Option<&str>,
    ) -> Result<IpMapping, ApiError> {
        let Some(network) = network else {
            return Err(ApiError::bad_request(
                "Request must have at least one patch field (Network).",
            ));
        };
        let want = ip
            .parse::<IpAddr>()
            .map(|i| i.to_string())
            .unwrap_or_else(|_| ip.to_string());
        let (_, m) = self
            .modify_interface(id, |e| {
                let m = e
                    .ip_addresses
                    .iter_mut()
                    .find(|m| m.ip_address == want)
                    .ok_or_else(|| {
                        ApiError::not_found("no such IP address in component ethernet interface.")
                    })?;
                m.network = network.to_string();
                Ok(m.clone())
            })
            .await?;
        Ok(m)
    }

    pub async fn delete_interface_ip(&self, id: &str, ip: &str) -> Result<(), ApiError> {
        let want = ip
            .parse::<IpAddr>()
            .map(|i| i.to_string())
            .unwrap_or_else(|_| ip.to_string());
        self.modify_interface(id, |e| {
            let before = e.ip_addresses.len();
            e.ip_addresses.retain(|m| m.ip_address != want);
            if e.ip_addresses.len() == before {
                return Err(ApiError::not_found(
                    "component ethernet interface has no such ip address.",
                ));
            }
            e.last_update = now_rfc3339();
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn delete_interfaces(&self, id: Option<&str>) -> Result<usize, ApiError> {
        let key = id.map(iface_id).transpose()?;
        let attempt = async || {
            let recs = self
                .deletion_targets(
                    ETHERNET_INTERFACES,
                    key.as_ref().map(std::slice::from_ref),
                    "no such component ethernet interface.",
                )
                .await?;
            let n = skyport_store::delete_in_batches(&*self.store, ETHERNET_INTERFACES, &recs, 100)
                .await?;
            Ok::<usize, Fail>(n)
        };
        retrying!(attempt())
    }
}

/// SMD's EthernetInterfaces filters, parsed once (`GET /hsm/v2/Inventory/EthernetInterfaces`),
/// or built by other services (`by_ip`, `by_component`, `of_type`).
#[derive(Debug, Clone, Default)]
pub struct InterfaceFilter {
    ids: Vec<String>,
    macs: Vec<String>,
    cids: Vec<String>,
    types: Vec<String>,
    ips: Vec<String>,
    networks: Vec<String>,
    older: Option<time::OffsetDateTime>,
    newer: Option<time::OffsetDateTime>,
}

impl InterfaceFilter {
    /// Interfaces holding `ip`.
    pub fn by_ip(ip: IpAddr) -> Self {
        Self {
            ips: vec![ip.to_string()],
            ..Self::default()
        }
    }

    /// Interfaces of the component `x`.
    pub fn by_component(x: &Xname) -> Self {
        Self {
            cids: vec![x.to_string()],
            ..Self::default()
        }
    }

    /// Interfaces of components of type `t`.
    pub fn of_type(t: HmsType) -> Self {
        Self {
            types: vec![t.to_string()],
            ..Self::default()
        }
    }

    fn matches(&self, e: &EthernetInterface) -> bool {
        let updated = time::OffsetDateTime::parse(
            &e.last_update,
            &time::format_description::well_known::Rfc3339,
        )
        .ok();
        (self.ids.is_empty() || self.ids.contains(&e.id))
            && (self.macs.is_empty() || self.macs.contains(&e.mac_address))
            && (self.cids.is_empty() || self.cids.contains(&e.component_id))
            && (self.types.is_empty() || self.types.contains(&e.r#type))
            && (self.ips.is_empty()
                || self.ips.iter().any(|ip| {
                    if ip.is_empty() {
                        e.ip_addresses.is_empty()
                    } else {
                        e.ip_addresses.iter().any(|m| &m.ip_address == ip)
                    }
                }))
            && (self.networks.is_empty()
                || self
                    .networks
                    .iter()
                    .any(|n| e.ip_addresses.iter().any(|m| m.network == *n)))
            && self.older.is_none_or(|t| updated.is_some_and(|u| u < t))
            && self.newer.is_none_or(|t| updated.is_some_and(|u| u > t))
    }

    /// From the query string, with SMD's error texts.
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        let mut ids = Vec::new();
        for v in q.all("id") {
            if v.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid component ethernet interface ID.",
                ));
            }
            ids.push(
                Mac::parse(v)
                    .map(|m| m.id())
                    .unwrap_or_else(|_| v.to_ascii_lowercase()),
            );
        }
        let mut macs = Vec::new();
        for v in q.all("macaddress") {
            let m = Mac::parse(v).map_err(|_| {
                ApiError::bad_request("Invalid component ethernet interface MAC address.")
                    .context(format!("macaddress={v:?}"))
            })?;
            macs.push(m.to_string());
        }
        let mut cids = Vec::new();
        for v in q.all("componentid") {
            if v.is_empty() {
                cids.push(String::new());
            } else {
                cids.push(Xname::parse(v).map(|x| x.to_string()).map_err(|_| {
                    ApiError::bad_request("Invalid CompID.").context(format!("componentid={v:?}"))
                })?);
            }
        }
        let mut types = Vec::new();
        for v in q.all("type") {
            types.push(
                v.parse::<HmsType>()
                    .map_err(|_| {
                        ApiError::bad_request("Invalid HMS type.").context(format!("type={v:?}"))
                    })?
                    .to_string(),
            );
        }
        let ips: Vec<String> = q
            .all("ipaddress")
            .into_iter()
            .map(|v| {
                v.parse::<IpAddr>()
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|_| v.to_string())
            })
            .collect();
        let networks: Vec<String> = q.all("network").into_iter().map(str::to_string).collect();
        let older = q
            .first("olderthan")
            .map(|v| rfc3339("olderthan", v))
            .transpose()?;
        let newer = q
            .first("newerthan")
            .map(|v| rfc3339("newerthan", v))
            .transpose()?;

        Ok(Self {
            ids,
            macs,
            cids,
            types,
            ips,
            networks,
            older,
            newer,
        })
    }
}
