//! The boot flight recorder: every stage a node passes on its way from power-on to a running
//! system (DHCP, the iPXE binary, its boot script, kernel and initrd, cloud-init, the phone-home
//! of the booted node), as timestamped events. The edge agent records them where they happen
//! and forwards them to the cloud; both keep them with the same code, here:
//!
//! - [`TIMELINES`]: per node (its xname, or its MAC while the inventory does not know it), the
//!   last [`KEEP_EVENTS`] events, one record per node, so a node's history is bounded;
//! - [`PROGRESS`]: per node, where its current boot is (stage, when, since when), one small
//!   record per node with the site as lookup key, which `status` reads.
//!
//! [`status`] and [`last_boot`] are pure: the CLI and both servers present the same figures.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use skyport_store::{IndexKey, Record, Store, StoreError, Table, Write};

/// Per-node event lists.
pub const TIMELINES: Table = Table("BootTimelines");
/// Per-node summary of the current boot.
pub const PROGRESS: Table = Table("BootProgress");
/// Events kept per node (about four boots).
pub const KEEP_EVENTS: usize = 64;
/// A node silent this long in a stage short of phone-home is stuck (default of `status`).
pub const STUCK_AFTER_S: i64 = 300;
/// A DHCP discover this long after the node's previous event starts a new boot.
const NEW_BOOT_GAP_MS: i64 = 300_000;

/// The stages, in the order a network boot passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    DhcpDiscover,
    DhcpOffer,
    DhcpRequest,
    DhcpAck,
    DhcpNak,
    /// An iPXE binary over TFTP (detail: file, bytes, done or aborted).
    Tftp,
    /// An iPXE binary over HTTP (UEFI HTTP boot).
    Binary,
    /// The boot script (detail: known, retry or unknown).
    BootScript,
    Kernel,
    Initrd,
    MetaData,
    UserData,
    VendorData,
    PhoneHome,
}

impl Stage {
    pub const ALL: [Stage; 14] = [
        Stage::DhcpDiscover,
        Stage::DhcpOffer,
        Stage::DhcpRequest,
        Stage::DhcpAck,
        Stage::DhcpNak,
        Stage::Tftp,
        Stage::Binary,
        Stage::BootScript,
        Stage::Kernel,
        Stage::Initrd,
        Stage::MetaData,
        Stage::UserData,
        Stage::VendorData,
        Stage::PhoneHome,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::DhcpDiscover => "dhcp_discover",
            Stage::DhcpOffer => "dhcp_offer",
            Stage::DhcpRequest => "dhcp_request",
            Stage::DhcpAck => "dhcp_ack",
            Stage::DhcpNak => "dhcp_nak",
            Stage::Tftp => "tftp",
            Stage::Binary => "binary",
            Stage::BootScript => "boot_script",
            Stage::Kernel => "kernel",
            Stage::Initrd => "initrd",
            Stage::MetaData => "meta_data",
            Stage::UserData => "user_data",
            Stage::VendorData => "vendor_data",
            Stage::PhoneHome => "phone_home",
        }
    }
}

/// One thing that happened to a node's boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootEvent {
    /// Unix time in milliseconds, at the edge.
    pub at_ms: i64,
    pub stage: Stage,
    /// The node's xname, when the inventory knows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// What the stage did: a file and its bytes, `done`/`aborted`, which script.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Whether the stage failed (an aborted transfer, a NAK, the unknown-node script).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

impl BootEvent {
    /// The node the event belongs to: its xname, else its MAC.
    pub fn node(&self) -> Option<&str> {
        [&self.xname, &self.mac]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
    }
}

/// Where a node's current boot is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub node: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
    pub stage: Stage,
    pub failed: bool,
    /// When the last event came.
    pub at_ms: i64,
    /// When the current boot's first event came.
    pub started_ms: i64,
    /// Milliseconds from the boot's first event to phone-home, once it phoned home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phoned_home_after_ms: Option<i64>,
}

/// Whether `e` starts a new boot after `prev`, the node's previous event: a DHCP discover
/// after anything past the firmware's and iPXE's own DHCP and binary loading (a boot script
/// fetched, a kernel, cloud-init, a phone-home), or after a long silence. iPXE's discover after
/// loading its binary belongs to the same boot; a fresh discover after the boot script means
/// the node started over.
fn starts_boot(prev: Option<&BootEvent>, e: &BootEvent) -> bool {
    let firmware = |s: Stage| {
        matches!(
            s,
            Stage::DhcpDiscover
                | Stage::DhcpOffer
                | Stage::DhcpRequest
                | Stage::DhcpAck
                | Stage::DhcpNak
                | Stage::Tftp
                | Stage::Binary
        )
    };
    e.stage == Stage::DhcpDiscover
        && prev.is_none_or(|p| !firmware(p.stage) || e.at_ms - p.at_ms >= NEW_BOOT_GAP_MS)
}

/// The events split into boots, oldest first (events before the first boot start form one).
pub fn boots(events: &[BootEvent]) -> Vec<&[BootEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..events.len() {
        if starts_boot(Some(&events[i - 1]), &events[i]) {
            out.push(&events[start..i]);
            start = i;
        }
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// The events of a node's last boot (all of them if no boot start is among them).
pub fn last_boot(events: &[BootEvent]) -> &[BootEvent] {
    let mut start = 0;
    for i in 0..events.len() {
        if starts_boot(i.checked_sub(1).map(|j| &events[j]), &events[i]) {
            start = i;
        }
    }
    &events[start..]
}

fn progress_after(
    old: Option<Progress>,
    node: &str,
    site: &str,
    e: &BootEvent,
    prev: Option<&BootEvent>,
) -> Progress {
    let started_ms = match &old {
        Some(p) if !starts_boot(prev, e) => p.started_ms,
        _ => e.at_ms,
    };
    Progress {
        node: node.to_string(),
        site: if site.is_empty() {
            old.map(|o| o.site).unwrap_or_default()
        } else {
            site.to_string()
        },
        stage: e.stage,
        failed: e.failed,
        at_ms: e.at_ms,
        started_ms,
        phoned_home_after_ms: (e.stage == Stage::PhoneHome).then_some(e.at_ms - started_ms),
    }
}

fn codec(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("boot events: {e}"))
}

/// Stores `events` (of `site`, empty at the edge) in their nodes' timelines and progress; the
/// returned progress records are the nodes' new states (for metrics). Events without a node are
/// dropped. Writes go in batches of `chunk` records.
pub async fn record(
    store: &dyn Store,
    site: &str,
    events: &[BootEvent],
    chunk: usize,
) -> Result<Vec<Progress>, StoreError> {
    let mut by_node: BTreeMap<String, Vec<BootEvent>> = BTreeMap::new();
    for e in events {
        if let Some(n) = e.node() {
            by_node.entry(n.to_string()).or_default().push(e.clone());
        }
    }
    if by_node.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = by_node.keys().cloned().collect();
    let mut timelines: HashMap<String, Vec<BootEvent>> = HashMap::new();
    for r in store.get_many(TIMELINES, &ids).await? {
        timelines.insert(r.id.clone(), serde_json::from_str(&r.body).map_err(codec)?);
    }
    // Progress records carry the site as a lookup key, so they are replaced as read (a
    // concurrent writer makes the batch fail, and the agent sends the report again).
    let mut progress: HashMap<String, (Record, Progress)> = HashMap::new();
    for r in store.get_many(PROGRESS, &ids).await? {
        let p = serde_json::from_str(&r.body).map_err(codec)?;
        progress.insert(r.id.clone(), (r, p));
    }
    let mut groups: Vec<Vec<Write>> = Vec::new();
    let mut out = Vec::new();
    for (node, mut new) in by_node {
        new.sort_by_key(|e| e.at_ms);
        let mut list = timelines.remove(&node).unwrap_or_default();
        let (prev_record, mut p) = match progress.remove(&node) {
            Some((r, p)) => (Some(r), Some(p)),
            None => (None, None),
        };
        for e in new {
            // A resent report carries events already kept.
            if list.contains(&e) {
                continue;
            }
            let prev = list.last();
            // An event older than the newest kept (a late report) joins the list but does
            // not move the node's progress back.
            if prev.is_none_or(|l| l.at_ms <= e.at_ms) {
                p = Some(progress_after(p, &node, site, &e, prev));
            }
            list.push(e);
        }
        list.sort_by_key(|e| e.at_ms);
        let excess = list.len().saturating_sub(KEEP_EVENTS);
        list.drain(..excess);
        let mut ops = Vec::with_capacity(2);
        ops.push(Write::Upsert {
            table: TIMELINES,
            record: Record::new(node.clone(), serde_json::to_string(&list).map_err(codec)?),
        });
        if let Some(p) = p {
            let mut r = Record::new(node.clone(), serde_json::to_string(&p).map_err(codec)?);
            if !p.site.is_empty() {
                r.lookups.push(IndexKey::new("site", p.site.clone()));
            }
            ops.push(Write::Put {
                table: PROGRESS,
                record: r,
                prev: prev_record,
            });
            out.push(p);
        }
        groups.push(ops);
    }
    // A node's timeline and progress go in the same batch: a resend after a failed batch
    // would otherwise find its events kept and never move its progress.
    let mut batch: Vec<Write> = Vec::new();
    for g in groups {
        if !batch.is_empty() && batch.len() + g.len() > chunk.max(2) {
            store.write(std::mem::take(&mut batch)).await?;
        }
        batch.extend(g);
    }
    if !batch.is_empty() {
        store.write(batch).await?;
    }
    Ok(out)
}

/// The events kept for `node` (an xname or a MAC), oldest first.
pub async fn timeline(store: &dyn Store, node: &str) -> Result<Vec<BootEvent>, StoreError> {
    match store.get(TIMELINES, node).await? {
        Some(r) => serde_json::from_str(&r.body).map_err(codec),
        None => Ok(Vec::new()),
    }
}

/// The progress of every node (of `site`, if given).
pub async fn progress(store: &dyn Store, site: Option<&str>) -> Result<Vec<Progress>, StoreError> {
    let key = site.map(|s| IndexKey::new("site", s));
    store
        .list_all(PROGRESS, key.as_ref())
        .await?
        .iter()
        .map(|r| serde_json::from_str(&r.body).map_err(codec))
        .collect()
}

/// How many nodes are at each stage, and which are stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub nodes: usize,
    /// Nodes whose last event is each stage.
    pub stages: BTreeMap<String, usize>,
    pub phoned_home: usize,
    /// Nodes short of phone-home with no event for `stuck_after_s`, longest silent first.
    pub stuck: Vec<Progress>,
    pub stuck_after_s: i64,
    /// Boot durations to phone-home, in seconds: count, median and slowest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_phone_home_s: Option<Durations>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

impl Eq for Durations {}

/// Aggregates `nodes` at `now_ms`.
pub fn status(nodes: &[Progress], now_ms: i64, stuck_after_s: i64) -> Status {
    let mut stages = BTreeMap::new();
    let mut stuck = Vec::new();
    let mut times: Vec<i64> = Vec::new();
    for p in nodes {
        *stages.entry(p.stage.name().to_string()).or_insert(0) += 1;
        if p.stage == Stage::PhoneHome {
            times.extend(p.phoned_home_after_ms);
        } else if now_ms - p.at_ms >= stuck_after_s * 1000 {
            stuck.push(p.clone());
        }
    }
    stuck.sort_by_key(|p| (p.at_ms, p.node.clone()));
    times.sort_unstable();
    let pick = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).map(|t| *t as f64 / 1000.0).unwrap_or(0.0)
    };
    Status {
        nodes: nodes.len(),
        phoned_home: stages.get(Stage::PhoneHome.name()).copied().unwrap_or(0),
        stages,
        stuck,
        stuck_after_s,
        time_to_phone_home_s: (!times.is_empty()).then(|| Durations {
            count: times.len(),
            p50: pick(0.5),
            p90: pick(0.9),
            max: pick(1.0),
        }),
    }
}

/// Where the recorder's reads are served, by the cloud and by each edge agent.
pub const BOOTS: &str = "/edge/v1/boots";

/// Who may call [`router`]'s routes: readers.
pub fn access(method: &axum::http::Method, route: &str) -> Option<skyport_http::access::Access> {
    use skyport_http::access::{Access, Need};
    route.starts_with(BOOTS).then(|| {
        if skyport_http::access::is_read(method) {
            Access::Need(Need::Read)
        } else {
            Access::Need(Need::Admin)
        }
    })
}

/// `GET /edge/v1/boots` (how many nodes are at each stage, which are stuck; `site`, `group`,
/// `stuck_after` seconds) and `GET /edge/v1/boots/{node}` (a node's kept events, by xname or
/// MAC) over `store`.
pub fn router(store: std::sync::Arc<dyn Store>) -> axum::Router {
    axum::Router::new()
        .route(BOOTS, axum::routing::get(status_route))
        .route(
            &format!("{BOOTS}/{{node}}"),
            axum::routing::get(timeline_route),
        )
        .with_state(store)
}

type Shared = std::sync::Arc<dyn Store>;

async fn status_route(
    axum::extract::State(store): axum::extract::State<Shared>,
    q: skyport_http::QueryParams,
) -> Result<axum::response::Response, skyport_http::ApiError> {
    use skyport_http::ApiError;
    if let Some((k, _)) =
        q.0.iter()
            .find(|(k, _)| !["site", "group", "stuck_after"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?} (site, group, stuck_after)"
        )));
    }
    let stuck_after = match q.first("stuck_after") {
        None => STUCK_AFTER_S,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=86_400 * 30).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request(format!("stuck_after={v:?}: seconds between 1 and 2592000"))
            })?,
    };
    let site = q.first("site").filter(|s| !s.is_empty());
    let mut nodes = progress(store.as_ref(), site).await?;
    let group = q.first("group").filter(|g| !g.is_empty());
    if let Some(g) = group {
        let members =
            skyport_inventory::reads::group_members(store.as_ref(), &[g.to_string()]).await?;
        let Some(m) = members.get(g) else {
            return Err(ApiError::not_found(format!("no such group: {g}")));
        };
        let m: std::collections::HashSet<&str> = m.iter().map(String::as_str).collect();
        nodes.retain(|p| m.contains(p.node.as_str()));
    }
    let mut s = serde_json::to_value(status(&nodes, now_ms(), stuck_after))
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    s["site"] = site.into();
    s["group"] = group.into();
    Ok(skyport_http::json(axum::http::StatusCode::OK, &s))
}

async fn timeline_route(
    axum::extract::State(store): axum::extract::State<Shared>,
    axum::extract::Path(node): axum::extract::Path<String>,
) -> Result<axum::response::Response, skyport_http::ApiError> {
    use skyport_http::ApiError;
    let (xname, mac) = if let Ok(x) = skyport_model::Xname::parse(&node) {
        (Some(x.to_string()), None)
    } else if let Ok(m) = skyport_model::Mac::parse(&node) {
        (
            skyport_inventory::reads::interface_owner(store.as_ref(), &m).await?,
            Some(m),
        )
    } else {
        return Err(ApiError::bad_request(format!(
            "{node:?} is neither an xname nor a MAC"
        )));
    };
    // A node's events before the inventory knew it are kept under its MAC.
    let mut events = Vec::new();
    if let Some(x) = &xname {
        events.extend(timeline(store.as_ref(), x).await?);
    }
    if let Some(m) = mac {
        events.extend(timeline(store.as_ref(), &m.to_string()).await?);
    }
    events.sort_by_key(|e| e.at_ms);
    let name = xname.or(mac.map(|m| m.to_string())).unwrap_or_default();
    if events.is_empty() {
        return Err(ApiError::not_found(format!("no boot events for {name}")));
    }
    Ok(skyport_http::json(
        axum::http::StatusCode::OK,
        &serde_json::json!({"node": name, "events": events}),
    ))
}

pub use skyport_model::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, stage: Stage) -> BootEvent {
        BootEvent {
            at_ms,
            stage,
            xname: "x1000c0s0b0n0".into(),
            mac: "52:54:00:00:00:01".into(),
            ip: String::new(),
            detail: String::new(),
            failed: false,
        }
    }

    #[tokio::test]
    async fn a_boot_is_a_timeline_and_a_progress_and_resends_change_nothing() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let store = store.as_ref();
        let boot1 = [
            ev(1_000, Stage::DhcpDiscover),
            ev(1_500, Stage::DhcpAck),
            ev(2_000, Stage::BootScript),
            ev(9_000, Stage::Kernel),
            ev(30_000, Stage::PhoneHome),
        ];
        record(store, "east", &boot1, 25).await.unwrap();
        record(store, "east", &boot1[3..], 25).await.unwrap();
        let t = timeline(store, "x1000c0s0b0n0").await.unwrap();
        assert_eq!(t, boot1);
        let p = progress(store, Some("east")).await.unwrap();
        assert_eq!(p[0].phoned_home_after_ms, Some(29_000));
        assert!(progress(store, Some("west")).await.unwrap().is_empty());
        // A boot script fetched by hand, then the node boots: the boot starts at its discover,
        // and iPXE's own discover after TFTP belongs to the same boot.
        let mut pre = vec![
            ev(40_000, Stage::BootScript),
            ev(41_000, Stage::DhcpDiscover),
        ];
        pre.extend([ev(42_000, Stage::Tftp), ev(43_000, Stage::DhcpDiscover)]);
        assert_eq!(last_boot(&pre), &pre[1..]);
        // A reboot: a new discover after phone-home starts the next boot.
        let boot2 = [ev(100_000, Stage::DhcpDiscover), ev(101_000, Stage::Tftp)];
        record(store, "east", &boot2, 25).await.unwrap();
        let t = timeline(store, "x1000c0s0b0n0").await.unwrap();
        assert_eq!(last_boot(&t), &boot2);
        // The console shows boots one by one: the same split as `last_boot`'s.
        assert_eq!(boots(&t), vec![&boot1[..], &boot2[..]]);
        assert_eq!(boots(&pre), vec![&pre[..1], &pre[1..]]);
        assert!(boots(&[]).is_empty());
        let p = progress(store, None).await.unwrap();
        assert_eq!(
            (p[0].stage, p[0].started_ms, p[0].phoned_home_after_ms),
            (Stage::Tftp, 100_000, None)
        );
        let s = status(&p, 101_000 + 301_000, STUCK_AFTER_S);
        assert_eq!((s.nodes, s.stuck.len(), s.phoned_home), (1, 1, 0));
        // The kept history is bounded.
        let many: Vec<BootEvent> = (0..200)
            .map(|i| ev(200_000 + i, Stage::BootScript))
            .collect();
        record(store, "east", &many, 25).await.unwrap();
        assert_eq!(
            timeline(store, "x1000c0s0b0n0").await.unwrap().len(),
            KEEP_EVENTS
        );
    }

    #[test]
    fn status_counts_stages_and_times_to_phone_home() {
        let p = |node: &str, stage, at_ms, after| Progress {
            node: node.into(),
            site: "east".into(),
            stage,
            failed: false,
            at_ms,
            started_ms: 0,
            phoned_home_after_ms: after,
        };
        let nodes = [
            p("a", Stage::PhoneHome, 30_000, Some(30_000)),
            p("b", Stage::PhoneHome, 40_000, Some(40_000)),
            p("c", Stage::Kernel, 10_000, None),
            p("d", Stage::DhcpAck, 399_000, None),
        ];
        let s = status(&nodes, 400_000, 300);
        assert_eq!(s.stages["phone_home"], 2);
        assert_eq!(
            s.stuck.iter().map(|p| p.node.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        let d = s.time_to_phone_home_s.unwrap();
        assert_eq!((d.count, d.max), (2, 40.0));
    }
}
