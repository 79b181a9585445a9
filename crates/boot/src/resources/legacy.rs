//! boot-service's own BSS-shaped routes (reference §2.7): `/boot-service/bootparameters` (and
//! the same under `/boot-service/boot/v1`), upstream's converters between its
//! BootConfigurations and a BSS-like object. They are not BSS (a GET answers an object, `nids`
//! are strings, DELETE takes the query), so BSS's clients keep the real `/boot/v1`; these serve
//! scripts written against boot-service's own shape. They work on the same BootConfigurations
//! as `/boot-service/bootconfigurations` (BSS's entries included).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skyport_resource::store::Collection;
use skyport_resource::{Kind, Meta, Resource};

use super::configs::Configs;
use super::{BootConfiguration, ConfigSpec};
use crate::BootError;

/// The BSS-like object, request and answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LegacyParams {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nids: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub params: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initrd: String,
    #[serde(rename = "cloud-init", default)]
    pub cloud_init: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A BootConfiguration as upstream's converter shows it: its groups after its hosts.
pub fn to_legacy(r: &Resource<BootConfiguration>) -> LegacyParams {
    let s = &r.spec;
    LegacyParams {
        hosts: s.hosts.iter().chain(&s.groups).cloned().collect(),
        macs: s.macs.clone(),
        nids: s.nids.iter().map(ToString::to_string).collect(),
        params: s.params.clone(),
        kernel: s.kernel.clone(),
        initrd: s.initrd.clone(),
        cloud_init: json!({}),
        meta: Some(json!({
            "comment": "Converted from modern BootConfiguration",
            "created-at": r.metadata.created_at,
            "modified-at": r.metadata.updated_at,
        })),
    }
}

/// Whether configuration `s` has any of `values` among its hosts, MACs or groups, or as a NID.
fn names_any(s: &ConfigSpec, values: &[String]) -> bool {
    values.iter().any(|v| {
        s.hosts.contains(v)
            || s.macs.contains(v)
            || s.groups.contains(v)
            || v.parse::<i64>()
                .is_ok_and(|n| s.nids.iter().any(|x| i64::from(*x) == n))
    })
}

/// What a legacy route failed with: upstream's texts.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("Invalid request format")]
    BadBody,
    #[error("Missing identifier")]
    NoIdentifier,
    #[error("No matching boot parameters found")]
    NoMatch,
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Boot(#[from] BootError),
}

impl From<skyport_resource::store::CollectionError> for LegacyError {
    fn from(e: skyport_resource::store::CollectionError) -> Self {
        LegacyError::Boot(BootError::Resource(e))
    }
}

/// `GET`: every configuration any of `values` names; `None` (JSON `null`) when none does.
pub async fn get(c: &Configs, values: &[String]) -> Result<Option<Vec<LegacyParams>>, LegacyError> {
    let mut all = c.list().await?;
    all.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    let out: Vec<LegacyParams> = all
        .iter()
        .filter(|r| values.is_empty() || names_any(&r.spec, values))
        .map(to_legacy)
        .collect();
    Ok((!out.is_empty()).then_some(out))
}

/// Upstream's name for a configuration created from a legacy object.
fn legacy_name(p: &LegacyParams) -> String {
    if let Some(h) = p.hosts.first() {
        format!("legacy-{}", h.replace('.', "-"))
    } else if let Some(m) = p.macs.first() {
        format!("legacy-{}", m.replace(':', "-"))
    } else if let Some(n) = p.nids.first() {
        format!("legacy-nid-{n}")
    } else {
        "legacy-config-0".into()
    }
}

fn spec_of(p: &LegacyParams) -> ConfigSpec {
    ConfigSpec {
        hosts: p.hosts.clone(),
        macs: p.macs.clone(),
        // Upstream drops NIDs that are not numbers.
        nids: p.nids.iter().filter_map(|n| n.parse().ok()).collect(),
        kernel: p.kernel.clone(),
        initrd: p.initrd.clone(),
        params: p.params.clone(),
        ..ConfigSpec::default()
    }
}

/// Reads a legacy body as upstream does: numeric `nids` (or any other type) are a decode error.
pub fn decode(body: &[u8]) -> Result<LegacyParams, LegacyError> {
    serde_json::from_slice(body).map_err(|_| LegacyError::BadBody)
}

/// `POST`: a new BootConfiguration from the object (no profile, priority 0).
pub async fn post(c: &Configs, p: &LegacyParams) -> Result<LegacyParams, LegacyError> {
    let meta = Meta {
        name: legacy_name(p),
        ..Meta::default()
    };
    let mut r = Resource::<BootConfiguration>::new(meta, spec_of(p))
        .map_err(|e| LegacyError::Failed(e.to_string()))?;
    BootConfiguration::validate(&mut r).map_err(|e| LegacyError::Failed(e.to_string()))?;
    let r = c.insert(r).await?;
    Ok(to_legacy(&r))
}

/// `PUT`: the first configuration (by uid) naming any of the object's hosts, MACs or NIDs
/// gets its selectors, kernel, initrd and params; its groups and priority stay, its profile
/// is cleared.
pub async fn put(c: &Configs, p: &LegacyParams) -> Result<LegacyParams, LegacyError> {
    let values: Vec<String> = p
        .hosts
        .iter()
        .chain(&p.macs)
        .chain(&p.nids)
        .cloned()
        .collect();
    let mut all = c.list().await?;
    all.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    let Some(target) = all.iter().find(|r| names_any(&r.spec, &values)) else {
        return Err(LegacyError::NoMatch);
    };
    let new = spec_of(p);
    let change = |mut r: Resource<BootConfiguration>| {
        r.spec = ConfigSpec {
            groups: r.spec.groups.clone(),
            priority: r.spec.priority,
            ..new.clone()
        };
        r.metadata.updated_at = skyport_resource::timestamp();
        BootConfiguration::validate(&mut r)?;
        Ok(r)
    };
    match c.update(&target.metadata.uid, &change).await? {
        Some(r) => Ok(to_legacy(&r)),
        None => Err(LegacyError::NoMatch),
    }
}

/// `DELETE ?host=&mac=&nid=&name=`: every configuration any value names.
pub async fn delete(c: &Configs, values: &[String]) -> Result<Vec<LegacyParams>, LegacyError> {
    if values.is_empty() {
        return Err(LegacyError::NoIdentifier);
    }
    let mut all = c.list().await?;
    all.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    let mut out = Vec::new();
    for r in all.iter().filter(|r| names_any(&r.spec, values)) {
        if let Some(gone) = c.delete(&r.metadata.uid).await? {
            out.push(to_legacy(&gone));
        }
    }
    if out.is_empty() {
        return Err(LegacyError::NoMatch);
    }
    Ok(out)
}
