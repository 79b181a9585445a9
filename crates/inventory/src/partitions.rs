//! `partitions`: SMD's hard partitions of a system (`p1`, `p1.2`). A partition is a set of
//! existing components like a group (kept by [`crate::sets`]), but a component is in at most one partition: a unique key
//! per member (`partition`) makes a second partition's add fail in the same atomic write, so
//! two concurrent adds cannot both win. A deleted component leaves its partition.

use skyport_http::ApiError;
use skyport_model::Xname;
use skyport_store::{IndexKey, Record};
use skyport_wire::{GroupPatch, Members, Partition, PartitionIn};

use crate::Inventory;
use crate::groups::{label, members, new_label};
use crate::records::{self, PARTITIONS};
use crate::sets::{Kind, MemberSet, clash};

const DUP_PARTITION: &str =
    "operation would conflict with an existing partition that has the same name.";
const DUP_OTHER: &str = "operation would conflict with an existing member in another partition.";
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

impl MemberSet for Partition {
    const KIND: Kind = Kind {
        table: PARTITIONS,
        path: "partitions",
        name_is: "partition name",
        no_such: "No such partition: ",
        gone: "no such partition.",
        dup_name: DUP_PARTITION,
        dup_member: "operation would conflict with an existing member in the same partition.",
        no_member: "partition has no such member.",
        clash: |e| clash(e, |k| k == PARTITION_KEY, DUP_OTHER),
    };
    fn record(&self) -> Result<Record, ApiError> {
        records::partition(self)
    }
    fn name(&self) -> &str {
        &self.name
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
        self.create_set(&Partition {
            name,
            description: p.description.clone().unwrap_or_default(),
            tags,
            members: Members { ids },
        })
        .await
    }

    pub async fn get_partition(&self, name: &str) -> Result<Partition, ApiError> {
        self.get_set(name).await
    }

    /// `GET /partitions?partition=&tag=`: names and tags ORed within each, ANDed across.
    pub async fn list_partitions(
        &self,
        names: &[String],
        tags: &[String],
    ) -> Result<Vec<Partition>, ApiError> {
        let names = names
            .iter()
            .map(|n| label(n, "partition name"))
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
        self.set_names::<Partition>().await
    }

    pub async fn patch_partition(&self, name: &str, p: &GroupPatch) -> Result<(), ApiError> {
        self.patch_set::<Partition>(name, p).await
    }

    pub async fn delete_partition(&self, name: &str) -> Result<(), ApiError> {
        self.delete_set::<Partition>(name).await
    }

    /// `POST /partitions/{name}/members`: SMD checks the name, then the xname, before it looks
    /// the partition up; a component may be in one partition only.
    pub async fn add_partition_member(&self, name: &str, id: &str) -> Result<String, ApiError> {
        label(name, "partition name")?;
        let x = Xname::parse(id).map_err(|_| {
            ApiError::bad_request("got HMSTypeInvalid instead of valid type")
                .context(format!("{id:?} is not an xname"))
        })?;
        self.add_set_member::<Partition>(name, &x).await
    }

    pub async fn remove_partition_member(&self, name: &str, id: &str) -> Result<(), ApiError> {
        label(name, "partition name")?;
        let x = Xname::parse(id).map_err(|_| ApiError::bad_request("invalid xname ID"))?;
        self.remove_set_member::<Partition>(name, &x).await
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
