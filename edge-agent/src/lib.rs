//! The Skyport site agent, as a library behind one facade: [`Agent`] over an [`EdgeConfig`]
//! ([`config`] resolves it: defaults, file, `SKYPORT_EDGE_*`, flags). `skyport-edge` and
//! `skyport up` only wire it; everything below is private.
//!
//! Inside, modules are grouped by job:
//! - `discovery/`: scan targets, crawl BMCs with the `skyport-redfish` client, name them from
//!   the site map with credentials from the encrypted store, and queue each result in the
//!   durable outbox;
//! - `cloud/`: the one client for the cloud APIs and its token, pushing the outbox, polling the
//!   site's snapshot and reporting what only the edge sees;
//! - `node/`: serving the site's nodes (DHCP, TFTP, boot scripts, images, cloud-init) from the
//!   synced replica and the verified image cache, cloud up or not;
//! - `agent` and `supervise`: the facade, and the supervisor that runs every background job as
//!   a task restarted with backoff and stopped in order.

mod agent;
mod cloud;
pub mod config;
mod discovery;
mod hardware;
mod metrics;
mod node;
mod supervise;

#[cfg(feature = "internals")]
pub mod internals;

#[cfg(test)]
mod tests;

pub use agent::{Agent, AgentError, AgentState, Discovery, Flushed, QueuedResult, summary};
pub use config::{ConfigError, EdgeArgs, EdgeConfig, PowerSettings};
pub use discovery::secrets::{SecretStore, SecretsError, generate_key};
pub use discovery::{Found, Row, Status};
pub use hardware::exec::Outcome;
pub use skyport_client::ClientCredentials;
pub use skyport_power::{Action, BootTarget, Operation, TaskState};
