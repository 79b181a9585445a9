//! The change log: which synced records changed for which site, in time order, written in the
//! same atomic batch as the change itself, with no item that two unrelated writes share.
//!
//! A write batch that touches a synced table (or an xname assignment) gets, from
//! [`ChangeLog`], one [`Entry`] per *partition* it concerns: each site whose share the change
//! touches (before or after it), [`EVERYWHERE`] for installation-wide data, and, when enabled,
//! [`WHOLE`] for agents that speak for the whole installation. An entry only names keys
//! (`table`, `id`) and reassigned subtrees; a site's reader re-reads those records and decides
//! what the site may see of them ([`crate::share`]), so an entry that says too much costs a
//! read and never leaks, and replaying an entry is harmless.
//!
//! Entry ids are `<partition>/<pos>`, where a [`Pos`] is the writer's clock in microseconds and
//! a random word: distinct for every writer, ordered by time within a partition. Clocks order
//! entries but commits can land out of that order (a slow transaction), so readers never move
//! their cursor past [`SETTLE`] ago ([`crate::cursor`]), and a writer whose batch took longer
//! than [`SETTLE`]/4 writes its entries again with a fresh time.
//!
//! The batch also upserts [`INDEX`] items `<xname>/<table>/<id>` for records whose deciding xname
//! is new (a create, an interface moved to another node): a site's full snapshot finds its
//! records with range queries on its own subtrees instead of reading the installation.
//!
//! Where a record belongs can depend on other records (boot parameters by MAC follow the
//! interface, everything follows ownership). A concurrent change of those can place the record
//! at a site that was not told; so after the batch commits, its placements are resolved again
//! and any site that was missed gets its entry then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skyport_sites::ownership::Assignment;
use skyport_sites::placement::Pending;
use skyport_store::{Decorator, Record, Result, Store, StoreError, Table, Write};

use crate::share::{Where, placement_of, resolve_placements};

/// The change entries, `<partition>/<pos>`.
pub const CHANGES: Table = Table("SyncChanges");
/// Where each record is placed, `<xname>/<table>/<id>`: a site's snapshot reads its subtrees.
pub const INDEX: Table = Table("SyncIndex");
/// The partition of installation-wide changes (image registry, cloud-init defaults), read by
/// every site.
pub const EVERYWHERE: &str = "*";
/// The partition of every change, for agents that speak for the whole installation.
pub const WHOLE: &str = "~";
/// How far behind the clock a reader's cursor stays: longer than any batch takes to commit.
pub const SETTLE: Duration = Duration::from_secs(10);
/// Most keys one entry names (a bulk write names more in several entries).
pub const KEYS_PER_ENTRY: usize = 200;

/// A position in a partition: `<µs since the epoch, 16 hex>-<random word, 16 hex>`, so ids sort
/// by time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos(String);

impl Pos {
    /// The position of time `micros`, before any entry written then.
    pub fn at(micros: u64) -> Pos {
        Pos(format!("{micros:016x}-{:016x}", 0))
    }

    fn fresh(micros: u64) -> Pos {
        Pos(format!("{micros:016x}-{:016x}", random_word()))
    }

    /// Parses a position sent back by an agent.
    pub fn parse(s: &str) -> Option<Pos> {
        let (t, n) = s.split_once('-')?;
        let hex = |p: &str| p.len() == 16 && p.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(t) && hex(n) && s.bytes().all(|b| !b.is_ascii_uppercase())).then(|| Pos(s.into()))
    }

    /// The time of this position, in µs since the epoch.
    pub fn micros(&self) -> u64 {
        self.0
            .get(..16)
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .unwrap_or(0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entry id of this position in `partition`.
    pub fn id(&self, partition: &str) -> String {
        format!("{partition}/{}", self.0)
    }
}

/// Now, in µs since the epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn random_word() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_micros());
    h.finish()
}

/// One change entry: keys to read again, subtrees whose owner changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtrees: Vec<String>,
}

/// What a batch tells each partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notices {
    pub keys: BTreeMap<String, BTreeSet<(Table, String)>>,
    pub subtrees: BTreeMap<String, BTreeSet<String>>,
    /// Index ids to upsert.
    pub index: BTreeSet<String>,
}

impl Notices {
    /// What `self` tells that `earlier` did not.
    fn beyond(&self, earlier: &Notices) -> Notices {
        Notices {
            keys: minus(&self.keys, &earlier.keys),
            subtrees: minus(&self.subtrees, &earlier.subtrees),
            index: BTreeSet::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.subtrees.is_empty()
    }

    /// The entry writes, stamped `micros`.
    fn entries(&self, micros: u64) -> Result<Vec<Write>> {
        let partitions: BTreeSet<&String> = self.keys.keys().chain(self.subtrees.keys()).collect();
        let mut out = Vec::new();
        for p in partitions {
            let keys: Vec<(String, String)> = self
                .keys
                .get(p)
                .into_iter()
                .flatten()
                .map(|(t, id)| (t.name().to_string(), id.clone()))
                .collect();
            let subtrees: Vec<String> = self
                .subtrees
                .get(p)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            let mut chunks: Vec<Entry> = keys
                .chunks(KEYS_PER_ENTRY)
                .map(|c| Entry {
                    keys: c.to_vec(),
                    subtrees: Vec::new(),
                })
                .collect();
            match chunks.first_mut() {
                Some(first) => first.subtrees = subtrees,
                None => chunks.push(Entry {
                    keys: Vec::new(),
                    subtrees,
                }),
            }
            for e in chunks {
                let body = serde_json::to_string(&e).map_err(|e| {
                    StoreError::unavailable(format!("encoding a change entry: {e}"))
                })?;
                out.push(Write::Upsert {
                    table: CHANGES,
                    record: Record::new(Pos::fresh(micros).id(p), body),
                });
            }
        }
        Ok(out)
    }
}

/// The index item saying the placement index covers every stored record ([`backfill`] writes
/// it); until it exists, a site's snapshot reads the synced tables whole and filters them.
pub const INDEX_COMPLETE: &str = "~complete";

/// Whether the placement index covers every stored record.
pub async fn index_complete(store: &dyn Store) -> Result<bool> {
    Ok(store.get(INDEX, INDEX_COMPLETE).await?.is_some())
}

/// Writes the index items of every stored record of the indexed tables (data written before
/// the index existed, or by a store not wrapped in [`ChangeLog`]), a page at a time, then marks
/// the index complete. Idempotent: run it again and it writes the same items. Returns how many
/// items it wrote.
pub async fn backfill(store: &dyn Store) -> Result<usize> {
    let mut n = 0;
    for t in crate::SYNCED
        .iter()
        .copied()
        .filter(|t| crate::share::indexed(*t))
    {
        let mut page = skyport_store::PageRequest::first(500);
        loop {
            let p = store.list(t, None, page.clone()).await?;
            // Each record as if it were being created: where it is indexed, and what follows.
            let creates: Vec<Write> = p
                .records
                .into_iter()
                .map(|record| Write::Put {
                    table: t,
                    record,
                    prev: None,
                })
                .collect();
            let told = notices(store, &creates, false).await?;
            let items: Vec<Write> = told
                .index
                .iter()
                .map(|id| Write::Upsert {
                    table: INDEX,
                    record: Record::new(id, "{}"),
                })
                .collect();
            for chunk in items.chunks(25) {
                store.write(chunk.to_vec()).await?;
            }
            n += items.len();
            match p.next {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
    }
    store
        .write(vec![Write::Upsert {
            table: INDEX,
            record: Record::new(INDEX_COMPLETE, "{}"),
        }])
        .await?;
    Ok(n)
}

/// Per partition, what `a` holds that `b` does not (partitions left with nothing are left out).
fn minus<T: Ord + Clone>(
    a: &BTreeMap<String, BTreeSet<T>>,
    b: &BTreeMap<String, BTreeSet<T>>,
) -> BTreeMap<String, BTreeSet<T>> {
    a.iter()
        .filter_map(|(p, xs)| {
            let new: BTreeSet<T> = match b.get(p) {
                Some(had) => xs.difference(had).cloned().collect(),
                None => xs.clone(),
            };
            (!new.is_empty()).then(|| (p.clone(), new))
        })
        .collect()
}

/// A store that writes the change log and the placement index with every batch that touches
/// synced data ([`crate::SYNCED`]) or xname assignments.
pub struct ChangeLog {
    inner: Arc<dyn Store>,
    whole: bool,
}

impl ChangeLog {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        ChangeLog {
            inner,
            whole: false,
        }
    }

    /// Also log every change in [`WHOLE`], for agents without a site (the local server). Off
    /// in the cloud, where every agent has a site and [`WHOLE`] would be one more partition
    /// every write lands in.
    pub fn with_whole_installation(mut self, on: bool) -> Self {
        self.whole = on;
        self
    }

    pub fn whole_installation(&self) -> bool {
        self.whole
    }

    pub fn into_arc(self) -> Arc<dyn Store> {
        Arc::new(self)
    }

    /// The local server's store over `inner`: every change logged per site and for the whole
    /// installation.
    pub fn local(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(ChangeLog::new(inner).with_whole_installation(true))
    }
}

fn concerns(t: Table) -> bool {
    crate::SYNCED.contains(&t) || skyport_sites::ownership::is_ownership(t)
}

#[async_trait::async_trait]
impl Decorator for ChangeLog {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    async fn write_through(&self, mut ops: Vec<Write>) -> Result<()> {
        if !ops.iter().any(|op| concerns(op.table())) {
            return self.inner.write(ops).await;
        }
        let started = Instant::now();
        let told = notices(self.inner.as_ref(), &ops, self.whole).await?;
        let micros = now_micros();
        let mut extra = told.entries(micros)?;
        for id in &told.index {
            extra.push(Write::Upsert {
                table: INDEX,
                record: Record::new(id, "{}"),
            });
        }
        let original = ops.clone();
        ops.extend(extra);
        if let Err(e) = self.inner.write(ops).await {
            // A large batch spans transactions and is undone by the store when a later one
            // fails, after readers may have seen its first ones: telling the sites again
            // (a fresh entry naming the same keys) makes their agents re-read what is stored.
            // An entry that names too much costs a read, never data.
            if let Ok(w) = told.entries(now_micros())
                && let Err(again) = self.inner.write(w).await
            {
                tracing::warn!(error = %again, "re-telling sites about a failed write failed too");
            }
            return Err(e);
        }
        // The batch is stored: from here on a failure must not turn into an error the caller
        // would retry. Entries missed are logged loudly; the next change of the record or a
        // full snapshot repairs the site.
        let late = started.elapsed() > SETTLE / 4;
        let again = match notices(self.inner.as_ref(), &original, self.whole).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "re-checking where a stored change belongs failed");
                return Ok(());
            }
        };
        let missed = if late { again } else { again.beyond(&told) };
        if missed.is_empty() {
            return Ok(());
        }
        tracing::info!(
            late,
            partitions = missed.keys.len() + missed.subtrees.len(),
            "a change moved while it was written; telling the sites it moved to"
        );
        let write = match missed.entries(now_micros()) {
            Ok(w) => self.inner.write(w).await,
            Err(e) => Err(e),
        };
        if let Err(e) = write {
            tracing::error!(error = %e, "writing the change entries of a stored change failed");
        }
        Ok(())
    }
}

/// The assignments `ops` make or remove.
fn pending(ops: &[Write]) -> Pending {
    let mut out = Pending::new();
    for op in ops {
        if !skyport_sites::ownership::is_ownership(op.table()) {
            continue;
        }
        match op {
            Write::Put { record, .. } | Write::Upsert { record, .. } => {
                if let Ok(a) = Assignment::decode(record) {
                    out.insert(record.id.clone(), Some(a.site));
                }
            }
            Write::Delete { prev, .. } => {
                out.insert(prev.id.clone(), None);
            }
            Write::Check { .. } => {}
        }
    }
    out
}

/// What `ops` tell which partitions, and the index items they add.
pub async fn notices(store: &dyn Store, ops: &[Write], whole: bool) -> Result<Notices> {
    let pending = pending(ops);
    // Every key a change touches, with where it was and where it is.
    let mut placed: Vec<((Table, String), skyport_sites::Placement)> = Vec::new();
    // Keys whose deciding xname is new: (key, index into `placed` of its new placement,
    // the old placement's index if any).
    let mut fresh: Vec<((Table, String), usize, Option<usize>)> = Vec::new();
    for op in ops {
        let t = op.table();
        if !crate::SYNCED.contains(&t) || matches!(op, Write::Check { .. }) {
            continue;
        }
        let mut at = |r: &Record| -> Vec<((Table, String), usize)> {
            let mut out = Vec::new();
            for (key, p) in placement_of(t, r) {
                out.push((key.clone(), placed.len()));
                placed.push((key, p));
            }
            out
        };
        let before = op.prev().map(&mut at).unwrap_or_default();
        let after = op.next().map(&mut at).unwrap_or_default();
        for (key, i) in after {
            let old = before.iter().find(|(k, _)| *k == key).map(|(_, j)| *j);
            fresh.push((key, i, old));
        }
    }
    let wheres = resolve_placements(store, placed.iter().map(|(_, p)| p.clone()).collect()).await?;
    let mut xnames: BTreeSet<String> = BTreeSet::new();
    for w in &wheres {
        if let Where::Xnames(xs) = w {
            xnames.extend(xs.iter().cloned());
        }
    }
    // Subtrees whose owner changes: the old and new owner, and the owner above the subtree
    // when an assignment appears or goes.
    let mut parents: BTreeMap<String, String> = BTreeMap::new();
    let mut moved: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for op in ops {
        if !skyport_sites::ownership::is_ownership(op.table()) || matches!(op, Write::Check { .. })
        {
            continue;
        }
        let site = |r: Option<&Record>| r.and_then(|r| Assignment::decode(r).ok()).map(|a| a.site);
        let (old, new) = (site(op.prev()), site(op.next()));
        if (old.is_none() || new.is_none())
            && let Some(parent) = skyport_model::Xname::parse(op.id())
                .ok()
                .and_then(|x| x.parent())
        {
            parents.insert(op.id().to_string(), parent.to_string());
            xnames.insert(parent.to_string());
        }
        moved.push((op.id().to_string(), old, new));
    }
    let owners = skyport_sites::placement::owners(store, &xnames, &pending)
        .await
        .map_err(site_error)?;
    let mut n = Notices::default();
    let mut tell = |partition: &str, key: &(Table, String)| {
        n.keys
            .entry(partition.to_string())
            .or_default()
            .insert(key.clone());
    };
    for ((key, _), w) in placed.iter().zip(&wheres) {
        match w {
            Where::Everywhere => tell(EVERYWHERE, key),
            Where::Xnames(xs) => {
                for x in xs {
                    if let Some(Some(site)) = owners.get(x) {
                        tell(site, key);
                    }
                }
            }
            Where::Nowhere => {}
        }
        if whole {
            tell(WHOLE, key);
        }
    }
    for (x, old, new) in moved {
        let above = parents
            .get(&x)
            .and_then(|p| owners.get(p).cloned().flatten());
        for site in [old, new, above].into_iter().flatten() {
            n.subtrees.entry(site).or_default().insert(x.clone());
        }
    }
    for ((t, id), i, old) in fresh {
        // Groups and their cloud-init data are read whole by a snapshot, not through the index.
        if !crate::share::indexed(t) {
            continue;
        }
        let Where::Xnames(xs) = &wheres[i] else {
            continue;
        };
        let [x] = xs.as_slice() else {
            continue;
        };
        if old.is_some_and(|j| wheres[j] == wheres[i]) {
            continue;
        }
        n.index.insert(format!("{x}/{}/{id}", t.name()));
    }
    Ok(n)
}

/// Ownership reads fail as store errors here: what the change log writes is the store's.
pub(crate) fn site_error(e: skyport_sites::SiteError) -> StoreError {
    match e {
        skyport_sites::SiteError::Store(s) => s,
        skyport_sites::SiteError::Corrupt { what, id, source } => StoreError::Corrupt {
            table: what.to_string(),
            id,
            reason: source.to_string(),
        },
        other => StoreError::unavailable(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_sort_by_time_and_parse_only_their_own_shape() {
        let a = Pos::at(1_000);
        let b = Pos::fresh(1_001);
        assert!(a < b);
        assert_eq!(b.micros(), 1_001);
        assert_eq!(Pos::parse(b.as_str()), Some(b.clone()));
        for bad in [
            "",
            "0",
            "00000000000003e8",
            "00000000000003E8-0000000000000000",
            "zz",
        ] {
            assert_eq!(Pos::parse(bad), None, "{bad}");
        }
        assert_eq!(b.id("east"), format!("east/{}", b.as_str()));
    }
}
