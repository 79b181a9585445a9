//! Golden files for the wire formats: each file under `tests/golden/` was written by hand from
//! upstream SMD's Go structs (key order, `omitempty`), and the types here must produce it byte
//! for byte and read it back unchanged. A change of shape fails here before it reaches a client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use skyport_wire::*;

fn golden<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: &T) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let want = std::fs::read_to_string(&path).unwrap();
    let got = serde_json::to_string(value).unwrap();
    assert_eq!(
        got,
        want.trim_end(),
        "{name}: serialised form differs from the golden file"
    );
    let back: T = serde_json::from_str(&want).unwrap();
    assert_eq!(
        &back, value,
        "{name}: golden file does not read back to the same value"
    );
}

/// The BMC of the golden component and endpoint files.
const BMC: &str = "x1000c1s7b0";

#[test]
fn component_node() {
    golden(
        "component-node.json",
        &Component {
            id: "x1000c1s7b0n1".into(),
            r#type: "Node".into(),
            state: "Ready".into(),
            flag: "OK".into(),
            enabled: Some(true),
            software_status: "AdminStatus".into(),
            role: "Compute".into(),
            sub_role: "Worker".into(),
            nid: Some(2),
            subtype: "River".into(),
            net_type: "Sling".into(),
            arch: "X86".into(),
            class: "River".into(),
            reservation_disabled: false,
            locked: false,
        },
    );
}

#[test]
fn component_bmc_omits_empty_fields() {
    golden(
        "component-bmc.json",
        &Component {
            id: BMC.into(),
            r#type: "NodeBMC".into(),
            state: "Ready".into(),
            flag: "OK".into(),
            enabled: Some(true),
            ..Default::default()
        },
    );
}

#[test]
fn redfish_endpoint_password_is_always_empty() {
    let ep = RedfishEndpoint {
        id: BMC.into(),
        r#type: "NodeBMC".into(),
        hostname: "172.16.0.101".into(),
        fqdn: "172.16.0.101".into(),
        enabled: true,
        uuid: "4a9b5b0c-5f5d-4a4b-8f3e-1c2d3e4f5a6b".into(),
        user: "root".into(),
        mac_required: true,
        mac_addr: "02:00:00:00:01:01".into(),
        ip_address: "172.16.0.101".into(),
        discovery_info: DiscoveryInfo {
            last_discovery_attempt: "2026-11-24T07:00:00.000000Z".into(),
            last_discovery_status: "DiscoverOK".into(),
            redfish_version: String::new(),
        },
        ..Default::default()
    };
    golden("redfish-endpoint.json", &ep);
}

#[test]
fn ethernet_interface() {
    golden(
        "ethernet-interface.json",
        &EthernetInterface {
            id: "a4bf012b7310".into(),
            description: "Node Maintenance Network".into(),
            mac_address: "a4:bf:01:2b:73:10".into(),
            last_update: "2026-11-24T07:00:00.000000Z".into(),
            component_id: "x1000c1s7b0n1".into(),
            r#type: "Node".into(),
            ip_addresses: vec![
                IpMapping {
                    ip_address: "10.252.0.1".into(),
                    network: "NMN".into(),
                },
                IpMapping {
                    ip_address: "10.254.0.1".into(),
                    network: String::new(),
                },
            ],
        },
    );
}

#[test]
fn groups_and_memberships() {
    golden(
        "group.json",
        &Group {
            label: "blue".into(),
            description: "This is the blue group".into(),
            exclusive_group: "colors".into(),
            tags: vec!["optional_tag1".into()],
            members: Members {
                ids: vec!["x1c0s1b0n0".into(), "x1c0s1b0n1".into()],
            },
        },
    );
    golden(
        "group-minimal.json",
        &Group {
            label: "compute".into(),
            ..Default::default()
        },
    );
    golden(
        "membership.json",
        &Membership {
            id: "x1000c1s7b0n1".into(),
            group_labels: vec!["blue".into(), "compute".into()],
            partition_name: String::new(),
        },
    );
}

#[test]
fn component_endpoint_system() {
    golden(
        "component-endpoint-system.json",
        &ComponentEndpoint {
            id: "x1000c1s7b0n0".into(),
            r#type: "Node".into(),
            redfish_type: "ComputerSystem".into(),
            redfish_subtype: "Physical".into(),
            uuid: "4a9b5b0c-5f5d-4a4b-8f3e-1c2d3e4f5a6b".into(),
            odata_id: "/redfish/v1/Systems/system".into(),
            redfish_endpoint_id: "x1000c1s7b0".into(),
            enabled: true,
            redfish_endpoint_fqdn: "172.16.0.101".into(),
            redfish_url: "172.16.0.101/redfish/v1/Systems/system".into(),
            component_endpoint_type: "ComponentEndpointComputerSystem".into(),
            redfish_system_info: Some(
                serde_json::json!({"Name": "system", "Actions": {"#ComputerSystem.Reset": {
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff"],
                "target": "/redfish/v1/Systems/system/Actions/ComputerSystem.Reset"}}}),
            ),
            ..Default::default()
        },
    );
}

#[test]
fn pcs_transition_with_tasks() {
    use skyport_wire::pcs::*;
    golden(
        "pcs-transition.json",
        &Transition {
            transition_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            operation: "Hard-Restart".into(),
            create_time: "2026-12-03T01:00:00Z".into(),
            automatic_expiration_time: "2026-12-04T01:00:00Z".into(),
            transition_status: "in-progress".into(),
            task_counts: TaskCounts {
                total: 2,
                new: 0,
                in_progress: 1,
                failed: 1,
                succeeded: 0,
                unsupported: 0,
            },
            tasks: vec![
                Task {
                    xname: "x1000c0s0b0n0".into(),
                    task_status: "in-progress".into(),
                    task_status_description: "Sending Command".into(),
                    error: String::new(),
                },
                Task {
                    xname: "x1000c0s1b0n0".into(),
                    task_status: "failed".into(),
                    task_status_description: "Failed to achieve transition".into(),
                    error: "Missing xname".into(),
                },
            ],
        },
    );
}

#[test]
fn pcs_power_status() {
    use skyport_wire::pcs::*;
    golden(
        "pcs-power-status.json",
        &PowerStatusAll {
            status: vec![PowerStatus {
                xname: "x1000c0s0b0n0".into(),
                power_state: "on".into(),
                management_state: "available".into(),
                error: String::new(),
                supported_power_transitions: vec!["On".into(), "Hard-Restart".into()],
                last_updated: "2026-12-03T01:00:00Z".into(),
            }],
        },
    );
}

#[test]
fn hardware_inventory_node_with_a_nested_processor() {
    use serde_json::json;
    use skyport_wire::hwinv::*;
    let map = |v: serde_json::Value| v.as_object().cloned();
    golden(
        "hwinv-node.json",
        &HwInvByLoc {
            id: "x3000c0s12b0n0".into(),
            r#type: "Node".into(),
            ordinal: 0,
            status: "Populated".into(),
            location_type: "HWInvByLocNode".into(),
            node_location_info: map(json!({"Id": "1", "Name": "Computer System",
                "ProcessorSummary": {"Count": 1, "Model": "AMD EPYC 7402P 24-Core Processor"},
                "MemorySummary": {"TotalSystemMemoryGiB": 64}})),
            populated_fru: Some(HwInvByFru {
                fruid: "Node.HPE.P18606-B21.CZJ11906SR".into(),
                r#type: "Node".into(),
                subtype: String::new(),
                fru_type: "HWInvByFRUNode".into(),
                node_fru_info: map(json!({"BiosVersion": "A43 v2.42 (04/08/2021)",
                    "Model": "ProLiant DL325 Gen10 Plus", "Manufacturer": "HPE",
                    "SerialNumber": "CZJ11906SR", "SystemType": "Physical"})),
                ..Default::default()
            }),
            processors: Some(vec![HwInvByLoc {
                id: "x3000c0s12b0n0p0".into(),
                r#type: "Processor".into(),
                ordinal: 0,
                status: "Populated".into(),
                location_type: "HWInvByLocProcessor".into(),
                processor_location_info: map(json!({"Id": "1", "Name": "Processors",
                    "Socket": "Proc 1", "Status": {"Health": "OK"}})),
                populated_fru: Some(HwInvByFru {
                    fruid: "FRUIDforx3000c0s12b0n0p0".into(),
                    r#type: "Processor".into(),
                    subtype: String::new(),
                    fru_type: "HWInvByFRUProcessor".into(),
                    processor_fru_info: map(json!({"Manufacturer": "Advanced Micro Devices, Inc.",
                        "Model": "AMD EPYC 7402P 24-Core Processor", "TotalCores": 24})),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        },
    );
}
