//! `State/Components`: validation of client components, SMD's defaults for nodes, and the
//! create/replace/patch/delete operations with their cascades (a deleted component leaves every
//! group it was in).

use std::collections::{BTreeMap, HashMap};

use skyport_http::ApiError;
use skyport_model::{Arch, Class, Flag, NetType, Role, State, SubRole, Xname};
use skyport_store::{IndexKey, PageRequest, Record, Write};
pub use skyport_wire::ComponentPatch;
use skyport_wire::{Component, ComponentIn, Group, Partition};

use crate::error::{InventoryError, ValidationError};
use crate::filters::ComponentFilter;
use crate::records::{self, COMPONENTS, GROUPS, NID_KEY, PARTITIONS, RESERVATIONS};
use crate::{Fail, Inventory, retrying};

/// SMD's prefix of a failed `PATCH State/Components/BulkNID` (`operation '<op>' failed: `).
const BULK_NID: &str = "operation 'Bulk Update NID' failed: ";

/// Largest NID accepted: SMD stores NIDs as BIGINT (BSS's boot parameters by NID are int32,
/// so larger NIDs can be booted by xname or MAC only, as upstream).
pub const MAX_NID: i64 = i64::MAX;

/// `v` in `T`'s canonical spelling; missing or blank is `None`.
fn canon<T: std::str::FromStr + ToString>(
    v: Option<&str>,
    field: &'static str,
) -> Result<Option<String>, ValidationError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(|t| Some(t.to_string()))
            .map_err(|_| ValidationError::invalid(field, s)),
    }
}

/// Like [`canon`], for a field that may not be set to nothing.
fn required<T: std::str::FromStr + ToString>(
    v: &str,
    field: &'static str,
) -> Result<String, ValidationError> {
    canon::<T>(Some(v), field)?.ok_or_else(|| ValidationError::invalid(field, ""))
}

/// For a field a patch may clear: a blank value sets it empty.
fn clearable<T: std::str::FromStr + ToString>(
    v: Option<&str>,
    field: &'static str,
) -> Result<Option<String>, ValidationError> {
    v.map(|s| canon::<T>(Some(s), field).map(Option::unwrap_or_default))
        .transpose()
}

/// A Flag, with SMD's `warn` alias of Warning.
fn flag(v: Option<&str>) -> Result<Option<String>, ValidationError> {
    match v.map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case("warn") => Ok(Some(Flag::Warning.to_string())),
        _ => canon::<Flag>(v, "flag"),
    }
}

fn check_nid(nid: Option<i64>) -> Result<Option<i64>, ValidationError> {
    match nid {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=MAX_NID).contains(&n) => Ok(Some(n)),
        Some(n) => Err(ValidationError::NidOutOfRange(n)),
    }
}

/// Turns a client component into a stored one: xname normalised, Type derived from it, enums
/// canonical, Flag defaulting to OK, Enabled to true, and a node's missing NID and Role filled
/// in as SMD does (Role=Compute, NID from the xname).
pub fn validate(c: &ComponentIn, url_id: Option<&Xname>) -> Result<Component, ValidationError> {
    let id = match (c.id.as_deref().map(str::trim), url_id) {
        (None | Some(""), Some(u)) => u.clone(),
        (None | Some(""), None) => return Err(ValidationError::invalid("xname ID", "")),
        (Some(s), _) => Xname::parse(s).map_err(|_| ValidationError::invalid("xname ID", s))?,
    };
    if let Some(u) = url_id
        && u != &id
    {
        return Err(ValidationError::IdMismatch);
    }
    let state = required::<State>(c.state.as_deref().unwrap_or(""), "state")?;
    let mut out = Component {
        r#type: id.hms_type().to_string(),
        state,
        flag: flag(c.flag.as_deref())?.unwrap_or_else(|| Flag::Ok.to_string()),
        enabled: Some(c.enabled.unwrap_or(true)),
        software_status: c.software_status.clone().unwrap_or_default(),
        role: canon::<Role>(c.role.as_deref(), "role")?.unwrap_or_default(),
        sub_role: canon::<SubRole>(c.sub_role.as_deref(), "subRole")?.unwrap_or_default(),
        nid: check_nid(c.nid)?,
        subtype: c.subtype.clone().unwrap_or_default(),
        net_type: canon::<NetType>(c.net_type.as_deref(), "netType")?.unwrap_or_default(),
        arch: canon::<Arch>(c.arch.as_deref(), "arch")?.unwrap_or_default(),
        class: canon::<Class>(c.class.as_deref(), "class")?.unwrap_or_default(),
        id: id.to_string(),
        ..Default::default()
    };
    apply_node_defaults(&mut out, &id);
    Ok(out)
}

/// SMD's `GetCompDefaults` without SLS or a node map: Role=Compute and the xname-derived NID
/// (a node map's, where there is one, replaces them: `Inventory::plan_defaults`).
pub fn apply_node_defaults(c: &mut Component, id: &Xname) {
    if !id.hms_type().is_node() {
        return;
    }
    if c.role.is_empty() {
        c.role = Role::Compute.to_string();
    }
    if c.nid.is_none() {
        c.nid = id.default_nid().and_then(|n| i64::try_from(n).ok());
    }
}

/// A [`ComponentPatch`] whose every given value was checked and is in canonical spelling, so
/// applying it to any component cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPatch(ComponentPatch);

impl CheckedPatch {
    /// Checks the fields in SMD's order, so the first bad one named is the one SMD names.
    pub fn new(p: &ComponentPatch) -> Result<Self, ValidationError> {
        let state = p
            .state
            .as_deref()
            .map(|s| required::<State>(s, "state"))
            .transpose()?;
        let flag = p
            .flag
            .as_deref()
            .map(|f| flag(Some(f))?.ok_or_else(|| ValidationError::invalid("flag", "")))
            .transpose()?;
        let role = p
            .role
            .as_deref()
            .map(|r| required::<Role>(r, "role"))
            .transpose()?;
        // SMD's Role patch replaces SubRole too (clearing it when not given).
        let sub_role = match (&role, p.sub_role.as_deref()) {
            (None, None) => None,
            (_, sr) => Some(canon::<SubRole>(sr, "subRole")?.unwrap_or_default()),
        };
        let nid = p.nid.map(|n| check_nid(Some(n)).map(|_| n)).transpose()?;
        Ok(CheckedPatch(ComponentPatch {
            state,
            flag,
            enabled: p.enabled,
            software_status: p.software_status.clone(),
            role,
            sub_role,
            nid,
            subtype: p.subtype.clone(),
            net_type: clearable::<NetType>(p.net_type.as_deref(), "netType")?,
            arch: clearable::<Arch>(p.arch.as_deref(), "arch")?,
            class: clearable::<Class>(p.class.as_deref(), "class")?,
        }))
    }

    /// Sets every field the patch gives; absent fields are left alone.
    pub fn apply(&self, c: &mut Component) {
        let p = &self.0;
        if let Some(s) = &p.state {
            c.state = s.clone();
            // SMD's StateData semantics: a state change without a flag resets the flag to OK.
            if p.flag.is_none() {
                c.flag = Flag::Ok.to_string();
            }
        }
        let set = |to: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                to.clone_from(v);
            }
        };
        set(&mut c.flag, &p.flag);
        if let Some(e) = p.enabled {
            c.enabled = Some(e);
        }
        set(&mut c.software_status, &p.software_status);
        set(&mut c.role, &p.role);
        set(&mut c.sub_role, &p.sub_role);
        if let Some(n) = p.nid {
            // -1 (checked: the only negative left) clears the NID.
            c.nid = (n >= 0).then_some(n);
        }
        set(&mut c.subtype, &p.subtype);
        set(&mut c.net_type, &p.net_type);
        set(&mut c.arch, &p.arch);
        set(&mut c.class, &p.class);
    }
}

/// The If-Match check: `r` is still at the version the client read (`want`), if it gave one.
fn unchanged_since(r: &Record, want: Option<u64>) -> Result<(), ApiError> {
    match want {
        Some(want) if r.version != want => Err(ApiError::PreconditionFailed(format!(
            "{} is at version {}, not {want} (If-Match); re-read it and retry",
            r.id, r.version
        ))),
        _ => Ok(()),
    }
}

/// Names the component holding a duplicate NID, in a 409 an admin can act on.
pub(crate) fn nid_conflict(e: skyport_store::StoreError) -> Fail {
    match e {
        skyport_store::StoreError::Duplicate { key, owner } if key.name == NID_KEY => {
            // SMD's store text for a unique key (SMD itself lets NIDs repeat).
            Fail::Api(
                ApiError::conflict("Would create a duplicate key or non-unique field").context(
                    format!(
                        "NID {} is already assigned to {}",
                        key.value,
                        owner.trim_start_matches("Components/")
                    ),
                ),
            )
        }
        other => other.into(),
    }
}

/// The input leaves the Role out (or blank).
fn no_role(c: &ComponentIn) -> bool {
    c.role.as_deref().is_none_or(|r| r.trim().is_empty())
}

impl Inventory {
    pub async fn get_component(&self, id: &str) -> Result<(Component, u64), ApiError> {
        let r = self.by_xname(COMPONENTS, id).await?;
        Ok((records::decode(COMPONENTS, &r)?, r.version))
    }

    pub async fn component_by_nid(&self, nid: &str) -> Result<Component, ApiError> {
        let n: i64 = nid
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request("a required argument was not an integer"))?;
        if n < 0 {
            return Err(ApiError::bad_request("An argument was out of range"));
        }
        let key = IndexKey::new(NID_KEY, n.to_string());
        let page = self
            .store
            .list(COMPONENTS, Some(&key), PageRequest::first(1))
            .await?;
        let r = page
            .records
            .first()
            .ok_or_else(|| ApiError::not_found("no such NID."))?;
        records::decode(COMPONENTS, r)
    }

    /// The components matching `f`, choosing the narrowest index to read from.
    pub async fn list_components(&self, f: &ComponentFilter) -> Result<Vec<Component>, ApiError> {
        Ok(self
            .select_components(f)
            .await?
            .into_iter()
            .map(|(_, c)| f.project(c))
            .collect())
    }

    /// The components `f` selects, whole (not projected), each with the record it was read
    /// from (for a compare-and-swap write after).
    pub(crate) async fn select_components(
        &self,
        f: &ComponentFilter,
    ) -> Result<Vec<(Record, Component)>, ApiError> {
        let recs: Vec<Record> = if !f.ids.is_empty() {
            self.store.get_many(COMPONENTS, &f.ids).await?
        } else if !f.groups.is_empty() {
            let mut ids = Vec::new();
            for g in self.store.get_many(GROUPS, &f.groups).await? {
                let g: Group = records::decode(GROUPS, &g)?;
                ids.extend(g.members.ids);
            }
            self.store.get_many(COMPONENTS, &ids).await?
        } else if !f.types.include.is_empty() {
            let mut out = Vec::new();
            for t in &f.types.include {
                let key = IndexKey::new("type", t.clone());
                out.extend(self.store.list_all(COMPONENTS, Some(&key)).await?);
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            out
        } else if !f.nids.is_empty() && f.nid_start.is_empty() && f.nid_end.is_empty() {
            let mut out = Vec::new();
            for n in &f.nids {
                let key = IndexKey::new(NID_KEY, n.to_string());
                out.extend(self.store.list_all(COMPONENTS, Some(&key)).await?);
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            out
        } else {
            self.store.list_all(COMPONENTS, None).await?
        };
        // Partitions are few and small: one read of them all decides membership.
        let partitioned = if f.partitions.is_empty() {
            None
        } else {
            Some(self.partitioned().await?)
        };
        let in_partition = |id: &str| match &partitioned {
            None => true,
            Some(by_member) => f.partitions.iter().any(|p| match by_member.get(id) {
                None => p == "NULL",
                Some(name) => name == p,
            }),
        };
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            let c: Component = records::decode(COMPONENTS, &r)?;
            if f.matches(&c) && in_partition(&c.id) {
                out.push((r, c));
            }
        }
        Ok(out)
    }

    /// Bulk create (`POST /State/Components`): validates every entry first (one bad entry
    /// rejects the request and nothing is written), skips existing components unless `force`,
    /// and with `force` replaces only State, Flag, Subtype, NetType, Arch and Class, as SMD does.
    pub async fn post_components(
        &self,
        comps: &[ComponentIn],
        force: bool,
    ) -> Result<(), InventoryError> {
        if comps.is_empty() || comps[0].id.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::bad_request("Missing Components").into());
        }
        let mut valid: Vec<Component> = Vec::with_capacity(comps.len());
        let mut given = Vec::with_capacity(comps.len());
        let mut seen = HashMap::new();
        for (index, c) in comps.iter().enumerate() {
            let v =
                validate(c, None).map_err(|source| InventoryError::Components { index, source })?;
            // Duplicate IDs in one request: the first one wins, as in SMD.
            if seen.insert(v.id.clone(), index).is_none() {
                valid.push(v);
                given.push(c);
            }
        }
        self.plan_defaults(&mut valid, &given).await?;
        Ok(retrying!(self.try_upsert(&valid, force))?)
    }

    /// Nodes given without a NID or a Role (`given`, the inputs `comps` were validated from)
    /// take their node map's instead of the xname-derived defaults, as SMD's
    /// `GetCompDefaults` does.
    async fn plan_defaults(
        &self,
        comps: &mut [Component],
        given: &[&ComponentIn],
    ) -> Result<(), ApiError> {
        let ids: Vec<String> = comps
            .iter()
            .zip(given)
            .filter(|(c, g)| c.r#type == "Node" && (g.nid.is_none() || no_role(g)))
            .map(|(c, _)| c.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let plans = self.planned(&ids).await?;
        for (c, g) in comps.iter_mut().zip(given) {
            if let Some(m) = plans.get(&c.id) {
                crate::nodemaps::apply_plan(c, m, g.nid.is_some(), !no_role(g));
            }
        }
        Ok(())
    }

    async fn try_upsert(&self, comps: &[Component], force: bool) -> Result<(), Fail> {
        let ids: Vec<String> = comps.iter().map(|c| c.id.clone()).collect();
        let existing = records::by_id(self.store.get_many(COMPONENTS, &ids).await?);
        let mut ops = Vec::new();
        for c in comps {
            match existing.get(&c.id) {
                None => ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(c)?,
                    prev: None,
                }),
                Some(_) if !force => {}
                Some(prev) => {
                    let mut cur: Component = records::decode(COMPONENTS, prev)?;
                    cur.state = c.state.clone();
                    cur.flag = c.flag.clone();
                    cur.subtype = c.subtype.clone();
                    cur.net_type = c.net_type.clone();
                    cur.arch = c.arch.clone();
                    cur.class = c.class.clone();
                    ops.push(Write::Put {
                        table: COMPONENTS,
                        record: records::component(&cur)?,
                        prev: Some(prev.clone()),
                    });
                }
            }
        }
        self.store.write(ops).await.map_err(nid_conflict)
    }

    /// `PUT /State/Components/{xname}`: create, or with `Force` update as in bulk POST.
    pub async fn put_component(
        &self,
        url_id: &str,
        c: &ComponentIn,
        force: bool,
        if_match: Option<u64>,
    ) -> Result<(), InventoryError> {
        // SMD lowercases the URL's xname and then fails its validation with this text.
        let x = Xname::parse(url_id).map_err(|_| {
            ApiError::bad_request(format!(
                "couldn't validate component: xname ID '{}' is invalid",
                url_id.trim().to_ascii_lowercase()
            ))
        })?;
        let mut v = validate(c, Some(&x)).map_err(InventoryError::Component)?;
        self.plan_defaults(std::slice::from_mut(&mut v), &[c])
            .await?;
        if if_match.is_some() {
            match self
                .store
                .get(COMPONENTS, x.as_str())
                .await
                .map_err(ApiError::from)?
            {
                Some(r) => unchanged_since(&r, if_match)?,
                None => return Err(ApiError::not_found("no such xname.").into()),
            }
        }
        Ok(retrying!(self.try_upsert(std::slice::from_ref(&v), force))?)
    }

    /// Patches components. `if_match` (single component only) makes the write conditional on the
    /// version the client read; otherwise the patch is re-applied to fresh data on a lost race.
    pub async fn patch_components(
        &self,
        ids: &[String],
        patch: &ComponentPatch,
        if_match: Option<u64>,
    ) -> Result<(), InventoryError> {
        if ids.is_empty() {
            return Err(ApiError::bad_request("Missing IDs").into());
        }
        let mut xs = Vec::new();
        for id in ids {
            let x = Xname::parse(id)
                .map_err(|_| ApiError::bad_request("invalid xname ID").context(id.clone()))?;
            xs.push(x.to_string());
        }
        // Validated once up front, so a bad value is a 400 even for unknown components.
        let patch = CheckedPatch::new(patch).map_err(InventoryError::Patch)?;
        let attempt = || {
            self.rewrite_components(&xs, |r, c| {
                unchanged_since(r, if_match)?;
                patch.apply(c);
                Ok(())
            })
        };
        Ok(retrying!(attempt())?)
    }

    /// `PATCH /State/Components/BulkNID`: every NID is checked for uniqueness (SMD accepts
    /// duplicates; Skyport answers 409 naming the holder) and unknown IDs are a 404, not ignored.
    pub async fn bulk_nid(&self, entries: &[skyport_wire::NidPatch]) -> Result<(), InventoryError> {
        if entries.is_empty() || entries[0].id.trim().is_empty() {
            return Err(ApiError::bad_request("Missing Components").into());
        }
        let mut by_id: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let x = Xname::parse(&e.id).map_err(|_| {
                ApiError::bad_request(format!("{BULK_NID}Argument was not a valid xname ID"))
                    .context(format!("Components[{i}].ID: {:?}", e.id))
            })?;
            let nid = match e.nid {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "{BULK_NID}NID value missing.  Use NID < 0 to unset."
                    ))
                    .context(format!("Components[{i}]"))
                    .into());
                }
                Some(n) if n < 0 => None,
                Some(n) => check_nid(Some(n))?,
            };
            by_id.entry(x.to_string()).or_insert(nid);
        }
        let ids: Vec<String> = by_id.keys().cloned().collect();
        let attempt = || {
            self.rewrite_components(&ids, |r, c| {
                c.nid = by_id.get(&r.id).copied().flatten();
                Ok(())
            })
        };
        Ok(retrying!(attempt())?)
    }

    /// One attempt at changing the components `ids` (all must exist) with `change`, which sees
    /// each record as read and its component; written in one batch.
    async fn rewrite_components(
        &self,
        ids: &[String],
        change: impl Fn(&Record, &mut Component) -> Result<(), ApiError>,
    ) -> Result<(), Fail> {
        let mut ops = Vec::new();
        for r in self.existing_components(ids).await? {
            let mut c: Component = records::decode(COMPONENTS, &r)?;
            change(&r, &mut c)?;
            ops.push(Write::Put {
                table: COMPONENTS,
                record: records::component(&c)?,
                prev: Some(r),
            });
        }
        self.store.write(ops).await.map_err(nid_conflict)
    }

    /// What BMCs reported about nodes' power after an action (the power service's results,
    /// `(xname, on)`): a node reported off becomes `Off`; one reported on becomes `On` unless
    /// it is already further along (`Standby`, `Halt`, `Ready`: a booted node is on). The flag
    /// is kept. Xnames the inventory does not hold (removed meanwhile) are skipped. Returns how
    /// many components changed.
    pub async fn power_reported(&self, states: &[(String, bool)]) -> Result<usize, ApiError> {
        let ids: Vec<String> = states.iter().map(|(x, _)| x.clone()).collect();
        let attempt = || async {
            let mut ops = Vec::new();
            for r in self.store.get_many(COMPONENTS, &ids).await? {
                let Some((_, on)) = states.iter().find(|(x, _)| *x == r.id) else {
                    continue;
                };
                let mut c: Component = records::decode(COMPONENTS, &r)?;
                let next = match (on, c.state.parse::<State>()) {
                    (true, Ok(State::On | State::Standby | State::Halt | State::Ready)) => continue,
                    (true, _) => State::On,
                    (false, Ok(State::Off)) => continue,
                    (false, _) => State::Off,
                };
                c.state = next.to_string();
                ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(&c)?,
                    prev: Some(r),
                });
            }
            let n = ops.len();
            if n > 0 {
                self.store.write(ops).await.map_err(Fail::from)?;
            }
            Ok::<usize, Fail>(n)
        };
        retrying!(attempt())
    }

    /// The components `ids`, all of which must exist (404 naming the missing ones).
    async fn existing_components(&self, ids: &[String]) -> Result<Vec<Record>, Fail> {
        let recs = self.store.get_many(COMPONENTS, ids).await?;
        if let Some(m) = records::missing(ids, &recs) {
            return Err(Fail::Api(ApiError::not_found("no such xname.").context(m)));
        }
        Ok(recs)
    }

    /// Deletes one component: it leaves its groups and partition, and its reservation ends.
    pub async fn delete_component(&self, id: &str, if_match: Option<u64>) -> Result<(), ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname"))?;
        let attempt = async || {
            let Some(r) = self.store.get(COMPONENTS, x.as_str()).await? else {
                return Err(Fail::Api(ApiError::not_found("no such xname.")));
            };
            unchanged_since(&r, if_match)?;
            let mut ops = self.leave_memberships(&[x.to_string()]).await?;
            ops.push(Write::Delete {
                table: COMPONENTS,
                prev: r,
            });
            self.store.write(ops).await.map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// The writes that take `ids` out of every group and partition holding them and end
    /// their reservations (as SMD's foreign keys cascade a component's deletion).
    pub(crate) async fn leave_memberships(&self, ids: &[String]) -> Result<Vec<Write>, Fail> {
        let holding = async |table| -> Result<BTreeMap<String, Record>, Fail> {
            let mut out = BTreeMap::new();
            for id in ids {
                let key = IndexKey::new("member", id.clone());
                for r in self.store.list_all(table, Some(&key)).await? {
                    out.insert(r.id.clone(), r);
                }
            }
            Ok(out)
        };
        let mut ops = Vec::new();
        for (_, r) in holding(GROUPS).await? {
            let mut g: Group = records::decode(GROUPS, &r)?;
            g.members.ids.retain(|m| !ids.contains(m));
            ops.push(Write::Put {
                table: GROUPS,
                record: records::group(&g)?,
                prev: Some(r),
            });
        }
        for (_, r) in holding(PARTITIONS).await? {
            let mut p: Partition = records::decode(PARTITIONS, &r)?;
            p.members.ids.retain(|m| !ids.contains(m));
            ops.push(Write::Put {
                table: PARTITIONS,
                record: records::partition(&p)?,
                prev: Some(r),
            });
        }
        for prev in self.store.get_many(RESERVATIONS, ids).await? {
            ops.push(Write::Delete {
                table: RESERVATIONS,
                prev,
            });
        }
        Ok(ops)
    }

    /// `DELETE /State/Components`: everything, in batches; groups are emptied of members.
    pub async fn delete_all_components(&self) -> Result<usize, ApiError> {
        let all = self.store.list_all(COMPONENTS, None).await?;
        if all.is_empty() {
            return Err(ApiError::not_found("no entries to delete"));
        }
        let mut n = 0;
        for chunk in all.chunks(500) {
            let ids: Vec<String> = chunk.iter().map(|r| r.id.clone()).collect();
            let attempt = async || {
                let fresh = self.store.get_many(COMPONENTS, &ids).await?;
                let mut ops = self.leave_memberships(&ids).await?;
                let count = fresh.len();
                ops.extend(fresh.into_iter().map(|prev| Write::Delete {
                    table: COMPONENTS,
                    prev,
                }));
                self.store.write(ops).await?;
                Ok::<usize, Fail>(count)
            };
            n += retrying!(attempt())?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(json: &str) -> ComponentIn {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn type_is_derived_and_node_defaults_filled() {
        let c = validate(
            &input(r#"{"ID":"X1C0S1B0N0","State":"ready","Type":"NodeBMC"}"#),
            None,
        )
        .unwrap();
        assert_eq!(c.id, "x1c0s1b0n0");
        assert_eq!(c.r#type, "Node");
        assert_eq!(c.state, "Ready");
        assert_eq!(c.flag, "OK");
        assert_eq!(c.enabled, Some(true));
        assert_eq!(c.role, "Compute");
        assert_eq!(c.nid, Some(2 * 16384 + 32));
        assert_eq!(c.class, "");
        // A BMC posted as "Node" is stored as what its xname says.
        let b = validate(
            &input(r#"{"ID":"x1c0s0b0","State":"On","Type":"Node"}"#),
            None,
        )
        .unwrap();
        assert_eq!(b.r#type, "NodeBMC");
        assert_eq!(b.nid, None);
        assert_eq!(b.role, "");
    }

    #[test]
    fn a_patch_is_checked_in_smd_order_then_applied_canonically() {
        let p: ComponentPatch = serde_json::from_str(r#"{"Role":"Boss","State":"bogus"}"#).unwrap();
        assert_eq!(
            CheckedPatch::new(&p).unwrap_err().to_string(),
            "state 'bogus' is invalid"
        );
        let p: ComponentPatch =
            serde_json::from_str(r#"{"state":"ready","role":"compute","NID":-1,"netType":" "}"#)
                .unwrap();
        let mut c = Component {
            flag: "Alert".into(),
            sub_role: "Worker".into(),
            nid: Some(5),
            net_type: "Sling".into(),
            arch: "X86".into(),
            ..Default::default()
        };
        CheckedPatch::new(&p).unwrap().apply(&mut c);
        assert_eq!(
            (
                c.state.as_str(),
                c.flag.as_str(),
                c.role.as_str(),
                c.sub_role.as_str()
            ),
            ("Ready", "OK", "Compute", "")
        );
        assert_eq!(
            (c.nid, c.net_type.as_str(), c.arch.as_str()),
            (None, "", "X86")
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        assert_eq!(
            validate(&input(r#"{"ID":"x1c0s0b0n0"}"#), None)
                .unwrap_err()
                .to_string(),
            "state '' is invalid"
        );
        assert!(
            validate(&input(r#"{"ID":"bogus","State":"On"}"#), None)
                .unwrap_err()
                .to_string()
                .contains("xname ID 'bogus'")
        );
        assert!(
            validate(
                &input(r#"{"ID":"x1c0s0b0n0","State":"On","Role":"Boss"}"#),
                None
            )
            .unwrap_err()
            .to_string()
            .contains("role 'Boss'")
        );
        assert!(
            validate(&input(r#"{"ID":"x1c0s0b0n0","State":"On","NID":-5}"#), None)
                .unwrap_err()
                .to_string()
                .contains("NID -5")
        );
        let url = Xname::parse("x1c0s0b0n1").unwrap();
        assert!(
            validate(&input(r#"{"ID":"x1c0s0b0n0","State":"On"}"#), Some(&url))
                .unwrap_err()
                .to_string()
                .contains("do not match")
        );
    }
}
