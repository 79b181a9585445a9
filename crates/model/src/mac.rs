//! MAC addresses as they arrive from admins, BMCs and DHCP: colon, dash, dot (Cisco) and bare-hex
//! forms in; the lowercase colon form and SMD's bare-hex interface ID out.
//!
//! BMCs report placeholders (`"Not Available"`, all zeros, all ones) where they have no MAC; those
//! are rejected here so no placeholder ever becomes a key that two interfaces would share.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("invalid MAC address {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error("MAC address {input:?} is a placeholder, not a real address")]
    Placeholder { input: String },
}

/// What BMCs put where they have no MAC.
fn is_placeholder_text(t: &str) -> bool {
    const WORDS: &[&str] = &[
        "not available",
        "notavailable",
        "n/a",
        "na",
        "none",
        "null",
        "unknown",
        "unavailable",
        "not applicable",
        "-",
        "--",
    ];
    WORDS.iter().any(|w| t.eq_ignore_ascii_case(w))
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    pub fn parse(input: &str) -> Result<Self, MacError> {
        let t = input.trim();
        let invalid = |reason| MacError::Invalid {
            input: input.to_string(),
            reason,
        };
        if t.is_empty() {
            return Err(invalid("empty"));
        }
        let hex: String = if t.len() == 17 {
            let sep = t.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(invalid("expected ':' or '-' between octets"));
            }
            for (i, b) in t.bytes().enumerate() {
                if i % 3 == 2 && b != sep {
                    return Err(invalid("inconsistent separators"));
                }
            }
            t.chars().filter(|c| *c != sep as char).collect()
        } else if t.len() == 14 && t.as_bytes()[4] == b'.' && t.as_bytes()[9] == b'.' {
            t.chars().filter(|c| *c != '.').collect()
        } else if t.len() == 12 {
            t.to_string()
        } else {
            if is_placeholder_text(t) {
                return Err(MacError::Placeholder {
                    input: input.to_string(),
                });
            }
            return Err(invalid("expected 6 octets"));
        };
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("not hexadecimal"));
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
                .map_err(|_| invalid("not hexadecimal"))?;
        }
        if out == [0; 6] || out == [0xff; 6] {
            return Err(MacError::Placeholder {
                input: input.to_string(),
            });
        }
        Ok(Mac(out))
    }

    /// The MAC with these octets (a hardware address read from the wire).
    pub fn from_octets(octets: [u8; 6]) -> Self {
        Mac(octets)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// SMD's EthernetInterface ID: lowercase hex, no separators (`a4bf012b7310`).
    pub fn id(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Dash form used in the kernel's `BOOTIF=01-aa-bb-...` parameter.
    pub fn dashed(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, MacError> {
        Mac::parse(s)
    }
}

serde_as_text!(Mac);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_common_forms() {
        for s in [
            "A4:BF:01:2B:73:10",
            "a4-bf-01-2b-73-10",
            "a4bf012b7310",
            "a4bf.012b.7310",
            " a4:bf:01:2b:73:10 ",
        ] {
            let m = Mac::parse(s).unwrap();
            assert_eq!(m.to_string(), "a4:bf:01:2b:73:10");
            assert_eq!(m.id(), "a4bf012b7310");
            assert_eq!(m.dashed(), "a4-bf-01-2b-73-10");
        }
    }

    #[test]
    fn rejects_placeholders_and_garbage() {
        assert!(matches!(
            Mac::parse("Not Available"),
            Err(MacError::Placeholder { .. })
        ));
        assert!(matches!(
            Mac::parse("00:00:00:00:00:00"),
            Err(MacError::Placeholder { .. })
        ));
        assert!(matches!(
            Mac::parse("ff:ff:ff:ff:ff:ff"),
            Err(MacError::Placeholder { .. })
        ));
        for bad in [
            "",
            "a4:bf:01:2b:73",
            "a4:bf-01:2b:73:10",
            "g4:bf:01:2b:73:10",
            "a4bf012b731",
            "a4:bf:01:2b:73:10:00",
            "+4bf012b7310",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = Mac::parse(&s);
        }

        #[test]
        fn all_forms_agree(bytes in prop::array::uniform6(any::<u8>()), upper in any::<bool>()) {
            prop_assume!(bytes != [0; 6] && bytes != [0xff; 6]);
            let colon = bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            let colon = if upper { colon.to_uppercase() } else { colon };
            let m = Mac::parse(&colon).unwrap();
            prop_assert_eq!(Mac::parse(&m.id()).unwrap(), m);
            prop_assert_eq!(Mac::parse(&m.dashed()).unwrap(), m);
            prop_assert_eq!(Mac::parse(&m.to_string()).unwrap(), m);
            prop_assert_eq!(m.octets(), bytes);
        }
    }
}
