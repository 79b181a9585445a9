//! The DynamoDB store under the service's contention semantics, which DynamoDB Local does not
//! emulate: through `skyport_testkit::dynamo_harness`, concurrent transactions sharing an item
//! conflict (`TransactionConflict`) and a share of calls is throttled, as on the real service.
//! Proves the harness behaves so, that the store turns each into the error callers handle (a
//! conflict is `StoreError::Conflict`, a throttle the SDK could not retry away is
//! `StoreError::Unavailable`), and that the conformance suite passes under both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use skyport_store::{Record, Store, StoreError, Table, Write};
use skyport_store_dynamo::DynamoStore;
use skyport_testkit::DynamoLocal;
use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig, HarnessStats};

const T: Table = Table("contention");

async fn store(endpoint: &str, table: &str, attempts: Option<u32>) -> Arc<DynamoStore> {
    let s = DynamoStore::new(
        skyport_testkit::dynamo_client(endpoint, attempts).await,
        table,
    );
    s.ensure_table().await.unwrap();
    Arc::new(s)
}

/// `writers` tasks × `each` batches; a batch puts one record of its own and, with `shared`,
/// also upserts one item every batch names (the shape of a per-installation counter).
/// Returns the errors.
async fn contend(
    store: Arc<DynamoStore>,
    writers: usize,
    each: usize,
    shared: bool,
) -> Vec<StoreError> {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            let mut errors = Vec::new();
            for i in 0..each {
                let mut ops = vec![Write::Put {
                    table: T,
                    record: Record::new(format!("w{w}-{i}"), "{}"),
                    prev: None,
                }];
                if shared {
                    ops.push(Write::Upsert {
                        table: T,
                        record: Record::new("hot", format!("\"{w}-{i}\"")),
                    });
                }
                if let Err(e) = store.write(ops).await {
                    errors.push(e);
                }
            }
            errors
        });
    }
    let mut errors = Vec::new();
    while let Some(r) = tasks.join_next().await {
        errors.extend(r.unwrap());
    }
    errors
}

/// DynamoDB Local, and the harness in front of it with `config`.
async fn local_behind_harness(config: HarnessConfig) -> (DynamoLocal, DynamoHarness) {
    let ddb = DynamoLocal::start().expect("DynamoDB Local");
    let harness = DynamoHarness::start(&ddb.endpoint(), config).await.unwrap();
    (ddb, harness)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_sharing_an_item_conflict_and_distinct_ones_do_not() {
    let (ddb, harness) = local_behind_harness(HarnessConfig::default()).await;

    // What the harness is for: Local lets every one of them through.
    let direct = contend(store(&ddb.endpoint(), "direct", None).await, 16, 10, true).await;
    assert!(direct.is_empty(), "DynamoDB Local reported {direct:?}");

    // The service refuses transactions on an item another transaction is committing.
    let errors = contend(
        store(&harness.endpoint(), "shared", None).await,
        16,
        10,
        true,
    )
    .await;
    let stats = harness.stats();
    assert!(
        HarnessStats::get(&stats.conflicts) > 0,
        "no transaction conflicted"
    );
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(
            matches!(e, StoreError::Conflict { table, id } if table == "contention" && id == "hot"),
            "a transaction conflict must be a retryable conflict on the shared item, not {e:?}"
        );
    }

    // Without the shared item, the same load meets no conflict at all.
    let before = HarnessStats::get(&stats.conflicts);
    let errors = contend(
        store(&harness.endpoint(), "distinct", None).await,
        16,
        10,
        false,
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(HarnessStats::get(&stats.conflicts), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_are_retried_by_the_sdk_or_are_unavailable() {
    let (_ddb, harness) = local_behind_harness(HarnessConfig {
        throttle_per_mille: 300,
        hold: Duration::ZERO,
        ..HarnessConfig::default()
    })
    .await;
    // The SDK's retries (three attempts) absorb most throttles...
    let retried = store(&harness.endpoint(), "retried", None).await;
    let errors = contend(retried, 4, 10, false).await;
    assert!(HarnessStats::get(&harness.stats().throttled) > 0);
    // ...and without retries every throttle is a failure the API can answer with a 503.
    let once = store(&harness.endpoint(), "once", Some(1)).await;
    let single = contend(once, 4, 10, false).await;
    assert!(!single.is_empty(), "no throttle reached the store");
    for e in errors.iter().chain(&single) {
        assert!(
            matches!(e, StoreError::Unavailable(m) if m.contains("Throttl") || m.contains("ProvisionedThroughputExceeded")),
            "a throttle must be Unavailable, not {e:?}"
        );
    }
    assert!(errors.len() < single.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_item_is_throttled_at_its_write_rate() {
    let (_ddb, harness) = local_behind_harness(HarnessConfig {
        item_writes_per_sec: Some(20),
        hold: Duration::ZERO,
        ..HarnessConfig::default()
    })
    .await;
    let s = store(&harness.endpoint(), "rate", Some(1)).await;
    let mut refused = 0;
    for i in 0..60 {
        let r = s
            .write(vec![Write::Upsert {
                table: T,
                record: Record::new("hot", format!("{i}")),
            }])
            .await;
        refused += usize::from(r.is_err());
    }
    // 60 writes well inside a second or two: at 20 a second, some must be refused.
    assert!(refused > 0, "the hot item took every write");
    assert!(HarnessStats::get(&harness.stats().throttled) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_with_conflicts_and_throttling() {
    let (_ddb, harness) = local_behind_harness(HarnessConfig::api_suite()).await;
    let s = store(&harness.endpoint(), "conformance-harness", None).await;
    let ran = skyport_store_conformance::run_all(s).await;
    assert!(ran.len() >= 14);
    assert!(HarnessStats::get(&harness.stats().throttled) > 0);
}
