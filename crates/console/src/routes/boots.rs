//! The boot board and its live fragment.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use skyport_boot::flight;
use skyport_http::ApiError;
use skyport_inventory::Inventory;
use skyport_model::now_ms;

use crate::pages::{self, Nav};
use crate::{Console, Place, board, fragment};

#[derive(Deserialize, Default)]
pub(crate) struct BoardQuery {
    #[serde(default)]
    site: String,
    #[serde(default)]
    group: String,
}

impl Console {
    /// The board of the nodes `q` names: a site's (the edge: its own) and a group's members.
    async fn board(&self, q: &BoardQuery) -> Result<board::Board, ApiError> {
        let site = (!q.site.is_empty() && self.edge().is_none()).then_some(q.site.as_str());
        let mut nodes = flight::progress(self.store.as_ref(), site).await?;
        if !q.group.is_empty() {
            let members = skyport_inventory::reads::group_members(
                self.store.as_ref(),
                std::slice::from_ref(&q.group),
            )
            .await?;
            let Some(m) = members.get(&q.group) else {
                return Err(ApiError::not_found(format!("no such group: {}", q.group)));
            };
            let m: std::collections::HashSet<&str> = m.iter().map(String::as_str).collect();
            nodes.retain(|p| m.contains(p.node.as_str()));
        }
        Ok(board::board(
            &nodes,
            now_ms(),
            flight::STUCK_AFTER_S,
            board::MAX_CELLS,
        ))
    }

    async fn scopes(&self) -> (Vec<String>, Vec<String>) {
        let sites = match &self.place {
            Place::Edge(_) => Vec::new(),
            _ => self
                .registry()
                .list()
                .await
                .map(|l| l.into_iter().map(|s| s.name).collect())
                .unwrap_or_default(),
        };
        let groups = Inventory::new(self.store.clone())
            .group_labels()
            .await
            .unwrap_or_default();
        (sites, groups)
    }
}

pub(crate) async fn boots(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<BoardQuery>,
) -> Response {
    let v = match c.viewer(&headers, "/console/boots").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let b = match c.board(&q).await {
        Ok(b) => b,
        Err(e) => return c.fail(Some(&v), &e),
    };
    let (sites, groups) = c.scopes().await;
    let scope = pages::Scope {
        site: (!q.site.is_empty()).then_some(q.site.as_str()),
        group: (!q.group.is_empty()).then_some(q.group.as_str()),
        sites: &sites,
        groups: &groups,
    };
    c.render(
        "Boot board",
        Nav::Boots,
        Some(&v),
        pages::boots(&scope, &b, now_ms() / 1000),
    )
}

pub(crate) async fn boots_live(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<BoardQuery>,
) -> Response {
    if let Err(r) = c.viewer(&headers, "/console/boots").await {
        return r;
    }
    match c.board(&q).await {
        Ok(b) => fragment(pages::board_live(&b, now_ms() / 1000)),
        Err(e) => e.into_response(),
    }
}
