//! Reading a site's changes and its full share, page by page, as store operations (the routes
//! in [`crate::routes`] only parse requests and answer):
//! - [`entries`] and [`changes`]: the entries after an agent's [`Cursor`] in the site's
//!   partitions, the keys they name (reassigned subtrees expanded through the placement index),
//!   and the site's [`View`] of them;
//! - [`snapshot_page`]: the site's whole share, in pages: installation-wide tables and groups
//!   first, then the placement index of each cabinet the site holds assignments in (range
//!   queries, never a read of the installation). Its cursor is taken before the first page, so
//!   changes made while the agent pages through are in its first changes page.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use skyport_model::Xname;
use skyport_sites::ownership::ancestry;
use skyport_store::{PageRequest, Record, Store, StoreError, Table};

use crate::changes::{CHANGES, EVERYWHERE, Entry, INDEX, Pos, SETTLE, WHOLE, now_micros};
use crate::share::{View, corrupt, indexed, view, view_of};

/// Most keys one page resolves (changes and snapshot alike).
pub const PAGE_KEYS: usize = 1000;
/// Most records reassigned subtrees may bring into one changes page; beyond it the agent is
/// told to take a full snapshot (a cabinet moved to another site is cheaper that way).
pub const EXPAND_LIMIT: usize = 5000;
/// How long change entries are kept; an agent whose cursor is older takes a full snapshot.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Entries read per store call: an unchanged poll is one call per partition.
const ENTRIES_PER_CALL: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("after: {0:?} is not a cursor this server gave out")]
    BadCursor(String),
    #[error(
        "after: the cursor is older than the change log keeps ({0} days); take a full snapshot"
    )]
    Expired(u64),
    #[error("page: {0:?} is not a page token this server gave out")]
    BadToken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The position of entry `id` (`<partition>/<pos>`).
fn entry_pos(id: &str) -> Option<Pos> {
    id.split_once('/').and_then(|(_, p)| Pos::parse(p))
}

/// `d` in µs, the unit of positions.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The partitions a site reads, in cursor order (`None`: an agent for the whole installation).
pub fn partitions(site: Option<&str>) -> Vec<String> {
    match site {
        Some(s) => vec![s.to_string(), EVERYWHERE.to_string()],
        None => vec![WHOLE.to_string()],
    }
}

/// An agent's place in its partitions: one [`Pos`] per partition, joined by `.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub Vec<Pos>);

impl Cursor {
    /// The cursor of time `micros` in `n` partitions.
    pub fn at(micros: u64, n: usize) -> Cursor {
        Cursor(vec![Pos::at(micros); n])
    }

    pub fn parse(s: &str, n: usize) -> Result<Cursor, FeedError> {
        let bad = || FeedError::BadCursor(s.chars().take(100).collect());
        let ps: Vec<Pos> = s
            .split('.')
            .map(|p| Pos::parse(p).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        if ps.len() != n {
            return Err(bad());
        }
        Ok(Cursor(ps))
    }

    pub fn encode(&self) -> String {
        let ps: Vec<&str> = self.0.iter().map(Pos::as_str).collect();
        ps.join(".")
    }
}

/// Entries read after a cursor.
#[derive(Debug, Default)]
pub struct Entries {
    /// (partition index, entry id, entry), in partition then time order.
    pub list: Vec<(usize, String, Entry)>,
    /// Per partition: whether more entries follow than were read.
    pub truncated: Vec<bool>,
}

impl Entries {
    /// An opaque tag of `cursor` and the entries read that lie after it: equal tags, nothing
    /// new. The tag of an answer is the one its next request (after the answer's cursor, with
    /// nothing new) computes, so that request is a `304`.
    pub fn tag(&self, cursor: &Cursor) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for x in b {
                h ^= u64::from(*x);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(cursor.encode().as_bytes());
        for (i, id, _) in &self.list {
            let after = entry_pos(id).is_some_and(|p| cursor.0.get(*i).is_some_and(|c| p > *c));
            if after {
                eat(b"\n");
                eat(id.as_bytes());
            }
        }
        format!("\"c{h:016x}\"")
    }

    /// Whether asking again at once makes progress: a partition was cut short and `next` is
    /// past every entry read from it. (Entries younger than [`SETTLE`] hold the cursor back;
    /// more than a page of them waits for the next poll instead of being fetched in a loop.)
    pub fn progress(&self, cursor: &Cursor, next: &Cursor) -> bool {
        self.truncated.iter().enumerate().any(|(i, cut)| {
            let last = self
                .list
                .iter()
                .rfind(|(p, _, _)| *p == i)
                .and_then(|(_, id, _)| entry_pos(id));
            let moved = match (next.0.get(i), cursor.0.get(i)) {
                (Some(n), Some(c)) => n > c && last.is_some_and(|l| *n >= l),
                _ => false,
            };
            *cut && moved
        })
    }

    /// Where the agent goes next: past what it got, but never closer to now than [`SETTLE`]
    /// (a slower batch may still commit an entry stamped before it).
    pub fn next(&self, cursor: &Cursor, now: u64) -> Cursor {
        let cap = Pos::at(now.saturating_sub(micros(SETTLE)));
        let mut out = cursor.clone();
        for (i, pos) in out.0.iter_mut().enumerate() {
            let last = self
                .list
                .iter()
                .rfind(|(p, _, _)| *p == i)
                .and_then(|(_, id, _)| entry_pos(id));
            let candidate = match last {
                Some(l) => l.min(cap.clone()),
                None => cap.clone(),
            };
            if candidate > *pos {
                *pos = candidate;
            }
        }
        out
    }
}

/// The entries after `cursor` in each of `partitions`, up to [`PAGE_KEYS`] keys per partition.
pub async fn entries(
    store: &dyn Store,
    partitions: &[String],
    cursor: &Cursor,
) -> Result<Entries, FeedError> {
    let oldest = cursor.0.iter().map(Pos::micros).min().unwrap_or(0);
    let keep = micros(RETENTION);
    if oldest.saturating_add(keep) < now_micros() {
        return Err(FeedError::Expired(RETENTION.as_secs() / 86_400));
    }
    let mut out = Entries {
        list: Vec::new(),
        truncated: vec![false; partitions.len()],
    };
    for (i, (p, pos)) in partitions.iter().zip(&cursor.0).enumerate() {
        let prefix = format!("{p}/");
        let mut after = pos.id(p);
        let mut keys = 0usize;
        'pages: loop {
            let page = store
                .list(
                    CHANGES,
                    None,
                    PageRequest {
                        after: Some(after.clone()),
                        limit: ENTRIES_PER_CALL,
                    },
                )
                .await?;
            for r in page.records {
                if !r.id.starts_with(&prefix) {
                    break 'pages;
                }
                if keys >= PAGE_KEYS {
                    out.truncated[i] = true;
                    break 'pages;
                }
                let e: Entry =
                    serde_json::from_str(&r.body).map_err(|e| corrupt(CHANGES, &r.id, e))?;
                keys += e.keys.len() + e.subtrees.len();
                after = r.id.clone();
                out.list.push((i, r.id, e));
            }
            match page.next {
                Some(n) if n.starts_with(&prefix) => after = n,
                _ => break,
            }
        }
    }
    Ok(out)
}

/// A page of changes for an agent.
#[derive(Debug, Default)]
pub struct Changes {
    pub view: View,
    pub cursor: Cursor,
    pub more: bool,
    /// Reassignments brought more than [`EXPAND_LIMIT`] records: take a full snapshot.
    pub resync: bool,
}

/// Most entries one answer prunes per partition.
const PRUNE_PER_CALL: usize = 25;

/// Deletes up to [`PRUNE_PER_CALL`] entries of `partition` older than [`RETENTION`] (the
/// oldest first); returns how many. Run on answers that carry changes, never on a `304`, so
/// the steady state stays two reads; a partition pruned this way keeps up with the writes it
/// gets, as each answer that reads new entries removes more old ones than one batch adds.
pub async fn prune(store: &dyn Store, partition: &str, now: u64) -> Result<usize, FeedError> {
    let keep = micros(RETENTION);
    let prefix = format!("{partition}/");
    let page = store
        .list(
            CHANGES,
            None,
            PageRequest {
                after: Some(prefix.clone()),
                limit: PRUNE_PER_CALL,
            },
        )
        .await?;
    let old: Vec<skyport_store::Write> = page
        .records
        .into_iter()
        .take_while(|r| {
            r.id.strip_prefix(&prefix)
                .and_then(Pos::parse)
                .is_some_and(|p| p.micros().saturating_add(keep) < now)
        })
        .map(|prev| skyport_store::Write::Delete {
            table: CHANGES,
            prev,
        })
        .collect();
    let n = old.len();
    if n > 0 {
        store.write(old).await?;
    }
    Ok(n)
}

/// `site`'s view of what `entries` name, and the cursor after them. Old entries of the
/// partitions read are pruned on the way ([`prune`]; a failure there is logged, the answer
/// stands).
pub async fn changes(
    store: &dyn Store,
    site: Option<&str>,
    cursor: &Cursor,
    entries: &Entries,
) -> Result<Changes, FeedError> {
    let now = now_micros();
    for p in partitions(site) {
        match prune(store, &p, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(partition = %p, pruned = n, "old change entries removed"),
            Err(e) => {
                tracing::warn!(partition = %p, error = %e, "pruning old change entries failed")
            }
        }
    }
    let mut keys: BTreeSet<(Table, String)> = BTreeSet::new();
    let mut subtrees: BTreeSet<String> = BTreeSet::new();
    for (_, id, e) in &entries.list {
        for (t, rid) in &e.keys {
            match crate::synced_table(t) {
                Some(t) => {
                    keys.insert((t, rid.clone()));
                }
                None => {
                    tracing::warn!(entry = %id, table = %t, "change entry names a table that is not synced; skipped")
                }
            }
        }
        subtrees.extend(e.subtrees.iter().cloned());
    }
    let mut resync = false;
    if !subtrees.is_empty() {
        let mut budget = EXPAND_LIMIT;
        for x in &subtrees {
            match expand(store, x, budget).await? {
                Some(found) => {
                    budget = budget.saturating_sub(found.len());
                    keys.extend(found);
                }
                None => {
                    resync = true;
                    break;
                }
            }
        }
        // What a site sees of groups follows ownership too: the tables read whole (groups,
        // their cloud-init data, and the small installation-wide ones) are read again.
        for t in crate::SYNCED.iter().copied().filter(|t| !indexed(*t)) {
            for r in store.list_all(t, None).await? {
                keys.insert((t, r.id));
            }
        }
    }
    let view = if resync {
        View::default()
    } else {
        view(store, site, &keys).await?
    };
    let next = entries.next(cursor, now);
    Ok(Changes {
        view,
        cursor: next.clone(),
        more: entries.progress(cursor, &next),
        resync,
    })
}

/// The keys placed in subtree `x` (from the placement index), or `None` if more than `limit`.
async fn expand(
    store: &dyn Store,
    x: &str,
    limit: usize,
) -> Result<Option<BTreeSet<(Table, String)>>, FeedError> {
    let Ok(root) = Xname::parse(x) else {
        return Ok(Some(BTreeSet::new()));
    };
    let root = root.to_string();
    let mut out = BTreeSet::new();
    let mut done = false;
    let mut after = root.clone();
    while !done {
        let (keys, next) = index_page(store, &root, &after, PAGE_KEYS, |ix| {
            ancestry(ix).contains(&root)
        })
        .await?;
        out.extend(keys);
        if out.len() > limit {
            return Ok(None);
        }
        match next {
            Some(n) => after = n,
            None => done = true,
        }
    }
    Ok(Some(out))
}

/// Up to `limit` keys of index items after `after` whose ids start with `prefix` and whose
/// xname `within` accepts; and where to go on, if more may follow.
async fn index_page(
    store: &dyn Store,
    prefix: &str,
    after: &str,
    limit: usize,
    within: impl Fn(&Xname) -> bool,
) -> Result<(Vec<(Table, String)>, Option<String>), FeedError> {
    let page = store
        .list(
            INDEX,
            None,
            PageRequest {
                after: Some(after.to_string()),
                limit,
            },
        )
        .await?;
    let mut keys = Vec::new();
    let mut last = None;
    for r in &page.records {
        let Some(rest) = r.id.strip_prefix(prefix) else {
            return Ok((keys, None));
        };
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            // Another xname whose number starts with this one's (x10000 after x1000): its
            // block ends before `<prefix>:`, and this one's children come after.
            return Ok((keys, Some(format!("{prefix}:"))));
        }
        last = Some(r.id.clone());
        let mut parts = r.id.splitn(3, '/');
        let (Some(x), Some(t), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(x), Some(t)) = (Xname::parse(x), crate::synced_table(t)) else {
            continue;
        };
        if within(&x) {
            keys.push((t, id.to_string()));
        }
    }
    Ok((keys, page.next.and(last)))
}

/// Where a snapshot's next page starts: the cursor taken before its first page, the ranges
/// left (`t:<table>`: a table read whole; `x:<cabinet>`: the placement index of a cabinet),
/// and the last id read in the first of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    c: String,
    r: Vec<String>,
    #[serde(default)]
    a: String,
}

impl Token {
    fn encode(&self) -> Result<String, FeedError> {
        let json = serde_json::to_vec(self)
            .map_err(|e| StoreError::unavailable(format!("encoding a page token: {e}")))?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(s: &str) -> Result<Token, FeedError> {
        let bad = || FeedError::BadToken(s.chars().take(100).collect());
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        serde_json::from_slice(&json).map_err(|_| bad())
    }
}

/// A page of a site's full share.
#[derive(Debug)]
pub struct SnapshotPage {
    pub records: BTreeMap<Table, Vec<Record>>,
    /// Where changes start after this snapshot (the same on every page).
    pub cursor: Cursor,
    /// The token of the next page; `None` on the last.
    pub next: Option<String>,
}

/// The ranges a site's snapshot reads: installation-wide tables, groups, then the placement
/// index of every cabinet it holds an assignment in (a site assigned whole cabinets reads
/// nothing of anyone else's; a shared cabinet's other records are read and left out).
async fn ranges(store: &dyn Store, site: Option<&str>) -> Result<Vec<String>, FeedError> {
    let t = |t: Table| format!("t:{}", t.name());
    let whole = || crate::SYNCED.iter().map(|x| t(*x)).collect();
    let Some(site) = site else {
        return Ok(whole());
    };
    if !crate::changes::index_complete(store).await? {
        // Records stored before the index existed are not in it yet: read the tables whole
        // (correct, and as slow as before the index) until `POST /edge/v1/reindex` has run.
        tracing::warn!(
            site,
            "the placement index is not complete; the snapshot reads every synced table"
        );
        return Ok(whole());
    }
    let mut out: Vec<String> = crate::SYNCED
        .iter()
        .filter(|x| !indexed(**x))
        .map(|x| t(*x))
        .collect();
    // Records of indexed tables that belong to every site (BSS's role, `Default` and
    // `Unknown-<arch>` entries) name no xname, so the index cannot find them: they are read by
    // their id prefix.
    out.extend(
        skyport_boot::params::EVERYWHERE_IDS
            .iter()
            .map(|(table, prefix)| format!("p:{}:{prefix}", table.name())),
    );
    let mut cabinets = BTreeSet::new();
    let assigned = skyport_sites::ownership::assigned_to(store, site)
        .await
        .map_err(crate::changes::site_error)?;
    for x in assigned {
        if let Some(top) = Xname::parse(&x).ok().and_then(|x| ancestry(&x).pop()) {
            cabinets.insert(top);
        }
    }
    out.extend(cabinets.into_iter().map(|c| format!("x:{c}")));
    Ok(out)
}

/// One page of `site`'s full share (`token`: from the previous page; `None`: the first).
pub async fn snapshot_page(
    store: &dyn Store,
    site: Option<&str>,
    token: Option<&str>,
) -> Result<SnapshotPage, FeedError> {
    let n = partitions(site).len();
    let mut tok = match token {
        Some(s) => {
            let t = Token::decode(s)?;
            Cursor::parse(&t.c, n).map_err(|_| FeedError::BadToken(s.into()))?;
            t
        }
        None => {
            let settle = micros(SETTLE);
            Token {
                c: Cursor::at(now_micros().saturating_sub(settle), n).encode(),
                r: ranges(store, site).await?,
                a: String::new(),
            }
        }
    };
    let cursor = Cursor::parse(&tok.c, n)?;
    // By id: a record the index names twice (an interface that moved between cabinets) is
    // sent once.
    let mut records: BTreeMap<Table, BTreeMap<String, Record>> = BTreeMap::new();
    let mut budget = PAGE_KEYS;
    while budget > 0 {
        let Some(range) = tok.r.first().cloned() else {
            break;
        };
        let bad = || FeedError::BadToken(range.clone());
        let (kind, name) = range.split_once(':').ok_or_else(bad)?;
        let next = match kind {
            "t" => {
                let t = crate::synced_table(name).ok_or_else(bad)?;
                let after = (!tok.a.is_empty()).then(|| tok.a.clone());
                let page = store
                    .list(
                        t,
                        None,
                        PageRequest {
                            after,
                            limit: budget,
                        },
                    )
                    .await?;
                let last = page.records.last().map(|r| r.id.clone());
                budget = budget.saturating_sub(page.records.len());
                let listed: Vec<(Table, Record)> =
                    page.records.into_iter().map(|r| (t, r)).collect();
                let keys = listed.iter().map(|(t, r)| (*t, r.id.clone())).collect();
                let v = view_of(store, site, listed, &keys).await?;
                merge(&mut records, v);
                page.next.and(last)
            }
            "p" => {
                let (table, prefix) = name.split_once(':').ok_or_else(bad)?;
                let t = crate::synced_table(table).ok_or_else(bad)?;
                let after = if tok.a.is_empty() {
                    prefix.to_string()
                } else {
                    tok.a.clone()
                };
                let page = store
                    .list(
                        t,
                        None,
                        PageRequest {
                            after: Some(after),
                            limit: budget,
                        },
                    )
                    .await?;
                let more = page.next.is_some();
                let seen = page.records.len();
                let listed: Vec<(Table, Record)> = page
                    .records
                    .into_iter()
                    .take_while(|r| r.id.starts_with(prefix))
                    .map(|r| (t, r))
                    .collect();
                // Past the prefix (an id after it was listed) or at the table's end: done.
                let done = listed.len() < seen || !more;
                budget = budget.saturating_sub(listed.len().max(1));
                let last = listed.last().map(|(_, r)| r.id.clone());
                let keys = listed.iter().map(|(t, r)| (*t, r.id.clone())).collect();
                let v = view_of(store, site, listed, &keys).await?;
                merge(&mut records, v);
                if done { None } else { last }
            }
            "x" => {
                let cabinet = Xname::parse(name).map_err(|_| bad())?.to_string();
                let after = if tok.a.is_empty() {
                    cabinet.clone()
                } else {
                    tok.a.clone()
                };
                let (keys, next) = index_page(store, &cabinet, &after, budget, |x| {
                    ancestry(x).last().is_some_and(|top| *top == cabinet)
                })
                .await?;
                budget = budget.saturating_sub(keys.len().max(1));
                let keys: BTreeSet<(Table, String)> = keys.into_iter().collect();
                let v = view(store, site, &keys).await?;
                merge(&mut records, v);
                next
            }
            _ => return Err(bad()),
        };
        match next {
            Some(a) => tok.a = a,
            None => {
                tok.r.remove(0);
                tok.a.clear();
            }
        }
    }
    let next = if tok.r.is_empty() {
        None
    } else {
        Some(tok.encode()?)
    };
    Ok(SnapshotPage {
        records: records
            .into_iter()
            .map(|(t, recs)| (t, recs.into_values().collect()))
            .collect(),
        cursor,
        next,
    })
}

/// Keeps the records of `v` (a snapshot never deletes: what is not in it is not the site's).
fn merge(into: &mut BTreeMap<Table, BTreeMap<String, Record>>, v: View) {
    for (t, recs) in v.records {
        let held = into.entry(t).or_default();
        for r in recs {
            held.insert(r.id.clone(), r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor::at(5, 2);
        assert_eq!(Cursor::parse(&c.encode(), 2).ok(), Some(c.clone()));
        for bad in [
            "",
            "x",
            &c.encode().replace('.', ","),
            &format!("{}.", c.encode()),
        ] {
            assert!(Cursor::parse(bad, 2).is_err(), "{bad}");
        }
        assert!(Cursor::parse(&c.encode(), 1).is_err());
    }

    #[test]
    fn the_next_cursor_stays_a_settle_window_behind_now() {
        let now = 100_000_000u64;
        let settle = micros(SETTLE);
        let recent = Pos::at(now - 1).id("east");
        let old = Pos::at(now - settle - 5).id("east");
        let c = Cursor::at(0, 2);
        let mut e = Entries {
            list: vec![(0, old.clone(), Entry::default())],
            truncated: vec![false, false],
        };
        // An old entry: past it; no entry in the other partition: up to the window.
        let n = e.next(&c, now);
        assert_eq!(n.0[0], Pos::at(now - settle - 5));
        assert_eq!(n.0[1], Pos::at(now - settle));
        // A recent entry: not past the window, so it comes again until it settles.
        e.list.push((0, recent, Entry::default()));
        assert_eq!(e.next(&c, now).0[0], Pos::at(now - settle));
        // Never backwards.
        let ahead = Cursor::at(now, 2);
        assert_eq!(e.next(&ahead, now), ahead);
        // An answer's tag is what its next request computes from the entries still after it.
        let next = e.next(&c, now);
        let again = Entries {
            list: e
                .list
                .iter()
                .filter(|(_, id, _)| *id > next.0[0].id("east"))
                .cloned()
                .collect(),
            truncated: vec![false, false],
        };
        assert_eq!(e.tag(&next), again.tag(&next));
        // Tags differ with the cursor and with the entries.
        let t = e.tag(&c);
        assert_ne!(t, e.tag(&ahead));
        e.list.pop();
        assert_ne!(t, e.tag(&c));
    }

    #[tokio::test]
    async fn entries_older_than_kept_are_pruned_oldest_first_and_only_those() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let now = now_micros();
        let keep = micros(RETENTION);
        let entry = |p: &str, at: u64, n: u64| skyport_store::Write::Put {
            table: CHANGES,
            record: Record::new(format!("{p}/{at:016x}-{n:016x}"), "{}"),
            prev: None,
        };
        let mut ops = Vec::new();
        for n in 0..30 {
            ops.push(entry("east", now - keep - 1_000_000, n));
        }
        ops.push(entry("east", now - 5, 0));
        ops.push(entry("eas", now - keep - 1_000_000, 0));
        ops.push(entry("east-2", now - keep - 1_000_000, 0));
        store.write(ops).await.unwrap();
        assert_eq!(
            prune(store.as_ref(), "east", now).await.unwrap(),
            PRUNE_PER_CALL
        );
        assert_eq!(prune(store.as_ref(), "east", now).await.unwrap(), 5);
        assert_eq!(prune(store.as_ref(), "east", now).await.unwrap(), 0);
        let left: Vec<String> = store
            .list_all(CHANGES, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.iter().any(|id| id.starts_with("east/")));
    }

    #[test]
    fn more_is_asked_for_only_when_the_cursor_passes_what_was_read() {
        let now = 100_000_000u64;
        let settle = micros(SETTLE);
        let c = Cursor::at(0, 2);
        let cut = |at: u64| Entries {
            list: vec![(0, Pos::at(at).id("east"), Entry::default())],
            truncated: vec![true, false],
        };
        // Settled entries, cut short: ask again at once, it moves on.
        let old = cut(now - settle - 5);
        assert!(old.progress(&c, &old.next(&c, now)));
        // A page of entries younger than the window: the cursor cannot pass them, so asking
        // again would read the same page; wait for the next poll instead.
        let young = cut(now - 5);
        assert!(!young.progress(&c, &young.next(&c, now)));
        // Not cut short: nothing more to ask for.
        let whole = Entries {
            truncated: vec![false, false],
            ..old
        };
        assert!(!whole.progress(&c, &whole.next(&c, now)));
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let t = Token {
            c: Cursor::at(1, 2).encode(),
            r: vec!["t:Images".into(), "x:x1000".into()],
            a: "x1000c0s0b0n0/Components/x1000c0s0b0n0".into(),
        };
        assert_eq!(Token::decode(&t.encode().unwrap()).ok(), Some(t));
        assert!(matches!(Token::decode("!!"), Err(FeedError::BadToken(_))));
        assert!(matches!(Token::decode("e30"), Err(FeedError::BadToken(_))));
    }
}
