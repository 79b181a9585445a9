//! Where a synced record belongs: what decides which sites' edge agents copy it. Each service
//! says it for its own tables (`placement` in the inventory, boot, images and metadata crates);
//! edge sync resolves a [`Placement`] to sites with [`owners`], when a record is written (to
//! tell the sites it changed for) and when a site asks for it (to decide what it may see).

use std::collections::{BTreeMap, BTreeSet};

use skyport_model::{Mac, Xname};
use skyport_store::Store;

use crate::SiteError;
use crate::ownership::{Assignment, SITE_XNAMES, ancestry};

/// What decides which sites see a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Every site: installation-wide data (the image registry, cloud-init defaults).
    Everywhere,
    /// The sites owning these xnames: one for a node's own records, the members for a group.
    Xnames(Vec<String>),
    /// Where the inventory's interface with this MAC is (boot parameters by MAC).
    Interface(Mac),
    /// Where the component holding this NID is (boot parameters by NID).
    Nid(i64),
    /// Where the inventory group with this label has members (its cloud-init data).
    Group(String),
    /// No site: nothing any site's node could use (an interface naming no component).
    Nowhere,
}

impl Placement {
    /// The one xname deciding this placement, for a record that has one (not a group's).
    pub fn single(x: &str) -> Placement {
        if x.is_empty() {
            Placement::Nowhere
        } else {
            Placement::Xnames(vec![x.to_string()])
        }
    }
}

/// Assignments a write batch makes (`Some(site)`) or removes (`None`) before they are stored,
/// so a batch that claims a BMC and writes its nodes places the nodes at the claiming site.
pub type Pending = BTreeMap<String, Option<String>>;

/// The site owning each of `xnames` (`None`: unassigned, or not an xname), by the most specific
/// assignment, with `pending` taking precedence over the stored ones. One batched read of every
/// ancestor (a read per 100 distinct ancestors).
pub async fn owners(
    store: &dyn Store,
    xnames: &BTreeSet<String>,
    pending: &Pending,
) -> Result<BTreeMap<String, Option<String>>, SiteError> {
    let mut chains = BTreeMap::new();
    let mut wanted = BTreeSet::new();
    for x in xnames {
        let chain = match Xname::parse(x) {
            Ok(p) => ancestry(&p),
            Err(_) => Vec::new(),
        };
        wanted.extend(chain.iter().filter(|a| !pending.contains_key(*a)).cloned());
        chains.insert(x.clone(), chain);
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let mut assigned: BTreeMap<String, String> = BTreeMap::new();
    for r in store.get_many(SITE_XNAMES, &wanted).await? {
        let a = Assignment::decode(&r)?;
        assigned.insert(r.id, a.site);
    }
    Ok(chains
        .into_iter()
        .map(|(x, chain)| {
            let site = chain.iter().find_map(|a| match pending.get(a) {
                Some(Some(s)) => Some(s.clone()),
                // Removed by the batch: the next assignment up decides.
                Some(None) => None,
                None => assigned.get(a).cloned(),
            });
            (x, site)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use skyport_store::Write;

    #[tokio::test]
    async fn owners_take_the_most_specific_assignment_and_pending_ones_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("db")).unwrap();
        let assign = |x: &str, site: &str| Write::Put {
            table: SITE_XNAMES,
            record: Assignment {
                xname: x.into(),
                site: site.into(),
                source: "admin".into(),
                assigned_at: 1,
            }
            .record()
            .unwrap(),
            prev: None,
        };
        store
            .write(vec![
                assign("x1000c0", "east"),
                assign("x1000c0s7b0", "west"),
            ])
            .await
            .unwrap();
        let xs: BTreeSet<String> = ["x1000c0s0b0n0", "x1000c0s7b0n1", "x2000c0s0b0n0", "node7"]
            .map(String::from)
            .into();
        let got = owners(&store, &xs, &Pending::new()).await.unwrap();
        assert_eq!(got["x1000c0s0b0n0"].as_deref(), Some("east"));
        assert_eq!(got["x1000c0s7b0n1"].as_deref(), Some("west"));
        assert_eq!(got["x2000c0s0b0n0"], None);
        assert_eq!(got["node7"], None);
        // A batch that claims x2000c0s0b0 and gives x1000c0s7b0 back places their nodes so.
        let pending = Pending::from([
            ("x2000c0s0b0".to_string(), Some("north".to_string())),
            ("x1000c0s7b0".to_string(), None),
        ]);
        let got = owners(&store, &xs, &pending).await.unwrap();
        assert_eq!(got["x2000c0s0b0n0"].as_deref(), Some("north"));
        assert_eq!(got["x1000c0s7b0n1"].as_deref(), Some("east"));
    }
}
