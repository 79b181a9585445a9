//! Test harness for the inventory API: drives the real Router in-process (no mock of anything
//! below it) on a real store, and checks every answer against the upstream SMD spec.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use skyport_inventory::Inventory;
use skyport_store::Store;
use skyport_testkit::spec::Spec;
use tower::ServiceExt;

pub struct Api {
    app: tower_http::normalize_path::NormalizePath<axum::Router>,
    pub spec: Arc<Spec>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Resp {
    /// Asserts the status, and for errors that the body is SMD's RFC 7807 shape.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.raw)
        );
        self
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}

pub fn store_sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap())
}

pub async fn store_dynamo(endpoint: &str, table: &str) -> Arc<dyn Store> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    let s = skyport_store_dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), table);
    s.ensure_table().await.unwrap();
    Arc::new(s)
}

impl Api {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let app = skyport_http::app(skyport_inventory::router(Inventory::new(store)));
        let spec = Spec::openchami("OpenCHAMI-smd_api_swagger_v2.yaml")
            .expect("SMD spec in ../shared")
            // cmd/smd/response.go sendJsonError writes `"code":0` (an integer).
            .deviation("Response_1.0.0", "code")
            // service/values lists hms-base's vocabularies, which are wider than the spec's
            // enums (Arch UNKNOWN, Flag Unknown, types such as NodeHsnNic).
            .deviation("Values.1.0.0_Values", "*");
        let spec = [
            "Arch", "Class", "Flag", "NetType", "Role", "SubRole", "State", "Type",
        ]
        .iter()
        .fold(spec, |s, k| {
            s.deviation(&format!("Values.1.0.0_{k}Array"), "*")
        });
        let spec = Arc::new(spec);
        Api { app, spec }
    }

    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or(Value::Null)
        };
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                headers.get("content-type").map(|v| v.to_str().unwrap()),
                Some("application/problem+json"),
                "{method} {uri}: error without problem JSON: {}",
                String::from_utf8_lossy(&raw)
            );
            for k in ["type", "title", "detail", "status"] {
                assert!(
                    body.get(k).is_some(),
                    "{method} {uri}: problem lacks {k}: {body}"
                );
            }
            assert_eq!(body["status"], status.as_u16());
        }
        Resp {
            status,
            headers,
            body,
            raw,
        }
    }

    /// Calls `method uri` with a JSON body and checks the answer against the spec operation
    /// `spec_path` (pass "" to skip the spec check, for Skyport-only routes).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        spec_path: &str,
        body: Option<Value>,
    ) -> Resp {
        let (headers, bytes): (&[(&str, &str)], Vec<u8>) = match &body {
            Some(b) => (
                &[("content-type", "application/json")],
                serde_json::to_vec(b).unwrap(),
            ),
            None => (&[], Vec::new()),
        };
        let r = self.raw(method, uri, headers, bytes).await;
        if !spec_path.is_empty() {
            self.spec
                .check(method, spec_path, r.status.as_u16(), &r.body)
                .unwrap_or_else(|e| panic!("{method} {uri}: {e:#}"));
        }
        r
    }

    pub async fn get(&self, uri: &str, spec_path: &str) -> Resp {
        self.call("GET", uri, spec_path, None).await
    }
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
