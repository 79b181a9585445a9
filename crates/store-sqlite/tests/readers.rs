//! A long read (a bulk request looking up 100,000+ ids) does not hold up the short reads made
//! meanwhile (a node's boot script): no reader connection is kept by it for its whole length,
//! and a short read takes whichever connection is free.
//!
//! Before, the long read kept one of the four connections throughout and reads were dealt to
//! connections in turn, so every fourth short read waited for the whole long read. The bound
//! below is relative (a third of the long read's own time), so a slow machine slows both sides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use skyport_store::{Record, Store, Table, Write};
use skyport_store_sqlite::SqliteStore;

const T: Table = Table("Things");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reads_do_not_wait_for_a_long_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
    store
        .write(vec![Write::Put {
            table: T,
            record: Record::new("a", "{}"),
            prev: None,
        }])
        .await
        .unwrap();
    // Ids that do not exist: each is still one lookup.
    let ids: Vec<String> = (0..150_000).map(|i| format!("missing-{i:06}")).collect();
    let long = {
        let store = store.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let found = store.get_many(T, &ids).await.unwrap();
            assert!(found.is_empty());
            t.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..8 {
        let t = Instant::now();
        assert!(store.get(T, "a").await.unwrap().is_some());
        slowest = slowest.max(t.elapsed());
    }
    let long = long.await.unwrap();
    assert!(
        slowest < long / 3,
        "a short read took {slowest:?} while a long read took {long:?}: it waited for it"
    );
}
