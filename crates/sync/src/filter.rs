//! One site's share of a snapshot: what its edge agent needs to boot its own nodes, and
//! nothing of any other site's.
//!
//! - components: those the site owns (by xname subtree, [`Ownership`]);
//! - NICs: those whose `ComponentID` is in its subtrees (a NIC naming no component belongs to
//!   no site, nor do boot parameters by a MAC the inventory does not know);
//! - groups: those with a member at the site, with the other sites' members removed;
//! - boot parameters: by host in its subtrees, by its NICs' MACs, by its components' NIDs;
//! - images: those its boot parameters reference (`image:<id>`);
//! - cloud-init: the installation-wide defaults, its groups' data, its nodes' instance data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use skyport_model::Mac;
use skyport_sites::Ownership;

use crate::snapshot::SyncRecord;

fn table(
    tables: &mut BTreeMap<String, Vec<SyncRecord>>,
    t: skyport_store::Table,
) -> &mut Vec<SyncRecord> {
    tables.entry(t.name().to_string()).or_default()
}

fn field(body: &str, name: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get(name).cloned())
}

/// Keeps only `site`'s records in `tables` (a full snapshot's).
pub fn for_site(tables: &mut BTreeMap<String, Vec<SyncRecord>>, site: &str, owners: &Ownership) {
    use skyport_inventory::records::{COMPONENTS, ETHERNET_INTERFACES, GROUPS};
    let mine = |x: &str| owners.site_of(x) == Some(site);

    let comps = table(tables, COMPONENTS);
    comps.retain(|r| mine(&r.id));
    let xnames: BTreeSet<String> = comps.iter().map(|r| r.id.clone()).collect();
    let nids: BTreeSet<i64> = comps
        .iter()
        .filter_map(|r| field(&r.body, "NID").and_then(|v| v.as_i64()))
        .collect();

    let nics = table(tables, ETHERNET_INTERFACES);
    // A NIC counts by the xname it names, whether or not that node has a component yet.
    nics.retain(|r| {
        field(&r.body, "ComponentID")
            .and_then(|v| v.as_str().map(str::to_string))
            .is_some_and(|c| mine(&c))
    });
    let macs: BTreeSet<String> = nics
        .iter()
        .filter_map(|r| field(&r.body, "MACAddress"))
        .filter_map(|v| v.as_str().and_then(|m| Mac::parse(m).ok()))
        .map(|m| m.to_string())
        .collect();

    let groups = table(tables, GROUPS);
    groups.retain_mut(|r| keep_group(r, &xnames));
    let labels: BTreeSet<String> = groups.iter().map(|r| r.id.clone()).collect();

    let params = table(tables, skyport_boot::params::BOOT_PARAMS);
    params.retain(|r| match r.id.split_once(':') {
        Some(("host", x)) => mine(x),
        Some(("mac", m)) => Mac::parse(m).is_ok_and(|m| macs.contains(&m.to_string())),
        Some(("nid", n)) => n.parse::<i64>().is_ok_and(|n| nids.contains(&n)),
        _ => false,
    });
    let images: BTreeSet<String> = params
        .iter()
        .flat_map(|r| {
            let body = serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null);
            ["kernel", "initrd"]
                .into_iter()
                .filter_map(|f| body.get(f).cloned())
                .filter_map(|v| {
                    v.as_str()
                        .and_then(|s| s.strip_prefix("image:"))
                        .map(str::to_string)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    table(tables, skyport_images::IMAGES).retain(|r| images.contains(&r.id));

    // The defaults are the installation's, not any site's: every agent gets them.
    table(tables, skyport_metadata::GROUPS).retain(|r| labels.contains(&r.id));
    table(tables, skyport_metadata::INSTANCES).retain(|r| xnames.contains(&r.id));
}

/// Drops other sites' members from a group; false if none of its members is the site's.
fn keep_group(r: &mut SyncRecord, xnames: &BTreeSet<String>) -> bool {
    let Ok(mut v) = serde_json::from_str::<Value>(&r.body) else {
        return false;
    };
    let Some(ids) = v
        .get_mut("members")
        .and_then(|m| m.get_mut("ids"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    ids.retain(|id| id.as_str().is_some_and(|x| xnames.contains(x)));
    if ids.is_empty() {
        return false;
    }
    let Ok(body) = serde_json::to_string(&v) else {
        return false;
    };
    r.body = body;
    let member_key =
        |[n, val]: &[String; 2]| !(n == "member" || n.starts_with("excl:")) || xnames.contains(val);
    r.lookups.retain(member_key);
    r.uniques.retain(member_key);
    true
}
