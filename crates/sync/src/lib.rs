//! Edge sync: what a site's edge agent copies from the cloud so the site's nodes keep booting
//! when the cloud is unreachable.
//!
//! The protocol (`docs/architecture.md`, "Edge sync"): every batch that changes synced data
//! ([`SYNCED`]) also writes change entries for the sites it concerns ([`ChangeLog`], in
//! [`changes`]), with no item that unrelated writes share. An agent takes its site's share once,
//! in pages (`GET /edge/v1/snapshot`, from the placement index: range queries on its own
//! subtrees), then polls `GET /edge/v1/changes?after=<cursor>` with `If-None-Match`: a `304`
//! costs one read per partition (the site's and the installation-wide one), a change brings
//! only the records it touched, as the site sees them ([`share`]).
//!
//! The agent sends back what only it sees (`POST /edge/v1/reports`): endpoint history of the
//! nodes it served, and MACs that asked for a boot script but are not in the inventory
//! (enrollment candidates, listed by `GET /edge/v1/candidates`).
//!
//! Sites are `skyport-sites`'s (registry, credentials, ownership, status): a site's agent's
//! token sees only that site's share ([`share`]; [`filter`] is the same rule over whole tables,
//! the reference the tests hold the feed to) and writes only that site's records.

pub mod changes;
pub mod feed;
pub mod filter;
pub mod routes;
pub mod share;
pub mod snapshot;

pub use changes::ChangeLog;
pub use routes::{Limits, access, router, router_with};
pub use skyport_sites::EdgeStatus;
pub use snapshot::{ChangePage, FORMAT, Report, SnapshotPage, SyncRecord, UnknownMac};

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
    BOOT[1],
    BOOT[2],
    IMAGES[0],
    METADATA[0],
    METADATA[1],
    METADATA[2],
    METADATA[3],
];
const INVENTORY: [Table; 3] = skyport_inventory::reads::SYNCED;
const BOOT: [Table; 3] = skyport_boot::params::SYNCED;
const IMAGES: [Table; 1] = skyport_images::SYNCED;
const METADATA: [Table; 4] = skyport_metadata::SYNCED;

/// Nodes that asked an edge agent for a boot script but are not in the inventory.
pub const CANDIDATES: Table = Table("EnrollmentCandidates");

/// The synced table called `name`, if it is one.
pub fn synced_table(name: &str) -> Option<Table> {
    SYNCED.iter().copied().find(|t| t.name() == name)
}
