//! OpenCHAMI v0.2's `boot-service` (reference `openchami-v0.2.md` §2): the `BootConfiguration`,
//! `Node` and `BMC` resources, their validation, and the boot script chosen by score.
//!
//! BootConfigurations are one view of the boot data BSS's `/boot/v1/bootparameters` is the
//! other view of ([`configs`]): a BSS entry *is* a BootConfiguration with its one key as its
//! selector (uid `bss-host-<xname>`, `bss-mac-<12 hex>`, `bss-nid-<n>`, `bss-tag-<tag>`), and a
//! BootConfiguration created here (selectors by MAC, NID, xname, xname pattern or inventory
//! group) is seen by BSS's routes and boots nodes through either script route. Which data a
//! node boots is decided in one place ([`select`], used by both script routes and by the edge
//! agent over its synced copy). Nodes are the inventory's: a `Node` resource adds or overrides
//! what the inventory does not say (a hostname, extra groups, a boot MAC); BMC resources are
//! kept and served, and, as upstream, used by nothing.

pub mod configs;
pub mod legacy;
pub mod routes;
pub mod script;
pub mod select;

use serde::{Deserialize, Serialize};
use skyport_ipxe::{Slot, check_value};
use skyport_resource::{Invalid, Kind, Resource};
use skyport_store::Table;
use skyport_wire::de::Shape;

/// Resources created through `/boot-service/bootconfigurations` (BSS's entries stay in
/// [`crate::params::BOOT_PARAMS`]).
pub const BOOT_CONFIGS: Table = Table("BootConfigurations");
/// `Node` resources.
pub const BOOT_NODES: Table = Table("BootNodes");
/// `BMC` resources.
pub const BOOT_BMCS: Table = Table("BootBmcs");

/// `BootConfiguration.spec`, in upstream's field order; `kernel` is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nids: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default)]
    pub kernel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initrd: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub params: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `BootConfiguration.status`: nothing upstream sets it; clients may.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(
        rename = "lastUpdated",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_updated: String,
    #[serde(rename = "appliedTo", default, skip_serializing_if = "Vec::is_empty")]
    pub applied_to: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

pub struct BootConfiguration;

impl Kind for BootConfiguration {
    const KIND: &'static str = "BootConfiguration";
    const PLURAL: &'static str = "bootconfigurations";
    const UID_PREFIX: &'static str = "bootconfiguration";
    type Spec = ConfigSpec;
    type Status = ConfigStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("hosts", Shape::Opaque),
        ("macs", Shape::Opaque),
        ("nids", Shape::Opaque),
        ("groups", Shape::Opaque),
        ("profile", Shape::Opaque),
        ("kernel", Shape::Opaque),
        ("initrd", Shape::Opaque),
        ("params", Shape::Opaque),
        ("priority", Shape::Opaque),
    ]);
    const STATUS: Shape = Shape::Struct(&[
        ("phase", Shape::Opaque),
        ("lastUpdated", Shape::Opaque),
        ("appliedTo", Shape::Opaque),
        ("error", Shape::Opaque),
    ]);

    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        Invalid::check(config_problems(&r.spec))
    }
}

/// Upstream's checks of a configuration (`pkg/validation/validators.go`), in its order, with
/// Skyport's: a kernel may also be an `image:` or `s3://` reference, a host may also be one of
/// BSS's tags (how BSS's role and `Default` entries read here), and kernel, initrd and
/// parameters must be safe in a boot script.
pub fn config_problems(s: &ConfigSpec) -> Vec<String> {
    let mut out = Vec::new();
    for h in &s.hosts {
        if !(h.is_empty() || h == "default" || host_pattern(h).is_some() || is_bss_tag(h)) {
            out.push(format!("invalid host XName format: {h}"));
        }
    }
    for m in &s.macs {
        if !go_mac(m) {
            out.push(format!("invalid MAC address format: {m}"));
        }
    }
    if s.kernel.is_empty() {
        out.push("kernel field is required".into());
    } else if !fetchable(&s.kernel) {
        out.push(format!("invalid kernel URL or path: {}", s.kernel));
    }
    if !s.initrd.is_empty() && !fetchable(&s.initrd) {
        out.push(format!("invalid initrd URL or path: {}", s.initrd));
    }
    if !(0..=100).contains(&s.priority) {
        out.push("priority must be between 0 and 100".into());
    }
    for (slot, v) in [
        (Slot::Kernel, &s.kernel),
        (Slot::Initrd, &s.initrd),
        (Slot::Params, &s.params),
    ] {
        if (!v.is_empty() || slot == Slot::Params)
            && fetchable_or_params(slot, v)
            && let Err(e) = check_value(slot, v)
        {
            out.push(e.to_string());
        }
    }
    out
}

/// Whether the iPXE check applies: to parameters always, to a kernel or initrd that passed
/// upstream's own check (one that did not already has its message).
fn fetchable_or_params(slot: Slot, v: &str) -> bool {
    slot == Slot::Params || fetchable(v)
}

/// Upstream's kernel rule (an `http`/`https` URL or an absolute path longer than `/`), and
/// Skyport's references.
fn fetchable(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    ["http://", "https://", "image:", "s3://"]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len())
        || (v.starts_with('/') && v.len() > 1)
}

fn is_bss_tag(h: &str) -> bool {
    crate::params::tag(h).as_deref() == Some(h)
}

/// What a `hosts` entry matches: a node xname exactly, or the nodes under a prefix
/// (`x1c0s*`), with how many of the five levels the prefix fixes. `None` for anything else.
pub fn host_pattern(h: &str) -> Option<HostPattern> {
    let letters = ['x', 'c', 's', 'b', 'n'];
    let mut rest = h;
    for (i, l) in letters.iter().enumerate() {
        rest = rest.strip_prefix(*l)?;
        if rest == "*" {
            return Some(HostPattern::Prefix {
                prefix: h.trim_end_matches('*').to_string(),
                levels: i,
            });
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &rest[digits..];
    }
    rest.is_empty().then(|| HostPattern::Exact(h.to_string()))
}

/// A `hosts` entry read as [`host_pattern`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `prefix` is the text before `*` (`x1c0s`), `levels` how many of x, c, s, b, n it fixes.
    Prefix {
        prefix: String,
        levels: usize,
    },
}

impl HostPattern {
    /// Whether node `xname` is under this pattern.
    pub fn matches(&self, xname: &str) -> bool {
        match self {
            HostPattern::Exact(x) => x == xname,
            HostPattern::Prefix { prefix, .. } => {
                // The prefix ends in a level's letter, so the node's name goes on with that
                // level's digits: `x1c0s1b*` is not a prefix of `x1c0s10b0n0`.
                xname
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            }
        }
    }
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx:…`, `xx-xx-…` or `xxxx.xxxx.…`.
pub fn go_mac(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 14 {
        return false;
    }
    let sizes = [6usize, 8, 20];
    let hex = |c: &[u8]| c.iter().all(u8::is_ascii_hexdigit);
    if b[2] == b':' || b[2] == b'-' {
        if !(b.len() + 1).is_multiple_of(3) || !sizes.contains(&((b.len() + 1) / 3)) {
            return false;
        }
        b.chunks(3)
            .all(|c| hex(&c[..2]) && (c.len() == 2 || c[2] == b[2]))
    } else if b[4] == b'.' {
        if !(b.len() + 1).is_multiple_of(5) || !sizes.contains(&(2 * (b.len() + 1) / 5)) {
            return false;
        }
        b.chunks(5)
            .all(|c| hex(&c[..4]) && (c.len() == 4 || c[4] == b'.'))
    } else {
        false
    }
}

/// A node's interface in a `Node` or `BMC` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

const INTERFACE: Shape = Shape::Struct(&[
    ("mac", Shape::Opaque),
    ("ip", Shape::Opaque),
    ("type", Shape::Opaque),
]);

/// `Node.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    #[serde(default)]
    pub xname: String,
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub nid: i32,
    #[serde(rename = "bootMac", default, skip_serializing_if = "String::is_empty")]
    pub boot_mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(rename = "subRole", default, skip_serializing_if = "String::is_empty")]
    pub sub_role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

fn is_zero32(n: &i32) -> bool {
    *n == 0
}

/// `Node.status`: nothing upstream sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(rename = "lastBoot", default, skip_serializing_if = "String::is_empty")]
    pub last_boot: String,
    #[serde(
        rename = "bootConfiguration",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub boot_configuration: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(
        rename = "lastHSMSync",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_hsm_sync: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

pub struct Node;

impl Kind for Node {
    const KIND: &'static str = "Node";
    const PLURAL: &'static str = "nodes";
    const UID_PREFIX: &'static str = "node";
    type Spec = NodeSpec;
    type Status = NodeStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("xname", Shape::Opaque),
        ("nid", Shape::Opaque),
        ("bootMac", Shape::Opaque),
        ("role", Shape::Opaque),
        ("subRole", Shape::Opaque),
        ("hostname", Shape::Opaque),
        ("interfaces", Shape::List(&INTERFACE)),
        ("groups", Shape::Opaque),
    ]);
    const STATUS: Shape = Shape::Struct(&[
        ("lastBoot", Shape::Opaque),
        ("bootConfiguration", Shape::Opaque),
        ("state", Shape::Opaque),
        ("lastHSMSync", Shape::Opaque),
        ("error", Shape::Opaque),
    ]);

    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        let s = &r.spec;
        let mut out = Vec::new();
        if s.xname.is_empty() {
            out.push("xname is required".to_string());
        } else if !matches!(host_pattern(&s.xname), Some(HostPattern::Exact(_))) {
            out.push(format!("invalid XName format: {}", s.xname));
        }
        if !s.boot_mac.is_empty() && !go_mac(&s.boot_mac) {
            out.push(format!("invalid BootMAC format: {}", s.boot_mac));
        }
        Invalid::check(out)
    }
}

/// `BMC.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BmcSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "is_empty_interface")]
    pub interface: Interface,
}

fn is_empty_interface(i: &Interface) -> bool {
    i == &Interface::default()
}

/// `BMC.status`; `ready` is always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BmcStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub ready: bool,
}

pub struct Bmc;

impl Kind for Bmc {
    const KIND: &'static str = "BMC";
    const PLURAL: &'static str = "bmcs";
    const UID_PREFIX: &'static str = "bmc";
    type Spec = BmcSpec;
    type Status = BmcStatus;
    const SPEC: Shape = Shape::Struct(&[
        ("xname", Shape::Opaque),
        ("description", Shape::Opaque),
        ("interface", INTERFACE),
    ]);
    const STATUS: Shape = Shape::Struct(&[
        ("phase", Shape::Opaque),
        ("message", Shape::Opaque),
        ("ready", Shape::Opaque),
    ]);

    fn validate(r: &mut Resource<Self>) -> Result<(), Invalid> {
        if r.spec.description.chars().count() > 200 {
            return Err(Invalid::one("description must be at most 200"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn macs_parse_as_go_parses_them() {
        for ok in [
            "52:54:00:be:ef:01",
            "52-54-00-BE-EF-01",
            "5254.00be.ef01",
            "02:00:5e:10:00:00:00:01",
            "0000.0000.fe80.0000.0000.0000.0200.5e10.0000.0001",
        ] {
            assert!(go_mac(ok), "{ok}");
        }
        for bad in [
            "525400beef01",
            "52:54:00:be:ef",
            "52:54-00:be:ef:01",
            "52:54:00:be:ef:0g",
            "",
            "zz:zz:zz:zz:zz:zz",
        ] {
            assert!(!go_mac(bad), "{bad}");
        }
    }

    #[test]
    fn host_patterns_are_upstreams_forms_and_match_what_they_name() {
        for (h, ok) in [
            ("x1000c0s0b0n0", true),
            ("x1000c0s0b0n*", true),
            ("x1000c0s0b*", true),
            ("x1000c0s*", true),
            ("x1000c*", true),
            ("x*", true),
            ("*", false),
            ("x1000c0s0b0", false),
            ("x1000c0s0b0n0p0", false),
            ("X1000c0s0b0n0", false),
            ("x1000c*s0", false),
        ] {
            assert_eq!(host_pattern(h).is_some(), ok, "{h}");
        }
        assert!(
            host_pattern("x1c0s1*").is_none(),
            "a star follows a level's letter"
        );
        let p = host_pattern("x1c0s1b*").unwrap();
        assert!(p.matches("x1c0s1b0n0"));
        assert!(!p.matches("x1c0s10b0n0"));
        let p = host_pattern("x1c0s1b0n*").unwrap();
        assert!(p.matches("x1c0s1b0n3"));
        assert!(!p.matches("x1c0s1b1n3"));
        let p = host_pattern("x*").unwrap();
        assert!(p.matches("x9c0s1b0n0"));
    }

    #[test]
    fn configurations_are_checked_as_upstream_checks_them() {
        let s = ConfigSpec {
            hosts: vec!["*".into(), "x1c0s0b0n0".into(), "Compute".into()],
            macs: vec!["nope".into()],
            kernel: String::new(),
            priority: 101,
            ..ConfigSpec::default()
        };
        assert_eq!(
            config_problems(&s),
            vec![
                "invalid host XName format: *",
                "invalid MAC address format: nope",
                "kernel field is required",
                "priority must be between 0 and 100",
            ]
        );
        let s = ConfigSpec {
            kernel: "vmlinuz".into(),
            params: "quiet || shell".into(),
            ..ConfigSpec::default()
        };
        let p = config_problems(&s);
        assert_eq!(p[0], "invalid kernel URL or path: vmlinuz");
        assert!(p[1].starts_with("params has a word"), "{p:?}");
    }
}
