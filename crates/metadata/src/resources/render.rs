//! The node-facing documents of metadata-service (reference §3.4–§3.10), from the same data as
//! `/cloud-init`'s: `meta-data` (YAML as Go's yaml.v3 writes it, 4-space indent, upstream's
//! key order), `vendor-data` (`#include` of the groups that have a template), `network-config`
//! (one physical interface per NIC, a `/24` static address where one is known), and a group's
//! template rendered for the node.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use skyport_model::Xname;

use super::{profiles, template};
use crate::{GroupData, MetadataError, MetadataService, Node};

/// `v` as Go's yaml.v3 writes it with a 4-space indent: maps in the order given, sequences
/// indented under their key, a map in a sequence starting on the dash's line.
pub fn yaml_v3(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(m, 0, &mut out),
        other => {
            out.push_str(&crate::yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

fn map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&crate::yaml_scalar(&Value::String(k.clone())));
        out.push(':');
        value(v, indent, out);
    }
}

fn value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(m, indent + 4, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            for item in a {
                out.push_str(&" ".repeat(indent + 4));
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        map(m, indent + 6, &mut inner);
                        out.push(' ');
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    other => value(other, indent + 4, out),
                }
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&crate::yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

/// What one node's documents are made of.
struct Parts {
    meta: Value,
    flat: Value,
    groups: BTreeMap<String, GroupData>,
    base: String,
}

impl MetadataService {
    /// The base URL a node's vendor-data includes from: the node's `cloud_init_base_url`,
    /// else the cluster's `base_url`, verbatim; else the service's own metadata-service URL.
    fn v02_base(&self, d: &crate::ClusterDefaults, i: &crate::InstanceInfo) -> String {
        if !i.cloud_init_base_url.is_empty() {
            return i.cloud_init_base_url.clone();
        }
        if !d.base_url.is_empty() {
            return d.base_url.clone();
        }
        let own = self.default_base_url.trim_end_matches('/');
        match own.strip_suffix("/cloud-init") {
            Some(root) => format!("{root}/metadata-service"),
            None => own.to_string(),
        }
    }

    /// The node's NICs as upstream lists them: one per NIC its Redfish system reports, each
    /// with the address of the Ethernet interface of the same MAC.
    /// The node's Ethernet interfaces (none for a name that is no xname).
    async fn node_ifaces(
        &self,
        x: &str,
    ) -> Result<Vec<skyport_wire::EthernetInterface>, MetadataError> {
        let Ok(xname) = Xname::parse(x) else {
            return Ok(Vec::new());
        };
        self.inv
            .list_interfaces(&skyport_inventory::ethernet::InterfaceFilter::by_component(
                &xname,
            ))
            .await
            .map_err(MetadataError::inventory)
    }

    async fn v02_interfaces(
        &self,
        x: &str,
        ifaces: &[skyport_wire::EthernetInterface],
    ) -> Result<Vec<Value>, MetadataError> {
        let nics = match self.inv.get_component_endpoint(x).await {
            Ok(ce) => ce
                .redfish_system_info
                .as_ref()
                .and_then(|i| i.get("EthernetNICInfo"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(skyport_http::ApiError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(MetadataError::inventory(e)),
        };
        if nics.is_empty() || ifaces.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (i, nic) in nics.iter().enumerate() {
            let mac = nic.get("MACAddress").and_then(Value::as_str).unwrap_or("");
            let mut m = Map::new();
            m.insert(
                "description".into(),
                nic.get("Description").cloned().unwrap_or(json!("")),
            );
            m.insert(
                "enabled".into(),
                nic.get("InterfaceEnabled").cloned().unwrap_or(json!(false)),
            );
            let addrs: Vec<(String, String)> = ifaces
                .iter()
                .find(|e| e.mac_address == mac)
                .map(|e| {
                    e.ip_addresses
                        .iter()
                        .map(|a| (a.ip_address.clone(), a.network.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if let Some((ip, _)) = addrs.first() {
                m.insert("ip".into(), json!(ip));
            }
            if addrs.len() > 1 {
                m.insert(
                    "ip_addresses".into(),
                    Value::Array(
                        addrs
                            .iter()
                            .map(|(ip, n)| json!({"ip": ip, "network": n}))
                            .collect(),
                    ),
                );
            }
            m.insert("mac".into(), json!(mac));
            m.insert("name".into(), json!(format!("eth{i}")));
            if let Some((_, net)) = addrs.first().filter(|(_, n)| !n.is_empty()) {
                m.insert("network".into(), json!(net));
            }
            m.insert(
                "redfishid".into(),
                nic.get("RedfishId").cloned().unwrap_or(json!("")),
            );
            out.push(Value::Object(m));
        }
        Ok(out)
    }

    async fn v02_parts(&self, node: &Node) -> Result<Parts, MetadataError> {
        let d = self.defaults().await?;
        let x = &node.component.id;
        let info: crate::InstanceInfo = match self.store.get(crate::INSTANCES, x).await? {
            Some(r) => crate::decode(crate::INSTANCES, &r)?,
            None => crate::InstanceInfo::default(),
        };
        let generated = crate::hostname(&d, node.component.nid);
        let or = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let instance_id = or(&info.instance_id, x);
        let local_hostname = or(&info.local_hostname, &generated);
        let hostname = or(&info.hostname, &generated);
        let stored: BTreeMap<String, GroupData> = self
            .store
            .get_many(crate::GROUPS, &node.groups)
            .await?
            .iter()
            .map(|r| crate::decode(crate::GROUPS, r).map(|g| (r.id.clone(), g)))
            .collect::<Result<_, _>>()?;
        // Every membership with a Group, metadata-only groups included.
        let mut groups = Map::new();
        for g in &node.groups {
            if let Some(gd) = stored.get(g) {
                let mut m = Map::new();
                m.insert("description".into(), json!(gd.description));
                for (k, v) in gd.meta_data.clone().unwrap_or_default() {
                    m.insert(k, v);
                }
                groups.insert(g.clone(), Value::Object(m));
            }
        }
        let ifaces = self.node_ifaces(x).await?;
        let interfaces = self.v02_interfaces(x, &ifaces).await?;
        // The boot MAC and address, "HMN first" as upstream: the first Ethernet interface with
        // an address on network HMN, else the first with an address, else the first at all.
        let on = |e: &&skyport_wire::EthernetInterface, hmn: bool| {
            e.ip_addresses
                .iter()
                .any(|a| !hmn || a.network.eq_ignore_ascii_case("HMN"))
        };
        let boot = ifaces
            .iter()
            .find(|e| on(e, true))
            .or_else(|| ifaces.iter().find(|e| on(e, false)))
            .or_else(|| ifaces.first());
        let mac = boot.map(|e| e.mac_address.clone()).unwrap_or_default();
        let ip = boot
            .and_then(|e| {
                let hmn = e
                    .ip_addresses
                    .iter()
                    .find(|a| a.network.eq_ignore_ascii_case("HMN"));
                hmn.or(e.ip_addresses.first()).map(|a| a.ip_address.clone())
            })
            .unwrap_or_else(|| node.ip.clone());
        let base = self.v02_base(&d, &info);
        let mut vendor = Map::new();
        vendor.insert("version".into(), json!("1.0"));
        let put = |m: &mut Map<String, Value>, k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        };
        put(&mut vendor, "cloud_init_base_url", &base);
        put(&mut vendor, "cluster_name", &d.cluster_name);
        if let Some(n) = node.component.nid.filter(|n| *n != 0) {
            vendor.insert("nid".into(), json!(n));
        }
        put(&mut vendor, "role", &node.component.role);
        put(&mut vendor, "mac", &mac);
        if !interfaces.is_empty() {
            vendor.insert("interfaces".into(), Value::Array(interfaces.clone()));
        }
        if !groups.is_empty() {
            vendor.insert("groups".into(), Value::Object(groups));
        }
        let mut keys = d.public_keys.clone();
        keys.extend(info.public_keys.iter().cloned());
        let mut v1 = Map::new();
        v1.insert("cloud_name".into(), json!("OpenCHAMI"));
        put(&mut v1, "availability_zone", &d.availability_zone);
        put(&mut v1, "instance_id", &instance_id);
        put(&mut v1, "local_hostname", &local_hostname);
        put(&mut v1, "region", &d.region);
        put(&mut v1, "hostname", &hostname);
        put(&mut v1, "local_ipv4", &ip);
        put(&mut v1, "cloud_provider", &d.cloud_provider);
        if !keys.is_empty() {
            v1.insert("public_keys".into(), json!(keys));
        }
        let vendor = Value::Object(vendor);
        v1.insert("vendor_data".into(), vendor.clone());
        let meta = json!({
            "instance-id": instance_id, "local-hostname": local_hostname, "hostname": hostname,
            "cluster-name": d.cluster_name, "instance_data": {"v1": Value::Object(v1)},
        });
        let flat = json!({
            "hostname": hostname, "local_hostname": local_hostname, "instance_id": x,
            "nid": node.component.nid.unwrap_or(0), "role": node.component.role, "mac": mac,
            "ip": ip, "interfaces": interfaces, "cluster_name": d.cluster_name,
            "base_url": base, "cloud_provider": d.cloud_provider, "region": d.region,
            "availability_zone": d.availability_zone, "public_keys": keys,
            "cloud_name": "OpenCHAMI", "local_ipv4": ip,
            "vendor_data": vendor, "meta_data": meta,
        });
        Ok(Parts {
            meta,
            flat,
            groups: stored,
            base,
        })
    }

    /// `GET /metadata-service/meta-data`.
    pub async fn v02_meta_data(&self, node: &Node) -> Result<String, MetadataError> {
        Ok(yaml_v3(&self.v02_parts(node).await?.meta))
    }

    /// `GET /metadata-service/vendor-data`: an include of each group (in membership order)
    /// that has a template; metadata-only groups are left out.
    /// With a live `profile`, the includes go through it (`<base>/profile=<name>/<g>.yaml`),
    /// and its group is included when the profile gives it a template.
    pub async fn v02_vendor_data(
        &self,
        node: &Node,
        profile: Option<&str>,
    ) -> Result<String, MetadataError> {
        let p = self.v02_parts(node).await?;
        let chain = match profile {
            Some(name) => self.profile_chain(name).await?,
            None => None,
        };
        let prefix = match (&chain, profile) {
            (Some(_), Some(name)) => format!("{}/profile={name}", p.base),
            _ => p.base.clone(),
        };
        let mut s = String::from("#include\n");
        for g in &node.groups {
            let own = p
                .groups
                .get(g)
                .is_some_and(|gd| gd.file.as_ref().is_some_and(|f| !f.content.is_empty()));
            let by_profile = chain.as_ref().is_some_and(|c| {
                c.iter()
                    .any(|pr| profiles::applies_to(&c[0], g) && !pr.spec.template.is_empty())
            });
            if own || by_profile {
                s.push_str(&format!("{prefix}/{g}.yaml\n"));
            }
        }
        Ok(s)
    }

    /// The live profile `name` and its parents, child first; `None` if missing or expired.
    async fn profile_chain(
        &self,
        name: &str,
    ) -> Result<Option<Vec<skyport_resource::Resource<profiles::Profile>>>, MetadataError> {
        let all: Vec<skyport_resource::Resource<profiles::Profile>> = self
            .store
            .list_all(profiles::PROFILES, None)
            .await?
            .iter()
            .filter_map(|r| skyport_resource::store::decode(r).ok())
            .collect();
        Ok(profiles::chain(&all, name))
    }

    /// The node's default profile (its InstanceInfo's `default_profile`), if any.
    async fn default_profile(&self, node: &Node) -> Result<Option<String>, MetadataError> {
        let Some(r) = self.store.get(crate::INSTANCES, &node.component.id).await? else {
            return Ok(None);
        };
        let i: crate::InstanceInfo = crate::decode(crate::INSTANCES, &r)?;
        Ok(i.resource
            .and_then(|e| {
                e.spec
                    .get("default_profile")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|p| !p.is_empty()))
    }

    /// `GET /metadata-service/network-config`.
    pub async fn v02_network_config(&self, node: &Node) -> Result<String, MetadataError> {
        let listed = self.node_ifaces(&node.component.id).await?;
        let ifaces = self.v02_interfaces(&node.component.id, &listed).await?;
        if ifaces.is_empty() {
            return Ok("version: 1\nconfig: []\n".into());
        }
        let config: Vec<Value> = ifaces
            .iter()
            .map(|i| {
                let mut m = Map::new();
                if let Some(d) = i["description"].as_str().filter(|d| !d.is_empty()) {
                    m.insert("description".into(), json!(d));
                }
                m.insert("mac_address".into(), i["mac"].clone());
                m.insert("name".into(), i["name"].clone());
                if let Some(ip) = i["ip"].as_str() {
                    m.insert(
                        "subnets".into(),
                        json!([{"address": format!("{ip}/24"), "type": "static"}]),
                    );
                }
                m.insert("type".into(), json!("physical"));
                Value::Object(m)
            })
            .collect();
        Ok(yaml_v3(&json!({"config": config, "version": 1})))
    }

    /// `GET /metadata-service/{group}.yaml`: the group's template rendered for the node;
    /// `#cloud-config` when no Group of that name exists; 404 for a non-member.
    /// With a live profile for that group (the URL's, else the node's default), the profile's
    /// template (or its parent's, else the group's) is rendered with the group's metadata
    /// overlaid by the parents' and then the profile's.
    pub async fn v02_group_file(
        &self,
        node: &Node,
        group: &str,
        profile: Option<&str>,
    ) -> Result<String, MetadataError> {
        let g = group.to_ascii_lowercase();
        if !node.groups.contains(&g) {
            return Err(MetadataError::NotAMember {
                id: node.component.id.clone(),
                group: g,
            });
        }
        let p = self.v02_parts(node).await?;
        let name = match profile {
            Some(n) => Some(n.to_string()),
            None => self.default_profile(node).await?,
        };
        let chain = match &name {
            Some(n) => self
                .profile_chain(n)
                .await?
                .filter(|c| profiles::applies_to(&c[0], &g)),
            None => None,
        };
        let Some(gd) = p.groups.get(&g) else {
            return Ok("#cloud-config\n".into());
        };
        let spec = <super::Group as super::views::View>::to_resource(
            &g,
            &serde_json::to_string(gd).map_err(|source| MetadataError::Encode {
                table: crate::GROUPS,
                id: g.clone(),
                source,
            })?,
        )
        .map_err(|source| MetadataError::Corrupt {
            table: crate::GROUPS,
            id: g.clone(),
            source,
        })?
        .spec;
        let mut meta = spec.meta_data.clone();
        let mut text = spec.template.clone();
        if let Some(c) = &chain {
            // Root first, so a child overrides its parent, which overrides the group.
            for pr in c.iter().rev() {
                meta.extend(pr.spec.meta_data.clone());
            }
            if let Some(t) = c.iter().map(|pr| &pr.spec.template).find(|t| !t.is_empty()) {
                text = t.clone();
            }
        }
        if text.is_empty() {
            return Ok(String::new());
        }
        let mut ctx = p.flat;
        template::with_ds_and_meta(&mut ctx, &meta);
        template::render(&text, &ctx).map_err(|e| MetadataError::Template {
            group: g,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The reference's meta-data example (§3.5), as yaml.v3 lays it out.
    #[test]
    fn yaml_is_laid_out_as_yaml_v3_does() {
        let v = json!({"instance-id": "x1000c0s0b0n0", "cluster-name": "testcluster",
            "instance_data": {"v1": {"cloud_name": "OpenCHAMI", "local_ipv4": "10.252.0.26",
            "public_keys": ["ssh-ed25519 AAAA demo@example"],
            "vendor_data": {"version": "1.0", "nid": 1000,
                "interfaces": [{"description": "Node Management Network", "enabled": true, "name": "eth0"}],
                "groups": {"compute": {"description": "Compute nodes", "scheduler": "slurm"}}}}}});
        assert_eq!(
            yaml_v3(&v),
            "instance-id: x1000c0s0b0n0\ncluster-name: testcluster\ninstance_data:\n    v1:\n        \
             cloud_name: OpenCHAMI\n        local_ipv4: \"10.252.0.26\"\n        public_keys:\n            \
             - ssh-ed25519 AAAA demo@example\n        vendor_data:\n            version: \"1.0\"\n            \
             nid: 1000\n            interfaces:\n                - description: Node Management Network\n                  \
             enabled: true\n                  name: eth0\n            groups:\n                compute:\n                    \
             description: Compute nodes\n                    scheduler: slurm\n"
        );
    }
}
