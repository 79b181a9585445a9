//! The shared conformance suite against Amazon's DynamoDB Local, started and stopped here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use skyport_store::{IndexKey, PageRequest, Record, Store, Table, Write};
use skyport_store_dynamo::DynamoStore;
use skyport_testkit::DynamoLocal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_local_passes_the_conformance_suite() {
    let ddb = DynamoLocal::start().expect("DynamoDB Local");
    let store = DynamoStore::new(
        skyport_testkit::dynamo_client(&ddb.endpoint(), None).await,
        "skyport-conformance",
    );
    store.ensure_table().await.unwrap();
    store.ensure_table().await.unwrap(); // idempotent
    let store = Arc::new(store);
    let ran = skyport_store_conformance::run_all(store.clone()).await;
    assert!(ran.len() >= 14);

    // The key design's promises, counted: one call for a single read, one Query per page.
    let t = Table("calls");
    store
        .write(vec![Write::Put {
            table: t,
            record: Record::new("a", "{}").with_lookup("type", "Node"),
            prev: None,
        }])
        .await
        .unwrap();
    let calls = store.calls();
    let before = calls.total();
    store.get(t, "a").await.unwrap().unwrap();
    assert_eq!(
        calls.total() - before,
        1,
        "a single-record read is one GetItem"
    );
    let before = calls.total();
    let p = store
        .list(
            t,
            Some(&IndexKey::new("type", "Node")),
            PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(p.records.len(), 1);
    assert_eq!(calls.total() - before, 1, "a lookup page is one Query");
}
