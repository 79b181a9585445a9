//! The sync generation: one record, rewritten in the same atomic batch as every change to a
//! synced table, so "has anything an edge needs changed?" is one key read.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use skyport_store::{Decorator, Record, Result, Store, Table, Write};

pub const META: Table = Table("SyncMeta");
pub const GENERATION_ID: &str = "generation";

/// A store that stamps a fresh generation into every batch that touches a synced table.
///
/// The stamp is an unconditional upsert, not a compare-and-swap counter: two admins writing at
/// once must not make each other's batches fail. Any new value is enough, because the edge only
/// compares for equality. It is written inside the batch, so no change is ever visible without
/// a new generation.
pub struct Generational {
    inner: Arc<dyn Store>,
}

impl Generational {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Generational { inner }
    }
}

/// A value no other writer produces: wall-clock nanoseconds and a random word.
fn fresh() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    format!("{nanos:x}-{:016x}", h.finish())
}

/// The current generation (`"0"` before the first change).
pub async fn generation(store: &dyn Store) -> Result<String> {
    Ok(store
        .get(META, GENERATION_ID)
        .await?
        .map(|r| r.body)
        .unwrap_or_else(|| "0".into()))
}

#[async_trait::async_trait]
impl Decorator for Generational {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    async fn write_through(&self, mut ops: Vec<Write>) -> Result<()> {
        // Assignments decide which site's snapshot a record is in, so they count as changes.
        if ops.iter().any(|op| {
            crate::SYNCED.contains(&op.table())
                || skyport_sites::ownership::is_ownership(op.table())
        }) {
            ops.push(Write::Upsert {
                table: META,
                record: Record::new(GENERATION_ID, fresh()),
            });
        }
        self.inner.write(ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyport_store_sqlite::SqliteStore;

    #[tokio::test]
    async fn synced_writes_change_the_generation_and_others_do_not() -> anyhow_free::R {
        let dir = tempfile::tempdir()?;
        let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("db"))?);
        let store = Generational::new(raw.clone());
        assert_eq!(generation(&store).await?, "0");
        store
            .write(vec![Write::Put {
                table: skyport_boot::params::BOOT_PARAMS,
                record: Record::new("a", "{}"),
                prev: None,
            }])
            .await?;
        let g1 = generation(&store).await?;
        assert_ne!(g1, "0");
        // Endpoint history is written on every boot; it must not make every edge re-download.
        store
            .write(vec![Write::Upsert {
                table: skyport_boot::ENDPOINT_HISTORY,
                record: Record::new("x#bootscript", "{}"),
            }])
            .await?;
        assert_eq!(generation(&store).await?, g1);
        // A failed batch changes nothing, the generation included.
        let failed = store
            .write(vec![Write::Put {
                table: skyport_boot::params::BOOT_PARAMS,
                record: Record::new("a", "{}"),
                prev: None,
            }])
            .await;
        assert!(failed.is_err());
        assert_eq!(generation(&store).await?, g1);
        let prev = raw
            .get(skyport_boot::params::BOOT_PARAMS, "a")
            .await?
            .ok_or("gone")?;
        store
            .write(vec![Write::Delete {
                table: skyport_boot::params::BOOT_PARAMS,
                prev,
            }])
            .await?;
        assert_ne!(generation(&store).await?, g1);
        Ok(())
    }

    mod anyhow_free {
        pub type R = std::result::Result<(), Box<dyn std::error::Error>>;
    }
}
