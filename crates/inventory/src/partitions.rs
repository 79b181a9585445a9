//! `partitions`: SMD's hard partitions of a system (`p1`, `p1.2`). A partition is a set of
//! existing components like a group, but a component is in at most one partition: a unique key
//! per member (`partition`) makes a second partition's add fail in the same atomic write, so
//! two concurrent adds cannot both win. A deleted component leaves its partition.

use skyport_http::ApiError;
use skyport_model::Xname;
use skyport_store::{IndexKey, Record, StoreError, Write};
use skyport_wire::{GroupPatch, Members, Partition, PartitionIn};

use crate::groups::{label, members, new_label};
use crate::records::{self, PARTITIONS};
use crate::{Fail, Inventory, retrying};

const DUP_PARTITION: &str =
    "operation would conflict with an existing partition that has the same name.";
const DUP_OTHER: &str = "operation would conflict with an existing member in another partition.";
const DUP_SAME: &str = "operation would conflict with an existing member in the same partition.";
/// The unique-key name that keeps a component in one partition.
pub(crate) const PARTITION_KEY: &str = "partition";

/// `p<n>` or `p<n>.<m>`, SMD's partition names. (SMD's pattern leaves the dot unescaped and so
/// also takes `p1x2`; Skyport takes only what the pattern means.)
pub fn valid_partition_name(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('p') else {
        return false;
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('.') {
        Some((a, b)) => digits(a) && digits(b),
        None => digits(rest),
    }
}

/// A partition name in a path: SMD checks only the label characters there (an unknown name is
/// a 404, not a 400).
fn path_name(s: &str) -> Result<String, ApiError> {
    label(s, "partition name")
}

fn partition_conflict(e: StoreError) -> Fail {
    match e {
        StoreError::Duplicate { key, owner } if key.name == PARTITION_KEY => {
            Fail::Api(ApiError::conflict(DUP_OTHER).context(format!(
                "{} is in {}",
                key.value,
                owner.trim_start_matches("Partitions/")
            )))
        }
        other => other.into(),
    }
}

fn no_such(name: &str) -> ApiError {
    ApiError::not_found(format!("No such partition: {name}"))
}

impl Inventory {
    /// `POST /partitions`: a new partition of existing components, none of them in another.
    pub async fn create_partition(&self, p: &PartitionIn) -> Result<String, ApiError> {
        let name = p.name.as_deref().unwrap_or("").trim().to_ascii_lowercase();
        if !valid_partition_name(&name) {
            return Err(ApiError::bad_request(
                "couldn't validate partition: Bad partition name. Must be p# or p#.#",
            )
            .context(format!("name {name:?}")));
        }
        let tags = p
            .tags
            .iter()
            .map(|t| new_label(t, "tag", "partition"))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = members(
            p.members
                .as_ref()
                .map(|m| m.ids.as_slice())
                .unwrap_or_default(),
            false,
            "partition",
            DUP_PARTITION,
        )?;
        let part = Partition {
            name: name.clone(),
            description: p.description.clone().unwrap_or_default(),
            tags,
            members: Members { ids },
        };
        let attempt = async || {
            let mut ops = self.member_checks(&part.members.ids).await?;
            ops.push(Write::Put {
                table: PARTITIONS,
                record: records::partition(&part)?,
                prev: None,
            });
            self.store.write(ops).await.map_err(|e| match e {
                StoreError::Conflict { ref table, .. } if table == PARTITIONS.name() => {
                    Fail::Api(ApiError::conflict(DUP_PARTITION))
                }
                other => partition_conflict(other),
            })
        };
        retrying!(attempt())?;
        Ok(format!("{}/partitions/{name}", crate::BASE))
    }

    /// The partition `name` (a path value) and its record; `missing` is the 404's text.
    async fn partition_record(
        &self,
        name: &str,
        missing: fn(&str) -> ApiError,
    ) -> Result<(Partition, Record), Fail> {
        let n = path_name(name)?;
        let r = self
            .store
            .get(PARTITIONS, &n)
            .await?
            .ok_or_else(|| missing(&n))?;
        Ok((records::decode(PARTITIONS, &r)?, r))
    }

    async fn write_partition(
        &self,
        p: &Partition,
        prev: Record,
        mut checks: Vec<Write>,
    ) -> Result<(), Fail> {
        checks.push(Write::Put {
            table: PARTITIONS,
            record: records::partition(p)?,
            prev: Some(prev),
        });
        self.store.write(checks).await.map_err(partition_conflict)
    }

    pub async fn get_partition(&self, name: &str) -> Result<Partition, ApiError> {
        match self.partition_record(name, no_such).await {
            Ok((p, _)) => Ok(p),
            Err(Fail::Api(e)) => Err(e),
            Err(Fail::Race(e)) => Err(e.into()),
        }
    }

    /// `GET /partitions?partition=&tag=`: names and tags ORed within each, ANDed across.
    pub async fn list_partitions(
        &self,
        names: &[String],
        tags: &[String],
    ) -> Result<Vec<Partition>, ApiError> {
        let names = names
            .iter()
            .map(|n| path_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = tags
            .iter()
            .map(|t| label(t, "tag"))
            .collect::<Result<Vec<_>, _>>()?;
        let from = crate::Candidates::choose(names, &[]);
        self.select(PARTITIONS, from, |p: &Partition| {
            tags.is_empty() || p.tags.iter().any(|t| tags.contains(t))
        })
        .await
    }

    pub async fn partition_names(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .store
            .list_all(PARTITIONS, None)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    pub async fn patch_partition(&self, name: &str, p: &GroupPatch) -> Result<(), ApiError> {
        path_name(name)?;
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
            let (mut part, r) = self
                .partition_record(name, |_| ApiError::not_found("no such partition."))
                .await?;
            if let Some(d) = &p.description {
                part.description = d.clone();
            }
            if let Some(t) = &tags {
                part.tags = t.clone();
            }
            self.write_partition(&part, r, Vec::new()).await
        };
        retrying!(attempt())
    }

    pub async fn delete_partition(&self, name: &str) -> Result<(), ApiError> {
        let attempt = async || {
            let (_, r) = self
                .partition_record(name, |_| ApiError::not_found("no such partition."))
                .await?;
            self.store
                .write(vec![Write::Delete {
                    table: PARTITIONS,
                    prev: r,
                }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// `POST /partitions/{name}/members`: SMD checks the xname before it looks the partition
    /// up, and a component may be in one partition only.
    pub async fn add_partition_member(&self, name: &str, id: &str) -> Result<String, ApiError> {
        path_name(name)?;
        let x = Xname::parse(id).map_err(|_| {
            ApiError::bad_request("got HMSTypeInvalid instead of valid type")
                .context(format!("{id:?} is not an xname"))
        })?;
        let attempt = async || {
            let (mut p, r) = self.partition_record(name, no_such).await?;
            if p.members.ids.contains(&x.to_string()) {
                return Err(Fail::Api(ApiError::conflict(DUP_SAME)));
            }
            p.members.ids.push(x.to_string());
            let checks = self.member_checks(&[x.to_string()]).await?;
            self.write_partition(&p, r, checks).await?;
            Ok::<String, Fail>(p.name)
        };
        let name = retrying!(attempt())?;
        Ok(format!("{}/partitions/{name}/members/{x}", crate::BASE))
    }

    pub async fn remove_partition_member(&self, name: &str, id: &str) -> Result<(), ApiError> {
        path_name(name)?;
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname ID"))?;
        let attempt = async || {
            let (mut p, r) = self.partition_record(name, no_such).await?;
            let before = p.members.ids.len();
            p.members.ids.retain(|m| m != x.as_str());
            if p.members.ids.len() == before {
                return Err(Fail::Api(ApiError::not_found(
                    "partition has no such member.",
                )));
            }
            self.write_partition(&p, r, Vec::new()).await
        };
        retrying!(attempt())
    }

    /// The partition `id` is in (`""` when none).
    pub(crate) async fn partition_of(&self, id: &str) -> Result<String, ApiError> {
        let key = IndexKey::new("member", id.to_string());
        Ok(self
            .store
            .list_all(PARTITIONS, Some(&key))
            .await?
            .into_iter()
            .map(|r| r.id)
            .next()
            .unwrap_or_default())
    }

    /// Every component in a partition, with its partition's name.
    pub(crate) async fn partitioned(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.store.list_all(PARTITIONS, None).await? {
            let p: Partition = records::decode(PARTITIONS, &r)?;
            for m in p.members.ids {
                out.insert(m, p.name.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_p_n_or_p_n_dot_m() {
        for ok in ["p1", "p0", "p12.3"] {
            assert!(valid_partition_name(ok), "{ok}");
        }
        for bad in ["", "p", "p1.", "p.1", "p1x2", "q1", "p1.2.3", "P1"] {
            assert!(!valid_partition_name(bad), "{bad}");
        }
    }
}
