//! The Discovery page: BMCs and their last discovery, discovery again, and an edge's queued
//! results with their retry.

use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use skyport_http::ApiError;
use skyport_inventory::Inventory;

use crate::Console;
use crate::pages::{self, Nav};
use crate::session::Level;

pub(crate) async fn discovery(State(c): State<Console>, headers: HeaderMap) -> Response {
    let v = match c.viewer(&headers, "/console/discovery").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = async {
        let inv = Inventory::new(c.store.clone());
        let owners = match c.edge() {
            Some(_) => None,
            None => Some(
                skyport_sites::ownership::Ownership::load(c.store.as_ref())
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?,
            ),
        };
        let mut endpoints: Vec<pages::EndpointRow> = inv
            .list_endpoints(&Default::default())
            .await?
            .into_iter()
            .map(|e| pages::EndpointRow {
                site: match (&owners, c.edge()) {
                    (Some(o), _) => o.site_of(&e.id).map(str::to_string),
                    (None, Some(edge)) => Some(edge.site()),
                    _ => None,
                },
                address: if e.fqdn.is_empty() {
                    e.hostname.clone()
                } else {
                    e.fqdn.clone()
                },
                status: e.discovery_info.last_discovery_status.clone(),
                attempted: e.discovery_info.last_discovery_attempt.clone(),
                id: e.id,
            })
            .collect();
        endpoints.sort_by(|a, b| {
            (a.status == "DiscoverOK", &a.id).cmp(&(b.status == "DiscoverOK", &b.id))
        });
        let (outbox, depths, jobs) = match c.edge() {
            Some(e) => (
                Some(
                    e.outbox()
                        .await
                        .map_err(|e| ApiError::Unavailable(e.to_string()))?,
                ),
                Vec::new(),
                Vec::new(),
            ),
            None => {
                let reg = c.registry();
                let depths = reg
                    .list()
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?
                    .into_iter()
                    .filter_map(|s| s.status.map(|st| (s.name, st.outbox_depth)))
                    .collect();
                let mut jobs: Vec<_> = skyport_power::Jobs::new(c.store.clone())
                    .list()
                    .await?
                    .into_iter()
                    .filter(|j| j.job.action == skyport_power::Action::Discover)
                    .collect();
                jobs.sort_by_key(|j| std::cmp::Reverse(j.job.created));
                jobs.truncate(crate::routes::node::JOBS_SHOWN);
                (None, depths, jobs)
            }
        };
        Ok::<_, ApiError>(pages::DiscoveryPage {
            endpoints,
            jobs,
            outbox,
            depths,
        })
    }
    .await;
    match r {
        Ok(d) => c.render(
            "Discovery",
            Nav::Discovery,
            Some(&v),
            pages::discovery(&d, &v, c.edge().is_none()),
        ),
        Err(e) => c.fail(Some(&v), &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DiscoverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    bmc: String,
}

pub(crate) async fn discover(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<DiscoverForm>,
) -> Response {
    let v = match c
        .actor(&headers, &f.csrf, Level::Write, "/console/discovery")
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = async {
        let x = skyport_model::Xname::parse(&f.bmc)
            .map_err(|e| ApiError::bad_request(format!("{:?}: {e}", f.bmc)))?;
        c.create_job(&v, skyport_power::Action::Discover, x.to_string(), 0)
            .await
    }
    .await;
    c.to_job(&v, r)
}

pub(crate) async fn retry_outbox(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<crate::routes::signin::CsrfForm>,
) -> Response {
    let v = match c
        .actor(&headers, &f.csrf, Level::Admin, "/console/discovery")
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(e) = c.edge() else {
        return c.fail(
            Some(&v),
            &ApiError::bad_request("results wait at the sites' agents: retry them there"),
        );
    };
    match e.retry_outbox().await {
        Ok(n) => {
            tracing::info!(results = n, "console: queued discovery results made due");
            Redirect::to("/console/discovery").into_response()
        }
        Err(err) => c.fail(Some(&v), &ApiError::Unavailable(err.to_string())),
    }
}
