//! The inventory service: OpenCHAMI SMD's `/hsm/v2` API over any [`skyport_store::Store`].
//!
//! [`Inventory`] holds the logic (validation, SMD's defaults, Redfish-discovery derivation,
//! cascades) and [`router`] exposes it as one axum `Router`, which the Lambda function and the
//! local server both mount unchanged.
//!
//! Every mutation is a compare-and-swap batch: it reads what it changes, computes the new state,
//! and writes everything in one atomic [`skyport_store::Store::write`]. If another writer got
//! there first the batch fails whole and the operation is recomputed from fresh data (a bounded
//! number of times), so concurrent admins and discovery agents never lose each other's updates.

pub mod components;
pub mod error;
pub mod ethernet;
pub mod filters;
pub mod groups;
pub mod hardware;
pub mod locks;
pub mod nodemaps;
pub mod partitions;
pub mod powermaps;
pub mod query;
pub mod reads;
pub mod records;
pub mod redfish;
pub mod routes;
pub mod scn;
pub mod services;
pub(crate) mod sets;

use std::sync::Arc;
use std::time::Duration;

use skyport_http::ApiError;
use skyport_store::{Record, Store, StoreError, Table};

pub use error::{EndpointError, InventoryError, ValidationError};
pub use routes::{access, router};

/// The URL prefix every route lives under.
pub const BASE: &str = "/hsm/v2";

/// How many times an operation is recomputed after losing a write race before giving up.
const MAX_ATTEMPTS: u32 = 25;

/// Which records a filtered listing reads before its filter runs: the ids it names, the
/// records under one index value, or the whole table.
pub(crate) enum Candidates {
    Ids(Vec<String>),
    Index(skyport_store::IndexKey),
    All,
}

impl Candidates {
    /// `ids` if any are named; else the first of `indexes` (index name, the filter's one value
    /// if it has one: [`filters::single`]) that has a value; else the whole table.
    pub(crate) fn choose(ids: Vec<String>, indexes: &[(&str, Option<String>)]) -> Self {
        if !ids.is_empty() {
            return Candidates::Ids(ids);
        }
        indexes
            .iter()
            .find_map(|(name, one)| {
                let one = one.clone()?;
                Some(Candidates::Index(skyport_store::IndexKey::new(*name, one)))
            })
            .unwrap_or(Candidates::All)
    }
}

#[derive(Clone)]
pub struct Inventory {
    store: Arc<dyn Store>,
}

/// Why one attempt of an operation failed: a lost race (recompute and retry) or a final answer.
#[derive(Debug)]
pub(crate) enum Fail {
    Race(StoreError),
    Api(ApiError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Fail::Race(e),
            other => Fail::Api(other.into()),
        }
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

/// Ownership checks (`skyport_sites::ownership`) only read, so their failures are final
/// answers (a refusal, an unreadable assignment), never a lost race.
impl From<skyport_sites::SiteError> for Fail {
    fn from(e: skyport_sites::SiteError) -> Self {
        Fail::Api(e.into())
    }
}

/// Runs one attempt of an operation until it does not lose a write race (bounded, with jitter).
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut n: u32 = 0;
        loop {
            match $attempt.await {
                Ok(v) => break Ok(v),
                Err($crate::Fail::Api(e)) => break Err(e),
                Err($crate::Fail::Race(e)) => {
                    n += 1;
                    if n >= $crate::MAX_ATTEMPTS {
                        break Err(skyport_http::ApiError::from(e));
                    }
                    tracing::debug!(attempt = n, error = %e, "write race lost; recomputing");
                    tokio::time::sleep($crate::backoff(n)).await;
                }
            }
        }
    }};
}
pub(crate) use retrying;

/// Exponential backoff (1 ms doubling to 64 ms) with jitter, so concurrent losers of a
/// write race spread out instead of colliding again in lockstep.
pub(crate) fn backoff(n: u32) -> Duration {
    skyport_model::Backoff::new(Duration::from_millis(1), Duration::from_millis(64)).jittered(n + 1)
}

/// The xname a PUT's body names (the URL's when it names none); SMD's 400 when they differ.
pub(crate) fn put_id(body_id: &str, url_id: &str) -> Result<String, ApiError> {
    let url = url_id.trim().to_ascii_lowercase();
    let id = if body_id.is_empty() {
        url.clone()
    } else {
        body_id.to_string()
    };
    let same = match (
        skyport_model::Xname::parse(&id),
        skyport_model::Xname::parse(&url),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => id.trim().eq_ignore_ascii_case(&url),
    };
    if same {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "xname in URL and PUT body do not match",
        ))
    }
}

/// RFC 3339 UTC timestamp with microseconds, as Postgres-backed SMD prints `LastUpdate`.
pub(crate) fn now_rfc3339() -> String {
    smd_time(time::OffsetDateTime::now_utc())
}

/// A time as SMD's Postgres timestamps read: RFC 3339 in UTC with microseconds.
pub fn smd_time(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

impl Inventory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Inventory { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The records of `table` that `from` names, decoded, that `keep` accepts: the one shape
    /// of every filtered listing.
    pub(crate) async fn select<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        from: Candidates,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, ApiError> {
        let recs = match from {
            Candidates::Ids(ids) => self.store.get_many(table, &ids).await?,
            Candidates::Index(key) => self.store.list_all(table, Some(&key)).await?,
            Candidates::All => self.store.list_all(table, None).await?,
        };
        let mut out = Vec::new();
        for r in &recs {
            let v: T = records::decode(table, r)?;
            if keep(&v) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The record of `table` keyed by the xname `id`; a malformed or unknown xname is a 404.
    pub(crate) async fn by_xname(&self, table: Table, id: &str) -> Result<Record, ApiError> {
        let no_such = || ApiError::not_found("no such xname.");
        let x = skyport_model::Xname::parse(id).map_err(|_| no_such())?;
        self.store.get(table, x.as_str()).await?.ok_or_else(no_such)
    }

    /// What a DELETE removes: the records `ids`, or every record of `table` when none are named.
    /// Finding nothing is a 404 saying `no_such` (or that there was nothing to delete).
    pub(crate) async fn deletion_targets(
        &self,
        table: Table,
        ids: Option<&[String]>,
        no_such: &str,
    ) -> Result<Vec<Record>, Fail> {
        let recs = match ids {
            Some(ids) => self.store.get_many(table, ids).await?,
            None => self.store.list_all(table, None).await?,
        };
        if recs.is_empty() {
            return Err(Fail::Api(ApiError::not_found(if ids.is_some() {
                no_such
            } else {
                "no entries to delete"
            })));
        }
        Ok(recs)
    }

    /// Deletes the record of `table` keyed by xname `id`: SMD's 400 `invalid xname` for one
    /// that is not an xname, 404 `no such xname.` for one not stored.
    pub(crate) async fn delete_by_xname(&self, table: Table, id: &str) -> Result<(), ApiError> {
        let x =
            skyport_model::Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname"))?;
        let attempt = async || {
            let Some(prev) = self.store.get(table, x.as_str()).await? else {
                return Err(Fail::Api(ApiError::not_found("no such xname.")));
            };
            self.store
                .write(vec![skyport_store::Write::Delete { table, prev }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// Deletes every record of `table`, in batches of 50 (each atomic); how many. None is
    /// SMD's 404.
    pub(crate) async fn delete_table(&self, table: Table) -> Result<usize, ApiError> {
        let attempt = async || {
            let all = self.deletion_targets(table, None, "").await?;
            skyport_store::delete_in_batches(self.store.as_ref(), table, &all, 50)
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// Creates or replaces `records` of `table` whatever is stored under their ids, in one
    /// batch, recomputed on a lost race (the last record of an id wins, as SMD's upsert of each
    /// in turn); `refused` words a unique-key clash.
    pub(crate) async fn upsert_all(
        &self,
        table: Table,
        records: Vec<Record>,
        refused: impl Fn(StoreError) -> Fail,
    ) -> Result<(), ApiError> {
        let mut by_id = std::collections::BTreeMap::new();
        for r in records {
            by_id.insert(r.id.clone(), r);
        }
        if by_id.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = by_id.keys().cloned().collect();
        let attempt = async || {
            let prev = records::by_id(self.store.get_many(table, &ids).await?);
            let ops = by_id
                .values()
                .map(|r| skyport_store::Write::Put {
                    table,
                    record: r.clone(),
                    prev: prev.get(&r.id).cloned(),
                })
                .collect();
            self.store.write(ops).await.map_err(&refused)
        };
        retrying!(attempt())
    }

    /// `service/ready`: the store answers.
    pub async fn ready(&self) -> Result<(), ApiError> {
        self.store
            .ping()
            .await
            .map_err(|e| ApiError::Unavailable(format!("HSM's database is unhealthy: {e}")))
    }
}
