//! The storage trait every Skyport backend implements, and the rules all backends share.
//!
//! The trait is deliberately narrow: versioned JSON records in named tables, non-unique lookup
//! keys (type, IP, group member, ...) for indexed listing, unique keys (NID, BMC MAC, ...) that
//! at most one record may hold, and one atomic [`Store::write`] of many operations.
//!
//! Every write is compare-and-swap. A `Put` carries the record the caller read (`prev`), or
//! `None` to require that the record does not exist yet; a `Delete` carries the record it deletes.
//! The backend applies the whole batch only if every record is still at the version the caller
//! read, so two concurrent writers can never silently overwrite each other (the loser gets
//! [`StoreError::Conflict`] and re-reads). `prev` also tells the backend which index entries to
//! retire, so no backend ever needs a read-before-write of its own. Uniqueness is enforced by the
//! write itself (a conditional put or a primary key), never by a read followed by a write.
//!
//! The semantics are pinned by the conformance suite in `skyport-store-conformance`, which runs
//! unchanged against every backend.

mod decorator;
pub use decorator::Decorator;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A table name. Tables are declared by the services as constants; the name must be non-empty
/// ASCII alphanumeric (backends build keys from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(pub &'static str);

impl Table {
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A secondary key: `name` says what it indexes (`type`, `ip`, `nid`), `value` the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexKey {
    pub name: String,
    pub value: String,
}

impl IndexKey {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        IndexKey {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Display for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// One stored record. `body` is opaque to the store (the services keep JSON there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// Assigned by the store: 1 on create, +1 on every replace. Ignored on input.
    pub version: u64,
    pub body: String,
    /// Non-unique keys this record can be listed by, within its table.
    pub lookups: Vec<IndexKey>,
    /// Keys that no other record, in any table, may hold at the same time.
    pub uniques: Vec<IndexKey>,
}

impl Record {
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Record {
            id: id.into(),
            version: 0,
            body: body.into(),
            lookups: Vec::new(),
            uniques: Vec::new(),
        }
    }

    pub fn with_lookup(mut self, name: &str, value: impl Into<String>) -> Self {
        self.lookups.push(IndexKey::new(name, value));
        self
    }

    pub fn with_unique(mut self, name: &str, value: impl Into<String>) -> Self {
        self.uniques.push(IndexKey::new(name, value));
        self
    }
}

/// One operation of an atomic [`Store::write`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Create (`prev: None`, fails if the id exists) or replace (`prev: Some`, fails unless the
    /// stored version is still `prev.version`).
    Put {
        table: Table,
        record: Record,
        prev: Option<Record>,
    },
    /// Delete `prev`, failing unless it is still at `prev.version`.
    Delete { table: Table, prev: Record },
    /// Write nothing, but fail the batch unless `prev` is still at `prev.version`
    /// (for example: a group member must still exist when it is added).
    Check { table: Table, prev: Record },
    /// Create or overwrite without reading first: the last writer wins. Only for records with
    /// no lookup or unique keys whose content is a fact about "now" (the last time a node
    /// fetched its boot script), where a lost race loses nothing worth keeping and a read
    /// before every write would double the cost of a hot path.
    Upsert { table: Table, record: Record },
}

impl Write {
    pub fn table(&self) -> Table {
        match self {
            Write::Put { table, .. }
            | Write::Delete { table, .. }
            | Write::Check { table, .. }
            | Write::Upsert { table, .. } => *table,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Write::Put { record, .. } | Write::Upsert { record, .. } => &record.id,
            Write::Delete { prev, .. } | Write::Check { prev, .. } => &prev.id,
        }
    }

    /// The record as the caller read it, if any.
    pub fn prev(&self) -> Option<&Record> {
        match self {
            Write::Put { prev, .. } => prev.as_ref(),
            Write::Delete { prev, .. } | Write::Check { prev, .. } => Some(prev),
            Write::Upsert { .. } => None,
        }
    }

    /// The record as it will be after the write, if any.
    pub fn next(&self) -> Option<&Record> {
        match self {
            Write::Put { record, .. } | Write::Upsert { record, .. } => Some(record),
            Write::Delete { .. } => None,
            Write::Check { prev, .. } => Some(prev),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Return ids strictly greater than this.
    pub after: Option<String>,
    pub limit: usize,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }
}

/// Records in ascending id order; `next` is set when more may follow (pass it as `after`).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record was created, changed or deleted by someone else since it was read.
    #[error("{table}/{id} was changed by another writer; re-read and retry")]
    Conflict { table: String, id: String },
    /// A unique key is already held by another record.
    #[error("{key} is already used by {owner}")]
    Duplicate { key: IndexKey, owner: String },
    /// The batch itself is malformed (e.g. the same record twice); a programming error.
    #[error("invalid write batch: {0}")]
    InvalidBatch(String),
    /// The backend could not be reached or failed; the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("stored record {table}/{id} is unreadable: {reason}")]
    Corrupt {
        table: String,
        id: String,
        reason: String,
    },
}

impl StoreError {
    pub fn unavailable(e: impl fmt::Display) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage backend. Implementations: SQLite (embedded) and DynamoDB.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and `service/storage/status` (`sqlite`, `dynamodb`).
    fn backend(&self) -> &'static str;

    async fn get(&self, table: Table, id: &str) -> Result<Option<Record>>;

    /// The records that exist among `ids`, in ascending id order.
    async fn get_many(&self, table: Table, ids: &[String]) -> Result<Vec<Record>>;

    /// The records that exist among `keys`, from any tables, in one round trip where the
    /// backend can (one `BatchGetItem` on DynamoDB). Order is unspecified.
    async fn get_keys(&self, keys: &[(Table, String)]) -> Result<Vec<(Table, Record)>> {
        let mut by_table: BTreeMap<Table, Vec<String>> = BTreeMap::new();
        for (t, id) in keys {
            by_table.entry(*t).or_default().push(id.clone());
        }
        let mut out = Vec::new();
        for (t, ids) in by_table {
            out.extend(self.get_many(t, &ids).await?.into_iter().map(|r| (t, r)));
        }
        Ok(out)
    }

    /// A page of the table, or of the records holding lookup key `by`, in ascending id order.
    async fn list(&self, table: Table, by: Option<&IndexKey>, page: PageRequest) -> Result<Page>;

    /// The record holding unique key `key`, if any, with its table name.
    async fn get_unique(&self, key: &IndexKey) -> Result<Option<(String, String)>>;

    /// Applies every operation or none.
    async fn write(&self, ops: Vec<Write>) -> Result<()>;

    /// Cheap liveness probe of the backend.
    async fn ping(&self) -> Result<()>;

    /// Every record of a table (or of a lookup key), following pages.
    async fn list_all(&self, table: Table, by: Option<&IndexKey>) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(1000);
        loop {
            let p = self.list(table, by, page.clone()).await?;
            out.extend(p.records);
            match p.next {
                Some(n) => page.after = Some(n),
                None => return Ok(out),
            }
        }
    }
}

/// Deletes `records` of `table`, each as it was read (a record changed since is a conflict), in
/// batches of at most `batch` (a batch is atomic, the whole is not: a failed batch leaves the
/// earlier ones deleted). Returns how many were deleted.
pub async fn delete_in_batches(
    store: &dyn Store,
    table: Table,
    records: &[Record],
    batch: usize,
) -> Result<usize> {
    for chunk in records.chunks(batch) {
        let ops = chunk
            .iter()
            .cloned()
            .map(|prev| Write::Delete { table, prev })
            .collect();
        store.write(ops).await?;
    }
    Ok(records.len())
}

/// The checks every backend applies to a batch before touching storage, so all backends reject
/// the same malformed batches the same way: one operation per record, and no unique key claimed
/// by two records of the batch.
pub fn validate_batch(ops: &[Write]) -> Result<()> {
    let mut seen = HashSet::new();
    for op in ops {
        if !seen.insert((op.table(), op.id().to_string())) {
            return Err(StoreError::InvalidBatch(format!(
                "{}/{} appears twice",
                op.table(),
                op.id()
            )));
        }
        if let Write::Upsert { record, .. } = op
            && !(record.lookups.is_empty() && record.uniques.is_empty())
        {
            return Err(StoreError::InvalidBatch(format!(
                "{}/{}: an upsert cannot carry lookup or unique keys",
                op.table(),
                op.id()
            )));
        }
        if let (Write::Put { record, .. }, Some(prev)) = (op, op.prev())
            && prev.id != record.id
        {
            return Err(StoreError::InvalidBatch(format!(
                "{}: prev is {} but record is {}",
                op.table(),
                prev.id,
                record.id
            )));
        }
    }
    let mut claims: BTreeMap<&IndexKey, String> = BTreeMap::new();
    for op in ops {
        if let Some(next) = op.next() {
            for u in &next.uniques {
                let owner = format!("{}/{}", op.table(), op.id());
                if let Some(other) = claims.insert(u, owner.clone())
                    && other != owner
                {
                    return Err(StoreError::Duplicate {
                        key: u.clone(),
                        owner: other,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Unique keys a write releases (held by `prev`, not by the new record) and claims.
pub fn unique_changes(op: &Write) -> (Vec<&IndexKey>, Vec<&IndexKey>) {
    diff_keys(
        op.prev().map(|r| &r.uniques[..]).unwrap_or(&[]),
        op.next().map(|r| &r.uniques[..]).unwrap_or(&[]),
    )
}

/// Lookup keys a write removes and adds.
pub fn lookup_changes(op: &Write) -> (Vec<&IndexKey>, Vec<&IndexKey>) {
    diff_keys(
        op.prev().map(|r| &r.lookups[..]).unwrap_or(&[]),
        op.next().map(|r| &r.lookups[..]).unwrap_or(&[]),
    )
}

fn diff_keys<'a>(
    old: &'a [IndexKey],
    new: &'a [IndexKey],
) -> (Vec<&'a IndexKey>, Vec<&'a IndexKey>) {
    let removed = old.iter().filter(|k| !new.contains(k)).collect();
    let mut added: Vec<&IndexKey> = Vec::new();
    for k in new {
        if !old.contains(k) && !added.contains(&k) {
            added.push(k);
        }
    }
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = Table("T");

    #[test]
    fn batch_rejects_same_record_twice_and_double_claims() {
        let a = Record::new("a", "{}").with_unique("nid", "1");
        let b = Record::new("b", "{}").with_unique("nid", "1");
        let ops = vec![
            Write::Put {
                table: T,
                record: a.clone(),
                prev: None,
            },
            Write::Put {
                table: T,
                record: a,
                prev: None,
            },
        ];
        assert!(matches!(
            validate_batch(&ops),
            Err(StoreError::InvalidBatch(_))
        ));
        let ops = vec![
            Write::Put {
                table: T,
                record: Record::new("a", "{}").with_unique("nid", "1"),
                prev: None,
            },
            Write::Put {
                table: T,
                record: b,
                prev: None,
            },
        ];
        assert!(matches!(
            validate_batch(&ops),
            Err(StoreError::Duplicate { .. })
        ));
    }

    #[test]
    fn key_diffs() {
        let old = Record::new("a", "{}")
            .with_unique("nid", "1")
            .with_unique("mac", "x");
        let new = Record::new("a", "{}")
            .with_unique("nid", "2")
            .with_unique("mac", "x");
        let op = Write::Put {
            table: T,
            record: new,
            prev: Some(old),
        };
        let (rel, claim) = unique_changes(&op);
        assert_eq!(rel, vec![&IndexKey::new("nid", "1")]);
        assert_eq!(claim, vec![&IndexKey::new("nid", "2")]);
    }
}
