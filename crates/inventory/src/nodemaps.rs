//! `Defaults/NodeMaps`: the NID, Role and SubRole an admin plans for each node, applied when a
//! node is created without them (by discovery, or a component POST/PUT that leaves them out),
//! so nodes get the small sequential NIDs the site planned instead of xname-derived ones, as
//! SMD's `GetCompDefaults` does. A NID belongs to one map (a unique key), so two maps cannot
//! plan the same NID even when written at once.

use std::collections::BTreeMap;

use serde_json::Value;
use skyport_http::ApiError;
use skyport_model::{Role, SubRole, Xname};
use skyport_store::StoreError;
use skyport_wire::{Component, NodeMap};

use crate::records::{self, NODE_MAPS};
use crate::{Fail, Inventory};

/// The unique-key name of a planned NID.
pub(crate) const NODE_MAP_NID: &str = "nodemap-nid";

/// Why a map is not one SMD takes, in SMD's words (`pkg/sm/nodemap.go` NewNodeMap).
fn check(m: &NodeMap) -> Result<NodeMap, String> {
    let id = Xname::parse(&m.id)
        .ok()
        .filter(|x| x.hms_type().is_node())
        .ok_or_else(|| format!("xname ID '{}' is invalid or not a node", m.id))?;
    if m.nid <= 0 {
        return Err(format!("NID '{}' is out of range", m.nid));
    }
    let canon = |v: &str, what: &str, ok: fn(&str) -> Option<String>| {
        if v.is_empty() {
            Ok(String::new())
        } else {
            ok(v).ok_or_else(|| format!("{what} '{v}' is not valid."))
        }
    };
    Ok(NodeMap {
        id: id.to_string(),
        nid: m.nid,
        role: canon(&m.role, "Role", |v| {
            v.parse::<Role>().ok().map(|r| r.to_string())
        })?,
        sub_role: canon(&m.sub_role, "SubRole", |v| {
            v.parse::<SubRole>().ok().map(|r| r.to_string())
        })?,
        node_info: m.node_info.clone().filter(|v| !v.is_null()),
    })
}

/// A duplicate planned NID as SMD words it for `dup`, the holder in the context.
fn nid_taken(e: StoreError, dup: &'static str) -> Fail {
    match e {
        StoreError::Duplicate { key, owner } if key.name == NODE_MAP_NID => {
            Fail::Api(ApiError::conflict(dup).context(format!(
                "NID {} is planned for {}",
                key.value,
                owner.trim_start_matches("NodeMaps/")
            )))
        }
        other => other.into(),
    }
}

/// `POST`'s body: one map, or `{"NodeMaps": [...]}` (one map wins when it has keys of its own;
/// `{}` is nothing).
pub fn parse_post(body: &Value) -> Result<Vec<(Option<usize>, NodeMap)>, ApiError> {
    let one = body
        .as_object()
        .is_some_and(|o| o.keys().any(|k| !k.eq_ignore_ascii_case("NodeMaps")));
    let decode = |v: &Value| skyport_http::from_json_value::<NodeMap>(v.clone());
    if body.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(Vec::new());
    }
    if one || body.get("NodeMaps").is_none() {
        return Ok(vec![(None, decode(body)?)]);
    }
    match body.get("NodeMaps") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((Some(i), decode(v)?)))
            .collect(),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(ApiError::bad_request(
            "error decoding JSON: NodeMaps must be an array",
        )),
    }
}

impl Inventory {
    pub async fn node_maps(&self) -> Result<Vec<NodeMap>, ApiError> {
        self.select(NODE_MAPS, crate::Candidates::All, |_: &NodeMap| true)
            .await
    }

    /// A node's map; an invalid or unknown xname is SMD's 404.
    pub async fn node_map(&self, id: &str) -> Result<NodeMap, ApiError> {
        let r = self.by_xname(NODE_MAPS, id).await?;
        records::decode(NODE_MAPS, &r)
    }

    /// `POST /Defaults/NodeMaps`: creates or replaces every map given, all or none; how many.
    pub async fn post_node_maps(
        &self,
        maps: &[(Option<usize>, NodeMap)],
    ) -> Result<usize, ApiError> {
        let mut valid = Vec::with_capacity(maps.len());
        for (at, m) in maps {
            let m = check(m).map_err(|e| {
                ApiError::bad_request(match at {
                    Some(i) => format!("couldn't validate map data at idx {i}: {e}"),
                    None => format!("couldn't validate mapping data: {e}"),
                })
            })?;
            valid.push(m);
        }
        let dup = "operation would conflict with an existing xname ID that has the same NID.";
        let mut seen = BTreeMap::new();
        for m in &valid {
            if let Some(other) = seen.insert(m.nid, m.id.clone())
                && other != m.id
            {
                return Err(ApiError::conflict(dup)
                    .context(format!("NID {} is given to {other} and {}", m.nid, m.id)));
            }
        }
        let recs = valid
            .iter()
            .map(records::node_map)
            .collect::<Result<Vec<_>, _>>()?;
        self.upsert_all(NODE_MAPS, recs, |e| nid_taken(e, dup))
            .await?;
        Ok(maps.len())
    }

    /// `PUT /Defaults/NodeMaps/{xname}`: creates or replaces one map; the map stored.
    pub async fn put_node_map(&self, url_id: &str, m: &NodeMap) -> Result<NodeMap, ApiError> {
        let m = NodeMap {
            id: crate::put_id(&m.id, url_id)?,
            ..m.clone()
        };
        let m = check(&m)
            .map_err(|e| ApiError::bad_request(format!("couldn't validate endpoint data: {e}")))?;
        let dup = "operation would conflict with an existing resource that has the same NID";
        self.upsert_all(NODE_MAPS, vec![records::node_map(&m)?], |e| {
            nid_taken(e, dup)
        })
        .await?;
        Ok(m)
    }

    pub async fn delete_node_map(&self, id: &str) -> Result<(), ApiError> {
        self.delete_by_xname(NODE_MAPS, id).await
    }

    pub async fn delete_all_node_maps(&self) -> Result<usize, ApiError> {
        self.delete_table(NODE_MAPS).await
    }

    /// The maps of the nodes among `ids`, by xname.
    pub(crate) async fn planned(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, NodeMap>, ApiError> {
        let mut out = BTreeMap::new();
        for r in self.store.get_many(NODE_MAPS, ids).await? {
            let m: NodeMap = records::decode(NODE_MAPS, &r)?;
            out.insert(m.id.clone(), m);
        }
        Ok(out)
    }
}

/// What a node map gives a node created without a NID (`nid_given` false) or a Role
/// (`role_given` false): SMD takes the map's SubRole only together with its Role.
pub(crate) fn apply_plan(c: &mut Component, m: &NodeMap, nid_given: bool, role_given: bool) {
    if !nid_given {
        c.nid = Some(m.nid);
    }
    if !role_given && !m.role.is_empty() {
        c.role = m.role.clone();
        c.sub_role = m.sub_role.clone();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> NodeMap {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn maps_are_checked_in_smd_words() {
        let ok = check(&map(json!({"ID":"X1000C0S0B0N0","NID":7,"Role":"compute"}))).unwrap();
        assert_eq!(
            (ok.id.as_str(), ok.nid, ok.role.as_str()),
            ("x1000c0s0b0n0", 7, "Compute")
        );
        let e = |v| check(&map(v)).unwrap_err();
        assert_eq!(
            e(json!({"ID":"x1000c0s0b0","NID":1})),
            "xname ID 'x1000c0s0b0' is invalid or not a node"
        );
        assert_eq!(e(json!({"ID":"x1000c0s0b0n0"})), "NID '0' is out of range");
        assert_eq!(
            e(json!({"ID":"x1000c0s0b0n0","NID":1,"Role":"Boss"})),
            "Role 'Boss' is not valid."
        );
        assert_eq!(
            e(json!({"ID":"x1000c0s0b0n0","NID":1,"SubRole":"x"})),
            "SubRole 'x' is not valid."
        );
    }

    #[test]
    fn a_post_is_one_map_or_a_list() {
        let one = parse_post(&json!({"ID":"x1000c0s0b0n0","NID":1})).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, None);
        let list = parse_post(
            &json!({"NodeMaps":[{"ID":"x1000c0s0b0n0","NID":1},{"ID":"x1000c0s0b0n1","NID":2}]}),
        )
        .unwrap();
        assert_eq!(
            list.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [Some(0), Some(1)]
        );
        assert!(
            parse_post(&json!({})).unwrap().is_empty(),
            "SMD creates 0 entries"
        );
    }
}
