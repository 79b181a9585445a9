//! A site's share, decided record by record: where each synced record belongs (the services'
//! `placement`s, plus the records that follow it: boot parameters follow their interface or
//! NID, a group's cloud-init data follows the group), resolved through the inventory and
//! ownership, and what a site sees of a record (a group trimmed to its members there).
//!
//! The writer of the change log ([`crate::changes`]) and the readers (changes and snapshot
//! routes) decide with the same functions, so what a site is told about is what it may see.

use std::collections::{BTreeMap, BTreeSet};

use skyport_inventory::reads as inventory;
use skyport_model::Mac;
use skyport_sites::Placement;
use skyport_sites::placement::{Pending, owners};
use skyport_store::{Record, Result, Store, StoreError, Table};

/// A placement resolved to xnames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    Everywhere,
    Xnames(Vec<String>),
    Nowhere,
}

/// Whether a site's snapshot finds records of synced table `t` through the placement index
/// (a node's own records); the others (installation-wide data, groups) are read whole.
pub fn indexed(t: Table) -> bool {
    crate::SYNCED.contains(&t)
        && !inventory::read_whole(t)
        && !skyport_boot::params::read_whole(t)
        && !skyport_images::read_whole(t)
        && !skyport_metadata::read_whole(t)
}

/// Where record `r` of synced table `t` belongs (its own key first), and where the records
/// that follow it belong: the boot parameters of an interface's MAC and of a component's NID,
/// the cloud-init data of a group.
pub fn placement_of(t: Table, r: &Record) -> Vec<((Table, String), Placement)> {
    let own = (t, r.id.clone());
    if let Some((p, follows)) = inventory::placement(t, r) {
        let mut out = vec![(own, p.clone())];
        if let Some(m) = follows.mac {
            out.push((skyport_boot::params::key_by_mac(&m), p.clone()));
        }
        if let Some(n) = follows.nid {
            out.push((skyport_boot::params::key_by_nid(n), p.clone()));
        }
        if let Some(g) = follows.group {
            out.push((skyport_metadata::key_by_group(&g), p));
        }
        return out;
    }
    let p = skyport_boot::params::placement(t, r)
        .or_else(|| skyport_images::placement(t))
        .or_else(|| skyport_metadata::placement(t, &r.id))
        .unwrap_or(Placement::Nowhere);
    vec![(own, p)]
}

/// Resolves placements that depend on other records (an interface, a NID's holder, a group)
/// with batched reads.
pub async fn resolve_placements(store: &dyn Store, ps: Vec<Placement>) -> Result<Vec<Where>> {
    let mut macs = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut nids = BTreeSet::new();
    for p in &ps {
        match p {
            Placement::Interface(m) => {
                macs.insert(*m);
            }
            Placement::Group(g) => {
                groups.insert(g.clone());
            }
            Placement::Nid(n) => {
                nids.insert(*n);
            }
            _ => {}
        }
    }
    let macs: Vec<Mac> = macs.into_iter().collect();
    let nic_at = if macs.is_empty() {
        BTreeMap::new()
    } else {
        inventory::interface_places(store, &macs).await?
    };
    let labels: Vec<String> = groups.into_iter().collect();
    let members = if labels.is_empty() {
        BTreeMap::new()
    } else {
        inventory::group_members(store, &labels).await?
    };
    let mut holder: BTreeMap<i64, String> = BTreeMap::new();
    for n in nids {
        if let Some(x) = inventory::nid_holder(store, n).await? {
            holder.insert(n, x);
        }
    }
    let xn = |xs: Option<&Vec<String>>| match xs {
        Some(xs) if !xs.is_empty() => Where::Xnames(xs.clone()),
        _ => Where::Nowhere,
    };
    Ok(ps
        .into_iter()
        .map(|p| match p {
            Placement::Everywhere => Where::Everywhere,
            Placement::Xnames(xs) => xn(Some(&xs)),
            Placement::Interface(m) => match nic_at.get(&m) {
                Some(Placement::Xnames(xs)) => xn(Some(xs)),
                _ => Where::Nowhere,
            },
            Placement::Nid(n) => xn(holder.get(&n).map(|x| vec![x.clone()]).as_ref()),
            Placement::Group(g) => xn(members.get(&g)),
            Placement::Nowhere => Where::Nowhere,
        })
        .collect())
}

/// What a site gets for some keys: the records it may see (as it sees them), and the keys it
/// must not have (deleted, or not its own).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct View {
    pub records: BTreeMap<Table, Vec<Record>>,
    pub deleted: BTreeMap<Table, Vec<String>>,
}

impl View {
    pub fn len(&self) -> usize {
        self.records.values().map(Vec::len).sum::<usize>()
            + self.deleted.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `site`'s view of `keys` (`None`: the whole installation's, which sees everything as it is).
pub async fn view(
    store: &dyn Store,
    site: Option<&str>,
    keys: &BTreeSet<(Table, String)>,
) -> Result<View> {
    let wanted: Vec<(Table, String)> = keys.iter().cloned().collect();
    let found = store.get_keys(&wanted).await?;
    view_of(store, site, found, keys).await
}

/// [`view`] of records already read (`found`: those of `keys` that exist).
pub async fn view_of(
    store: &dyn Store,
    site: Option<&str>,
    found: Vec<(Table, Record)>,
    keys: &BTreeSet<(Table, String)>,
) -> Result<View> {
    let found: BTreeMap<(Table, String), Record> = found
        .into_iter()
        .map(|(t, r)| ((t, r.id.clone()), r))
        .collect();
    let mut v = View::default();
    for key in keys {
        if !found.contains_key(key) {
            v.deleted.entry(key.0).or_default().push(key.1.clone());
        }
    }
    let Some(site) = site else {
        for ((t, _), r) in found {
            v.records.entry(t).or_default().push(r);
        }
        return Ok(v);
    };
    let recs: Vec<((Table, String), Record)> = found.into_iter().collect();
    let ps = recs
        .iter()
        .map(|((t, _), r)| {
            placement_of(*t, r)
                .into_iter()
                .next()
                .map(|(_, p)| p)
                .unwrap_or(Placement::Nowhere)
        })
        .collect();
    let wheres = resolve_placements(store, ps).await?;
    let xnames: BTreeSet<String> = wheres
        .iter()
        .filter_map(|w| match w {
            Where::Xnames(xs) => Some(xs.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    let owners = owners(store, &xnames, &Pending::new())
        .await
        .map_err(crate::changes::site_error)?;
    let mine = |x: &str| owners.get(x).is_some_and(|s| s.as_deref() == Some(site));
    for (((t, id), r), w) in recs.into_iter().zip(wheres) {
        let shown = match w {
            Where::Everywhere => Some(r),
            Where::Nowhere => None,
            Where::Xnames(_) if inventory::per_member(t) => inventory::trim_group(&r, mine),
            Where::Xnames(xs) => xs.iter().any(|x| mine(x)).then_some(r),
        };
        match shown {
            Some(r) => v.records.entry(t).or_default().push(r),
            None => v.deleted.entry(t).or_default().push(id),
        }
    }
    Ok(v)
}

/// A store error for a record of the change machinery that cannot be read.
pub(crate) fn corrupt(table: Table, id: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: table.name().to_string(),
        id: id.to_string(),
        reason: reason.to_string(),
    }
}
