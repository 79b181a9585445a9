//! meta-data YAML read back by PyYAML, the parser cloud-init itself uses: every string
//! (generated, with the characters YAML forbids or folds) must come back unchanged, and the
//! cluster-default and group values a node receives through the API must parse.
//!
//! PyYAML is the one in `$SKYPORT_INFRA_VENV` (cfn-lint depends on it; `scripts/install-test-tools`
//! installs it), else the system `python3`'s. Without either the tests fail: they are the
//! only check of what a node's cloud-init reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use skyport_testkit::app::Api;

fn python() -> String {
    let candidates = std::env::var("SKYPORT_INFRA_VENV")
        .map(|v| vec![format!("{v}/bin/python3")])
        .unwrap_or_default()
        .into_iter()
        .chain(["python3".to_string()]);
    for p in candidates {
        let ok = Command::new(&p)
            .args(["-c", "import yaml"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p;
        }
    }
    panic!("no python3 with PyYAML: run scripts/install-test-tools and set SKYPORT_INFRA_VENV");
}

/// Parses `yaml` with PyYAML's safe loader and returns it as JSON (ASCII-escaped, so nothing
/// is lost on the way back).
fn pyyaml(yaml: &str) -> Result<Value, String> {
    let mut child = Command::new(python())
        .args([
            "-c",
            "import sys, json, yaml\n\
             doc = yaml.safe_load(sys.stdin.buffer.read().decode('utf-8'))\n\
             sys.stdout.write(json.dumps(doc, ensure_ascii=True))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn strings_yaml_forbids_or_folds_come_back_unchanged() {
    // Found by hostile testing: PyYAML refused these raw, and U+0085 came back as a space.
    let hostile = [
        "node\u{7f}",
        "a\u{80}b",
        "\u{85}",
        "x\u{9f}",
        "\u{fffe}",
        "\u{ffff}",
        "\u{2028}\u{2029}",
        "\u{feff}bom",
        "tab\there",
        "nl\nnl",
        "\r",
        "\0",
        "quote\"back\\slash",
        "\u{1F600}",
        "yes",
        "~",
        "",
        " lead",
        "trail ",
        "# not a comment",
        "- item",
        "a: b",
        "{x}",
        "'",
    ];
    let mut map = serde_json::Map::new();
    for (i, s) in hostile.iter().enumerate() {
        map.insert(format!("k{i}"), json!(s));
        map.insert(format!("{s}#{i}"), json!(i));
    }
    let doc = Value::Object(map);
    let yaml = skyport_metadata::to_yaml(&doc).unwrap();
    assert_eq!(pyyaml(&yaml).unwrap(), doc, "{yaml}");
}

#[test]
fn any_string_round_trips_through_pyyaml() {
    // A property test with one Python run: 2,000 generated strings, weighted towards the
    // characters YAML treats specially, in one document (keys and values).
    let special = proptest::sample::select(vec![
        '\u{0}', '\u{9}', '\u{a}', '\u{d}', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
        '\u{a0}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{ffff}', '"', '\\', ':', '#',
        '-', '\'', ' ', '{', '[', '&', '*', '!', '|', '>', '%', '@', '`',
    ]);
    let ch = proptest::prop_oneof![special, proptest::char::any()];
    let strategy =
        proptest::collection::vec(ch, 0..12).prop_map(|v| v.into_iter().collect::<String>());
    let mut runner = TestRunner::deterministic();
    let mut map = serde_json::Map::new();
    for i in 0..2000 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        map.insert(format!("v{i}"), json!([s.clone(), {"nested": s.clone()}]));
        map.insert(format!("{s}\u{1}{i}"), json!(i));
    }
    let doc = Value::Object(map);
    let yaml = skyport_metadata::to_yaml(&doc).unwrap();
    match pyyaml(&yaml) {
        Ok(back) => assert_eq!(back, doc),
        Err(e) => panic!("PyYAML refused the document: {e}"),
    }
}

/// The inventory and cloud-init routers over one SQLite store in `dir`, with the node
/// x1000c0s0b0n0 (NID 7, `role` if any) at 10.0.2.15 in the group `compute`.
async fn api_with_node(dir: &tempfile::TempDir, role: Option<&str>) -> Api {
    let api = common::api(common::sqlite(dir));
    let mut node = json!({"ID": "x1000c0s0b0n0", "State": "Ready", "NID": 7});
    if let Some(role) = role {
        node["Role"] = json!(role);
    }
    common::seed_node(&api, node).await;
    api
}

#[tokio::test]
async fn a_nodes_meta_data_parses_whatever_the_admin_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let api = api_with_node(&dir, Some("Compute")).await;
    let d = json!({"cluster-name": "demo\u{7f}", "region": "lab\u{85}", "availability-zone": "z\u{fffe}",
                   "public-keys": ["ssh-ed25519 AAAA \u{9f}admin"]});
    let g = json!({"name": "compute", "description": "d\u{ffff}", "meta-data": {"k\u{80}": "v\u{2028}"}});
    let info = json!({"local-hostname": "node\u{7f}07", "hostname": "h\u{85}"});
    api.steps([
        (
            "POST",
            "/cloud-init/admin/cluster-defaults",
            "/admin/cluster-defaults",
            Some(d),
            201,
        ),
        (
            "POST",
            "/cloud-init/admin/groups",
            "/admin/groups",
            Some(g),
            201,
        ),
        (
            "PUT",
            "/cloud-init/admin/instance-info/x1000c0s0b0n0",
            "/admin/instance-info/{id}",
            Some(info),
            201,
        ),
    ])
    .await;
    let node = [("x-forwarded-for", "10.0.2.15")];
    let r = api
        .raw("GET", "/cloud-init/meta-data", &node, Vec::new())
        .await
        .expect(200);
    let yaml = String::from_utf8(r.raw).unwrap();
    let back = pyyaml(&yaml).unwrap_or_else(|e| panic!("PyYAML refused meta-data: {e}\n{yaml}"));
    assert_eq!(back["local-hostname"], "node\u{7f}07");
    assert_eq!(back["hostname"], "h\u{85}");
    assert_eq!(back["cluster-name"], "demo\u{7f}");
    let v1 = &back["instance_data"]["v1"];
    assert_eq!(v1["region"], "lab\u{85}");
    assert_eq!(v1["availability_zone"], "z\u{fffe}");
    assert_eq!(v1["public_keys"][0], "ssh-ed25519 AAAA \u{9f}admin");
    assert_eq!(
        v1["vendor_data"]["groups"]["compute"]["k\u{80}"], "v\u{2028}",
        "{yaml}"
    );
}

#[tokio::test]
async fn base_urls_are_one_line_urls() {
    let dir = tempfile::tempdir().unwrap();
    let api = api_with_node(&dir, None).await;
    // Found by hostile testing: a line break here gave every node's vendor-data `#include`
    // an attacker's line.
    for bad in [
        "http://a/ci\nhttp://evil/x",
        "http://a/ci\r\nx",
        "http://a/c i",
        "http://a/\u{85}",
        "http:///nohost",
        "ftp://a/ci",
        "http://a/\"x",
    ] {
        // 422, as Skyport has always answered an invalid base-url (upstream documents 400).
        let defaults = json!({"base-url": bad});
        let r = api.call(
            "POST",
            "/cloud-init/admin/cluster-defaults",
            "",
            Some(defaults),
        );
        assert_eq!(r.await.expect(422).body["status"], 422, "{bad:?}");
        let info = json!({"cloud-init-base-url": bad});
        let uri = "/cloud-init/admin/instance-info/x1000c0s0b0n0";
        api.call("PUT", uri, "", Some(info)).await.expect(422);
    }
    let good = json!({"base-url": "HTTPS://ci.example:8443/cloud-init/?a=b%20c"});
    api.call(
        "POST",
        "/cloud-init/admin/cluster-defaults",
        "/admin/cluster-defaults",
        Some(good),
    )
    .await
    .expect(201);
}
