//! The jobs service's domain error. Each variant's text is the `detail` clients get: PCS's own
//! text where PCS has one (`TransitionID does not exist`, `Transition is already finished and
//! cannot be aborted.`); `routes.rs` alone maps them to statuses.

use skyport_sites::{REFUSED, SiteError};
use skyport_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("TransitionID does not exist")]
    NotFound,
    #[error("Transition is already finished and cannot be aborted.")]
    Finished,
    /// A request that cannot be a job (no targets, a bad xname, too many).
    #[error("{0}")]
    Invalid(String),
    /// A target another job still holds.
    #[error("{xname} is the target of job {job}, which has not finished; wait for it or cancel it")]
    Busy { xname: String, job: String },
    /// A site's agent reported for another site's task. Blind, as every cross-site refusal.
    #[error("{}", REFUSED)]
    Refused,
    #[error("stored record {table}/{id} is unreadable: {reason}")]
    Corrupt {
        table: &'static str,
        id: String,
        reason: String,
    },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
