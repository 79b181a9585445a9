//! `State/Components`: validation of client components, SMD's defaults for nodes, and the
//! create/replace/patch/delete operations with their cascades (a deleted component leaves every
//! group it was in).

use std::collections::{BTreeMap, HashMap};

use skyport_http::ApiError;
use skyport_model::{Arch, Class, Flag, NetType, Role, State, SubRole, Xname};
use skyport_store::{IndexKey, PageRequest, Record, Write};
use skyport_wire::{Component, ComponentIn, Group};

use crate::filters::ComponentFilter;
use crate::records::{self, COMPONENTS, GROUPS, NID_KEY};
use crate::{Fail, Inventory, retrying};

/// Largest NID accepted: BSS stores NIDs as int32.
pub const MAX_NID: i64 = i32::MAX as i64;

fn canon<T: std::str::FromStr + ToString>(
    v: &Option<String>,
    what: &str,
) -> Result<Option<String>, String> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(|t| Some(t.to_string()))
            .map_err(|_| format!("{what} '{s}' is invalid")),
    }
}

fn check_nid(nid: Option<i64>) -> Result<Option<i64>, String> {
    match nid {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=MAX_NID).contains(&n) => Ok(Some(n)),
        Some(n) => Err(format!(
            "NID {n} is out of range (0..={MAX_NID}, or -1 for none)"
        )),
    }
}

/// Turns a client component into a stored one: xname normalised, Type derived from it, enums
/// canonical, Flag defaulting to OK, Enabled to true, and a node's missing NID and Role filled
/// in as SMD does (Role=Compute, NID from the xname).
pub fn validate(c: &ComponentIn, url_id: Option<&Xname>) -> Result<Component, String> {
    let id = match (c.id.as_deref().map(str::trim), url_id) {
        (None | Some(""), Some(u)) => u.clone(),
        (None | Some(""), None) => return Err("xname ID '' is invalid".into()),
        (Some(s), _) => Xname::parse(s).map_err(|_| format!("xname ID '{s}' is invalid"))?,
    };
    if let Some(u) = url_id
        && u != &id
    {
        return Err("ID in URL and POST body do not match".into());
    }
    let state =
        canon::<State>(&c.state, "state")?.ok_or_else(|| "state '' is invalid".to_string())?;
    let flag = match c.flag.as_deref().map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case("warn") => Flag::Warning.to_string(),
        _ => canon::<Flag>(&c.flag, "flag")?.unwrap_or_else(|| Flag::Ok.to_string()),
    };
    let mut out = Component {
        r#type: id.hms_type().to_string(),
        state,
        flag,
        enabled: Some(c.enabled.unwrap_or(true)),
        software_status: c.software_status.clone().unwrap_or_default(),
        role: canon::<Role>(&c.role, "role")?.unwrap_or_default(),
        sub_role: canon::<SubRole>(&c.sub_role, "subRole")?.unwrap_or_default(),
        nid: check_nid(c.nid)?,
        subtype: c.subtype.clone().unwrap_or_default(),
        net_type: canon::<NetType>(&c.net_type, "netType")?.unwrap_or_default(),
        arch: canon::<Arch>(&c.arch, "arch")?.unwrap_or_default(),
        class: canon::<Class>(&c.class, "class")?.unwrap_or_default(),
        id: id.to_string(),
        ..Default::default()
    };
    apply_node_defaults(&mut out, &id);
    Ok(out)
}

/// SMD's `GetCompDefaults` without SLS or NodeMaps: Role=Compute and the xname-derived NID.
pub fn apply_node_defaults(c: &mut Component, id: &Xname) {
    if !id.hms_type().is_node() {
        return;
    }
    if c.role.is_empty() {
        c.role = Role::Compute.to_string();
    }
    if c.nid.is_none() {
        c.nid = id
            .default_nid()
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n <= MAX_NID);
    }
}

/// A partial update of one component (PATCH routes); absent fields are left alone.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ComponentPatch {
    #[serde(rename = "State", alias = "state", default)]
    pub state: Option<String>,
    #[serde(rename = "Flag", alias = "flag", default)]
    pub flag: Option<String>,
    #[serde(rename = "Enabled", alias = "enabled", default)]
    pub enabled: Option<bool>,
    #[serde(
        rename = "SoftwareStatus",
        alias = "softwareStatus",
        alias = "softwarestatus",
        default
    )]
    pub software_status: Option<String>,
    #[serde(rename = "Role", alias = "role", default)]
    pub role: Option<String>,
    #[serde(rename = "SubRole", alias = "subRole", alias = "subrole", default)]
    pub sub_role: Option<String>,
    #[serde(
        rename = "NID",
        alias = "nid",
        default,
        deserialize_with = "skyport_wire::de::opt_i64"
    )]
    pub nid: Option<i64>,
    #[serde(rename = "Subtype", alias = "subtype", default)]
    pub subtype: Option<String>,
    #[serde(rename = "NetType", alias = "netType", alias = "nettype", default)]
    pub net_type: Option<String>,
    #[serde(rename = "Arch", alias = "arch", default)]
    pub arch: Option<String>,
    #[serde(rename = "Class", alias = "class", default)]
    pub class: Option<String>,
}

impl ComponentPatch {
    pub fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.flag.is_none()
            && self.enabled.is_none()
            && self.software_status.is_none()
            && self.role.is_none()
            && self.sub_role.is_none()
            && self.nid.is_none()
            && self.subtype.is_none()
            && self.net_type.is_none()
            && self.arch.is_none()
            && self.class.is_none()
    }

    /// Applies the patch to `c`, validating each given field.
    pub fn apply(&self, c: &mut Component) -> Result<(), String> {
        if let Some(s) = &self.state {
            c.state = canon::<State>(&Some(s.clone()), "state")?.ok_or("state '' is invalid")?;
            // SMD's StateData semantics: a state change without a flag resets the flag to OK.
            if self.flag.is_none() {
                c.flag = Flag::Ok.to_string();
            }
        }
        if let Some(f) = &self.flag {
            c.flag = if f.trim().eq_ignore_ascii_case("warn") {
                Flag::Warning.to_string()
            } else {
                canon::<Flag>(&Some(f.clone()), "flag")?.ok_or("flag '' is invalid")?
            };
        }
        if let Some(e) = self.enabled {
            c.enabled = Some(e);
        }
        if let Some(s) = &self.software_status {
            c.software_status = s.clone();
        }
        if let Some(r) = &self.role {
            c.role = canon::<Role>(&Some(r.clone()), "role")?.ok_or("role '' is invalid")?;
            // SMD's Role patch replaces SubRole too (clearing it when not given).
            c.sub_role = canon::<SubRole>(&self.sub_role, "subRole")?.unwrap_or_default();
        } else if let Some(sr) = &self.sub_role {
            c.sub_role = canon::<SubRole>(&Some(sr.clone()), "subRole")?.unwrap_or_default();
        }
        if self.nid.is_some() {
            c.nid = check_nid(self.nid)?;
        }
        if let Some(s) = &self.subtype {
            c.subtype = s.clone();
        }
        if let Some(n) = &self.net_type {
            c.net_type = canon::<NetType>(&Some(n.clone()), "netType")?.unwrap_or_default();
        }
        if let Some(a) = &self.arch {
            c.arch = canon::<Arch>(&Some(a.clone()), "arch")?.unwrap_or_default();
        }
        if let Some(cl) = &self.class {
            c.class = canon::<Class>(&Some(cl.clone()), "class")?.unwrap_or_default();
        }
        Ok(())
    }
}

/// Names the component holding a duplicate NID, in a 409 an admin can act on.
pub(crate) fn nid_conflict(e: skyport_store::StoreError) -> Fail {
    match e {
        skyport_store::StoreError::Duplicate { key, owner } if key.name == NID_KEY => {
            Fail::Api(ApiError::conflict(format!(
                "NID {} is already assigned to {}",
                key.value,
                owner.trim_start_matches("Components/")
            )))
        }
        other => other.into(),
    }
}

impl Inventory {
    pub async fn get_component(&self, id: &str) -> Result<(Component, u64), ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::not_found("no such xname."))?;
        let r = self
            .store
            .get(COMPONENTS, x.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found("no such xname."))?;
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
        let mut out = Vec::with_capacity(recs.len());
        for r in &recs {
            let c: Component = records::decode(COMPONENTS, r)?;
            if f.matches(&c) {
                out.push(f.project(c));
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
    ) -> Result<(), ApiError> {
        if comps.is_empty() || comps[0].id.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::bad_request("Missing Components"));
        }
        let mut valid: Vec<Component> = Vec::with_capacity(comps.len());
        let mut seen = HashMap::new();
        for (i, c) in comps.iter().enumerate() {
            let v = validate(c, None).map_err(|e| {
                ApiError::bad_request(format!(
                    "couldn't validate components: Components[{i}]: {e}"
                ))
            })?;
            // Duplicate IDs in one request: the first one wins, as in SMD.
            if seen.insert(v.id.clone(), i).is_none() {
                valid.push(v);
            }
        }
        retrying!(self.try_upsert(&valid, force))
    }

    async fn try_upsert(&self, comps: &[Component], force: bool) -> Result<(), Fail> {
        let ids: Vec<String> = comps.iter().map(|c| c.id.clone()).collect();
        let existing: BTreeMap<String, Record> = self
            .store
            .get_many(COMPONENTS, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
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
    ) -> Result<(), ApiError> {
        let x = Xname::parse(url_id)
            .map_err(|_| ApiError::bad_request(format!("invalid xname '{url_id}' in URL")))?;
        let v = validate(c, Some(&x))
            .map_err(|e| ApiError::bad_request(format!("couldn't validate component: {e}")))?;
        if let Some(want) = if_match {
            self.check_version(&x, want).await?;
        }
        retrying!(self.try_upsert(std::slice::from_ref(&v), force))
    }

    async fn check_version(&self, x: &Xname, want: u64) -> Result<(), ApiError> {
        let cur = self.store.get(COMPONENTS, x.as_str()).await?;
        match cur {
            Some(r) if r.version == want => Ok(()),
            Some(r) => Err(ApiError::PreconditionFailed(format!(
                "{x} is at version {}, not {want} (If-Match); re-read it and retry",
                r.version
            ))),
            None => Err(ApiError::not_found("no such xname.")),
        }
    }

    /// Patches components. `if_match` (single component only) makes the write conditional on the
    /// version the client read; otherwise the patch is re-applied to fresh data on a lost race.
    pub async fn patch_components(
        &self,
        ids: &[String],
        patch: &ComponentPatch,
        if_match: Option<u64>,
    ) -> Result<(), ApiError> {
        if ids.is_empty() {
            return Err(ApiError::bad_request("Missing IDs"));
        }
        let mut xs = Vec::new();
        for id in ids {
            let x = Xname::parse(id)
                .map_err(|_| ApiError::bad_request(format!("invalid xname ID '{id}'")))?;
            xs.push(x.to_string());
        }
        // Validate once up front so a bad value is a 400 even for unknown components.
        patch
            .apply(&mut Component::default())
            .map_err(|e| ApiError::bad_request(format!("couldn't validate patch: {e}")))?;
        let attempt = async || {
            let recs = self.existing_components(&xs).await?;
            let mut ops = Vec::new();
            for r in recs {
                if let Some(want) = if_match
                    && r.version != want
                {
                    return Err(Fail::Api(ApiError::PreconditionFailed(format!(
                        "{} is at version {}, not {want} (If-Match); re-read it and retry",
                        r.id, r.version
                    ))));
                }
                let mut c: Component = records::decode(COMPONENTS, &r)?;
                patch.apply(&mut c).map_err(ApiError::bad_request)?;
                ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(&c)?,
                    prev: Some(r),
                });
            }
            self.store.write(ops).await.map_err(nid_conflict)
        };
        retrying!(attempt())
    }

    /// `PATCH /State/Components/BulkNID`: every NID is checked for uniqueness (SMD accepts
    /// duplicates; Skyport answers 409 naming the holder) and unknown IDs are a 404, not ignored.
    pub async fn bulk_nid(&self, entries: &[skyport_wire::NidPatch]) -> Result<(), ApiError> {
        if entries.is_empty() || entries[0].id.trim().is_empty() {
            return Err(ApiError::bad_request("Missing Components"));
        }
        let mut by_id: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let x = Xname::parse(&e.id).map_err(|_| {
                ApiError::bad_request(format!("Components[{i}].ID: invalid xname ID '{}'", e.id))
            })?;
            let nid = match e.nid {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Components[{i}].NID: NID value missing.  Use NID < 0 to unset."
                    )));
                }
                Some(n) if n < 0 => None,
                Some(n) => Some(
                    check_nid(Some(n))
                        .map_err(ApiError::bad_request)?
                        .unwrap_or(n),
                ),
            };
            by_id.entry(x.to_string()).or_insert(nid);
        }
        let ids: Vec<String> = by_id.keys().cloned().collect();
        let attempt = async || {
            let recs = self.existing_components(&ids).await?;
            let mut ops = Vec::new();
            for r in recs {
                let mut c: Component = records::decode(COMPONENTS, &r)?;
                c.nid = by_id.get(&r.id).copied().flatten();
                ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(&c)?,
                    prev: Some(r),
                });
            }
            self.store.write(ops).await.map_err(nid_conflict)
        };
        retrying!(attempt())
    }

    /// The components `ids`, all of which must exist (404 naming the missing ones).
    async fn existing_components(&self, ids: &[String]) -> Result<Vec<Record>, Fail> {
        let recs = self.store.get_many(COMPONENTS, ids).await?;
        if recs.len() != ids.len() {
            let found: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
            let missing: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|x| !found.contains(x))
                .collect();
            return Err(Fail::Api(ApiError::not_found(format!(
                "no such xname: {}",
                missing.join(", ")
            ))));
        }
        Ok(recs)
    }

    /// Deletes one component and removes it from every group it belonged to.
    pub async fn delete_component(&self, id: &str, if_match: Option<u64>) -> Result<(), ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname"))?;
        let attempt = async || {
            let Some(r) = self.store.get(COMPONENTS, x.as_str()).await? else {
                return Err(Fail::Api(ApiError::not_found("no such xname.")));
            };
            if let Some(want) = if_match
                && r.version != want
            {
                return Err(Fail::Api(ApiError::PreconditionFailed(format!(
                    "{x} is at version {}, not {want} (If-Match); re-read it and retry",
                    r.version
                ))));
            }
            let mut ops = self.leave_groups(&[x.to_string()]).await?;
            ops.push(Write::Delete {
                table: COMPONENTS,
                prev: r,
            });
            self.store.write(ops).await.map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// The group rewrites that remove `ids` from every group holding them.
    pub(crate) async fn leave_groups(&self, ids: &[String]) -> Result<Vec<Write>, Fail> {
        let mut groups: BTreeMap<String, Record> = BTreeMap::new();
        for id in ids {
            let key = IndexKey::new("member", id.clone());
            for g in self.store.list_all(GROUPS, Some(&key)).await? {
                groups.insert(g.id.clone(), g);
            }
        }
        let mut ops = Vec::new();
        for (_, r) in groups {
            let mut g: Group = records::decode(GROUPS, &r)?;
            g.members.ids.retain(|m| !ids.contains(m));
            ops.push(Write::Put {
                table: GROUPS,
                record: records::group(&g)?,
                prev: Some(r),
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
                let mut ops = self.leave_groups(&ids).await?;
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
    fn bad_values_name_the_field() {
        assert_eq!(
            validate(&input(r#"{"ID":"x1c0s0b0n0"}"#), None).unwrap_err(),
            "state '' is invalid"
        );
        assert!(
            validate(&input(r#"{"ID":"bogus","State":"On"}"#), None)
                .unwrap_err()
                .contains("xname ID 'bogus'")
        );
        assert!(
            validate(
                &input(r#"{"ID":"x1c0s0b0n0","State":"On","Role":"Boss"}"#),
                None
            )
            .unwrap_err()
            .contains("role 'Boss'")
        );
        assert!(
            validate(&input(r#"{"ID":"x1c0s0b0n0","State":"On","NID":-5}"#), None)
                .unwrap_err()
                .contains("NID -5")
        );
        let url = Xname::parse("x1c0s0b0n1").unwrap();
        assert!(
            validate(&input(r#"{"ID":"x1c0s0b0n0","State":"On"}"#), Some(&url))
                .unwrap_err()
                .contains("do not match")
        );
    }
}
