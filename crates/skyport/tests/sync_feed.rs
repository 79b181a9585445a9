//! The change feed against its definition: after every step of an admin's day (nodes, NICs,
//! boot parameters by host, MAC, NID and tag, BootConfigurations and Node resources, groups, cloud-init data, images, NICs and NIDs moving
//! between nodes, subtrees reassigned between sites, deletes), each site's copy kept by the
//! change feed alone, and a fresh paged snapshot, both equal the site's share as
//! `skyport_sync::filter::for_site` defines it over whole tables. Sites a step does not concern
//! get a `304`. Runs on SQLite and on DynamoDB Local behind the conflict harness, where the
//! harness's record of every write also shows that writes to different nodes never meet on an
//! item (no shared item in every transaction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skyport_store::Store;
use tower::ServiceExt;

struct Cloud {
    app: axum::Router,
    raw: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    etag: Option<String>,
    body: Value,
    text: String,
}

impl Cloud {
    fn new(dir: tempfile::TempDir, raw: Arc<dyn Store>) -> Self {
        let store = skyport_sync::ChangeLog::local(raw.clone());
        let blobs =
            Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
        let app = skyport::api(
            store,
            skyport_ipxe::Settings::default(),
            blobs,
            "http://127.0.0.1:1/cloud-init".into(),
            Arc::new(skyport_sites::LocalCredentials::new(None)),
            None,
            None,
        );
        Cloud {
            app,
            raw,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, inm: Option<&str>) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = inm {
            b = b.header("if-none-match", t);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let r = self
            .app
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Resp {
            status,
            etag,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn ok(&self, method: &str, path: &str, body: Value) {
        let r = self.call(method, path, Some(body.clone()), None).await;
        assert!(
            r.status < 300,
            "{method} {path} {body}: {} {}",
            r.status,
            r.text
        );
    }

    /// The site's share by definition: every synced table read whole, filtered.
    async fn reference(&self, site: Option<&str>) -> Held {
        let mut tables = BTreeMap::new();
        for t in skyport_sync::SYNCED {
            tables.insert(*t, self.raw.list_all(*t, None).await.unwrap());
        }
        if let Some(s) = site {
            let owners = skyport_sites::Ownership::load(self.raw.as_ref())
                .await
                .unwrap();
            skyport_sync::filter::for_site(&mut tables, s, &owners);
        }
        let mut out = Held::new();
        for (t, recs) in tables {
            for r in recs {
                out.insert((t.name().to_string(), r.id.clone()), (r.version, r.body));
            }
        }
        out
    }
}

type Held = BTreeMap<(String, String), (u64, String)>;

fn q(site: Option<&str>) -> String {
    site.map(|s| format!("site={s}&")).unwrap_or_default()
}

fn take(held: &mut Held, tables: &Value) -> usize {
    let mut n = 0;
    for (t, recs) in tables.as_object().unwrap() {
        for r in recs.as_array().unwrap() {
            let key = (t.clone(), r["id"].as_str().unwrap().to_string());
            let v = (
                r["version"].as_u64().unwrap(),
                r["body"].as_str().unwrap().to_string(),
            );
            if held.insert(key, v.clone()).as_ref() != Some(&v) {
                n += 1;
            }
        }
    }
    n
}

/// An agent's copy, kept by the feed alone.
struct Copy {
    site: Option<&'static str>,
    cursor: String,
    tag: Option<String>,
    held: Held,
}

/// What one sync of a copy did.
#[derive(Debug, PartialEq, Eq)]
enum Synced {
    NotModified,
    /// Pages read and records changed.
    Changed(usize, usize),
}

async fn snapshot(c: &Cloud, site: Option<&str>) -> (String, Held) {
    let mut held = Held::new();
    let mut page: Option<String> = None;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &page {
            None => format!("/edge/v1/snapshot?{}", q(site)),
            Some(p) => format!("/edge/v1/snapshot?{}page={p}", q(site)),
        };
        let r = c.call("GET", &path, None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let cur = r.body["cursor"].as_str().unwrap().to_string();
        assert_eq!(
            *cursor.get_or_insert(cur.clone()),
            cur,
            "every page has one cursor"
        );
        take(&mut held, &r.body["tables"]);
        match r.body["next"].as_str() {
            Some(n) => page = Some(n.to_string()),
            None => return (cursor.unwrap(), held),
        }
    }
}

impl Copy {
    async fn new(c: &Cloud, site: Option<&'static str>) -> Copy {
        let (cursor, held) = snapshot(c, site).await;
        let mut copy = Copy {
            site,
            cursor,
            tag: None,
            held,
        };
        // The first page after a snapshot has no tag to match; from then on, nothing new is a
        // 304.
        assert!(matches!(copy.sync(c).await, Synced::Changed(1, 0)));
        copy
    }

    async fn sync(&mut self, c: &Cloud) -> Synced {
        let (mut pages, mut changed) = (0, 0);
        loop {
            let path = format!("/edge/v1/changes?{}after={}", q(self.site), self.cursor);
            let r = c.call("GET", &path, None, self.tag.as_deref()).await;
            if r.status == 304 {
                assert_eq!(r.etag, self.tag);
                return if pages == 0 {
                    Synced::NotModified
                } else {
                    Synced::Changed(pages, changed)
                };
            }
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            pages += 1;
            assert!(!r.body["resync"].as_bool().unwrap_or(false), "{}", r.text);
            changed += take(&mut self.held, &r.body["tables"]);
            for (t, ids) in r.body["deleted"].as_object().unwrap() {
                for id in ids.as_array().unwrap() {
                    let key = (t.clone(), id.as_str().unwrap().to_string());
                    changed += usize::from(self.held.remove(&key).is_some());
                }
            }
            self.cursor = r.body["cursor"].as_str().unwrap().to_string();
            self.tag = r.etag.clone();
            if !r.body["more"].as_bool().unwrap_or(false) {
                return Synced::Changed(pages, changed);
            }
        }
    }
}

fn node(x: &str, nid: i64) -> Value {
    json!({"Components": [{"ID": x, "State": "Ready", "Role": "Compute", "NID": nid,
        "Type": "Node", "Enabled": true}]})
}

fn nic(mac: &str, x: &str) -> Value {
    json!({"MACAddress": mac, "ComponentID": x})
}

/// Checks every copy against the definition after a step named `step`, and that a fresh
/// snapshot agrees; `quiet` copies must have had nothing to do (a 304).
async fn check(c: &Cloud, copies: &mut [Copy], step: &str, quiet: &[Option<&str>]) {
    for copy in copies.iter_mut() {
        let synced = copy.sync(c).await;
        let want = c.reference(copy.site).await;
        if quiet.contains(&copy.site) {
            assert_eq!(synced, Synced::NotModified, "{step}: {:?}", copy.site);
        }
        assert_eq!(
            copy.held, want,
            "{step}: the feed's copy of {:?}",
            copy.site
        );
        assert_eq!(
            copy.sync(c).await,
            Synced::NotModified,
            "{step}: {:?} polled again",
            copy.site
        );
        let (_, fresh) = snapshot(c, copy.site).await;
        assert_eq!(fresh, want, "{step}: a fresh snapshot of {:?}", copy.site);
    }
}

/// Sites east (cabinet x1000) and west (x2000), on a store whose placement index is complete
/// (as `skyport serve` makes it at start).
async fn two_sites(c: &Cloud) {
    skyport_sync::changes::backfill(c.raw.as_ref())
        .await
        .unwrap();
    for s in ["east", "west"] {
        c.ok("POST", "/edge/v1/sites", json!({"name": s})).await;
    }
    c.ok("PUT", "/edge/v1/sites/east/xnames/x1000", json!({}))
        .await;
    c.ok("PUT", "/edge/v1/sites/west/xnames/x2000", json!({}))
        .await;
}

async fn follows_the_reference(c: Cloud) {
    two_sites(&c).await;
    let mut copies = vec![
        Copy::new(&c, Some("east")).await,
        Copy::new(&c, Some("west")).await,
        Copy::new(&c, None).await,
    ];
    check(&c, &mut copies, "empty", &[Some("east"), Some("west")]).await;

    let comps = "/hsm/v2/State/Components";
    let nics = "/hsm/v2/Inventory/EthernetInterfaces";
    let params = "/boot/v1/bootparameters";
    for (x, nid) in [
        ("x1000c0s0b0n0", 1),
        ("x1000c0s0b0n1", 2),
        ("x2000c0s0b0n0", 3),
        ("x3000c0s0b0n0", 4),
    ] {
        c.ok("POST", comps, node(x, nid)).await;
    }
    check(&c, &mut copies, "components", &[]).await;
    for (mac, x) in [
        ("02:e0:00:00:00:01", "x1000c0s0b0n0"),
        ("02:e0:00:00:00:02", "x1000c0s0b0n1"),
        ("02:a0:00:00:00:01", "x2000c0s0b0n0"),
    ] {
        c.ok("POST", nics, nic(mac, x)).await;
    }
    check(&c, &mut copies, "interfaces", &[]).await;
    c.ok(
        "POST",
        params,
        json!({"hosts": ["x1000c0s0b0n0", "x9000c0s0b0n0"], "kernel": "http://k/a"}),
    )
    .await;
    // A MAC the inventory does not know yet: no site's, until its interface appears.
    c.ok(
        "POST",
        params,
        json!({"macs": ["02:a0:00:00:00:01", "02:ff:00:00:00:09"], "kernel": "http://k/m"}),
    )
    .await;
    c.ok(
        "POST",
        params,
        json!({"nids": [2, 3], "kernel": "http://k/n"}),
    )
    .await;
    check(&c, &mut copies, "boot parameters", &[]).await;
    c.ok("POST", nics, nic("02:ff:00:00:00:09", "x1000c0s0b0n1"))
        .await;
    check(
        &c,
        &mut copies,
        "an interface for a MAC with parameters",
        &[Some("west")],
    )
    .await;

    c.ok(
        "POST",
        "/hsm/v2/groups",
        json!({"label": "compute",
        "members": {"ids": ["x1000c0s0b0n0", "x2000c0s0b0n0"]}}),
    )
    .await;
    c.ok(
        "POST",
        "/cloud-init/admin/groups",
        json!({"name": "compute", "description": "all"}),
    )
    .await;
    c.ok(
        "POST",
        "/cloud-init/admin/groups",
        json!({"name": "nobody", "description": "none"}),
    )
    .await;
    c.ok(
        "PUT",
        "/cloud-init/admin/instance-info/x1000c0s0b0n1",
        json!({"id": "x1000c0s0b0n1", "local-hostname": "n1"}),
    )
    .await;
    check(&c, &mut copies, "groups and cloud-init", &[]).await;
    // OpenCHAMI v0.2's boot-service: a BootConfiguration selecting a group (any site's nodes),
    // Node resources (their node's site), and BSS's `Default` entry (every site).
    c.ok(
        "POST",
        "/boot-service/bootconfigurations",
        json!({"metadata": {"name": "compute"}, "spec": {"groups": ["compute"], "kernel": "http://k/g"}}),
    )
    .await;
    for (x, h) in [("x1000c0s0b0n1", "n1"), ("x2000c0s0b0n0", "e0")] {
        c.ok(
            "POST",
            "/boot-service/nodes",
            json!({"spec": {"xname": x, "hostname": h}}),
        )
        .await;
    }
    c.ok(
        "POST",
        params,
        json!({"hosts": ["Default"], "kernel": "http://k/d"}),
    )
    .await;
    check(
        &c,
        &mut copies,
        "boot-service resources and BSS's Default",
        &[],
    )
    .await;
    c.ok(
        "POST",
        "/cloud-init/admin/cluster-defaults",
        json!({"cluster-name": "demo"}),
    )
    .await;
    c.ok(
        "POST",
        "/images/v1/images",
        json!({"name": "k", "version": "1", "arch": "x86_64",
        "kind": "kernel", "size": 3, "sha256": "a".repeat(64)}),
    )
    .await;
    check(&c, &mut copies, "installation-wide data", &[]).await;

    // One node's boot parameters changed: only its site (and the whole installation) hear.
    c.ok(
        "PUT",
        params,
        json!({"hosts": ["x1000c0s0b0n0"], "kernel": "http://k/b"}),
    )
    .await;
    check(&c, &mut copies, "one node's parameters", &[Some("west")]).await;

    // A NIC moves from a west node to an east node: its MAC's parameters move with it.
    c.ok(
        "PATCH",
        &format!("{nics}/02a000000001"),
        json!({"ComponentID": "x1000c0s0b0n1"}),
    )
    .await;
    check(&c, &mut copies, "an interface moved between sites", &[]).await;
    // A NID handed to another node.
    c.ok(
        "PATCH",
        &format!("{comps}/x1000c0s0b0n1"),
        json!({"NID": 7}),
    )
    .await;
    c.ok(
        "PATCH",
        &format!("{comps}/x2000c0s0b0n0"),
        json!({"NID": 2}),
    )
    .await;
    check(&c, &mut copies, "a NID handed over", &[]).await;

    // A subtree lent to the other site, and given back.
    c.ok("PUT", "/edge/v1/sites/west/xnames/x1000c0s0b0", json!({}))
        .await;
    check(&c, &mut copies, "a subtree reassigned", &[]).await;
    let r = c
        .call(
            "DELETE",
            "/edge/v1/sites/west/xnames/x1000c0s0b0",
            None,
            None,
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    check(&c, &mut copies, "a subtree given back", &[]).await;
    // An unowned cabinet assigned: its node and what follows it appear at once.
    c.ok("PUT", "/edge/v1/sites/west/xnames/x3000", json!({}))
        .await;
    check(&c, &mut copies, "a cabinet assigned", &[Some("east")]).await;

    // Deletes.
    for path in [
        "/hsm/v2/groups/compute/members/x2000c0s0b0n0".to_string(),
        format!("{comps}/x2000c0s0b0n0"),
        format!("{nics}/02e000000001"),
        "/cloud-init/admin/groups/compute".to_string(),
    ] {
        let r = c.call("DELETE", &path, None, None).await;
        assert!(r.status < 300, "{path}: {}", r.text);
    }
    check(&c, &mut copies, "deletes", &[]).await;
}

#[tokio::test]
async fn feed_follows_the_reference_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let raw = Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("db")).unwrap());
    follows_the_reference(Cloud::new(dir, raw)).await;
}

#[tokio::test]
async fn feed_follows_the_reference_dynamodb() {
    let (_ddb, _harness, raw) = dynamo(false).await;
    let dir = tempfile::tempdir().unwrap();
    follows_the_reference(Cloud::new(dir, raw)).await;
}

/// DynamoDB Local behind the conflict harness (recording writes or not), and a store on it.
async fn dynamo(
    record: bool,
) -> (
    skyport_testkit::DynamoLocal,
    skyport_testkit::dynamo_harness::DynamoHarness,
    Arc<dyn Store>,
) {
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let harness = skyport_testkit::dynamo_harness::DynamoHarness::start(
        &ddb.endpoint(),
        skyport_testkit::dynamo_harness::HarnessConfig {
            record_writes: record,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let client = skyport_testkit::dynamo_client(&harness.endpoint(), None).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "feed");
    store.ensure_table().await.unwrap();
    (ddb, harness, Arc::new(store))
}

/// Writes to different nodes of one site, and of two sites, never name the same DynamoDB item:
/// nothing serializes them (the old design rewrote one generation item in every batch).
#[tokio::test]
async fn writes_to_different_nodes_share_no_item() {
    let (_ddb, harness, raw) = dynamo(true).await;
    let dir = tempfile::tempdir().unwrap();
    let c = Cloud::new(dir, raw);
    two_sites(&c).await;
    let nodes = ["x1000c0s0b0n0", "x1000c0s1b0n0", "x2000c0s0b0n0"];
    for (i, x) in nodes.iter().enumerate() {
        c.ok("POST", "/hsm/v2/State/Components", node(x, 10 + i as i64))
            .await;
        c.ok(
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces",
            nic(&format!("02:00:00:00:00:0{i}"), x),
        )
        .await;
    }
    harness.write_log();
    // The writes that happen all day, once per node: parameters, state, a NIC's address.
    let mut items: Vec<BTreeSet<String>> = Vec::new();
    for (i, x) in nodes.iter().enumerate() {
        c.ok(
            "PUT",
            "/boot/v1/bootparameters",
            json!({"hosts": [x], "kernel": format!("http://k/{i}")}),
        )
        .await;
        c.ok(
            "PATCH",
            &format!("/hsm/v2/State/Components/{x}"),
            json!({"State": "On"}),
        )
        .await;
        c.ok(
            "PATCH",
            &format!("/hsm/v2/Inventory/EthernetInterfaces/02000000000{i}"),
            json!({"IPAddresses": [{"IPAddress": format!("10.0.0.{i}")}]}),
        )
        .await;
        let log = harness.write_log();
        assert!(!log.is_empty());
        items.push(log.into_iter().flatten().collect());
    }
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            let shared: Vec<&String> = a.intersection(b).collect();
            assert!(
                shared.is_empty(),
                "writes to different nodes share {shared:?}"
            );
        }
    }
    // Each node's writes did log their change (else the test would prove nothing).
    for (x, its) in nodes.iter().zip(&items) {
        assert!(
            its.iter().any(|k| k.starts_with("r#SyncChanges ")),
            "{x}: {its:?}"
        );
    }
}

/// An installation from before the placement index: its records were stored without index
/// items. Site snapshots still hold every record of the site (reading the tables whole) until
/// `POST /edge/v1/reindex` has run, and the same records after it (through the index).
#[tokio::test]
async fn records_from_before_the_index_reach_their_site() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("db")).unwrap());
    // The old installation: the same services, no change log.
    let blobs = Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
    let old = Cloud {
        app: skyport::api(
            raw.clone(),
            skyport_ipxe::Settings::default(),
            blobs,
            "http://127.0.0.1:1/cloud-init".into(),
            Arc::new(skyport_sites::LocalCredentials::new(None)),
            None,
            None,
        ),
        raw: raw.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    old.ok("POST", "/edge/v1/sites", json!({"name": "east"}))
        .await;
    old.ok("PUT", "/edge/v1/sites/east/xnames/x1000", json!({}))
        .await;
    old.ok("POST", "/hsm/v2/State/Components", node("x1000c0s0b0n0", 1))
        .await;
    old.ok(
        "POST",
        "/hsm/v2/Inventory/EthernetInterfaces",
        nic("02:e0:00:00:00:01", "x1000c0s0b0n0"),
    )
    .await;
    old.ok(
        "POST",
        "/boot/v1/bootparameters",
        json!({"macs": ["02:e0:00:00:00:01"], "kernel": "http://k/a"}),
    )
    .await;
    let c = Cloud::new(dir, raw);
    let want = c.reference(Some("east")).await;
    assert_eq!(want.len(), 3, "{want:?}");
    let (_, before) = snapshot(&c, Some("east")).await;
    assert_eq!(before, want);
    let r = c.call("POST", "/edge/v1/reindex", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["indexed"].as_u64().unwrap() >= 3, "{}", r.text);
    let (_, after) = snapshot(&c, Some("east")).await;
    assert_eq!(after, want);
}
