//! Endpoint history (BSS's `GET /boot/v1/endpoint-history`): when each node last fetched its boot
//! script or its user-data, and how that fact gets to the store without holding up the fetch.
//!
//! Recording is a write, and on the embedded store every write queues behind the single writer:
//! a 130,000-component bulk POST holds it for seconds, and a booting node must not wait for
//! that. A [`History`] therefore works in one of two modes:
//!
//! - **queued** ([`History::spawn`], the local server): the fetch notes the access in a bounded
//!   set of pending accesses, one entry per node and endpoint (a node that retries updates its
//!   entry instead of taking another place), and is answered without waiting. One background
//!   task takes everything pending and writes it in batches; what arrives while a write waits
//!   for the store goes out in the next batch. It is best effort: an access that would be a new
//!   entry in a full set is dropped (counted in [`HistoryStats::dropped`] and logged), and a
//!   failed write is logged and counted, not retried into an unbounded backlog. The task
//!   belongs to the caller's `JoinSet`; when the caller's `CancellationToken` is cancelled it
//!   writes what is pending, after which new accesses are counted as dropped.
//! - **inline** ([`History::inline`], the default): the access is written before the answer,
//!   as one unconditional upsert. Right for DynamoDB (a `PutItem` waits for no other writer)
//!   and for the Lambda functions, whose execution environment is frozen as soon as the
//!   response is sent, so a background writer would sit frozen with its pending accesses and
//!   lose them when the environment is reclaimed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use skyport_store::{Record, Store, Write};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{ENDPOINT_HISTORY, EndpointAccess, now_epoch};

/// Sizes of the queued mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Most pending accesses (distinct node and endpoint pairs); beyond it, new ones are
    /// dropped.
    pub queue: usize,
    /// Upserts per store write (one transaction on SQLite, split by the DynamoDB backend).
    pub chunk: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        // 20,000 pending accesses: every node of a large site booting (bootscript and
        // user-data) while the store is busy; about 3 MiB at most.
        HistoryConfig {
            queue: 20_000,
            chunk: 500,
        }
    }
}

/// What happened to the accesses given to a [`History`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Accepted (pending, merged into a pending access of the same node, or written inline).
    pub recorded: u64,
    /// Records written (after merging, so at most `recorded`).
    pub written: u64,
    /// Not kept: the pending set was full, or the writer had stopped.
    pub dropped: u64,
    /// Records whose write failed (logged).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

#[derive(Default)]
struct Pending {
    /// By record id (`<xname>#<endpoint>`).
    accesses: HashMap<String, EndpointAccess>,
    /// Set once the writer has taken its last batch.
    closed: bool,
}

struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
    cap: usize,
}

#[derive(Clone)]
enum Mode {
    Inline(Arc<dyn Store>),
    Queued(Arc<Queue>),
}

/// Where a service records node accesses. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct History {
    mode: Mode,
    counters: Arc<Counters>,
}

impl History {
    /// Writes each access before the answer is sent (see the module docs for when).
    pub fn inline(store: Arc<dyn Store>) -> Self {
        History {
            mode: Mode::Inline(store),
            counters: Arc::default(),
        }
    }

    /// Keeps accesses pending and writes them from a task spawned into `tasks`, which runs
    /// until `cancel` is cancelled and then writes what is pending. Needs a Tokio runtime.
    pub fn spawn(
        store: Arc<dyn Store>,
        cfg: HistoryConfig,
        tasks: &mut JoinSet<()>,
        cancel: CancellationToken,
    ) -> Self {
        let queue = Arc::new(Queue {
            pending: Mutex::default(),
            wake: Notify::new(),
            cap: cfg.queue.max(1),
        });
        let counters = Arc::new(Counters::default());
        tasks.spawn(writer(
            store,
            queue.clone(),
            cfg.chunk.max(1),
            cancel,
            counters.clone(),
        ));
        History {
            mode: Mode::Queued(queue),
            counters,
        }
    }

    /// Records that node `name` fetched `endpoint` (`bootscript`, `user-data`) now. In the
    /// queued mode this never waits for the store; in the inline mode a failure is logged.
    /// Never fails: the node gets its answer either way.
    pub async fn record(&self, name: &str, endpoint: &str) {
        let entry = EndpointAccess {
            name: name.to_string(),
            endpoint: endpoint.to_string(),
            last_epoch: now_epoch(),
        };
        match &self.mode {
            Mode::Inline(store) => {
                self.counters.recorded.fetch_add(1, Ordering::Relaxed);
                write_coalesced(store.as_ref(), vec![entry], 1, &self.counters).await;
            }
            Mode::Queued(q) => match q.offer(entry) {
                Ok(()) => {
                    self.counters.recorded.fetch_add(1, Ordering::Relaxed);
                    q.wake.notify_one();
                }
                Err(why) => {
                    let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // A storm that overflows the set would otherwise log once per request.
                    if n.is_power_of_two() {
                        tracing::warn!(
                            xname = name,
                            endpoint,
                            dropped_total = n,
                            "endpoint history not recorded: {why}"
                        );
                    }
                }
            },
        }
    }

    pub fn stats(&self) -> HistoryStats {
        let c = &self.counters;
        HistoryStats {
            recorded: c.recorded.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Accesses waiting for the writer (0 in the inline mode).
    pub fn pending(&self) -> usize {
        match &self.mode {
            Mode::Queued(q) => q.pending.lock().map_or(0, |p| p.accesses.len()),
            Mode::Inline(_) => 0,
        }
    }
}

impl Queue {
    fn offer(&self, e: EndpointAccess) -> Result<(), &'static str> {
        let mut p = self
            .pending
            .lock()
            .map_err(|_| "the pending set is poisoned")?;
        if p.closed {
            return Err("the writer has stopped");
        }
        let id = format!("{}#{}", e.name, e.endpoint);
        let full = p.accesses.len() >= self.cap;
        match p.accesses.get_mut(&id) {
            Some(cur) => {
                cur.last_epoch = cur.last_epoch.max(e.last_epoch);
                Ok(())
            }
            None if full => Err("too many accesses are waiting to be written"),
            None => {
                p.accesses.insert(id, e);
                Ok(())
            }
        }
    }

    /// Everything pending; with `close`, the last batch (later offers are refused).
    fn take(&self, close: bool) -> Vec<EndpointAccess> {
        match self.pending.lock() {
            Ok(mut p) => {
                p.closed |= close;
                std::mem::take(&mut p.accesses).into_values().collect()
            }
            Err(_) => Vec::new(),
        }
    }
}

async fn writer(
    store: Arc<dyn Store>,
    queue: Arc<Queue>,
    chunk: usize,
    cancel: CancellationToken,
    counters: Arc<Counters>,
) {
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = queue.wake.notified() => {}
        }
        // While this write waits for the store (behind a bulk write, say), new accesses pile
        // up in the pending set and go out together in the next round.
        let batch = queue.take(false);
        write_coalesced(store.as_ref(), batch, chunk, &counters).await;
    }
    let last = queue.take(true);
    let n = last.len();
    write_coalesced(store.as_ref(), last, chunk, &counters).await;
    tracing::debug!(
        flushed = n,
        "endpoint history writer stopped after writing what was pending"
    );
}

/// Writes the newest access per node and endpoint in `entries`, `chunk` upserts per write.
async fn write_coalesced(
    store: &dyn Store,
    entries: Vec<EndpointAccess>,
    chunk: usize,
    counters: &Counters,
) {
    let mut newest: BTreeMap<String, EndpointAccess> = BTreeMap::new();
    for e in entries {
        let id = format!("{}#{}", e.name, e.endpoint);
        if newest.get(&id).is_none_or(|o| o.last_epoch <= e.last_epoch) {
            newest.insert(id, e);
        }
    }
    let mut ops = Vec::with_capacity(newest.len());
    for (id, e) in &newest {
        match serde_json::to_string(e) {
            Ok(body) => ops.push(Write::Upsert {
                table: ENDPOINT_HISTORY,
                record: Record::new(id.clone(), body),
            }),
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(xname = %e.name, endpoint = %e.endpoint, error = %err,
                    "could not encode endpoint access");
            }
        }
    }
    for part in ops.chunks(chunk) {
        let n = part.len() as u64;
        match store.write(part.to_vec()).await {
            Ok(()) => {
                counters.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(records = n, first = part.first().map(Write::id), error = %e,
                    "could not record endpoint access");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use skyport_store::{Result as StoreResult, StoreError};
    use tokio::sync::Semaphore;

    use super::*;

    /// A store whose writes wait until the test opens the gate: emulates the single SQLite
    /// writer held by a long bulk write. Reads and the write itself go to a real SQLite store.
    struct Gated {
        inner: Arc<dyn Store>,
        gate: Arc<Semaphore>,
        writes: AtomicU64,
    }

    #[async_trait::async_trait]
    impl skyport_store::Decorator for Gated {
        fn inner(&self) -> &dyn Store {
            self.inner.as_ref()
        }
        async fn write_through(&self, ops: Vec<Write>) -> StoreResult<()> {
            let _permit = self.gate.acquire().await.map_err(StoreError::unavailable)?;
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write(ops).await
        }
    }

    fn gated() -> (tempfile::TempDir, Arc<Gated>) {
        let (dir, inner) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let g = Arc::new(Gated {
            inner,
            gate: Arc::new(Semaphore::new(0)),
            writes: AtomicU64::new(0),
        });
        (dir, g)
    }

    /// A queued history over `store` with default settings, its task and its cancel token.
    fn spawned(store: Arc<dyn Store>) -> (History, JoinSet<()>, CancellationToken) {
        let mut tasks = JoinSet::new();
        let cancel = CancellationToken::new();
        let h = History::spawn(store, HistoryConfig::default(), &mut tasks, cancel.clone());
        (h, tasks, cancel)
    }

    async fn stored(store: &dyn Store, id: &str) -> Option<EndpointAccess> {
        store
            .get(ENDPOINT_HISTORY, id)
            .await
            .unwrap()
            .map(|r| serde_json::from_str(&r.body).unwrap())
    }

    #[tokio::test]
    async fn a_held_writer_does_not_hold_up_recording_and_shutdown_flushes_the_queue() {
        let (_dir, store) = gated();
        let (h, mut tasks, cancel) = spawned(store.clone());
        // The writer is stuck (gate closed); recording must still return at once. The bound
        // is generous: a recording that waited for the writer would never return.
        for i in 0..50 {
            tokio::time::timeout(
                Duration::from_secs(10),
                h.record(&format!("x1000c0s0b0n{i}"), "bootscript"),
            )
            .await
            .expect("recording waited for the store's writer");
        }
        h.record("x1000c0s0b0n0", "user-data").await;
        assert_eq!(h.stats().recorded, 51);
        assert_eq!(h.stats().dropped, 0);
        // Orderly shutdown: cancel, let the writer through, and everything queued is written.
        cancel.cancel();
        store.gate.add_permits(1_000);
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        for i in 0..50 {
            let e = stored(store.as_ref(), &format!("x1000c0s0b0n{i}#bootscript"))
                .await
                .expect("queued access lost at shutdown");
            assert_eq!(e.endpoint, "bootscript");
        }
        assert!(
            stored(store.as_ref(), "x1000c0s0b0n0#user-data")
                .await
                .is_some()
        );
        let s = h.stats();
        assert_eq!((s.written, s.dropped, s.failed), (51, 0, 0), "{s:?}");
        // After shutdown nothing is accepted, and that is counted rather than lost silently.
        h.record("x1000c0s0b0n0", "bootscript").await;
        assert_eq!(h.stats().dropped, 1);
    }

    #[tokio::test]
    async fn a_full_set_drops_new_nodes_and_counts_them_but_merges_repeats() {
        let (_dir, store) = gated();
        let mut tasks = JoinSet::new();
        let cancel = CancellationToken::new();
        let cfg = HistoryConfig { queue: 4, chunk: 2 };
        let h = History::spawn(store.clone(), cfg, &mut tasks, cancel.clone());
        // The writer takes the first access and then waits at the closed gate.
        h.record("x1000c0s0b0n0", "bootscript").await;
        tokio::time::timeout(Duration::from_secs(10), async {
            while h.pending() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the writer never took the first access");
        // Four nodes fill the set; two more are dropped; a node already pending that fetches
        // again (a retrying node, a storm) takes no new place and is never dropped.
        for n in 1..=6 {
            h.record(&format!("x1000c0s0b0n{n}"), "bootscript").await;
        }
        for _ in 0..100 {
            h.record("x1000c0s0b0n1", "bootscript").await;
        }
        let s = h.stats();
        assert_eq!((s.recorded, s.dropped), (105, 2), "{s:?}");
        assert_eq!(h.pending(), 4);
        cancel.cancel();
        store.gate.add_permits(1_000);
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        // n0 in the first write, then n1..n4 in two chunks of two.
        let s = h.stats();
        assert_eq!((s.written, s.failed), (5, 0), "{s:?}");
        assert_eq!(store.writes.load(Ordering::Relaxed), 3);
        for n in 0..=4 {
            let id = format!("x1000c0s0b0n{n}#bootscript");
            assert!(stored(store.as_ref(), &id).await.is_some(), "{id}");
        }
        for n in 5..=6 {
            let id = format!("x1000c0s0b0n{n}#bootscript");
            assert!(stored(store.as_ref(), &id).await.is_none(), "{id}");
        }
    }

    /// The boot service over a store whose writer is held (as by a long bulk write): a known
    /// node's boot script is answered with queued history, and would never be with inline
    /// history (the behaviour before the queue existed).
    #[tokio::test]
    async fn a_known_node_boots_while_the_writer_is_held() {
        let (_dir, store) = gated();
        let inner = store.inner.clone();
        let inv = skyport_inventory::Inventory::new(inner.clone());
        let comps: Vec<skyport_wire::ComponentIn> =
            serde_json::from_value(serde_json::json!([{"ID": "x1000c0s0b0n0", "State": "Ready"}]))
                .unwrap();
        inv.post_components(&comps, false).await.unwrap();
        let nic: skyport_wire::EthernetInterfaceIn = serde_json::from_value(
            serde_json::json!({"MACAddress": "52:54:00:12:34:56", "ComponentID": "x1000c0s0b0n0"}),
        )
        .unwrap();
        inv.post_interface(&nic).await.unwrap();
        let settings = skyport_ipxe::Settings::default;
        crate::BootService::new(inner, settings())
            .set(&crate::params::BootParams {
                hosts: vec!["x1000c0s0b0n0".into()],
                kernel: "http://10.0.0.1/vmlinuz".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let req = crate::ScriptRequest {
            mac: Some("52:54:00:12:34:56".into()),
            ..Default::default()
        };

        let (history, mut tasks, cancel) = spawned(store.clone());
        let queued = crate::BootService::new(store.clone(), settings()).with_history(history);
        let out = tokio::time::timeout(Duration::from_secs(10), queued.bootscript(&req))
            .await
            .expect("the boot script waited for the store's writer")
            .unwrap();
        assert!(
            matches!(&out, crate::ScriptOutcome::Known { xname: Some(x), .. } if x == "x1000c0s0b0n0"),
            "{out:?}"
        );

        // Inline history waits for the writer, so the same request does not complete while the
        // writer is held (it cannot: the gate is closed until after this check).
        let inline = crate::BootService::new(store.clone(), settings());
        let waited =
            tokio::time::timeout(Duration::from_millis(200), inline.bootscript(&req)).await;
        assert!(
            waited.is_err(),
            "inline history did not wait for the writer"
        );

        cancel.cancel();
        store.gate.add_permits(1_000);
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        assert!(
            stored(store.as_ref(), "x1000c0s0b0n0#bootscript")
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn inline_writes_before_returning() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let h = History::inline(store.clone());
        h.record("x1000c0s0b0n0", "bootscript").await;
        assert!(
            stored(store.as_ref(), "x1000c0s0b0n0#bootscript")
                .await
                .is_some()
        );
        assert_eq!(h.stats().written, 1);
    }
}
