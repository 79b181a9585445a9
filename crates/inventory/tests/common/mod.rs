//! Test harness for the inventory API: drives the real Router in-process (no mock of anything
//! below it) on a real store, and checks every answer against the upstream SMD spec.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::Value;
use skyport_inventory::Inventory;
use skyport_store::Store;
use skyport_testkit::spec::Spec;

pub use skyport_testkit::app::{Api, Resp};

/// The inventory app on `store`, checked against the upstream SMD spec.
pub fn api(store: Arc<dyn Store>) -> Api {
    let spec = Spec::openchami("OpenCHAMI-smd_api_swagger_v2.yaml")
        .expect("SMD spec in ../shared")
        // cmd/smd/response.go sendJsonError writes `"code":0` (an integer).
        .deviation("Response_1.0.0", "code")
        // service/values lists hms-base's vocabularies, which are wider than the spec's
        // enums (Arch UNKNOWN, Flag Unknown, types such as NodeHsnNic).
        .deviation("Values.1.0.0_Values", "*")
        // SMD sends `"RedfishSubtype":""` when the BMC reports no type (no `omitempty`), which
        // the spec's enum does not list.
        .deviation(
            "ComponentEndpoint.1.0.0_ComponentEndpoint",
            "RedfishSubtype",
        );
    let spec = [
        "Arch", "Class", "Flag", "NetType", "Role", "SubRole", "State", "Type",
    ]
    .iter()
    .fold(spec, |s, k| {
        s.deviation(&format!("Values.1.0.0_{k}Array"), "*")
    });
    Api::new(
        skyport_http::app(skyport_inventory::router(Inventory::new(store))),
        spec,
    )
}

pub fn store_sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap())
}

pub async fn store_dynamo(endpoint: &str, table: &str) -> Arc<dyn Store> {
    let client = skyport_testkit::dynamo_client(endpoint, None).await;
    let s = skyport_store_dynamo::DynamoStore::new(client, table);
    s.ensure_table().await.unwrap();
    Arc::new(s)
}

/// A discovery payload in Magellan's `SchemaVersion: 1` shape (pkg/collect.go), for one BMC
/// with one manager NIC and two systems (one listed twice, as BMCs do under Chassis and Systems).
pub fn magellan_payload(bmc: &str, ip: &str, mac_base: u8) -> Value {
    serde_json::json!({
        "ID": bmc, "Type": "", "Name": "", "FQDN": ip, "User": "root", "Password": "hunter2",
        "MACRequired": true, "RediscoverOnUpdate": false, "SchemaVersion": 1,
        "MACAddr": format!("02:00:00:00:{mac_base:02x}:01"),
        "Managers": [{
            "uri": format!("https://{ip}/redfish/v1/Managers/BMC"), "uuid": "mgr-uuid",
            "name": "Manager", "description": "BMC", "model": "OpenBmc", "type": "BMC",
            "firmware_version": "2.14.0",
            "ethernet_interfaces": [
                {"uri": format!("https://{ip}/redfish/v1/Managers/BMC/EthernetInterfaces/eth0"),
                 "mac": format!("02:00:00:00:{mac_base:02x}:01"), "ip": ip, "name": "eth0",
                 "description": "Management Network Interface", "enabled": true},
                {"mac": "Not Available", "ip": "0.0.0.0", "name": "usb0"}
            ],
            "actions": ["ForceRestart", "GracefulRestart"], "command_shell": ["SSH"]
        }],
        "Systems": [
            {"uri": format!("https://{ip}/redfish/v1/Systems/system"),
             "uuid": format!("5b1e2c4a-0000-0000-0000-0000000000{mac_base:02x}"),
             "manufacturer": "Contoso", "system_type": "Physical", "name": "system", "model": "3500",
             "serial": "437XR1138R2", "bios_version": "P79 v1.45",
             "ethernet_interfaces": [
                {"uri": format!("https://{ip}/redfish/v1/Systems/system/EthernetInterfaces/1"),
                 "mac": format!("02:00:00:00:{mac_base:02x}:10"), "ip": "", "name": "NIC 1", "enabled": true},
                {"uri": format!("https://{ip}/redfish/v1/Systems/system/EthernetInterfaces/2"),
                 "mac": format!("02:00:00:00:{mac_base:02x}:11"), "ip": "N/A", "name": "NIC 2", "enabled": false}
             ],
             "power": {"state": "On", "power_control_ids": ["/redfish/v1/Chassis/1U/Power#/PowerControl/0"]},
             "processor_count": 2, "processor_type": "x86", "memory_total": 96,
             "actions": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"],
             "links": {"chassis": ["/redfish/v1/Chassis/1U"], "managers": ["/redfish/v1/Managers/BMC"]}},
            {"uri": format!("https://{ip}/redfish/v1/Chassis/1U/system"),
             "uuid": format!("5B1E2C4A-0000-0000-0000-0000000000{mac_base:02X}")},
            {"uri": format!("https://{ip}/redfish/v1/Systems/second"), "uuid": "",
             "ethernet_interfaces": [{"mac": format!("02:00:00:00:{mac_base:02x}:20")}]}
        ]
    })
}
