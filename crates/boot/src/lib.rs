//! The boot service: OpenCHAMI BSS's `/boot/v1` over any [`skyport_store::Store`].
//!
//! Boot parameters are stored per host (Node xname), MAC or NID. A boot script request is
//! resolved through the inventory in the same store (MAC → EthernetInterface → component, for
//! the node's xname, NID and enabled state), then through the boot parameters (by MAC, then by
//! xname, then by NID), and rendered by `skyport-ipxe`. A node that cannot boot yet gets BSS's
//! "unknown" script (sleep, then ask again); a storage failure gets a script that prints the
//! reason and retries: a booting node never sees an HTTP error page. A node's fetch is recorded
//! in the endpoint history through a [`history::History`], which the local server makes a
//! background writer so that no fetch waits for the store's writer.

pub mod error;
pub mod flight;
pub mod history;
pub mod params;
pub mod resources;
pub mod routes;

use std::collections::BTreeMap;
use std::sync::Arc;

use params::{BOOT_PARAMS, BootConfig, BootParams, NodeKey};
use serde::{Deserialize, Serialize};
use skyport_http::ApiError;
use skyport_inventory::Inventory;
use skyport_inventory::ethernet::InterfaceFilter;
use skyport_inventory::filters::{ComponentEndpointFilter, ComponentFilter};
use skyport_ipxe::{Boot, ChainKey, Identity, Settings};
use skyport_model::{HmsType, Mac, Xname};
use skyport_store::{Record, Store, StoreError, Table, Write};
use skyport_wire::Component;

pub use error::BootError;
pub use routes::{access, router};

pub const ENDPOINT_HISTORY: Table = Table("EndpointHistory");

#[derive(Clone)]
pub struct BootService {
    store: Arc<dyn Store>,
    inv: Inventory,
    settings: Arc<Settings>,
    /// Resolves `image:<id>` kernel/initrd references to short-lived download URLs.
    images: Option<skyport_images::ImageService>,
    history: history::History,
}

/// How a boot script was asked for.
#[derive(Debug, Clone, Default)]
pub struct ScriptRequest {
    pub mac: Option<String>,
    pub name: Option<String>,
    pub nid: Option<String>,
    pub retry: u32,
    pub arch: Option<String>,
    pub ts: Option<i64>,
}

/// What the bootscript route answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptOutcome {
    /// A node with a kernel to boot.
    Known {
        script: String,
        xname: Option<String>,
        boot: Boot,
        params: String,
    },
    /// Not bootable yet: wait and ask again.
    Unknown(String),
    /// Something failed: the script says what and retries.
    Failed(String),
}

impl ScriptOutcome {
    pub fn script(&self) -> &str {
        match self {
            ScriptOutcome::Known { script, .. }
            | ScriptOutcome::Unknown(script)
            | ScriptOutcome::Failed(script) => script,
        }
    }
}

/// What `GET /hosts` names: values as sent, comma-separated lists already split.
#[derive(Debug, Clone, Default)]
pub struct HostQuery {
    pub names: Vec<String>,
    pub macs: Vec<String>,
    pub nids: Vec<String>,
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` reads it (BSS parses `nid=` so): an
/// optional sign, then decimal, `0x` hex, `0o` or leading-`0` octal, or `0b` binary.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    // Go allows `_` between digits only with a base prefix.
    let body = if radix == 10 {
        body
    } else {
        body.replace('_', "")
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&body, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// What [`BootService::lookup`] found for a boot script request.
struct Found {
    comp: Option<Component>,
    config: Option<BootConfig>,
    /// The node's MACs, where they were needed.
    macs: Vec<Mac>,
}

/// `GET /endpoint-history` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAccess {
    pub name: String,
    pub endpoint: String,
    pub last_epoch: i64,
}

fn now_epoch() -> i64 {
    skyport_model::now()
}

impl EndpointAccess {
    /// Its record id: `<xname>#<endpoint>`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.name, self.endpoint)
    }

    /// The write that stores it (an upsert: the newest fetch wins).
    pub fn upsert(&self) -> Result<Write, BootError> {
        let body = serde_json::to_string(self).map_err(|source| BootError::EncodeHistory {
            id: self.id(),
            source,
        })?;
        Ok(Write::Upsert {
            table: ENDPOINT_HISTORY,
            record: Record::new(self.id(), body),
        })
    }
}

/// The stored endpoint history entries among `ids` (`<xname>#<endpoint>`), or every one with
/// `None`; unreadable ones are skipped (a newer report replaces them).
pub async fn stored_history(
    store: &dyn Store,
    ids: Option<&[String]>,
) -> Result<Vec<EndpointAccess>, skyport_store::StoreError> {
    let recs = match ids {
        Some(ids) => store.get_many(ENDPOINT_HISTORY, ids).await?,
        None => store.list_all(ENDPOINT_HISTORY, None).await?,
    };
    Ok(recs
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect())
}

impl BootService {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        BootService {
            inv: Inventory::new(store.clone()),
            history: history::History::inline(store.clone()),
            store,
            settings: Arc::new(settings),
            images: None,
        }
    }

    /// Records fetches through `history` instead of writing each one before answering.
    pub fn with_history(mut self, history: history::History) -> Self {
        self.history = history;
        self
    }

    /// Lets boot parameters reference registered images (`image:<id>`).
    pub fn with_images(mut self, images: skyport_images::ImageService) -> Self {
        self.images = Some(images);
        self
    }

    /// A configuration as given is well-formed ([`params::check_config`]) and every `image:<id>`
    /// it names is registered (400 otherwise).
    async fn check_config(&self, c: &BootConfig) -> Result<(), BootError> {
        params::check_config(c)?;
        for (field, v) in [("kernel", &c.kernel), ("initrd", &c.initrd)] {
            if v.starts_with("s3://") {
                skyport_images::blobs::parse_s3_url(v).map_err(|_| BootError::BadS3Url {
                    field,
                    value: v.clone(),
                })?;
                continue;
            }
            let Some(id) = v.strip_prefix("image:") else {
                continue;
            };
            let Some(images) = &self.images else {
                return Err(BootError::NoRegistry { field });
            };
            match images.get(id).await {
                Ok(_) => {}
                Err(skyport_images::ImageError::NoSuchImage { .. }) => {
                    return Err(BootError::NoSuchImage {
                        field,
                        id: id.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn resolve_image(&self, v: &str) -> Result<String, BootError> {
        // `image:<id>` and, as BSS does, `s3://bucket/key` become short-lived download URLs.
        let reference = v.starts_with("image:") || v.starts_with("s3://");
        match (&self.images, reference) {
            (Some(images), true) => Ok(images.resolve(v).await?),
            (None, true) => Err(BootError::Unresolvable {
                value: v.to_string(),
            }),
            (_, false) => Ok(v.to_string()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    // ---- boot parameters ------------------------------------------------------------------

    /// The nodes a `POST`, `PUT` or `PATCH` names: at least one (400 as BSS answers otherwise).
    fn named_nodes(p: &BootParams) -> Result<Vec<NodeKey>, BootError> {
        let keys = params::node_keys(p)?;
        if keys.is_empty() {
            return Err(BootError::NoNodes);
        }
        Ok(keys)
    }

    fn config_of(p: &BootParams) -> BootConfig {
        BootConfig {
            kernel: p.kernel.trim().to_string(),
            initrd: p.initrd.trim().to_string(),
            params: p.params.trim().to_string(),
            cloud_init: params::given_cloud_init(p.cloud_init.as_ref()),
            resource: None,
        }
    }

    /// `POST`: creates entries; if any named node already has one, nothing is written (400 with
    /// BSS's text).
    pub async fn create(&self, p: &BootParams) -> Result<(), BootError> {
        let keys = Self::named_nodes(p)?;
        let c = Self::config_of(p);
        self.check_config(&c).await?;
        let ids: Vec<String> = keys.iter().map(NodeKey::record_id).collect();
        let existing = self.store.get_many(BOOT_PARAMS, &ids).await?;
        if !existing.is_empty() {
            return Err(BootError::Duplicate {
                ids: existing.iter().map(|r| r.id.clone()).collect(),
            });
        }
        let ops = params::put_ops(&keys, &BTreeMap::new(), |_| Ok(c.clone()))?;
        self.store.write(ops).await.map_err(BootError::on_create)
    }

    /// `PUT`: creates or replaces entries (kernel, initrd and params all replaced).
    pub async fn set(&self, p: &BootParams) -> Result<(), BootError> {
        let keys = Self::named_nodes(p)?;
        let c = Self::config_of(p);
        if c.kernel.is_empty() && c.initrd.is_empty() && c.params.is_empty() {
            return Err(BootError::NothingToSet);
        }
        self.check_config(&c).await?;
        self.rmw(&keys, |_| Ok(c.clone()), false).await
    }

    /// `PATCH`: updates existing entries; every named node must have one (404 otherwise), and
    /// only the fields given change.
    pub async fn update(&self, p: &BootParams) -> Result<(), BootError> {
        let keys = Self::named_nodes(p)?;
        let patch = Self::config_of(p);
        if patch.kernel.is_empty()
            && patch.initrd.is_empty()
            && patch.params.is_empty()
            && patch.cloud_init.is_none()
        {
            return Err(BootError::NothingToUpdate);
        }
        self.check_config(&patch).await?;
        self.rmw(
            &keys,
            |cur| {
                let mut c = cur.unwrap_or_default();
                if !patch.kernel.is_empty() {
                    c.kernel = patch.kernel.clone();
                }
                if !patch.initrd.is_empty() {
                    c.initrd = patch.initrd.clone();
                }
                if !patch.params.is_empty() {
                    c.params = patch.params.clone();
                }
                if patch.cloud_init.is_some() {
                    c.cloud_init = patch.cloud_init.clone();
                }
                Ok(c)
            },
            true,
        )
        .await
    }

    async fn rmw(
        &self,
        keys: &[NodeKey],
        f: impl Fn(Option<BootConfig>) -> Result<BootConfig, BootError>,
        must_exist: bool,
    ) -> Result<(), BootError> {
        let ids: Vec<String> = keys.iter().map(NodeKey::record_id).collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let existing = params::by_id(self.store.get_many(BOOT_PARAMS, &ids).await?);
            if must_exist {
                let missing: Vec<&str> = ids
                    .iter()
                    .filter(|i| !existing.contains_key(*i))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    return Err(BootError::Missing(
                        missing.into_iter().map(String::from).collect(),
                    ));
                }
            }
            let ops = params::put_ops(keys, &existing, &f)?;
            match self.store.write(ops).await {
                Ok(()) => return Ok(()),
                // A lost race: recompute from what the winner wrote, a few times.
                Err(StoreError::Conflict { .. }) if attempt < 8 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `DELETE`: by hosts/macs/nids, or, with none given, every entry whose kernel, initrd and
    /// params equal the body's.
    pub async fn delete(&self, p: &BootParams) -> Result<usize, BootError> {
        let keys = params::node_keys(p)?;
        let victims: Vec<Record> = if !keys.is_empty() {
            let ids: Vec<String> = keys.iter().map(NodeKey::record_id).collect();
            self.store.get_many(BOOT_PARAMS, &ids).await?
        } else {
            let want = Self::config_of(p);
            if want.kernel.is_empty() && want.initrd.is_empty() && want.params.is_empty() {
                // BSS deletes nothing and says so with a 200.
                return Ok(0);
            }
            let candidates = if want.kernel.is_empty() {
                self.store.list_all(BOOT_PARAMS, None).await?
            } else {
                self.store
                    .list_all(
                        BOOT_PARAMS,
                        Some(&skyport_store::IndexKey::new("kernel", want.kernel.clone())),
                    )
                    .await?
            };
            let mut out = Vec::new();
            for r in candidates {
                let (_, c) = params::decode(&r)?;
                if c.kernel == want.kernel && c.initrd == want.initrd && c.params == want.params {
                    out.push(r);
                }
            }
            out
        };
        if victims.is_empty() {
            return Ok(0);
        }
        Ok(skyport_store::delete_in_batches(&*self.store, BOOT_PARAMS, &victims, 100).await?)
    }

    /// `GET`: by the query's comma-separated `mac`/`name`/`nid` (or the body's lists); all
    /// entries when nothing is named.
    pub async fn get(&self, p: &BootParams) -> Result<Vec<BootParams>, BootError> {
        // As BSS, a value that names no node (a malformed MAC or xname) simply matches nothing.
        let named = !(p.hosts.is_empty() && p.macs.is_empty() && p.nids.is_empty());
        let not_found = || {
            let kinds = [
                (!p.hosts.is_empty(), "Hosts"),
                (!p.macs.is_empty(), "MACs"),
                (!p.nids.is_empty(), "NIDs"),
            ];
            BootError::NotFound {
                kinds: kinds.iter().filter(|(b, _)| *b).map(|(_, k)| *k).collect(),
            }
        };
        let keys = params::node_keys_matching(p);
        if named && keys.is_empty() {
            return Err(not_found());
        }
        let recs = if keys.is_empty() {
            self.store.list_all(BOOT_PARAMS, None).await?
        } else {
            let ids: Vec<String> = keys.iter().map(NodeKey::record_id).collect();
            let recs = self.store.get_many(BOOT_PARAMS, &ids).await?;
            if recs.is_empty() {
                return Err(not_found());
            }
            recs
        };
        let entries = recs
            .iter()
            .map(params::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(params::to_response(entries))
    }

    // ---- boot scripts ---------------------------------------------------------------------

    /// Resolves and renders the boot script for a request, and records the node's fetch in the
    /// endpoint history (through this service's [`history::History`]). Never fails: problems
    /// become a retry script. `Err` only for a request that names no node at all (400, as BSS).
    pub async fn bootscript(&self, req: &ScriptRequest) -> Result<ScriptOutcome, BootError> {
        let outcome = self.render(req).await?;
        if let ScriptOutcome::Known { xname: Some(x), .. } = &outcome {
            self.record_access(x, "bootscript").await;
        }
        Ok(outcome)
    }

    /// [`Self::bootscript`] without recording anything: what the node would get (the edge
    /// agent pre-renders its site's scripts with it).
    pub async fn render(&self, req: &ScriptRequest) -> Result<ScriptOutcome, BootError> {
        let key = self.chain_key(req)?;
        match self.resolve(req, &key).await {
            Ok(o) => Ok(o),
            Err(e) => {
                tracing::warn!(error = %e, key = ?key, "bootscript: serving a retry script");
                Ok(ScriptOutcome::Failed(skyport_ipxe::error_script(
                    &e.to_string(),
                    Some(&key),
                    req.retry,
                    &self.settings,
                )))
            }
        }
    }

    fn chain_key(&self, req: &ScriptRequest) -> Result<ChainKey, BootError> {
        if let Some(m) = req.mac.as_deref().filter(|s| !s.is_empty()) {
            return Mac::parse(m)
                .map(ChainKey::Mac)
                .map_err(BootError::ScriptMac);
        }
        if let Some(n) = req.name.as_deref().filter(|s| !s.is_empty()) {
            return Ok(ChainKey::Name(n.trim().to_string()));
        }
        if let Some(n) = req.nid.as_deref().filter(|s| !s.is_empty()) {
            return n
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(ChainKey::Nid)
                .ok_or_else(|| BootError::ScriptNid(n.to_string()));
        }
        Err(BootError::NoScriptKey)
    }

    /// The node a request refers to and its boot configuration, in as few reads as the key
    /// allows: by MAC, one batch for the interface and the MAC's parameters, then one for the
    /// component and the host's parameters; by name, one batch; NID parameters only if nothing
    /// more specific exists.
    async fn lookup(&self, key: &ChainKey, named: Option<&Xname>) -> Result<Found, BootError> {
        use skyport_inventory::reads::{Read, component_key, decode_read, interface_key};
        let mut params: BTreeMap<String, BootConfig> = BTreeMap::new();
        let mut comp: Option<Component> = None;
        // Sorts fetched records into parameters and component; returns an interface's component.
        fn absorb(
            recs: Vec<(Table, Record)>,
            params: &mut BTreeMap<String, BootConfig>,
            comp: &mut Option<Component>,
        ) -> Result<Option<String>, BootError> {
            let mut component_of_iface = None;
            for (t, r) in recs {
                if t == BOOT_PARAMS {
                    let (_, c) = params::decode(&r)?;
                    params.insert(r.id.clone(), c);
                    continue;
                }
                match decode_read(t, &r)? {
                    Some(Read::Component(c)) => *comp = Some(*c),
                    Some(Read::InterfaceOf(x)) => {
                        component_of_iface = Some(x).filter(|c| !c.is_empty());
                    }
                    None => {}
                }
            }
            Ok(component_of_iface)
        }
        let host_batch = |x: &str| {
            vec![
                component_key(x),
                (BOOT_PARAMS, NodeKey::Host(x.to_string()).record_id()),
            ]
        };
        match key {
            ChainKey::Mac(m) => {
                let first = vec![
                    interface_key(m),
                    (BOOT_PARAMS, NodeKey::Mac(*m).record_id()),
                ];
                if let Some(x) = absorb(self.store.get_keys(&first).await?, &mut params, &mut comp)?
                {
                    absorb(
                        self.store.get_keys(&host_batch(&x)).await?,
                        &mut params,
                        &mut comp,
                    )?;
                }
            }
            ChainKey::Name(_) => {
                if let Some(x) = named {
                    absorb(
                        self.store.get_keys(&host_batch(x.as_str())).await?,
                        &mut params,
                        &mut comp,
                    )?;
                }
            }
            ChainKey::Nid(n) => {
                match self.inv.component_by_nid(&n.to_string()).await {
                    Ok(c) => comp = Some(c),
                    Err(ApiError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                let mut keys = vec![(BOOT_PARAMS, NodeKey::Nid(*n).record_id())];
                if let Some(c) = &comp {
                    keys.push((BOOT_PARAMS, NodeKey::Host(c.id.clone()).record_id()));
                }
                absorb(self.store.get_keys(&keys).await?, &mut params, &mut comp)?;
            }
        }
        // BSS's order (hms-bss `lookup`): the node's own entry, then what the request named
        // (its MAC or NID).
        let mut order = Vec::new();
        if let Some(c) = &comp {
            order.push(NodeKey::Host(c.id.clone()).record_id());
        } else if let Some(x) = named {
            order.push(NodeKey::Host(x.to_string()).record_id());
        }
        match key {
            ChainKey::Mac(m) => order.push(NodeKey::Mac(*m).record_id()),
            ChainKey::Nid(n) => order.push(NodeKey::Nid(*n).record_id()),
            ChainKey::Name(_) => {}
        }
        let config = order.iter().find_map(|id| params.remove(id));
        let Some(c) = comp.clone() else {
            // A machine the inventory does not know gets nothing more (as BSS: it is unknown).
            return Ok(Found {
                comp,
                config,
                macs: Vec::new(),
            });
        };
        if config.is_some() && matches!(key, ChainKey::Mac(_)) {
            return Ok(Found {
                comp,
                config,
                macs: Vec::new(),
            });
        }
        // The node's MACs: a node asking by name or NID is told to ask again by its first MAC
        // (BSS's chain line), and parameters given by any of them are the node's.
        let node = Xname::parse(&c.id).map_err(|_| BootError::BadId(c.id.clone()))?;
        let macs: Vec<Mac> = self
            .inv
            .list_interfaces(&InterfaceFilter::by_component(&node))
            .await?
            .iter()
            .filter_map(|e| Mac::parse(&e.mac_address).ok())
            .collect();
        if config.is_some() {
            return Ok(Found { comp, config, macs });
        }
        // Then what BSS would have filed under the node's xname: parameters given by any of
        // its MACs or its NID; then its role's; then `Default`'s.
        // The rule of `resources::script`: the node's own entries (its other MACs, its NID),
        // then the best-scoring BootConfiguration, then its role's and `Default`'s entries.
        let mut own: Vec<String> = macs.iter().map(|m| NodeKey::Mac(*m).record_id()).collect();
        if let Some(n) = c.nid {
            own.push(NodeKey::Nid(n).record_id());
        }
        let mut fallback = Vec::new();
        if let Some(role) = params::tag(&c.role) {
            fallback.push(NodeKey::Tag(role).record_id());
        }
        fallback.push(NodeKey::Tag(params::DEFAULT_TAG.into()).record_id());
        let mut seen: std::collections::BTreeSet<String> = order.iter().cloned().collect();
        own.retain(|id| seen.insert(id.clone()));
        fallback.retain(|id| seen.insert(id.clone()));
        let keys: Vec<(Table, String)> = own
            .iter()
            .chain(&fallback)
            .map(|id| (BOOT_PARAMS, id.clone()))
            .collect();
        absorb(self.store.get_keys(&keys).await?, &mut params, &mut comp)?;
        if let Some(config) = own.iter().find_map(|id| params.remove(id)) {
            return Ok(Found {
                comp,
                config: Some(config),
                macs,
            });
        }
        let asked = match key {
            ChainKey::Mac(m) => Some(*m),
            _ => None,
        };
        // The node's groups and Node resource are read only when there is a BootConfiguration
        // to score: a BSS-only installation pays one read here.
        let created = self.created_configs().await?;
        if !created.is_empty() {
            let node = self.facts_of(&c, asked, &macs).await?;
            if let Some(chosen) = Self::scored(&created, &node.facts) {
                return Ok(Found {
                    comp,
                    config: Some(chosen.config),
                    macs,
                });
            }
        }
        let config = fallback.iter().find_map(|id| params.remove(id));
        Ok(Found { comp, config, macs })
    }

    async fn resolve(
        &self,
        req: &ScriptRequest,
        key: &ChainKey,
    ) -> Result<ScriptOutcome, BootError> {
        // A name is parsed once: the node it names, if it is an xname.
        let named = match key {
            ChainKey::Name(n) => Xname::parse(n).ok(),
            _ => None,
        };
        let Found { comp, config, macs } = self.lookup(key, named.as_ref()).await?;
        // BSS tells a node that asked by name or NID to ask again by its first MAC.
        let chain = match (key, macs.first()) {
            (ChainKey::Name(_) | ChainKey::Nid(_), Some(m)) => ChainKey::Mac(*m),
            _ => key.clone(),
        };
        let asked = key;
        let key = &chain;
        let xname = comp
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| named.map(|x| x.to_string()));
        let nid = comp.as_ref().and_then(|c| c.nid).or(match asked {
            ChainKey::Nid(n) => Some(*n),
            _ => None,
        });
        let disabled = comp
            .as_ref()
            .is_some_and(|c| c.enabled == Some(false) || c.state == "Empty");
        let bootable = config
            .as_ref()
            .filter(|c| !c.kernel.is_empty() && !disabled);
        let Some(c) = bootable else {
            let ts = req.ts.unwrap_or_else(now_epoch);
            // A node that told its architecture boots that architecture's `Unknown-<arch>`
            // parameters if there are some (BSS: typically a discovery image).
            if let Some(tag) = req
                .arch
                .as_deref()
                .filter(|a| !a.is_empty())
                .and_then(|a| params::tag(&format!("{}{a}", params::UNKNOWN_PREFIX)))
                && let Some(r) = self
                    .store
                    .get(BOOT_PARAMS, &NodeKey::Tag(tag).record_id())
                    .await?
                && let (_, u) = params::decode(&r)?
                && !u.kernel.is_empty()
            {
                let boot = self.boot_of(&u).await?;
                let script = skyport_ipxe::unknown_boot(&boot, Some(key), ts, &self.settings)
                    .map_err(BootError::Render)?;
                let params =
                    skyport_ipxe::build_params(&boot, &Identity::default(), &self.settings);
                return Ok(ScriptOutcome::Known {
                    script,
                    xname: None,
                    boot,
                    params,
                });
            }
            return Ok(ScriptOutcome::Unknown(skyport_ipxe::unknown(
                Some(key),
                ts,
                &self.settings,
            )));
        };
        let boot = self.boot_of(c).await?;
        let id = Identity {
            xname: xname.clone(),
            nid,
            // `BOOTIF=` only for a node that asked by MAC (BSS: `sp.mac` is the request's).
            boot_mac: match asked {
                ChainKey::Mac(m) => Some(*m),
                _ => None,
            },
        };
        let script = skyport_ipxe::known(&boot, &id, key, req.retry, &self.settings)
            .map_err(BootError::Render)?;
        let params = skyport_ipxe::build_params(&boot, &id, &self.settings);
        Ok(ScriptOutcome::Known {
            script,
            xname,
            boot,
            params,
        })
    }

    /// What a stored configuration boots, its image references made download URLs.
    async fn boot_of(&self, c: &BootConfig) -> Result<Boot, BootError> {
        let initrd = if c.initrd.is_empty() {
            None
        } else {
            Some(self.resolve_image(&c.initrd).await?)
        };
        Ok(Boot {
            kernel: self.resolve_image(&c.kernel).await?,
            initrd,
            params: c.params.clone(),
        })
    }

    /// Records that `name` fetched `endpoint` now; best effort (a failure is logged or counted,
    /// the node still gets its script).
    pub async fn record_access(&self, name: &str, endpoint: &str) {
        self.history.record(name, endpoint).await;
    }

    pub async fn endpoint_history(
        &self,
        name: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<Vec<EndpointAccess>, BootError> {
        let recs = match name {
            Some(n) => {
                let ids = [format!("{n}#bootscript"), format!("{n}#user-data")];
                self.store.get_many(ENDPOINT_HISTORY, &ids).await?
            }
            None => self.store.list_all(ENDPOINT_HISTORY, None).await?,
        };
        let mut out = Vec::new();
        for r in recs {
            let e: EndpointAccess = serde_json::from_str(&r.body)
                .map_err(|source| BootError::CorruptHistory { id: r.id, source })?;
            if endpoint.is_none_or(|want| want == e.endpoint) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// `GET /hosts`: the inventory's nodes as BSS shows them (component, FQDN, MACs,
    /// EndpointEnabled).
    pub async fn hosts(&self) -> Result<Vec<serde_json::Value>, BootError> {
        let comps = self
            .inv
            .list_components(&ComponentFilter::of_type(HmsType::Node))
            .await?;
        let ifaces = self
            .inv
            .list_interfaces(&InterfaceFilter::of_type(HmsType::Node))
            .await?;
        let ces = self
            .inv
            .list_component_endpoints(&ComponentEndpointFilter::of_type(HmsType::Node))
            .await?;
        // A node's MACs as BSS gathers them (`sm.go` getStateFromHSM): its component
        // endpoint's MACAddr, the NICs its Redfish system lists, then its Ethernet interfaces;
        // each once.
        let mut macs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut add = |id: &str, mac: &str| {
            let l = macs.entry(id.to_string()).or_default();
            if !mac.is_empty() && !l.iter().any(|m| m.eq_ignore_ascii_case(mac)) {
                l.push(mac.to_string());
            }
        };
        let mut endpoints: BTreeMap<String, (bool, String)> = BTreeMap::new();
        for ce in &ces {
            add(&ce.id, &ce.mac_addr);
            let nics = ce
                .redfish_system_info
                .as_ref()
                .and_then(|i| i.get("EthernetNICInfo"))
                .and_then(serde_json::Value::as_array);
            for nic in nics.into_iter().flatten() {
                if let Some(m) = nic.get("MACAddress").and_then(serde_json::Value::as_str)
                    && Mac::parse(m).is_ok()
                {
                    add(&ce.id, m);
                }
            }
            endpoints.insert(ce.id.clone(), (ce.enabled, ce.fqdn.clone()));
        }
        for e in &ifaces {
            add(&e.component_id, &e.mac_address);
        }
        Ok(comps
            .into_iter()
            .map(|c| {
                let mut v = serde_json::to_value(&c).unwrap_or_default();
                let (enabled, fqdn) = endpoints.get(&c.id).cloned().unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("FQDN".into(), fqdn.into());
                    // A node without MACs has Go's nil slice: `null`.
                    o.insert(
                        "MAC".into(),
                        macs.get(&c.id)
                            .filter(|l| !l.is_empty())
                            .map_or(serde_json::Value::Null, |l| serde_json::json!(l)),
                    );
                    o.insert("EndpointEnabled".into(), serde_json::json!(enabled));
                }
                v
            })
            .collect())
    }

    /// `GET /hosts?name=&mac=&nid=`: the named hosts, in BSS's order (names, then MACs, then
    /// NIDs; each value comma-separated); every host when nothing is named. Like BSS, one
    /// value that matches no node fails the whole request (404), a NID that is no integer 400;
    /// a MAC matches in any spelling, never a node in state `Empty`.
    pub async fn hosts_matching(&self, q: &HostQuery) -> Result<Vec<serde_json::Value>, BootError> {
        let all = self.hosts().await?;
        if q.names.is_empty() && q.macs.is_empty() && q.nids.is_empty() {
            return Ok(all);
        }
        let mut out = Vec::new();
        for n in &q.names {
            let want = Xname::parse(n).map_or_else(|_| n.clone(), |x| x.to_string());
            let c = all.iter().find(|c| c["ID"] == want.as_str());
            out.push(
                c.cloned()
                    .ok_or_else(|| BootError::UnknownHost(n.clone()))?,
            );
        }
        for m in &q.macs {
            let mac = Mac::parse(m).ok();
            let has = |c: &&serde_json::Value| {
                c["State"] != "Empty"
                    && c["MAC"].as_array().is_some_and(|l| {
                        l.iter()
                            .any(|v| v.as_str().and_then(|s| Mac::parse(s).ok()) == mac)
                    })
            };
            let c = mac.and_then(|_| all.iter().find(has));
            out.push(
                c.cloned()
                    .ok_or_else(|| BootError::UnknownHostMac(m.clone()))?,
            );
        }
        for n in &q.nids {
            let nid = parse_go_int(n).ok_or_else(|| BootError::BadHostNid(n.clone()))?;
            let c = all.iter().find(|c| c["NID"].as_i64() == Some(nid));
            out.push(
                c.cloned()
                    .ok_or_else(|| BootError::UnknownHostNid(n.clone()))?,
            );
        }
        Ok(out)
    }

    pub async fn ping(&self) -> Result<(), BootError> {
        Ok(self.store.ping().await?)
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }
}

/// Records that node `name` fetched `endpoint` (`bootscript`, `user-data`) now; best effort (a
/// failure is logged, the node still gets its answer). One unconditional write: the newest fetch
/// time wins, and no read is needed first.
pub async fn record_access(store: &dyn Store, name: &str, endpoint: &str) {
    let entry = EndpointAccess {
        name: name.to_string(),
        endpoint: endpoint.to_string(),
        last_epoch: now_epoch(),
    };
    let Ok(body) = serde_json::to_string(&entry) else {
        return;
    };
    let record = Record::new(format!("{name}#{endpoint}"), body);
    if let Err(e) = store
        .write(vec![Write::Upsert {
            table: ENDPOINT_HISTORY,
            record,
        }])
        .await
    {
        tracing::warn!(xname = name, endpoint, error = %e, "could not record endpoint access");
    }
}
