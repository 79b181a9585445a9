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
            "Processors": link("/redfish/v1/Systems/Node0/Processors"),
            "Memory": link("/redfish/v1/Systems/Node0/Memory"),
            "Storage": link("/redfish/v1/Systems/Node0/Storage"),
            "Links": {"ManagedBy": [link("/redfish/v1/Managers/BMC")]},
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/Node0/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"],
            }},
        }),
    );
    // What the node is made of: two CPUs, four DIMMs, one NVMe drive (hardware inventory).
    let sys = "/redfish/v1/Systems/Node0";
    let cpus: Vec<String> = (0..2).map(|i| format!("{sys}/Processors/CPU{i}")).collect();
    let dimms: Vec<String> = (0..4).map(|i| format!("{sys}/Memory/DIMM{i}")).collect();
    let cpu_refs: Vec<&str> = cpus.iter().map(String::as_str).collect();
    let dimm_refs: Vec<&str> = dimms.iter().map(String::as_str).collect();
    put(
        &format!("{sys}/Processors"),
        collection(&format!("{sys}/Processors"), "Processor", &cpu_refs),
    );
    for (i, p) in cpus.iter().enumerate() {
        put(
            p,
            json!({
                "@odata.id": p, "@odata.type": "#Processor.v1_18_0.Processor",
                "Id": format!("CPU{i}"), "Name": "Processor", "Socket": format!("CPU {i}"),
                "ProcessorType": "CPU", "ProcessorArchitecture": "x86", "InstructionSet": "x86-64",
                "Manufacturer": "Demo Semiconductor", "Model": "Demo CPU", "TotalCores": 32,
                "TotalThreads": 64, "MaxSpeedMHz": 3500,
                "SerialNumber": format!("{serial}-CPU{i}"), "PartNumber": "DC-9000",
                "Status": {"State": "Enabled", "Health": "OK"},
            }),
        );
    }
    put(
        &format!("{sys}/Memory"),
        collection(&format!("{sys}/Memory"), "Memory", &dimm_refs),
    );
    for (i, m) in dimms.iter().enumerate() {
        put(
            m,
            json!({
                "@odata.id": m, "@odata.type": "#Memory.v1_17_0.Memory",
                "Id": format!("DIMM{i}"), "Name": format!("DIMM {i}"), "DeviceLocator": format!("DIMM {i}"),
                "CapacityMiB": 65536, "MemoryType": "DRAM", "MemoryDeviceType": "DDR5",
                "BaseModuleType": "RDIMM", "OperatingSpeedMhz": 4800, "Manufacturer": "Demo Memory",
                "SerialNumber": format!("{serial}-D{i}"), "PartNumber": "DM-64G",
                "Status": {"State": "Enabled", "Health": "OK"},
            }),
        );
    }
    let storage = format!("{sys}/Storage/NVMe");
    let drive = format!("{sys}/Storage/NVMe/Drives/0");
    put(
        &format!("{sys}/Storage"),
        collection(&format!("{sys}/Storage"), "Storage", &[storage.as_str()]),
    );
    put(
        &storage,
        json!({"@odata.id": storage, "@odata.type": "#Storage.v1_15_0.Storage",
        "Id": "NVMe", "Drives": [link(&drive)]}),
    );
    put(
        &drive,
        json!({
            "@odata.id": drive, "@odata.type": "#Drive.v1_17_0.Drive", "Id": "0", "Name": "NVMe 0",
            "Manufacturer": "Demo Storage", "Model": "Demo NVMe 1.92TB", "CapacityBytes": 1_920_383_410_176_u64,
            "Protocol": "NVMe", "MediaType": "SSD", "SerialNumber": format!("{serial}-NVME0"),
            "Status": {"State": "Enabled", "Health": "OK"},
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
