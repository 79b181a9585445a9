//! The patch documents Fabrica's PATCH routes take, chosen by `Content-Type` (lower-cased,
//! parameters dropped): JSON merge patch (RFC 7386, also the default for any other type and
//! for none), JSON patch (RFC 6902), Fabrica's shorthand (`{"a.b": value}`), and strategic
//! merge patch, which upstream recognises and then refuses. A patch applies to `spec` (or to
//! `status` on the status route) only: its paths are relative to it.

use serde_json::Value;

/// How a PATCH body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Shorthand,
    Strategic,
}

impl PatchType {
    /// The type a `Content-Type` header names; anything unknown (and none) is a merge patch.
    pub fn from_content_type(ct: Option<&str>) -> PatchType {
        let mime = ct
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json-patch+json" => PatchType::Json,
            "application/shorthand-patch+json" => PatchType::Shorthand,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            _ => PatchType::Merge,
        }
    }
}

/// Why a patch could not be applied (upstream answers 422 for all of them).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("unsupported patch type")]
    Unsupported,
    #[error("failed to apply patch to {target}: {reason}")]
    Failed {
        target: &'static str,
        reason: String,
    },
}

/// `doc` applied to `target` (`spec` or `status`, named in errors). An empty body changes
/// nothing, as upstream.
pub fn apply(
    kind: PatchType,
    doc: &[u8],
    target_name: &'static str,
    target: Value,
) -> Result<Value, PatchError> {
    let failed = |reason: String| PatchError::Failed {
        target: target_name,
        reason,
    };
    if doc.iter().all(u8::is_ascii_whitespace) {
        return Ok(target);
    }
    match kind {
        PatchType::Strategic => Err(PatchError::Unsupported),
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(doc).map_err(|e| failed(e.to_string()))?;
            let mut t = target;
            json_patch::merge(&mut t, &p);
            Ok(t)
        }
        PatchType::Json => {
            let p: json_patch::Patch =
                serde_json::from_slice(doc).map_err(|e| failed(e.to_string()))?;
            let mut t = target;
            json_patch::patch(&mut t, &p).map_err(|e| failed(e.to_string()))?;
            Ok(t)
        }
        PatchType::Shorthand => {
            let p: serde_json::Map<String, Value> =
                serde_json::from_slice(doc).map_err(|e| failed(e.to_string()))?;
            let mut t = target;
            let mut ops = Vec::new();
            for (key, value) in p {
                let path = key
                    .split('.')
                    .map(|s| s.replace('~', "~0").replace('/', "~1"))
                    .fold(String::new(), |acc, s| format!("{acc}/{s}"));
                let exists = t.pointer(&path).is_some();
                let op = match (&value, exists) {
                    (Value::Null, _) => serde_json::json!({"op": "remove", "path": path}),
                    (_, true) => serde_json::json!({"op": "replace", "path": path, "value": value}),
                    (_, false) => serde_json::json!({"op": "add", "path": path, "value": value}),
                };
                ops.push(op);
            }
            let p: json_patch::Patch =
                serde_json::from_value(Value::Array(ops)).map_err(|e| failed(e.to_string()))?;
            json_patch::patch(&mut t, &p).map_err(|e| failed(e.to_string()))?;
            Ok(t)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"kernel": "http://k", "params": "a", "groups": ["x"]})
    }

    #[test]
    fn content_types_choose_the_patch() {
        for (ct, want) in [
            (Some("application/merge-patch+json"), PatchType::Merge),
            (
                Some("Application/JSON-Patch+JSON; charset=utf-8"),
                PatchType::Json,
            ),
            (
                Some("application/shorthand-patch+json"),
                PatchType::Shorthand,
            ),
            (
                Some("application/strategic-merge-patch+json"),
                PatchType::Strategic,
            ),
            // What the OpenAPI file advertises, and plain JSON, are merge patches upstream.
            (Some("application/shorthand-patch"), PatchType::Merge),
            (Some("application/json"), PatchType::Merge),
            (None, PatchType::Merge),
        ] {
            assert_eq!(PatchType::from_content_type(ct), want, "{ct:?}");
        }
    }

    #[test]
    fn each_type_applies_relative_to_the_target() {
        let merged = apply(
            PatchType::Merge,
            br#"{"params":null,"initrd":"http://i"}"#,
            "spec",
            spec(),
        );
        assert_eq!(
            merged.unwrap(),
            json!({"kernel": "http://k", "groups": ["x"], "initrd": "http://i"})
        );
        let jp = br#"[{"op":"add","path":"/groups/-","value":"y"},{"op":"replace","path":"/params","value":"b"}]"#;
        assert_eq!(
            apply(PatchType::Json, jp, "spec", spec()).unwrap(),
            json!({"kernel": "http://k", "params": "b", "groups": ["x", "y"]})
        );
        let sh = br#"{"params": null, "kernel": "http://k2", "labels.a": 1}"#;
        let err = apply(PatchType::Shorthand, sh, "spec", spec()).unwrap_err();
        // `labels` is not there to add `a` under: the whole patch fails, as json-patch's add.
        assert!(
            err.to_string()
                .starts_with("failed to apply patch to spec: "),
            "{err}"
        );
        let sh = br#"{"params": null, "kernel": "http://k2"}"#;
        assert_eq!(
            apply(PatchType::Shorthand, sh, "spec", spec()).unwrap(),
            json!({"kernel": "http://k2", "groups": ["x"]})
        );
    }

    #[test]
    fn failures_are_upstreams() {
        assert_eq!(
            apply(PatchType::Strategic, b"{}", "spec", spec())
                .unwrap_err()
                .to_string(),
            "unsupported patch type"
        );
        let test_fails = br#"[{"op":"test","path":"/params","value":"zzz"}]"#;
        assert!(apply(PatchType::Json, test_fails, "spec", spec()).is_err());
        assert!(apply(PatchType::Merge, b"{not json", "spec", spec()).is_err());
        // An empty body is no change.
        assert_eq!(
            apply(PatchType::Json, b"  ", "spec", spec()).unwrap(),
            spec()
        );
    }
}
