//! Acting on hardware from the cloud, which never reaches a BMC: an admin's request becomes a
//! job ([`jobs`]: its tables, states and rules), addressed to the site owning each target;
//! the site's edge agent takes its tasks, runs them with the BMC credentials only it holds, and
//! reports results, which also keep each node's last power state and its inventory `State`.
//!
//! Three faces over the same jobs ([`routes`]): Skyport's `/power/v1`, PCS's
//! `/power-control/v1` for OpenCHAMI clients ([`pcs`] words jobs as transitions),
//! `/edge/v1/jobs` for agents, and SMD's `Inventory/Discover` ([`discover`]: a crawl by the
//! owning site's agent). [`JobError`] ([`error`]) is the domain error.

pub mod discover;
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

/// The command lines' power verbs (`skyport power`, `skyport-edge power`) as PCS operations:
/// `on`; `off` (graceful, then forced), `off --force`, `off --soft` (graceful only); `reset`
/// (hard: the node restarts whatever its OS does), `reset --soft` (asks the OS); `cycle` (off,
/// then on, from any state).
pub fn operation_for(verb: &str, force: bool, soft: bool) -> Option<Operation> {
    Some(match (verb, force, soft) {
        ("on", false, false) => Operation::On,
        ("off", false, false) => Operation::Off,
        ("off", true, false) => Operation::ForceOff,
        ("off", false, true) => Operation::SoftOff,
        ("reset", false, false) => Operation::HardRestart,
        ("reset", false, true) => Operation::SoftRestart,
        ("cycle", false, false) => Operation::Init,
        _ => return None,
    })
}
