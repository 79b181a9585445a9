//! The pending notifications (`ScnEvents`) and the store decorator that writes them: every
//! batch that changes components carries the notifications of its changes, so what is stored
//! is exactly what is notified, whoever wrote it (an admin's PATCH, discovery, a power job's
//! result, an edge agent's report).
//!
//! What SMD notifies, per changed component (`state-change.go`, `components.go`,
//! `discover.go`): a new component or a new `State` (with its `Flag`); a new `Enabled` (a
//! missing one reads as `true`); a new `SoftwareStatus`; a new `Role` or `SubRole` (the payload
//! carries both). Components with the same change share one notification; a deleted component
//! notifies nothing (its endpoint's retirement already set it `Empty`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use skyport_store::{Decorator, Record, Result, Store, Table, Write};
use skyport_wire::Component;
use skyport_wire::scn::ScnPayload;

use crate::records::COMPONENTS;

pub const EVENTS: Table = Table("ScnEvents");
/// Most components one notification names; a larger change is split (a record stays well
/// under DynamoDB's item size).
pub const MAX_COMPONENTS: usize = 1000;

/// A pending notification and where its delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub payload: ScnPayload,
    /// Unix milliseconds of the change.
    pub created_ms: i64,
    /// Delivery attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be tried before (unix milliseconds): a retry's backoff, or a deliverer's claim.
    #[serde(default)]
    pub due_ms: i64,
    /// The URLs still to take it; `None` until the first attempt matches the subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// One kind of change and its new value (the payload without its components).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    State { state: String, flag: String },
    Enabled(bool),
    SoftwareStatus(String),
    Role { role: String, sub_role: String },
}

fn canonical_state(s: &str) -> String {
    s.parse::<skyport_model::State>()
        .map_or_else(|_| s.to_string(), |v| v.to_string())
}

/// The changes from `old` (absent: created) to `new`.
fn changes(old: Option<&Component>, new: &Component) -> Vec<Change> {
    let state = || Change::State {
        state: canonical_state(&new.state),
        flag: new.flag.clone(),
    };
    let Some(old) = old else {
        return if new.state.is_empty() {
            Vec::new()
        } else {
            vec![state()]
        };
    };
    let mut out = Vec::new();
    if !new.state.is_empty() && !old.state.eq_ignore_ascii_case(&new.state) {
        out.push(state());
    }
    let (was, is) = (old.enabled.unwrap_or(true), new.enabled.unwrap_or(true));
    if was != is {
        out.push(Change::Enabled(is));
    }
    if !new.software_status.is_empty() && old.software_status != new.software_status {
        out.push(Change::SoftwareStatus(new.software_status.clone()));
    }
    if !new.role.is_empty()
        && (!old.role.eq_ignore_ascii_case(&new.role)
            || !old.sub_role.eq_ignore_ascii_case(&new.sub_role))
    {
        out.push(Change::Role {
            role: new.role.clone(),
            sub_role: new.sub_role.clone(),
        });
    }
    out
}

fn payload(change: Change, components: Vec<String>) -> ScnPayload {
    let mut p = ScnPayload {
        components,
        ..ScnPayload::default()
    };
    match change {
        Change::State { state, flag } => {
            p.state = state;
            p.flag = flag;
        }
        Change::Enabled(e) => p.enabled = Some(e),
        Change::SoftwareStatus(s) => p.software_status = s,
        Change::Role { role, sub_role } => {
            p.role = role;
            p.sub_role = sub_role;
        }
    }
    p
}

fn decode(r: &Record) -> Option<Component> {
    match serde_json::from_str(&r.body) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(xname = %r.id, error = %e, "stored component unreadable; no SCN for it");
            None
        }
    }
}

/// The notifications a batch's component changes make. An upsert (no previous version in the
/// batch) is compared with what is stored now.
pub async fn payloads(inner: &dyn Store, ops: &[Write]) -> Result<Vec<ScnPayload>> {
    let mut by_change: BTreeMap<Change, Vec<String>> = BTreeMap::new();
    for op in ops {
        if op.table() != COMPONENTS {
            continue;
        }
        let (record, prev) = match op {
            Write::Put { record, prev, .. } => (record, prev.clone()),
            Write::Upsert { record, .. } => (record, inner.get(COMPONENTS, &record.id).await?),
            Write::Delete { .. } | Write::Check { .. } => continue,
        };
        let Some(new) = decode(record) else { continue };
        let old = prev.as_ref().and_then(decode);
        for c in changes(old.as_ref(), &new) {
            by_change.entry(c).or_default().push(new.id.clone());
        }
    }
    let mut out = Vec::new();
    for (change, mut ids) in by_change {
        ids.sort();
        ids.dedup();
        for chunk in ids.chunks(MAX_COMPONENTS) {
            out.push(payload(change.clone(), chunk.to_vec()));
        }
    }
    Ok(out)
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A new event's record: ids sort by time, then by a random part (two writers in one
/// millisecond never collide).
pub fn event_record(payload: ScnPayload, now_ms: i64) -> Result<Record> {
    let tail = skyport_model::random_uuid().unwrap_or_else(|_| {
        format!(
            "{:x}-{:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    });
    let ev = Event {
        payload,
        created_ms: now_ms,
        attempts: 0,
        due_ms: 0,
        targets: None,
        last_error: String::new(),
    };
    let body = serde_json::to_string(&ev).map_err(|e| {
        skyport_store::StoreError::InvalidBatch(format!("encoding an SCN event: {e}"))
    })?;
    Ok(Record::new(format!("{now_ms:013}-{tail}"), body))
}

/// The store every component writer uses: each batch that changes components also stores
/// their notifications, atomically with the change.
pub struct Notifying {
    inner: Arc<dyn Store>,
}

impl Notifying {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }

    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self::new(inner))
    }
}

#[async_trait::async_trait]
impl Decorator for Notifying {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    async fn write_through(&self, mut ops: Vec<Write>) -> Result<()> {
        if !ops.iter().any(|op| op.table() == COMPONENTS) {
            return self.inner.write(ops).await;
        }
        let now = skyport_model::now_ms();
        for p in payloads(self.inner.as_ref(), &ops).await? {
            ops.push(Write::Put {
                table: EVENTS,
                record: event_record(p, now)?,
                prev: None,
            });
        }
        self.inner.write(ops).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn comp(id: &str, state: &str) -> Component {
        serde_json::from_value(serde_json::json!({
            "ID": id, "Type": "Node", "State": state, "Flag": "OK", "Role": "Compute",
        }))
        .unwrap()
    }

    fn put(new: &Component, old: Option<&Component>) -> Write {
        let rec = |c: &Component| Record::new(c.id.clone(), serde_json::to_string(c).unwrap());
        Write::Put {
            table: COMPONENTS,
            record: rec(new),
            prev: old.map(rec),
        }
    }

    #[tokio::test]
    async fn changes_become_smds_payloads_grouped_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap();
        let (a0, b0) = (comp("x1c0s0b0n0", "On"), comp("x1c0s0b0n1", "On"));
        let (mut a1, mut b1) = (comp("x1c0s0b0n0", "ready"), comp("x1c0s0b0n1", "Ready"));
        a1.enabled = Some(false);
        b1.role = "Service".into();
        let fresh = comp("x1c0s1b0n0", "Populated");
        let same = comp("x1c0s2b0n0", "On");
        let ops = vec![
            put(&a1, Some(&a0)),
            put(&b1, Some(&b0)),
            put(&fresh, None),
            put(&same, Some(&same)),
        ];
        let got: Vec<Value> = payloads(&store, &ops)
            .await
            .unwrap()
            .iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect();
        use serde_json::{Value, json};
        assert_eq!(
            got,
            [
                json!({"Components":["x1c0s1b0n0"],"Flag":"OK","State":"Populated"}),
                json!({"Components":["x1c0s0b0n0","x1c0s0b0n1"],"Flag":"OK","State":"Ready"}),
                json!({"Components":["x1c0s0b0n0"],"Enabled":false}),
                json!({"Components":["x1c0s0b0n1"],"Role":"Service"}),
            ]
        );
    }
}
