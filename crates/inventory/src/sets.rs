//! What groups and partitions share: a named set of existing components kept as one record
//! (members, description, tags), created, patched, deleted and grown or shrunk one member at a
//! time, each change one compare-and-swap write together with checks that its new members
//! still exist. The two differ in their table, their unique keys (an exclusive group's, the
//! one-partition rule) and SMD's texts, which [`Kind`] carries.

use serde::Serialize;
use serde::de::DeserializeOwned;
use skyport_http::ApiError;
use skyport_model::Xname;
use skyport_store::{Record, StoreError, Table, Write};
use skyport_wire::GroupPatch;

use crate::groups::label;
use crate::records::{self, COMPONENTS};
use crate::{Fail, Inventory, retrying};

/// A kind of set: where it is stored and what SMD says about it.
pub(crate) struct Kind {
    pub table: Table,
    /// The collection's path under the API base (`groups`, `partitions`).
    pub path: &'static str,
    /// What its name is called in [`label`]'s texts (`group label`, `partition name`).
    pub name_is: &'static str,
    /// 404 of the reads (`No such group: `, followed by the name).
    pub no_such: &'static str,
    /// 404 of PATCH and DELETE (`no such group.`).
    pub gone: &'static str,
    /// 409 for a name taken (and an id listed twice in a create).
    pub dup_name: &'static str,
    /// 409 for adding a member again.
    pub dup_member: &'static str,
    /// 404 for removing what is not a member.
    pub no_member: &'static str,
    /// How a unique key of the set's members clashing with another set's is told.
    pub clash: fn(StoreError) -> Fail,
}

/// A group or a partition as stored.
pub(crate) trait MemberSet: Serialize + DeserializeOwned {
    const KIND: Kind;
    fn record(&self) -> Result<Record, ApiError>;
    fn name(&self) -> &str;
    fn members(&self) -> &[String];
    fn members_mut(&mut self) -> &mut Vec<String>;
    fn description_mut(&mut self) -> &mut String;
    fn tags_mut(&mut self) -> &mut Vec<String>;
}

/// The 409 `dup` for the holder of a set-membership unique key (`key.value` is the member,
/// `owner` the holding record).
pub(crate) fn clash(e: StoreError, key_name: fn(&str) -> bool, dup: &'static str) -> Fail {
    match e {
        StoreError::Duplicate { key, owner } if key_name(&key.name) => {
            let holder = owner.split_once('/').map_or(owner.as_str(), |(_, id)| id);
            Fail::Api(ApiError::conflict(dup).context(format!("{} is in {holder}", key.value)))
        }
        other => other.into(),
    }
}

impl Inventory {
    /// `Check` ops that fail the write unless every member still exists as read.
    pub(crate) async fn member_checks(&self, ids: &[String]) -> Result<Vec<Write>, Fail> {
        let recs = self.store.get_many(COMPONENTS, ids).await?;
        if let Some(m) = records::missing(ids, &recs) {
            let e = ApiError::bad_request("linked component does not exist").context(m);
            return Err(Fail::Api(e));
        }
        Ok(recs
            .into_iter()
            .map(|prev| Write::Check {
                table: COMPONENTS,
                prev,
            })
            .collect())
    }

    /// Stores a new set whose members must exist; its URI.
    pub(crate) async fn create_set<S: MemberSet>(&self, set: &S) -> Result<String, ApiError> {
        let k = S::KIND;
        let attempt = async || {
            let mut ops = self.member_checks(set.members()).await?;
            ops.push(Write::Put {
                table: k.table,
                record: set.record()?,
                prev: None,
            });
            self.store.write(ops).await.map_err(|e| match e {
                StoreError::Conflict { ref table, .. } if table == k.table.name() => {
                    Fail::Api(ApiError::conflict(k.dup_name))
                }
                other => (k.clash)(other),
            })
        };
        retrying!(attempt())?;
        Ok(format!("{}/{}/{}", crate::BASE, k.path, set.name()))
    }

    /// The set `name` (a path value) and its record; absent, `missing`'s 404.
    async fn set_record<S: MemberSet>(
        &self,
        name: &str,
        missing: fn(&Kind, &str) -> ApiError,
    ) -> Result<(S, Record), Fail> {
        let k = S::KIND;
        let n = label(name, k.name_is)?;
        let r = self
            .store
            .get(k.table, &n)
            .await?
            .ok_or_else(|| missing(&k, &n))?;
        Ok((records::decode(k.table, &r)?, r))
    }

    /// Writes `set` over `prev`, the record it was read from, with `checks`.
    async fn write_set<S: MemberSet>(
        &self,
        set: &S,
        prev: Record,
        mut checks: Vec<Write>,
    ) -> Result<(), Fail> {
        checks.push(Write::Put {
            table: S::KIND.table,
            record: set.record()?,
            prev: Some(prev),
        });
        self.store.write(checks).await.map_err(S::KIND.clash)
    }

    pub(crate) async fn get_set<S: MemberSet>(&self, name: &str) -> Result<S, ApiError> {
        match self.set_record(name, no_such).await {
            Ok((s, _)) => Ok(s),
            Err(Fail::Api(e)) => Err(e),
            Err(Fail::Race(e)) => Err(e.into()),
        }
    }

    /// Every set's name.
    pub(crate) async fn set_names<S: MemberSet>(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .store
            .list_all(S::KIND.table, None)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    /// `PATCH`: a new description and/or tags.
    pub(crate) async fn patch_set<S: MemberSet>(
        &self,
        name: &str,
        p: &GroupPatch,
    ) -> Result<(), ApiError> {
        label(name, S::KIND.name_is)?;
        if p.description.is_none() && p.tags.is_none() {
            return Err(ApiError::bad_request(
                "Request must have at least one patch field.",
            ));
        }
        let tags = p
            .tags
            .as_ref()
            .map(|ts| {
                ts.iter()
                    .map(|t| label(t, "tag"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let attempt = async || {
            let (mut set, r) = self.set_record::<S>(name, gone).await?;
            if let Some(d) = &p.description {
                *set.description_mut() = d.clone();
            }
            if let Some(t) = &tags {
                *set.tags_mut() = t.clone();
            }
            self.write_set(&set, r, Vec::new()).await
        };
        retrying!(attempt())
    }

    pub(crate) async fn delete_set<S: MemberSet>(&self, name: &str) -> Result<(), ApiError> {
        let attempt = async || {
            let (_, r) = self.set_record::<S>(name, gone).await?;
            self.store
                .write(vec![Write::Delete {
                    table: S::KIND.table,
                    prev: r,
                }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// Adds the component `x` (which must exist) to the set `name`; the member's URI.
    pub(crate) async fn add_set_member<S: MemberSet>(
        &self,
        name: &str,
        x: &Xname,
    ) -> Result<String, ApiError> {
        let k = S::KIND;
        let attempt = async || {
            let (mut set, r) = self.set_record::<S>(name, no_such).await?;
            if set.members().contains(&x.to_string()) {
                return Err(Fail::Api(ApiError::conflict(k.dup_member)));
            }
            set.members_mut().push(x.to_string());
            let checks = self.member_checks(&[x.to_string()]).await?;
            self.write_set(&set, r, checks).await?;
            Ok::<String, Fail>(set.name().to_string())
        };
        let name = retrying!(attempt())?;
        Ok(format!("{}/{}/{name}/members/{x}", crate::BASE, k.path))
    }

    /// Replaces the set's members (which must exist); their URIs.
    pub(crate) async fn set_members<S: MemberSet>(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<String>, ApiError> {
        let attempt = async || {
            let (mut set, r) = self.set_record::<S>(name, no_such).await?;
            *set.members_mut() = ids.to_vec();
            let checks = self.member_checks(ids).await?;
            self.write_set(&set, r, checks).await?;
            Ok::<String, Fail>(set.name().to_string())
        };
        let name = retrying!(attempt())?;
        Ok(ids
            .iter()
            .map(|x| format!("{}/{}/{name}/members/{x}", crate::BASE, S::KIND.path))
            .collect())
    }

    pub(crate) async fn remove_set_member<S: MemberSet>(
        &self,
        name: &str,
        x: &Xname,
    ) -> Result<(), ApiError> {
        let attempt = async || {
            let (mut set, r) = self.set_record::<S>(name, no_such).await?;
            let before = set.members().len();
            set.members_mut().retain(|m| m != x.as_str());
            if set.members().len() == before {
                return Err(Fail::Api(ApiError::not_found(S::KIND.no_member)));
            }
            self.write_set(&set, r, Vec::new()).await
        };
        retrying!(attempt())
    }
}

fn no_such(k: &Kind, name: &str) -> ApiError {
    ApiError::not_found(format!("{}{name}", k.no_such))
}

fn gone(k: &Kind, _: &str) -> ApiError {
    ApiError::not_found(k.gone)
}
