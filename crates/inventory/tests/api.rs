//! The inventory API, end to end through the real Router and a real store, with every answer
//! checked against the upstream SMD OpenAPI spec (status documented, body fits the schema).
//! The same suite runs on the embedded SQLite store and on Amazon's DynamoDB Local, behind
//! `skyport_testkit::dynamo_harness`, which adds what Local does not emulate: concurrent
//! transactions on one item conflict, and 2% of calls are throttled (the SDK retries them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Resp, magellan_payload};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&common::api(common::store_sqlite(&dir))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_dynamodb_local() {
    use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig, HarnessStats};
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let harness = DynamoHarness::start(&ddb.endpoint(), HarnessConfig::api_suite())
        .await
        .unwrap();
    let store = common::store_dynamo(&harness.endpoint(), "skyport-api").await;
    suite(&common::api(store)).await;
    assert!(HarnessStats::get(&harness.stats().throttled) > 0);
}

async fn suite(api: &Api) {
    service(api).await;
    components(api).await;
    component_concurrency(api).await;
    bad_input(api).await;
    redfish_endpoints(api).await;
    ethernet_interfaces(api).await;
    groups_and_memberships(api).await;
    lock_and_partition_races(api).await;
    bulk_is_all_or_nothing(api).await;
    delete_all(api).await;
}

const COMPONENTS: &str = "/hsm/v2/State/Components";

/// The string `key` of each element of the array `list`, in order.
fn field<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    let list = list.as_array().unwrap();
    list.iter().map(|e| e[key].as_str().unwrap()).collect()
}

/// The `ID`s of a component list answer, in order.
fn ids(r: &Resp) -> Vec<&str> {
    field(&r.body["Components"], "ID")
}

/// Asserts that the problem (its detail, upstream's text, and its context) names each of
/// `needles`.
fn assert_names(r: &Resp, needles: &[&str]) {
    let said = r.explained();
    assert!(needles.iter().all(|n| said.contains(n)), "{said}");
}

/// The length of the array at `pointer` in an answer (`""`: the body itself).
fn len(r: &Resp, pointer: &str) -> usize {
    r.body.pointer(pointer).unwrap().as_array().unwrap().len()
}

/// The fields `keys` of an answer, as a JSON array (`null` where one is missing).
fn fields<const N: usize>(r: &Resp, keys: [&str; N]) -> Value {
    Value::Array(keys.iter().map(|k| r.body[k].clone()).collect())
}

/// POSTs `State: On` components with the xnames in the JSON array `xnames` (no spec check).
async fn add_on(api: &Api, xnames: &Value) {
    let xnames = xnames.as_array().unwrap();
    let comps: Vec<Value> = (xnames.iter())
        .map(|id| json!({"ID": id, "State": "On"}))
        .collect();
    let body = json!({"Components": comps});
    api.call("POST", COMPONENTS, "", Some(body))
        .await
        .expect(204);
}

/// A component's answer, read without a spec check.
async fn component(api: &Api, xname: &str) -> Resp {
    api.get(&format!("/hsm/v2/State/Components/{xname}"), "")
        .await
        .expect(200)
}

/// PATCHes a component's JSON body with `If-Match: tag`, expecting `status`.
async fn patch_if_match(api: &Api, xname: &str, tag: &str, body: Value, status: u16) -> Resp {
    api.raw(
        "PATCH",
        &format!("/hsm/v2/State/Components/{xname}"),
        &[("content-type", "application/json"), ("if-match", tag)],
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .expect(status)
}

async fn service(api: &Api) {
    let r = api.get("/hsm/v2/service/ready", "/service/ready").await;
    assert_eq!(
        r.expect(200).body,
        json!({"code": 0, "message": "HSM is healthy"})
    );
    api.get("/hsm/v2/service/liveness", "/service/liveness")
        .await
        .expect(204);
    let values = api.get("/hsm/v2/service/values", "/service/values").await;
    let values = values.expect(200).body;
    assert!(
        values["State"]
            .as_array()
            .unwrap()
            .contains(&json!("Ready"))
    );
    assert!(
        values["Type"]
            .as_array()
            .unwrap()
            .contains(&json!("NodeBMC"))
    );
    let r = api
        .get("/hsm/v2/service/values/arch", "/service/values/arch")
        .await;
    assert_eq!(
        r.expect(200).body,
        json!({"Arch": ["X86", "ARM", "UNKNOWN", "Other"]})
    );
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
    api.call("POST", COMPONENTS, "/State/Components", Some(body))
        .await
        .expect(204);

    let xname = "/State/Components/{xname}";
    let r = api
        .get("/hsm/v2/State/Components/x1000c0s0b0n0", xname)
        .await
        .expect(200);
    assert_eq!(
        r.body,
        json!({"ID": "x1000c0s0b0n0", "Type": "Node", "State": "Ready", "Flag": "OK", "Enabled": true,
               "Role": "Compute", "NID": 1, "Arch": "X86"})
    );
    // Type derived from the xname, whatever the client said; NID filled in as SMD does.
    let bmc = api.get("/hsm/v2/State/Components/x1000c0s0b0", xname).await;
    let bmc = bmc.expect(200).body;
    assert_eq!(bmc["Type"], "NodeBMC");
    assert!(bmc.get("NID").is_none());
    let n = component(api, "x1000c0s1b0n0").await;
    assert_eq!(n.body["NID"], 1001 * 16384 + 32);
    assert_eq!(n.body["SubRole"], "Worker");

    // Filters: case-insensitive names and values, repeatable, ranges, negation.
    for (query, want) in [
        ("TYPE=node", "x1000c0s0b0n0 x1000c0s0b0n1 x1000c0s1b0n0"),
        (
            "type=Node&type=NodeBMC&state=ready",
            "x1000c0s0b0 x1000c0s0b0n0",
        ),
        ("nid_start=1&nid_end=2", "x1000c0s0b0n0 x1000c0s0b0n1"),
        ("role=service&subrole=worker", "x1000c0s1b0n0"),
        ("type=Node&state=!off&class=Mountain", "x1000c0s0b0n1"),
    ] {
        let uri = format!("{COMPONENTS}?{query}");
        let r = api.get(&uri, "/State/Components").await.expect(200);
        assert_eq!(ids(&r).join(" "), want, "{query}");
    }
    let r = api
        .get(
            "/hsm/v2/State/Components?id=x1000c0s0b0n1&id=x01000c0s0b0n0&nidonly=true",
            "/State/Components",
        )
        .await
        .expect(200);
    assert_eq!(
        r.body["Components"][0],
        json!({"ID": "x1000c0s0b0n0", "Type": "Node", "NID": 1})
    );
    let r = api.get("/hsm/v2/State/Components?type=Bogus", "/State/Components");
    // SMD's exact text in `detail`; the value in Skyport's `context` member.
    let r = r.await.expect(400);
    assert_eq!(
        (r.detail(), r.context()),
        (
            "bad query param: Argument was not a valid HMS Type",
            "type=\"Bogus\""
        )
    );

    // By NID.
    let by_nid = "/State/Components/ByNID/{nid}";
    let r = api.get("/hsm/v2/State/Components/ByNID/2", by_nid).await;
    assert_eq!(r.expect(200).body["ID"], "x1000c0s0b0n1");
    let r = api.get("/hsm/v2/State/Components/ByNID/77", by_nid).await;
    assert_eq!(r.expect(404).detail(), "no such NID.");
    // Missing component.
    let r = api.get("/hsm/v2/State/Components/x9c0s0b0n0", xname).await;
    assert_eq!(r.expect(404).detail(), "no such xname.");
    api.steps([
        (
            "GET",
            "/hsm/v2/State/Components?nid=one",
            "/State/Components",
            None,
            400,
        ),
        (
            "GET",
            "/hsm/v2/State/Components/ByNID/-1",
            by_nid,
            None,
            400,
        ),
    ])
    .await;

    // Existing components are skipped without force; with force only state-ish fields change.
    let again = json!({"Components": [{"ID": "x1000c0s0b0n0", "State": "Off", "Role": "Service", "Arch": "ARM"}]});
    let mut forced = again.clone();
    forced["force"] = json!(true);
    api.call("POST", COMPONENTS, "/State/Components", Some(again))
        .await
        .expect(204);
    assert_eq!(component(api, "x1000c0s0b0n0").await.body["State"], "Ready");
    api.call("POST", COMPONENTS, "/State/Components", Some(forced))
        .await
        .expect(204);
    let r = component(api, "x1000c0s0b0n0").await;
    assert_eq!(
        fields(&r, ["State", "Role", "Arch"]),
        json!(["Off", "Compute", "ARM"])
    );

    // Duplicate NIDs are refused (SMD would store them), naming the holder; nothing written.
    let dup = json!({"Components": [{"ID": "x1000c0s2b0n0", "State": "On", "NID": 2}]});
    // (Skyport-only answer: the spec has no 409 here because SMD never refuses a duplicate.)
    let r = api
        .call("POST", COMPONENTS, "", Some(dup))
        .await
        .expect(409);
    assert_names(&r, &["NID 2", "x1000c0s0b0n1"]);
    api.get("/hsm/v2/State/Components/x1000c0s2b0n0", "")
        .await
        .expect(404);

    // PUT by xname: create; body/URL mismatch rejected.
    let n0 = "/hsm/v2/State/Components/x1000c0s3b0n0";
    let put = json!({"Component": {"State": "Standby", "Role": "Storage"}, "Force": true});
    api.call("PUT", n0, xname, Some(put)).await.expect(204);
    assert_eq!(
        component(api, "x1000c0s3b0n0").await.body["Role"],
        "Storage"
    );
    let bad = json!({"Component": {"ID": "x1000c0s3b0n1", "State": "On"}});
    let r = api.call("PUT", n0, xname, Some(bad)).await.expect(400);
    assert!(r.detail().contains("do not match"));

    // PATCH, field routes, BulkNID.
    api.steps([
        (
            "PATCH",
            n0,
            "",
            Some(json!({"State": "Ready", "Enabled": false})),
            204,
        ),
        (
            "PATCH",
            "/hsm/v2/State/Components/x1000c0s3b0n0/FlagOnly",
            "/State/Components/{xname}/FlagOnly",
            Some(json!({"Flag": "warn"})),
            204,
        ),
    ])
    .await;
    let r = component(api, "x1000c0s3b0n0").await;
    assert_eq!(
        fields(&r, ["State", "Enabled", "Flag"]),
        json!(["Ready", false, "Warning"])
    );
    let halt = json!({"ComponentIDs": ["x1000c0s0b0n0", "x1000c0s0b0n1"], "State": "Halt"});
    api.steps([
        (
            "PATCH",
            "/hsm/v2/State/Components/x1000c0s3b0n0/Role",
            "/State/Components/{xname}/Role",
            Some(json!({"SubRole": "Worker"})),
            400,
        ),
        (
            "PATCH",
            "/hsm/v2/State/Components/x9c0s0b0n0/StateData",
            "",
            Some(json!({"State": "On"})),
            404,
        ),
        (
            "PATCH",
            "/hsm/v2/State/Components/BulkStateData",
            "/State/Components/BulkStateData",
            Some(halt),
            204,
        ),
    ])
    .await;
    let r = api.get("/hsm/v2/State/Components?state=halt", "").await;
    assert_eq!(ids(&r.expect(200)).len(), 2);
    // Swapping two NIDs in one request works; giving one NID to two components does not.
    let swap = json!({"Components": [{"ID": "x1000c0s0b0n0", "NID": 2}, {"ID": "x1000c0s0b0n1", "NID": 1}]});
    let bulk_nid = "/hsm/v2/State/Components/BulkNID";
    api.call("PATCH", bulk_nid, "/State/Components/BulkNID", Some(swap))
        .await
        .expect(204);
    let r = api.get("/hsm/v2/State/Components/ByNID/1", "").await;
    assert_eq!(r.expect(200).body["ID"], "x1000c0s0b0n1");
    let clash = json!({"Components": [{"ID": "x1000c0s3b0n0", "NID": 1}]});
    let unknown = json!({"Components": [{"ID": "x9c0s9b0n0", "NID": 99}]});
    api.steps([
        ("PATCH", bulk_nid, "", Some(clash), 409),
        ("PATCH", bulk_nid, "", Some(unknown), 404),
    ])
    .await;

    // ETag / If-Match: a stale writer gets 412 instead of silently overwriting.
    let r = component(api, "x1000c0s3b0n0").await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    patch_if_match(api, "x1000c0s3b0n0", &etag, json!({"State": "On"}), 204).await;
    let r = patch_if_match(api, "x1000c0s3b0n0", &etag, json!({"State": "On"}), 412).await;
    assert!(r.detail().contains("If-Match"));
    // RFC 9110 §13.1.1: If-Match compares strongly, so the weak form of the current tag never
    // matches (hostile testing found `W/"402"` accepted); a list's one strong tag counts.
    let r = component(api, "x1000c0s3b0n0").await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    for (tag, status) in [
        (format!("W/{etag}"), 412),
        (format!("W/\"0\", W/{etag}"), 412),
        (format!("{etag}, {etag}"), 412),
        (format!("W/\"0\", {etag}"), 204),
    ] {
        let r = patch_if_match(
            api,
            "x1000c0s3b0n0",
            &tag,
            json!({"State": "Ready"}),
            status,
        )
        .await;
        if status == 412 {
            assert_eq!(
                r.headers["content-type"], "application/problem+json",
                "{tag}"
            );
        }
    }

    // DELETE one.
    let r = api.call("DELETE", n0, xname, None).await.expect(200);
    assert_eq!(r.body, json!({"code": 0, "message": "deleted 1 entry"}));
    api.call("DELETE", n0, xname, None).await.expect(404);
}

/// Twenty writers patch different fields of one component at once: every change must survive.
async fn component_concurrency(api: &Api) {
    add_on(api, &json!(["x1001c0s0b0n0"])).await;
    let tasks = (0..20).map(|i| async move {
        // Half set SoftwareStatus, half flip Flag: all read-modify-write the same record.
        let body = if i % 2 == 0 {
            json!({"SoftwareStatus": format!("step-{i}")})
        } else {
            json!({"Flag": if i % 4 == 1 { "Warning" } else { "Alert" }})
        };
        let uri = "/hsm/v2/State/Components/x1001c0s0b0n0";
        api.call("PATCH", uri, "", Some(body)).await.expect(204);
    });
    futures::future::join_all(tasks).await;
    let r = component(api, "x1001c0s0b0n0").await;
    let status = r.body["SoftwareStatus"].as_str().unwrap();
    assert!(status.starts_with("step-"), "{status}");
    assert!(["Warning", "Alert"].contains(&r.body["Flag"].as_str().unwrap()));
    // The counter test proper: concurrent role changes on distinct nodes, then verify each.
    let nodes: Vec<String> = (0..10).map(|i| format!("x1001c0s1b0n{i}")).collect();
    add_on(api, &json!(nodes)).await;
    let tasks = nodes.iter().map(|n| async move {
        let n = format!("{COMPONENTS}/{n}");
        let role = json!({"Role": "Application"});
        api.call("PATCH", &format!("{n}/Role"), "", Some(role))
            .await
            .expect(204);
        let off = json!({"Enabled": false});
        api.call("PATCH", &format!("{n}/Enabled"), "", Some(off))
            .await
            .expect(204);
    });
    futures::future::join_all(tasks).await;
    let r = api.get(
        "/hsm/v2/State/Components?role=application&enabled=false",
        "",
    );
    assert_eq!(len(&r.await.expect(200), "/Components"), 10);
}

async fn bad_input(api: &Api) {
    let json_type = [("content-type", "application/json")];
    // Malformed JSON: 400 naming the problem (SMD answers 500).
    let r = api
        .raw(
            "POST",
            COMPONENTS,
            &json_type,
            b"{\"Components\": [".to_vec(),
        )
        .await
        .expect(400);
    assert_names(&r, &["invalid JSON"]);
    // Wrong field type names the field path; a bad xname is named.
    for (body, detail) in [
        (
            json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On", "Enabled": "yes"}]}),
            "Components[0].Enabled",
        ),
        (
            json!({"Components": [{"ID": "x1002q0", "State": "On"}]}),
            "xname ID 'x1002q0' is invalid",
        ),
    ] {
        let r = api
            .call("POST", COMPONENTS, "", Some(body))
            .await
            .expect(400);
        assert!(r.explained().contains(detail), "{}", r.explained());
    }
    // One bad entry rejects the whole request, naming which one.
    let r = api.call(
        "POST",
        COMPONENTS,
        "/State/Components",
        Some(json!({"Components": [
        {"ID": "x1002c0s0b0n0", "State": "On"}, {"ID": "x1002c0s0b0n1", "State": "Sleeping"}]})),
    );
    let r = r.await.expect(400);
    assert_eq!(
        (r.detail(), r.context()),
        (
            "couldn't validate components: state 'Sleeping' is invalid",
            "Components[1]"
        )
    );
    // NIDs are BIGINT in SMD: 3e9 is a NID; what no 64-bit integer holds is not.
    let big_nid =
        json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On", "NID": 3_000_000_000_i64}]});
    let too_big_nid = json!({"Components": [{"ID": "x1c0s0b0n1", "State": "On", "NID": 10_000_000_000_000_000_000_u64}]});
    api.steps([
        (
            "GET",
            "/hsm/v2/State/Components/x1002c0s0b0n0",
            "",
            None,
            404,
        ),
        ("POST", COMPONENTS, "", Some(json!({"Components": []})), 400),
        ("POST", COMPONENTS, "", Some(big_nid), 204),
        ("POST", COMPONENTS, "", Some(too_big_nid), 400),
    ])
    .await;
    let r = api
        .get("/hsm/v2/State/Components/ByNID/3000000000", "")
        .await
        .expect(200);
    assert_eq!(r.body["ID"], "x1c0s0b0n0");
    api.call("DELETE", "/hsm/v2/State/Components/x1c0s0b0n0", "", None)
        .await
        .expect(200);
    // Wrong content type, oversize body, empty body.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = api.raw("POST", COMPONENTS, &form, b"a=b".to_vec()).await;
    assert!(r.expect(415).detail().contains("application/json"));
    let big = vec![b' '; skyport_http::MAX_BODY_BYTES + 10];
    api.raw("POST", COMPONENTS, &json_type, big)
        .await
        .expect(413);
    api.raw("POST", COMPONENTS, &[], Vec::new())
        .await
        .expect(400);
    // Unknown path and wrong method: problem JSON too.
    api.get("/hsm/v2/Nope", "").await.expect(404);
    let r = api
        .call("PUT", "/hsm/v2/service/ready", "", None)
        .await
        .expect(405);
    assert_names(&r, &["/hsm/v2/service/ready"]);
    // Trailing slashes are tolerated (cloud-init calls /Inventory/EthernetInterfaces/).
    api.steps([
        (
            "GET",
            "/hsm/v2/Inventory/EthernetInterfaces/",
            "",
            None,
            200,
        ),
        (
            "GET",
            "/hsm/v2/State/Components/x1000c0s0b0n0/",
            "",
            None,
            200,
        ),
    ])
    .await;
}

async fn redfish_endpoints(api: &Api) {
    const EPS: &str = "/hsm/v2/Inventory/RedfishEndpoints";
    let (eps, ep) = (
        "/Inventory/RedfishEndpoints",
        "/Inventory/RedfishEndpoints/{xname}",
    );
    let payload = magellan_payload("x3000c0s1b0", "172.16.0.101", 1);
    let r = api
        .call("POST", EPS, eps, Some(payload.clone()))
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

    let r = api.get(&format!("{EPS}/x3000c0s1b0"), ep).await.expect(200);
    for (field, want) in [
        ("Type", "NodeBMC"),
        ("FQDN", "172.16.0.101"),
        ("Hostname", "172.16.0.101"),
        ("IPAddress", "172.16.0.101"),
        ("MACAddr", "02:00:00:00:01:01"),
    ] {
        assert_eq!(r.body[field], want, "{field}");
    }
    assert_eq!(r.body["DiscoveryInfo"]["LastDiscoveryStatus"], "DiscoverOK");
    // The key upstream always sends, never the password that was posted ("hunter2").
    assert_eq!(r.body["Password"], "");

    // Derived: the BMC, two nodes (the twice-listed system is one), CEs and interfaces.
    let r = api.get("/hsm/v2/State/Components?id=x3000c0s1b0&id=x3000c0s1b0n0&id=x3000c0s1b0n1&id=x3000c0s1b0n2", "").await.expect(200);
    let got: Vec<String> = r.body["Components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            ["ID", "Type", "State"]
                .map(|k| c[k].as_str().unwrap())
                .join(" ")
        })
        .collect();
    assert_eq!(
        got,
        [
            "x3000c0s1b0 NodeBMC Ready",
            "x3000c0s1b0n0 Node On",
            "x3000c0s1b0n1 Node On"
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
    let ce = "/Inventory/ComponentEndpoints/{xname}";
    api.get("/hsm/v2/Inventory/ComponentEndpoints/x3000c0s1b0n0", ce)
        .await
        .expect(200);
    let nics = "/Inventory/EthernetInterfaces";
    let r = api
        .get(
            "/hsm/v2/Inventory/EthernetInterfaces?componentid=x3000c0s1b0n0",
            nics,
        )
        .await
        .expect(200);
    assert_eq!(
        field(&r.body, "MACAddress"),
        ["02:00:00:00:01:10", "02:00:00:00:01:11"]
    );
    let r = api.get(
        "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=172.16.0.101",
        nics,
    );
    assert_eq!(r.await.expect(200).body[0]["ComponentID"], "x3000c0s1b0");

    // Passwords appear nowhere.
    for uri in [EPS, "/hsm/v2/Inventory/ComponentEndpoints", COMPONENTS] {
        let r = api.get(uri, "").await.expect(200);
        assert!(
            !String::from_utf8_lossy(&r.raw).contains("hunter2"),
            "{uri} leaks the password"
        );
    }

    // POSTing a stored endpoint again is a clean 409 and changes nothing.
    let r = api.call("POST", EPS, eps, Some(payload.clone())).await;
    assert!(r.expect(409).detail().starts_with(
        "operation would conflict with an existing resource that has the same FQDN or xname ID."
    ));

    // Admin data survives re-discovery (PUT, Magellan's --force-update): NID, Role, Flag kept.
    let admin = json!({"Role": "Service", "NID": 4242, "Flag": "Alert"});
    api.call(
        "PATCH",
        "/hsm/v2/State/Components/x3000c0s1b0n0",
        "",
        Some(admin),
    )
    .await
    .expect(204);
    let mut rediscovered = payload.clone();
    rediscovered["Systems"][0]["power"]["state"] = json!("Off");
    let r = api
        .call("PUT", &format!("{EPS}/x3000c0s1b0"), ep, Some(rediscovered))
        .await;
    assert_eq!(r.expect(200).body["ID"], "x3000c0s1b0");
    let r = component(api, "x3000c0s1b0n0").await;
    assert_eq!(
        fields(&r, ["State", "Role", "NID", "Flag"]),
        json!(["Off", "Service", 4242, "Alert"])
    );

    // A second BMC claiming a MAC the first one owns is refused, naming the owner.
    let mut thief = magellan_payload("x3000c0s2b0", "172.16.0.102", 2);
    thief["Systems"][0]["ethernet_interfaces"][0]["mac"] = json!("02:00:00:00:01:10");
    let r = api.call("POST", EPS, eps, Some(thief)).await.expect(409);
    assert_names(&r, &["x3000c0s1b0n0"]);
    api.steps([
        (
            "GET",
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s2b0",
            "",
            None,
            404,
        ),
        (
            "GET",
            "/hsm/v2/State/Components/x3000c0s2b0n0",
            "",
            None,
            404,
        ),
    ])
    .await;

    // Array form, filters, PATCH, validation.
    let arr = json!({"RedfishEndpoints": [
        {"ID": "x3000c0s3b0", "FQDN": "x3000c0s3b0.mgmt.example.com", "IPAddress": "10.254.2.10", "User": "root", "Password": "x"},
        {"ID": "x3000c0r1b0", "Hostname": "x3000c0r1b0", "Domain": "mgmt.example.com"}]});
    let r = api.call("POST", EPS, eps, Some(arr)).await.expect(201);
    assert_eq!(len(&r, ""), 2);
    assert_eq!(r.headers["location"], EPS);
    let r = api
        .get(&format!("{EPS}?type=RouterBMC"), eps)
        .await
        .expect(200);
    assert_eq!(
        r.body["RedfishEndpoints"][0]["FQDN"],
        "x3000c0r1b0.mgmt.example.com"
    );
    let r = api.get(&format!("{EPS}?ipaddress=10.254.2.10"), "").await;
    assert_eq!(len(&r.expect(200), "/RedfishEndpoints"), 1);
    let rack3 = json!({"Enabled": false, "Name": "rack3"});
    let r = api
        .call("PATCH", &format!("{EPS}/x3000c0s3b0"), ep, Some(rack3))
        .await
        .expect(200);
    assert_eq!(fields(&r, ["Enabled", "Name"]), json!([false, "rack3"]));
    let disable = json!({"Enabled": false});
    api.call("PATCH", &format!("{EPS}/x3000c0s9b0"), ep, Some(disable))
        .await
        .expect(404);
    let r = api
        .call("POST", EPS, eps, Some(json!({"ID": "x3000c0s4b0n0"})))
        .await;
    assert!(
        r.expect(400)
            .detail()
            .contains("wrong type for RF endpoint")
    );
    let r = api.call("POST", EPS, "", Some(json!({"RedfishEndpoints": [{"ID": "x3000c0s5b0"}, {"ID": "x3000c0s6b0", "IPAddress": "300.1.1.1"}]}))).await.expect(400);
    assert!(r.detail().contains("idx 1"));
    let same_fqdn = json!({"ID": "x3000c0s7b0", "FQDN": "172.16.0.101"});
    api.steps([
        (
            "GET",
            "/hsm/v2/Inventory/RedfishEndpoints/x3000c0s5b0",
            "",
            None,
            404,
        ),
        ("POST", EPS, "", Some(same_fqdn), 409),
    ])
    .await;

    // DELETE cascades ComponentEndpoints and marks the nodes Empty.
    let one = format!("{EPS}/x3000c0s1b0");
    let r = api.call("DELETE", &one, ep, None).await.expect(200);
    assert_eq!(r.body["message"], "deleted 1 entry");
    api.get("/hsm/v2/Inventory/ComponentEndpoints/x3000c0s1b0n0", "")
        .await
        .expect(404);
    assert_eq!(component(api, "x3000c0s1b0n0").await.body["State"], "Empty");
    api.call("DELETE", &one, ep, None).await.expect(404);
}

async fn ethernet_interfaces(api: &Api) {
    const NICS: &str = "/hsm/v2/Inventory/EthernetInterfaces";
    const NIC: &str = "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310";
    let (nics, nic) = (
        "/Inventory/EthernetInterfaces",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}",
    );
    let body = json!({"Description": "node NIC", "MACAddress": "A4-BF-01-2B-73-10", "ComponentID": "x1000c0s0b0n0",
                      "IPAddresses": [{"IPAddress": "10.252.0.1", "Network": "NMN"}]});
    let r = api.call("POST", NICS, nics, Some(body.clone())).await;
    assert_eq!(
        r.expect(201).body,
        json!({"URI": "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310"})
    );
    let r = api.call("POST", NICS, nics, Some(body)).await.expect(409);
    assert!(r.detail().contains("same MAC address"));
    let r = api
        .get(&format!("{NICS}/a4:bf:01:2b:73:10"), nic)
        .await
        .expect(200);
    assert_eq!(r.body["Type"], "Node");
    assert_eq!(r.body["MACAddress"], "a4:bf:01:2b:73:10");
    for query in [
        "macaddress=a4bf012b7310&type=Node",
        "network=NMN&newerthan=2000-01-01T00:00:00Z",
    ] {
        let r = api.get(&format!("{NICS}?{query}"), nics).await.expect(200);
        assert_eq!(len(&r, ""), 1, "{query}");
    }
    api.get(&format!("{NICS}?olderthan=yesterday"), nics)
        .await
        .expect(400);

    // IPs: add, duplicate, patch network, delete.
    let (ips, ip) = (
        "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses",
        "/Inventory/EthernetInterfaces/{ethInterfaceID}/IPAddresses/{ipAddress}",
    );
    let (ips_uri, ip_uri) = (
        format!("{NIC}/IPAddresses"),
        format!("{NIC}/IPAddresses/10.254.0.10"),
    );
    let r = api.call(
        "POST",
        &ips_uri,
        ips,
        Some(json!({"IPAddress": "10.254.0.10"})),
    );
    assert_eq!(
        r.await.expect(201).body["URI"],
        "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.254.0.10"
    );
    api.call(
        "POST",
        &ips_uri,
        ips,
        Some(json!({"IPAddress": "10.254.0.10"})),
    )
    .await
    .expect(409);
    let r = api
        .call("PATCH", &ip_uri, ip, Some(json!({"Network": "HMN"})))
        .await;
    assert_eq!(
        r.expect(200).body,
        json!({"IPAddress": "10.254.0.10", "Network": "HMN"})
    );
    api.call("PATCH", &ip_uri, "", Some(json!({})))
        .await
        .expect(400);
    let r = api.get(&format!("{NICS}?ipaddress=10.254.0.10"), "").await;
    assert_eq!(r.expect(200).body[0]["ID"], "a4bf012b7310");
    api.steps([
        ("DELETE", &*ip_uri, ip, None, 200),
        ("DELETE", &ip_uri, ip, None, 404),
    ])
    .await;
    let r = api.get(&ips_uri, ips).await.expect(200);
    assert_eq!(
        r.body,
        json!([{"IPAddress": "10.252.0.1", "Network": "NMN"}])
    );

    // PATCH: component and IP list; unknown interface is 404 (SMD answers 200 {}).
    let move_to_bmc = json!({"ComponentID": "x1000c0s0b0", "IPAddresses": []});
    let r = api
        .call("PATCH", NIC, nic, Some(move_to_bmc))
        .await
        .expect(200);
    assert_eq!(r.body["Type"], "NodeBMC");
    assert_eq!(len(&r, "/IPAddresses"), 0);
    let unknown = "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7399";
    let describe = json!({"Description": "x"});
    api.steps([
        ("PATCH", unknown, nic, Some(describe), 404),
        ("PATCH", NIC, nic, Some(json!({})), 400),
    ])
    .await;

    // Bad MACs and IPs.
    let bad = [
        json!({"MACAddress": "Not Available"}),
        json!({"MACAddress": "a4:bf:01"}),
        json!({"MACAddress": "a4bf012b7311", "IPAddresses": [{"IPAddress": "10.0.0.999"}]}),
        json!({"MACAddress": "a4bf012b7311", "ComponentID": "nonsense"}),
    ];
    api.steps(bad.map(|b| ("POST", NICS, nics, Some(b), 400)))
        .await;
    api.steps([
        ("DELETE", NIC, nic, None, 200),
        ("DELETE", NIC, nic, None, 404),
    ])
    .await;
}

async fn groups_and_memberships(api: &Api) {
    const GROUPS: &str = "/hsm/v2/groups";
    let (group, members) = ("/groups/{group_label}", "/groups/{group_label}/members");
    // The spec's own example group, with members created first.
    let mut example = api
        .spec
        .example("Group.1.0.0")
        .expect("spec has a Group example");
    add_on(api, &example["members"]["ids"]).await;
    let r = api
        .call("POST", GROUPS, "/groups", Some(example.clone()))
        .await;
    assert_eq!(r.expect(201).body, json!([{"URI": "/hsm/v2/groups/blue"}]));
    api.call("POST", GROUPS, "/groups", Some(example.clone()))
        .await
        .expect(409);
    let r = api.get("/hsm/v2/groups/blue", group).await.expect(200);
    assert_eq!(r.body["members"]["ids"], example["members"]["ids"]);
    assert_eq!(r.body["exclusiveGroup"], "optional_excl_group");

    // Exclusive groups: a member may be in only one group of the set.
    example["label"] = json!("red");
    example["members"]["ids"] = json!(["x1c0s1b0n0"]);
    let r = api
        .call("POST", GROUPS, "/groups", Some(example))
        .await
        .expect(409);
    assert_names(&r, &["exclusive group", "blue"]);
    // Members must exist.
    let ghosts = json!({"label": "ghosts", "members": {"ids": ["x77c0s0b0n0"]}});
    let r = api.call("POST", GROUPS, "/groups", Some(ghosts)).await;
    assert!(
        r.expect(400)
            .detail()
            .contains("linked component does not exist")
    );
    let compute = json!({"label": "compute", "tags": ["hpc"], "members": {"ids": ["x1000c0s0b0n0", "x1000c0s0b0n1"]}});
    api.steps([
        (
            "POST",
            GROUPS,
            "/groups",
            Some(json!({"label": "Bad Label"})),
            400,
        ),
        ("POST", GROUPS, "/groups", Some(compute), 201),
    ])
    .await;
    let r = api
        .get("/hsm/v2/groups?tag=hpc", "/groups")
        .await
        .expect(200);
    assert_eq!(len(&r, ""), 1);
    let r = api.get("/hsm/v2/groups/labels", "/groups/labels").await;
    assert_eq!(r.expect(200).body, json!(["blue", "compute"]));
    let (compute, compute_members) = ("/hsm/v2/groups/compute", "/hsm/v2/groups/compute/members");
    let describe = json!({"description": "all compute"});
    api.steps([
        ("PATCH", compute, group, Some(describe), 204),
        ("PATCH", compute, group, Some(json!({})), 400),
    ])
    .await;
    let member = json!({"id": "x1000c0s1b0n0"});
    let r = api
        .call("POST", compute_members, members, Some(member.clone()))
        .await;
    assert_eq!(
        r.expect(201).body,
        json!([{"URI": "/hsm/v2/groups/compute/members/x1000c0s1b0n0"}])
    );
    api.steps([
        ("POST", compute_members, members, Some(member.clone()), 409),
        (
            "POST",
            "/hsm/v2/groups/nosuch/members",
            members,
            Some(member),
            404,
        ),
    ])
    .await;
    let r = api.get(compute_members, members).await.expect(200);
    assert_eq!(len(&r, "/ids"), 3);

    // Group filter on components; memberships.
    let r = api.get(
        "/hsm/v2/State/Components?group=compute&role=compute",
        "/State/Components",
    );
    assert_eq!(len(&r.await.expect(200), "/Components"), 2);
    let membership = "/memberships/{xname}";
    let r = api
        .get("/hsm/v2/memberships/x1000c0s0b0n0", membership)
        .await;
    assert_eq!(
        r.expect(200).body,
        json!({"id": "x1000c0s0b0n0", "groupLabels": ["compute"], "partitionName": ""})
    );
    api.get("/hsm/v2/memberships/x77c0s0b0n0", membership)
        .await
        .expect(404);
    let r = api
        .get("/hsm/v2/memberships?type=Node", "/memberships")
        .await;
    assert!(
        r.expect(200)
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "x1c0s1b0n0" && m["groupLabels"] == json!(["blue"]))
    );

    // Deleting a component removes it from its groups.
    api.call("DELETE", "/hsm/v2/State/Components/x1000c0s1b0n0", "", None)
        .await
        .expect(200);
    let r = api.get(compute_members, "").await.expect(200);
    assert_eq!(r.body["ids"], json!(["x1000c0s0b0n0", "x1000c0s0b0n1"]));
    let n0 = "/hsm/v2/groups/compute/members/x1000c0s0b0n0";
    let member = "/groups/{group_label}/members/{xname_id}";
    api.steps([
        (
            "PUT",
            compute_members,
            "",
            Some(json!({"ids": ["x1000c0s0b0n0"]})),
            201,
        ),
        ("DELETE", n0, member, None, 200),
        ("DELETE", n0, member, None, 404),
        ("DELETE", compute, group, None, 200),
        ("GET", compute, group, None, 404),
    ])
    .await;
}

/// A 1,000-component bulk POST with one bad entry at the end writes nothing (it spans many
/// DynamoDB transactions, which must all be undone); without that entry everything lands.
async fn bulk_is_all_or_nothing(api: &Api) {
    let count = async || {
        let r = api.get(&format!("{COMPONENTS}?type=Node"), "").await;
        len(&r.expect(200), "/Components")
    };
    let before = count().await;
    let holder = api
        .get(&format!("{COMPONENTS}/ByNID/1"), "")
        .await
        .expect(200);
    let mut comps: Vec<Value> = (0..1000)
        .map(|i| json!({"ID": format!("x2000c{}s{}b0n{}", i / 256, (i / 4) % 64, i % 4), "State": "Ready"}))
        .collect();
    comps.push(json!({"ID": "x2000c7s0b0n0", "State": "Ready", "NID": 1}));
    let r = api
        .call(
            "POST",
            COMPONENTS,
            "",
            Some(json!({"Components": comps.clone()})),
        )
        .await
        .expect(409);
    assert!(
        r.context().contains("NID 1") && r.context().contains(holder.body["ID"].as_str().unwrap()),
        "{}",
        r.explained()
    );
    assert_eq!(
        count().await,
        before,
        "nothing of the rejected bulk request remains"
    );
    comps.pop();
    api.steps([
        (
            "GET",
            "/hsm/v2/State/Components/x2000c0s0b0n0",
            "",
            None,
            404,
        ),
        (
            "POST",
            COMPONENTS,
            "/State/Components",
            Some(json!({"Components": comps})),
            204,
        ),
    ])
    .await;
    assert_eq!(count().await, before + 1000);
}

async fn delete_all(api: &Api) {
    let r = api
        .call("DELETE", COMPONENTS, "/State/Components", None)
        .await;
    let message = r.expect(200).body["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("deleted "), "{message}");
    let r = api
        .call("DELETE", COMPONENTS, "/State/Components", None)
        .await;
    assert_eq!(r.expect(404).detail(), "no entries to delete");
    let r = api.get(COMPONENTS, "/State/Components").await.expect(200);
    assert_eq!(r.body, json!({"Components": []}));
    let (eps, nics) = (
        "/hsm/v2/Inventory/RedfishEndpoints",
        "/hsm/v2/Inventory/EthernetInterfaces",
    );
    api.steps([
        ("DELETE", eps, "/Inventory/RedfishEndpoints", None, 200),
        (
            "DELETE",
            "/hsm/v2/Inventory/ComponentEndpoints",
            "",
            None,
            404,
        ),
        ("DELETE", nics, "/Inventory/EthernetInterfaces", None, 200),
    ])
    .await;
    let r = api
        .get(nics, "/Inventory/EthernetInterfaces")
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
        COMPONENTS,
        "/hsm/v2/State/Components/x1c0s0b0n0",
        "/hsm/v2/Inventory/EthernetInterfaces?ipaddress=10.0.0.1",
    ] {
        let r = api.get(uri, "").await.expect(503);
        assert_eq!(r.headers["retry-after"], "1");
    }
    let one = json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On"}]});
    let r = api
        .call("POST", COMPONENTS, "", Some(one))
        .await
        .expect(503);
    assert_names(&r, &["storage unavailable"]);
}

/// Reservations, locks and partitions are claims on a component: whoever races for one, one
/// wins (on DynamoDB behind the harness, the losers meet real transaction conflicts).
async fn lock_and_partition_races(api: &Api) {
    let locks = "/hsm/v2/locks";
    add_on(
        api,
        &json!(["x1002c0s0b0n0", "x1002c0s0b0n1", "x1002c0s0b0n2"]),
    )
    .await;
    let reserve = |x: &str| {
        let body = json!({"ComponentIDs": [x], "ReservationDuration": 1});
        api.call("POST", "/hsm/v2/locks/service/reservations", "", Some(body))
    };
    // Eight services reserve one node at once: exactly one holds it, the others are told why.
    let rs = futures::future::join_all((0..8).map(|_| reserve("x1002c0s0b0n0"))).await;
    let won: Vec<&Resp> = rs.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        rs.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in rs.iter().filter(|r| r.status != 200) {
        assert_eq!(r.body["detail"], "Component is Reserved", "{}", r.body);
    }
    let rk = won[0].body["Success"][0]["ReservationKey"].clone();
    let dk = won[0].body["Success"][0]["DeputyKey"].clone();
    let check = json!({"DeputyKeys": [{"ID": "x1002c0s0b0n0", "Key": dk}]});
    let r = api
        .call(
            "POST",
            &format!("{locks}/service/reservations/check"),
            "",
            Some(check),
        )
        .await
        .expect(200);
    assert_eq!(len(&r, "/Success"), 1, "{}", r.body);
    // An admin's lock and a service's reservation racing for one node never both succeed.
    for _ in 0..4 {
        let lock = api.call(
            "POST",
            "/hsm/v2/locks/lock",
            "",
            Some(json!({"ComponentIDs": ["x1002c0s0b0n1"]})),
        );
        let (l, r) = futures::future::join(lock, reserve("x1002c0s0b0n1")).await;
        assert!(
            l.status != 200 || r.status != 200,
            "both won: {} / {}",
            l.body,
            r.body
        );
        assert!(
            l.status == 200 || r.status == 200,
            "{} / {}",
            l.body,
            r.body
        );
        let undo = if l.status == 200 {
            "unlock"
        } else {
            "reservations/remove"
        };
        let body = json!({"ComponentIDs": ["x1002c0s0b0n1"]});
        api.call("POST", &format!("{locks}/{undo}"), "", Some(body))
            .await
            .expect(200);
    }
    // Two partitions claim one component at once: it ends in exactly one.
    for p in ["p20", "p21"] {
        api.call("POST", "/hsm/v2/partitions", "", Some(json!({"name": p})))
            .await
            .expect(201);
    }
    let add = |uri: &'static str| {
        let body = json!({"id": "x1002c0s0b0n2"});
        api.call("POST", uri, "", Some(body))
    };
    let (a, b) = futures::future::join(
        add("/hsm/v2/partitions/p20/members"),
        add("/hsm/v2/partitions/p21/members"),
    )
    .await;
    let mut codes = [a.status.as_u16(), b.status.as_u16()];
    codes.sort();
    assert_eq!(codes, [201, 409], "{} / {}", a.body, b.body);
    let r = api
        .get("/hsm/v2/memberships/x1002c0s0b0n2", "/memberships/{xname}")
        .await
        .expect(200);
    assert!(["p20", "p21"].contains(&r.body["partitionName"].as_str().unwrap()));
    // Releasing with the key ends the reservation; deleting the component ends its partition
    // membership (as SMD's foreign keys cascade).
    let release = json!({"ReservationKeys": [{"ID": "x1002c0s0b0n0", "Key": rk}]});
    api.call(
        "POST",
        &format!("{locks}/reservations/release"),
        "",
        Some(release),
    )
    .await
    .expect(200);
    api.call("DELETE", &format!("{COMPONENTS}/x1002c0s0b0n2"), "", None)
        .await
        .expect(200);
    for p in ["p20", "p21"] {
        let r = api
            .get(&format!("/hsm/v2/partitions/{p}/members"), "")
            .await
            .expect(200);
        assert_eq!(r.body, json!({"ids": []}));
    }
}
