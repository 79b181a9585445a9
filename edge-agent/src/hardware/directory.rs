//! Where each node's BMC is, as this agent's own discovery last found it: one record per BMC in
//! the agent's store (`EdgeBmcs`), replaced by every crawl of that BMC, naming its address, its
//! vendor module and, per node, the system to act on (its path, reset target, the reset types
//! and boot targets it lists). Jobs resolve their targets here, so an agent acts only on BMCs
//! it reached itself, with the credentials it holds for exactly that address; nothing of it
//! leaves the site.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skyport_model::Xname;
use skyport_redfish::BmcInventory;
use skyport_redfish::payload::node_systems;
use skyport_redfish::power::SystemRef;
use skyport_store::{IndexKey, Record, Store, StoreError, Table, Write};

pub const EDGE_BMCS: Table = Table("EdgeBmcs");
/// Lookup from a node to its BMC's record.
const NODE_KEY: &str = "node";

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("BMC directory: {0}")]
    Store(#[from] StoreError),
    #[error("BMC directory record {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
}

/// One discovered BMC and the nodes behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmcEntry {
    /// The BMC's xname (`x1000c0s0b0`).
    pub xname: String,
    /// `https://10.0.0.5:443`, as discovery reached it.
    pub url: String,
    /// Host and port, the key of its credentials.
    pub host: String,
    pub port: u16,
    /// The vendor module that handled it (`skyport_redfish::vendor::by_name`).
    pub vendor: String,
    pub nodes: Vec<NodeEntry>,
    /// Unix seconds of the crawl.
    pub seen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub xname: String,
    pub system: SystemRef,
}

/// The directory entry for a BMC named `bmc`, crawled at `url`. Nodes are named as the
/// inventory names them from the same crawl ([`node_systems`]).
pub fn entry(bmc: &Xname, url: &str, host: &str, port: u16, inv: &BmcInventory) -> BmcEntry {
    let nodes = node_systems(inv)
        .into_iter()
        .enumerate()
        .filter_map(|(k, s)| {
            let node = bmc.child_node(u32::try_from(k).ok()?)?;
            Some(NodeEntry {
                xname: node.to_string(),
                system: SystemRef::of(s),
            })
        })
        .collect();
    BmcEntry {
        xname: bmc.to_string(),
        url: url.to_string(),
        host: host.to_string(),
        port,
        vendor: inv.vendor.clone(),
        nodes,
        seen: skyport_model::now(),
    }
}

/// The agent's directory over its store.
#[derive(Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records (or replaces) a BMC's entry. A fact about now: the last crawl wins.
    pub async fn record(&self, e: &BmcEntry) -> Result<(), DirectoryError> {
        let body = serde_json::to_string(e).map_err(|err| DirectoryError::Corrupt {
            id: e.xname.clone(),
            reason: err.to_string(),
        })?;
        let mut rec = Record::new(e.xname.clone(), body);
        for n in &e.nodes {
            rec = rec.with_lookup(NODE_KEY, &n.xname);
        }
        let prev = self.store.get(EDGE_BMCS, &e.xname).await?;
        self.store
            .write(vec![Write::Put {
                table: EDGE_BMCS,
                record: rec,
                prev,
            }])
            .await?;
        Ok(())
    }

    fn decode(r: &Record) -> Result<BmcEntry, DirectoryError> {
        serde_json::from_str(&r.body).map_err(|e| DirectoryError::Corrupt {
            id: r.id.clone(),
            reason: e.to_string(),
        })
    }

    /// The BMC and system of node `xname`, if this agent discovered it.
    pub async fn node(&self, xname: &str) -> Result<Option<(BmcEntry, SystemRef)>, DirectoryError> {
        let key = IndexKey::new(NODE_KEY, xname);
        for r in self.store.list_all(EDGE_BMCS, Some(&key)).await? {
            let e = Self::decode(&r)?;
            if let Some(n) = e.nodes.iter().find(|n| n.xname == xname) {
                let sys = n.system.clone();
                return Ok(Some((e, sys)));
            }
        }
        Ok(None)
    }

    /// The BMC `xname`, if this agent discovered it.
    pub async fn bmc(&self, xname: &str) -> Result<Option<BmcEntry>, DirectoryError> {
        self.store
            .get(EDGE_BMCS, xname)
            .await?
            .as_ref()
            .map(Self::decode)
            .transpose()
    }

    /// Every BMC recorded.
    pub async fn all(&self) -> Result<Vec<BmcEntry>, DirectoryError> {
        self.store
            .list_all(EDGE_BMCS, None)
            .await?
            .iter()
            .map(Self::decode)
            .collect()
    }
}
