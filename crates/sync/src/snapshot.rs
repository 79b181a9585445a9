//! The snapshot document and the agent's report, with the checks an agent applies before a
//! snapshot may replace the one it serves from.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use skyport_sites::EdgeStatus;
use skyport_store::{IndexKey, Record, Table};

/// The snapshot format this build reads and writes. An agent refuses any other, so a cloud
/// upgraded ahead of its edges never has its data half-understood.
pub const FORMAT: u32 = 1;

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

/// `GET /edge/v1/snapshot` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub generation: String,
    /// Table name → every record of it, in id order.
    pub tables: BTreeMap<String, Vec<SyncRecord>>,
}

/// Why a snapshot was refused; the agent keeps serving the one it has.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot format {got} is not the {want} this agent reads; upgrade the agent")]
    Format { got: u32, want: u32 },
    #[error("snapshot has no generation")]
    NoGeneration,
    #[error("snapshot carries table {0:?}, which is not synced to the edge")]
    UnknownTable(String),
    #[error("snapshot lacks table {0}")]
    MissingTable(String),
    #[error("snapshot table {table}: {reason}")]
    BadRecord { table: String, reason: String },
}

impl Snapshot {
    /// Checks the whole document and returns its records: every synced table present and no
    /// other, ids non-empty and unique per table, bodies JSON, no unique key held twice. A
    /// snapshot that fails any check is refused as a whole.
    pub fn into_records(self) -> Result<(String, Vec<(Table, Record)>), SnapshotError> {
        if self.format != FORMAT {
            return Err(SnapshotError::Format {
                got: self.format,
                want: FORMAT,
            });
        }
        if self.generation.trim().is_empty() {
            return Err(SnapshotError::NoGeneration);
        }
        for name in self.tables.keys() {
            if crate::synced_table(name).is_none() {
                return Err(SnapshotError::UnknownTable(name.clone()));
            }
        }
        let mut tables = self.tables;
        let mut out = Vec::new();
        let mut claimed = HashSet::new();
        for t in crate::SYNCED {
            let recs = tables
                .remove(t.name())
                .ok_or_else(|| SnapshotError::MissingTable(t.name().into()))?;
            let bad = |reason: String| SnapshotError::BadRecord {
                table: t.name().into(),
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
                out.push((*t, r.into_record()));
            }
        }
        Ok((self.generation, out))
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
}

/// Most entries one report may carry; an agent sends larger backlogs in several reports.
pub const MAX_REPORT_ENTRIES: usize = 5000;

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            format: FORMAT,
            generation: "g1".into(),
            tables: crate::SYNCED
                .iter()
                .map(|t| (t.name().to_string(), Vec::new()))
                .collect(),
        }
    }

    fn rec(id: &str, body: &str) -> SyncRecord {
        SyncRecord {
            id: id.into(),
            version: 1,
            body: body.into(),
            lookups: vec![["type".into(), "Node".into()]],
            uniques: vec![["nid".into(), id.into()]],
        }
    }

    #[test]
    fn a_good_snapshot_round_trips_its_keys() {
        let mut s = snap();
        s.tables
            .insert("Components".into(), vec![rec("x1", "{\"ID\":\"x1\"}")]);
        let (g, recs) = s.into_records().unwrap();
        assert_eq!(g, "g1");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1.lookups, vec![IndexKey::new("type", "Node")]);
        assert_eq!(recs[0].1.uniques, vec![IndexKey::new("nid", "x1")]);
    }

    #[test]
    fn bad_snapshots_are_refused_whole() {
        let mut s = snap();
        s.format = 2;
        assert!(matches!(
            s.into_records(),
            Err(SnapshotError::Format { .. })
        ));
        let mut s = snap();
        s.tables.remove("BootParams");
        assert_eq!(
            s.into_records().unwrap_err(),
            SnapshotError::MissingTable("BootParams".into())
        );
        let mut s = snap();
        s.tables.insert("RedfishEndpoints".into(), vec![]);
        assert!(matches!(
            s.into_records(),
            Err(SnapshotError::UnknownTable(_))
        ));
        // Unparsable JSON, a duplicate id, a unique key that is not an index name.
        let mut odd_unique = rec("b", "{}");
        odd_unique.uniques = vec![["nid".into(), "a".into()]];
        for records in [
            vec![rec("a", "{"), rec("b", "{}")],
            vec![rec("a", "{}"), rec("a", "{}")],
            vec![rec("a", "{}"), odd_unique],
        ] {
            let mut s = snap();
            s.tables.insert("Components".into(), records);
            assert!(matches!(
                s.into_records(),
                Err(SnapshotError::BadRecord { .. })
            ));
        }
        let mut s = snap();
        s.generation = " ".into();
        assert_eq!(s.into_records().unwrap_err(), SnapshotError::NoGeneration);
    }
}
