//! The embedded backend: one SQLite file (WAL mode, `synchronous=FULL`) holding every table.
//!
//! Layout: `records(tbl, id, version, body, lookups, uniques)` keyed by `(tbl, id)`;
//! `lookups(tbl, name, value, id)` for indexed listing; `uniques(name, value, tbl, id)` whose
//! primary key makes a second holder of a unique key impossible. A batch runs in one
//! `BEGIN IMMEDIATE` transaction, so it is atomic and serialised with every other writer;
//! readers use their own connections and never block the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use skyport_store::{
    IndexKey, Page, PageRequest, Record, Result, Store, StoreError, Table, Write, validate_batch,
};

const READERS: usize = 4;
/// Ids looked up per reader call in `get_many`: a bulk request's read of 100,000 ids then takes
/// a connection for a few milliseconds at a time instead of for the whole read, so a boot
/// script's lookup never queues behind it. (Each lookup is its own implicit read transaction
/// either way, so splitting changes nothing that callers see.)
const READ_CHUNK: usize = 512;
const SCHEMA_VERSION: i64 = 1;

/// Why the database file could not be opened; names the path.
#[derive(Debug, thiserror::Error)]
#[error("cannot open store {path}: {source}")]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    Ok(c)
}

impl SqliteStore {
    /// A store in a fresh temporary directory, which is removed when the returned guard is
    /// dropped (for tests).
    #[cfg(feature = "testing")]
    pub fn temporary() -> std::io::Result<(tempfile::TempDir, std::sync::Arc<Self>)> {
        let dir = tempfile::tempdir()?;
        let store = Self::open(dir.path().join("db")).map_err(std::io::Error::other)?;
        Ok((dir, std::sync::Arc::new(store)))
    }

    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> std::result::Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| OpenError {
            path: path.clone(),
            source,
        };
        let writer = connect(&path).map_err(err)?;
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS records(
                    tbl TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
                    body TEXT NOT NULL, lookups TEXT NOT NULL, uniques TEXT NOT NULL,
                    PRIMARY KEY(tbl, id)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS lookups(
                    tbl TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL,
                    PRIMARY KEY(tbl, name, value, id)) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS lookups_owner ON lookups(tbl, id);
                 CREATE TABLE IF NOT EXISTS uniques(
                    name TEXT NOT NULL, value TEXT NOT NULL, tbl TEXT NOT NULL, id TEXT NOT NULL,
                    PRIMARY KEY(name, value)) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS uniques_owner ON uniques(tbl, id);",
            )
            .map_err(err)?;
        writer
            .execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?1)",
                params![SCHEMA_VERSION],
            )
            .map_err(err)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(connect(&path).map_err(err)?));
        }
        Ok(SqliteStore {
            path,
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces every record of `tables` with `records` (which must belong to those tables) in
    /// one transaction: readers see the old contents or the new, never a mix. Versions and index
    /// keys are taken as given. For a replica (the edge agent's copy of the cloud's tables), not
    /// for services, which write through compare-and-swap.
    pub async fn replace_tables(
        &self,
        tables: &[Table],
        records: Vec<(Table, Record)>,
    ) -> Result<()> {
        if let Some((t, r)) = records.iter().find(|(t, _)| !tables.contains(t)) {
            return Err(StoreError::InvalidBatch(format!(
                "{t}/{}: table is not being replaced",
                r.id
            )));
        }
        let tables: Vec<&'static str> = tables.iter().map(|t| t.name()).collect();
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            for t in &tables {
                for sql in [
                    "DELETE FROM records WHERE tbl = ?1",
                    "DELETE FROM lookups WHERE tbl = ?1",
                    "DELETE FROM uniques WHERE tbl = ?1",
                ] {
                    tx.execute(sql, params![t]).map_err(db)?;
                }
            }
            for (t, r) in &records {
                let version = stored_version(*t, r)?;
                tx.execute(
                    "INSERT INTO records(tbl, id, version, body, lookups, uniques)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        t.name(),
                        r.id,
                        version,
                        r.body,
                        encode_keys(&r.lookups),
                        encode_keys(&r.uniques)
                    ],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::InvalidBatch(format!("{t}/{} appears twice", r.id))
                    }
                    e => db(e),
                })?;
                insert_lookups(&tx, t.name(), r)?;
                for k in &r.uniques {
                    tx.execute(
                        "INSERT INTO uniques(name, value, tbl, id) VALUES(?1, ?2, ?3, ?4)",
                        params![k.name, k.value, t.name(), r.id],
                    )
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                        {
                            StoreError::Duplicate {
                                key: k.clone(),
                                owner: format!("{t}/{}", r.id),
                            }
                        }
                        e => db(e),
                    })?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    /// Holds `put` as given (versions and index keys included) and drops `remove`, in one
    /// transaction, with the records `state` makes of the number changed written beside them;
    /// returns how many records it changed (a record already held with the same version and body is not counted). A
    /// unique key of an incoming record is taken from whichever record held it (a replica
    /// follows its source; the old holder's own change arrives in the same or a later
    /// page). For a replica, like [`Self::replace_tables`].
    pub async fn merge_records(
        &self,
        put: Vec<(Table, Record)>,
        remove: Vec<(Table, String)>,
        state: impl FnOnce(usize) -> Result<Vec<(Table, Record)>> + Send + 'static,
    ) -> Result<usize> {
        self.with_writer(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let mut changed = 0usize;
            for (t, id) in &remove {
                changed += drop_record(&tx, t.name(), id)?;
            }
            for (t, r) in &put {
                let version = stored_version(*t, r)?;
                let same: Option<bool> = tx
                    .query_row(
                        "SELECT version = ?3 AND body = ?4 AND lookups = ?5 AND uniques = ?6
                         FROM records WHERE tbl = ?1 AND id = ?2",
                        params![
                            t.name(),
                            r.id,
                            version,
                            r.body,
                            encode_keys(&r.lookups),
                            encode_keys(&r.uniques)
                        ],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                if same == Some(true) {
                    continue;
                }
                drop_record(&tx, t.name(), &r.id)?;
                changed += 1;
                insert_record(&tx, t.name(), r, version)?;
                for k in &r.uniques {
                    tx.execute(
                        "INSERT OR REPLACE INTO uniques(name, value, tbl, id) VALUES(?1, ?2, ?3, ?4)",
                        params![k.name, k.value, t.name(), r.id],
                    )
                    .map_err(db)?;
                }
            }
            for (t, r) in state(changed)? {
                replace_record(&tx, t, &r)?;
            }
            tx.commit().map_err(db)?;
            Ok(changed)
        })
        .await
    }

    /// Replaces every record of `tables` with those `staged` holds of them, plus `state`, in
    /// one transaction, without reading them into memory (the database files are joined for
    /// the copy). Returns how many records were copied. `staged` must not be written to
    /// meanwhile. For a replica filled page by page.
    pub async fn replace_tables_from(
        &self,
        staged: &SqliteStore,
        tables: &[Table],
        state: Vec<(Table, Record)>,
    ) -> Result<usize> {
        let from = staged.path.to_string_lossy().into_owned();
        let tables: Vec<&'static str> = tables.iter().map(|t| t.name()).collect();
        self.with_writer(move |conn| {
            conn.execute("ATTACH DATABASE ?1 AS staged", params![from])
                .map_err(db)?;
            let copied = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                let mut copied = 0usize;
                for t in &tables {
                    for sql in [
                        "DELETE FROM main.records WHERE tbl = ?1",
                        "DELETE FROM main.lookups WHERE tbl = ?1",
                        "DELETE FROM main.uniques WHERE tbl = ?1",
                    ] {
                        tx.execute(sql, params![t]).map_err(db)?;
                    }
                    copied += tx
                        .execute(
                            "INSERT INTO main.records SELECT * FROM staged.records WHERE tbl = ?1",
                            params![t],
                        )
                        .map_err(db)?;
                    tx.execute(
                        "INSERT INTO main.lookups SELECT * FROM staged.lookups WHERE tbl = ?1",
                        params![t],
                    )
                    .map_err(db)?;
                    tx.execute(
                        "INSERT OR REPLACE INTO main.uniques
                         SELECT * FROM staged.uniques WHERE tbl = ?1",
                        params![t],
                    )
                    .map_err(db)?;
                }
                for (t, r) in &state {
                    replace_record(&tx, *t, r)?;
                }
                tx.commit().map_err(db)?;
                Ok(copied)
            })();
            let detached = conn.execute("DETACH DATABASE staged", []).map_err(db);
            let copied = copied?;
            detached?;
            Ok(copied)
        })
        .await
    }

    /// Runs `f` on the one writer connection, in a blocking task: writes never interleave.
    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| StoreError::unavailable("writer connection poisoned"))?;
            f(&mut conn)
        })
        .await
        .map_err(StoreError::unavailable)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
        tokio::task::spawn_blocking(move || {
            // A free connection if there is one, so a long read on one does not hold up the
            // reads dealt to it after it; only when all are busy, wait for this call's turn.
            let free = (0..READERS).find_map(|k| readers[(i + k) % READERS].try_lock().ok());
            let conn = match free {
                Some(c) => c,
                None => readers[i]
                    .lock()
                    .map_err(|_| StoreError::unavailable("reader connection poisoned"))?,
            };
            f(&conn)
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

/// A record's version as stored (SQLite integers are signed).
fn stored_version(t: Table, r: &Record) -> Result<i64> {
    i64::try_from(r.version)
        .map_err(|_| StoreError::InvalidBatch(format!("{t}/{}: version out of range", r.id)))
}

/// Removes the index entries of record `tbl`/`id`.
fn drop_keys(tx: &Connection, tbl: &str, id: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM lookups WHERE tbl = ?1 AND id = ?2",
        params![tbl, id],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM uniques WHERE tbl = ?1 AND id = ?2",
        params![tbl, id],
    )
    .map_err(db)?;
    Ok(())
}

/// Removes record `tbl`/`id` with its index entries; 1 if it was there.
fn drop_record(tx: &Connection, tbl: &str, id: &str) -> Result<usize> {
    drop_keys(tx, tbl, id)?;
    tx.execute(
        "DELETE FROM records WHERE tbl = ?1 AND id = ?2",
        params![tbl, id],
    )
    .map_err(db)
}

/// Puts `r` in place of whatever record `t`/`r.id` was (bookkeeping records of a replica,
/// which carry no unique keys).
fn replace_record(tx: &Connection, t: Table, r: &Record) -> Result<()> {
    let version = stored_version(t, r)?;
    drop_record(tx, t.name(), &r.id)?;
    insert_record(tx, t.name(), r, version)
}

/// Inserts `r` with its lookup entries (not its unique keys: callers decide how to claim them).
fn insert_record(tx: &Connection, tbl: &str, r: &Record, version: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO records(tbl, id, version, body, lookups, uniques)
         VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            tbl,
            r.id,
            version,
            r.body,
            encode_keys(&r.lookups),
            encode_keys(&r.uniques)
        ],
    )
    .map_err(db)?;
    insert_lookups(tx, tbl, r)
}

/// Lists `r` of table `tbl` under each of its lookup keys (a key listed twice is one entry).
fn insert_lookups(tx: &Connection, tbl: &str, r: &Record) -> Result<()> {
    for k in &r.lookups {
        tx.execute(
            "INSERT OR IGNORE INTO lookups(tbl, name, value, id) VALUES(?1, ?2, ?3, ?4)",
            params![tbl, k.name, k.value, r.id],
        )
        .map_err(db)?;
    }
    Ok(())
}

fn encode_keys(keys: &[IndexKey]) -> String {
    let pairs: Vec<[&str; 2]> = keys
        .iter()
        .map(|k| [k.name.as_str(), k.value.as_str()])
        .collect();
    serde_json::Value::from(
        pairs
            .iter()
            .map(|p| serde_json::Value::from(p.to_vec()))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn decode_keys(tbl: &str, id: &str, s: &str) -> Result<Vec<IndexKey>> {
    let pairs: Vec<(String, String)> =
        serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
            table: tbl.to_string(),
            id: id.to_string(),
            reason: format!("index keys: {e}"),
        })?;
    Ok(pairs
        .into_iter()
        .map(|(n, v)| IndexKey::new(n, v))
        .collect())
}

type Row = (String, i64, String, String, String);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_record(tbl: &str, (id, version, body, lookups, uniques): Row) -> Result<Record> {
    Ok(Record {
        lookups: decode_keys(tbl, &id, &lookups)?,
        uniques: decode_keys(tbl, &id, &uniques)?,
        version: u64::try_from(version).map_err(|_| StoreError::Corrupt {
            table: tbl.to_string(),
            id: id.clone(),
            reason: "negative version".into(),
        })?,
        id,
        body,
    })
}

fn apply(conn: &mut Connection, ops: &[Write]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    // Pass 1: check every version and retire the old index entries, so that a batch may move a
    // unique key from one record to another (a NID swap) without tripping over itself.
    for op in ops {
        let tbl = op.table().name();
        let id = op.id();
        if let Write::Upsert { record, .. } = op {
            tx.execute(
                "INSERT INTO records(tbl, id, version, body, lookups, uniques)
                 VALUES(?1, ?2, 1, ?3, '[]', '[]')
                 ON CONFLICT(tbl, id) DO UPDATE SET version = version + 1, body = excluded.body",
                params![tbl, id, record.body],
            )
            .map_err(db)?;
            continue;
        }
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM records WHERE tbl = ?1 AND id = ?2",
                params![tbl, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let expected = op.prev().map(|p| p.version as i64);
        if current != expected {
            return Err(StoreError::Conflict {
                table: tbl.to_string(),
                id: id.to_string(),
            });
        }
        if matches!(op, Write::Check { .. }) {
            continue;
        }
        drop_keys(&tx, tbl, id)?;
        match op {
            Write::Put { record, prev, .. } => {
                let version = prev.as_ref().map_or(1, |p| p.version as i64 + 1);
                tx.execute(
                    "INSERT OR REPLACE INTO records(tbl, id, version, body, lookups, uniques)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        tbl,
                        id,
                        version,
                        record.body,
                        encode_keys(&record.lookups),
                        encode_keys(&record.uniques)
                    ],
                )
                .map_err(db)?;
            }
            Write::Delete { .. } => {
                tx.execute(
                    "DELETE FROM records WHERE tbl = ?1 AND id = ?2",
                    params![tbl, id],
                )
                .map_err(db)?;
            }
            Write::Check { .. } | Write::Upsert { .. } => {}
        }
    }
    // Pass 2: claim the new index entries; the uniques primary key rejects a second holder.
    for op in ops {
        let Write::Put { table, record, .. } = op else {
            continue;
        };
        insert_lookups(&tx, table.name(), record)?;
        for k in &record.uniques {
            let owner: Option<(String, String)> = tx
                .query_row(
                    "SELECT tbl, id FROM uniques WHERE name = ?1 AND value = ?2",
                    params![k.name, k.value],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            match owner {
                Some((t, i)) if t == table.name() && i == record.id => {}
                Some((t, i)) => {
                    return Err(StoreError::Duplicate {
                        key: k.clone(),
                        owner: format!("{t}/{i}"),
                    });
                }
                None => {
                    tx.execute(
                        "INSERT INTO uniques(name, value, tbl, id) VALUES(?1, ?2, ?3, ?4)",
                        params![k.name, k.value, table.name(), record.id],
                    )
                    .map_err(db)?;
                }
            }
        }
    }
    tx.commit().map_err(db)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, table: Table, id: &str) -> Result<Option<Record>> {
        let id = id.to_string();
        self.read(move |c| {
            let r = c
                .query_row(
                    "SELECT id, version, body, lookups, uniques FROM records WHERE tbl = ?1 AND id = ?2",
                    params![table.name(), id],
                    row,
                )
                .optional()
                .map_err(db)?;
            r.map(|r| to_record(table.name(), r)).transpose()
        })
        .await
    }

    async fn get_many(&self, table: Table, ids: &[String]) -> Result<Vec<Record>> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let mut out = Vec::new();
        for chunk in ids.chunks(READ_CHUNK) {
            let chunk = chunk.to_vec();
            let found = self
                .read(move |c| {
                    let mut stmt = c
                        .prepare_cached(
                            "SELECT id, version, body, lookups, uniques FROM records WHERE tbl = ?1 AND id = ?2",
                        )
                        .map_err(db)?;
                    let mut out = Vec::new();
                    for id in &chunk {
                        if let Some(r) = stmt
                            .query_row(params![table.name(), id], row)
                            .optional()
                            .map_err(db)?
                        {
                            out.push(to_record(table.name(), r)?);
                        }
                    }
                    Ok(out)
                })
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    async fn list(&self, table: Table, by: Option<&IndexKey>, page: PageRequest) -> Result<Page> {
        let by = by.cloned();
        self.read(move |c| {
            let after = page.after.clone().unwrap_or_default();
            let limit = page.limit.max(1) as i64 + 1;
            let rows: Vec<Row> = match &by {
                None => {
                    let mut stmt = c
                        .prepare_cached(
                            "SELECT id, version, body, lookups, uniques FROM records
                             WHERE tbl = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                        )
                        .map_err(db)?;
                    stmt.query_map(params![table.name(), after, limit], row)
                        .map_err(db)?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(db)?
                }
                Some(k) => {
                    let mut stmt = c
                        .prepare_cached(
                            "SELECT r.id, r.version, r.body, r.lookups, r.uniques
                             FROM lookups l JOIN records r ON r.tbl = l.tbl AND r.id = l.id
                             WHERE l.tbl = ?1 AND l.name = ?2 AND l.value = ?3 AND l.id > ?4
                             ORDER BY l.id LIMIT ?5",
                        )
                        .map_err(db)?;
                    stmt.query_map(params![table.name(), k.name, k.value, after, limit], row)
                        .map_err(db)?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(db)?
                }
            };
            let mut records = rows
                .into_iter()
                .map(|r| to_record(table.name(), r))
                .collect::<Result<Vec<_>>>()?;
            let next = if records.len() > page.limit.max(1) {
                records.truncate(page.limit.max(1));
                records.last().map(|r| r.id.clone())
            } else {
                None
            };
            Ok(Page { records, next })
        })
        .await
    }

    async fn get_unique(&self, key: &IndexKey) -> Result<Option<(String, String)>> {
        let key = key.clone();
        self.read(move |c| {
            c.query_row(
                "SELECT tbl, id FROM uniques WHERE name = ?1 AND value = ?2",
                params![key.name, key.value],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn write(&self, ops: Vec<Write>) -> Result<()> {
        validate_batch(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.with_writer(move |conn| apply(conn, &ops)).await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|_| ())
            .map_err(db)
        })
        .await
    }
}
