//! Every vendor tree in `../shared/redfish-mockups`, served over HTTPS by the mock fleet, crawls
//! to the values recorded in `INVENTORY_SUMMARY.json` (cleaned the way the crawler cleans:
//! placeholders are missing, MACs and IPs parsed), with Basic auth and with sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::{Value, json};
use skyport_mockbmc::{BmcSpec, Fleet, FleetOptions, Tree, self_signed, shared_mockups};
use skyport_model::Mac;
use skyport_redfish::model::{BmcInventory, Nic};
use skyport_redfish::res::{clean, ipv4};
use skyport_redfish::{
    AuthMode, BmcClient, CrawlOptions, Credentials, Limits, PinStore, TlsPolicy, crawl,
};

/// Per tree: the IP its BMC NIC reports (replaced by the address the mock serves on) and the
/// BMC MAC the crawl must pick.
const TREES: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "dmtf-public-rackmount1",
        Some("192.168.0.10"),
        Some("23:11:8a:33:cf:ea"),
    ),
    ("hpe-cray-cmm", None, None),
    ("hpe-cray-ex235a", None, None),
    (
        "hpe-proliant-dl325-gen10plus",
        Some("10.254.1.15"),
        Some("94:40:c9:37:d3:fc"),
    ),
    (
        "openbmc-bmcweb-stock",
        Some("10.0.2.15"),
        Some("ae:0d:e8:39:69:bb"),
    ),
];

fn summary() -> Value {
    let p = shared_mockups().join("INVENTORY_SUMMARY.json");
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(x) => clean(x),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn mac(v: &Value) -> Option<String> {
    v.as_str()
        .and_then(|m| Mac::parse(m).ok())
        .map(|m| m.to_string())
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(s).collect())
        .unwrap_or_default()
}

/// The expected NICs, with the BMC IP as the mock rewrites it.
fn expected_nics(v: &Value, from: Option<&str>, to: &str) -> Vec<Value> {
    let mut out: Vec<Value> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let ips: Vec<String> = n["IPv4"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|ip| ip.as_str())
                .map(|ip| {
                    if Some(ip) == from {
                        to.to_string()
                    } else {
                        ip.to_string()
                    }
                })
                .filter(|ip| ipv4(ip).is_some())
                .collect();
            json!({"path": n["path"], "id": s(&n["Id"]), "mac": mac(&n["MACAddress"]),
                   "permanent": mac(&n["PermanentMACAddress"]), "ipv4": ips,
                   "enabled": n["InterfaceEnabled"], "state": s(&n["State"])})
        })
        .collect();
    out.sort_by_key(|n| n["path"].as_str().unwrap_or("").to_string());
    out
}

fn actual_nics(nics: &[Nic]) -> Vec<Value> {
    let mut out: Vec<Value> = nics
        .iter()
        .map(|n| {
            json!({"path": n.path, "id": n.id, "mac": n.mac.map(|m| m.to_string()),
                   "permanent": n.permanent_mac.map(|m| m.to_string()),
                   "ipv4": n.ipv4.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                   "enabled": n.enabled, "state": n.state})
        })
        .collect();
    out.sort_by_key(|n| n["path"].as_str().unwrap_or("").to_string());
    out
}

fn check(name: &str, exp: &Value, inv: &BmcInventory, from: Option<&str>, served: &str) {
    let sr = &exp["ServiceRoot"];
    assert_eq!(
        inv.service_root.redfish_version,
        s(&sr["RedfishVersion"]),
        "{name}"
    );
    assert_eq!(inv.service_root.uuid, s(&sr["UUID"]), "{name}");
    assert_eq!(inv.service_root.vendor, s(&sr["Vendor"]), "{name}");
    assert_eq!(inv.service_root.product, s(&sr["Product"]), "{name}");
    assert_eq!(
        inv.service_root.session_service,
        s(&sr["SessionService"]),
        "{name}"
    );

    let em = exp["Managers"].as_array().unwrap();
    assert_eq!(inv.managers.len(), em.len(), "{name}: managers");
    for e in em {
        let path = e["path"].as_str().unwrap();
        let m = inv
            .managers
            .iter()
            .find(|m| m.path == path)
            .unwrap_or_else(|| panic!("{name}: manager {path} missing"));
        assert_eq!(m.manager_type, s(&e["ManagerType"]), "{name} {path}");
        assert_eq!(m.model, s(&e["Model"]), "{name} {path}");
        assert_eq!(
            m.firmware_version,
            s(&e["FirmwareVersion"]),
            "{name} {path}"
        );
        assert_eq!(m.uuid, s(&e["UUID"]), "{name} {path}");
        assert_eq!(
            actual_nics(&m.ethernet_interfaces),
            expected_nics(&e["EthernetInterfaces"], from, served),
            "{name} {path} NICs"
        );
    }

    let es = exp["Systems"].as_array().unwrap();
    assert_eq!(inv.systems.len(), es.len(), "{name}: systems");
    for e in es {
        let path = e["path"].as_str().unwrap();
        let x = inv
            .systems
            .iter()
            .find(|x| x.path == path)
            .unwrap_or_else(|| panic!("{name}: system {path} missing"));
        let ctx = format!("{name} {path}");
        assert_eq!(x.id, s(&e["Id"]), "{ctx}");
        assert_eq!(x.uuid, s(&e["UUID"]), "{ctx}");
        assert_eq!(x.manufacturer, s(&e["Manufacturer"]), "{ctx}");
        assert_eq!(x.model, s(&e["Model"]), "{ctx}");
        assert_eq!(x.serial, s(&e["SerialNumber"]), "{ctx}");
        assert_eq!(x.system_type, s(&e["SystemType"]), "{ctx}");
        assert_eq!(x.power_state, s(&e["PowerState"]), "{ctx}");
        assert_eq!(x.bios_version, s(&e["BiosVersion"]), "{ctx}");
        assert_eq!(
            x.processor_count,
            e["ProcessorSummary.Count"].as_u64(),
            "{ctx}"
        );
        assert_eq!(x.processor_model, s(&e["ProcessorSummary.Model"]), "{ctx}");
        assert_eq!(
            x.memory_gib,
            e["MemorySummary.TotalSystemMemoryGiB"].as_f64(),
            "{ctx}"
        );
        assert_eq!(x.serial_console, e["SerialConsole"] == json!(true), "{ctx}");
        if !e["ResetTypes"].is_null() {
            assert_eq!(x.reset_types, strs(&e["ResetTypes"]), "{ctx}");
        }
        assert_eq!(x.managed_by, strs(&e["ManagedBy"]), "{ctx}");
        assert_eq!(x.chassis, strs(&e["Chassis"]), "{ctx}");
        assert_eq!(
            actual_nics(&x.ethernet_interfaces),
            expected_nics(&e["EthernetInterfaces"], from, served),
            "{ctx} NICs"
        );
    }

    let ec = exp["Chassis"].as_array().unwrap();
    assert_eq!(inv.chassis.len(), ec.len(), "{name}: chassis");
    for e in ec {
        let path = e["path"].as_str().unwrap();
        let c = inv
            .chassis
            .iter()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("{name}: chassis {path} missing"));
        assert_eq!(c.chassis_type, s(&e["ChassisType"]), "{name} {path}");
        assert_eq!(c.manufacturer, s(&e["Manufacturer"]), "{name} {path}");
        assert_eq!(c.model, s(&e["Model"]), "{name} {path}");
        assert_eq!(c.serial, s(&e["SerialNumber"]), "{name} {path}");
        assert_eq!(c.power_state, s(&e["PowerState"]), "{name} {path}");
        assert_eq!(
            c.computer_systems,
            strs(&e["ComputerSystems"]),
            "{name} {path}"
        );
    }
}

async fn crawl_all(mode: AuthMode) {
    let summary = summary();
    let ss = self_signed().unwrap();
    let mut specs = Vec::new();
    for (i, (name, from, _)) in TREES.iter().enumerate() {
        let tree = Arc::new(Tree::load(&shared_mockups().join(name)).unwrap());
        // Distinct loopback addresses, as distinct BMCs would have.
        let ip = Ipv4Addr::new(127, 0, 3, 10 + i as u8);
        let mut spec = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), 0), tree);
        spec.rewrite_ip = from.map(str::to_string);
        specs.push(spec);
    }
    let fleet = Fleet::start(
        specs,
        &FleetOptions {
            username: "admin".into(),
            password: "s3cret".into(),
            tls: Some(ss.config),
        },
    )
    .await
    .unwrap();
    let pins = Arc::new(PinStore::memory());
    for ((name, from, bmc_mac), bmc) in TREES.iter().zip(&fleet.bmcs) {
        let client = BmcClient::new(
            &format!("https://{}", bmc.addr),
            &TlsPolicy::Tofu(pins.clone()),
            Some(Credentials {
                username: "admin".into(),
                password: "s3cret".into(),
            }),
            mode,
            Limits::default(),
        )
        .unwrap();
        let inv = crawl(&client, None, Some(bmc.addr.ip()), &CrawlOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(
            name,
            &summary[*name],
            &inv,
            *from,
            &bmc.addr.ip().to_string(),
        );
        assert_eq!(
            inv.bmc_mac.map(|m| m.to_string()).as_deref(),
            *bmc_mac,
            "{name}: BMC MAC"
        );
        assert_eq!(bmc.active_sessions(), 0, "{name}: a session was left open");
        if mode == AuthMode::Session {
            assert_eq!(
                bmc.stats
                    .sessions_created
                    .load(std::sync::atomic::Ordering::Relaxed),
                1,
                "{name}"
            );
        }
        assert_eq!(
            bmc.stats
                .unauthorized
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{name}"
        );
    }
}

#[tokio::test]
async fn every_mockup_crawls_to_its_summary_with_basic_auth() {
    crawl_all(AuthMode::Basic).await;
}

#[tokio::test]
async fn every_mockup_crawls_to_its_summary_with_a_session_that_is_deleted() {
    crawl_all(AuthMode::Session).await;
}
