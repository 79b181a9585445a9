//! SMD's hardware inventory (`/hsm/v2/Inventory/Hardware*`), in the key order of upstream's Go
//! structs (OpenCHAMI/smd `pkg/sm/hwinv.go`: `HWInvByLoc`, `HWInvByFRU`, `SystemHWInventory`):
//! a location (`ID`, an xname) holds at most one FRU (the physical part, `FRUID`). The
//! type-specific `…LocationInfo` and `…FRUInfo` objects are Redfish properties sorted into what
//! belongs to the slot and what moves with the part; they are kept as JSON objects, since SMD
//! stores and serves them as such.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

type Info = Option<Map<String, Value>>;

fn none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

/// One location (`HWInventory.1.0.0_HWInventoryByLocation`); node locations nest their parts
/// in `NestNodesOnly` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HwInvByLoc {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "Ordinal")]
    pub ordinal: i64,
    /// `Populated` or `Empty`.
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "HWInventoryByLocationType")]
    pub location_type: String,
    #[serde(rename = "NodeLocationInfo", default, skip_serializing_if = "none")]
    pub node_location_info: Info,
    #[serde(
        rename = "ProcessorLocationInfo",
        default,
        skip_serializing_if = "none"
    )]
    pub processor_location_info: Info,
    #[serde(
        rename = "NodeAccelLocationInfo",
        default,
        skip_serializing_if = "none"
    )]
    pub node_accel_location_info: Info,
    #[serde(rename = "MemoryLocationInfo", default, skip_serializing_if = "none")]
    pub memory_location_info: Info,
    #[serde(rename = "DriveLocationInfo", default, skip_serializing_if = "none")]
    pub drive_location_info: Info,
    #[serde(
        rename = "NodeEnclosurePowerSupplyLocationInfo",
        default,
        skip_serializing_if = "none"
    )]
    pub power_supply_location_info: Info,
    #[serde(rename = "PopulatedFRU", default, skip_serializing_if = "none")]
    pub populated_fru: Option<HwInvByFru>,
    #[serde(rename = "Processors", default, skip_serializing_if = "none")]
    pub processors: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "Memory", default, skip_serializing_if = "none")]
    pub memory: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "Drives", default, skip_serializing_if = "none")]
    pub drives: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "NodeAccels", default, skip_serializing_if = "none")]
    pub node_accels: Option<Vec<HwInvByLoc>>,
}

/// One part (`HWInventory.1.0.0_HWInventoryByFRU`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HwInvByFru {
    #[serde(rename = "FRUID")]
    pub fruid: String,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "Subtype")]
    pub subtype: String,
    #[serde(rename = "HWInventoryByFRUType")]
    pub fru_type: String,
    #[serde(rename = "NodeFRUInfo", default, skip_serializing_if = "none")]
    pub node_fru_info: Info,
    #[serde(rename = "ProcessorFRUInfo", default, skip_serializing_if = "none")]
    pub processor_fru_info: Info,
    #[serde(rename = "NodeAccelFRUInfo", default, skip_serializing_if = "none")]
    pub node_accel_fru_info: Info,
    #[serde(rename = "MemoryFRUInfo", default, skip_serializing_if = "none")]
    pub memory_fru_info: Info,
    #[serde(rename = "DriveFRUInfo", default, skip_serializing_if = "none")]
    pub drive_fru_info: Info,
    #[serde(
        rename = "NodeEnclosurePowerSupplyFRUInfo",
        default,
        skip_serializing_if = "none"
    )]
    pub power_supply_fru_info: Info,
}

/// A query's answer (`HWInventory.1.0.0_HWInventory`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HwInventory {
    #[serde(rename = "XName")]
    pub xname: String,
    /// `NestNodesOnly` (the default) or `FullyFlat`.
    #[serde(rename = "Format")]
    pub format: String,
    #[serde(rename = "Nodes", default, skip_serializing_if = "none")]
    pub nodes: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "Processors", default, skip_serializing_if = "none")]
    pub processors: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "Memory", default, skip_serializing_if = "none")]
    pub memory: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "Drives", default, skip_serializing_if = "none")]
    pub drives: Option<Vec<HwInvByLoc>>,
    #[serde(rename = "NodeAccels", default, skip_serializing_if = "none")]
    pub node_accels: Option<Vec<HwInvByLoc>>,
    #[serde(
        rename = "NodeEnclosurePowerSupplies",
        default,
        skip_serializing_if = "none"
    )]
    pub power_supplies: Option<Vec<HwInvByLoc>>,
}
