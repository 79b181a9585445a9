//! Where a kind's resources live. [`Collection`] is what the generated routes need (list in uid
//! order, get, insert, read-modify-write, delete); [`Stored`] keeps one kind in one table of a
//! [`skyport_store::Store`], one record per uid, each change conditional on the version read
//! (a lost race recomputes from fresh data). A service whose resources are a view of other data
//! (the boot service's BootConfigurations over BSS's boot parameters) implements
//! [`Collection`] itself.

use std::marker::PhantomData;
use std::sync::Arc;

use skyport_store::{Record, Store, StoreError, Table, Write};

use crate::{Invalid, Kind, Resource};

/// How many times a read-modify-write recomputes after losing a race before the conflict is
/// the caller's (a 503 with `Retry-After`).
pub const MAX_ATTEMPTS: usize = 8;

/// What a collection can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A stored record that does not read as its kind.
    #[error("stored {kind} {uid} is unreadable: {source}")]
    Corrupt {
        kind: &'static str,
        uid: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding {kind} {uid}: {source}")]
    Encode {
        kind: &'static str,
        uid: String,
        #[source]
        source: serde_json::Error,
    },
    /// A create whose key is taken: collections keyed by name hold one resource per name.
    #[error("{kind} {uid} already exists")]
    Exists { kind: &'static str, uid: String },
    /// A method the collection does not allow (profiles are never deleted).
    #[error("{0}")]
    NotAllowed(String),
    /// A change the collection cannot make to this resource (a view that cannot represent
    /// it); the text says why, and is answered as a validation failure.
    #[error("{0}")]
    Refused(String),
}

/// A change to one resource: the new resource, or a refusal that leaves it as it was.
pub type Change<'a, K> = &'a (dyn Fn(Resource<K>) -> Result<Resource<K>, Invalid> + Send + Sync);

#[async_trait::async_trait]
pub trait Collection<K: Kind>: Clone + Send + Sync + 'static {
    /// Every resource, in ascending uid order.
    async fn list(&self) -> Result<Vec<Resource<K>>, CollectionError>;
    async fn get(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError>;
    /// Stores a new resource (its uid is fresh, or the collection gives it one) and returns it
    /// as stored.
    async fn insert(&self, r: Resource<K>) -> Result<Resource<K>, CollectionError>;
    /// Replaces resource `uid` with `change` of what is stored, re-reading and recomputing if
    /// another writer got there first; `None` if there is no such resource.
    async fn update(
        &self,
        uid: &str,
        change: Change<'_, K>,
    ) -> Result<Option<Resource<K>>, CollectionError>;
    /// Removes resource `uid`; `None` if there was none.
    async fn delete(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError>;
}

/// Replaces record `table`/`id` with what `next` makes of it (a value to return and the new
/// record), the write conditional on the version read; a lost race reads and recomputes, up to
/// [`MAX_ATTEMPTS`]. `None` if there is no such record.
pub async fn replace_record<T>(
    store: &dyn Store,
    table: Table,
    id: &str,
    next: impl Fn(&Record) -> Result<(T, Record), CollectionError>,
) -> Result<Option<T>, CollectionError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(prev) = store.get(table, id).await? else {
            return Ok(None);
        };
        let (value, record) = next(&prev)?;
        match store
            .write(vec![Write::Put {
                table,
                record,
                prev: Some(prev),
            }])
            .await
        {
            Ok(()) => return Ok(Some(value)),
            Err(StoreError::Conflict { .. }) if attempt < MAX_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deletes record `table`/`id` as it was read (what it held, through `read`), retrying a lost
/// race as [`replace_record`]; `None` if there is no such record.
pub async fn delete_record<T>(
    store: &dyn Store,
    table: Table,
    id: &str,
    read: impl Fn(&Record) -> Result<T, CollectionError>,
) -> Result<Option<T>, CollectionError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(prev) = store.get(table, id).await? else {
            return Ok(None);
        };
        let gone = read(&prev)?;
        match store.write(vec![Write::Delete { table, prev }]).await {
            Ok(()) => return Ok(Some(gone)),
            Err(StoreError::Conflict { .. }) if attempt < MAX_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One kind in one table.
pub struct Stored<K> {
    store: Arc<dyn Store>,
    table: Table,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Stored<K> {
    fn clone(&self) -> Self {
        Stored {
            store: self.store.clone(),
            table: self.table,
            kind: PhantomData,
        }
    }
}

impl<K: Kind> Stored<K> {
    pub fn new(store: Arc<dyn Store>, table: Table) -> Self {
        Stored {
            store,
            table,
            kind: PhantomData,
        }
    }

    pub fn table(&self) -> Table {
        self.table
    }
}

/// The resource a record holds.
pub fn decode<K: Kind>(r: &Record) -> Result<Resource<K>, CollectionError> {
    serde_json::from_str(&r.body).map_err(|source| CollectionError::Corrupt {
        kind: K::KIND,
        uid: r.id.clone(),
        source,
    })
}

/// The record holding a resource.
pub fn encode<K: Kind>(r: &Resource<K>) -> Result<Record, CollectionError> {
    let body = serde_json::to_string(r).map_err(|source| CollectionError::Encode {
        kind: K::KIND,
        uid: r.metadata.uid.clone(),
        source,
    })?;
    Ok(Record::new(r.metadata.uid.clone(), body))
}

#[async_trait::async_trait]
impl<K: Kind> Collection<K> for Stored<K> {
    async fn list(&self) -> Result<Vec<Resource<K>>, CollectionError> {
        self.store
            .list_all(self.table, None)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn get(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError> {
        self.store
            .get(self.table, uid)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn insert(&self, r: Resource<K>) -> Result<Resource<K>, CollectionError> {
        let record = encode(&r)?;
        self.store
            .write(vec![Write::Put {
                table: self.table,
                record,
                prev: None,
            }])
            .await?;
        Ok(r)
    }

    async fn update(
        &self,
        uid: &str,
        change: Change<'_, K>,
    ) -> Result<Option<Resource<K>>, CollectionError> {
        replace_record(&*self.store, self.table, uid, |prev: &Record| {
            let next = change(decode(prev)?)?;
            let record = encode(&next)?;
            Ok((next, record))
        })
        .await
    }

    async fn delete(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError> {
        delete_record(&*self.store, self.table, uid, decode).await
    }
}
