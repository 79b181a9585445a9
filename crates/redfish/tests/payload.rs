//! The discovery payload byte for byte: a crawled inventory (`tests/golden/inventory-*.json`,
//! what `--output json` prints for an HPE iLO and for an OpenBMC whose host is off) must build
//! the SchemaVersion 1 document in `tests/golden/payload-*.json`, the JSON the edge agent POSTs
//! to the inventory. The files were written by the payload code as it stood before its types
//! moved to `skyport-wire`, so a change of key, order or omission fails here first; and the
//! inventory must read the document back to the very systems and managers that were built.
//!
//! The iLO fixture emulates what the crawl and the HPE quirks leave: a host-interface NIC, an
//! auxiliary controller, a MAC seen on both the manager and the system, a NIC known only by its
//! permanent MAC, one without any MAC, and a system whose chassis link leads nowhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use skyport_redfish::model::BmcInventory;
use skyport_redfish::payload::{EndpointPayload, Identity, build};
use skyport_wire::RedfishEndpointIn;

fn golden_dir() -> String {
    format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"))
}

fn inventory(name: &str) -> BmcInventory {
    let text = std::fs::read_to_string(format!("{}/{name}", golden_dir())).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn who(xname: &str, fqdn: &str) -> Identity {
    Identity {
        xname: xname.into(),
        fqdn: fqdn.into(),
        user: "root".into(),
    }
}

fn check(inventory_file: &str, payload_file: &str, id: &Identity) -> EndpointPayload {
    let p = build(&inventory(inventory_file), id);
    let got = serde_json::to_string_pretty(&p).unwrap();
    let want = std::fs::read_to_string(format!("{}/{payload_file}", golden_dir())).unwrap();
    assert_eq!(
        got,
        want.trim_end(),
        "{payload_file}: the payload differs from the golden file"
    );
    // The edge agent's outbox stores payloads as JSON and sends them later.
    let back: EndpointPayload = serde_json::from_str(&got).unwrap();
    assert_eq!(
        back, p,
        "{payload_file}: does not read back to the same payload"
    );
    // The inventory reads the same document, through its lenient input type, as what was built.
    let read: RedfishEndpointIn = serde_json::from_str(&got).unwrap();
    assert_eq!(read.id.as_deref(), Some(p.id.as_str()));
    assert_eq!(read.fqdn.as_deref(), Some(p.fqdn.as_str()));
    assert_eq!(read.mac_addr, p.mac_addr);
    assert_eq!(read.schema_version, Some(f64::from(p.schema_version)));
    assert_eq!(read.systems, p.systems, "{payload_file}: systems");
    assert_eq!(read.managers, p.managers, "{payload_file}: managers");
    p
}

#[test]
fn ilo_payload_is_unchanged() {
    let p = check(
        "inventory-ilo.json",
        "payload-ilo.json",
        &who("x3000c0s1b0", "10.254.1.15:8443"),
    );
    assert_eq!(p.managers.len(), 1, "the auxiliary controller is left out");
}

#[test]
fn openbmc_powered_off_payload_is_unchanged() {
    check(
        "inventory-openbmc-off.json",
        "payload-openbmc-off.json",
        &who("x3000c0s2b0", "10.0.2.15"),
    );
}
