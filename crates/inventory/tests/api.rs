//! The inventory API, end to end through the real Router and a real store, with every answer
//! checked against the upstream SMD OpenAPI spec (status documented, body fits the schema).
//! The same suite runs on the embedded SQLite store and on Amazon's DynamoDB Local.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, magellan_payload};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&common::api(common::store_sqlite(&dir))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_dynamodb_local() {
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let store = common::store_dynamo(&ddb.endpoint(), "skyport-api").await;
    suite(&common::api(store)).await;
}

async fn suite(api: &Api) {
    service(api).await;
    components(api).await;
    component_concurrency(api).await;
    bad_input(api).await;
    redfish_endpoints(api).await;
    ethernet_interfaces(api).await;
    groups_and_memberships(api).await;
    bulk_is_all_or_nothing(api).await;
    delete_all(api).await;
}

async fn service(api: &Api) {
    let r = api
        .get("/hsm/v2/service/ready", "/service/ready")
        .await
        .expect(200);
    assert_eq!(r.body, json!({"code": 0, "message": "HSM is healthy"}));
    api.get("/hsm/v2/service/liveness", "/service/liveness")
        .await
        .expect(204);
    let r = api
        .get("/hsm/v2/service/values", "/service/values")
        .await
        .expect(200);
    assert!(
        r.body["State"]
            .as_array()
            .unwrap()
            .contains(&json!("Ready"))
    );
    assert!(
        r.body["Type"]
            .as_array()
            .unwrap()
            .contains(&json!("NodeBMC"))
    );
    let r = api
        .get("/hsm/v2/service/values/arch", "/service/values/arch")
        .await
        .expect(200);
    assert_eq!(r.body, json!({"Arch": ["X86", "ARM", "UNKNOWN", "Other"]}));
    api.get("/hsm/v2/service/values/bogus", "")
        .await
        .expect(404);
}

async fn components(api: &Api) {
    let body = json!({"Components": [
        {"ID": "x1000c0s0b0n0", "State": "Ready", "Role": "Compute", "NID": 1, "Arch": "x86"},
        {"ID": "x1000c0s0b0n1", "State": "On", "NID": "2", "Class": "mountain"},
        {"ID": "X1000C0S0B0", "State": "ready", "Type": "Node"},
        {"ID": "x1000c0s1b0n0", "State": "Off", "Role": "Service", "SubRole": "Worker"},
    ]});
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "/State/Components",
        Some(body),
    )
    .await
    .expect(204);

    let r = api
        .get(
            "/hsm/v2/State/Components/x1000c0s0b0n0",
            "/State/Components/{xname}",
        )
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!({"ID": "x1000c0s0b0n0", "Type": "Node", "State": "Ready", "Flag": "OK", "Enabled": true,
               "Role": "Compute", "NID": 1, "Arch": "X86", "ReservationDisabled": false, "Locked": false})
    );
    // Type derived from the xname, whatever the client said; NID filled in as SMD does.
    let bmc = api
        .get(
            "/hsm/v2/State/Components/x1000c0s0b0",
            "/State/Components/{xname}",
        )
        .await
        .expect(200);
    assert_eq!(bmc.body["Type"], "NodeBMC");
    assert!(bmc.body.get("NID").is_none());
    let n = api
        .get("/hsm/v2/State/Components/x1000c0s1b0n0", "")
        .await
        .expect(200);
    assert_eq!(n.body["NID"], 1001 * 16384 + 32);
    assert_eq!(n.body["SubRole"], "Worker");

    // Filters: case-insensitive names and values, repeatable, ranges, negation.
    let ids = |r: &common::Resp| -> Vec<String> {
        r.body["Components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["ID"].as_str().unwrap().to_string())
            .collect()
    };
    let r = api
        .get("/hsm/v2/State/Components?TYPE=node", "/State/Components")
        .await
        .expect(200);
    assert_eq!(ids(&r), ["x1000c0s0b0n0", "x1000c0s0b0n1", "x1000c0s1b0n0"]);
    let r = api
        .get(
            "/hsm/v2/State/Components?type=Node&type=NodeBMC&state=ready",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(ids(&r), ["x1000c0s0b0", "x1000c0s0b0n0"]);
    let r = api
        .get(
            "/hsm/v2/State/Components?nid_start=1&nid_end=2",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(ids(&r), ["x1000c0s0b0n0", "x1000c0s0b0n1"]);
    let r = api
        .get(
            "/hsm/v2/State/Components?role=service&subrole=worker",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(ids(&r), ["x1000c0s1b0n0"]);
    let r = api
        .get(
            "/hsm/v2/State/Components?type=Node&state=!off&class=Mountain",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(ids(&r), ["x1000c0s0b0n1"]);
    let r = api
        .get(
            "/hsm/v2/State/Components?id=x1000c0s0b0n1&id=x01000c0s0b0n0&nidonly=true",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(
        r.body["Components"][0],
        json!({"ID": "x1000c0s0b0n0", "Type": "Node", "NID": 1, "ReservationDisabled": false, "Locked": false})
    );
    let r = api
        .get("/hsm/v2/State/Components?type=Bogus", "/State/Components")
        .await
        .expect(400);
    assert_eq!(
        r.detail(),
        "bad query param: Argument was not a valid HMS Type (type=\"Bogus\")"
    );
    api.get("/hsm/v2/State/Components?nid=one", "/State/Components")
        .await
        .expect(400);

    // By NID.
    let r = api
        .get(
            "/hsm/v2/State/Components/ByNID/2",
            "/State/Components/ByNID/{nid}",
        )
        .await
        .expect(200);
    assert_eq!(r.body["ID"], "x1000c0s0b0n1");
    let r = api
        .get(
            "/hsm/v2/State/Components/ByNID/77",
            "/State/Components/ByNID/{nid}",
        )
        .await
        .expect(404);
    assert_eq!(r.detail(), "no such NID.");
    api.get(
        "/hsm/v2/State/Components/ByNID/-1",
        "/State/Components/ByNID/{nid}",
    )
    .await
    .expect(400);

    // Missing component.
    let r = api
        .get(
            "/hsm/v2/State/Components/x9c0s0b0n0",
            "/State/Components/{xname}",
        )
        .await
        .expect(404);
    assert_eq!(r.detail(), "no such xname.");

    // Existing components are skipped without force; with force only state-ish fields change.
    let again = json!({"Components": [{"ID": "x1000c0s0b0n0", "State": "Off", "Role": "Service", "Arch": "ARM"}]});
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "/State/Components",
        Some(again.clone()),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s0b0n0", "")
        .await
        .expect(200);
    assert_eq!(r.body["State"], "Ready");
    let mut forced = again;
    forced["force"] = json!(true);
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "/State/Components",
        Some(forced),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s0b0n0", "")
        .await
        .expect(200);
    assert_eq!(
        (
            r.body["State"].as_str(),
            r.body["Role"].as_str(),
            r.body["Arch"].as_str()
        ),
        (Some("Off"), Some("Compute"), Some("ARM"))
    );

    // Duplicate NIDs are refused (SMD would store them), naming the holder; nothing written.
    let dup = json!({"Components": [{"ID": "x1000c0s2b0n0", "State": "On", "NID": 2}]});
    // (Skyport-only answer: the spec has no 409 here because SMD never refuses a duplicate.)
    let r = api
        .call("POST", "/hsm/v2/State/Components", "", Some(dup))
        .await
        .expect(409);
    assert!(
        r.detail().contains("NID 2") && r.detail().contains("x1000c0s0b0n1"),
        "{}",
        r.detail()
    );
    api.get("/hsm/v2/State/Components/x1000c0s2b0n0", "")
        .await
        .expect(404);

    // PUT by xname: create; body/URL mismatch rejected.
    let put = json!({"Component": {"State": "Standby", "Role": "Storage"}, "Force": true});
    api.call(
        "PUT",
        "/hsm/v2/State/Components/x1000c0s3b0n0",
        "/State/Components/{xname}",
        Some(put),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s3b0n0", "")
        .await
        .expect(200);
    assert_eq!(r.body["Role"], "Storage");
    let bad = json!({"Component": {"ID": "x1000c0s3b0n1", "State": "On"}});
    let r = api
        .call(
            "PUT",
            "/hsm/v2/State/Components/x1000c0s3b0n0",
            "/State/Components/{xname}",
            Some(bad),
        )
        .await
        .expect(400);
    assert!(r.detail().contains("do not match"));

    // PATCH, field routes, BulkNID.
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x1000c0s3b0n0",
        "",
        Some(json!({"State": "Ready", "Enabled": false})),
    )
    .await
    .expect(204);
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x1000c0s3b0n0/FlagOnly",
        "/State/Components/{xname}/FlagOnly",
        Some(json!({"Flag": "warn"})),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s3b0n0", "")
        .await
        .expect(200);
    assert_eq!(
        (
            r.body["State"].as_str(),
            r.body["Enabled"].as_bool(),
            r.body["Flag"].as_str()
        ),
        (Some("Ready"), Some(false), Some("Warning"))
    );
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x1000c0s3b0n0/Role",
        "/State/Components/{xname}/Role",
        Some(json!({"SubRole": "Worker"})),
    )
    .await
    .expect(400);
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x9c0s0b0n0/StateData",
        "",
        Some(json!({"State": "On"})),
    )
    .await
    .expect(404);
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/BulkStateData",
        "/State/Components/BulkStateData",
        Some(json!({"ComponentIDs": ["x1000c0s0b0n0", "x1000c0s0b0n1"], "State": "Halt"})),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components?state=halt", "")
        .await
        .expect(200);
    assert_eq!(ids(&r).len(), 2);
    // Swapping two NIDs in one request works; giving one NID to two components does not.
    let swap = json!({"Components": [{"ID": "x1000c0s0b0n0", "NID": 2}, {"ID": "x1000c0s0b0n1", "NID": 1}]});
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/BulkNID",
        "/State/Components/BulkNID",
        Some(swap),
    )
    .await
    .expect(204);
    let r = api
        .get("/hsm/v2/State/Components/ByNID/1", "")
        .await
        .expect(200);
    assert_eq!(r.body["ID"], "x1000c0s0b0n1");
    let clash = json!({"Components": [{"ID": "x1000c0s3b0n0", "NID": 1}]});
    api.call("PATCH", "/hsm/v2/State/Components/BulkNID", "", Some(clash))
        .await
        .expect(409);
    let unknown = json!({"Components": [{"ID": "x9c0s9b0n0", "NID": 99}]});
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/BulkNID",
        "",
        Some(unknown),
    )
    .await
    .expect(404);

    // ETag / If-Match: a stale writer gets 412 instead of silently overwriting.
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s3b0n0", "")
        .await
        .expect(200);
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let body = serde_json::to_vec(&json!({"State": "On"})).unwrap();
    api.raw(
        "PATCH",
        "/hsm/v2/State/Components/x1000c0s3b0n0",
        &[("content-type", "application/json"), ("if-match", &etag)],
        body.clone(),
    )
    .await
    .expect(204);
    let r = api
        .raw(
            "PATCH",
            "/hsm/v2/State/Components/x1000c0s3b0n0",
            &[("content-type", "application/json"), ("if-match", &etag)],
            body,
        )
        .await
        .expect(412);
    assert!(r.detail().contains("If-Match"));
    // RFC 9110 §13.1.1: If-Match compares strongly, so the weak form of the current tag never
    // matches (hostile testing found `W/"402"` accepted); a list's one strong tag counts.
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s3b0n0", "")
        .await
        .expect(200);
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    for (tag, status) in [
        (format!("W/{etag}"), 412),
        (format!("W/\"0\", W/{etag}"), 412),
        (format!("{etag}, {etag}"), 412),
        (format!("W/\"0\", {etag}"), 204),
    ] {
        let body = serde_json::to_vec(&json!({"State": "Ready"})).unwrap();
        let r = api
            .raw(
                "PATCH",
                "/hsm/v2/State/Components/x1000c0s3b0n0",
                &[("content-type", "application/json"), ("if-match", &tag)],
                body,
            )
            .await
            .expect(status);
        if status == 412 {
            assert_eq!(
                r.headers["content-type"], "application/problem+json",
                "{tag}"
            );
        }
    }

    // DELETE one.
    let r = api
        .call(
            "DELETE",
            "/hsm/v2/State/Components/x1000c0s3b0n0",
            "/State/Components/{xname}",
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body, json!({"code": 0, "message": "deleted 1 entry"}));
    api.call(
        "DELETE",
        "/hsm/v2/State/Components/x1000c0s3b0n0",
        "/State/Components/{xname}",
        None,
    )
    .await
    .expect(404);
}

/// Twenty writers patch different fields of one component at once: every change must survive.
async fn component_concurrency(api: &Api) {
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(json!({"Components": [{"ID": "x1001c0s0b0n0", "State": "On"}]})),
    )
    .await
    .expect(204);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let status = format!("step-{i}");
        tasks.push(async move {
            // Half set SoftwareStatus, half flip Flag: all read-modify-write the same record.
            let body = if i % 2 == 0 {
                json!({"SoftwareStatus": status})
            } else {
                json!({"Flag": if i % 4 == 1 { "Warning" } else { "Alert" }})
            };
            api.call(
                "PATCH",
                "/hsm/v2/State/Components/x1001c0s0b0n0",
                "",
                Some(body),
            )
            .await
            .expect(204);
        });
    }
    futures::future::join_all(tasks).await;
    let r = api
        .get("/hsm/v2/State/Components/x1001c0s0b0n0", "")
        .await
        .expect(200);
    assert!(
        r.body["SoftwareStatus"]
            .as_str()
            .unwrap()
            .starts_with("step-")
    );
    assert!(["Warning", "Alert"].contains(&r.body["Flag"].as_str().unwrap()));
    // The counter test proper: concurrent role changes on distinct nodes, then verify each.
    let nodes: Vec<String> = (0..10).map(|i| format!("x1001c0s1b0n{i}")).collect();
    let comps: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"ID": n, "State": "On"}))
        .collect();
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(json!({"Components": comps})),
    )
    .await
    .expect(204);
    let tasks = nodes.iter().map(|n| async move {
        api.call(
            "PATCH",
            &format!("/hsm/v2/State/Components/{n}/Role"),
            "",
            Some(json!({"Role": "Application"})),
        )
        .await
        .expect(204);
        api.call(
            "PATCH",
            &format!("/hsm/v2/State/Components/{n}/Enabled"),
            "",
            Some(json!({"Enabled": false})),
        )
        .await
        .expect(204);
    });
    futures::future::join_all(tasks).await;
    let r = api
        .get(
            "/hsm/v2/State/Components?role=application&enabled=false",
            "",
        )
        .await
        .expect(200);
    assert_eq!(r.body["Components"].as_array().unwrap().len(), 10);
}

async fn bad_input(api: &Api) {
    // Malformed JSON: 400 naming the problem (SMD answers 500).
    let r = api
        .raw(
            "POST",
            "/hsm/v2/State/Components",
            &[("content-type", "application/json")],
            b"{\"Components\": [".to_vec(),
        )
        .await
        .expect(400);
    assert!(r.detail().contains("invalid JSON"), "{}", r.detail());
    // Wrong field type names the field path.
    let r = api
        .call(
            "POST",
            "/hsm/v2/State/Components",
            "",
            Some(json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On", "Enabled": "yes"}]})),
        )
        .await
        .expect(400);
    assert!(
        r.detail().contains("Components[0].Enabled"),
        "{}",
        r.detail()
    );
    // One bad entry rejects the whole request, naming which one.
    let r = api
        .call(
            "POST",
            "/hsm/v2/State/Components",
            "/State/Components",
            Some(json!({"Components": [
        {"ID": "x1002c0s0b0n0", "State": "On"}, {"ID": "x1002c0s0b0n1", "State": "Sleeping"}]})),
        )
        .await
        .expect(400);
    assert_eq!(
        r.detail(),
        "couldn't validate components: Components[1]: state 'Sleeping' is invalid"
    );
    api.get("/hsm/v2/State/Components/x1002c0s0b0n0", "")
        .await
        .expect(404);
    let r = api
        .call(
            "POST",
            "/hsm/v2/State/Components",
            "",
            Some(json!({"Components": [{"ID": "x1002q0", "State": "On"}]})),
        )
        .await
        .expect(400);
    assert!(r.detail().contains("xname ID 'x1002q0' is invalid"));
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(json!({"Components": []})),
    )
    .await
    .expect(400);
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(
            json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On", "NID": 3_000_000_000_i64}]}),
        ),
    )
    .await
    .expect(400);
    // Wrong content type, oversize body, empty body.
    let r = api
        .raw(
            "POST",
            "/hsm/v2/State/Components",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"a=b".to_vec(),
        )
        .await
        .expect(415);
    assert!(r.detail().contains("application/json"));
    let big = vec![b' '; skyport_http::MAX_BODY_BYTES + 10];
    api.raw(
        "POST",
        "/hsm/v2/State/Components",
        &[("content-type", "application/json")],
        big,
    )
    .await
    .expect(413);
    api.raw("POST", "/hsm/v2/State/Components", &[], Vec::new())
        .await
        .expect(400);
    // Unknown path and wrong method: problem JSON too.
    api.get("/hsm/v2/Nope", "").await.expect(404);
    let r = api
        .call("PUT", "/hsm/v2/service/ready", "", None)
        .await
        .expect(405);
    assert!(
        r.detail().contains("/hsm/v2/service/ready"),
        "{}",
        r.detail()
    );
    // Trailing slashes are tolerated (cloud-init calls /Inventory/EthernetInterfaces/).
    api.get("/hsm/v2/Inventory/EthernetInterfaces/", "")
        .await
        .expect(200);
    api.get("/hsm/v2/State/Components/x1000c0s0b0n0/", "")
        .await
        .expect(200);
}

async fn redfish_endpoints(api: &Api) {
    let payload = magellan_payload("x3000c0s1b0", "172.16.0.101", 1);
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            "/Inventory/RedfishEndpoints",
            Some(payload.clone()),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body,
        json!([{"URI": "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0"}])
    );
    assert_eq!(
        r.headers["location"],
        "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0"
    );

    let r = api
        .get(
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0",
            "/Inventory/RedfishEndpoints/{xname}",
        )
        .await
        .expect(200);
    assert_eq!(r.body["Type"], "NodeBMC");
    assert_eq!(r.body["FQDN"], "172.16.0.101");
    assert_eq!(r.body["Hostname"], "172.16.0.101");
    assert_eq!(r.body["IPAddress"], "172.16.0.101");
    assert_eq!(r.body["MACAddr"], "02:00:00:00:01:01");
    assert_eq!(r.body["DiscoveryInfo"]["LastDiscoveryStatus"], "DiscoverOK");
    assert!(r.body.get("Password").is_none());

    // Derived: the BMC, two nodes (the twice-listed system is one), CEs and interfaces.
    let r = api.get("/hsm/v2/State/Components?id=x3000c0s1b0&id=x3000c0s1b0n0&id=x3000c0s1b0n1&id=x3000c0s1b0n2", "").await.expect(200);
    let comps = r.body["Components"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = comps
        .iter()
        .map(|c| {
            (
                c["ID"].as_str().unwrap(),
                c["Type"].as_str().unwrap(),
                c["State"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("x3000c0s1b0", "NodeBMC", "Ready"),
            ("x3000c0s1b0n0", "Node", "On"),
            ("x3000c0s1b0n1", "Node", "On")
        ]
    );
    let r = api
        .get(
            "/hsm/v2/Inventory/ComponentEndpoints?redfish_ep=x3000c0s1b0",
            "/Inventory/ComponentEndpoints",
        )
        .await
        .expect(200);
    let ces = r.body["ComponentEndpoints"].as_array().unwrap();
    assert_eq!(ces.len(), 3);
    let n0 = ces.iter().find(|c| c["ID"] == "x3000c0s1b0n0").unwrap();
    assert_eq!(n0["RedfishType"], "ComputerSystem");
    assert_eq!(n0["OdataID"], "/redfish/v1/Systems/system");
    assert_eq!(n0["RedfishURL"], "172.16.0.101/redfish/v1/Systems/system");
    assert_eq!(
        n0["RedfishSystemInfo"]["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
            [1],
        "ForceOff"
    );
    api.get(
        "/hsm/v2/Inventory/ComponentEndpoints/x3000c0s1b0n0",
        "/Inventory/ComponentEndpoints/{xname}",
    )
    .await
    .expect(200);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?componentid=x3000c0s1b0n0",
            "/Inventory/EthernetInterfaces",
        )
        .await
        .expect(200);
    let macs: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["MACAddress"].as_str().unwrap())
        .collect();
    assert_eq!(macs, ["02:00:00:00:01:10", "02:00:00:00:01:11"]);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=172.16.0.101",
            "/Inventory/EthernetInterfaces",
        )
        .await
        .expect(200);
    assert_eq!(r.body[0]["ComponentID"], "x3000c0s1b0");

    // Passwords appear nowhere.
    for uri in [
        "/hsm/v2/Inventory/RedfishEndpoints",
        "/hsm/v2/Inventory/ComponentEndpoints",
        "/hsm/v2/State/Components",
    ] {
        let r = api.get(uri, "").await.expect(200);
        assert!(
            !String::from_utf8_lossy(&r.raw).contains("hunter2"),
            "{uri} leaks the password"
        );
    }

    // POSTing a stored endpoint again is a clean 409 and changes nothing.
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            "/Inventory/RedfishEndpoints",
            Some(payload.clone()),
        )
        .await
        .expect(409);
    assert!(r.detail().starts_with(
        "operation would conflict with an existing resource that has the same FQDN or xname ID."
    ));

    // Admin data survives re-discovery (PUT, Magellan's --force-update): NID, Role, Flag kept.
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x3000c0s1b0n0",
        "",
        Some(json!({"Role": "Service", "NID": 4242, "Flag": "Alert"})),
    )
    .await
    .expect(204);
    let mut rediscovered = payload.clone();
    rediscovered["Systems"][0]["power"]["state"] = json!("Off");
    let r = api
        .call(
            "PUT",
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0",
            "/Inventory/RedfishEndpoints/{xname}",
            Some(rediscovered),
        )
        .await
        .expect(200);
    assert_eq!(r.body["ID"], "x3000c0s1b0");
    let r = api
        .get("/hsm/v2/State/Components/x3000c0s1b0n0", "")
        .await
        .expect(200);
    assert_eq!(
        (
            r.body["State"].as_str(),
            r.body["Role"].as_str(),
            r.body["NID"].as_i64(),
            r.body["Flag"].as_str()
        ),
        (Some("Off"), Some("Service"), Some(4242), Some("Alert"))
    );

    // A second BMC claiming a MAC the first one owns is refused, naming the owner.
    let mut thief = magellan_payload("x3000c0s2b0", "172.16.0.102", 2);
    thief["Systems"][0]["ethernet_interfaces"][0]["mac"] = json!("02:00:00:00:01:10");
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            "/Inventory/RedfishEndpoints",
            Some(thief),
        )
        .await
        .expect(409);
    assert!(r.detail().contains("x3000c0s1b0n0"), "{}", r.detail());
    api.get("/hsm/v2/Inventory/RedfishEndpoints/x3000c0s2b0", "")
        .await
        .expect(404);
    api.get("/hsm/v2/State/Components/x3000c0s2b0n0", "")
        .await
        .expect(404);

    // Array form, filters, PATCH, validation.
    let arr = json!({"RedfishEndpoints": [
        {"ID": "x3000c0s3b0", "FQDN": "x3000c0s3b0.mgmt.example.com", "IPAddress": "10.254.2.10", "User": "root", "Password": "x"},
        {"ID": "x3000c0r1b0", "Hostname": "x3000c0r1b0", "Domain": "mgmt.example.com"}]});
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            "/Inventory/RedfishEndpoints",
            Some(arr),
        )
        .await
        .expect(201);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.headers["location"], "/hsm/v2/Inventory/RedfishEndpoints");
    let r = api
        .get(
            "/hsm/v2/Inventory/RedfishEndpoints?type=RouterBMC",
            "/Inventory/RedfishEndpoints",
        )
        .await
        .expect(200);
    assert_eq!(
        r.body["RedfishEndpoints"][0]["FQDN"],
        "x3000c0r1b0.mgmt.example.com"
    );
    let r = api
        .get(
            "/hsm/v2/Inventory/RedfishEndpoints?ipaddress=10.254.2.10",
            "",
        )
        .await
        .expect(200);
    assert_eq!(r.body["RedfishEndpoints"].as_array().unwrap().len(), 1);
    let r = api
        .call(
            "PATCH",
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s3b0",
            "/Inventory/RedfishEndpoints/{xname}",
            Some(json!({"Enabled": false, "Name": "rack3"})),
        )
        .await
        .expect(200);
    assert_eq!(
        (r.body["Enabled"].as_bool(), r.body["Name"].as_str()),
        (Some(false), Some("rack3"))
    );
    api.call(
        "PATCH",
        "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s9b0",
        "/Inventory/RedfishEndpoints/{xname}",
        Some(json!({"Enabled": false})),
    )
    .await
    .expect(404);
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/RedfishEndpoints",
            "/Inventory/RedfishEndpoints",
            Some(json!({"ID": "x3000c0s4b0n0"})),
        )
        .await
        .expect(400);
    assert!(r.detail().contains("wrong type for RF endpoint"));
    let r = api.call("POST", "/hsm/v2/Inventory/RedfishEndpoints", "", Some(json!({"RedfishEndpoints": [{"ID": "x3000c0s5b0"}, {"ID": "x3000c0s6b0", "IPAddress": "300.1.1.1"}]}))).await.expect(400);
    assert!(r.detail().contains("idx 1"));
    api.get("/hsm/v2/Inventory/RedfishEndpoints/x3000c0s5b0", "")
        .await
        .expect(404);
    api.call(
        "POST",
        "/hsm/v2/Inventory/RedfishEndpoints",
        "",
        Some(json!({"ID": "x3000c0s7b0", "FQDN": "172.16.0.101"})),
    )
    .await
    .expect(409);

    // DELETE cascades ComponentEndpoints and marks the nodes Empty.
    let r = api
        .call(
            "DELETE",
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0",
            "/Inventory/RedfishEndpoints/{xname}",
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body["message"], "deleted 1 entry");
    api.get("/hsm/v2/Inventory/ComponentEndpoints/x3000c0s1b0n0", "")
        .await
        .expect(404);
    let r = api
        .get("/hsm/v2/State/Components/x3000c0s1b0n0", "")
        .await
        .expect(200);
    assert_eq!(r.body["State"], "Empty");
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s1b0",
        "/Inventory/RedfishEndpoints/{xname}",
        None,
    )
    .await
    .expect(404);
}

async fn ethernet_interfaces(api: &Api) {
    let body = json!({"Description": "node NIC", "MACAddress": "A4-BF-01-2B-73-10", "ComponentID": "x1000c0s0b0n0",
                      "IPAddresses": [{"IPAddress": "10.252.0.1", "Network": "NMN"}]});
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces",
            "/Inventory/EthernetInterfaces",
            Some(body.clone()),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body,
        json!({"URI": "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310"})
    );
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces",
            "/Inventory/EthernetInterfaces",
            Some(body),
        )
        .await
        .expect(409);
    assert!(r.detail().contains("same MAC address"));
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces/a4:bf:01:2b:73:10",
            "/Inventory/EthernetInterfaces/{ethInterfaceID}",
        )
        .await
        .expect(200);
    assert_eq!(r.body["Type"], "Node");
    assert_eq!(r.body["MACAddress"], "a4:bf:01:2b:73:10");
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?macaddress=a4bf012b7310&type=Node",
            "/Inventory/EthernetInterfaces",
        )
        .await
        .expect(200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?network=NMN&newerthan=2000-01-01T00:00:00Z",
            "/Inventory/EthernetInterfaces",
        )
        .await
        .expect(200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    api.get(
        "/hsm/v2/Inventory/EthernetInterfaces?olderthan=yesterday",
        "/Inventory/EthernetInterfaces",
    )
    .await
    .expect(400);

    // IPs: add, duplicate, patch network, delete.
    let r = api
        .call(
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses",
            "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses",
            Some(json!({"IPAddress": "10.254.0.10"})),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body["URI"],
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10"
    );
    api.call(
        "POST",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses",
        Some(json!({"IPAddress": "10.254.0.10"})),
    )
    .await
    .expect(409);
    let r = api
        .call(
            "PATCH",
            "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10",
            "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses/{ipAddress}",
            Some(json!({"Network": "HMN"})),
        )
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!({"IPAddress": "10.254.0.10", "Network": "HMN"})
    );
    api.call(
        "PATCH",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10",
        "",
        Some(json!({})),
    )
    .await
    .expect(400);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=10.254.0.10",
            "",
        )
        .await
        .expect(200);
    assert_eq!(r.body[0]["ID"], "a4bf012b7310");
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses/{ipAddress}",
        None,
    )
    .await
    .expect(200);
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses/{ipAddress}",
        None,
    )
    .await
    .expect(404);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses",
            "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses",
        )
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!([{"IPAddress": "10.252.0.1", "Network": "NMN"}])
    );

    // PATCH: component and IP list; unknown interface is 404 (SMD answers 200 {}).
    let r = api
        .call(
            "PATCH",
            "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310",
            "/Inventory/EthernetInterfaces/{ethInterfaceID}",
            Some(json!({"ComponentID": "x1000c0s0b0", "IPAddresses": []})),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            r.body["Type"].as_str(),
            r.body["IPAddresses"].as_array().unwrap().len()
        ),
        (Some("NodeBMC"), 0)
    );
    api.call(
        "PATCH",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7399",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}",
        Some(json!({"Description": "x"})),
    )
    .await
    .expect(404);
    api.call(
        "PATCH",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}",
        Some(json!({})),
    )
    .await
    .expect(400);

    // Bad MACs and IPs.
    for bad in [
        json!({"MACAddress": "Not Available"}),
        json!({"MACAddress": "a4:bf:01"}),
        json!({"MACAddress": "a4bf012b7311", "IPAddresses": [{"IPAddress": "10.0.0.999"}]}),
        json!({"MACAddress": "a4bf012b7311", "ComponentID": "nonsense"}),
    ] {
        api.call(
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces",
            "/Inventory/EthernetInterfaces",
            Some(bad),
        )
        .await
        .expect(400);
    }
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}",
        None,
    )
    .await
    .expect(200);
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}",
        None,
    )
    .await
    .expect(404);
}

async fn groups_and_memberships(api: &Api) {
    // The spec's own example group, with members created first.
    let mut example = api
        .spec
        .example("Group.1.0.0")
        .expect("spec has a Group example");
    let members: Vec<Value> = example["members"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| json!({"ID": id, "State": "On"}))
        .collect();
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(json!({"Components": members})),
    )
    .await
    .expect(204);
    let r = api
        .call("POST", "/hsm/v2/groups", "/groups", Some(example.clone()))
        .await
        .expect(201);
    assert_eq!(r.body, json!([{"URI": "/hsm/v2/groups/blue"}]));
    api.call("POST", "/hsm/v2/groups", "/groups", Some(example.clone()))
        .await
        .expect(409);
    let r = api
        .get("/hsm/v2/groups/blue", "/groups/{group_label}")
        .await
        .expect(200);
    assert_eq!(r.body["members"]["ids"], example["members"]["ids"]);
    assert_eq!(r.body["exclusiveGroup"], "optional_excl_group");

    // Exclusive groups: a member may be in only one group of the set.
    example["label"] = json!("red");
    example["members"]["ids"] = json!(["x1c0s1b0n0"]);
    let r = api
        .call("POST", "/hsm/v2/groups", "/groups", Some(example))
        .await
        .expect(409);
    assert!(
        r.detail().contains("exclusive group") && r.detail().contains("blue"),
        "{}",
        r.detail()
    );
    // Members must exist.
    let r = api
        .call(
            "POST",
            "/hsm/v2/groups",
            "/groups",
            Some(json!({"label": "ghosts", "members": {"ids": ["x77c0s0b0n0"]}})),
        )
        .await
        .expect(400);
    assert!(r.detail().contains("linked component does not exist"));
    api.call(
        "POST",
        "/hsm/v2/groups",
        "/groups",
        Some(json!({"label": "Bad Label"})),
    )
    .await
    .expect(400);

    api.call("POST", "/hsm/v2/groups", "/groups", Some(json!({"label": "compute", "tags": ["hpc"], "members": {"ids": ["x1000c0s0b0n0", "x1000c0s0b0n1"]}}))).await.expect(201);
    let r = api
        .get("/hsm/v2/groups?tag=hpc", "/groups")
        .await
        .expect(200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = api
        .get("/hsm/v2/groups/labels", "/groups/labels")
        .await
        .expect(200);
    assert_eq!(r.body, json!(["blue", "compute"]));
    api.call(
        "PATCH",
        "/hsm/v2/groups/compute",
        "/groups/{group_label}",
        Some(json!({"description": "all compute"})),
    )
    .await
    .expect(204);
    api.call(
        "PATCH",
        "/hsm/v2/groups/compute",
        "/groups/{group_label}",
        Some(json!({})),
    )
    .await
    .expect(400);
    let r = api
        .call(
            "POST",
            "/hsm/v2/groups/compute/members",
            "/groups/{group_label}/members",
            Some(json!({"id": "x1000c0s1b0n0"})),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body,
        json!([{"URI": "/hsm/v2/groups/compute/members/x1000c0s1b0n0"}])
    );
    api.call(
        "POST",
        "/hsm/v2/groups/compute/members",
        "/groups/{group_label}/members",
        Some(json!({"id": "x1000c0s1b0n0"})),
    )
    .await
    .expect(409);
    api.call(
        "POST",
        "/hsm/v2/groups/nosuch/members",
        "/groups/{group_label}/members",
        Some(json!({"id": "x1000c0s1b0n0"})),
    )
    .await
    .expect(404);
    let r = api
        .get(
            "/hsm/v2/groups/compute/members",
            "/groups/{group_label}/members",
        )
        .await
        .expect(200);
    assert_eq!(r.body["ids"].as_array().unwrap().len(), 3);

    // Group filter on components; memberships.
    let r = api
        .get(
            "/hsm/v2/State/Components?group=compute&role=compute",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(r.body["Components"].as_array().unwrap().len(), 2);
    let r = api
        .get("/hsm/v2/memberships/x1000c0s0b0n0", "/memberships/{xname}")
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!({"id": "x1000c0s0b0n0", "groupLabels": ["compute"], "partitionName": ""})
    );
    api.get("/hsm/v2/memberships/x77c0s0b0n0", "/memberships/{xname}")
        .await
        .expect(404);
    let r = api
        .get("/hsm/v2/memberships?type=Node", "/memberships")
        .await
        .expect(200);
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "x1c0s1b0n0" && m["groupLabels"] == json!(["blue"]))
    );

    // Deleting a component removes it from its groups.
    api.call("DELETE", "/hsm/v2/State/Components/x1000c0s1b0n0", "", None)
        .await
        .expect(200);
    let r = api
        .get("/hsm/v2/groups/compute/members", "")
        .await
        .expect(200);
    assert_eq!(r.body["ids"], json!(["x1000c0s0b0n0", "x1000c0s0b0n1"]));
    api.call(
        "PUT",
        "/hsm/v2/groups/compute/members",
        "",
        Some(json!({"ids": ["x1000c0s0b0n0"]})),
    )
    .await
    .expect(201);
    api.call(
        "DELETE",
        "/hsm/v2/groups/compute/members/x1000c0s0b0n0",
        "/groups/{group_label}/members/{xname_id}",
        None,
    )
    .await
    .expect(200);
    api.call(
        "DELETE",
        "/hsm/v2/groups/compute/members/x1000c0s0b0n0",
        "/groups/{group_label}/members/{xname_id}",
        None,
    )
    .await
    .expect(404);
    api.call(
        "DELETE",
        "/hsm/v2/groups/compute",
        "/groups/{group_label}",
        None,
    )
    .await
    .expect(200);
    api.get("/hsm/v2/groups/compute", "/groups/{group_label}")
        .await
        .expect(404);
}

/// A 1,000-component bulk POST with one bad entry at the end writes nothing (it spans many
/// DynamoDB transactions, which must all be undone); without that entry everything lands.
async fn bulk_is_all_or_nothing(api: &Api) {
    let count = async || {
        api.get("/hsm/v2/State/Components?type=Node", "")
            .await
            .expect(200)
            .body["Components"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;
    let holder = api
        .get("/hsm/v2/State/Components/ByNID/1", "")
        .await
        .expect(200);
    let mut comps: Vec<Value> = (0..1000)
        .map(|i| json!({"ID": format!("x2000c{}s{}b0n{}", i / 256, (i / 4) % 64, i % 4), "State": "Ready"}))
        .collect();
    comps.push(json!({"ID": "x2000c7s0b0n0", "State": "Ready", "NID": 1}));
    let r = api
        .call(
            "POST",
            "/hsm/v2/State/Components",
            "",
            Some(json!({"Components": comps.clone()})),
        )
        .await
        .expect(409);
    assert!(
        r.detail().contains("NID 1") && r.detail().contains(holder.body["ID"].as_str().unwrap()),
        "{}",
        r.detail()
    );
    assert_eq!(
        count().await,
        before,
        "nothing of the rejected bulk request remains"
    );
    api.get("/hsm/v2/State/Components/x2000c0s0b0n0", "")
        .await
        .expect(404);
    comps.pop();
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "/State/Components",
        Some(json!({"Components": comps})),
    )
    .await
    .expect(204);
    assert_eq!(count().await, before + 1000);
}

async fn delete_all(api: &Api) {
    let r = api
        .call(
            "DELETE",
            "/hsm/v2/State/Components",
            "/State/Components",
            None,
        )
        .await
        .expect(200);
    assert!(r.body["message"].as_str().unwrap().starts_with("deleted "));
    let r = api
        .call(
            "DELETE",
            "/hsm/v2/State/Components",
            "/State/Components",
            None,
        )
        .await
        .expect(404);
    assert_eq!(r.detail(), "no entries to delete");
    let r = api
        .get("/hsm/v2/State/Components", "/State/Components")
        .await
        .expect(200);
    assert_eq!(r.body, json!({"Components": []}));
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/RedfishEndpoints",
        "/Inventory/RedfishEndpoints",
        None,
    )
    .await
    .expect(200);
    api.call("DELETE", "/hsm/v2/Inventory/ComponentEndpoints", "", None)
        .await
        .expect(404);
    api.call(
        "DELETE",
        "/hsm/v2/Inventory/EthernetInterfaces",
        "/Inventory/EthernetInterfaces",
        None,
    )
    .await
    .expect(200);
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces",
            "/Inventory/EthernetInterfaces",
        )
        .await
        .expect(200);
    assert_eq!(r.body, json!([]));
}

/// A storage outage is a retryable 503 problem on every route, never a panic or a hang.
#[tokio::test]
async fn storage_outage_is_a_retryable_503() {
    // A DynamoDB endpoint where nothing listens.
    let port = skyport_testkit::free_port().unwrap();
    let client = skyport_testkit::dynamo_client(&format!("http://127.0.0.1:{port}"), Some(2)).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "down");
    let api = common::api(std::sync::Arc::new(store));
    let r = api
        .get("/hsm/v2/service/ready", "/service/ready")
        .await
        .expect(503);
    assert!(
        r.detail().starts_with("HSM's database is unhealthy"),
        "{}",
        r.detail()
    );
    for uri in [
        "/hsm/v2/State/Components",
        "/hsm/v2/State/Components/x1c0s0b0n0",
        "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=10.0.0.1",
    ] {
        let r = api.get(uri, "").await.expect(503);
        assert_eq!(r.headers["retry-after"], "1");
    }
    let r = api
        .call(
            "POST",
            "/hsm/v2/State/Components",
            "",
            Some(json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On"}]})),
        )
        .await
        .expect(503);
    assert!(r.detail().contains("storage unavailable"), "{}", r.detail());
}
