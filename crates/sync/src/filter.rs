//! One site's share of a snapshot: what its edge agent needs to boot its own nodes, and
//! nothing of any other site's. Each service decides its own part over its own tables; this
//! only chains them:
//! - the inventory: components the site owns (by xname subtree, [`Ownership`]), the NICs naming
//!   them, groups with a member there trimmed to those members;
//! - boot parameters: by host in its subtrees, by its NICs' MACs, by its components' NIDs;
//! - images: those its boot parameters reference (`image:<id>`);
//! - cloud-init: the installation-wide defaults, its groups' data, its nodes' instance data.

use std::collections::BTreeMap;

use skyport_sites::Ownership;
use skyport_store::{Record, Table};

/// Keeps only `site`'s records in `tables` (every synced table's records).
pub fn for_site(tables: &mut BTreeMap<Table, Vec<Record>>, site: &str, owners: &Ownership) {
    let mine = |x: &str| owners.site_of(x) == Some(site);
    let inventory = skyport_inventory::reads::keep_share(tables, mine);
    let images = skyport_boot::params::keep_share(tables, &inventory, mine);
    skyport_images::keep_share(tables, &images);
    skyport_metadata::keep_share(tables, &inventory.groups, &inventory.xnames);
}
