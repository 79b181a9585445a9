//! One site's share over whole tables: the definition the change feed and the paged snapshot
//! are held to by the tests (they decide record by record, [`crate::share`]). Each service
//! decides its own part over its own tables; this only chains them:
//! - the inventory: components the site owns (by xname subtree, [`Ownership`]), the NICs naming
//!   them, groups with a member there trimmed to those members;
//! - boot parameters: by host in its subtrees, by its NICs' MACs, by its components' NIDs;
//! - images: all of them (the registry is installation-wide metadata; what a site downloads
//!   follows its boot parameters);
//! - cloud-init: the installation-wide defaults, its groups' data, its nodes' instance data.

use std::collections::BTreeMap;

use skyport_sites::Ownership;
use skyport_store::{Record, Table};

/// Keeps only `site`'s records in `tables` (every synced table's records).
pub fn for_site(tables: &mut BTreeMap<Table, Vec<Record>>, site: &str, owners: &Ownership) {
    let mine = |x: &str| owners.site_of(x) == Some(site);
    let inventory = skyport_inventory::reads::keep_share(tables, mine);
    skyport_boot::params::keep_share(tables, &inventory, mine);
    skyport_metadata::keep_share(tables, &inventory.groups, &inventory.xnames);
}
