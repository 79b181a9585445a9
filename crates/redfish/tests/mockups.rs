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

    let nics = |got: &[Nic], e: &Value, ctx: &str| {
        let want = expected_nics(&e["EthernetInterfaces"], from, served);
        assert_eq!(actual_nics(got), want, "{ctx} NICs");
    };
    let managers = matched(name, "managers", &exp["Managers"], &inv.managers, |m| {
        &m.path
    });
    for (e, m, ctx) in managers {
        let got = json!({"ManagerType": m.manager_type, "Model": m.model,
                         "FirmwareVersion": m.firmware_version, "UUID": m.uuid});
        assert_eq!(got, expected(e, &got), "{ctx}");
        nics(&m.ethernet_interfaces, e, &ctx);
    }

    for (e, x, ctx) in matched(name, "systems", &exp["Systems"], &inv.systems, |x| &x.path) {
        let got = json!({"Id": x.id, "UUID": x.uuid, "Manufacturer": x.manufacturer, "Model": x.model,
                         "SerialNumber": x.serial, "SystemType": x.system_type,
                         "PowerState": x.power_state, "BiosVersion": x.bios_version,
                         "ProcessorSummary.Model": x.processor_model});
        assert_eq!(got, expected(e, &got), "{ctx}");
        assert_eq!(
            x.processor_count,
            e["ProcessorSummary.Count"].as_u64(),
            "{ctx}"
        );
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
        nics(&x.ethernet_interfaces, e, &ctx);
    }

    for (e, c, ctx) in matched(name, "chassis", &exp["Chassis"], &inv.chassis, |c| &c.path) {
        let got = json!({"ChassisType": c.chassis_type, "Manufacturer": c.manufacturer, "Model": c.model,
                         "SerialNumber": c.serial, "PowerState": c.power_state});
        assert_eq!(got, expected(e, &got), "{ctx}");
        assert_eq!(c.computer_systems, strs(&e["ComputerSystems"]), "{ctx}");
    }
}

/// The string fields of the expected document `e` that `got` holds (under the same names), each
/// read as [`s`] reads it.
fn expected(e: &Value, got: &Value) -> Value {
    let keys = got.as_object().unwrap().keys();
    Value::Object(keys.map(|k| (k.clone(), json!(s(&e[k])))).collect())
}

/// Pairs each resource of the expected list `want` with the crawled one at the same path
/// (`path` of it), after checking that `name`'s crawl found as many `kind` as expected; the
/// third of each pair is the context for assertion messages.
fn matched<'a, T>(
    name: &str,
    kind: &str,
    want: &'a Value,
    got: &'a [T],
    path: impl Fn(&T) -> &str,
) -> Vec<(&'a Value, &'a T, String)> {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{name}: {kind}");
    let pair = |e: &'a Value| {
        let at = e["path"].as_str().unwrap();
        let found = got.iter().find(|g| path(g) == at);
        let found = found.unwrap_or_else(|| panic!("{name}: {kind} {at} missing"));
        (e, found, format!("{name} {at}"))
    };
    want.iter().map(pair).collect()
}

/// The services SMD lists as ServiceEndpoints: each one the mockup's service root links, in
/// SMD's order, with the fields of its document SMD keeps (and none it drops, such as `Oem`).
fn services(name: &str, inv: &BmcInventory) {
    let dir = shared_mockups().join(name);
    let read = |p: &str| -> Option<Value> {
        let rel = p.trim_start_matches("/redfish/v1").trim_matches('/');
        let text = std::fs::read_to_string(dir.join(rel).join("index.json")).ok()?;
        serde_json::from_str(&text).ok()
    };
    let root = read("/redfish/v1").unwrap();
    let want: Vec<(&str, String)> = [
        ("AccountService", "AccountService"),
        ("SessionService", "SessionService"),
        ("EventService", "EventService"),
        ("Tasks", "TaskService"),
        ("UpdateService", "UpdateService"),
    ]
    .iter()
    .filter_map(|(p, t)| Some((*t, root[p]["@odata.id"].as_str()?.to_string())))
    .collect();
    let got: Vec<(&str, String)> = inv
        .services
        .iter()
        .map(|s| (s.redfish_type.as_str(), s.odata_id.clone()))
        .collect();
    assert_eq!(got, want, "{name}: services");
    assert!(
        !got.is_empty(),
        "{name}: a mockup without services tests nothing"
    );
    for s in &inv.services {
        let Some(doc) = read(&s.odata_id) else {
            assert_eq!(
                s.service_info, None,
                "{name}: {} has no document",
                s.redfish_type
            );
            continue;
        };
        let info = s
            .service_info
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {} was not read", s.redfish_type));
        for k in ["@odata.id", "Id", "Name", "ServiceEnabled"] {
            assert_eq!(info.get(k), doc.get(k), "{name}: {} {k}", s.redfish_type);
        }
        assert!(
            info.get("Oem").is_none(),
            "{name}: {} keeps Oem",
            s.redfish_type
        );
        let kept = info.as_object().unwrap().len();
        assert!(
            kept > 2 && kept <= doc.as_object().unwrap().len(),
            "{name}: {info}"
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
        services(name, &inv);
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
