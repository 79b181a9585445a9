//! What a node boots, decided once for both script routes (`/boot/v1/bootscript` renders it as
//! BSS does, `/boot-service/bootscript` as boot-service does), over the same data:
//!
//! 1. the node's own BSS entry: by its xname, then by its MAC, then by its NID (BSS's order);
//! 2. else the best-scoring BootConfiguration created through `/boot-service` ([`select`]:
//!    MAC, NID, xname, xname pattern, inventory group, catch-all; then priority, name, uid);
//! 3. else BSS's entry for the node's role, then BSS's `Default`.
//!
//! A node's own BSS entry is the most specific statement there is about it, and BSS's role and
//! `Default` entries are BSS's fallbacks, consulted last as BSS consults them; within the
//! BootConfigurations, upstream's rules hold exactly. A node is the inventory's (its xname, NID,
//! role and groups) with what a `Node` resource adds (a hostname, more groups, a boot MAC); a
//! node neither knows gets boot-service's error script.

use skyport_inventory::ethernet::InterfaceFilter;
use skyport_inventory::reads::{Read, component_key, decode_read, interface_key};
use skyport_ipxe::fabrica;
use skyport_model::{Mac, Xname};
use skyport_resource::Resource;
use skyport_resource::store::{Collection, Stored};
use skyport_store::Table;
use skyport_wire::Component;

use super::select::{self, Candidate, Facts};
use super::{BOOT_CONFIGS, BOOT_NODES, BootConfiguration, HostPattern, Node, go_mac, host_pattern};
use crate::params::{self, BOOT_PARAMS, BootConfig, NodeKey};
use crate::{BootError, BootService};

/// How a node named itself, read as boot-service reads its one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Xname(Xname),
    Nid(i64),
    Mac(Mac),
    Unknown(String),
}

/// An xname if it is a node's (lowercase `x`), else a NID if Go's `Atoi` reads a non-negative
/// number (a sign and leading zeros allowed), else a MAC if Go's `ParseMAC` reads one.
pub fn classify(id: &str) -> Identifier {
    if matches!(host_pattern(id), Some(HostPattern::Exact(_)))
        && let Ok(x) = Xname::parse(id)
    {
        return Identifier::Xname(x);
    }
    let digits = id.strip_prefix(['+', '-']).unwrap_or(id);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = id.parse::<i64>()
        && (0..=i64::from(i32::MAX)).contains(&n)
    {
        return Identifier::Nid(n);
    }
    if go_mac(id)
        && let Ok(m) = Mac::parse(id)
    {
        return Identifier::Mac(m);
    }
    Identifier::Unknown(id.to_string())
}

/// How the node is told to ask again.
fn asked(id: &Identifier) -> Option<fabrica::Asked> {
    match id {
        Identifier::Xname(x) => Some(fabrica::Asked::Host(x.to_string())),
        Identifier::Mac(m) => Some(fabrica::Asked::Mac(*m)),
        Identifier::Nid(n) => Some(fabrica::Asked::Nid(*n)),
        Identifier::Unknown(_) => None,
    }
}

/// The node a script is for.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub facts: Facts,
    pub role: String,
    pub boot_mac: Option<Mac>,
}

/// The boot data chosen for a node, and the name its configuration has in the view.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub name: String,
    pub uid: String,
    pub rule: Rule,
    pub config: BootConfig,
}

/// Which step of the rule chose: the node's own BSS entry, a BootConfiguration's score, or
/// BSS's role or `Default` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    OwnEntry,
    Score(u32),
    Fallback,
}

/// Why a node boots what it boots (`GET /boot-service/explain`, `skyport bootconfig explain`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub identifier: String,
    /// The node as the choice saw it; `None` if no one knows it.
    pub node: Option<NodeView>,
    pub chosen: Option<ChosenView>,
    /// Every BootConfiguration that names the node, best first.
    pub candidates: Vec<Scored>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    pub xname: String,
    pub nid: Option<i64>,
    pub role: String,
    pub hostname: String,
    pub macs: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChosenView {
    pub uid: String,
    pub name: String,
    pub rule: Rule,
    pub kernel: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scored {
    pub uid: String,
    pub name: String,
    pub score: u32,
    pub priority: i64,
}

impl BootService {
    /// The Node resources naming `xname`, `nid` or `mac`, in uid order.
    async fn node_resources(&self) -> Result<Vec<Resource<Node>>, BootError> {
        let mut all = Stored::<Node>::new(self.store.clone(), BOOT_NODES)
            .list()
            .await
            .map_err(BootError::Resource)?;
        all.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
        Ok(all)
    }

    /// Facts about inventory node `c` (and the Node resource naming it), for choosing.
    pub(crate) async fn facts_of(
        &self,
        c: &Component,
        boot_mac: Option<Mac>,
        macs: &[Mac],
    ) -> Result<Resolved, BootError> {
        let nodes = self.node_resources().await?;
        let extra = nodes.iter().find(|n| n.spec.xname == c.id);
        self.resolved(Some(c), extra, boot_mac, macs).await
    }

    async fn resolved(
        &self,
        c: Option<&Component>,
        extra: Option<&Resource<Node>>,
        boot_mac: Option<Mac>,
        macs: &[Mac],
    ) -> Result<Resolved, BootError> {
        let spec = extra.map(|n| n.spec.clone()).unwrap_or_default();
        let xname = c.map_or_else(|| spec.xname.clone(), |c| c.id.clone());
        let mut groups = skyport_inventory::reads::group_labels(&*self.store, &xname).await?;
        groups.extend(spec.groups.iter().cloned());
        let boot_mac = boot_mac.or_else(|| Mac::parse(&spec.boot_mac).ok());
        let role = c
            .map(|c| c.role.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or(spec.role.clone());
        Ok(Resolved {
            facts: Facts {
                xname,
                hostname: spec.hostname.clone(),
                nid: c
                    .and_then(|c| c.nid)
                    .or((spec.nid != 0).then_some(i64::from(spec.nid))),
                // Every MAC the node is known by: a configuration naming any of them names
                // the node (upstream compares the boot MAC only).
                macs: {
                    let mut all: Vec<Mac> =
                        boot_mac.into_iter().chain(macs.iter().copied()).collect();
                    all.sort();
                    all.dedup();
                    all
                },
                groups,
            },
            role,
            boot_mac,
        })
    }

    /// The node an identifier names: the inventory's, with what a Node resource adds; or only
    /// a Node resource's; `None` if neither knows it.
    pub async fn resolve_node(&self, id: &Identifier) -> Result<Option<Resolved>, BootError> {
        let comp: Option<Component> = match id {
            Identifier::Xname(x) => self.component(x.as_str()).await?,
            Identifier::Mac(m) => {
                let mut owner = None;
                for (t, r) in self.store.get_keys(&[interface_key(m)]).await? {
                    if let Some(Read::InterfaceOf(x)) = decode_read(t, &r)? {
                        owner = Some(x).filter(|x| !x.is_empty());
                    }
                }
                match owner {
                    Some(x) => self.component(&x).await?,
                    None => None,
                }
            }
            Identifier::Nid(n) => match self.inv.component_by_nid(&n.to_string()).await {
                Ok(c) => Some(c),
                Err(skyport_http::ApiError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
            Identifier::Unknown(_) => None,
        };
        let nodes = self.node_resources().await?;
        let extra = match (&comp, id) {
            (Some(c), _) => nodes.iter().find(|n| n.spec.xname == c.id),
            (None, Identifier::Xname(x)) => nodes.iter().find(|n| n.spec.xname == x.as_str()),
            (None, Identifier::Nid(n)) => nodes.iter().find(|r| i64::from(r.spec.nid) == *n),
            (None, Identifier::Mac(m)) => nodes
                .iter()
                .find(|r| Mac::parse(&r.spec.boot_mac).is_ok_and(|b| b == *m)),
            (None, Identifier::Unknown(_)) => None,
        };
        if comp.is_none() && extra.is_none() {
            return Ok(None);
        }
        let boot_mac = match id {
            Identifier::Mac(m) => Some(*m),
            _ => None,
        };
        let macs: Vec<Mac> = match comp.as_ref().map(|c| Xname::parse(&c.id)) {
            Some(Ok(x)) => self
                .inv
                .list_interfaces(&InterfaceFilter::by_component(&x))
                .await?
                .iter()
                .filter_map(|e| Mac::parse(&e.mac_address).ok())
                .collect(),
            _ => Vec::new(),
        };
        Ok(Some(
            self.resolved(comp.as_ref(), extra, boot_mac, &macs).await?,
        ))
    }

    async fn component(&self, xname: &str) -> Result<Option<Component>, BootError> {
        for (t, r) in self.store.get_keys(&[component_key(xname)]).await? {
            if let Some(Read::Component(c)) = decode_read(t, &r)? {
                return Ok(Some(*c));
            }
        }
        Ok(None)
    }

    /// The BootConfigurations created through the boot-service API (not BSS's entries).
    pub(crate) async fn created_configs(
        &self,
    ) -> Result<Vec<Resource<BootConfiguration>>, BootError> {
        self.store
            .list_all(BOOT_CONFIGS, None)
            .await?
            .iter()
            .map(skyport_resource::store::decode)
            .collect::<Result<_, _>>()
            .map_err(BootError::Resource)
    }

    /// Tier 2: the best-scoring of `created` (the BootConfigurations created through the
    /// boot-service API) for the node.
    pub(crate) fn scored(created: &[Resource<BootConfiguration>], facts: &Facts) -> Option<Chosen> {
        let candidates: Vec<Candidate<'_>> = created
            .iter()
            .map(|r| Candidate {
                name: &r.metadata.name,
                uid: &r.metadata.uid,
                spec: &r.spec,
            })
            .collect();
        select::choose(&candidates, facts).map(|i| {
            let r = &created[i];
            Chosen {
                name: r.metadata.name.clone(),
                uid: r.metadata.uid.clone(),
                rule: Rule::Score(select::score(&r.spec, facts)),
                config: BootConfig {
                    kernel: r.spec.kernel.clone(),
                    initrd: r.spec.initrd.clone(),
                    params: r.spec.params.clone(),
                    ..BootConfig::default()
                },
            }
        })
    }

    /// What node `n` boots, by the three tiers of this module's rule.
    pub async fn choose(&self, n: &Resolved) -> Result<Option<Chosen>, BootError> {
        let f = &n.facts;
        let mut tier1 = vec![NodeKey::Host(f.xname.clone())];
        tier1.extend(f.macs.iter().map(|m| NodeKey::Mac(*m)));
        tier1.extend(f.nid.map(NodeKey::Nid));
        let mut tier3 = Vec::new();
        if let Some(role) = params::tag(&n.role) {
            tier3.push(NodeKey::Tag(role));
        }
        tier3.push(NodeKey::Tag(params::DEFAULT_TAG.into()));
        let keys: Vec<(Table, String)> = tier1
            .iter()
            .chain(&tier3)
            .map(|k| (BOOT_PARAMS, k.record_id()))
            .collect();
        let mut found = std::collections::BTreeMap::new();
        for (_, r) in self.store.get_keys(&keys).await? {
            let (k, c) = params::decode(&r)?;
            found.insert(k.record_id(), (k, c));
        }
        let pick = |keys: &[NodeKey], rule: Rule| {
            keys.iter()
                .find_map(|k| found.get(&k.record_id()))
                .filter(|(_, c)| !c.kernel.is_empty())
                .map(|(k, c)| Chosen {
                    name: super::configs::from_bss(k, c).metadata.name,
                    uid: super::configs::bss_uid(k),
                    rule,
                    config: c.clone(),
                })
        };
        if let Some(c) = pick(&tier1, Rule::OwnEntry) {
            return Ok(Some(c));
        }
        if let Some(c) = Self::scored(&self.created_configs().await?, f) {
            return Ok(Some(c));
        }
        Ok(pick(&tier3, Rule::Fallback))
    }

    /// What node `identifier` boots and why: the node as seen, the choice, and every
    /// BootConfiguration that names it with its score.
    pub async fn explain(&self, identifier: &str) -> Result<Explanation, BootError> {
        let Some(node) = self.resolve_node(&classify(identifier)).await? else {
            return Ok(Explanation {
                identifier: identifier.to_string(),
                node: None,
                chosen: None,
                candidates: Vec::new(),
            });
        };
        let chosen = self.choose(&node).await?;
        let created = self.created_configs().await?;
        let mut candidates: Vec<Scored> = created
            .iter()
            .map(|r| Scored {
                uid: r.metadata.uid.clone(),
                name: r.metadata.name.clone(),
                score: select::score(&r.spec, &node.facts),
                priority: r.spec.priority,
            })
            .filter(|c| c.score > 0)
            .collect();
        candidates.sort_by(|a, b| {
            (b.score, b.priority)
                .cmp(&(a.score, a.priority))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.uid.cmp(&b.uid))
        });
        let f = &node.facts;
        Ok(Explanation {
            identifier: identifier.to_string(),
            node: Some(NodeView {
                xname: f.xname.clone(),
                nid: f.nid,
                role: node.role.clone(),
                hostname: f.hostname.clone(),
                macs: f.macs.iter().map(ToString::to_string).collect(),
                groups: f.groups.clone(),
            }),
            chosen: chosen.map(|c| ChosenView {
                uid: c.uid,
                name: c.name,
                rule: c.rule,
                kernel: c.config.kernel,
            }),
            candidates,
        })
    }

    /// `GET /boot-service/bootscript`: the script for the node `identifier` names. Never fails:
    /// a problem reading data becomes the error script, which waits and asks again.
    pub async fn boot_service_script(&self, identifier: &str) -> String {
        let id = classify(identifier);
        match self.boot_service_resolve(identifier, &id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, identifier, "boot-service bootscript: serving the error script");
                fabrica::error(&e.to_string(), asked(&id).as_ref(), &self.settings)
            }
        }
    }

    async fn boot_service_resolve(
        &self,
        identifier: &str,
        id: &Identifier,
    ) -> Result<String, BootError> {
        let Some(node) = self.resolve_node(id).await? else {
            return Ok(fabrica::error(
                &format!("Node resolution failed: node not found for identifier {identifier}"),
                asked(id).as_ref(),
                &self.settings,
            ));
        };
        let Some(chosen) = self.choose(&node).await? else {
            return Ok(fabrica::minimal(identifier));
        };
        let boot = self.boot_of(&chosen.config).await?;
        let script = fabrica::script(
            &fabrica::Config {
                name: chosen.name,
                kernel: boot.kernel,
                initrd: boot.initrd,
                params: boot.params,
            },
            &fabrica::Node {
                xname: node.facts.xname.clone(),
                nid: node.facts.nid,
                role: node.role.clone(),
                groups: node.facts.groups.clone(),
                boot_mac: node.boot_mac,
            },
        )
        .map_err(BootError::Render)?;
        self.record_access(&node.facts.xname, "bootscript").await;
        Ok(script)
    }
}
