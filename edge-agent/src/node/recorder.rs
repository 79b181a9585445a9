//! The edge half of the boot flight recorder: the DHCP and TFTP servers and the node-facing
//! routes tell it what a node did ([`Recorder::event`]); it names the node (its MAC from the
//! request, or from the address it came from: learned from DHCP and boot script requests, else
//! the kernel's neighbour table; its xname from the inventory), and a supervised task stores
//! the events in batches with `skyport_boot::flight` and queues them in the boot event outbox
//! ([`OUTBOX`]) for the next report to the cloud.
//!
//! Everything is bounded: the queue to the writer (events beyond it are counted and dropped),
//! the learned addresses, the nodes the inventory does not know that get a timeline, the outbox
//! (the oldest events go first) and each node's kept history.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use skyport_boot::flight::{self, BootEvent, Stage};
use skyport_model::Mac;
use skyport_store::{Record, Store, StoreError, Table, Write};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Boot events not yet reported to the cloud, ids in time order (`<ms>-<seq>`).
pub const OUTBOX: Table = Table("EdgeBootOutbox");
/// Most events waiting for the cloud; beyond, the oldest are dropped.
pub const OUTBOX_MAX: usize = 100_000;
/// Events waiting for the writer.
const QUEUE: usize = 65_536;
/// Addresses remembered for naming nodes, and nodes unknown to the inventory given a timeline.
const LEARNED_MAX: usize = 65_536;
const UNKNOWN_NODES_MAX: usize = 10_000;

pub struct Recorder {
    tx: mpsc::Sender<BootEvent>,
    rx: tokio::sync::Mutex<mpsc::Receiver<BootEvent>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    learned: Mutex<HashMap<Ipv4Addr, Mac>>,
    /// The inventory: MAC → xname, and reserved address → MAC.
    hosts: RwLock<Arc<Names>>,
    /// Unknown MACs given a timeline this hour (the hour, the MACs).
    unknown: Mutex<(i64, HashSet<Mac>)>,
    seq: AtomicU64,
    /// Where the kernel's neighbour table is read (a test points it elsewhere).
    arp: std::path::PathBuf,
}

/// How the recorder names nodes.
#[derive(Default)]
pub struct Names {
    pub xnames: HashMap<Mac, String>,
    pub reserved: HashMap<Ipv4Addr, Mac>,
}

/// The MAC the kernel's neighbour table holds for `ip` (`/proc/net/arp`: address, hardware
/// type, flags, MAC, mask, device; flag 0x2 is a complete entry).
pub fn neighbour(table: &str, ip: Ipv4Addr) -> Option<Mac> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (addr, flags, mac) = (f.first()?, f.get(2)?, f.get(3)?);
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        (addr.parse::<Ipv4Addr>().ok()? == ip && flags & 2 != 0)
            .then(|| Mac::parse(mac).ok())
            .flatten()
    })
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        Arc::new(Recorder {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            store,
            metrics,
            learned: Mutex::new(HashMap::new()),
            hosts: RwLock::new(Arc::new(Names::default())),
            unknown: Mutex::new((0, HashSet::new())),
            seq: AtomicU64::new(0),
            arp: "/proc/net/arp".into(),
        })
    }

    /// Puts a new view of the inventory in service.
    pub fn set_names(&self, n: Names) {
        if let Ok(mut h) = self.hosts.write() {
            *h = Arc::new(n);
        }
    }

    /// Remembers that `ip` is `mac` (a DHCP request or lease, a boot script asked by MAC).
    pub fn learn(&self, ip: Ipv4Addr, mac: Mac) {
        if ip.is_unspecified() {
            return;
        }
        if let Ok(mut l) = self.learned.lock() {
            if l.len() >= LEARNED_MAX && !l.contains_key(&ip) {
                l.clear();
            }
            l.insert(ip, mac);
        }
    }

    fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
        // The inventory's reservation first: what a LAN host claims cannot override it.
        if let Some(m) = self
            .hosts
            .read()
            .ok()
            .and_then(|h| h.reserved.get(&ip).copied())
        {
            return Some(m);
        }
        if let Some(m) = self.learned.lock().ok().and_then(|l| l.get(&ip).copied()) {
            return Some(m);
        }
        let table = std::fs::read_to_string(&self.arp).ok()?;
        neighbour(&table, ip)
    }

    /// Records that the node with `mac` (or, without one, at `ip`) reached `stage`.
    pub fn event(
        &self,
        stage: Stage,
        mac: Option<Mac>,
        ip: Option<Ipv4Addr>,
        detail: impl Into<String>,
        failed: bool,
    ) {
        let mac = mac.or_else(|| ip.and_then(|ip| self.mac_of(ip)));
        let xname = mac.and_then(|m| {
            self.hosts
                .read()
                .ok()
                .and_then(|h| h.xnames.get(&m).cloned())
        });
        if xname.is_none() {
            // A node the inventory does not know gets a timeline under its MAC, while there
            // are not too many of them (a flood of made-up MACs must not fill the disk).
            let Some(m) = mac else {
                self.metrics
                    .boot_events_dropped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            };
            let Ok(mut u) = self.unknown.lock() else {
                return;
            };
            // Counted per hour, so a flood does not shut out genuine new nodes for good.
            let hour = flight::now_ms() / 3_600_000;
            if u.0 != hour {
                *u = (hour, HashSet::new());
            }
            let u = &mut u.1;
            if !u.contains(&m) {
                if u.len() >= UNKNOWN_NODES_MAX {
                    self.metrics
                        .boot_events_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                u.insert(m);
            }
        }
        let e = BootEvent {
            at_ms: flight::now_ms(),
            stage,
            xname: xname.unwrap_or_default(),
            mac: mac.map(|m| m.to_string()).unwrap_or_default(),
            ip: ip.map(|i| i.to_string()).unwrap_or_default(),
            detail: clean(detail.into()),
            failed,
        };
        self.metrics.count_stage(stage);
        if self.tx.try_send(e).is_err() {
            self.metrics
                .boot_events_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stores queued events about twice a second until cancelled, then what is left.
    pub async fn write(&self, cancel: CancellationToken) {
        let mut rx = self.rx.lock().await;
        match self.store.list_all(OUTBOX, None).await {
            Ok(r) => self
                .metrics
                .boot_outbox
                .store(r.len() as u64, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "boot event outbox not readable"),
        }
        loop {
            let stopping = tokio::select! {
                _ = cancel.cancelled() => true,
                _ = tokio::time::sleep(Duration::from_millis(500)) => false,
            };
            let mut batch = Vec::new();
            while batch.len() < 2000 {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                match self.store_batch(&batch).await {
                    Ok(()) => {}
                    Err(e) => {
                        self.metrics
                            .boot_events_dropped
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::warn!(error = %e, events = batch.len(), "boot events not stored");
                    }
                }
            }
            if stopping {
                return;
            }
        }
    }

    async fn store_batch(&self, batch: &[BootEvent]) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(batch.len());
        for e in batch {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) % 100_000_000;
            let body = serde_json::to_string(e)
                .map_err(|err| StoreError::unavailable(format!("encoding a boot event: {err}")))?;
            ops.push(Write::Upsert {
                table: OUTBOX,
                record: Record::new(format!("{:013}-{seq:08}", e.at_ms), body),
            });
        }
        for c in ops.chunks(500) {
            self.store.write(c.to_vec()).await?;
        }
        // The gauge is what waits: reports take from it as the cloud accepts them.
        let waiting = self
            .metrics
            .boot_outbox
            .fetch_add(batch.len() as u64, Ordering::Relaxed) as usize
            + batch.len();
        if waiting > OUTBOX_MAX {
            let dropped = self.drop_oldest(waiting - OUTBOX_MAX).await?;
            sub(&self.metrics.boot_outbox, dropped as u64);
        }
        for p in flight::record(self.store.as_ref(), "", batch, 500).await? {
            if let Some(ms) = p.phoned_home_after_ms {
                self.metrics.observe_phone_home(ms);
            }
        }
        Ok(())
    }

    async fn drop_oldest(&self, n: usize) -> Result<usize, StoreError> {
        let page = self
            .store
            .list(OUTBOX, None, skyport_store::PageRequest::first(n.min(1000)))
            .await?;
        let k = page.records.len();
        tracing::warn!(
            events = k,
            "boot event outbox full: the oldest events will not reach the cloud"
        );
        skyport_store::delete_in_batches(self.store.as_ref(), OUTBOX, &page.records, 500).await?;
        Ok(k)
    }
}

/// What a client may have put in a detail (a TFTP file name, its error text), made safe to
/// report: no control characters, at most [`DETAIL_MAX`] bytes.
fn clean(d: String) -> String {
    if d.len() <= DETAIL_MAX && !d.chars().any(char::is_control) {
        return d;
    }
    let mut out = String::new();
    for c in d.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > DETAIL_MAX {
            break;
        }
        out.push(c);
    }
    out
}

/// Longest detail kept (the cloud refuses longer ones).
pub const DETAIL_MAX: usize = 256;

/// Events waiting for the cloud, oldest first (at most `n`), as stored.
pub async fn pending(store: &dyn Store, n: usize) -> Result<Vec<(Record, BootEvent)>, StoreError> {
    let page = store
        .list(OUTBOX, None, skyport_store::PageRequest::first(n))
        .await?;
    Ok(page
        .records
        .into_iter()
        .filter_map(|r| {
            let e = serde_json::from_str(&r.body).ok()?;
            Some((r, e))
        })
        .collect())
}

/// Takes `n` from a gauge without wrapping below zero.
pub fn sub(g: &AtomicU64, n: u64) {
    let _ = g.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_neighbour_table_names_complete_entries_only() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
                 10.77.0.11       0x1         0x2         52:54:00:77:02:01     *        br0\n\
                 10.77.0.12       0x1         0x0         00:00:00:00:00:00     *        br0\n";
        assert_eq!(
            neighbour(t, Ipv4Addr::new(10, 77, 0, 11)).map(|m| m.to_string()),
            Some("52:54:00:77:02:01".into())
        );
        assert_eq!(neighbour(t, Ipv4Addr::new(10, 77, 0, 12)), None);
        assert_eq!(neighbour("garbage", Ipv4Addr::new(10, 77, 0, 12)), None);
    }

    #[test]
    fn details_a_client_wrote_are_made_reportable() {
        assert_eq!(clean("ipxe.efi: 10 bytes".into()), "ipxe.efi: 10 bytes");
        assert_eq!(clean("a\nb\u{7}c".into()), "a b c");
        let long = clean("é".repeat(400));
        assert!(long.len() <= DETAIL_MAX && long.chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn events_are_named_stored_queued_for_the_cloud_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("r.db")).unwrap());
        let metrics = Arc::new(Metrics::default());
        let r = Recorder::new(store.clone(), metrics.clone());
        let mac = Mac::parse("52:54:00:00:00:01").unwrap();
        let mut names = Names::default();
        names.xnames.insert(mac, "x1000c0s0b0n0".into());
        r.set_names(names);
        r.event(Stage::DhcpDiscover, Some(mac), None, "pxe", false);
        r.learn(Ipv4Addr::new(10, 0, 0, 5), mac);
        // Named by the address it came from.
        r.event(
            Stage::Kernel,
            None,
            Some(Ipv4Addr::new(10, 0, 0, 5)),
            "done",
            false,
        );
        // Nobody knows this address: dropped, counted.
        r.event(
            Stage::Kernel,
            None,
            Some(Ipv4Addr::new(10, 0, 0, 99)),
            "done",
            false,
        );
        r.event(Stage::PhoneHome, Some(mac), None, "", false);
        let cancel = CancellationToken::new();
        cancel.cancel();
        r.write(cancel).await;
        let t = flight::timeline(store.as_ref(), "x1000c0s0b0n0")
            .await
            .unwrap();
        assert_eq!(
            t.iter().map(|e| e.stage).collect::<Vec<_>>(),
            [Stage::DhcpDiscover, Stage::Kernel, Stage::PhoneHome]
        );
        assert_eq!(pending(store.as_ref(), 10).await.unwrap().len(), 3);
        assert_eq!(metrics.boot_events_dropped.load(Ordering::Relaxed), 1);
        let page = metrics.render(0);
        assert!(
            page.contains("skyport_edge_boot_stage_total{stage=\"kernel\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("skyport_edge_boot_time_to_phone_home_seconds_count 1"),
            "{page}"
        );
    }
}
