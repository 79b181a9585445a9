//! The harness of the cloud-init API tests: the real inventory and cloud-init routers over one
//! store, answers checked against the upstream cloud-init spec, and the node they start from.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use skyport_inventory::Inventory;
use skyport_metadata::MetadataService;
use skyport_store::Store;
use skyport_testkit::app::{Api, Resp};
use skyport_testkit::spec::Spec;

/// The inventory and cloud-init routers over `store`.
pub fn api(store: Arc<dyn Store>) -> Api {
    let routes =
        skyport_inventory::router(Inventory::new(store.clone())).merge(skyport_metadata::router(
            MetadataService::new(store, "http://10.0.2.2:27779/cloud-init"),
        ));
    Api::new(
        skyport_http::app(routes),
        Spec::openchami("OpenCHAMI-cloud-init_docs_swagger.yaml").unwrap(),
    )
}

/// A SQLite store in `dir`.
pub fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("m.db")).unwrap())
}

/// The node `component` (an SMD component, ID x1000c0s0b0n0) with its NIC at 10.0.2.15, a
/// member of the inventory group `compute`.
pub async fn seed_node(api: &Api, component: Value) {
    skyport_testkit::seed::node(api, json!([component])).await;
    let group = json!({"label": "compute", "members": {"ids": ["x1000c0s0b0n0"]}});
    api.call("POST", "/hsm/v2/groups", "", Some(group))
        .await
        .expect(201);
}

/// `uri` asked by the node at `ip`, behind a proxy (as API Gateway forwards it).
pub async fn as_node(api: &Api, ip: &str, uri: &str) -> Resp {
    let forwarded = format!("{ip}, 10.9.9.9");
    api.raw("GET", uri, &[("x-forwarded-for", &forwarded)], Vec::new())
        .await
}
