//! The cloud-init API end to end through the real Routers (inventory and metadata on one
//! store): nodes identified by X-Forwarded-For, admin data, group files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::as_node;
use serde_json::json;

#[tokio::test]
async fn cloud_init_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite(&dir);
    let store_for_history = store.clone();
    let api = common::api(store);
    common::seed_node(
        &api,
        json!({"ID": "x1000c0s0b0n0", "State": "Ready", "NID": 7, "Role": "Compute", "SubRole": "Worker"}),
    )
    .await;

    // Admin: defaults, a group with a base64 cloud-config and meta-data, instance overrides.
    let d = json!({"cluster-name": "demo", "short-name": "nid", "nid-length": 3, "public-keys": ["ssh-ed25519 AAAA admin@head"],
                   "cloud_provider": "openchami", "region": "lab"});
    let (defaults, groups) = (
        "/cloud-init/admin/cluster-defaults",
        "/cloud-init/admin/groups",
    );
    api.call("POST", defaults, "/admin/cluster-defaults", Some(d))
        .await
        .expect(201);
    let r = api.get(defaults, "/admin/cluster-defaults").await;
    assert_eq!(r.expect(200).body["cluster-name"], "demo");
    let cfg = "#cloud-config\nruncmd:\n  - echo hello\n";
    let g = json!({"name": "compute", "description": "The compute group", "meta-data": {"slurm": "yes"},
                   "file": {"content": base64::engine::general_purpose::STANDARD.encode(cfg), "encoding": "base64"}});
    let r = api
        .call("POST", groups, "/admin/groups", Some(g.clone()))
        .await;
    assert_eq!(r.expect(201).headers["location"], "/groups/compute");
    let bad = json!({"name": "x", "file": {"content": "not base64!", "encoding": "base64"}});
    let no_file = json!({"description": "no file"});
    api.steps([
        ("POST", groups, "/admin/groups", Some(g), 409),
        ("POST", groups, "/admin/groups", Some(bad), 422),
        (
            "POST",
            groups,
            "/admin/groups",
            Some(json!({"name": "Bad Name"})),
            422,
        ),
        (
            "PUT",
            "/cloud-init/admin/groups/empty",
            "",
            Some(no_file),
            200,
        ),
    ])
    .await;
    let r = api.get(groups, "/admin/groups").await.expect(200);
    assert_eq!(r.body["compute"]["meta-data"]["slurm"], "yes");

    // Node routes, by source IP.
    let r = as_node(&api, "10.0.2.15", "/cloud-init/meta-data")
        .await
        .expect(200);
    assert_eq!(r.headers["content-type"], "application/x-yaml");
    let yaml = String::from_utf8(r.raw).unwrap();
    for want in [
        "instance-id: x1000c0s0b0n0\n",
        "local-hostname: nid007\n",
        "hostname: nid007\n",
        "cluster-name: demo\n",
        "instance_data:\n  v1:\n",
        "    local_ipv4: \"10.0.2.15\"\n",
        "    cloud_provider: openchami\n",
        "    public_keys:\n      - ssh-ed25519 AAAA admin@head\n",
        "      version: \"1.0\"\n",
        "      cloud_init_base_url: http://10.0.2.2:27779/cloud-init\n",
        "      nid: 7\n",
        "      role: Compute\n",
        "      groups:\n        compute:\n          Description: The compute group\n",
        "          slurm: \"yes\"\n",
    ] {
        assert!(yaml.contains(want), "meta-data lacks {want:?}:\n{yaml}");
    }
    let r = as_node(&api, "10.0.2.15", "/cloud-init/user-data")
        .await
        .expect(200);
    assert_eq!(String::from_utf8(r.raw).unwrap(), "#cloud-config\n");
    // The fetch is recorded for BSS's endpoint-history.
    let h = store_for_history
        .get(skyport_boot::ENDPOINT_HISTORY, "x1000c0s0b0n0#user-data")
        .await
        .unwrap();
    assert!(h.is_some_and(|r| r.body.contains("\"endpoint\":\"user-data\"")));
    let r = as_node(&api, "10.0.2.15", "/cloud-init/vendor-data")
        .await
        .expect(200);
    assert_eq!(
        String::from_utf8(r.raw).unwrap(),
        "#include\nhttp://10.0.2.2:27779/cloud-init/compute.yaml\n"
    );
    let r = as_node(&api, "10.0.2.15", "/cloud-init/compute.yaml")
        .await
        .expect(200);
    assert_eq!(String::from_utf8(r.raw).unwrap(), cfg);
    as_node(&api, "10.0.2.15", "/cloud-init/other.yaml")
        .await
        .expect(404);

    // Unknown node: 422, as upstream; bad header: 400.
    as_node(&api, "10.0.2.99", "/cloud-init/meta-data")
        .await
        .expect(422);
    api.raw(
        "GET",
        "/cloud-init/meta-data",
        &[("x-forwarded-for", "not-an-ip")],
        Vec::new(),
    )
    .await
    .expect(400);

    // Instance overrides and impersonation (an admin previewing a node's view).
    let (hostname, unknown) = (
        json!({"local-hostname": "compute-7"}),
        json!({"local-hostname": "x"}),
    );
    api.steps([
        (
            "PUT",
            "/cloud-init/admin/instance-info/x1000c0s0b0n0",
            "/admin/instance-info/{id}",
            Some(hostname),
            201,
        ),
        (
            "PUT",
            "/cloud-init/admin/instance-info/x9c0s0b0n0",
            "",
            Some(unknown),
            404,
        ),
    ])
    .await;
    let as_admin = async |file: &str| {
        let uri = format!("/cloud-init/admin/impersonation/x1000c0s0b0n0/{file}");
        let r = api.raw("GET", &uri, &[], Vec::new()).await.expect(200);
        String::from_utf8(r.raw).unwrap()
    };
    let yaml = as_admin("meta-data").await;
    assert!(
        yaml.contains("local-hostname: compute-7") && yaml.contains("local_ipv4: \"10.0.2.15\""),
        "{yaml}"
    );
    assert_eq!(as_admin("compute.yaml").await, cfg);

    api.steps([
        ("DELETE", "/cloud-init/admin/groups/compute", "", None, 200),
        ("DELETE", "/cloud-init/admin/groups/compute", "", None, 404),
    ])
    .await;
    // The node is still a member in the inventory; with no cloud-init data the file is empty config.
    let r = as_node(&api, "10.0.2.15", "/cloud-init/compute.yaml")
        .await
        .expect(200);
    assert_eq!(String::from_utf8(r.raw).unwrap(), "#cloud-config\n");
}

#[test]
fn yaml_quotes_values_pyyaml_would_misread() {
    // cloud-init parses meta-data with PyYAML (YAML 1.1): an unquoted yes/on/no would become a
    // boolean. The emitter must quote them.
    let mut m = std::collections::BTreeMap::new();
    m.insert("a", "yes");
    m.insert("b", "on");
    m.insert("c", "1.0");
    let y = skyport_metadata::to_yaml(&m).unwrap();
    assert_eq!(y, "a: \"yes\"\nb: \"on\"\nc: \"1.0\"\n");
    let nested = serde_json::json!({"k": {"list": ["x y", "a: b", "-dash", ""], "empty": [], "n": null, "t": true}});
    assert_eq!(
        skyport_metadata::to_yaml(&nested).unwrap(),
        "k:\n  list:\n    - x y\n    - \"a: b\"\n    - \"-dash\"\n    - \"\"\n  empty: []\n  \"n\": null\n  t: true\n"
    );
}

/// Every failure the service decides keeps its status and its `detail` text (clients match on
/// them), including the ones only data written around the API can cause.
#[tokio::test]
async fn errors_keep_their_status_and_detail() {
    use skyport_store::{Record, Write};

    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite(&dir);
    let api = common::api(store.clone());
    common::seed_node(
        &api,
        json!({"ID": "x1000c0s0b0n0", "State": "Ready", "NID": 7}),
    )
    .await;
    let (defaults, groups) = (
        "/cloud-init/admin/cluster-defaults",
        "/cloud-init/admin/groups",
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let not_b64 = b64.decode("not base64!").unwrap_err();
    let check = |r: skyport_testkit::app::Resp, status: u16, detail: &str| {
        assert_eq!(r.expect(status).detail(), detail);
    };
    let call = async |method: &str, uri: &str, body: Option<serde_json::Value>| {
        api.call(method, uri, "", body).await
    };

    api.call("POST", groups, "", Some(json!({"name": "compute"})))
        .await
        .expect(201);
    for (method, uri, body, status, detail) in [
        (
            "POST",
            groups,
            json!({"name": "Bad Name"}),
            422,
            r#"group name "Bad Name" is invalid: use lowercase letters, digits and -:._"#
                .to_string(),
        ),
        (
            "POST",
            groups,
            json!({"name": "Compute"}),
            409,
            "group compute already exists".into(),
        ),
        (
            "POST",
            groups,
            json!({"name": "x", "file": {"content": "not base64!", "encoding": "base64"}}),
            422,
            format!("file.content is not valid base64: {not_b64}"),
        ),
        (
            "POST",
            groups,
            json!({"name": "x", "file": {"content": "", "encoding": "gzip"}}),
            422,
            r#"file.encoding "gzip": expected plain or base64"#.into(),
        ),
        (
            "PUT",
            "/cloud-init/admin/groups/compute",
            json!({"name": "other"}),
            422,
            r#"name "other" in the body does not match compute"#.into(),
        ),
        (
            "POST",
            defaults,
            json!({"base-url": "ftp://head/ci"}),
            422,
            r#"base-url "ftp://head/ci" must be an http(s) URL"#.into(),
        ),
        (
            "POST",
            defaults,
            json!({"nid-length": 13}),
            422,
            "nid-length 13 is larger than 12".into(),
        ),
        (
            "PUT",
            "/cloud-init/admin/instance-info/x1000c0s0b0n0",
            json!({"cloud-init-base-url": "http://"}),
            422,
            r#"cloud-init-base-url "http://" has no host"#.into(),
        ),
        // The inventory's own answer for an unknown node.
        (
            "PUT",
            "/cloud-init/admin/instance-info/x9c0s0b0n0",
            json!({}),
            404,
            "no such xname.".into(),
        ),
    ] {
        check(call(method, uri, Some(body)).await, status, &detail);
    }
    check(
        call("GET", "/cloud-init/admin/groups/nope", None).await,
        404,
        "no such group: nope",
    );
    // An invalid name names no group; the detail shows it as sent.
    check(
        call("DELETE", "/cloud-init/admin/groups/a%20b", None).await,
        404,
        "no such group: a b",
    );
    check(
        as_node(&api, "10.0.2.99", "/cloud-init/vendor-data").await,
        422,
        "no node has IP address 10.0.2.99",
    );
    check(
        as_node(&api, "10.0.2.15", "/cloud-init/other.yaml").await,
        404,
        "x1000c0s0b0n0 is not a member of group other",
    );

    // Records written around the API: 500, naming the group or the record.
    let put = async |id: &str, body: String| {
        let record = Record::new(id, body);
        let table = skyport_metadata::GROUPS;
        store
            .write(vec![Write::Upsert { table, record }])
            .await
            .unwrap();
    };
    let file = |content: &str| {
        json!({"name": "compute", "file": {"content": content, "encoding": "base64"}}).to_string()
    };
    put("compute", file("not base64!")).await;
    check(
        as_node(&api, "10.0.2.15", "/cloud-init/compute.yaml").await,
        500,
        &format!("group compute: stored file is not base64: {not_b64}"),
    );
    put("compute", file(&b64.encode([0xff, 0xfe]))).await;
    check(
        as_node(&api, "10.0.2.15", "/cloud-init/compute.yaml").await,
        500,
        "group compute: file is not UTF-8",
    );
    put("compute", "not json".into()).await;
    let why = serde_json::from_str::<skyport_metadata::GroupData>("not json").unwrap_err();
    check(
        call("GET", "/cloud-init/admin/groups/compute", None).await,
        500,
        &format!("stored CloudInitGroups/compute is unreadable: {why}"),
    );
}
