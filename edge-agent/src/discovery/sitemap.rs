//! Which xname a discovered BMC gets. Redfish does not know a BMC's location, and Magellan's
//! generated xnames collide (they ignore the third IPv4 octet), so the site map is the source:
//! a YAML or JSON file mapping a BMC's IP address or MAC to its controller xname.
//!
//! ```yaml
//! 10.254.1.15: x3000c0s1b0
//! "94:40:c9:37:d3:fc": x3000c0s2b0
//! ```
//!
//! Magellan's `--bmc-id-map` form (`{map_key: bmc-ip-addr, id_map: {ip: xname}}`) is read too.
//! A BMC in neither form is skipped with the reason "not in the site map": a guessed location
//! is worse than none.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use skyport_model::{Mac, Xname};

#[derive(Debug, thiserror::Error)]
pub enum SiteMapError {
    #[error("site map {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("site map {path}, entry {key:?}: {reason}")]
    Entry {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct SiteMap {
    by_ip: BTreeMap<IpAddr, Xname>,
    by_mac: BTreeMap<Mac, Xname>,
}

impl SiteMap {
    pub fn load(path: &Path) -> Result<Self, SiteMapError> {
        let text = std::fs::read_to_string(path).map_err(|e| SiteMapError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, SiteMapError> {
        let raw: BTreeMap<String, serde_norway::Value> =
            serde_norway::from_str(text).map_err(|e| SiteMapError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        // Magellan's form nests the map under `id_map`.
        let entries: BTreeMap<String, serde_norway::Value> = match raw.get("id_map") {
            Some(inner) => {
                serde_norway::from_value(inner.clone()).map_err(|e| SiteMapError::Read {
                    path: path.to_path_buf(),
                    reason: format!("id_map: {e}"),
                })?
            }
            None => raw,
        };
        let mut map = SiteMap::default();
        let mut seen: BTreeMap<Xname, String> = BTreeMap::new();
        for (key, value) in entries {
            if key == "map_key" {
                continue;
            }
            let entry_err = |reason: String| SiteMapError::Entry {
                path: path.to_path_buf(),
                key: key.clone(),
                reason,
            };
            let Some(x) = value.as_str() else {
                return Err(entry_err("the value must be an xname string".into()));
            };
            let x = Xname::parse(x).map_err(|e| entry_err(e.to_string()))?;
            if !x.hms_type().is_redfish_controller() {
                return Err(entry_err(format!(
                    "{x} is a {}, not a BMC or controller xname",
                    x.hms_type()
                )));
            }
            if let Some(other) = seen.insert(x.clone(), key.clone()) {
                return Err(entry_err(format!("{x} is also given to {other}")));
            }
            if let Ok(ip) = key.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
                map.by_ip.insert(ip, x);
            } else if let Ok(mac) = Mac::parse(&key) {
                map.by_mac.insert(mac, x);
            } else {
                return Err(entry_err("the key must be an IP address or a MAC".into()));
            }
        }
        Ok(map)
    }

    /// The xname for a BMC reached at `ip` whose NIC has `mac`; the IP wins when both match.
    pub fn lookup(&self, ip: Option<IpAddr>, mac: Option<Mac>) -> Option<&Xname> {
        ip.and_then(|ip| self.by_ip.get(&ip))
            .or_else(|| mac.and_then(|m| self.by_mac.get(&m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SiteMap {
        fn len(&self) -> usize {
            self.by_ip.len() + self.by_mac.len()
        }
    }

    fn parse(s: &str) -> Result<SiteMap, SiteMapError> {
        SiteMap::parse(s, Path::new("site.yaml"))
    }

    #[test]
    fn ip_and_mac_keys_in_yaml_json_and_magellan_form() {
        let m = parse("10.254.1.15: x3000c0s1b0\n\"94-40-C9-37-D3-FC\": x3000c0s2b0\n").unwrap();
        let ip = "10.254.1.15".parse().ok();
        assert_eq!(m.lookup(ip, None).unwrap().as_str(), "x3000c0s1b0");
        let mac = Mac::parse("94:40:c9:37:d3:fc").ok();
        assert_eq!(m.lookup(None, mac).unwrap().as_str(), "x3000c0s2b0");
        assert_eq!(m.lookup(ip, mac).unwrap().as_str(), "x3000c0s1b0");
        let m =
            parse(r#"{"map_key":"bmc-ip-addr","id_map":{"172.21.0.2":"x1000c0s0b0"}}"#).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn bad_entries_name_the_key() {
        for (doc, want) in [
            ("10.0.0.1: x3000c0s1b0n0\n", "not a BMC"),
            ("10.0.0.1: nonsense\n", "10.0.0.1"),
            (
                "10.0.0.1: x3000c0s1b0\n10.0.0.2: x3000c0s1b0\n",
                "also given",
            ),
            ("bmc-1: x3000c0s1b0\n", "IP address or a MAC"),
            ("10.0.0.1: [1, 2]\n", "xname string"),
            ("- just a list\n", "site.yaml"),
        ] {
            let e = parse(doc).unwrap_err().to_string();
            assert!(e.contains(want), "{doc:?}: {e}");
        }
    }
}
