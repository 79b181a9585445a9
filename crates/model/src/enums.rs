//! The closed vocabularies of SMD (hms-base `hmstypes.go`): component type, state, flag, role,
//! subrole, network type, architecture and class.
//!
//! SMD matches these case-insensitively on input and always answers with one canonical
//! spelling; every enum here does the same through one macro, so no field can forget it.

use std::fmt;
use std::str::FromStr;

/// A value outside an enum's vocabulary; names the field so API errors can say which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: expected one of {allowed}")]
pub struct EnumError {
    pub field: &'static str,
    pub value: String,
    pub allowed: String,
}

macro_rules! hms_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const FIELD: &'static str = $field;

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = EnumError;
            fn from_str(s: &str) -> Result<Self, EnumError> {
                let t = s.trim();
                $(if t.eq_ignore_ascii_case($text) { return Ok($name::$variant); })+
                Err(EnumError {
                    field: $field,
                    value: s.to_string(),
                    allowed: [$($text),+].join(", "),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        serde_as_text!($name);
    };
}

hms_enum!(
    /// Logical state of a component.
    State, "State" {
        Unknown = "Unknown", Empty = "Empty", Populated = "Populated", Off = "Off", On = "On",
        Standby = "Standby", Halt = "Halt", Ready = "Ready",
    }
);

hms_enum!(
    /// State flag; defaults to OK when a component is created without one.
    Flag, "Flag" { Unknown = "Unknown", Ok = "OK", Warning = "Warning", Alert = "Alert", Locked = "Locked" }
);

hms_enum!(
    Role, "Role" {
        Compute = "Compute", Service = "Service", System = "System", Application = "Application",
        Storage = "Storage", Management = "Management",
    }
);

hms_enum!(SubRole, "SubRole" { Master = "Master", Worker = "Worker", Storage = "Storage" });

hms_enum!(
    NetType, "NetType" {
        Sling = "Sling", Infiniband = "Infiniband", Ethernet = "Ethernet", Oem = "OEM", None = "None",
    }
);

hms_enum!(Arch, "Arch" { X86 = "X86", Arm = "ARM", Unknown = "UNKNOWN", Other = "Other" });

hms_enum!(Class, "Class" { River = "River", Mountain = "Mountain", Hill = "Hill" });

hms_enum!(
    /// Component type; always derived from the xname (see [`crate::Xname::hms_type`]).
    HmsType, "Type" {
        Cdu = "CDU", CduMgmtSwitch = "CDUMgmtSwitch", CabinetCdu = "CabinetCDU", Cabinet = "Cabinet",
        CabinetBmc = "CabinetBMC", CabinetPduController = "CabinetPDUController",
        CabinetPdu = "CabinetPDU", CabinetPduOutlet = "CabinetPDUOutlet",
        CabinetPduPowerConnector = "CabinetPDUPowerConnector", Cec = "CEC", Chassis = "Chassis",
        ChassisBmc = "ChassisBMC", CmmRectifier = "CMMRectifier", CmmFpga = "CMMFpga",
        MgmtSwitch = "MgmtSwitch", MgmtSwitchConnector = "MgmtSwitchConnector",
        MgmtHlSwitch = "MgmtHLSwitch", ComputeModule = "ComputeModule",
        NodeEnclosure = "NodeEnclosure", NodeEnclosurePowerSupply = "NodeEnclosurePowerSupply",
        NodePowerConnector = "NodePowerConnector", NodeBmc = "NodeBMC", NodeBmcNic = "NodeBMCNic",
        Node = "Node", VirtualNode = "VirtualNode", Processor = "Processor", NodeNic = "NodeNic",
        NodeHsnNic = "NodeHsnNic", Memory = "Memory", NodeAccel = "NodeAccel",
        NodeAccelRiser = "NodeAccelRiser", StorageGroup = "StorageGroup", Drive = "Drive",
        RouterModule = "RouterModule", RouterBmc = "RouterBMC", RouterBmcNic = "RouterBMCNic",
        RouterFpga = "RouterFpga", RouterTor = "RouterTOR", RouterTorFpga = "RouterTORFpga",
        HsnBoard = "HSNBoard", HsnAsic = "HSNAsic", HsnLink = "HSNLink",
        HsnConnector = "HSNConnector", HsnConnectorPort = "HSNConnectorPort", System = "System",
        Partition = "Partition", Invalid = "INVALID",
    }
);

impl HmsType {
    /// Types SMD accepts as a RedfishEndpoint ID: the controllers a Redfish service runs on.
    pub fn is_redfish_controller(self) -> bool {
        matches!(
            self,
            HmsType::NodeBmc
                | HmsType::RouterBmc
                | HmsType::ChassisBmc
                | HmsType::CabinetPduController
                | HmsType::MgmtSwitch
                | HmsType::MgmtHlSwitch
                | HmsType::CduMgmtSwitch
        )
    }

    /// True for the types that carry a NID, Role and Class (SMD fills these in on create).
    pub fn is_node(self) -> bool {
        matches!(self, HmsType::Node | HmsType::VirtualNode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_in_canonical_out() {
        assert_eq!("ready".parse::<State>().unwrap(), State::Ready);
        assert_eq!("ok".parse::<Flag>().unwrap().as_str(), "OK");
        assert_eq!("nodebmc".parse::<HmsType>().unwrap().as_str(), "NodeBMC");
        assert_eq!("arm".parse::<Arch>().unwrap().as_str(), "ARM");
        let e = "Bogus".parse::<Role>().unwrap_err();
        assert_eq!(e.field, "Role");
        assert!(e.to_string().contains("Compute"));
    }

    #[test]
    fn every_variant_round_trips() {
        for t in HmsType::ALL {
            assert_eq!(t.as_str().parse::<HmsType>().unwrap(), *t);
        }
        for s in State::ALL {
            assert_eq!(s.as_str().to_lowercase().parse::<State>().unwrap(), *s);
        }
    }
}
