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

#[tokio::test]
async fn replace_tables_is_all_or_nothing() {
    use skyport_store::IndexKey;
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("store.db")).unwrap();
    let (a, b, other) = (Table("a"), Table("b"), Table("other"));
    s.write(vec![
        Write::Put {
            table: a,
            record: Record::new("old", "{}").with_unique("nid", "1"),
            prev: None,
        },
        Write::Put {
            table: other,
            record: Record::new("kept", "{}"),
            prev: None,
        },
    ])
    .await
    .unwrap();
    let mut r = Record::new("new", "{\"n\":1}")
        .with_lookup("type", "Node")
        .with_unique("nid", "1");
    r.version = 7;
    s.replace_tables(&[a, b], vec![(a, r.clone()), (b, Record::new("x", "{}"))])
        .await
        .unwrap();
    assert!(s.get(a, "old").await.unwrap().is_none());
    assert_eq!(s.get(a, "new").await.unwrap().unwrap(), r);
    assert_eq!(
        s.get_unique(&IndexKey::new("nid", "1")).await.unwrap(),
        Some(("a".into(), "new".into()))
    );
    let by_type = s
        .list_all(a, Some(&IndexKey::new("type", "Node")))
        .await
        .unwrap();
    assert_eq!(by_type.len(), 1);
    assert!(s.get(other, "kept").await.unwrap().is_some());
    // A unique key held twice fails the whole replacement; the previous contents stay.
    let dup = vec![
        (a, Record::new("p", "{}").with_unique("nid", "2")),
        (b, Record::new("q", "{}").with_unique("nid", "2")),
    ];
    assert!(s.replace_tables(&[a, b], dup).await.is_err());
    assert_eq!(s.get(a, "new").await.unwrap().unwrap(), r);
    assert!(s.get(b, "x").await.unwrap().is_some());
    // Records of a table not being replaced are refused.
    assert!(
        s.replace_tables(&[a], vec![(other, Record::new("y", "{}"))])
            .await
            .is_err()
    );
}
