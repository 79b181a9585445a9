//! The vocabulary of acting on hardware, shared by the power service, the edge agent and the
//! Redfish client: PCS's operations, Redfish's power states, and where a one-time boot goes.

use serde::{Deserialize, Serialize};

/// A power operation, named as PCS names it (`Soft-Restart`); PCS reads them in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    On,
    /// Graceful shutdown, then forced after [`Timing::graceful`].
    Off,
    #[serde(rename = "Soft-Off")]
    SoftOff,
    #[serde(rename = "Force-Off")]
    ForceOff,
    #[serde(rename = "Soft-Restart")]
    SoftRestart,
    #[serde(rename = "Hard-Restart")]
    HardRestart,
    /// Off (graceful, then forced), then on: works from any state.
    Init,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::On,
        Operation::Off,
        Operation::SoftOff,
        Operation::ForceOff,
        Operation::SoftRestart,
        Operation::HardRestart,
        Operation::Init,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::On => "On",
            Operation::Off => "Off",
            Operation::SoftOff => "Soft-Off",
            Operation::ForceOff => "Force-Off",
            Operation::SoftRestart => "Soft-Restart",
            Operation::HardRestart => "Hard-Restart",
            Operation::Init => "Init",
        }
    }

    /// PCS's names, in any case (`force-off`, `Force-Off`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether running it again after an interruption is harmless. Operations that end in a
    /// state are; restarts are not (a second one reboots a node that already came back).
    pub fn repeatable(self) -> bool {
        matches!(
            self,
            Operation::On | Operation::Off | Operation::SoftOff | Operation::ForceOff
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A system's `PowerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    Paused,
    /// Absent or not a Redfish value.
    Unknown,
}

impl PowerState {
    pub fn parse(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("on") => PowerState::On,
            Some(s) if s.eq_ignore_ascii_case("off") => PowerState::Off,
            Some("PoweringOn") => PowerState::PoweringOn,
            Some("PoweringOff") => PowerState::PoweringOff,
            Some("Paused") => PowerState::Paused,
            _ => PowerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "On",
            PowerState::Off => "Off",
            PowerState::PoweringOn => "PoweringOn",
            PowerState::PoweringOff => "PoweringOff",
            PowerState::Paused => "Paused",
            PowerState::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for PowerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the next boot goes: the network (PXE or UEFI HTTP), or back to the normal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootTarget {
    Pxe,
    #[serde(rename = "http")]
    UefiHttp,
    /// Clears an override.
    None,
}

impl BootTarget {
    /// `pxe`, `http` (UEFI HTTP boot) or `none`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pxe" => Some(BootTarget::Pxe),
            "http" | "uefihttp" => Some(BootTarget::UefiHttp),
            "none" => Some(BootTarget::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BootTarget::Pxe => "pxe",
            BootTarget::UefiHttp => "http",
            BootTarget::None => "none",
        }
    }

    /// The `BootSourceOverrideTarget` value.
    pub fn redfish_name(self) -> &'static str {
        match self {
            BootTarget::Pxe => "Pxe",
            BootTarget::UefiHttp => "UefiHttp",
            BootTarget::None => "None",
        }
    }
}
