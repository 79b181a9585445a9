//! `Inventory/ServiceEndpoints`: the Redfish services (accounts, sessions, events, tasks,
//! updates) each BMC's service root links, as the site agent's crawl found them. SMD's own
//! discovery fills this table and Magellan sends nothing for it, so OpenCHAMI installations
//! that discover with Magellan list none; Skyport's crawl carries them in its payload
//! (`Services`), and a discovery push replaces the endpoint's set in the same batch as the
//! endpoint. A payload without `Services` (an admin's, Magellan's) leaves the set as it is.
//!
//! Read as SMD reads them: `RedfishEndpointFQDN` is the endpoint's FQDN now and `RedfishURL`
//! that FQDN followed by `OdataID`; deleting an endpoint deletes its services.

use std::collections::{BTreeMap, HashSet};

use skyport_http::{ApiError, QueryParams};
use skyport_model::Xname;
use skyport_store::{IndexKey, Write};
use skyport_wire::discovery::Service;
use skyport_wire::{RedfishEndpoint, ServiceEndpoint};

use crate::records::{self, REDFISH_ENDPOINTS, SERVICE_ENDPOINTS};
use crate::{Candidates, Fail, Inventory, retrying};

/// Services one payload may carry (SMD knows five).
const MAX_SERVICES: usize = 32;
/// Longest `RedfishType` and `OdataID` kept.
const MAX_NAME: usize = 64;
const MAX_ODATA_ID: usize = 1024;

const BAD_XNAME: &str = "Argument was not a valid xname ID";
const BAD_TYPE: &str = "Argument was not a valid HMS Type";
const NO_SUCH: &str = "no such service under redfish endpoint.";

/// `GET /Inventory/ServiceEndpoints` filters: `service` and `redfish_ep`, repeatable (ORed),
/// `!` negating (ANDed), as SMD's `ServiceEPFilter`.
#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    service: crate::filters::OneOf,
    endpoint: crate::filters::OneOf,
}

/// Every value of parameter `name`, checked by `check`, a leading `!` excluding it.
fn one_of(
    q: &QueryParams,
    name: &str,
    check: fn(&str) -> Result<String, ApiError>,
) -> Result<crate::filters::OneOf, ApiError> {
    let mut f = crate::filters::OneOf::default();
    for v in q.all(name) {
        match v.strip_prefix('!') {
            Some(raw) => f.exclude.push(check(raw)?),
            None => f.include.push(check(v)?),
        }
    }
    Ok(f)
}

fn service_name(v: &str) -> Result<String, ApiError> {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request(BAD_TYPE).context(format!("service={v:?}")));
    }
    Ok(v.to_string())
}

fn endpoint_name(v: &str) -> Result<String, ApiError> {
    Xname::parse(v)
        .map(|x| x.to_string())
        .map_err(|_| ApiError::bad_request(BAD_XNAME).context(format!("redfish_ep={v:?}")))
}

impl ServiceFilter {
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            service: one_of(q, "service", service_name)?,
            endpoint: one_of(q, "redfish_ep", endpoint_name)?,
        })
    }

    /// Only the service `name` (SMD's `/{service}` replaces any `service` query).
    pub fn only_service(mut self, name: &str) -> Result<Self, ApiError> {
        self.service = crate::filters::OneOf {
            include: vec![service_name(name)?],
            exclude: Vec::new(),
        };
        Ok(self)
    }

    fn matches(&self, se: &ServiceEndpoint) -> bool {
        self.service.matches(&se.redfish_type) && self.endpoint.matches(&se.redfish_endpoint_id)
    }
}

/// The services a payload carries, as stored for endpoint `ep`; a malformed one refuses the
/// payload (only Skyport's agent sends them, and it never sends such).
pub(crate) fn from_payload(
    ep: &RedfishEndpoint,
    services: &[Service],
) -> Result<Vec<ServiceEndpoint>, ApiError> {
    if services.len() > MAX_SERVICES {
        return Err(ApiError::bad_request(format!(
            "{} Services: at most {MAX_SERVICES}",
            services.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(services.len());
    for s in services {
        let t = s.redfish_type.trim();
        if t.is_empty() || t.len() > MAX_NAME || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ApiError::bad_request(format!(
                "Services: RedfishType {t:?} is not a Redfish service name"
            )));
        }
        let id = s.odata_id.trim();
        if !id.starts_with('/') || id.len() > MAX_ODATA_ID || id.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "Services: {t}: OdataID {id:?} is not a Redfish path"
            )));
        }
        if !seen.insert(t.to_string()) {
            return Err(ApiError::bad_request(format!("Services: {t} given twice")));
        }
        out.push(ServiceEndpoint {
            redfish_endpoint_id: ep.id.clone(),
            redfish_type: t.to_string(),
            redfish_subtype: String::new(),
            uuid: String::new(),
            odata_id: id.to_string(),
            fqdn: ep.fqdn.clone(),
            url: String::new(),
            service_info: s.service_info.clone(),
        });
    }
    Ok(out)
}

impl Inventory {
    /// The batch that makes endpoint `ep`'s services exactly `new`.
    pub(crate) async fn service_ops(
        &self,
        ep: &str,
        new: &[ServiceEndpoint],
    ) -> Result<Vec<Write>, Fail> {
        let key = IndexKey::new("rfep", ep);
        let mut old = records::by_id(self.store.list_all(SERVICE_ENDPOINTS, Some(&key)).await?);
        let mut ops = Vec::new();
        for se in new {
            let record = records::service_endpoint(se)?;
            let prev = old.remove(&record.id);
            // Every push carries the set again; an unchanged service costs no write.
            if prev.as_ref().is_some_and(|p| p.body == record.body) {
                continue;
            }
            ops.push(Write::Put {
                table: SERVICE_ENDPOINTS,
                record,
                prev,
            });
        }
        ops.extend(old.into_values().map(|prev| Write::Delete {
            table: SERVICE_ENDPOINTS,
            prev,
        }));
        Ok(ops)
    }

    /// Deletes of every service of endpoint `ep` (its cascade).
    pub(crate) async fn service_deletes(&self, ep: &str) -> Result<Vec<Write>, Fail> {
        self.service_ops(ep, &[]).await
    }

    /// `GET /Inventory/ServiceEndpoints[/{service}]`.
    pub async fn service_endpoints(
        &self,
        f: &ServiceFilter,
    ) -> Result<Vec<ServiceEndpoint>, ApiError> {
        let from = match (f.endpoint.include.as_slice(), f.service.include.as_slice()) {
            ([one], _) => Candidates::Index(IndexKey::new("rfep", one.clone())),
            (_, [one]) => Candidates::Index(IndexKey::new("service", one.clone())),
            _ => Candidates::All,
        };
        let found = self
            .select(SERVICE_ENDPOINTS, from, |se: &ServiceEndpoint| {
                f.matches(se)
            })
            .await?;
        self.with_urls(found).await
    }

    /// `GET /Inventory/ServiceEndpoints/{service}/RedfishEndpoints/{xname}`.
    pub async fn service_endpoint(
        &self,
        service: &str,
        xname: &str,
    ) -> Result<ServiceEndpoint, ApiError> {
        let service = service_name(service)?;
        let x = endpoint_name(xname)?;
        let r = self
            .store
            .get(SERVICE_ENDPOINTS, &format!("{x}/{service}"))
            .await?
            .ok_or_else(|| ApiError::not_found(NO_SUCH))?;
        let se = records::decode(SERVICE_ENDPOINTS, &r)?;
        let mut all = self.with_urls(vec![se]).await?;
        all.pop().ok_or_else(|| ApiError::not_found(NO_SUCH))
    }

    /// The endpoints' FQDNs now, and each service's URL from it.
    async fn with_urls(
        &self,
        mut found: Vec<ServiceEndpoint>,
    ) -> Result<Vec<ServiceEndpoint>, ApiError> {
        let ids: Vec<String> = found
            .iter()
            .map(|s| s.redfish_endpoint_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut fqdn: BTreeMap<String, String> = BTreeMap::new();
        for r in self.store.get_many(REDFISH_ENDPOINTS, &ids).await? {
            let ep: RedfishEndpoint = records::decode(REDFISH_ENDPOINTS, &r)?;
            fqdn.insert(ep.id, ep.fqdn);
        }
        for se in &mut found {
            if let Some(f) = fqdn.get(&se.redfish_endpoint_id) {
                se.fqdn = f.clone();
            }
            se.url = format!("{}{}", se.fqdn, se.odata_id);
        }
        found.sort_by(|a, b| {
            (&a.redfish_endpoint_id, &a.redfish_type)
                .cmp(&(&b.redfish_endpoint_id, &b.redfish_type))
        });
        Ok(found)
    }

    /// `DELETE /Inventory/ServiceEndpoints/{service}/RedfishEndpoints/{xname}`: as SMD, no
    /// validation; nothing there is its 404.
    pub async fn delete_service_endpoint(
        &self,
        service: &str,
        xname: &str,
    ) -> Result<(), ApiError> {
        let x = Xname::parse(xname)
            .map_or_else(|_| xname.trim().to_ascii_lowercase(), |x| x.to_string());
        let id = format!("{x}/{service}");
        let attempt = async || {
            let Some(prev) = self.store.get(SERVICE_ENDPOINTS, &id).await? else {
                return Err(Fail::Api(ApiError::not_found(NO_SUCH)));
            };
            self.store
                .write(vec![Write::Delete {
                    table: SERVICE_ENDPOINTS,
                    prev,
                }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// `DELETE /Inventory/ServiceEndpoints`: how many; none is SMD's 404.
    pub async fn delete_service_endpoints(&self) -> Result<usize, ApiError> {
        self.delete_table(SERVICE_ENDPOINTS).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ep() -> RedfishEndpoint {
        serde_json::from_value(serde_json::json!({
            "ID": "x3000c0s1b0", "Type": "NodeBMC", "FQDN": "10.1.1.2"
        }))
        .unwrap()
    }

    fn svc(t: &str, id: &str) -> Service {
        Service {
            redfish_type: t.into(),
            odata_id: id.into(),
            service_info: None,
        }
    }

    #[test]
    fn payload_services_are_checked() {
        let ok = from_payload(
            &ep(),
            &[svc("AccountService", "/redfish/v1/AccountService")],
        );
        assert_eq!(ok.unwrap()[0].redfish_endpoint_id, "x3000c0s1b0");
        for bad in [
            svc("Account Service", "/redfish/v1/AccountService"),
            svc("", "/x"),
            svc("TaskService", "redfish/v1/TaskService"),
            svc("TaskService", "/redfish/v1/\nTaskService"),
        ] {
            assert!(
                from_payload(&ep(), std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        let twice = [svc("EventService", "/a"), svc("EventService", "/b")];
        assert!(from_payload(&ep(), &twice).is_err());
        let many: Vec<Service> = (0..40).map(|i| svc(&format!("S{i}"), "/x")).collect();
        assert!(from_payload(&ep(), &many).is_err());
    }

    #[test]
    fn filters_take_smds_values() {
        let q = QueryParams::parse("service=AccountService&redfish_ep=!X3000C0S1B0");
        let f = ServiceFilter::parse(&q).unwrap();
        assert_eq!(f.endpoint.exclude, ["x3000c0s1b0"]);
        for bad in ["service=Account-Service", "redfish_ep=FAKE", "service="] {
            let e = ServiceFilter::parse(&QueryParams::parse(bad)).unwrap_err();
            assert!(e.detail().starts_with("Argument was not a valid"), "{bad}");
        }
    }
}
