//! Edge sync: what a site's edge agent copies from the cloud so the site's nodes keep booting
//! when the cloud is unreachable.
//!
//! The protocol (`docs/architecture.md`, "Edge sync") is one authenticated poll:
//! `GET /edge/v1/snapshot` answers every record of the [`SYNCED`] tables with an `ETag` holding
//! the store's sync *generation*; the agent sends that back in `If-None-Match` and gets `304 Not
//! Modified` while nothing changed. The generation is a single record that [`Generational`]
//! rewrites in the same atomic batch as every change to a synced table, so a steady-state poll
//! costs one key read on the cloud side and a few hundred bytes on the wire.
//!
//! The agent sends back what only it sees (`POST /edge/v1/reports`): endpoint history of the
//! nodes it served, and MACs that asked for a boot script but are not in the inventory
//! (enrollment candidates, listed by `GET /edge/v1/candidates`).
//!
//! Sites are `skyport-sites`'s (registry, credentials, ownership, status): a site's agent's
//! token sees only that site's share of the snapshot ([`filter`]) and writes only that site's
//! records.

pub mod filter;
pub mod generation;
pub mod routes;
pub mod snapshot;

pub use generation::{Generational, generation};
pub use routes::{Limits, access, router, router_with};
pub use skyport_sites::EdgeStatus;
pub use snapshot::{FORMAT, Report, Snapshot, SyncRecord, UnknownMac};

use skyport_store::Table;

/// The tables an edge agent needs to answer boot scripts, image downloads and cloud-init on its
/// own: the inventory's nodes, NICs and groups, the boot parameters, the image registry and the
/// cloud-init data. Not discovery data (Redfish endpoints) and not endpoint history, which the
/// edge produces rather than consumes.
pub const SYNCED: &[Table] = &[
    INVENTORY[0],
    INVENTORY[1],
    INVENTORY[2],
    BOOT[0],
    IMAGES[0],
    METADATA[0],
    METADATA[1],
    METADATA[2],
];
const INVENTORY: [Table; 3] = skyport_inventory::reads::SYNCED;
const BOOT: [Table; 1] = skyport_boot::params::SYNCED;
const IMAGES: [Table; 1] = skyport_images::SYNCED;
const METADATA: [Table; 3] = skyport_metadata::SYNCED;

/// Nodes that asked an edge agent for a boot script but are not in the inventory.
pub const CANDIDATES: Table = Table("EnrollmentCandidates");

/// The synced table called `name`, if it is one.
pub fn synced_table(name: &str) -> Option<Table> {
    SYNCED.iter().copied().find(|t| t.name() == name)
}
