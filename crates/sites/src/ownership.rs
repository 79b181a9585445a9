//! Which site owns which part of the inventory. A site owns xname subtrees: discovery by a
//! site's edge agent claims the BMC it pushed (and so the nodes under it), and an admin can
//! assign any subtree (a cabinet, a chassis) explicitly. The most specific assignment wins, so
//! `x1000c0` can belong to one site while `x1000c0s7b0` was lent to another.
//!
//! Assignments are records of their own (table [`SITE_XNAMES`], keyed by the assigned xname),
//! not a field of the SMD records, so every OpenCHAMI JSON shape stays exactly upstream's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skyport_model::Xname;
use skyport_store::{Record, Store, Table, Write};

use crate::SiteError;

/// One record per assigned xname subtree.
pub const SITE_XNAMES: Table = Table("SiteXnames");
/// Whether writes to `table` change which site owns what (edge sync counts them as changes).
pub fn is_ownership(table: Table) -> bool {
    table == SITE_XNAMES
}

/// The lookup key listing a site's assignments.
pub const SITE_KEY: &str = "site";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub xname: String,
    pub site: String,
    /// `discovery` (claimed by the site's agent) or `admin` (assigned explicitly).
    pub source: String,
    /// Unix seconds.
    pub assigned_at: i64,
}

impl Assignment {
    pub fn record(&self) -> Result<Record, SiteError> {
        let body = serde_json::to_string(self).map_err(|source| SiteError::EncodeAssignment {
            xname: self.xname.clone(),
            source,
        })?;
        Ok(Record::new(&self.xname, body).with_lookup(SITE_KEY, &self.site))
    }

    pub fn decode(r: &Record) -> Result<Self, SiteError> {
        serde_json::from_str(&r.body).map_err(|source| SiteError::Corrupt {
            what: "site assignment",
            id: r.id.clone(),
            source,
        })
    }
}

/// The xnames assigned to `site` (one query on the site's own assignments).
pub async fn assigned_to(store: &dyn Store, site: &str) -> Result<Vec<String>, SiteError> {
    Ok(store
        .list_all(
            SITE_XNAMES,
            Some(&skyport_store::IndexKey::new(SITE_KEY, site)),
        )
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

impl Assignment {
    /// The write creating this assignment (failing if `xname` has one already).
    pub fn create(&self) -> Result<Write, SiteError> {
        Ok(Write::Put {
            table: SITE_XNAMES,
            record: self.record()?,
            prev: None,
        })
    }
}

/// `x` and every ancestor, most specific first (`x1000c0s0b0n0`, `x1000c0s0b0`, ... `x1000`).
pub fn ancestry(x: &Xname) -> Vec<String> {
    let mut out = vec![x.to_string()];
    let mut cur = x.parent();
    while let Some(p) = cur {
        out.push(p.to_string());
        cur = p.parent();
    }
    out
}

/// All a site's token is told when a change would touch another site's records: not which
/// record, whose, or what about it collided (the log has that, for admins). The token's view of
/// the inventory is its own site's share, and another site's data must not show through
/// refusals either.
pub const REFUSED: &str = "this change is not permitted for this site's token";

/// The refusal [`REFUSED`] for `site`'s token ([`SiteError::Refused`]); `why` (which names the
/// other site's records) is logged, not answered.
pub fn refuse(site: &str, why: &str) -> SiteError {
    tracing::warn!(
        site,
        reason = why,
        "refused a site's change that touches another site's records"
    );
    SiteError::Refused {
        site: site.to_string(),
    }
}

/// Whether `holder`, a record named as a store's duplicate-key error names it (`Table/id`),
/// is an xname assigned to a site other than `site`.
pub async fn held_by_other_site(
    store: &dyn Store,
    site: &str,
    holder: &str,
) -> Result<bool, SiteError> {
    let id = holder.split_once('/').map_or(holder, |(_, id)| id);
    let Ok(x) = Xname::parse(id) else {
        return Ok(false);
    };
    Ok(owner(store, &x).await?.is_some_and(|(_, a)| a.site != site))
}

/// The assignment that decides `x`'s site (the most specific one), if any.
pub async fn owner(
    store: &dyn Store,
    x: &Xname,
) -> Result<Option<(Record, Assignment)>, SiteError> {
    let chain = ancestry(x);
    let found: BTreeMap<String, Record> = store
        .get_many(SITE_XNAMES, &chain)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    for id in &chain {
        if let Some(r) = found.get(id) {
            return Ok(Some((r.clone(), Assignment::decode(r)?)));
        }
    }
    Ok(None)
}

/// Every assignment, for resolving many xnames at once (a snapshot).
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    by_xname: BTreeMap<String, String>,
}

impl Ownership {
    pub async fn load(store: &dyn Store) -> Result<Self, SiteError> {
        let mut by_xname = BTreeMap::new();
        for r in store.list_all(SITE_XNAMES, None).await? {
            let a = Assignment::decode(&r)?;
            by_xname.insert(a.xname, a.site);
        }
        Ok(Self { by_xname })
    }

    /// The site owning `xname` (any spelling SMD accepts); `None` if unassigned or not an xname.
    pub fn site_of(&self, xname: &str) -> Option<&str> {
        let x = Xname::parse(xname).ok()?;
        ancestry(&x)
            .iter()
            .find_map(|id| self.by_xname.get(id).map(String::as_str))
    }
}

/// The writes that make `site`'s claim on BMC `x` (and the `nodes` discovered under it) part of
/// a discovery batch:
/// - the BMC: a check if the site owns it already (so a concurrent reassignment fails the
///   batch), a new assignment if nobody owns it and it is new to the inventory,
///   [`SiteError::Refused`] ([`refuse`], no details; a 403) if another site owns it, and
///   [`SiteError::Unassigned`] (a 403 saying why) if it exists unowned (inventory from before
///   sites, or written by an admin: an admin assigns it, a site's agent cannot just take it);
/// - each node: [`SiteError::Refused`] if a more specific assignment gives it to another site, a
///   check if one gives it to this site.
pub async fn claim_ops(
    store: &dyn Store,
    site: &str,
    x: &Xname,
    nodes: &[String],
    exists: bool,
    now: i64,
) -> Result<Vec<Write>, SiteError> {
    let mut ops = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    match owner(store, x).await? {
        Some((prev, a)) if a.site == site => {
            checked.insert(prev.id.clone());
            ops.push(Write::Check {
                table: SITE_XNAMES,
                prev,
            });
        }
        Some((_, a)) => {
            return Err(refuse(
                site,
                &format!(
                    "{x} belongs to site {:?} (assigned at {} by {})",
                    a.site, a.xname, a.source
                ),
            ));
        }
        None if exists => {
            return Err(SiteError::Unassigned {
                site: site.to_string(),
                xname: x.clone(),
            });
        }
        None => ops.push(Write::Put {
            table: SITE_XNAMES,
            record: Assignment {
                xname: x.to_string(),
                site: site.to_string(),
                source: "discovery".into(),
                assigned_at: now,
            }
            .record()?,
            prev: None,
        }),
    }
    for n in nodes {
        let Ok(nx) = Xname::parse(n) else {
            continue;
        };
        match owner(store, &nx).await? {
            Some((_, a)) if a.site != site => {
                return Err(refuse(
                    site,
                    &format!(
                        "{nx} belongs to site {:?} (assigned at {})",
                        a.site, a.xname
                    ),
                ));
            }
            Some((prev, _)) if checked.insert(prev.id.clone()) => ops.push(Write::Check {
                table: SITE_XNAMES,
                prev,
            }),
            _ => {}
        }
    }
    Ok(ops)
}

/// Whether `xname` may be changed on behalf of `site`: unassigned, or the site's own (then a
/// check of the deciding assignment is returned, for the caller's batch, so a concurrent
/// reassignment fails it); another site's is refused without details ([`refuse`]).
pub async fn check_owned(
    store: &dyn Store,
    site: &str,
    xname: &str,
) -> Result<Option<Write>, SiteError> {
    let Ok(x) = Xname::parse(xname) else {
        return Ok(None);
    };
    match owner(store, &x).await? {
        Some((_, a)) if a.site != site => {
            Err(refuse(site, &format!("{x} belongs to site {:?}", a.site)))
        }
        Some((prev, _)) => Ok(Some(Write::Check {
            table: SITE_XNAMES,
            prev,
        })),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_most_specific_assignment_wins() {
        let mut o = Ownership::default();
        o.by_xname.insert("x1000c0".into(), "east".into());
        o.by_xname.insert("x1000c0s7b0".into(), "west".into());
        assert_eq!(o.site_of("x1000c0s0b0n0"), Some("east"));
        assert_eq!(o.site_of("x1000c0s7b0n1"), Some("west"));
        assert_eq!(o.site_of("x1000c0s7b0"), Some("west"));
        assert_eq!(o.site_of("x1000c1s0b0n0"), None);
        assert_eq!(o.site_of("x1000"), None);
        assert_eq!(o.site_of("not-an-xname"), None);
        assert_eq!(
            ancestry(&Xname::parse("x1000c0s0b0n0").unwrap()),
            [
                "x1000c0s0b0n0",
                "x1000c0s0b0",
                "x1000c0s0",
                "x1000c0",
                "x1000"
            ]
        );
    }
}
