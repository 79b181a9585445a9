//! Redfish trees the project generates itself, for the demo fleet (`skyport up --demo`): a
//! BMC with one manager NIC (the address it is served on) managing one compute node with one
//! NIC, in the layout real BMCs use (ServiceRoot → Managers/Systems/Chassis, each with its
//! EthernetInterfaces collection). Nothing here is copied from a vendor mockup.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use crate::tree::Tree;

fn link(path: &str) -> Value {
    json!({ "@odata.id": path })
}

fn collection(path: &str, kind: &str, members: &[&str]) -> Value {
    json!({
        "@odata.id": path,
        "@odata.type": format!("#{kind}Collection.{kind}Collection"),
        "Name": format!("{kind} Collection"),
        "Members@odata.count": members.len(),
        "Members": members.iter().map(|m| link(m)).collect::<Vec<_>>(),
    })
}

/// The MACs BMC `index` reports: its own NIC and its node's.
pub fn macs(index: u32) -> (String, String) {
    let b = index.to_be_bytes();
    (
        format!("02:5b:{:02x}:{:02x}:{:02x}:00", b[1], b[2], b[3]),
        format!("02:5b:{:02x}:{:02x}:{:02x}:01", b[1], b[2], b[3]),
    )
}

/// A demo BMC served at `ip`, number `index` of its fleet.
pub fn tree(ip: IpAddr, index: u32) -> Tree {
    let (bmc_mac, node_mac) = macs(index);
    let serial = format!("SKY{index:06}");
    let mut r: HashMap<String, Value> = HashMap::new();
    let mut put = |path: &str, v: Value| {
        r.insert(path.to_string(), v);
    };
    put(
        "/redfish/v1",
        json!({
            "@odata.id": "/redfish/v1",
            "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
            "Id": "RootService",
            "Name": "Skyport demo BMC",
            "RedfishVersion": "1.15.0",
            "UUID": format!("00000000-0000-4000-8000-{index:012x}"),
            "Vendor": "Skyport",
            "Systems": link("/redfish/v1/Systems"),
            "Managers": link("/redfish/v1/Managers"),
            "Chassis": link("/redfish/v1/Chassis"),
        }),
    );
    put(
        "/redfish/v1/Managers",
        collection(
            "/redfish/v1/Managers",
            "Manager",
            &["/redfish/v1/Managers/BMC"],
        ),
    );
    put(
        "/redfish/v1/Managers/BMC",
        json!({
            "@odata.id": "/redfish/v1/Managers/BMC",
            "@odata.type": "#Manager.v1_17_0.Manager",
            "Id": "BMC",
            "Name": "Demo BMC",
            "ManagerType": "BMC",
            "FirmwareVersion": "1.0.0",
            "Status": {"State": "Enabled", "Health": "OK"},
            "EthernetInterfaces": link("/redfish/v1/Managers/BMC/EthernetInterfaces"),
        }),
    );
    put(
        "/redfish/v1/Managers/BMC/EthernetInterfaces",
        collection(
            "/redfish/v1/Managers/BMC/EthernetInterfaces",
            "EthernetInterface",
            &["/redfish/v1/Managers/BMC/EthernetInterfaces/eth0"],
        ),
    );
    put(
        "/redfish/v1/Managers/BMC/EthernetInterfaces/eth0",
        json!({
            "@odata.id": "/redfish/v1/Managers/BMC/EthernetInterfaces/eth0",
            "@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface",
            "Id": "eth0",
            "Name": "Manager Ethernet Interface",
            "MACAddress": bmc_mac,
            "PermanentMACAddress": bmc_mac,
            "InterfaceEnabled": true,
            "IPv4Addresses": [{"Address": ip.to_string(), "AddressOrigin": "Static", "SubnetMask": "255.255.255.0"}],
        }),
    );
    put(
        "/redfish/v1/Systems",
        collection(
            "/redfish/v1/Systems",
            "ComputerSystem",
            &["/redfish/v1/Systems/Node0"],
        ),
    );
    put(
        "/redfish/v1/Systems/Node0",
        json!({
            "@odata.id": "/redfish/v1/Systems/Node0",
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "Id": "Node0",
            "Name": "Demo compute node",
            "SystemType": "Physical",
            "Manufacturer": "Skyport",
            "Model": "Demo Node",
            "SerialNumber": serial,
            "UUID": format!("00000000-0000-4000-9000-{index:012x}"),
            "PowerState": "On",
            "Status": {"State": "Enabled", "Health": "OK"},
            "ProcessorSummary": {"Count": 2, "Model": "Demo CPU"},
            "MemorySummary": {"TotalSystemMemoryGiB": 256},
            "EthernetInterfaces": link("/redfish/v1/Systems/Node0/EthernetInterfaces"),
            "Links": {"ManagedBy": [link("/redfish/v1/Managers/BMC")]},
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/Node0/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"],
            }},
        }),
    );
    put(
        "/redfish/v1/Systems/Node0/EthernetInterfaces",
        collection(
            "/redfish/v1/Systems/Node0/EthernetInterfaces",
            "EthernetInterface",
            &["/redfish/v1/Systems/Node0/EthernetInterfaces/nic0"],
        ),
    );
    put(
        "/redfish/v1/Systems/Node0/EthernetInterfaces/nic0",
        json!({
            "@odata.id": "/redfish/v1/Systems/Node0/EthernetInterfaces/nic0",
            "@odata.type": "#EthernetInterface.v1_9_0.EthernetInterface",
            "Id": "nic0",
            "Name": "Node NIC 0",
            "MACAddress": node_mac,
            "PermanentMACAddress": node_mac,
            "InterfaceEnabled": true,
        }),
    );
    put(
        "/redfish/v1/Chassis",
        collection(
            "/redfish/v1/Chassis",
            "Chassis",
            &["/redfish/v1/Chassis/Enclosure"],
        ),
    );
    put(
        "/redfish/v1/Chassis/Enclosure",
        json!({
            "@odata.id": "/redfish/v1/Chassis/Enclosure",
            "@odata.type": "#Chassis.v1_23_0.Chassis",
            "Id": "Enclosure",
            "Name": "Demo enclosure",
            "ChassisType": "RackMount",
            "SerialNumber": serial,
            "Links": {
                "ComputerSystems": [link("/redfish/v1/Systems/Node0")],
                "ManagedBy": [link("/redfish/v1/Managers/BMC")],
            },
        }),
    );
    Tree {
        name: format!("skyport-demo-{index}"),
        resources: r,
    }
}
