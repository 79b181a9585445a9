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
pub mod reads;
pub mod records;
pub mod redfish;
pub mod routes;

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

/// RFC 3339 UTC timestamp with microseconds, as Postgres-backed SMD prints `LastUpdate`.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

impl Inventory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Inventory { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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

    /// `service/ready`: the store answers.
    pub async fn ready(&self) -> Result<(), ApiError> {
        self.store
            .ping()
            .await
            .map_err(|e| ApiError::Unavailable(format!("HSM's database is unhealthy: {e}")))
    }
}
