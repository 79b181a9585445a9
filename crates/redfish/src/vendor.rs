//! Vendor quirks behind one trait, one module each. The crawl itself is vendor-neutral; after it,
//! the vendor (picked from the service root and what the crawl saw) gets a chance to correct
//! what its BMCs are known to get wrong.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::model::{BmcInventory, Manager, Nic};
use crate::power::{BootTarget, ResetType};

pub trait Vendor: Send + Sync {
    fn name(&self) -> &'static str;

    /// Whether the BMC belongs to this vendor.
    fn matches(&self, root: &Value, inv: &BmcInventory) -> bool;

    /// A NIC that faces the host or is otherwise shared between BMCs, beyond what the BMC's own
    /// `HostInterfaces` declare. Link-local addresses are never a BMC's identity.
    fn is_host_interface(&self, nic: &Nic) -> bool {
        nic.ipv4.iter().all(Ipv4Addr::is_link_local) && !nic.ipv4.is_empty()
    }

    /// A manager that is not the BMC itself (microcontrollers listed beside it).
    fn is_auxiliary(&self, m: &Manager) -> bool {
        m.manager_type.as_deref() == Some("AuxiliaryController")
    }

    /// Fix-ups after the crawl.
    fn finish(&self, _inv: &mut BmcInventory) {}

    /// The reset type to post for `want`, given what the system lists (`allowed`, empty when
    /// the BMC did not say); `None` when this BMC has no way to do it in one call (the caller
    /// then composes it, or reports it unsupported). A type the BMC did not list is never sent.
    fn reset_type(&self, want: ResetType, allowed: &[String]) -> Option<ResetType> {
        let listed = |t: ResetType| allowed.iter().any(|a| a == t.as_str());
        if allowed.is_empty() || listed(want) {
            return Some(want);
        }
        // Same effect under another name: `ForceOn` powers on too; `PushPowerButton` is the
        // graceful shutdown of BMCs that list no `GracefulShutdown` (the caller only sends it
        // to a system that is on, where a press asks the OS to shut down).
        let alias = match want {
            ResetType::On => ResetType::ForceOn,
            ResetType::GracefulShutdown => ResetType::PushPowerButton,
            _ => return None,
        };
        listed(alias).then_some(alias)
    }

    /// The PATCH body that sets the next boot (once) to `target`, or clears an override.
    /// UEFI HTTP boot also asks for UEFI mode, which a BMC in legacy mode needs to get there.
    fn boot_override(&self, target: BootTarget) -> Value {
        match target {
            BootTarget::None => serde_json::json!({"Boot": {
                "BootSourceOverrideEnabled": "Disabled",
                "BootSourceOverrideTarget": "None",
            }}),
            BootTarget::Pxe => serde_json::json!({"Boot": {
                "BootSourceOverrideEnabled": "Once",
                "BootSourceOverrideTarget": "Pxe",
            }}),
            BootTarget::UefiHttp => serde_json::json!({"Boot": {
                "BootSourceOverrideEnabled": "Once",
                "BootSourceOverrideTarget": "UefiHttp",
                "BootSourceOverrideMode": "UEFI",
            }}),
        }
    }
}

/// The vendor module a crawl named (`BmcInventory::vendor`), `generic` for anything else.
pub fn by_name(name: &str) -> &'static dyn Vendor {
    match name {
        "hpe" => &hpe::Hpe,
        "cray" => &cray::Cray,
        "openbmc" => &openbmc::OpenBmc,
        _ => &generic::Generic,
    }
}

/// Picks the vendor module; `generic` when nothing more specific matches.
pub fn detect(root: &Value, inv: &BmcInventory) -> &'static dyn Vendor {
    const ALL: &[&dyn Vendor] = &[&hpe::Hpe, &cray::Cray, &openbmc::OpenBmc];
    ALL.iter()
        .copied()
        .find(|v| v.matches(root, inv))
        .unwrap_or(&generic::Generic)
}

pub mod generic {
    //! Anything standard: no quirks beyond the trait's defaults.
    use super::*;

    pub struct Generic;

    impl Vendor for Generic {
        fn name(&self) -> &'static str {
            "generic"
        }
        fn matches(&self, _: &Value, _: &BmcInventory) -> bool {
            true
        }
    }
}

pub mod hpe {
    //! HPE iLO: the host-interface NIC (`16.1.15.1`, `0A:CA:FE:F0:0D:04`) is identical on every
    //! iLO, so it must never be taken for the BMC or stored as an interface.
    use super::*;

    pub struct Hpe;

    const ILO_HOST_IP: Ipv4Addr = Ipv4Addr::new(16, 1, 15, 1);

    impl Vendor for Hpe {
        fn name(&self) -> &'static str {
            "hpe"
        }
        fn matches(&self, root: &Value, inv: &BmcInventory) -> bool {
            root.get("Vendor").and_then(Value::as_str) == Some("HPE")
                || root.get("Oem").and_then(|o| o.get("Hpe")).is_some()
                || inv
                    .managers
                    .iter()
                    .any(|m| m.model.as_deref().is_some_and(|x| x.starts_with("iLO")))
        }
        fn is_host_interface(&self, nic: &Nic) -> bool {
            nic.ipv4.contains(&ILO_HOST_IP)
                || nic
                    .mac
                    .is_some_and(|m| m.octets() == [0x0a, 0xca, 0xfe, 0xf0, 0x0d, 0x04])
                || generic::Generic.is_host_interface(nic)
        }
        fn finish(&self, inv: &mut BmcInventory) {
            for m in &mut inv.managers {
                for n in &mut m.ethernet_interfaces {
                    if self.is_host_interface(n) {
                        n.host_interface = true;
                    }
                }
            }
        }
    }
}

pub mod cray {
    //! HPE Cray EX (node cards, CMMs): the BMC manager is an `EnclosureManager` listed beside
    //! `AuxiliaryController` MCUs, has no EthernetInterfaces (its MAC comes from DHCP), and CMMs
    //! have no Systems at all.
    use super::*;

    pub struct Cray;

    impl Vendor for Cray {
        fn name(&self) -> &'static str {
            "cray"
        }
        fn matches(&self, _root: &Value, inv: &BmcInventory) -> bool {
            inv.managers
                .iter()
                .any(|m| m.manager_type.as_deref() == Some("EnclosureManager"))
                && inv.chassis.iter().any(|c| {
                    c.path.ends_with("/Enclosure")
                        || c.model.as_deref().is_some_and(|m| m.contains("Cray"))
                })
        }
        fn finish(&self, inv: &mut BmcInventory) {
            if inv
                .managers
                .iter()
                .all(|m| m.ethernet_interfaces.is_empty())
            {
                inv.warnings.push(
                    "Cray EX BMCs publish no manager EthernetInterfaces; the BMC MAC must come \
                     from DHCP or a site map"
                        .into(),
                );
            }
        }
    }
}

pub mod openbmc {
    //! OpenBMC (bmcweb): a powered-off host reports `ProcessorSummary.Count: 0` and
    //! `TotalSystemMemoryGiB: 0`, which mean "unknown", not "none".
    use super::*;

    pub struct OpenBmc;

    impl Vendor for OpenBmc {
        fn name(&self) -> &'static str {
            "openbmc"
        }
        fn matches(&self, root: &Value, inv: &BmcInventory) -> bool {
            root.get("Oem").and_then(|o| o.get("OpenBmc")).is_some()
                || inv.managers.iter().any(|m| {
                    m.path.ends_with("/Managers/bmc")
                        && m.model.as_deref().is_none_or(|x| x.contains("OpenBmc"))
                })
        }
    }

    /// Whether zero counts on this system mean "unknown" (host off).
    pub fn counts_unknown(sys: &crate::model::System) -> bool {
        sys.power_state.as_deref() != Some("On")
    }
}
