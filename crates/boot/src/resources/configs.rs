//! BootConfigurations as one collection over both generations' boot data: the resources created
//! through `/boot-service` (table [`BOOT_CONFIGS`], one record per uid) and BSS's entries
//! (table [`BOOT_PARAMS`], one record per host, MAC, NID or tag), each BSS entry seen as a
//! BootConfiguration whose one selector is its key:
//!
//! | BSS entry | uid | spec selector | name (until renamed) |
//! |---|---|---|---|
//! | `hosts: [x1000c0s0b0n0]` | `bss-host-x1000c0s0b0n0` | `hosts: [x1000c0s0b0n0]` | `x1000c0s0b0n0` |
//! | `macs: [52:54:00:be:ef:01]` | `bss-mac-525400beef01` | `macs: [52:54:00:be:ef:01]` | `52:54:00:be:ef:01` |
//! | `nids: [12]` | `bss-nid-12` | `nids: [12]` | `nid-12` |
//! | `hosts: [Compute]` (a tag) | `bss-tag-Compute` | `hosts: [Compute]` | `Compute` |
//!
//! Editing a BSS entry here changes the entry (kernel, initrd, params; the name, labels,
//! priority and status the view adds are kept beside it, [`Extra`]); its selector is its key
//! and cannot change (a new BootConfiguration selects other nodes). Deleting it deletes the
//! entry. Nothing is copied between the tables, so there is no migration step and nothing to
//! drift.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skyport_model::Mac;
use skyport_resource::store::{Change, Collection, CollectionError, Stored, delete_record};
use skyport_resource::{API_VERSION, Kind, Meta, Resource};
use skyport_store::{Record, Store, StoreError, Write};

use super::{BOOT_CONFIGS, BootConfiguration, ConfigSpec, ConfigStatus};
use crate::BootService;
use crate::params::{self, BOOT_PARAMS, BootConfig, NodeKey};

/// What the boot-service view keeps of a BSS entry beyond BSS's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    pub metadata: Meta,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub status: ConfigStatus,
}

/// The uid BSS entry `key` has in the view.
pub fn bss_uid(key: &NodeKey) -> String {
    match key {
        NodeKey::Host(x) => format!("bss-host-{x}"),
        NodeKey::Tag(t) => format!("bss-tag-{t}"),
        NodeKey::Mac(m) => format!("bss-mac-{}", m.to_string().replace(':', "")),
        NodeKey::Nid(n) => format!("bss-nid-{n}"),
    }
}

/// The BSS entry a view uid names, if it names one.
pub fn bss_key(uid: &str) -> Option<NodeKey> {
    let rest = uid.strip_prefix("bss-")?;
    let (kind, v) = rest.split_once('-').filter(|(_, v)| !v.is_empty())?;
    let id = match kind {
        "host" => format!("host:{v}"),
        "tag" => format!("tag:{v}"),
        "mac" => format!("mac:{}", Mac::parse(v).ok()?),
        "nid" => format!("nid:{v}"),
        _ => return None,
    };
    let key = NodeKey::from_record_id(&id)?;
    (bss_uid(&key) == uid).then_some(key)
}

fn key_spec(key: &NodeKey) -> ConfigSpec {
    let mut s = ConfigSpec::default();
    match key {
        NodeKey::Host(x) | NodeKey::Tag(x) => s.hosts = vec![x.clone()],
        NodeKey::Mac(m) => s.macs = vec![m.to_string()],
        NodeKey::Nid(n) => s.nids = vec![i32::try_from(*n).unwrap_or(i32::MAX)],
    }
    s
}

fn key_name(key: &NodeKey) -> String {
    match key {
        NodeKey::Host(x) | NodeKey::Tag(x) => x.clone(),
        NodeKey::Mac(m) => m.to_string(),
        NodeKey::Nid(n) => format!("nid-{n}"),
    }
}

/// BSS entry `key` as a BootConfiguration.
pub fn from_bss(key: &NodeKey, c: &BootConfig) -> Resource<BootConfiguration> {
    let extra = c.resource.clone().unwrap_or_default();
    let mut metadata = extra.metadata;
    metadata.uid = bss_uid(key);
    if metadata.name.is_empty() {
        metadata.name = key_name(key);
    }
    let spec = ConfigSpec {
        profile: extra.profile,
        kernel: c.kernel.clone(),
        initrd: c.initrd.clone(),
        params: c.params.clone(),
        priority: extra.priority,
        ..key_spec(key)
    };
    Resource {
        api_version: API_VERSION.into(),
        kind: BootConfiguration::KIND.into(),
        metadata,
        spec,
        status: extra.status,
    }
}

/// Whether `spec` selects exactly what BSS entry `key` does.
fn same_selector(spec: &ConfigSpec, key: &NodeKey) -> bool {
    let want = key_spec(key);
    let macs = |l: &[String]| l.iter().map(|m| Mac::parse(m).ok()).collect::<Vec<_>>();
    spec.hosts == want.hosts
        && spec.nids == want.nids
        && spec.groups.is_empty()
        && macs(&spec.macs) == macs(&want.macs)
}

/// `r` as BSS entry `key`, keeping what the entry holds beyond the view (its cloud-init).
fn to_bss(
    r: &Resource<BootConfiguration>,
    key: &NodeKey,
    prev: &BootConfig,
) -> Result<BootConfig, CollectionError> {
    if !same_selector(&r.spec, key) {
        return Err(CollectionError::Refused(format!(
            "validation failed: {} is BSS's boot parameters entry for {}; its selector is that \
             key and cannot change (create a BootConfiguration to select other nodes)",
            r.metadata.uid,
            key_name(key)
        )));
    }
    Ok(BootConfig {
        kernel: r.spec.kernel.clone(),
        initrd: r.spec.initrd.clone(),
        params: r.spec.params.clone(),
        cloud_init: prev.cloud_init.clone(),
        resource: Some(Extra {
            metadata: r.metadata.clone(),
            profile: r.spec.profile.clone(),
            priority: r.spec.priority,
            status: r.status.clone(),
        }),
    })
}

/// Every BootConfiguration of both tables (unordered).
pub async fn all(store: &dyn Store) -> Result<Vec<Resource<BootConfiguration>>, CollectionError> {
    let mut out: Vec<Resource<BootConfiguration>> = store
        .list_all(BOOT_CONFIGS, None)
        .await?
        .iter()
        .map(skyport_resource::store::decode)
        .collect::<Result<_, _>>()?;
    for r in store.list_all(BOOT_PARAMS, None).await? {
        let (key, c) = decode_bss(&r)?;
        out.push(from_bss(&key, &c));
    }
    Ok(out)
}

fn decode_bss(r: &Record) -> Result<(NodeKey, BootConfig), CollectionError> {
    params::decode(r).map_err(|e| match e {
        crate::BootError::Corrupt { id, source } => CollectionError::Corrupt {
            kind: BootConfiguration::KIND,
            uid: id,
            source,
        },
        other => CollectionError::Refused(other.to_string()),
    })
}

/// The BootConfigurations collection of a boot service.
#[derive(Clone)]
pub struct Configs {
    svc: BootService,
    created: Stored<BootConfiguration>,
}

impl Configs {
    pub fn new(svc: BootService) -> Self {
        let created = Stored::new(svc.store.clone(), BOOT_CONFIGS);
        Configs { svc, created }
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.svc.store
    }

    /// What BSS checks on a write that the view's validation does not: that an `image:`
    /// reference names a registered image, and an `s3://` URL is well-formed.
    async fn check_references(&self, spec: &ConfigSpec) -> Result<(), CollectionError> {
        let c = BootConfig {
            kernel: spec.kernel.clone(),
            initrd: spec.initrd.clone(),
            params: spec.params.clone(),
            ..BootConfig::default()
        };
        match self.svc.check_config(&c).await {
            Ok(()) => Ok(()),
            Err(crate::BootError::Store(e)) => Err(e.into()),
            Err(e) => Err(CollectionError::Refused(format!("validation failed: {e}"))),
        }
    }
}

#[async_trait::async_trait]
impl Collection<BootConfiguration> for Configs {
    async fn list(&self) -> Result<Vec<Resource<BootConfiguration>>, CollectionError> {
        all(&**self.store()).await
    }

    async fn get(&self, uid: &str) -> Result<Option<Resource<BootConfiguration>>, CollectionError> {
        match bss_key(uid) {
            Some(key) => match self.store().get(BOOT_PARAMS, &key.record_id()).await? {
                Some(r) => {
                    let (key, c) = decode_bss(&r)?;
                    Ok(Some(from_bss(&key, &c)))
                }
                None => Ok(None),
            },
            None => self.created.get(uid).await,
        }
    }

    async fn insert(
        &self,
        r: Resource<BootConfiguration>,
    ) -> Result<Resource<BootConfiguration>, CollectionError> {
        self.check_references(&r.spec).await?;
        self.created.insert(r).await
    }

    async fn update(
        &self,
        uid: &str,
        change: Change<'_, BootConfiguration>,
    ) -> Result<Option<Resource<BootConfiguration>>, CollectionError> {
        let (table, key) = match bss_key(uid) {
            Some(k) => (BOOT_PARAMS, Some(k)),
            None => (BOOT_CONFIGS, None),
        };
        let id = key
            .as_ref()
            .map_or_else(|| uid.to_string(), NodeKey::record_id);
        // Not `replace_record`: the new spec's image references are checked against the
        // registry (a read) between computing it and writing it.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(prev) = self.store().get(table, &id).await? else {
                return Ok(None);
            };
            let (next, record) = match &key {
                Some(k) => {
                    let (k2, c) = decode_bss(&prev)?;
                    let next = change(from_bss(&k2, &c))?;
                    self.check_references(&next.spec).await?;
                    let stored = to_bss(&next, k, &c)?;
                    let record = params::record(k, &stored)
                        .map_err(|e| CollectionError::Refused(e.to_string()))?;
                    (next, record)
                }
                None => {
                    let next = change(skyport_resource::store::decode(&prev)?)?;
                    self.check_references(&next.spec).await?;
                    let record = skyport_resource::store::encode(&next)?;
                    (next, record)
                }
            };
            match self
                .store()
                .write(vec![Write::Put {
                    table,
                    record,
                    prev: Some(prev),
                }])
                .await
            {
                Ok(()) => return Ok(Some(next)),
                Err(StoreError::Conflict { .. })
                    if attempt < skyport_resource::store::MAX_ATTEMPTS => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn delete(
        &self,
        uid: &str,
    ) -> Result<Option<Resource<BootConfiguration>>, CollectionError> {
        let Some(key) = bss_key(uid) else {
            return self.created.delete(uid).await;
        };
        delete_record(
            &**self.store(),
            BOOT_PARAMS,
            &key.record_id(),
            |prev: &Record| {
                let (k, c) = decode_bss(prev)?;
                Ok(from_bss(&k, &c))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bss_uids_round_trip_and_nothing_else_reads_as_one() {
        for key in [
            NodeKey::Host("x1000c0s0b0n0".into()),
            NodeKey::Tag("Default".into()),
            NodeKey::Tag("Unknown-x86_64".into()),
            NodeKey::Mac(Mac::parse("52:54:00:be:ef:01").unwrap()),
            NodeKey::Nid(12),
        ] {
            assert_eq!(bss_key(&bss_uid(&key)), Some(key.clone()), "{key:?}");
        }
        assert_eq!(
            bss_uid(&NodeKey::Mac(Mac::parse("52:54:00:be:ef:01").unwrap())),
            "bss-mac-525400beef01"
        );
        for not in [
            "bootconfiguration-1a2b3c4d",
            "bss-mac-52:54:00:be:ef:01",
            "bss-nid-x",
            "bss-host-",
        ] {
            assert_eq!(bss_key(not), None, "{not}");
        }
    }
}
