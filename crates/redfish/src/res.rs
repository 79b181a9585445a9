//! Lenient reading of Redfish JSON. BMCs send numbers as strings, `"N/A"` as numbers, padded
//! strings, placeholder serials and MACs, and objects where arrays belong; every accessor here
//! returns `None` (or empty) for anything it cannot read rather than failing the resource. The
//! scalar rules (a number where text belongs, a boolean spelled as text) are
//! [`skyport_wire::de`]'s, shared with the inventory's reading of discovery payloads; what is
//! Redfish's own (placeholders, `@odata.id` links, usable addresses) is here.

use std::net::Ipv4Addr;

use serde_json::Value;
use skyport_model::Mac;
use skyport_wire::de;

/// Strings that BMCs use to mean "no value".
const PLACEHOLDERS: &[&str] = &[
    "",
    "n/a",
    "na",
    "none",
    "null",
    "unknown",
    "not available",
    "not specified",
    "to be filled by o.e.m.",
    "default string",
    "0",
    "01234567890123456789ab",
    "0123456789",
    "system serial number",
    "system product name",
];

/// Treats a trimmed string as missing when it is a known placeholder.
pub fn clean(s: &str) -> Option<String> {
    let t = s.trim();
    if PLACEHOLDERS.iter().any(|p| t.eq_ignore_ascii_case(p)) {
        return None;
    }
    Some(t.to_string())
}

/// `obj[key]` as a clean string; numbers and booleans are rendered as text ([`de::text`]).
pub fn str_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => clean(s),
        other => de::text(other),
    }
}

/// A string at a path of keys (`["Status", "State"]`).
pub fn str_path(v: &Value, path: &[&str]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for k in parents {
        cur = cur.get(*k)?;
    }
    str_at(cur, last)
}

/// A number at a path, accepting numeric strings (`"64"`) and ignoring `"N/A"`.
pub fn num_path(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    match cur {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// A boolean, accepting `"true"`/`"false"` strings, padded or not ([`de::boolean`]).
pub fn bool_at(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::String(s) => de::boolean(&Value::String(s.trim().to_string())),
        other => de::boolean(other),
    }
}

/// The `@odata.id` of `obj[key]` (a link object), if any.
pub fn link_at(v: &Value, key: &str) -> Option<String> {
    odata_id(v.get(key)?)
}

/// The `@odata.id` of a link object, or the string itself when a BMC sends a bare URI.
pub fn odata_id(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => match o.get("@odata.id")? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        },
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Links in an array of link objects (`Members`, `Links.Chassis`); a single object counts as one.
pub fn links(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(odata_id).collect(),
        Some(other @ Value::Object(_)) => odata_id(other).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Strings in an array (`ConnectTypesSupported`, `AllowableValues`); non-strings are skipped.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().and_then(clean))
            .collect(),
        _ => Vec::new(),
    }
}

/// A MAC, with placeholders (`"Not Available"`, all zeros, broadcast) treated as missing.
pub fn mac_at(v: &Value, key: &str) -> Option<Mac> {
    Mac::parse(v.get(key)?.as_str()?).ok()
}

/// An IPv4 address that can identify a host: `"N/A"`, `0.0.0.0` and broadcast are missing.
pub fn ipv4(s: &str) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = s.trim().parse().ok()?;
    (!ip.is_unspecified() && !ip.is_broadcast()).then_some(ip)
}

/// Every usable IPv4 address of an EthernetInterface (`IPv4Addresses` then `IPv4StaticAddresses`).
pub fn ipv4_addresses(nic: &Value) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for key in ["IPv4Addresses", "IPv4StaticAddresses"] {
        if let Some(Value::Array(a)) = nic.get(key) {
            for entry in a {
                if let Some(ip) = entry.get("Address").and_then(Value::as_str).and_then(ipv4)
                    && !out.contains(&ip)
                {
                    out.push(ip);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_and_padding_are_missing() {
        let v = json!({"a": "  Contoso  ", "b": "To be filled by O.E.M.", "c": "N/A", "d": 7,
                       "e": "01234567890123456789AB", "f": ["x", 1, "N/A"]});
        assert_eq!(str_at(&v, "a").as_deref(), Some("Contoso"));
        assert_eq!(str_at(&v, "b"), None);
        assert_eq!(str_at(&v, "c"), None);
        assert_eq!(str_at(&v, "d").as_deref(), Some("7"));
        assert_eq!(str_at(&v, "e"), None);
        assert_eq!(strings(v.get("f")), vec!["x".to_string()]);
    }

    #[test]
    fn numbers_tolerate_strings_and_reject_text() {
        let v = json!({"P": {"Count": "2", "Bad": "N/A", "F": 64.0}});
        assert_eq!(num_path(&v, &["P", "Count"]), Some(2.0));
        assert_eq!(num_path(&v, &["P", "Bad"]), None);
        assert_eq!(num_path(&v, &["P", "F"]), Some(64.0));
    }

    #[test]
    fn addresses_skip_placeholders() {
        let nic = json!({"MACAddress": "Not Available",
            "IPv4Addresses": [{"Address": "N/A"}, {"Address": "0.0.0.0"}, {"Address": "10.1.2.3"}],
            "IPv4StaticAddresses": [{"Address": "10.1.2.3"}, {"Address": 5}]});
        assert_eq!(mac_at(&nic, "MACAddress"), None);
        assert_eq!(ipv4_addresses(&nic), vec![Ipv4Addr::new(10, 1, 2, 3)]);
        assert_eq!(
            mac_at(&json!({"m": "a4-bf-01-28-90-ac"}), "m").map(|m| m.to_string()),
            Some("a4:bf:01:28:90:ac".to_string())
        );
    }
}
