//! Checks answers against an upstream OpenAPI spec (2, swagger, as SMD's and BSS's; or 3, as
//! PCS's, with `components/schemas` and per-content-type response schemas): the status code must be one the
//! spec documents for that operation, and a JSON body must fit the documented schema (required
//! keys present, documented keys of the documented type, recursively through `$ref`, `allOf`
//! and arrays). This is how the API tests hold Skyport to OpenCHAMI's wire contract.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

pub struct Spec {
    doc: Value,
    /// `(definition, property)` pairs where upstream's code does not follow the spec: the
    /// property's documented type is not checked, nor that a required one is present.
    deviations: Vec<(String, String)>,
}

impl Spec {
    /// Loads a spec from `../shared/openchami-api/<file>` beside the repository.
    pub fn openchami(file: &str) -> anyhow::Result<Self> {
        let p = crate::repo_root()
            .join("../shared/openchami-api")
            .join(file);
        Self::load(&p)
    }

    pub fn load(p: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let doc: Value =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        Ok(Spec {
            doc,
            deviations: Vec::new(),
        })
    }

    /// Records a place where the spec and upstream's implementation disagree and clients follow
    /// the implementation (e.g. SMD's `Response_1.0.0.code` is documented as a string but sent
    /// as the integer 0 by `sendJsonError`).
    pub fn deviation(mut self, definition: &str, property: &str) -> Self {
        self.deviations.push((definition.into(), property.into()));
        self
    }

    /// An example body from `definitions/<name>/example`.
    pub fn example(&self, definition: &str) -> Option<Value> {
        self.doc
            .get("definitions")?
            .get(definition)?
            .get("example")
            .cloned()
    }

    /// The spec's templated path for a concrete request path (without the base path, as
    /// [`Spec::check`] takes it) that documents `method`: literal segments must be equal, a
    /// `{param}` takes any one segment, and the template with the most literal segments wins
    /// (`/State/Components/Query` over `/State/Components/{xname}`).
    pub fn template(&self, method: &str, path: &str) -> Option<String> {
        let want: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let method = method.to_ascii_lowercase();
        self.doc
            .get("paths")?
            .as_object()?
            .iter()
            .filter(|(_, ops)| ops.get(&method).is_some())
            .filter_map(|(t, _)| {
                let segs: Vec<&str> = t.trim_end_matches('/').split('/').collect();
                if segs.len() != want.len() {
                    return None;
                }
                let mut literal = 0;
                for (s, w) in segs.iter().zip(&want) {
                    if s.starts_with('{') && s.ends_with('}') {
                        continue;
                    }
                    if s != w {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, t.clone()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, t)| t)
    }

    /// Checks `status` and `body` for `method path` (path as templated in the spec, without the
    /// base path, e.g. `/State/Components/{xname}`).
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> anyhow::Result<()> {
        let op = self
            .doc
            .get("paths")
            .and_then(|p| p.get(path))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .with_context(|| format!("spec has no operation {method} {path}"))?;
        let responses = op.get("responses").context("operation has no responses")?;
        let resp = match responses.get(status.to_string()) {
            Some(r) => r,
            None if status >= 500 => match responses.get("default") {
                Some(r) => r,
                None => bail!("{method} {path}: status {status} is not documented"),
            },
            None => bail!(
                "{method} {path}: status {status} is not documented (documented: {:?})",
                responses
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            ),
        };
        // OpenAPI 3 puts the schema under the content type (PCS documents errors as
        // `application/error`; any documented type's schema is the body's).
        let schema = resp.get("schema").or_else(|| {
            resp.get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().find_map(|m| m.get("schema")))
        });
        if let Some(schema) = schema
            && !body.is_null()
        {
            self.fits(schema, body, "$").with_context(|| {
                format!("{method} {path} -> {status}: body does not fit the spec")
            })?;
        }
        Ok(())
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> anyhow::Result<&'a Value> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let found = match r.strip_prefix("#/components/schemas/") {
                    Some(name) => self
                        .doc
                        .get("components")
                        .and_then(|c| c.get("schemas"))
                        .and_then(|d| d.get(name)),
                    None => self
                        .doc
                        .get("definitions")
                        .and_then(|d| d.get(r.trim_start_matches("#/definitions/"))),
                };
                found.with_context(|| format!("unresolvable $ref {r}"))
            }
            None => Ok(schema),
        }
    }

    /// Whether property `k` of definition `def` is a recorded deviation.
    fn deviates(&self, def: Option<&str>, k: &str) -> bool {
        def.is_some_and(|d| {
            self.deviations
                .iter()
                .any(|(dd, p)| dd == d && (p == k || p == "*"))
        })
    }

    fn fits(&self, schema: &Value, v: &Value, at: &str) -> anyhow::Result<()> {
        let def = schema.get("$ref").and_then(Value::as_str).map(|r| {
            r.trim_start_matches("#/definitions/")
                .trim_start_matches("#/components/schemas/")
                .to_string()
        });
        let schema = self.resolve(schema)?;
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.fits(s, v, at)?;
            }
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let has_props = schema.get("properties").is_some();
        match ty {
            Some("object") | None if has_props => {
                let obj = v
                    .as_object()
                    .with_context(|| format!("{at}: expected an object, got {v}"))?;
                for r in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let k = r.as_str().unwrap_or_default();
                    if !obj.contains_key(k) && !self.deviates(def.as_deref(), k) {
                        bail!("{at}: required key {k:?} missing");
                    }
                }
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, s) in props {
                        let exempt = self.deviates(def.as_deref(), k);
                        if let Some(val) = obj.get(k)
                            && !val.is_null()
                            && !exempt
                        {
                            self.fits(s, val, &format!("{at}.{k}"))?;
                        }
                    }
                }
            }
            Some("array") => {
                let arr = v
                    .as_array()
                    .with_context(|| format!("{at}: expected an array, got {v}"))?;
                if let Some(items) = schema.get("items") {
                    for (i, item) in arr.iter().enumerate() {
                        self.fits(items, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            Some("string") if !v.is_string() => bail!("{at}: expected a string, got {v}"),
            Some("integer") if !(v.is_i64() || v.is_u64()) => {
                bail!("{at}: expected an integer, got {v}")
            }
            Some("number") if !v.is_number() => bail!("{at}: expected a number, got {v}"),
            Some("boolean") if !v.is_boolean() => bail!("{at}: expected a boolean, got {v}"),
            _ => {}
        }
        if let (Some(values), Some(s)) = (schema.get("enum").and_then(Value::as_array), v.as_str())
            && !values.iter().any(|e| e.as_str() == Some(s))
        {
            bail!("{at}: {s:?} is not one of the documented values");
        }
        Ok(())
    }
}
