//! Xnames: the physical-location identifiers of HPE/Cray hardware (`x1000c0s7b0n1`), parsed,
//! normalised and classified into an [`HmsType`] exactly as hms-xname does.
//!
//! An xname is a run of `<letter><number>` segments; its letter sequence decides the component
//! type (`x c s b n` is a Node) and each number has a range (a chassis is 0–7). The table below
//! is the single source of truth for both, so the parser, the type derivation and the parent
//! relation cannot drift apart.

use std::fmt;
use std::str::FromStr;

use crate::enums::HmsType;

/// Why a string is not an xname. The offending input is kept so API errors can name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XnameError {
    #[error("xname is empty")]
    Empty,
    #[error("invalid xname {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
}

/// One row of the type table: letter sequence, the largest number allowed for each segment,
/// and the type. `u32::MAX` means "any number that fits".
struct Shape {
    letters: &'static str,
    max: &'static [u32],
    ty: HmsType,
}

/// A table row, on one line.
const fn shape(letters: &'static str, max: &'static [u32], ty: HmsType) -> Shape {
    Shape { letters, max, ty }
}

const ANY: u32 = u32::MAX;
const CAB: u32 = 9999; // hms-xname allows 1-4 digits for a cabinet

/// hms-xname's component types (xnametypes/hmstypes.go), minus the pseudo-types (`all`, ...).
const SHAPES: &[Shape] = &[
    shape("s", &[0], HmsType::System),
    shape("p", &[ANY], HmsType::Partition),
    shape("d", &[ANY], HmsType::Cdu),
    shape("dw", &[ANY, ANY], HmsType::CduMgmtSwitch),
    shape("x", &[CAB], HmsType::Cabinet),
    shape("xb", &[CAB, 0], HmsType::CabinetBmc),
    shape("xd", &[CAB, 1], HmsType::CabinetCdu),
    shape("xe", &[CAB, 1], HmsType::Cec),
    shape("xm", &[CAB, 3], HmsType::CabinetPduController),
    shape("xmp", &[CAB, 3, 7], HmsType::CabinetPdu),
    shape("xmpj", &[CAB, 3, 7, ANY], HmsType::CabinetPduOutlet),
    shape("xmpv", &[CAB, 3, 7, ANY], HmsType::CabinetPduPowerConnector),
    shape("xc", &[CAB, 7], HmsType::Chassis),
    shape("xcb", &[CAB, 7, 0], HmsType::ChassisBmc),
    shape("xct", &[CAB, 7, 9], HmsType::CmmRectifier),
    shape("xcf", &[CAB, 7, 0], HmsType::CmmFpga),
    shape("xcw", &[CAB, 7, ANY], HmsType::MgmtSwitch),
    shape("xcwj", &[CAB, 7, ANY, ANY], HmsType::MgmtSwitchConnector),
    shape("xchs", &[CAB, 7, ANY, ANY], HmsType::MgmtHlSwitch),
    shape("xcs", &[CAB, 7, ANY], HmsType::ComputeModule),
    shape("xcse", &[CAB, 7, ANY, ANY], HmsType::NodeEnclosure),
    shape(
        "xcset",
        &[CAB, 7, ANY, ANY, ANY],
        HmsType::NodeEnclosurePowerSupply,
    ),
    shape("xcsv", &[CAB, 7, ANY, ANY], HmsType::NodePowerConnector),
    shape("xcsb", &[CAB, 7, ANY, ANY], HmsType::NodeBmc),
    shape("xcsbi", &[CAB, 7, ANY, ANY, ANY], HmsType::NodeBmcNic),
    shape("xcsbn", &[CAB, 7, ANY, ANY, ANY], HmsType::Node),
    shape(
        "xcsbnv",
        &[CAB, 7, ANY, ANY, ANY, ANY],
        HmsType::VirtualNode,
    ),
    shape("xcsbnp", &[CAB, 7, ANY, ANY, ANY, 3], HmsType::Processor),
    shape("xcsbni", &[CAB, 7, ANY, ANY, ANY, 3], HmsType::NodeNic),
    shape("xcsbnh", &[CAB, 7, ANY, ANY, ANY, 3], HmsType::NodeHsnNic),
    shape("xcsbnd", &[CAB, 7, ANY, ANY, ANY, ANY], HmsType::Memory),
    shape("xcsbna", &[CAB, 7, ANY, ANY, ANY, ANY], HmsType::NodeAccel),
    shape(
        "xcsbnr",
        &[CAB, 7, ANY, ANY, ANY, 7],
        HmsType::NodeAccelRiser,
    ),
    shape(
        "xcsbng",
        &[CAB, 7, ANY, ANY, ANY, ANY],
        HmsType::StorageGroup,
    ),
    shape(
        "xcsbngk",
        &[CAB, 7, ANY, ANY, ANY, ANY, ANY],
        HmsType::Drive,
    ),
    shape("xcr", &[CAB, 7, ANY], HmsType::RouterModule),
    shape("xcrb", &[CAB, 7, ANY, ANY], HmsType::RouterBmc),
    shape("xcrbi", &[CAB, 7, ANY, ANY, ANY], HmsType::RouterBmcNic),
    shape("xcrf", &[CAB, 7, ANY, 1], HmsType::RouterFpga),
    shape("xcrt", &[CAB, 7, ANY, ANY], HmsType::RouterTor),
    shape("xcrtf", &[CAB, 7, ANY, ANY, 1], HmsType::RouterTorFpga),
    shape("xcre", &[CAB, 7, ANY, ANY], HmsType::HsnBoard),
    shape("xcra", &[CAB, 7, ANY, ANY], HmsType::HsnAsic),
    shape("xcral", &[CAB, 7, ANY, ANY, ANY], HmsType::HsnLink),
    shape("xcrj", &[CAB, 7, ANY, ANY], HmsType::HsnConnector),
    shape("xcrjp", &[CAB, 7, ANY, ANY, 2], HmsType::HsnConnectorPort),
];

/// A validated, normalised xname. Construction is the only validation point: holding an
/// `Xname` means the string is canonical (lowercase, no leading zeros) and has a known type.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xname {
    text: String,
    ty: HmsType,
    // The numeric segments, kept so callers (NID derivation, parents) need not re-parse.
    nums: Vec<u32>,
}

impl Xname {
    /// Parses and normalises: trims, lowercases, strips leading zeros (`x0001c0s07b0n0` is
    /// `x1c0s7b0n0`), as hms-xname's `NormalizeHMSCompID` does, then checks the shape.
    pub fn parse(input: &str) -> Result<Self, XnameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(XnameError::Empty);
        }
        let invalid = |reason| XnameError::Invalid {
            input: input.to_string(),
            reason,
        };
        let lower = trimmed.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        let mut letters = String::new();
        let mut nums = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let letter = bytes[i];
            if !letter.is_ascii_lowercase() {
                return Err(invalid("expected a letter followed by a number"));
            }
            i += 1;
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(invalid("a letter must be followed by a number"));
            }
            let digits = lower[start..i].trim_start_matches('0');
            // 10 digits could overflow u32; anything longer certainly does.
            if digits.len() > 10 {
                return Err(invalid("number too large"));
            }
            let n: u32 = if digits.is_empty() {
                0
            } else {
                digits.parse().map_err(|_| invalid("number too large"))?
            };
            letters.push(letter as char);
            nums.push(n);
        }
        let shape = SHAPES
            .iter()
            .find(|s| s.letters == letters)
            .ok_or_else(|| invalid("unknown component type"))?;
        for (n, max) in nums.iter().zip(shape.max) {
            if n > max {
                return Err(invalid("number out of range for this component type"));
            }
        }
        let mut text = String::with_capacity(lower.len());
        for (l, n) in letters.chars().zip(&nums) {
            text.push(l);
            text.push_str(&n.to_string());
        }
        Ok(Xname {
            text,
            ty: shape.ty,
            nums,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The component type the xname denotes; SMD never trusts a client-sent Type.
    pub fn hms_type(&self) -> HmsType {
        self.ty
    }

    /// The numeric segments in order (`x3c1s2b0n1` gives `[3, 1, 2, 0, 1]`).
    pub fn numbers(&self) -> &[u32] {
        &self.nums
    }

    /// The enclosing component (`x1c0s0b0n0` is under `x1c0s0b0`), if that is itself a type.
    pub fn parent(&self) -> Option<Xname> {
        let mut segs: Vec<(char, u32)> = self.segments().collect();
        while segs.len() > 1 {
            segs.pop();
            let s: String = segs.iter().map(|(l, n)| format!("{l}{n}")).collect();
            if let Ok(x) = Xname::parse(&s) {
                return Some(x);
            }
        }
        None
    }

    /// `<self>n<k>`: the k-th node under a NodeBMC, as SMD names discovered systems.
    pub fn child_node(&self, k: u32) -> Option<Xname> {
        if self.ty != HmsType::NodeBmc {
            return None;
        }
        Xname::parse(&format!("{}n{k}", self.text)).ok()
    }

    /// SMD's stand-in NID for a node with none configured:
    /// `(cab+1)*16384 + chassis*2048 + slot*32 + bmc*4 + node`. `None` for non-nodes or when
    /// the numbers overflow, so a caller can refuse rather than store a wrapped value.
    pub fn default_nid(&self) -> Option<u64> {
        if !matches!(self.ty, HmsType::Node | HmsType::VirtualNode) {
            return None;
        }
        let n: Vec<u64> = self.nums.iter().map(|&v| u64::from(v)).collect();
        let (cab, chassis, slot, bmc, node) = (n[0], n[1], n[2], n[3], n[4]);
        (cab + 1)
            .checked_mul(16384)?
            .checked_add(chassis.checked_mul(2048)?)?
            .checked_add(slot.checked_mul(32)?)?
            .checked_add(bmc.checked_mul(4)?)?
            .checked_add(node)
    }

    fn segments(&self) -> impl Iterator<Item = (char, u32)> + '_ {
        self.text
            .chars()
            .filter(|c| c.is_ascii_lowercase())
            .zip(self.nums.iter().copied())
    }
}

impl fmt::Display for Xname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Xname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xname({})", self.text)
    }
}

impl FromStr for Xname {
    type Err = XnameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Xname::parse(s)
    }
}

impl AsRef<str> for Xname {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

serde_as_text!(Xname);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ty(s: &str) -> HmsType {
        Xname::parse(s)
            .map(|x| x.hms_type())
            .unwrap_or(HmsType::Invalid)
    }

    #[test]
    fn types_required_by_the_inventory() {
        assert_eq!(ty("s0"), HmsType::System);
        assert_eq!(ty("p1"), HmsType::Partition);
        assert_eq!(ty("x1000"), HmsType::Cabinet);
        assert_eq!(ty("x1000m0"), HmsType::CabinetPduController);
        assert_eq!(ty("x1000c7"), HmsType::Chassis);
        assert_eq!(ty("x1000c7b0"), HmsType::ChassisBmc);
        assert_eq!(ty("x1000c7s3"), HmsType::ComputeModule);
        assert_eq!(ty("x1000c7s3b1"), HmsType::NodeBmc);
        assert_eq!(ty("x1000c7s3b1n0"), HmsType::Node);
        assert_eq!(ty("x1000c7s3b1n0v2"), HmsType::VirtualNode);
        assert_eq!(ty("x1000c7s3b1n0i3"), HmsType::NodeNic);
        assert_eq!(ty("x1000c7s3b1n0h3"), HmsType::NodeHsnNic);
        assert_eq!(ty("x1000c7r4"), HmsType::RouterModule);
        assert_eq!(ty("x1000c7r4b0"), HmsType::RouterBmc);
        assert_eq!(ty("x1000c7r4e0"), HmsType::HsnBoard);
    }

    #[test]
    fn normalises_like_hms_xname() {
        let x = Xname::parse("  X0001C0S07B0N0 ").unwrap();
        assert_eq!(x.as_str(), "x1c0s7b0n0");
        assert_eq!(x.numbers(), &[1, 0, 7, 0, 0]);
        assert_eq!(Xname::parse("x00c0").unwrap().as_str(), "x0c0");
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        for bad in [
            "",
            " ",
            "x",
            "x1c8",
            "x10000",
            "s1",
            "x1c0s0b0n0i4",
            "y1",
            "x1c0s0b0n",
            "x1c0s0b0n0q1",
            "x1-c0",
            "x1c0s0b0n0h4",
            "x99999999999c0",
            "1x",
            "x1c0s0b0nz",
            "xé1",
        ] {
            assert!(Xname::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn default_nid_matches_smd_formula() {
        // (cab+1)*16384 + chassis*2048 + slot*32 + bmc*4 + node
        let x = Xname::parse("x0c0s1b0n0").unwrap();
        assert_eq!(x.default_nid(), Some(16384 + 32));
        let x = Xname::parse("x3c2s5b1n1").unwrap();
        assert_eq!(x.default_nid(), Some(4 * 16384 + 2 * 2048 + 5 * 32 + 4 + 1));
        assert_eq!(Xname::parse("x3c2s5b1").unwrap().default_nid(), None);
    }

    #[test]
    fn parents_and_children() {
        let n = Xname::parse("x1c0s2b0n3").unwrap();
        assert_eq!(n.parent().unwrap().as_str(), "x1c0s2b0");
        assert_eq!(n.parent().unwrap().parent().unwrap().as_str(), "x1c0s2");
        let bmc = Xname::parse("x1c0s2b0").unwrap();
        assert_eq!(bmc.child_node(1).unwrap().as_str(), "x1c0s2b0n1");
        assert!(n.child_node(0).is_none());
        assert!(Xname::parse("x1").unwrap().parent().is_none());
    }

    #[test]
    fn serde_round_trip_normalises() {
        let x: Xname = serde_json::from_str("\"X1C0S0B0N01\"").unwrap();
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"x1c0s0b0n1\"");
        assert!(serde_json::from_str::<Xname>("\"nonsense\"").is_err());
    }

    proptest! {
        // Untrusted input: never panics, and whatever parses is canonical and stable.
        #[test]
        fn parse_never_panics_and_is_idempotent(s in "\\PC{0,24}") {
            if let Ok(x) = Xname::parse(&s) {
                let again = Xname::parse(x.as_str()).unwrap();
                prop_assert_eq!(&again, &x);
                prop_assert_eq!(x.as_str().to_ascii_lowercase(), x.as_str());
            }
        }

        #[test]
        fn leading_zeros_and_case_do_not_matter(
            cab in 0u32..10000, ch in 0u32..8, slot in 0u32..64, b in 0u32..4, n in 0u32..4,
            zeros in 0usize..4, upper in any::<bool>(),
        ) {
            let z = "0".repeat(zeros);
            let mut s = format!("x{z}{cab}c{z}{ch}s{z}{slot}b{z}{b}n{z}{n}");
            if upper { s = s.to_uppercase(); }
            let x = Xname::parse(&s).unwrap();
            prop_assert_eq!(x.as_str(), format!("x{cab}c{ch}s{slot}b{b}n{n}"));
            prop_assert_eq!(x.hms_type(), HmsType::Node);
            prop_assert_eq!(x.parent().unwrap().hms_type(), HmsType::NodeBmc);
        }
    }
}
