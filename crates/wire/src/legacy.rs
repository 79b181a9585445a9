//! SMD's legacy discovery payload: a RedfishEndpoint POST whose `Systems[]` (and `Managers[]`)
//! carry raw Redfish resources, `{"Data": <ComputerSystem>, "EthernetInterfaces": [<Redfish
//! EthernetInterface>]}`, as Magellan sent them until mid-2024 and as SMD's V1 parser
//! (`parseRedfishEndpointData`) still reads them when `SchemaVersion` is absent or ≤ 0.
//!
//! [`upgrade`] rewrites such elements in place into the discovery shape ([`crate::discovery`])
//! so that one derivation serves both generations, and nothing the payload carried about a
//! system is lost (upstream's V1 parser drops the system's URI, actions and NIC addresses).
//! Elements already in the discovery shape are left alone. Wrong types are refused with the
//! path of the value (upstream panics on them and answers 500 with an empty body).

use serde_json::{Map, Value, json};

/// Why a legacy payload could not be read: the path of the offending value and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}")]
pub struct LegacyError {
    pub path: String,
    pub expected: &'static str,
}

fn err(path: String, expected: &'static str) -> LegacyError {
    LegacyError { path, expected }
}

/// Whether `element` is a legacy system or manager: it carries a Redfish resource in `Data`.
fn is_legacy(element: &Value) -> bool {
    element.get("Data").is_some()
}

/// Whether the endpoint document `doc` has legacy elements (so [`upgrade`] would change it).
pub fn is_legacy_payload(doc: &Value) -> bool {
    ["Systems", "Managers"].iter().any(|k| {
        doc.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(is_legacy))
    })
}

/// Rewrites the legacy elements of an endpoint document in place (see the module docs).
/// `at` prefixes error paths (`RedfishEndpoints[2]` in the array form).
pub fn upgrade(doc: &mut Value, at: &str) -> Result<(), LegacyError> {
    let Some(obj) = doc.as_object_mut() else {
        return Ok(());
    };
    for (key, convert) in [
        (
            "Systems",
            system as fn(&Value, &str) -> Result<Value, LegacyError>,
        ),
        ("Managers", manager),
    ] {
        let Some(Value::Array(items)) = obj.get_mut(key) else {
            continue;
        };
        for (i, item) in items.iter_mut().enumerate() {
            if is_legacy(item) {
                let path = format!("{at}{}{key}[{i}]", if at.is_empty() { "" } else { "." });
                *item = convert(item, &path)?;
            }
        }
    }
    Ok(())
}

/// A string at `key` of `o`, if there is one; anything but a string or null is refused.
fn text(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, LegacyError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(format!("{path}.{key}"), "a string")),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, LegacyError> {
    v.as_object()
        .ok_or_else(|| err(path.to_string(), "an object"))
}

/// An optional object member (absent or null: none).
fn member<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, LegacyError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => object(v, &format!("{path}.{key}")).map(Some),
    }
}

/// An optional array member (absent or null: empty).
fn list<'a>(o: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value], LegacyError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(err(format!("{path}.{key}"), "an array")),
    }
}

/// The `@odata.id`s of a Redfish link array (`Links.Chassis`).
fn links(o: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, LegacyError> {
    let mut out = Vec::new();
    for (i, l) in list(o, key, path)?.iter().enumerate() {
        let p = format!("{path}.{key}[{i}]");
        if let Some(id) = text(object(l, &p)?, "@odata.id", &p)? {
            out.push(id);
        }
    }
    Ok(out)
}

/// The reset types a resource lists for `action` (`#ComputerSystem.Reset`).
fn allowed(
    data: &Map<String, Value>,
    action: &str,
    path: &str,
) -> Result<Vec<String>, LegacyError> {
    let p = format!("{path}.Actions");
    let Some(actions) = member(data, "Actions", path)? else {
        return Ok(Vec::new());
    };
    let Some(a) = member(actions, action, &p)? else {
        return Ok(Vec::new());
    };
    let p = format!("{p}.{action}");
    let mut out = Vec::new();
    for (i, v) in list(a, "ResetType@Redfish.AllowableValues", &p)?
        .iter()
        .enumerate()
    {
        match v.as_str() {
            Some(s) => out.push(s.to_string()),
            None => {
                return Err(err(
                    format!("{p}.ResetType@Redfish.AllowableValues[{i}]"),
                    "a string",
                ));
            }
        }
    }
    Ok(out)
}

/// A Redfish EthernetInterface as the discovery shape's interface.
fn ethernet(v: &Value, path: &str) -> Result<Value, LegacyError> {
    let o = object(v, path)?;
    let mac = match text(o, "MACAddress", path)? {
        Some(m) if !m.trim().is_empty() => Some(m),
        _ => text(o, "PermanentMACAddress", path)?,
    };
    let mut ip = None;
    for (i, a) in list(o, "IPv4Addresses", path)?.iter().enumerate() {
        let p = format!("{path}.IPv4Addresses[{i}]");
        if let Some(addr) = text(object(a, &p)?, "Address", &p)? {
            ip = Some(addr);
            break;
        }
    }
    let enabled = match o.get("InterfaceEnabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(err(format!("{path}.InterfaceEnabled"), "a boolean")),
    };
    let mut e = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            e.insert(k.to_string(), v);
        }
    };
    put("uri", text(o, "@odata.id", path)?.map(Value::from));
    put("mac", mac.map(Value::from));
    put("ip", ip.map(Value::from));
    put(
        "name",
        text(o, "Id", path)?
            .or(text(o, "Name", path)?)
            .map(Value::from),
    );
    put(
        "description",
        text(o, "Description", path)?.map(Value::from),
    );
    put("enabled", enabled.map(Value::from));
    Ok(Value::Object(e))
}

fn ethernets(o: &Map<String, Value>, path: &str) -> Result<Vec<Value>, LegacyError> {
    list(o, "EthernetInterfaces", path)?
        .iter()
        .enumerate()
        .map(|(i, n)| ethernet(n, &format!("{path}.EthernetInterfaces[{i}]")))
        .collect()
}

/// `{"Data": <ComputerSystem>, "EthernetInterfaces": [...]}` as a discovery system.
fn system(v: &Value, path: &str) -> Result<Value, LegacyError> {
    let outer = object(v, path)?;
    let dp = format!("{path}.Data");
    let data = object(&outer["Data"], &dp)?;
    let status = member(data, "Status", &dp)?;
    let health = match status {
        Some(s) => text(s, "Health", &format!("{dp}.Status"))?,
        None => None,
    };
    let (processor_count, processor_type) = match member(data, "ProcessorSummary", &dp)? {
        Some(p) => (
            p.get("Count").filter(|c| c.is_number()).cloned(),
            text(p, "Model", &format!("{dp}.ProcessorSummary"))?,
        ),
        None => (None, None),
    };
    let memory_total = member(data, "MemorySummary", &dp)?
        .and_then(|m| m.get("TotalSystemMemoryGiB"))
        .filter(|c| c.is_number())
        .cloned();
    let (chassis, managers) = match member(data, "Links", &dp)? {
        Some(l) => {
            let lp = format!("{dp}.Links");
            (links(l, "Chassis", &lp)?, links(l, "ManagedBy", &lp)?)
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut s = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            s.insert(k.to_string(), v);
        }
    };
    put("uri", text(data, "@odata.id", &dp)?.map(Value::from));
    put("uuid", text(data, "UUID", &dp)?.map(Value::from));
    put(
        "manufacturer",
        text(data, "Manufacturer", &dp)?.map(Value::from),
    );
    put(
        "system_type",
        text(data, "SystemType", &dp)?.map(Value::from),
    );
    put(
        "name",
        text(data, "Name", &dp)?
            .or(text(data, "Id", &dp)?)
            .map(Value::from),
    );
    put("model", text(data, "Model", &dp)?.map(Value::from));
    put("serial", text(data, "SerialNumber", &dp)?.map(Value::from));
    put(
        "bios_version",
        text(data, "BiosVersion", &dp)?.map(Value::from),
    );
    put("health", health.map(Value::from));
    put("processor_count", processor_count);
    put("processor_type", processor_type.map(Value::from));
    put("memory_total", memory_total);
    put(
        "power",
        text(data, "PowerState", &dp)?.map(|p| json!({"state": p})),
    );
    put(
        "actions",
        Some(json!(allowed(data, "#ComputerSystem.Reset", &dp)?)),
    );
    put(
        "links",
        Some(json!({"chassis": chassis, "managers": managers})),
    );
    put("ethernet_interfaces", Some(json!(ethernets(outer, path)?)));
    Ok(Value::Object(s))
}

/// `{"Data": <Manager>, "EthernetInterfaces": [...]}` as a discovery manager.
fn manager(v: &Value, path: &str) -> Result<Value, LegacyError> {
    let outer = object(v, path)?;
    let dp = format!("{path}.Data");
    let data = object(&outer["Data"], &dp)?;
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("uri", text(data, "@odata.id", &dp)?.map(Value::from));
    put("uuid", text(data, "UUID", &dp)?.map(Value::from));
    put(
        "name",
        text(data, "Name", &dp)?
            .or(text(data, "Id", &dp)?)
            .map(Value::from),
    );
    put(
        "description",
        text(data, "Description", &dp)?.map(Value::from),
    );
    put("model", text(data, "Model", &dp)?.map(Value::from));
    put("type", text(data, "ManagerType", &dp)?.map(Value::from));
    put(
        "firmware_version",
        text(data, "FirmwareVersion", &dp)?.map(Value::from),
    );
    put(
        "actions",
        Some(json!(allowed(data, "#Manager.Reset", &dp)?)),
    );
    put("ethernet_interfaces", Some(json!(ethernets(outer, path)?)));
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_legacy_system_keeps_its_uri_actions_and_nics() {
        let mut doc = json!({"ID": "x0c0s1b0", "Systems": [{
            "Data": {"@odata.id": "/redfish/v1/Systems/Node0", "Id": "Node0", "UUID": "u-1",
                     "SystemType": "Physical", "PowerState": "On", "Status": {"State": "Enabled", "Health": "OK"},
                     "Actions": {"#ComputerSystem.Reset": {"target": "/redfish/v1/Systems/Node0/Actions/ComputerSystem.Reset",
                                 "ResetType@Redfish.AllowableValues": ["On", "ForceOff"]}},
                     "Links": {"Chassis": [{"@odata.id": "/redfish/v1/Chassis/Enclosure"}]}},
            "EthernetInterfaces": [{"@odata.id": "/redfish/v1/Systems/Node0/EthernetInterfaces/eth0",
                                    "Id": "eth0", "Description": "Mgmt", "InterfaceEnabled": true,
                                    "MACAddress": "02:0B:B8:00:30:00",
                                    "IPv4Addresses": [{"Address": "10.1.0.5"}]}]}]});
        assert!(is_legacy_payload(&doc));
        upgrade(&mut doc, "").unwrap();
        assert!(!is_legacy_payload(&doc));
        let s = &doc["Systems"][0];
        assert_eq!(s["uri"], "/redfish/v1/Systems/Node0");
        assert_eq!(s["actions"], json!(["On", "ForceOff"]));
        assert_eq!(s["power"]["state"], "On");
        assert_eq!(
            s["links"]["chassis"],
            json!(["/redfish/v1/Chassis/Enclosure"])
        );
        assert_eq!(
            s["ethernet_interfaces"][0],
            json!({"uri": "/redfish/v1/Systems/Node0/EthernetInterfaces/eth0", "mac": "02:0B:B8:00:30:00",
                   "ip": "10.1.0.5", "name": "eth0", "description": "Mgmt", "enabled": true})
        );
        let sys: crate::discovery::System = serde_json::from_value(s.clone()).unwrap();
        assert_eq!(sys.ethernet_interfaces.len(), 1);
    }

    #[test]
    fn wrong_types_name_their_path() {
        for (doc, path) in [
            (json!({"Systems": [{"Data": 5}]}), "Systems[0].Data"),
            (
                json!({"Systems": [{"Data": {"SystemType": 7}}]}),
                "Systems[0].Data.SystemType",
            ),
            (
                json!({"Systems": [{"Data": {}, "EthernetInterfaces": {}}]}),
                "Systems[0].EthernetInterfaces",
            ),
            (
                json!({"Systems": [{"Data": {}, "EthernetInterfaces": [{"InterfaceEnabled": "yes"}]}]}),
                "Systems[0].EthernetInterfaces[0].InterfaceEnabled",
            ),
        ] {
            let mut d = doc;
            assert_eq!(upgrade(&mut d, "").unwrap_err().path, path);
        }
        let mut d = json!({"Systems": [{"Data": {}}]});
        assert_eq!(upgrade(&mut d, "RedfishEndpoints[1]").map(|_| ()), Ok(()));
        let mut d = json!({"Systems": [{"Data": []}]});
        assert_eq!(
            upgrade(&mut d, "RedfishEndpoints[1]").unwrap_err().path,
            "RedfishEndpoints[1].Systems[0].Data"
        );
    }

    #[test]
    fn the_discovery_shape_is_left_alone() {
        let doc = json!({"SchemaVersion": 1, "Systems": [{"uri": "/redfish/v1/Systems/1"}]});
        let mut d = doc.clone();
        upgrade(&mut d, "").unwrap();
        assert_eq!(d, doc);
    }
}
