//! A node's page, its live parts, power actions (confirmed first) and the job page.

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use skyport_boot::flight;
use skyport_http::ApiError;
use skyport_inventory::Inventory;

use crate::pages::{self, Nav};
use crate::session::Level;
use crate::{Console, Place, fragment};

/// A node named in a path: an xname (normalised) or a MAC (canonical).
pub(crate) fn node_name(s: &str) -> Result<String, ApiError> {
    if let Ok(x) = skyport_model::Xname::parse(s) {
        return Ok(x.to_string());
    }
    if let Ok(m) = skyport_model::Mac::parse(s) {
        return Ok(m.to_string());
    }
    Err(ApiError::bad_request(format!(
        "{s:?} is neither an xname nor a MAC"
    )))
}

/// How many boots the node page shows.
pub(crate) const BOOTS_SHOWN: usize = 3;
/// How many jobs the node page shows.
pub(crate) const JOBS_SHOWN: usize = 10;

impl Console {
    async fn node_boots(
        &self,
        node: &str,
        macs: &[String],
    ) -> Result<Vec<Vec<flight::BootEvent>>, ApiError> {
        let mut events = flight::timeline(self.store.as_ref(), node).await?;
        // Events from before the inventory knew the node are kept under its MACs.
        for m in macs {
            if m != node {
                events.extend(flight::timeline(self.store.as_ref(), m).await?);
            }
        }
        events.sort_by_key(|e| e.at_ms);
        events.dedup();
        Ok(flight::boots(&events)
            .into_iter()
            .rev()
            .take(BOOTS_SHOWN)
            .map(<[_]>::to_vec)
            .collect())
    }

    async fn node_jobs(&self, xname: &str) -> Result<Vec<skyport_power::JobView>, ApiError> {
        if self.edge().is_some() {
            return Ok(Vec::new());
        }
        let mut jobs: Vec<_> = skyport_power::Jobs::new(self.store.clone())
            .list()
            .await?
            .into_iter()
            .filter(|j| j.tasks.iter().any(|t| t.xname == xname))
            .collect();
        jobs.sort_by(|a, b| {
            b.job
                .created
                .cmp(&a.job.created)
                .then(b.job.id.cmp(&a.job.id))
        });
        jobs.truncate(JOBS_SHOWN);
        Ok(jobs)
    }

    async fn node_page(&self, node: &str) -> Result<pages::NodePage, ApiError> {
        let inv = Inventory::new(self.store.clone());
        let (xname, mac_only) = match skyport_model::Mac::parse(node) {
            Ok(m) => (
                skyport_inventory::reads::interface_owner(self.store.as_ref(), &m).await?,
                Some(m.to_string()),
            ),
            Err(_) => (Some(node.to_string()), None),
        };
        let component = match &xname {
            Some(x) => match inv.get_component(x).await {
                Ok((c, _)) => Some(c),
                Err(ApiError::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let mut interfaces = Vec::new();
        if let Some(x) = xname
            .as_deref()
            .and_then(|x| skyport_model::Xname::parse(x).ok())
        {
            for i in inv
                .list_interfaces(&skyport_inventory::ethernet::InterfaceFilter::by_component(
                    &x,
                ))
                .await?
            {
                interfaces.push((
                    i.mac_address.clone(),
                    i.ip_addresses
                        .iter()
                        .map(|a| a.ip_address.clone())
                        .collect(),
                ));
            }
        }
        if interfaces.is_empty()
            && let Some(m) = &mac_only
        {
            interfaces.push((m.clone(), Vec::new()));
        }
        let macs: Vec<String> = interfaces.iter().map(|(m, _)| m.clone()).collect();
        let shown = xname.clone().unwrap_or_else(|| node.to_string());
        let hardware = match &xname {
            Some(x) if component.is_some() => match inv.hardware_get(x).await {
                Ok(hw) => Some(hardware_summary(&hw)),
                Err(ApiError::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let site = match (&self.place, &xname) {
            (Place::Edge(e), _) => Some(e.site()),
            (_, Some(x)) => match skyport_model::Xname::parse(x) {
                Ok(p) => skyport_sites::ownership::owner(self.store.as_ref(), &p)
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?
                    .map(|(_, a)| a.site),
                Err(_) => None,
            },
            _ => None,
        };
        let boot = match &component {
            Some(c) => self.boot_view(&c.id, macs.first()).await?,
            None => None,
        };
        let power = if self.edge().is_none() && component.is_some() {
            skyport_power::Jobs::new(self.store.clone())
                .power_status(Some(std::slice::from_ref(&shown)))
                .await?
                .into_iter()
                .next()
                .map(|s| (s.power.as_str().to_string(), s.updated, s.error))
        } else {
            None
        };
        Ok(pages::NodePage {
            boots: self.node_boots(&shown, &macs).await?,
            jobs: self.node_jobs(&shown).await?,
            node: shown,
            component,
            site,
            interfaces,
            hardware,
            boot,
            power,
            can_power: self.edge().is_none(),
        })
    }

    /// What the node boots: the choice, and the script it gets when it asks as it does (by its
    /// MAC, as its DHCP boot file makes it ask; by name without one).
    async fn boot_view(
        &self,
        xname: &str,
        mac: Option<&String>,
    ) -> Result<Option<pages::BootView>, ApiError> {
        let ex = self
            .boot
            .explain(xname)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let Some(chosen) = ex.chosen else {
            return Ok(None);
        };
        let req = skyport_boot::ScriptRequest {
            mac: mac.cloned(),
            name: mac.is_none().then(|| xname.to_string()),
            ..Default::default()
        };
        let asked_as = match mac {
            Some(m) => format!("mac={m}"),
            None => format!("name={xname}"),
        };
        let outcome = self
            .boot
            .render(&req)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let params = match &outcome {
            skyport_boot::ScriptOutcome::Known { params, .. } => params.clone(),
            _ => String::new(),
        };
        let rule = match chosen.rule {
            skyport_boot::resources::script::Rule::OwnEntry => {
                format!("its own boot parameters ({})", chosen.name)
            }
            skyport_boot::resources::script::Rule::Score(s) => {
                format!("BootConfiguration {} (score {s})", chosen.name)
            }
            skyport_boot::resources::script::Rule::Fallback => {
                format!("the fallback entry {}", chosen.name)
            }
        };
        Ok(Some(pages::BootView {
            rule,
            kernel: chosen.kernel,
            params,
            script: outcome.script().to_string(),
            asked_as,
        }))
    }
}

/// The facts of a node's hardware entry worth a line each.
pub(crate) fn hardware_summary(hw: &skyport_wire::hwinv::HwInvByLoc) -> serde_json::Value {
    let v = serde_json::to_value(hw).unwrap_or_default();
    let mut out = serde_json::Map::new();
    for k in ["Type", "Status"] {
        if let Some(x) = v.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    if let Some(info) = v.get("NodeLocationInfo").and_then(|i| i.as_object()) {
        for (k, x) in info {
            if x.is_string() || x.is_number() {
                out.insert(k.clone(), x.clone());
            }
        }
    }
    if let Some(fru) = v
        .get("PopulatedFRU")
        .and_then(|f| f.get("NodeFRUInfo"))
        .and_then(|i| i.as_object())
    {
        for k in [
            "Manufacturer",
            "Model",
            "SerialNumber",
            "PartNumber",
            "BiosVersion",
        ] {
            if let Some(x) = fru
                .get(k)
                .filter(|x| x.as_str().is_some_and(|s| !s.is_empty()))
            {
                out.insert(k.into(), x.clone());
            }
        }
    }
    serde_json::Value::Object(out)
}

pub(crate) async fn node(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Response {
    let path = format!("/console/nodes/{}", pages::enc(&node));
    let v = match c.viewer(&headers, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let page = match node_name(&node) {
        Ok(n) => c.node_page(&n).await,
        Err(e) => Err(e),
    };
    match page {
        Ok(p) => c.render(
            &format!("Node {}", p.node),
            Nav::None,
            Some(&v),
            pages::node(&p, &v),
        ),
        Err(e) => c.fail(Some(&v), &e),
    }
}

pub(crate) async fn node_boots(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Response {
    if let Err(r) = c.viewer(&headers, "/console/boots").await {
        return r;
    }
    let r = async {
        let n = node_name(&node)?;
        let macs = match skyport_model::Xname::parse(&n) {
            Ok(x) => Inventory::new(c.store.clone())
                .list_interfaces(&skyport_inventory::ethernet::InterfaceFilter::by_component(
                    &x,
                ))
                .await?
                .into_iter()
                .map(|i| i.mac_address)
                .collect(),
            Err(_) => Vec::new(),
        };
        c.node_boots(&n, &macs).await
    }
    .await;
    match r {
        Ok(b) => fragment(pages::timelines(&b)),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct PowerQuery {
    #[serde(default)]
    op: String,
}

pub(crate) fn power_action(
    op: &str,
) -> Option<(skyport_power::Action, &'static str, &'static str)> {
    let (_, label, what) = pages::POWER_ACTIONS.iter().find(|(o, _, _)| *o == op)?;
    // The command line's verbs (`skyport power on|off|reset|cycle`), one mapping for both.
    let (verb, boot) = match op {
        "reset-pxe" => ("reset", Some(skyport_power::BootTarget::Pxe)),
        v => (v, None),
    };
    let operation = skyport_power::operation_for(verb, false, false)?;
    Some((
        skyport_power::Action::Power { operation, boot },
        label,
        what,
    ))
}

pub(crate) async fn confirm_power(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(node): Path<String>,
    Query(q): Query<PowerQuery>,
) -> Response {
    let path = format!("/console/nodes/{}", pages::enc(&node));
    let v = match c.viewer(&headers, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let checked = node_name(&node).and_then(|n| {
        if c.edge().is_some() {
            return Err(ApiError::Forbidden(
                "power actions are taken through the cloud's console".into(),
            ));
        }
        let (_, label, what) = power_action(&q.op).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown power action {:?} (on, off, reset, reset-pxe, cycle)",
                q.op
            ))
        })?;
        Ok((n, label, what))
    });
    match checked {
        Ok((n, label, what)) => c.render(
            &format!("{label} {n}"),
            Nav::None,
            Some(&v),
            pages::confirm_power(&n, &q.op, label, what, &v),
        ),
        Err(e) => c.fail(Some(&v), &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PowerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
}

pub(crate) async fn power(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(node): Path<String>,
    Form(f): Form<PowerForm>,
) -> Response {
    let path = format!("/console/nodes/{}", pages::enc(&node));
    let v = match c.actor(&headers, &f.csrf, Level::Write, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = async {
        let n = node_name(&node)?;
        let (action, _, _) = power_action(&f.op)
            .ok_or_else(|| ApiError::bad_request(format!("unknown power action {:?}", f.op)))?;
        c.create_job(&v, action, n, skyport_power::jobs::DEFAULT_SETTLE_S)
            .await
    }
    .await;
    c.to_job(&v, r)
}

impl Console {
    /// A job on `xname` for the viewer (power and discovery are the cloud's: an edge refuses).
    pub(crate) async fn create_job(
        &self,
        v: &crate::session::Viewer,
        action: skyport_power::Action,
        xname: String,
        settle_s: u64,
    ) -> Result<String, ApiError> {
        if self.edge().is_some() {
            return Err(ApiError::Forbidden(
                "jobs on hardware are created through the cloud's console".into(),
            ));
        }
        let job = skyport_power::Jobs::new(self.store.clone())
            .create(skyport_power::NewJob {
                action,
                xnames: vec![xname.clone()],
                start_within_s: skyport_power::jobs::DEFAULT_START_WITHIN_S,
                settle_s,
                created_by: if v.who.is_empty() {
                    "console".into()
                } else {
                    v.who.clone()
                },
            })
            .await?;
        tracing::info!(xname = %xname, job = %job.job.id, action = %job.job.action,
            who = %v.who, "console: job created");
        Ok(job.job.id)
    }

    /// The job's page after creating it, or what went wrong.
    pub(crate) fn to_job(
        &self,
        v: &crate::session::Viewer,
        r: Result<String, ApiError>,
    ) -> Response {
        match r {
            Ok(id) => Redirect::to(&format!("/console/jobs/{}", pages::enc(&id))).into_response(),
            Err(e) => self.fail(Some(v), &e),
        }
    }
}

pub(crate) async fn job(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let v = match c
        .viewer(&headers, &format!("/console/jobs/{}", pages::enc(&id)))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match skyport_power::Jobs::new(c.store.clone()).get(&id).await {
        Ok(j) => c.render(&format!("Job {id}"), Nav::None, Some(&v), pages::job(&j)),
        Err(e) => c.fail(Some(&v), &ApiError::from(e)),
    }
}

pub(crate) async fn job_live(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = c.viewer(&headers, "/console/boots").await {
        return r;
    }
    match skyport_power::Jobs::new(c.store.clone()).get(&id).await {
        Ok(j) => fragment(pages::job_live(&j)),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyport_power::{Action, BootTarget, Operation};

    #[test]
    fn the_offered_power_actions_are_the_command_lines_verbs() {
        let op = |o: &str| power_action(o).map(|(a, _, _)| a);
        assert_eq!(
            op("reset-pxe"),
            Some(Action::Power {
                operation: Operation::HardRestart,
                boot: Some(BootTarget::Pxe)
            })
        );
        assert_eq!(
            op("cycle"),
            Some(Action::Power {
                operation: Operation::Init,
                boot: None
            })
        );
        for (o, _, _) in pages::POWER_ACTIONS {
            assert!(op(o).is_some(), "{o}");
        }
        assert_eq!(op("explode"), None);
        assert_eq!(op("force-off"), None);
    }
}
