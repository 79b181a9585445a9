//! A Redfish mockup tree (DMTF layout: `<dir>/index.json` per resource) loaded into memory, and
//! the per-BMC rewrites that make one tree serve as many distinct BMCs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("reading mockup {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mockup file {path} is not JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("mockup {path} has no index.json at its root")]
    NoRoot { path: PathBuf },
}

/// Resources by normalised path (`/redfish/v1/Systems/1`, no trailing slash).
#[derive(Debug, Default, Clone)]
pub struct Tree {
    pub name: String,
    pub resources: HashMap<String, Value>,
}

impl Tree {
    /// Loads every `index.json` under `dir`; `dir/index.json` is `/redfish/v1`.
    pub fn load(dir: &Path) -> Result<Self, TreeError> {
        let mut resources = HashMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| TreeError::Io {
                path: d.clone(),
                source,
            })?;
            for e in entries {
                let e = e.map_err(|source| TreeError::Io {
                    path: d.clone(),
                    source,
                })?;
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == "index.json") {
                    let bytes = std::fs::read(&p).map_err(|source| TreeError::Io {
                        path: p.clone(),
                        source,
                    })?;
                    let v: Value =
                        serde_json::from_slice(&bytes).map_err(|source| TreeError::Json {
                            path: p.clone(),
                            source,
                        })?;
                    let rel = d.strip_prefix(dir).unwrap_or(Path::new(""));
                    let mut key = String::from("/redfish/v1");
                    for c in rel.components() {
                        key.push('/');
                        key.push_str(&c.as_os_str().to_string_lossy());
                    }
                    resources.insert(key, v);
                }
            }
        }
        if !resources.contains_key("/redfish/v1") {
            return Err(TreeError::NoRoot {
                path: dir.to_path_buf(),
            });
        }
        Ok(Self {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            resources,
        })
    }

    pub fn get(&self, path: &str) -> Option<&Value> {
        self.resources.get(path)
    }
}

/// Rewrites every MAC-looking token (`aa:bb:cc:dd:ee:ff`, `aa-bb-...`) so BMC `index` gets its
/// own MACs: octets 1 and 2 carry the index, the first octet becomes locally administered.
/// The same input MAC always maps to the same output, so links between resources still agree.
pub fn uniquify_macs(body: &str, index: u32) -> String {
    let b = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    let mut last = 0;
    while i + 17 <= b.len() {
        if let Some(sep) = mac_at(&b[i..i + 17]) {
            // Not part of a longer hex run (a UUID or hash).
            let before_ok = i == 0 || !b[i - 1].is_ascii_hexdigit() && b[i - 1] != sep;
            let after_ok = i + 17 == b.len() || !b[i + 17].is_ascii_hexdigit() && b[i + 17] != sep;
            if before_ok && after_ok {
                out.push_str(&body[last..i]);
                let text = &body[i..i + 17];
                let upper = text.bytes().any(|c| c.is_ascii_uppercase());
                let mut octets: Vec<u8> = text
                    .split(sep as char)
                    .filter_map(|h| u8::from_str_radix(h, 16).ok())
                    .collect();
                if octets.len() == 6 && octets.iter().any(|o| *o != 0) && octets != [0xff; 6] {
                    octets[0] = (octets[0] | 0x02) & 0xfe;
                    octets[1] ^= ((index >> 8) & 0xff) as u8;
                    octets[2] ^= (index & 0xff) as u8;
                    octets[0] ^= (((index >> 16) & 0x0f) as u8) << 4;
                    let s: Vec<String> = octets
                        .iter()
                        .map(|o| {
                            if upper {
                                format!("{o:02X}")
                            } else {
                                format!("{o:02x}")
                            }
                        })
                        .collect();
                    out.push_str(&s.join(&(sep as char).to_string()));
                } else {
                    out.push_str(text);
                }
                i += 17;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&body[last..]);
    out
}

fn mac_at(w: &[u8]) -> Option<u8> {
    let sep = w[2];
    if sep != b':' && sep != b'-' {
        return None;
    }
    for (k, c) in w.iter().enumerate() {
        if k % 3 == 2 {
            if *c != sep {
                return None;
            }
        } else if !c.is_ascii_hexdigit() {
            return None;
        }
    }
    Some(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_rewritten_consistently_and_nothing_else() {
        let body = r#"{"MACAddress":"94:40:C9:37:D3:FC","Other":"94:40:C9:37:D3:FC","d":"a4-bf-01-28-90-ac","uuid":"36383150-3630-584D-5130-313930323042","na":"Not Available","z":"00:00:00:00:00:00"}"#;
        let a = uniquify_macs(body, 5);
        let b = uniquify_macs(body, 6);
        assert_ne!(a, b);
        assert!(
            a.contains(r#""MACAddress":"96:40:CC:37:D3:FC","Other":"96:40:CC:37:D3:FC""#),
            "{a}"
        );
        assert!(a.contains(r#""d":"a6-bf-04-28-90-ac""#), "{a}");
        assert!(a.contains("36383150-3630-584D-5130-313930323042"));
        assert!(a.contains("00:00:00:00:00:00"));
        assert!(a.contains("Not Available"));
    }
}
