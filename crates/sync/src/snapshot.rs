//! The documents of edge sync: snapshot pages and change pages (with the checks an agent
//! applies before anything of a page reaches the copy it serves from) and the agent's report.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use skyport_sites::EdgeStatus;
use skyport_store::{IndexKey, Record, Table};

/// The sync format this build reads and writes (2: paged snapshots and a change feed). An agent
/// refuses any other, so a cloud upgraded ahead of its edges never has its data
/// half-understood.
pub const FORMAT: u32 = 2;

/// One stored record, with the keys the services derived for it when they wrote it (so the
/// agent's copy answers indexed lookups exactly as the cloud would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    pub id: String,
    pub version: u64,
    pub body: String,
    #[serde(default)]
    pub lookups: Vec<[String; 2]>,
    #[serde(default)]
    pub uniques: Vec<[String; 2]>,
}

impl SyncRecord {
    pub fn from_record(r: Record) -> Self {
        let pairs = |keys: Vec<IndexKey>| keys.into_iter().map(|k| [k.name, k.value]).collect();
        SyncRecord {
            id: r.id,
            version: r.version,
            body: r.body,
            lookups: pairs(r.lookups),
            uniques: pairs(r.uniques),
        }
    }

    fn into_record(self) -> Record {
        let keys = |pairs: Vec<[String; 2]>| {
            pairs
                .into_iter()
                .map(|[n, v]| IndexKey::new(n, v))
                .collect()
        };
        Record {
            id: self.id,
            version: self.version,
            body: self.body,
            lookups: keys(self.lookups),
            uniques: keys(self.uniques),
        }
    }
}

/// Records by table name, as they travel.
pub type Tables = BTreeMap<String, Vec<SyncRecord>>;

/// Records by table, as they travel.
pub fn tables(records: BTreeMap<Table, Vec<Record>>) -> Tables {
    records
        .into_iter()
        .map(|(t, recs)| {
            let recs = recs.into_iter().map(SyncRecord::from_record).collect();
            (t.name().to_string(), recs)
        })
        .collect()
}

/// `GET /edge/v1/snapshot` body: one page of a site's whole share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub format: u32,
    /// Where the change feed starts once every page is applied (the same on every page).
    pub cursor: String,
    /// The `page` of the next request; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub tables: Tables,
}

/// `GET /edge/v1/changes` body: what changed in a site's share after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePage {
    pub format: u32,
    /// The `after` of the next request.
    pub cursor: String,
    /// More changes follow: ask again at once.
    #[serde(default)]
    pub more: bool,
    /// The changes are too many to list (a cabinet moved): take a full snapshot.
    #[serde(default)]
    pub resync: bool,
    /// Records to hold as they are here (new or changed).
    pub tables: Tables,
    /// Records not to hold (deleted, or no longer the site's), by table.
    #[serde(default)]
    pub deleted: BTreeMap<String, Vec<String>>,
}

/// Why a page was refused; the agent keeps serving what it has.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("sync format {got} is not the {want} this agent reads; upgrade the agent")]
    Format { got: u32, want: u32 },
    #[error("the page has no cursor")]
    NoCursor,
    #[error("the page carries table {0:?}, which is not synced to the edge")]
    UnknownTable(String),
    #[error("table {table}: {reason}")]
    BadRecord { table: String, reason: String },
}

/// Checks records as they arrived: synced tables only, ids non-empty and unique per table,
/// bodies JSON, no unique key held twice. A page that fails any check is refused whole.
pub fn checked(
    format: u32,
    cursor: &str,
    tables: Tables,
) -> Result<Vec<(Table, Record)>, SnapshotError> {
    if format != FORMAT {
        return Err(SnapshotError::Format {
            got: format,
            want: FORMAT,
        });
    }
    if cursor.trim().is_empty() {
        return Err(SnapshotError::NoCursor);
    }
    let mut out = Vec::new();
    let mut claimed = HashSet::new();
    for (name, recs) in tables {
        let t =
            crate::synced_table(&name).ok_or_else(|| SnapshotError::UnknownTable(name.clone()))?;
        let bad = |reason: String| SnapshotError::BadRecord {
            table: name.clone(),
            reason,
        };
        let mut ids = HashSet::new();
        for r in recs {
            if r.id.is_empty() {
                return Err(bad("a record has an empty id".into()));
            }
            if !ids.insert(r.id.clone()) {
                return Err(bad(format!("{} appears twice", r.id)));
            }
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&r.body) {
                return Err(bad(format!("{}: body is not JSON: {e}", r.id)));
            }
            for [n, v] in &r.uniques {
                if !claimed.insert((n.clone(), v.clone())) {
                    return Err(bad(format!("{}: unique key {n}={v} is held twice", r.id)));
                }
            }
            out.push((t, r.into_record()));
        }
    }
    Ok(out)
}

impl ChangePage {
    /// The records to hold and the keys to drop, checked ([`checked`]); a key may not be both.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> Result<(String, Vec<(Table, Record)>, Vec<(Table, String)>), SnapshotError> {
        let held = checked(self.format, &self.cursor, self.tables)?;
        let mut dropped = Vec::new();
        for (name, ids) in self.deleted {
            let t = crate::synced_table(&name)
                .ok_or_else(|| SnapshotError::UnknownTable(name.clone()))?;
            for id in ids {
                if id.is_empty() || held.iter().any(|(ht, r)| *ht == t && r.id == id) {
                    return Err(SnapshotError::BadRecord {
                        table: name.clone(),
                        reason: format!("{id:?} is both held and deleted"),
                    });
                }
                dropped.push((t, id));
            }
        }
        Ok((self.cursor, held, dropped))
    }
}

/// A MAC that asked an edge for a boot script and is not in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownMac {
    pub mac: String,
    /// The address it asked from, as the edge saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// The site whose edge saw it (filled in by the cloud from the report).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
}

/// `POST /edge/v1/reports` body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// The reporting site (free text, for admins: `GET /edge/v1/candidates` shows it).
    #[serde(default)]
    pub site: String,
    /// The agent's own state, shown by `GET /edge/v1/sites`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EdgeStatus>,
    #[serde(default)]
    pub endpoint_history: Vec<skyport_boot::EndpointAccess>,
    #[serde(default)]
    pub unknown_macs: Vec<UnknownMac>,
    /// What the site's nodes did while booting (the boot flight recorder).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boot_events: Vec<skyport_boot::flight::BootEvent>,
}

/// Most entries one report may carry; an agent sends larger backlogs in several reports.
pub const MAX_REPORT_ENTRIES: usize = 5000;

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, body: &str) -> SyncRecord {
        SyncRecord {
            id: id.into(),
            version: 1,
            body: body.into(),
            lookups: vec![["type".into(), "Node".into()]],
            uniques: vec![["nid".into(), id.into()]],
        }
    }

    fn page(records: Vec<SyncRecord>) -> ChangePage {
        ChangePage {
            format: FORMAT,
            cursor: "c".into(),
            more: false,
            resync: false,
            tables: BTreeMap::from([("Components".to_string(), records)]),
            deleted: BTreeMap::new(),
        }
    }

    #[test]
    fn a_good_page_round_trips_its_keys() {
        let (c, recs, gone) = page(vec![rec("x1", "{\"ID\":\"x1\"}")])
            .into_parts()
            .unwrap();
        assert_eq!(c, "c");
        assert!(gone.is_empty());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1.lookups, vec![IndexKey::new("type", "Node")]);
        assert_eq!(recs[0].1.uniques, vec![IndexKey::new("nid", "x1")]);
    }

    #[test]
    fn bad_pages_are_refused_whole() {
        let mut p = page(vec![]);
        p.format = 1;
        assert!(matches!(p.into_parts(), Err(SnapshotError::Format { .. })));
        let mut p = page(vec![]);
        p.tables.insert("RedfishEndpoints".into(), vec![]);
        assert!(matches!(
            p.into_parts(),
            Err(SnapshotError::UnknownTable(_))
        ));
        let mut p = page(vec![]);
        p.deleted.insert("Sites".into(), vec!["east".into()]);
        assert!(matches!(
            p.into_parts(),
            Err(SnapshotError::UnknownTable(_))
        ));
        let mut p = page(vec![rec("a", "{}")]);
        p.deleted.insert("Components".into(), vec!["a".into()]);
        assert!(matches!(
            p.into_parts(),
            Err(SnapshotError::BadRecord { .. })
        ));
        // Unparsable JSON, a duplicate id, a unique key held twice.
        let mut odd_unique = rec("b", "{}");
        odd_unique.uniques = vec![["nid".into(), "a".into()]];
        for records in [
            vec![rec("a", "{"), rec("b", "{}")],
            vec![rec("a", "{}"), rec("a", "{}")],
            vec![rec("a", "{}"), odd_unique],
            vec![rec("", "{}")],
        ] {
            assert!(matches!(
                page(records).into_parts(),
                Err(SnapshotError::BadRecord { .. })
            ));
        }
        let mut p = page(vec![]);
        p.cursor = " ".into();
        assert_eq!(p.into_parts().unwrap_err(), SnapshotError::NoCursor);
    }
}
