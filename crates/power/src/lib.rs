//! Acting on hardware from the cloud, which never reaches a BMC: an admin's request becomes a
//! job ([`jobs`]: its tables, states and rules), addressed to the site owning each target;
//! the site's edge agent takes its tasks, runs them with the BMC credentials only it holds, and
//! reports results, which also keep each node's last power state and its inventory `State`.
//!
//! Three faces over the same jobs ([`routes`]): Skyport's `/power/v1`, PCS's
//! `/power-control/v1` for OpenCHAMI clients ([`pcs`] words jobs as transitions), and
//! `/edge/v1/jobs` for agents. [`JobError`] ([`error`]) is the domain error.

pub mod error;
pub mod jobs;
pub mod pcs;
pub mod routes;

pub use error::JobError;
pub use jobs::{
    Action, Assignment, Assignments, Job, JobState, JobView, Jobs, NewJob, Recorded, Results,
    StatusRecord, Task, TaskResult, TaskState,
};
pub use routes::{JobRequest, access, router};
pub use skyport_model::power::{BootTarget, Operation, PowerState};
