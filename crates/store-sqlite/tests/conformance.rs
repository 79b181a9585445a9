//! The shared conformance suite against the embedded SQLite store, plus durability across reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use skyport_store::{Record, Store, Table, Write};
use skyport_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap());
    let ran = skyport_store_conformance::run_all(store).await;
    assert!(ran.len() >= 14);
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.write(vec![Write::Put {
            table: Table("t"),
            record: Record::new("a", "kept").with_unique("u", "1"),
            prev: None,
        }])
        .await
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get(Table("t"), "a").await.unwrap().unwrap().body, "kept");
    assert!(
        s.get_unique(&skyport_store::IndexKey::new("u", "1"))
            .await
            .unwrap()
            .is_some()
    );
}

#[test]
fn unopenable_path_names_the_file() {
    let e = SqliteStore::open("/nonexistent-dir/x/store.db")
        .err()
        .expect("must fail");
    assert!(e.to_string().contains("/nonexistent-dir/x/store.db"), "{e}");
}
