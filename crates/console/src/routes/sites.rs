//! The Sites page: each site's agent as it last reported (at an edge: the agent itself).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use skyport_http::ApiError;
use skyport_model::now_ms;

use crate::pages::{self, Nav};
use crate::{Console, Place};

pub(crate) async fn sites(State(c): State<Console>, headers: HeaderMap) -> Response {
    let v = match c.viewer(&headers, "/console/sites").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = now_ms() / 1000;
    let rows = match &c.place {
        Place::Edge(e) => {
            let (heard, silent) = e.cloud_heard();
            vec![pages::SiteRow {
                name: e.site(),
                registered: true,
                status: Some(e.status().await),
                assigned: 0,
                heard_s: heard,
                silent_after_s: silent,
            }]
        }
        _ => {
            let reg = c.registry();
            match reg.list().await {
                Ok(l) => l
                    .into_iter()
                    .map(|s| pages::SiteRow {
                        heard_s: s
                            .status
                            .as_ref()
                            .map(|st| st.reported_at)
                            .filter(|t| *t > 0)
                            .map(|t| now - t),
                        silent_after_s: crate::AGENT_SILENT_S,
                        name: s.name,
                        registered: s.registered,
                        status: s.status,
                        assigned: s.assigned,
                    })
                    .collect(),
                Err(e) => return c.fail(Some(&v), &ApiError::Unavailable(e.to_string())),
            }
        }
    };
    c.render(
        "Sites",
        Nav::Sites,
        Some(&v),
        pages::sites(&rows, c.edge().is_some()),
    )
}
