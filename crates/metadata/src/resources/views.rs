//! The metadata-service resources as views of the cloud-init records: one record per cluster
//! (`CloudInitDefaults/defaults`), per group (`CloudInitGroups/<label>`) and per node
//! (`CloudInitInstances/<xname>`), read and written by both generations. What a resource has
//! that the cloud-init shape has no field for (labels, annotations, timestamps, status, and
//! the spec fields `description`, `osVersion`, `default_profile`) is kept in the record beside
//! the cloud-init fields ([`Extra`]) and never shown on `/cloud-init`.
//!
//! | Resource | uid | record | cloud-init fields |
//! |---|---|---|---|
//! | ClusterDefaults | `clusterdefaults-defaults` (there is one) | `defaults` | `base-url`, `cluster-name`, `short-name`, `nid-length`, `public-keys`, `cloud_provider`, `region`, `availability-zone` (`boot-subnet`, `wg-subnet` kept aside) |
//! | Group | `group-<label>` | the label (= `metadata.name`) | `description`; `template` is the group file (`file.content`, base64 decoded); `metaData` is `meta-data`, each value as a string |
//! | InstanceInfo | `instanceinfo-<xname>` | the node's xname (`metadata.name`, else `instance_id`) | `instance-id`, `local-hostname`, `hostname`, `cloud-init-base-url`, `public-keys` |

use std::marker::PhantomData;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skyport_resource::store::{Change, Collection, CollectionError, delete_record, replace_record};
use skyport_resource::{API_VERSION, Invalid, Kind, Meta, Resource};
use skyport_store::{Record, Store, StoreError, Table, Write};

use super::{ClusterDefaults, DefaultsSpec, Group, GroupSpec, InstanceInfo, InstanceSpec};

/// What a record keeps for its resource view beyond the cloud-init fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    pub metadata: Meta,
    #[serde(default)]
    pub status: Value,
    /// Spec fields the cloud-init shape lacks.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub spec: Map<String, Value>,
}

/// A kind kept as one cloud-init record per key.
pub trait View: Kind + Sized {
    const TABLE: Table;
    /// The record a new resource is stored as.
    fn key(r: &Resource<Self>) -> Result<String, Invalid>;
    /// Record `id`'s cloud-init body as the resource.
    fn to_resource(id: &str, body: &str) -> Result<Resource<Self>, serde_json::Error>;
    /// The body of record `id` holding `r`, keeping what `prev` holds beyond the view.
    fn to_body(
        r: &Resource<Self>,
        id: &str,
        prev: Option<&str>,
    ) -> Result<String, serde_json::Error>;
}

fn uid_of<K: Kind>(id: &str) -> String {
    format!("{}-{id}", K::UID_PREFIX)
}

fn id_of<K: Kind>(uid: &str) -> Option<&str> {
    uid.strip_prefix(K::UID_PREFIX)?
        .strip_prefix('-')
        .filter(|s| !s.is_empty())
}

/// A resource with the metadata and status `extra` keeps (or fresh ones named `id`).
fn resource<K: Kind>(id: &str, extra: Option<&Extra>, spec: K::Spec) -> Resource<K> {
    let mut metadata = extra.map(|e| e.metadata.clone()).unwrap_or_default();
    if metadata.name.is_empty() {
        metadata.name = id.to_string();
    }
    metadata.uid = uid_of::<K>(id);
    let status = extra
        .and_then(|e| serde_json::from_value(e.status.clone()).ok())
        .unwrap_or_default();
    Resource {
        api_version: API_VERSION.into(),
        kind: K::KIND.into(),
        metadata,
        spec,
        status,
    }
}

fn extra_of<K: Kind>(
    r: &Resource<K>,
    spec: Map<String, Value>,
) -> Result<Extra, serde_json::Error> {
    Ok(Extra {
        metadata: r.metadata.clone(),
        status: serde_json::to_value(&r.status)?,
        spec,
    })
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    m.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl View for ClusterDefaults {
    const TABLE: Table = crate::DEFAULTS;

    fn key(_: &Resource<Self>) -> Result<String, Invalid> {
        Ok("defaults".into())
    }

    fn to_resource(id: &str, body: &str) -> Result<Resource<Self>, serde_json::Error> {
        let d: crate::ClusterDefaults = serde_json::from_str(body)?;
        let extra = d.resource.clone();
        let spec = DefaultsSpec {
            description: extra
                .as_ref()
                .map(|e| text(&e.spec, "description"))
                .unwrap_or_default(),
            base_url: d.base_url,
            cloud_provider: d.cloud_provider,
            region: d.region,
            availability_zone: d.availability_zone,
            cluster_name: d.cluster_name,
            short_name: d.short_name,
            nid_length: i64::from(d.nid_length),
            public_keys: d.public_keys,
        };
        Ok(resource(id, extra.as_ref(), spec))
    }

    fn to_body(
        r: &Resource<Self>,
        _: &str,
        prev: Option<&str>,
    ) -> Result<String, serde_json::Error> {
        let prev: crate::ClusterDefaults = match prev {
            Some(p) => serde_json::from_str(p)?,
            None => crate::ClusterDefaults::default(),
        };
        let s = &r.spec;
        let mut spec = Map::new();
        if !s.description.is_empty() {
            spec.insert("description".into(), s.description.clone().into());
        }
        serde_json::to_string(&crate::ClusterDefaults {
            cloud_provider: s.cloud_provider.clone(),
            region: s.region.clone(),
            availability_zone: s.availability_zone.clone(),
            cluster_name: s.cluster_name.clone(),
            public_keys: s.public_keys.clone(),
            base_url: s.base_url.clone(),
            short_name: s.short_name.clone(),
            nid_length: u32::try_from(s.nid_length).unwrap_or(0),
            resource: Some(extra_of(r, spec)?),
            ..prev
        })
    }
}

impl View for Group {
    const TABLE: Table = crate::GROUPS;

    fn key(r: &Resource<Self>) -> Result<String, Invalid> {
        let n = &r.metadata.name;
        match crate::group_name(n) {
            Ok(k) if k == *n => Ok(k),
            _ => Err(Invalid::one(format!(
                "name {n:?} is not a group label (lowercase letters, digits and -:._), as the inventory's groups it names"
            ))),
        }
    }

    fn to_resource(id: &str, body: &str) -> Result<Resource<Self>, serde_json::Error> {
        let g: crate::GroupData = serde_json::from_str(body)?;
        let template = match &g.file {
            Some(f) if f.encoding == "base64" => base64::engine::general_purpose::STANDARD
                .decode(f.content.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default(),
            Some(f) => f.content.clone(),
            None => String::new(),
        };
        let meta_data = g
            .meta_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect();
        let extra = g.resource.clone();
        let spec = GroupSpec {
            description: g.description,
            template,
            meta_data,
            os_version: extra
                .as_ref()
                .map(|e| text(&e.spec, "osVersion"))
                .unwrap_or_default(),
        };
        Ok(resource(id, extra.as_ref(), spec))
    }

    fn to_body(
        r: &Resource<Self>,
        id: &str,
        prev: Option<&str>,
    ) -> Result<String, serde_json::Error> {
        let prev: Option<crate::GroupData> = prev.map(serde_json::from_str).transpose()?;
        let s = &r.spec;
        let mut spec = Map::new();
        if !s.os_version.is_empty() {
            spec.insert("osVersion".into(), s.os_version.clone().into());
        }
        let filename = prev
            .as_ref()
            .and_then(|p| p.file.as_ref())
            .map(|f| f.filename.clone())
            .unwrap_or_default();
        serde_json::to_string(&crate::GroupData {
            name: id.to_string(),
            description: s.description.clone(),
            meta_data: (!s.meta_data.is_empty()).then(|| {
                s.meta_data
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect()
            }),
            file: (!s.template.is_empty()).then(|| crate::CloudConfigFile {
                content: s.template.clone(),
                filename,
                encoding: String::new(),
            }),
            resource: Some(extra_of(r, spec)?),
        })
    }
}

impl View for InstanceInfo {
    const TABLE: Table = crate::INSTANCES;

    fn key(r: &Resource<Self>) -> Result<String, Invalid> {
        let node = |s: &str| {
            skyport_model::Xname::parse(s)
                .ok()
                .filter(|x| x.hms_type() == skyport_model::HmsType::Node)
                .map(|x| x.to_string())
        };
        node(&r.metadata.name)
            .or_else(|| node(&r.spec.instance_id))
            .ok_or_else(|| {
                Invalid::one(
                    "name (or instance_id) must be the node's xname: Skyport knows nodes by xname",
                )
            })
    }

    fn to_resource(id: &str, body: &str) -> Result<Resource<Self>, serde_json::Error> {
        let i: crate::InstanceInfo = serde_json::from_str(body)?;
        let extra = i.resource.clone();
        let get = |k: &str| extra.as_ref().map(|e| text(&e.spec, k)).unwrap_or_default();
        let spec = InstanceSpec {
            description: get("description"),
            instance_id: i.instance_id,
            local_hostname: i.local_hostname,
            hostname: i.hostname,
            cloud_init_base_url: i.cloud_init_base_url,
            public_keys: i.public_keys,
            default_profile: get("default_profile"),
        };
        Ok(resource(id, extra.as_ref(), spec))
    }

    fn to_body(
        r: &Resource<Self>,
        id: &str,
        prev: Option<&str>,
    ) -> Result<String, serde_json::Error> {
        let prev: crate::InstanceInfo = match prev {
            Some(p) => serde_json::from_str(p)?,
            None => crate::InstanceInfo::default(),
        };
        let s = &r.spec;
        let mut spec = Map::new();
        for (k, v) in [
            ("description", &s.description),
            ("default_profile", &s.default_profile),
        ] {
            if !v.is_empty() {
                spec.insert(k.into(), v.clone().into());
            }
        }
        serde_json::to_string(&crate::InstanceInfo {
            id: id.to_string(),
            instance_id: s.instance_id.clone(),
            local_hostname: s.local_hostname.clone(),
            hostname: s.hostname.clone(),
            cloud_init_base_url: s.cloud_init_base_url.clone(),
            public_keys: s.public_keys.clone(),
            resource: Some(extra_of(r, spec)?),
            ..prev
        })
    }
}

/// A kind's collection over its cloud-init table.
pub struct Records<K> {
    store: Arc<dyn Store>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Records<K> {
    fn clone(&self) -> Self {
        Records {
            store: self.store.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: View> Records<K> {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Records {
            store,
            kind: PhantomData,
        }
    }
}

fn corrupt<K: Kind>(id: &str) -> impl FnOnce(serde_json::Error) -> CollectionError + '_ {
    move |source| CollectionError::Corrupt {
        kind: K::KIND,
        uid: uid_of::<K>(id),
        source,
    }
}

#[async_trait::async_trait]
impl<K: View> Collection<K> for Records<K> {
    async fn list(&self) -> Result<Vec<Resource<K>>, CollectionError> {
        let mut out = Vec::new();
        for r in self.store.list_all(K::TABLE, None).await? {
            out.push(K::to_resource(&r.id, &r.body).map_err(corrupt::<K>(&r.id))?);
        }
        Ok(out)
    }

    async fn get(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError> {
        let Some(id) = id_of::<K>(uid) else {
            return Ok(None);
        };
        match self.store.get(K::TABLE, id).await? {
            Some(r) => Ok(Some(K::to_resource(id, &r.body).map_err(corrupt::<K>(id))?)),
            None => Ok(None),
        }
    }

    async fn insert(&self, r: Resource<K>) -> Result<Resource<K>, CollectionError> {
        let id = K::key(&r)?;
        let mut r = r;
        r.metadata.uid = uid_of::<K>(&id);
        let body = K::to_body(&r, &id, None).map_err(corrupt::<K>(&id))?;
        match self
            .store
            .write(vec![Write::Put {
                table: K::TABLE,
                record: Record::new(id.clone(), body),
                prev: None,
            }])
            .await
        {
            Ok(()) => Ok(r),
            // The write expected no record: one is there, under the same key.
            Err(StoreError::Conflict { .. }) => Err(CollectionError::Exists {
                kind: K::KIND,
                uid: uid_of::<K>(&id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn update(
        &self,
        uid: &str,
        change: Change<'_, K>,
    ) -> Result<Option<Resource<K>>, CollectionError> {
        let Some(id) = id_of::<K>(uid) else {
            return Ok(None);
        };
        replace_record(&*self.store, K::TABLE, id, |prev: &Record| {
            let cur = K::to_resource(id, &prev.body).map_err(corrupt::<K>(id))?;
            let next = change(cur)?;
            if K::key(&next)? != id {
                return Err(CollectionError::Refused(format!(
                    "validation failed: a {}'s name is its key ({id}) and cannot change; create another",
                    K::KIND
                )));
            }
            let body = K::to_body(&next, id, Some(&prev.body)).map_err(corrupt::<K>(id))?;
            Ok((next, Record::new(id.to_string(), body)))
        })
        .await
    }

    async fn delete(&self, uid: &str) -> Result<Option<Resource<K>>, CollectionError> {
        let Some(id) = id_of::<K>(uid) else {
            return Ok(None);
        };
        delete_record(&*self.store, K::TABLE, id, |prev: &Record| {
            K::to_resource(id, &prev.body).map_err(corrupt::<K>(id))
        })
        .await
    }
}
