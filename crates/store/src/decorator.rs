//! [`Decorator`]: a store that reads through another and decides what happens to its writes,
//! the one shape of the stores that wrap a store (the sync generation stamp, test stores that
//! hold or observe writes). Implementing it makes a [`Store`].

use crate::{IndexKey, Page, PageRequest, Record, Result, Store, Table, Write};

/// A store over [`Decorator::inner`]: every read goes there unchanged; writes go through
/// [`Decorator::write_through`].
#[async_trait::async_trait]
pub trait Decorator: Send + Sync + 'static {
    fn inner(&self) -> &dyn Store;

    /// What a write of `ops` does (it must end in the inner store's `write`, or fail).
    async fn write_through(&self, ops: Vec<Write>) -> Result<()>;
}

#[async_trait::async_trait]
impl<D: Decorator> Store for D {
    fn backend(&self) -> &'static str {
        self.inner().backend()
    }

    async fn get(&self, table: Table, id: &str) -> Result<Option<Record>> {
        self.inner().get(table, id).await
    }

    async fn get_many(&self, table: Table, ids: &[String]) -> Result<Vec<Record>> {
        self.inner().get_many(table, ids).await
    }

    async fn get_keys(&self, keys: &[(Table, String)]) -> Result<Vec<(Table, Record)>> {
        self.inner().get_keys(keys).await
    }

    async fn list(&self, table: Table, by: Option<&IndexKey>, page: PageRequest) -> Result<Page> {
        self.inner().list(table, by, page).await
    }

    async fn get_unique(&self, key: &IndexKey) -> Result<Option<(String, String)>> {
        self.inner().get_unique(key).await
    }

    async fn write(&self, ops: Vec<Write>) -> Result<()> {
        self.write_through(ops).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner().ping().await
    }

    async fn list_all(&self, table: Table, by: Option<&IndexKey>) -> Result<Vec<Record>> {
        self.inner().list_all(table, by).await
    }
}
