//! SMD's component query routes: `GET State/Components/Query/{xname}`, `POST
//! State/Components/Query`, `POST State/Components/ByNID/Query`, and Skyport's `POST
//! Inventory/ComponentEndpoints/Query`. They take the listing filters ([`ComponentFilter`]) from
//! a path xname or a JSON body instead of a query string, and read xnames as SMD does: without
//! a `type` an xname names that one component; with one it names the component and everything
//! under it (`x1000c0` with `type=Node` is the chassis' nodes); `all` and `s0` name everything.

use serde_json::{Map, Value};
use skyport_http::{ApiError, QueryParams};
use skyport_model::Xname;
use skyport_wire::{Component, ComponentEndpoint};

use crate::Inventory;
use crate::filters::{ComponentEndpointFilter, ComponentFilter};

/// Keys of a query body that are fields of the body itself, not filters.
const PROJECTIONS: [&str; 4] = ["stateonly", "flagonly", "roleonly", "nidonly"];

/// A JSON body's filter members as query parameters. SMD decodes the same body into its
/// query-string filter struct, so keys are case-insensitive and each value is a list of strings;
/// Skyport also takes a single string (the spec types `group` and `partition` as strings, which
/// SMD's code refuses) and numbers (NIDs). The `…only` projections are booleans. Keys in `skip`
/// (the body's own fields) and `null` values are left out.
pub fn body_params(body: &Map<String, Value>, skip: &[&str]) -> Result<QueryParams, ApiError> {
    let mut out = Vec::new();
    for (k, v) in body {
        let key = k.to_ascii_lowercase();
        if skip.iter().any(|s| s.eq_ignore_ascii_case(&key)) || v.is_null() {
            continue;
        }
        let bad = |what: &str| {
            ApiError::bad_request(format!("error decoding JSON: {k} must be {what}"))
                .context(format!("{k}: {v}"))
        };
        if PROJECTIONS.contains(&key.as_str()) {
            let b = v.as_bool().ok_or_else(|| bad("true or false"))?;
            out.push((key, b.to_string()));
            continue;
        }
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match v {
            Value::Array(items) => {
                for item in items {
                    let s = scalar(item).ok_or_else(|| bad("a list of strings"))?;
                    out.push((key.clone(), s));
                }
            }
            other => {
                let s = scalar(other).ok_or_else(|| bad("a list of strings"))?;
                out.push((key, s));
            }
        }
    }
    Ok(QueryParams(out))
}

/// The body's list `name` (case-insensitive key) of strings; absent or `null` is empty.
pub fn body_list(body: &Map<String, Value>, name: &str) -> Result<Vec<String>, ApiError> {
    let Some((k, v)) = body.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) else {
        return Ok(Vec::new());
    };
    let bad = || {
        ApiError::bad_request(format!(
            "error decoding JSON: {name} must be a list of strings"
        ))
        .context(format!("{k}: {v}"))
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// A JSON body that must be an object.
pub fn body_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(m) => Ok(m),
        other => Err(
            ApiError::bad_request("error decoding JSON: the body must be a JSON object")
                .context(format!("got {}", skyport_wire::de::kind(&other))),
        ),
    }
}

/// `id` is `parent` or under it: `parent` followed by a letter and then letters and digits
/// (SMD's `SIMILAR TO '<xname>([[:alpha:]][[:alnum:]]*)?'`).
pub fn within(id: &str, parent: &str) -> bool {
    match id.strip_prefix(parent) {
        Some("") => true,
        Some(rest) => {
            rest.starts_with(|c: char| c.is_ascii_alphabetic())
                && rest.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// What a query's xnames select, after SMD's normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `all` or `s0` was among them: everything.
    All,
    /// These xnames (or, with a type filter, these and what is under them). Xnames that are
    /// not valid match nothing, as in SMD, which does not validate them.
    Under(Vec<String>),
}

impl Scope {
    /// `all`/`s0` are recognised as given (SMD compares the POST body's ids before
    /// lowercasing them; the path xname of the GET route is lowercased first).
    pub fn of(ids: &[String]) -> Scope {
        if ids.iter().any(|i| i == "all" || i == "s0") {
            return Scope::All;
        }
        Scope::Under(
            ids.iter()
                .filter_map(|i| Xname::parse(i).ok())
                .map(|x| x.to_string())
                .collect(),
        )
    }
}

/// `NIDRanges` entries (`"4"`, `"10-20"`) as `nid`, `nid_start` and `nid_end` parameters:
/// a range runs from its first to its last `-`-separated part, and an empty bound is SMD's
/// 400. Empty entries are skipped. The numbers are checked where every NID parameter is.
pub fn nid_ranges(ranges: &[String]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for r in ranges {
        let parts: Vec<&str> = r.split('-').collect();
        match parts.as_slice() {
            [] | [""] => {}
            [one] => out.push(("nid".to_string(), one.trim().to_string())),
            [first, .., last] => {
                if first.trim().is_empty() || last.trim().is_empty() {
                    return Err(ApiError::bad_request(
                        "bad query param: argument was not a valid NID Range",
                    )
                    .context(format!("NIDRanges: {r:?}")));
                }
                out.push(("nid_start".to_string(), first.trim().to_string()));
                out.push(("nid_end".to_string(), last.trim().to_string()));
            }
        }
    }
    Ok(out)
}

impl Inventory {
    /// The components `scope` selects that `f` matches. Without a type filter an xname is that
    /// component (one read per xname); with one, the type's components under any of them.
    pub async fn query_components(
        &self,
        scope: &Scope,
        f: &ComponentFilter,
    ) -> Result<Vec<Component>, ApiError> {
        let ids = match scope {
            Scope::All => return self.list_components(f).await,
            Scope::Under(ids) if ids.is_empty() => return Ok(Vec::new()),
            Scope::Under(ids) => ids,
        };
        if f.types.is_empty() && f.ids.is_empty() {
            let mut exact = f.clone();
            exact.ids = ids.clone();
            return self.list_components(&exact).await;
        }
        let hierarchy = !f.types.is_empty();
        Ok(self
            .list_components(f)
            .await?
            .into_iter()
            .filter(|c| {
                ids.iter().any(|p| {
                    if hierarchy {
                        within(&c.id, p)
                    } else {
                        c.id == *p
                    }
                })
            })
            .collect())
    }

    /// Skyport's `POST Inventory/ComponentEndpoints/Query`: the ComponentEndpoints `scope`
    /// selects that `f` matches, read as [`Inventory::query_components`] reads its xnames.
    pub async fn query_component_endpoints(
        &self,
        scope: &Scope,
        f: &ComponentEndpointFilter,
    ) -> Result<Vec<ComponentEndpoint>, ApiError> {
        let ids = match scope {
            Scope::All => return self.list_component_endpoints(f).await,
            Scope::Under(ids) if ids.is_empty() => return Ok(Vec::new()),
            Scope::Under(ids) => ids,
        };
        if f.by.types.is_empty() && f.by.ids.is_empty() {
            let mut exact = f.clone();
            exact.by.ids = ids.iter().filter_map(|i| Xname::parse(i).ok()).collect();
            return self.list_component_endpoints(&exact).await;
        }
        let hierarchy = !f.by.types.is_empty();
        Ok(self
            .list_component_endpoints(f)
            .await?
            .into_iter()
            .filter(|ce| {
                ids.iter().any(|p| {
                    if hierarchy {
                        within(&ce.id, p)
                    } else {
                        ce.id == *p
                    }
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        body_object(v).unwrap()
    }

    #[test]
    fn descendants_are_a_letter_then_alphanumerics() {
        assert!(within("x1000c0", "x1000c0"));
        assert!(within("x1000c0s0b0n0", "x1000c0"));
        assert!(
            !within("x1000c01s0b0n0", "x1000c0"),
            "c01 is another chassis"
        );
        assert!(!within("x1000c1", "x1000c0"));
        assert!(!within("x1000", "x1000c0"));
    }

    #[test]
    fn body_keys_are_case_insensitive_lists() {
        let q = body_params(
            &obj(
                json!({"ComponentIDs":["x1"],"Type":["Node"],"partition":"p1",
                        "NID":[5],"stateonly":true,"flag":null}),
            ),
            &["componentids"],
        )
        .unwrap();
        assert_eq!(q.all("type"), ["Node"]);
        assert_eq!(q.all("partition"), ["p1"]);
        assert_eq!(q.all("nid"), ["5"]);
        assert_eq!(q.first("stateonly"), Some("true"));
        assert!(!q.has("componentids") && !q.has("flag"));
        let e = body_params(&obj(json!({"stateonly":"yes"})), &[]).unwrap_err();
        assert!(
            e.to_string().contains("stateonly must be true or false"),
            "{e}"
        );
        assert!(body_params(&obj(json!({"type":[{"a":1}]})), &[]).is_err());
        assert!(body_object(json!([1])).is_err());
    }

    #[test]
    fn lists_must_hold_strings() {
        let b = obj(json!({"componentids":["x1c0s0b0n0"],"Other":1}));
        assert_eq!(body_list(&b, "ComponentIDs").unwrap(), ["x1c0s0b0n0"]);
        assert!(body_list(&b, "NIDRanges").unwrap().is_empty());
        assert!(body_list(&obj(json!({"NIDRanges":"1-2"})), "NIDRanges").is_err());
        assert!(body_list(&obj(json!({"NIDRanges":[1]})), "NIDRanges").is_err());
    }

    #[test]
    fn nid_ranges_as_smd_splits_them() {
        let r = |v: &[&str]| nid_ranges(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            r(&["4", "10-20", "", "1-2-3"]).unwrap(),
            [
                ("nid".into(), "4".into()),
                ("nid_start".into(), "10".into()),
                ("nid_end".into(), "20".into()),
                ("nid_start".into(), "1".into()),
                ("nid_end".into(), "3".into()),
            ]
        );
        for bad in ["5-", "-5", "-"] {
            let e = r(&[bad]).unwrap_err();
            assert_eq!(
                e.detail(),
                "bad query param: argument was not a valid NID Range"
            );
        }
    }

    proptest::proptest! {
        // Query bodies come from anyone: ranges and lock bodies are refused or read, never a
        // panic.
        #[test]
        fn any_nid_range_or_lock_body_is_handled(
            ranges in proptest::collection::vec("[-0-9a ]{0,8}|\\PC{0,6}", 0..4),
            key in "[A-Za-z]{0,14}",
            val in "\\PC{0,12}",
        ) {
            if let Ok(q) = nid_ranges(&ranges) {
                let _ = ComponentFilter::parse(&QueryParams(q));
            }
            let body = serde_json::json!({ key: [val.clone()], "NIDRanges": ranges, "ProcessingModel": val });
            if let Some(o) = body.as_object() {
                let _ = crate::locks::LockRequest::parse(o);
                let _ = body_params(o, &[]);
            }
        }
    }

    #[test]
    fn scope_all_and_invalid_xnames() {
        let s = |v: &[&str]| Scope::of(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["x1c0", "all"]), Scope::All);
        assert_eq!(s(&["s0"]), Scope::All);
        assert_eq!(
            s(&["ALL"]),
            Scope::Under(vec![]),
            "the body's ids are compared as given"
        );
        assert_eq!(
            s(&["X1C0S0B0N0", "bogus"]),
            Scope::Under(vec!["x1c0s0b0n0".into()])
        );
    }
}
