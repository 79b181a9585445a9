//! `skyport component|iface|redfish-endpoint|group`: the inventory (SMD's `/hsm/v2`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use skyport_client::segment;
use skyport_model::{Mac, Xname};

use super::{CliError, CliResult, Global, delete, print, show};

/// The inventory's collections the commands below work on.
const COMPONENTS: &str = "/hsm/v2/State/Components";
const IFACES: &str = "/hsm/v2/Inventory/EthernetInterfaces";
const ENDPOINTS: &str = "/hsm/v2/Inventory/RedfishEndpoints";
const GROUPS: &str = "/hsm/v2/groups";

fn local(e: impl Into<anyhow::Error>) -> CliError {
    CliError::Local(e.into())
}

fn xname(s: &str) -> Result<String, CliError> {
    Xname::parse(s)
        .map(|x| x.to_string())
        .map_err(|e| local(anyhow::anyhow!("{s:?}: {e}")))
}

fn q(pairs: Vec<(&'static str, Option<String>)>) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

const COMPONENT_COLUMNS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("TYPE", "Type"),
    ("STATE", "State"),
    ("FLAG", "Flag"),
    ("ENABLED", "Enabled"),
    ("ROLE", "Role"),
    ("NID", "NID"),
];

#[derive(Subcommand, Debug)]
pub enum ComponentCmd {
    /// Components, filtered as SMD filters them.
    ///
    /// Examples:
    ///   skyport component list --type Node --state Ready
    ///   skyport component list --role Compute -o json | jq -r '.[].ID'
    List {
        #[arg(long = "id")]
        ids: Vec<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        nid: Option<i64>,
    },
    /// One component.
    Get {
        id: String,
    },
    /// Creates (or replaces) a component; the type comes from the xname.
    ///
    /// Example:
    ///   skyport component add x1000c0s0b0n0 --state Ready --role Compute --nid 1
    Add {
        id: String,
        #[arg(long, default_value = "Ready")]
        state: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        nid: Option<i64>,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// Changes fields of a component (only those given).
    ///
    /// Example:
    ///   skyport component set x1000c0s0b0n0 --state Standby --enabled false
    Set {
        id: String,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        flag: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        nid: Option<i64>,
        #[arg(long)]
        enabled: Option<bool>,
    },
    Delete {
        id: String,
    },
}

pub async fn component(g: &Global, cmd: &ComponentCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        ComponentCmd::List {
            ids,
            kind,
            state,
            role,
            enabled,
            nid,
        } => {
            let mut query = q(vec![
                ("type", kind.clone()),
                ("state", state.clone()),
                ("role", role.clone()),
                ("enabled", enabled.map(|b| b.to_string())),
                ("nid", nid.map(|n| n.to_string())),
            ]);
            for id in ids {
                query.push(("id", xname(id)?));
            }
            let v = c.get_json(COMPONENTS, &query).await?;
            print(g.output, &v["Components"], COMPONENT_COLUMNS)
        }
        ComponentCmd::Get { id } => {
            show(
                g,
                &c,
                &format!("{COMPONENTS}/{}", xname(id)?),
                COMPONENT_COLUMNS,
            )
            .await
        }
        ComponentCmd::Add {
            id,
            state,
            role,
            nid,
            enabled,
        } => {
            let id = xname(id)?;
            let mut comp = json!({"ID": id, "State": state, "Enabled": enabled});
            if let Some(r) = role {
                comp["Role"] = json!(r);
            }
            if let Some(n) = nid {
                comp["NID"] = json!(n);
            }
            c.send(
                Method::POST,
                COMPONENTS,
                Some(&json!({"Components": [comp]})),
            )
            .await?;
            show(g, &c, &format!("{COMPONENTS}/{id}"), COMPONENT_COLUMNS).await
        }
        ComponentCmd::Set {
            id,
            state,
            flag,
            role,
            nid,
            enabled,
        } => {
            let id = xname(id)?;
            let mut patch = Map::new();
            for (k, v) in [
                ("State", state.clone().map(Value::from)),
                ("Flag", flag.clone().map(Value::from)),
                ("Role", role.clone().map(Value::from)),
                ("NID", nid.map(Value::from)),
                ("Enabled", enabled.map(Value::from)),
            ] {
                if let Some(v) = v {
                    patch.insert(k.into(), v);
                }
            }
            if patch.is_empty() {
                return Err(local(anyhow::anyhow!(
                    "nothing to change: give --state, --flag, --role, --nid or --enabled"
                )));
            }
            c.send(
                Method::PATCH,
                &format!("{COMPONENTS}/{id}"),
                Some(&Value::Object(patch)),
            )
            .await?;
            show(g, &c, &format!("{COMPONENTS}/{id}"), COMPONENT_COLUMNS).await
        }
        ComponentCmd::Delete { id } => delete(&c, &format!("{COMPONENTS}/{}", xname(id)?)).await,
    }
}

const IFACE_COLUMNS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("MAC", "MACAddress"),
    ("COMPONENT", "ComponentID"),
    ("TYPE", "Type"),
    ("IPS", "IPAddresses"),
];

#[derive(Subcommand, Debug)]
pub enum IfaceCmd {
    /// Ethernet interfaces (MAC → component, IPs).
    ///
    /// Example:
    ///   skyport iface list --component x1000c0s0b0n0
    List {
        #[arg(long)]
        mac: Option<String>,
        #[arg(long)]
        component: Option<String>,
        #[arg(long)]
        ip: Option<String>,
    },
    /// One interface, by MAC (any spelling) or SMD interface id.
    Get {
        mac: String,
    },
    /// Records a NIC: which component it belongs to and its IPs.
    ///
    /// Example:
    ///   skyport iface add 52:54:00:12:34:56 --component x1000c0s0b0n0 --ip 10.100.0.11
    Add {
        mac: String,
        #[arg(long)]
        component: Option<String>,
        #[arg(long = "ip")]
        ips: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Delete {
        mac: String,
    },
}

fn mac_id(s: &str) -> Result<String, CliError> {
    Mac::parse(s)
        .map(|m| m.id())
        .map_err(|e| local(anyhow::anyhow!("{e}")))
}

pub async fn iface(g: &Global, cmd: &IfaceCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        IfaceCmd::List { mac, component, ip } => {
            let mac = match mac {
                Some(m) => Some(
                    Mac::parse(m)
                        .map_err(|e| local(anyhow::anyhow!("{e}")))?
                        .to_string(),
                ),
                None => None,
            };
            let component = component.as_deref().map(xname).transpose()?;
            let query = q(vec![
                ("MACAddress", mac),
                ("ComponentID", component),
                ("IPAddress", ip.clone()),
            ]);
            let v = c.get_json(IFACES, &query).await?;
            print(g.output, &v, IFACE_COLUMNS)
        }
        IfaceCmd::Get { mac } => {
            show(g, &c, &format!("{IFACES}/{}", mac_id(mac)?), IFACE_COLUMNS).await
        }
        IfaceCmd::Add {
            mac,
            component,
            ips,
            description,
        } => {
            let m = Mac::parse(mac).map_err(|e| local(anyhow::anyhow!("{e}")))?;
            for ip in ips {
                ip.parse::<std::net::IpAddr>()
                    .map_err(|_| local(anyhow::anyhow!("--ip {ip:?} is not an IP address")))?;
            }
            let mut body = json!({"MACAddress": m.to_string(),
                "IPAddresses": ips.iter().map(|i| json!({"IPAddress": i})).collect::<Vec<_>>()});
            if let Some(x) = component {
                body["ComponentID"] = json!(xname(x)?);
            }
            if let Some(d) = description {
                body["Description"] = json!(d);
            }
            c.send(Method::POST, IFACES, Some(&body)).await?;
            show(g, &c, &format!("{IFACES}/{}", m.id()), IFACE_COLUMNS).await
        }
        IfaceCmd::Delete { mac } => delete(&c, &format!("{IFACES}/{}", mac_id(mac)?)).await,
    }
}

const RFE_COLUMNS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("FQDN", "FQDN"),
    ("IP", "IPAddress"),
    ("MAC", "MACAddr"),
    ("ENABLED", "Enabled"),
    ("LAST DISCOVERY", "DiscoveryInfo.LastDiscoveryStatus"),
];

#[derive(Subcommand, Debug)]
pub enum RedfishEndpointCmd {
    /// BMCs known to the inventory (pushed by `skyport-edge` or Magellan).
    List {
        #[arg(long = "id")]
        ids: Vec<String>,
    },
    Get {
        id: String,
    },
    Delete {
        id: String,
    },
}

pub async fn redfish_endpoint(g: &Global, cmd: &RedfishEndpointCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        RedfishEndpointCmd::List { ids } => {
            let mut query = Vec::new();
            for id in ids {
                query.push(("id", xname(id)?));
            }
            let v = c.get_json(ENDPOINTS, &query).await?;
            print(g.output, &v["RedfishEndpoints"], RFE_COLUMNS)
        }
        RedfishEndpointCmd::Get { id } => {
            show(g, &c, &format!("{ENDPOINTS}/{}", xname(id)?), RFE_COLUMNS).await
        }
        RedfishEndpointCmd::Delete { id } => {
            delete(&c, &format!("{ENDPOINTS}/{}", xname(id)?)).await
        }
    }
}

const GROUP_COLUMNS: &[(&str, &str)] = &[
    ("LABEL", "label"),
    ("DESCRIPTION", "description"),
    ("MEMBERS", "members.ids"),
];

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    List,
    Get {
        label: String,
    },
    /// Creates a group.
    ///
    /// Example:
    ///   skyport group add compute --description "all compute" --member x1000c0s0b0n0
    Add {
        label: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Adds members to a group.
    AddMember {
        label: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Removes members from a group.
    RemoveMember {
        label: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    Delete {
        label: String,
    },
}

pub async fn group(g: &Global, cmd: &GroupCmd) -> CliResult {
    let c = g.client()?;
    match cmd {
        GroupCmd::List => show(g, &c, GROUPS, GROUP_COLUMNS).await,
        GroupCmd::Get { label } => {
            show(
                g,
                &c,
                &format!("{GROUPS}/{}", segment(label)),
                GROUP_COLUMNS,
            )
            .await
        }
        GroupCmd::Add {
            label,
            description,
            members,
        } => {
            let ids = members
                .iter()
                .map(|m| xname(m))
                .collect::<Result<Vec<_>, _>>()?;
            c.send(
                Method::POST,
                GROUPS,
                Some(&json!({"label": label, "description": description, "members": {"ids": ids}})),
            )
            .await?;
            show(
                g,
                &c,
                &format!("{GROUPS}/{}", segment(label)),
                GROUP_COLUMNS,
            )
            .await
        }
        GroupCmd::AddMember { label, ids } => {
            for id in ids {
                c.send(
                    Method::POST,
                    &format!("{GROUPS}/{}/members", segment(label)),
                    Some(&json!({"id": xname(id)?})),
                )
                .await?;
            }
            Ok(())
        }
        GroupCmd::RemoveMember { label, ids } => {
            for id in ids {
                c.send(
                    Method::DELETE,
                    &format!("{GROUPS}/{}/members/{}", segment(label), xname(id)?),
                    None,
                )
                .await?;
            }
            Ok(())
        }
        GroupCmd::Delete { label } => delete(&c, &format!("{GROUPS}/{}", segment(label))).await,
    }
}
