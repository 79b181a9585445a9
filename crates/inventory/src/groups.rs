//! `groups` and `memberships` (a component's groups and partition): labelled sets of
//! components (kept as [`crate::sets`] keeps partitions too). A member must be an existing
//! component (checked in the same atomic write that adds it), a deleted component leaves its
//! groups, and a component may be in only one group per `exclusiveGroup` (a unique key per
//! exclusive set and member, so two concurrent adds cannot both win).

use std::collections::BTreeMap;

use skyport_http::ApiError;
use skyport_model::Xname;
use skyport_store::{IndexKey, Record};
use skyport_wire::{Component, Group, GroupIn, GroupPatch, Members, Membership};

use crate::filters::{ComponentFilter, GroupFilter, valid_label};
use crate::records::{self, COMPONENTS, GROUPS};
use crate::sets::{Kind, MemberSet, clash};
use crate::{Candidates, Inventory};

const DUP_GROUP: &str = "operation would conflict with an existing group that has the same label or duplicate ids found in request.";
const DUP_EXCL: &str =
    "operation would conflict with an existing member in another exclusive group.";

/// A label or tag, lowercased; when it has other characters than SMD allows, SMD's text for
/// `what` (`group label` → `Invalid group label.`, `tag` → `Invalid tag.`) with the value in
/// the problem's context.
pub(crate) fn label(s: &str, what: &str) -> Result<String, ApiError> {
    let l = s.trim().to_ascii_lowercase();
    if valid_label(&l) {
        Ok(l)
    } else {
        let what_cap = format!("{}{}", what[..1].to_ascii_uppercase(), &what[1..]);
        Err(
            ApiError::bad_request(format!("Invalid {what}.")).context(format!(
                "{what_cap} {s:?}: use lowercase letters, digits and -:._"
            )),
        )
    }
}

/// SMD's text for any label, tag or exclusive group of a new group or partition it cannot take.
const BAD_FIELD: &str = "group or partition field has invalid characters";

/// [`label`] for a new group's or partition's (`kind`) fields: SMD's create text, the value
/// in the context.
pub(crate) fn new_label(s: &str, what: &str, kind: &str) -> Result<String, ApiError> {
    label(s, what).map_err(|e| {
        let ctx = match &e {
            ApiError::WithContext { context, .. } => context.clone(),
            other => other.to_string(),
        };
        ApiError::bad_request(format!("couldn't validate {kind}: {BAD_FIELD}")).context(ctx)
    })
}

/// A member list, normalised. Invalid xnames get SMD's text for creating a `kind` (`POST
/// /groups`: `couldn't validate group: got HMSTypeInvalid …`) or, with `put`, for `PUT
/// …/members` (`invalid xname IDs: [a b]`, which names them itself); an xname listed twice is
/// the conflict `dup`.
pub(crate) fn members(
    ids: &[String],
    put: bool,
    kind: &str,
    dup: &'static str,
) -> Result<Vec<String>, ApiError> {
    let bad: Vec<&str> = ids
        .iter()
        .filter(|id| Xname::parse(id).is_err())
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(if put {
            ApiError::bad_request(format!("invalid xname IDs: [{}]", bad.join(" ")))
        } else {
            let at: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(_, id)| Xname::parse(id).is_err())
                .map(|(i, id)| format!("ids[{i}]: {id:?}"))
                .collect();
            ApiError::bad_request(format!(
                "couldn't validate {kind}: got HMSTypeInvalid instead of valid type"
            ))
            .context(format!("invalid xname ID at {}", at.join(", ")))
        });
    }
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname ID"))?;
        if out.contains(&x.to_string()) {
            return Err(ApiError::conflict(dup).context(format!("{x} listed twice")));
        }
        out.push(x.to_string());
    }
    Ok(out)
}

impl MemberSet for Group {
    const KIND: Kind = Kind {
        table: GROUPS,
        path: "groups",
        name_is: "group label",
        no_such: "No such group: ",
        gone: "no such group.",
        dup_name: DUP_GROUP,
        dup_member: "operation would conflict with an existing member in the same group.",
        no_member: "group has no such member.",
        clash: |e| clash(e, |k| k.starts_with("excl:"), DUP_EXCL),
    };
    fn record(&self) -> Result<Record, ApiError> {
        records::group(self)
    }
    fn name(&self) -> &str {
        &self.label
    }
    fn members(&self) -> &[String] {
        &self.members.ids
    }
    fn members_mut(&mut self) -> &mut Vec<String> {
        &mut self.members.ids
    }
    fn description_mut(&mut self) -> &mut String {
        &mut self.description
    }
    fn tags_mut(&mut self) -> &mut Vec<String> {
        &mut self.tags
    }
}

impl Inventory {
    pub async fn create_group(&self, g: &GroupIn) -> Result<String, ApiError> {
        let l = new_label(g.label.as_deref().unwrap_or(""), "group label", "group")?;
        let excl = match g.exclusive_group.as_deref().filter(|s| !s.is_empty()) {
            Some(e) => new_label(e, "exclusiveGroup", "group")?,
            None => String::new(),
        };
        let tags = g
            .tags
            .iter()
            .map(|t| new_label(t, "tag", "group"))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = members(
            g.members
                .as_ref()
                .map(|m| m.ids.as_slice())
                .unwrap_or_default(),
            false,
            "group",
            DUP_GROUP,
        )?;
        self.create_set(&Group {
            label: l,
            description: g.description.clone().unwrap_or_default(),
            exclusive_group: excl,
            tags,
            members: Members { ids },
        })
        .await
    }

    pub async fn get_group(&self, l: &str) -> Result<Group, ApiError> {
        self.get_set(l).await
    }

    pub async fn list_groups(&self, f: &GroupFilter) -> Result<Vec<Group>, ApiError> {
        let from = Candidates::choose(f.labels.clone(), &[]);
        self.select(GROUPS, from, |g| f.matches(g)).await
    }

    pub async fn group_labels(&self) -> Result<Vec<String>, ApiError> {
        self.set_names::<Group>().await
    }

    pub async fn patch_group(&self, l: &str, p: &GroupPatch) -> Result<(), ApiError> {
        self.patch_set::<Group>(l, p).await
    }

    pub async fn delete_group(&self, l: &str) -> Result<(), ApiError> {
        self.delete_set::<Group>(l).await
    }

    pub async fn add_group_member(&self, l: &str, id: &str) -> Result<String, ApiError> {
        let x = Xname::parse(id)
            .map_err(|_| ApiError::bad_request("invalid xname ID").context(format!("{id:?}")))?;
        self.add_set_member::<Group>(l, &x).await
    }

    /// `PUT /groups/{label}/members`: replaces the member list (Skyport keeps SMD's 409/400
    /// meanings here, where upstream turns them into 500s).
    pub async fn set_group_members(
        &self,
        l: &str,
        ids: &[String],
    ) -> Result<Vec<String>, ApiError> {
        let ids = members(ids, true, "group", DUP_GROUP)?;
        self.set_members::<Group>(l, &ids).await
    }

    pub async fn remove_group_member(&self, l: &str, id: &str) -> Result<(), ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname ID"))?;
        self.remove_set_member::<Group>(l, &x).await
    }

    /// `GET /memberships`: every matching component with the groups it is in.
    pub async fn memberships(&self, f: &ComponentFilter) -> Result<Vec<Membership>, ApiError> {
        let mut by_member: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.store.list_all(GROUPS, None).await? {
            let g: Group = records::decode(GROUPS, &r)?;
            for m in g.members.ids {
                by_member.entry(m).or_default().push(g.label.clone());
            }
        }
        let mut partitions = self.partitioned().await?;
        let comps = self.list_components(f).await?;
        Ok(comps
            .into_iter()
            .map(|c: Component| Membership {
                group_labels: by_member.remove(&c.id).unwrap_or_default(),
                partition_name: partitions.remove(&c.id).unwrap_or_default(),
                id: c.id,
            })
            .collect())
    }

    pub async fn membership(&self, id: &str) -> Result<Membership, ApiError> {
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname"))?;
        if self.store.get(COMPONENTS, x.as_str()).await?.is_none() {
            return Err(ApiError::not_found(format!("No such xname: {x}")));
        }
        let key = IndexKey::new("member", x.to_string());
        let labels = self
            .store
            .list_all(GROUPS, Some(&key))
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        Ok(Membership {
            id: x.to_string(),
            group_labels: labels,
            partition_name: self.partition_of(x.as_str()).await?,
        })
    }
}
