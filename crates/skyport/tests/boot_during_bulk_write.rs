//! A node's boot path never waits for an unrelated write: the local server (the wiring
//! `skyport serve` uses, with its background endpoint-history writer, over real HTTP on
//! 127.0.0.1 and the embedded store) answers boot scripts of known nodes while a bulk component
//! POST of the largest accepted body holds the store's single writer, and the fetches still
//! appear in the endpoint history afterwards.
//!
//! No latency is asserted (figures are in `skyport-bench boot-during-write`). The test waits
//! until the bulk write's transaction holds the database's write lock (seen from a separate
//! SQLite connection), then counts rounds of boot scripts answered before that write returns.
//! Before the history writer existed each known node's boot script wrote its history inline,
//! waited for the bulk transaction to commit, and no round could finish during it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyport_store::{Result, Store, Write};
use skyport_testkit::serve::{Served, largest_bulk_body};
use tokio::sync::watch;

/// Batches at least this large are "the bulk write" (a known node's history write is one op).
const BULK_OPS: usize = 10_000;
/// Known nodes, fetched concurrently in each round.
const NODES: usize = 16;
/// Rounds that must complete while the bulk write runs (the old code managed at most one).
const ROUNDS: usize = 3;

/// The embedded store, with a flag that is up while a bulk batch is being written. Observes
/// only; every call goes to the real store.
struct Observed {
    inner: Arc<dyn Store>,
    bulk: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl skyport_store::Decorator for Observed {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }
    async fn write_through(&self, ops: Vec<Write>) -> Result<()> {
        let bulk = ops.len() >= BULK_OPS;
        if bulk {
            self.bulk.send_replace(true);
        }
        let r = self.inner.write(ops).await;
        if bulk {
            self.bulk.send_replace(false);
        }
        r
    }
}

/// Whether some connection holds the database's write lock: a write transaction cannot begin.
fn write_locked(db: &std::path::Path) -> bool {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::ZERO).unwrap();
    match c.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {
            c.execute_batch("ROLLBACK").unwrap();
            false
        }
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            true
        }
        Err(e) => panic!("probing {}: {e}", db.display()),
    }
}

fn node(i: usize) -> String {
    format!("x1000c0s{i}b0n0")
}

fn mac(i: usize) -> String {
    format!("02:00:00:00:{:02x}:01", i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_scripts_are_answered_during_the_largest_bulk_write() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("skyport.db")).unwrap());
    let (bulk_tx, mut bulk) = watch::channel(false);
    let observed: Arc<dyn Store> = Arc::new(Observed {
        inner: raw,
        bulk: bulk_tx,
    });
    // As `skyport serve` stacks it.
    let store: Arc<dyn Store> = skyport_sync::ChangeLog::local(observed);
    let mut background = tokio::task::JoinSet::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let history = skyport::history(store.clone(), &mut background, cancel.clone());
    let blobs = Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
    let routes = skyport::api(
        store,
        skyport_ipxe::Settings::default(),
        blobs,
        "http://127.0.0.1:1/cloud-init".into(),
        Arc::new(skyport_sites::NoCredentials("none in this test")),
        None,
        Some(history.clone()),
    );
    let server = Served::start(skyport_http::app(routes)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();

    // Known nodes: component, NIC, boot parameters.
    let comps: Vec<Value> = (0..NODES)
        .map(|i| json!({"ID": node(i), "State": "Ready"}))
        .collect();
    let r = client
        .post(format!("{base}/hsm/v2/State/Components"))
        .json(&json!({"Components": comps}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    for i in 0..NODES {
        let r = client
            .post(format!("{base}/hsm/v2/Inventory/EthernetInterfaces"))
            .json(&json!({"MACAddress": mac(i), "ComponentID": node(i)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let hosts: Vec<String> = (0..NODES).map(node).collect();
    let r = client
        .put(format!("{base}/boot/v1/bootparameters"))
        .json(&json!({"hosts": hosts, "kernel": "http://10.0.0.1/vmlinuz", "params": "console=ttyS0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Components (no NIDs, like the hostile test's) up to the body limit.
    let (body, count) = largest_bulk_body(skyport_http::MAX_BODY_BYTES, 3000);
    let request = client
        .post(format!("{base}/hsm/v2/State/Components"))
        .header("content-type", "application/json")
        .body(body);
    let post = tokio::spawn(async move {
        let t = Instant::now();
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap(), t.elapsed())
    });
    tokio::time::timeout(Duration::from_secs(300), bulk.wait_for(|b| *b))
        .await
        .expect("the bulk POST never reached the store")
        .unwrap();
    // Its transaction has begun once another connection cannot take the write lock (nothing
    // else writes now: no boot script has been asked for yet).
    let db = dir.path().join("skyport.db");
    tokio::time::timeout(Duration::from_secs(300), async {
        while !write_locked(&db) && *bulk.borrow() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the bulk write never took the write lock");
    assert!(
        *bulk.borrow(),
        "the bulk write ended before its lock was seen"
    );

    // Rounds of every known node's boot script, while the bulk write runs (a few more than
    // needed, not thousands: the machine running the test has few cores to spare).
    let mut during = 0usize;
    let mut slowest = Duration::ZERO;
    while *bulk.borrow() && during < 2 * ROUNDS {
        let fetches = (0..NODES).map(|i| {
            let client = client.clone();
            let url = format!("{base}/boot/v1/bootscript?mac={}", mac(i));
            async move {
                let t = Instant::now();
                let text = client.get(url).send().await.unwrap().text().await.unwrap();
                (i, text, t.elapsed())
            }
        });
        for (i, text, took) in futures::future::join_all(fetches).await {
            assert!(
                text.starts_with("#!ipxe\nkernel") && text.contains(&node(i)),
                "{}: {text}",
                node(i)
            );
            slowest = slowest.max(took);
        }
        if *bulk.borrow() {
            during += 1;
        }
    }
    let (status, text, took) = post.await.unwrap();
    assert_eq!(status, 204, "{text}");
    eprintln!(
        "bulk POST of {count} components took {took:?}; {during} rounds of {NODES} boot scripts \
         answered during its write, slowest {slowest:?}"
    );
    assert!(
        during >= ROUNDS,
        "only {during} rounds of boot scripts were answered while the bulk write ran: \
         boot scripts waited for it"
    );
    let r = client
        .get(format!(
            "{base}/hsm/v2/State/Components/x{}c0s0b0n0",
            3000 + (count - 1) / 2048
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the bulk write is not all there");

    // Every node's fetch is in the endpoint history soon after.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{base}/boot/v1/endpoint-history?endpoint=bootscript");
        let r = client.get(url).send().await.unwrap();
        let h: Vec<Value> = r.json().await.unwrap();
        let seen = (0..NODES)
            .filter(|i| h.iter().any(|e| e["name"] == node(*i).as_str()))
            .count();
        if seen == NODES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {NODES} nodes in the endpoint history: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = history.stats();
    assert_eq!((s.dropped, s.failed), (0, 0), "{s:?}");

    // Orderly stop: the listener first, then the background writer, which ends on its own.
    server.stop().await.unwrap();
    cancel.cancel();
    while let Some(r) = background.join_next().await {
        r.unwrap();
    }
}
