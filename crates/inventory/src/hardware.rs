//! SMD's hardware inventory, from discovery: each node a discovery document describes becomes a
//! `HWInvByLocNode` location, and each part its BMC reported (processors, accelerators, memory
//! modules, drives, its chassis' power supplies) a location under it with the part as its
//! `PopulatedFRU`. The records of one BMC are replaced whole by each discovery of it, in the
//! discovery's own batch. Parts' health sets their node's `Flag`.
//!
//! Locations are named as hms-xname names them: processors `…n0p<k>`, accelerators `…n0a<k>`,
//! memory `…n0d<k>`, drives `…n0g0k<k>`, power supplies `x…c…s…e0t<k>`; `k` counts the parts of
//! one kind in the order the BMC listed them. A part whose name would not be a valid xname
//! (a fifth processor: hms-xname allows p0-p3) is left out.
//!
//! FRU IDs follow SMD's form, `<Type>.<Manufacturer>.<PartNumber>.<SerialNumber>` with only
//! letters, digits and `-` kept; a part without a serial number cannot be tracked across
//! locations and gets `FRUIDfor<location>`, as SMD does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use skyport_http::ApiError;
use skyport_model::{Flag, HmsType, Xname};
use skyport_store::{IndexKey, Record, Write};
use skyport_wire::discovery::{Hardware, HardwareKind, System};
use skyport_wire::hwinv::{HwInvByFru, HwInvByLoc, HwInventory};

use crate::Inventory;
use crate::records::{HARDWARE, decode};

const BMC_KEY: &str = "bmc";
const NODE_KEY: &str = "node";
const FRU_KEY: &str = "fru";
const TYPE_KEY: &str = "type";

fn obj(pairs: Vec<(&str, Option<Value>)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_null()).map(|v| (k.to_string(), v)))
        .collect()
}

fn s(v: &Option<String>) -> Option<Value> {
    v.as_ref().map(|x| Value::String(x.clone()))
}

/// SMD's FRU ID of a part at `location`.
pub fn fruid(
    ty: &str,
    h: (&Option<String>, &Option<String>, &Option<String>),
    location: &str,
) -> String {
    let clean = |v: &Option<String>| -> String {
        v.as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    };
    let (manufacturer, part, serial) = h;
    let serial = clean(serial);
    if serial.is_empty() || serial.chars().all(|c| c == '0') {
        return format!("FRUIDfor{location}");
    }
    format!("{ty}.{}.{}.{serial}", clean(manufacturer), clean(part))
}

/// The worst health the node and its parts report, as a component flag; `None` when nothing
/// reported a health.
pub fn flag_of(sys: &System) -> Option<Flag> {
    let mut worst: Option<Flag> = None;
    let healths = sys
        .health
        .iter()
        .chain(sys.hardware.iter().filter_map(|h| h.health.as_ref()));
    for h in healths {
        let f = match h.as_str() {
            "OK" => Flag::Ok,
            "Warning" => Flag::Warning,
            "Critical" => Flag::Alert,
            _ => continue,
        };
        let rank = |f: Flag| match f {
            Flag::Alert => 2,
            Flag::Warning => 1,
            _ => 0,
        };
        if worst.is_none_or(|w| rank(f) > rank(w)) {
            worst = Some(f);
        }
    }
    worst
}

fn health_status(h: &Hardware) -> Option<Value> {
    h.health.as_ref().map(|x| json!({ "Health": x }))
}

fn prop(h: &Hardware, k: &str) -> Option<Value> {
    h.properties.get(k).cloned()
}

/// The location of one part under `node` (and `bmc`, for power supplies).
fn part(bmc: &Xname, node: &Xname, h: &Hardware, k: usize) -> Option<HwInvByLoc> {
    let (suffix, ty, loc_type, fru_type) = match h.kind {
        HardwareKind::Processor => (
            format!("{node}p{k}"),
            "Processor",
            "HWInvByLocProcessor",
            "HWInvByFRUProcessor",
        ),
        HardwareKind::Accelerator => (
            format!("{node}a{k}"),
            "NodeAccel",
            "HWInvByLocNodeAccel",
            "HWInvByFRUNodeAccel",
        ),
        HardwareKind::Memory => (
            format!("{node}d{k}"),
            "Memory",
            "HWInvByLocMemory",
            "HWInvByFRUMemory",
        ),
        HardwareKind::Drive => (
            format!("{node}g0k{k}"),
            "Drive",
            "HWInvByLocDrive",
            "HWInvByFRUDrive",
        ),
        HardwareKind::PowerSupply => {
            let b = bmc.as_str();
            let enclosure = b.rsplit_once('b').map(|(s, _)| s)?;
            (
                format!("{enclosure}e0t{k}"),
                "NodeEnclosurePowerSupply",
                "HWInvByLocNodeEnclosurePowerSupply",
                "HWInvByFRUNodeEnclosurePowerSupply",
            )
        }
    };
    let id = Xname::parse(&suffix).ok()?.to_string();
    let empty = h.state.as_deref() == Some("Absent");
    let loc = obj(vec![
        ("Id", s(&h.id)),
        ("Name", s(&h.name)),
        ("Socket", prop(h, "Socket")),
        ("DeviceLocator", prop(h, "DeviceLocator")),
        (
            "FirmwareVersion",
            if h.kind == HardwareKind::PowerSupply {
                s(&h.firmware_version)
            } else {
                None
            },
        ),
        ("Status", health_status(h)),
    ]);
    let mut fru_info = obj(vec![
        ("Manufacturer", s(&h.manufacturer)),
        ("Model", s(&h.model)),
        ("PartNumber", s(&h.part_number)),
        ("SerialNumber", s(&h.serial)),
    ]);
    for (k, v) in &h.properties {
        if !matches!(k.as_str(), "Socket" | "DeviceLocator") {
            fru_info.insert(k.clone(), v.clone());
        }
    }
    if h.kind != HardwareKind::PowerSupply
        && let Some(fw) = &h.firmware_version
    {
        fru_info.insert("FirmwareVersion".into(), Value::String(fw.clone()));
    }
    let mut fru = HwInvByFru {
        fruid: fruid(ty, (&h.manufacturer, &h.part_number, &h.serial), &id),
        r#type: ty.into(),
        subtype: String::new(),
        fru_type: fru_type.into(),
        ..Default::default()
    };
    let mut loc_rec = HwInvByLoc {
        id,
        r#type: ty.into(),
        ordinal: k as i64,
        status: if empty { "Empty" } else { "Populated" }.into(),
        location_type: loc_type.into(),
        ..Default::default()
    };
    match h.kind {
        HardwareKind::Processor => {
            loc_rec.processor_location_info = Some(loc);
            fru.processor_fru_info = Some(fru_info);
        }
        HardwareKind::Accelerator => {
            loc_rec.node_accel_location_info = Some(loc);
            fru.node_accel_fru_info = Some(fru_info);
        }
        HardwareKind::Memory => {
            loc_rec.memory_location_info = Some(loc);
            fru.memory_fru_info = Some(fru_info);
        }
        HardwareKind::Drive => {
            loc_rec.drive_location_info = Some(loc);
            fru.drive_fru_info = Some(fru_info);
        }
        HardwareKind::PowerSupply => {
            loc_rec.power_supply_location_info = Some(loc);
            fru.power_supply_fru_info = Some(fru_info);
        }
    }
    if !empty {
        loc_rec.populated_fru = Some(fru);
    }
    Some(loc_rec)
}

/// Every location one discovered system describes: the node, then its parts.
pub fn derive(bmc: &Xname, node: &Xname, sys: &System) -> Vec<HwInvByLoc> {
    let id = node.to_string();
    let node_loc = obj(vec![
        (
            "Id",
            s(&sys
                .uri
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_string)),
        ),
        ("Name", s(&sys.name)),
        (
            "ProcessorSummary",
            Some(json!(obj(vec![
                ("Count", sys.processor_count.map(Value::from)),
                ("Model", s(&sys.processor_type)),
            ]))),
        ),
        (
            "MemorySummary",
            Some(json!(obj(vec![(
                "TotalSystemMemoryGiB",
                sys.memory_total.map(Value::from)
            )]))),
        ),
        (
            "Status",
            sys.health.as_ref().map(|h| json!({ "Health": h })),
        ),
    ]);
    let node_fru = obj(vec![
        ("BiosVersion", s(&sys.bios_version)),
        ("Model", s(&sys.model)),
        ("Manufacturer", s(&sys.manufacturer)),
        ("SerialNumber", s(&sys.serial)),
        ("SKU", s(&sys.chassis_sku)),
        ("SystemType", s(&sys.system_type)),
        ("UUID", s(&sys.uuid)),
    ]);
    let mut out = vec![HwInvByLoc {
        id: id.clone(),
        r#type: "Node".into(),
        ordinal: node
            .as_str()
            .rsplit_once('n')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0),
        status: "Populated".into(),
        location_type: "HWInvByLocNode".into(),
        node_location_info: Some(node_loc),
        populated_fru: Some(HwInvByFru {
            fruid: fruid(
                "Node",
                (&sys.manufacturer, &sys.chassis_sku, &sys.serial),
                &id,
            ),
            r#type: "Node".into(),
            subtype: String::new(),
            fru_type: "HWInvByFRUNode".into(),
            node_fru_info: Some(node_fru),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let mut counts: BTreeMap<HardwareKind, usize> = BTreeMap::new();
    for h in &sys.hardware {
        let k = counts.entry(h.kind).or_default();
        if let Some(p) = part(bmc, node, h, *k) {
            out.push(p);
        }
        *k += 1;
    }
    out
}

/// The node an inventory location belongs to (itself for a node); `None` for power supplies,
/// which belong to the enclosure.
fn node_of(x: &Xname) -> Option<String> {
    let mut cur = x.clone();
    loop {
        if cur.hms_type() == HmsType::Node {
            return Some(cur.to_string());
        }
        cur = cur.parent()?;
    }
}

pub fn record(loc: &HwInvByLoc, bmc: &str) -> Result<Record, ApiError> {
    let body = skyport_http::encode(loc)?;
    let mut r = Record::new(loc.id.clone(), body)
        .with_lookup(BMC_KEY, bmc)
        .with_lookup(TYPE_KEY, loc.r#type.to_ascii_lowercase());
    if let Some(n) = Xname::parse(&loc.id).ok().as_ref().and_then(node_of) {
        r = r.with_lookup(NODE_KEY, n);
    }
    if let Some(f) = &loc.populated_fru {
        r = r.with_lookup(FRU_KEY, &f.fruid);
    }
    Ok(r)
}

/// The writes that replace BMC `bmc`'s hardware records with `locs` (records of parts no
/// longer reported are deleted; several systems reporting the same power supply keep one).
pub(crate) async fn replace_ops(
    inv: &Inventory,
    bmc: &str,
    locs: Vec<HwInvByLoc>,
) -> Result<Vec<Write>, crate::Fail> {
    let key = IndexKey::new(BMC_KEY, bmc);
    let existing: BTreeMap<String, Record> = inv
        .store()
        .list_all(HARDWARE, Some(&key))
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut seen = BTreeSet::new();
    let mut ops = Vec::new();
    for l in locs {
        if !seen.insert(l.id.clone()) {
            continue;
        }
        ops.push(Write::Put {
            table: HARDWARE,
            record: record(&l, bmc)?,
            prev: existing.get(&l.id).cloned(),
        });
    }
    for (id, r) in existing {
        if !seen.contains(&id) {
            ops.push(Write::Delete {
                table: HARDWARE,
                prev: r,
            });
        }
    }
    Ok(ops)
}

/// `GET Inventory/Hardware` filters (SMD's names, case-insensitive keys).
#[derive(Debug, Default)]
pub struct HardwareFilter {
    ids: Vec<String>,
    types: Vec<String>,
    manufacturer: Option<String>,
    part_number: Option<String>,
    serial_number: Option<String>,
    fruid: Option<String>,
}

impl HardwareFilter {
    pub fn parse(q: &skyport_http::QueryParams) -> Result<Self, ApiError> {
        let mut f = HardwareFilter::default();
        for (k, v) in &q.0 {
            match k.as_str() {
                "id" => f.ids.push(
                    Xname::parse(v)
                        .map_err(|_| {
                            ApiError::bad_request("Invalid xname").context(format!("id={v:?}"))
                        })?
                        .to_string(),
                ),
                "type" => {
                    let t: HmsType = v.parse().map_err(|_| {
                        ApiError::bad_request("Invalid HMS type").context(format!("type={v:?}"))
                    })?;
                    f.types.push(t.to_string().to_ascii_lowercase());
                }
                "manufacturer" => f.manufacturer = Some(v.clone()),
                "partnumber" => f.part_number = Some(v.clone()),
                "serialnumber" => f.serial_number = Some(v.clone()),
                "fruid" => f.fruid = Some(v.clone()),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {k:?} (id, type, manufacturer, partnumber, serialnumber, fruid)"
                    )));
                }
            }
        }
        Ok(f)
    }

    fn fru_field(loc: &HwInvByLoc, k: &str) -> Option<String> {
        let f = loc.populated_fru.as_ref()?;
        [
            &f.node_fru_info,
            &f.processor_fru_info,
            &f.node_accel_fru_info,
            &f.memory_fru_info,
            &f.drive_fru_info,
            &f.power_supply_fru_info,
        ]
        .into_iter()
        .flatten()
        .find_map(|m| m.get(k).and_then(Value::as_str).map(str::to_string))
    }

    fn matches(&self, loc: &HwInvByLoc) -> bool {
        let eq = |want: &Option<String>, got: Option<String>| {
            want.as_ref()
                .is_none_or(|w| got.is_some_and(|g| g.eq_ignore_ascii_case(w)))
        };
        (self.ids.is_empty() || self.ids.contains(&loc.id))
            && (self.types.is_empty() || self.types.contains(&loc.r#type.to_ascii_lowercase()))
            && eq(&self.manufacturer, Self::fru_field(loc, "Manufacturer"))
            && eq(&self.part_number, Self::fru_field(loc, "PartNumber"))
            && eq(&self.serial_number, Self::fru_field(loc, "SerialNumber"))
            && eq(
                &self.fruid,
                loc.populated_fru.as_ref().map(|f| f.fruid.clone()),
            )
    }
}

fn decode_all(recs: &[Record]) -> Result<Vec<HwInvByLoc>, ApiError> {
    recs.iter().map(|r| decode(HARDWARE, r)).collect()
}

/// Puts each node's parts under it (SMD's `NestNodesOnly`); parts whose node is not in `locs`
/// stay in their own arrays.
fn nest(xname: &str, locs: Vec<HwInvByLoc>, flat: bool) -> HwInventory {
    let mut inv = HwInventory {
        xname: xname.to_string(),
        format: if flat { "FullyFlat" } else { "NestNodesOnly" }.into(),
        ..Default::default()
    };
    let mut nodes: BTreeMap<String, HwInvByLoc> = BTreeMap::new();
    let mut parts = Vec::new();
    for l in locs {
        if l.r#type == "Node" {
            nodes.insert(l.id.clone(), l);
        } else {
            parts.push(l);
        }
    }
    fn push(v: &mut Option<Vec<HwInvByLoc>>, l: HwInvByLoc) {
        v.get_or_insert_with(Vec::new).push(l);
    }
    for p in parts {
        let parent = if flat {
            None
        } else {
            Xname::parse(&p.id)
                .ok()
                .as_ref()
                .and_then(node_of)
                .and_then(|n| nodes.get_mut(&n))
        };
        match (p.r#type.as_str(), parent) {
            ("Processor", Some(n)) => push(&mut n.processors, p),
            ("Memory", Some(n)) => push(&mut n.memory, p),
            ("Drive", Some(n)) => push(&mut n.drives, p),
            ("NodeAccel", Some(n)) => push(&mut n.node_accels, p),
            ("Processor", None) => push(&mut inv.processors, p),
            ("Memory", None) => push(&mut inv.memory, p),
            ("Drive", None) => push(&mut inv.drives, p),
            ("NodeAccel", None) => push(&mut inv.node_accels, p),
            (_, _) => push(&mut inv.power_supplies, p),
        }
    }
    if !nodes.is_empty() {
        inv.nodes = Some(nodes.into_values().collect());
    }
    inv
}

impl Inventory {
    /// `GET Inventory/Hardware`: every location, flat.
    pub async fn hardware_list(&self, f: &HardwareFilter) -> Result<Vec<HwInvByLoc>, ApiError> {
        let recs = self.store().list_all(HARDWARE, None).await?;
        Ok(decode_all(&recs)?
            .into_iter()
            .filter(|l| f.matches(l))
            .collect())
    }

    /// `GET Inventory/Hardware/{xname}`: one location (a node with its parts nested).
    pub async fn hardware_get(&self, id: &str) -> Result<HwInvByLoc, ApiError> {
        // SMD looks the (normalised) ID up without validating it: anything unknown is a 404.
        let x = Xname::parse(id).map_err(|_| ApiError::not_found("no such xname."))?;
        let Some(r) = self.store().get(HARDWARE, x.as_str()).await? else {
            return Err(ApiError::not_found("no such xname."));
        };
        let loc: HwInvByLoc = decode(HARDWARE, &r)?;
        if loc.r#type != "Node" {
            return Ok(loc);
        }
        let key = IndexKey::new(NODE_KEY, x.as_str());
        let all = decode_all(&self.store().list_all(HARDWARE, Some(&key)).await?)?;
        let nested = nest(x.as_str(), all, false);
        Ok(nested
            .nodes
            .and_then(|n| n.into_iter().next())
            .unwrap_or(loc))
    }

    /// `GET Inventory/Hardware/Query/{xname}`: everything at or under `xname` (`s0` or `all`:
    /// everything), nested by node unless `format=FullyFlat`.
    pub async fn hardware_query(
        &self,
        xname: &str,
        q: &skyport_http::QueryParams,
    ) -> Result<HwInventory, ApiError> {
        let flat = match q.first("format") {
            None | Some("NestNodesOnly") => false,
            Some("FullyFlat") => true,
            Some(other) => {
                return Err(ApiError::bad_request("Invalid format")
                    .context(format!("format={other:?}: NestNodesOnly or FullyFlat")));
            }
        };
        if let Some((k, _)) = q.0.iter().find(|(k, _)| {
            !matches!(
                k.as_str(),
                "format" | "type" | "children" | "parents" | "partition"
            )
        }) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}"
            )));
        }
        let all = xname.eq_ignore_ascii_case("all") || xname == "s0";
        let prefix = if all {
            String::new()
        } else {
            Xname::parse(xname)
                .map_err(|_| ApiError::bad_request("Invalid xname").context(format!("{xname:?}")))?
                .to_string()
        };
        let types: Vec<String> = q
            .all("type")
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        // A node (the common query) is one indexed read; a subtree above nodes reads the table.
        let recs = match Xname::parse(&prefix) {
            Ok(x) if !all && x.hms_type() == HmsType::Node => {
                let key = IndexKey::new(NODE_KEY, x.as_str());
                self.store().list_all(HARDWARE, Some(&key)).await?
            }
            _ => self.store().list_all(HARDWARE, None).await?,
        };
        let locs: Vec<HwInvByLoc> = decode_all(&recs)?
            .into_iter()
            .filter(|l| {
                all || l.id == prefix
                    || l.id
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .filter(|l| types.is_empty() || types.contains(&l.r#type.to_ascii_lowercase()))
            .collect();
        if locs.is_empty() && !all {
            return Err(ApiError::not_found("no such xname."));
        }
        Ok(nest(if all { "s0" } else { &prefix }, locs, flat))
    }

    /// `GET Inventory/HardwareByFRU[?…]`: the parts now installed.
    pub async fn fru_list(&self, f: &HardwareFilter) -> Result<Vec<HwInvByFru>, ApiError> {
        Ok(self
            .hardware_list(f)
            .await?
            .into_iter()
            .filter_map(|l| l.populated_fru)
            .collect())
    }

    /// `GET Inventory/HardwareByFRU/{fruid}`.
    pub async fn fru_get(&self, fruid: &str) -> Result<HwInvByFru, ApiError> {
        let key = IndexKey::new(FRU_KEY, fruid);
        let recs = self.store().list_all(HARDWARE, Some(&key)).await?;
        decode_all(&recs)?
            .into_iter()
            .find_map(|l| l.populated_fru)
            .ok_or_else(|| ApiError::not_found("no such FRU ID."))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn part(kind: HardwareKind, health: Option<&str>) -> Hardware {
        Hardware {
            kind,
            uri: None,
            id: None,
            name: None,
            manufacturer: Some("Intel(R) Corporation".into()),
            model: None,
            serial: Some("SN 1".into()),
            part_number: Some("P-1".into()),
            firmware_version: None,
            health: health.map(str::to_string),
            state: None,
            properties: Map::new(),
        }
    }

    #[test]
    fn fru_ids_are_smds_and_untrackable_parts_are_named_by_location() {
        let h = part(HardwareKind::Processor, None);
        assert_eq!(
            fruid(
                "Processor",
                (&h.manufacturer, &h.part_number, &h.serial),
                "x1c0s0b0n0p0"
            ),
            "Processor.IntelRCorporation.P-1.SN1"
        );
        assert_eq!(
            fruid("GPU", (&None, &None, &Some("0000".into())), "x1c0s0b0n0a0"),
            "FRUIDforx1c0s0b0n0a0"
        );
    }

    #[test]
    fn the_worst_reported_health_is_the_flag() {
        let mut sys = System {
            health: Some("OK".into()),
            ..Default::default()
        };
        assert_eq!(flag_of(&sys), Some(Flag::Ok));
        sys.hardware = vec![
            part(HardwareKind::Memory, Some("Warning")),
            part(HardwareKind::Drive, Some("Critical")),
            part(HardwareKind::Drive, Some("Fine, thanks")),
        ];
        assert_eq!(flag_of(&sys), Some(Flag::Alert));
        assert_eq!(flag_of(&System::default()), None);
    }

    #[test]
    fn parts_get_hms_xnames_and_a_fifth_processor_none() {
        let bmc = Xname::parse("x3000c0s10b0").unwrap();
        let node = Xname::parse("x3000c0s10b0n0").unwrap();
        let sys = System {
            hardware: (0..5)
                .map(|_| part(HardwareKind::Processor, None))
                .chain([part(HardwareKind::PowerSupply, None)])
                .collect(),
            ..Default::default()
        };
        let ids: Vec<String> = derive(&bmc, &node, &sys)
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(
            ids,
            [
                "x3000c0s10b0n0",
                "x3000c0s10b0n0p0",
                "x3000c0s10b0n0p1",
                "x3000c0s10b0n0p2",
                "x3000c0s10b0n0p3",
                "x3000c0s10e0t0"
            ]
        );
    }
}
