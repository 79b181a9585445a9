//! The operator console: server-rendered pages (no JavaScript build, a few KB of assets compiled
//! in, nothing from a CDN, since an edge agent may be cut off) of a site and its boots, served
//! under `/console` by `skyport serve`, by the cloud's boot function, and by each edge agent for
//! its own site from its copy:
//!
//! - **Boot board** (`/console/boots`): one cell per node coloured by the stage the boot flight
//!   recorder last saw, stuck nodes first, counts per stage and times to phone home; the board
//!   refreshes itself every two seconds (polling a fragment: API Gateway's HTTP APIs cannot
//!   stream, so the same mechanism serves all three places);
//! - **Node** (`/console/nodes/{xname|mac}`): identity, health, hardware, what it boots and the
//!   exact script, its last boots' timelines, power state, power actions (confirmed first) and
//!   its jobs;
//! - **Sites** and **Discovery**: each agent's version, last sync, outbox and cache, whether it
//!   is heard from; BMCs with their last discovery status, discovery again, and at an edge the
//!   results still waiting for the cloud.
//!
//! Access follows the API's scopes ([`session`]): the routes (one module per page under
//! `routes/`) are anonymous to the API's auth layer and check the console's own session instead
//! (a browser sends a cookie, not a bearer header); the markup is in [`pages`].

pub mod board;
pub mod config;
pub mod pages;
mod routes;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use skyport_boot::BootService;
use skyport_http::ApiError;
use skyport_http::access::Access;
use skyport_store::Store;

use crate::pages::{Frame, Nav};
use crate::session::{Level, Refused, Viewer};

pub use config::{ConsoleConfigError, ConsoleSettings, sign_in};
pub use session::{OAuthClient, SignIn};

/// Where the console lives.
pub const BASE: &str = "/console";
/// How often the live parts of a page refresh, in milliseconds (the script reads it).
pub const REFRESH_MS: u32 = 2000;
/// An agent not heard from for this long is shown unreachable (it reports every minute).
pub const AGENT_SILENT_S: i64 = 180;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// Who may call the console's routes, for the API's auth layer: anyone, since each page checks
/// the console session itself.
pub fn access(_: &Method, route: &str) -> Option<Access> {
    (route == BASE || route.starts_with("/console/")).then_some(Access::Public)
}

/// What an edge agent tells its console about itself.
#[async_trait::async_trait]
pub trait EdgeSide: Send + Sync {
    /// Its site's name.
    fn site(&self) -> String;
    /// Its state, as it would report it to the cloud.
    async fn status(&self) -> skyport_sites::EdgeStatus;
    /// How long ago the cloud last answered a sync, in seconds (`None`: never), and the silence
    /// beyond which it counts as unreachable.
    fn cloud_heard(&self) -> (Option<i64>, i64);
    /// The discovery results waiting for the cloud.
    async fn outbox(&self) -> Result<Vec<pages::OutboxRow>, EdgeSideError>;
    /// Makes every waiting result due now; how many.
    async fn retry_outbox(&self) -> Result<usize, EdgeSideError>;
}

/// An edge agent could not answer its console.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct EdgeSideError {
    pub what: &'static str,
    pub reason: String,
}

/// Where the console runs, which decides its data sources and what it may do.
#[derive(Clone)]
pub enum Place {
    /// The local server: the whole installation, power through jobs.
    Local,
    /// The cloud: the same, signed in through the authorization server.
    Cloud,
    /// A site's agent over its copy: its own nodes, no power actions.
    Edge(Arc<dyn EdgeSide>),
}

/// The console over a store.
#[derive(Clone)]
pub struct Console {
    store: Arc<dyn Store>,
    boot: BootService,
    place: Place,
    sign_in: SignIn,
}

impl Console {
    /// `boot` renders the exact scripts shown (its settings are the server's own); `sign_in`
    /// says how people sign in.
    pub fn new(store: Arc<dyn Store>, boot: BootService, place: Place, sign_in: SignIn) -> Self {
        Self {
            store,
            boot,
            place,
            sign_in,
        }
    }

    /// The console's routes (merge them outside the API's auth layer, or declare [`access`]).
    pub fn router(self) -> Router {
        Router::new()
            .route(BASE, get(|| async { Redirect::to("/console/boots") }))
            .route("/console/assets/{file}", get(asset))
            .route(
                "/console/login",
                get(routes::signin::login_page).post(routes::signin::login_token),
            )
            .route("/console/login/start", get(routes::signin::login_start))
            .route("/console/callback", get(routes::signin::callback))
            .route("/console/logout", post(routes::signin::logout))
            .route("/console/boots", get(routes::boots::boots))
            .route("/console/boots/live", get(routes::boots::boots_live))
            .route("/console/sites", get(routes::sites::sites))
            .route("/console/nodes/{node}", get(routes::node::node))
            .route("/console/nodes/{node}/boots", get(routes::node::node_boots))
            .route(
                "/console/nodes/{node}/power",
                get(routes::node::confirm_power).post(routes::node::power),
            )
            .route("/console/jobs/{id}", get(routes::node::job))
            .route("/console/jobs/{id}/live", get(routes::node::job_live))
            .route("/console/discovery", get(routes::discovery::discovery))
            .route(
                "/console/discovery/discover",
                post(routes::discovery::discover),
            )
            .route(
                "/console/discovery/retry",
                post(routes::discovery::retry_outbox),
            )
            .with_state(self)
    }

    fn place_name(&self) -> String {
        match &self.place {
            Place::Local => "local".into(),
            Place::Cloud => "cloud".into(),
            Place::Edge(e) => format!("edge site {}", e.site()),
        }
    }

    fn read_only(&self, v: &Viewer) -> bool {
        matches!(self.place, Place::Edge(_)) && v.level < Level::Admin
    }

    /// The site registry, for reading (the console creates no credentials).
    fn registry(&self) -> skyport_sites::Registry {
        skyport_sites::Registry::new(
            self.store.clone(),
            Arc::new(skyport_sites::NoCredentials(
                "the console creates no credentials",
            )),
        )
    }

    fn edge(&self) -> Option<&Arc<dyn EdgeSide>> {
        match &self.place {
            Place::Edge(e) => Some(e),
            _ => None,
        }
    }

    fn render(&self, title: &str, nav: Nav, viewer: Option<&Viewer>, body: Markup) -> Response {
        let place = self.place_name();
        let frame = Frame {
            title,
            nav,
            viewer,
            place: &place,
            read_only: viewer.is_some_and(|v| self.read_only(v)),
            sign_in_offered: matches!(self.sign_in, SignIn::EdgeAdmin(Some(_))),
        };
        html(StatusCode::OK, pages::page(&frame, body))
    }

    fn fail(&self, viewer: Option<&Viewer>, e: &ApiError) -> Response {
        let status = e.status();
        let mut r = self.render(
            status.canonical_reason().unwrap_or("Error"),
            Nav::None,
            viewer,
            pages::problem(status.canonical_reason().unwrap_or("Error"), &e.to_string()),
        );
        *r.status_mut() = status;
        r
    }

    /// The viewer, or the response that replaces the page (sign in, forbidden).
    async fn viewer(&self, headers: &HeaderMap, path: &str) -> Result<Viewer, Response> {
        match session::viewer(&self.sign_in, headers).await {
            Ok(v) => Ok(v),
            Err(Refused::SignIn(msg)) => {
                if headers.get("x-console-live").is_some() {
                    // A live refresh after the session ended: the script tells the person.
                    return Err(StatusCode::UNAUTHORIZED.into_response());
                }
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("next", path);
                if !msg.is_empty() {
                    tracing::info!(reason = %msg, "console session refused");
                    q.append_pair("message", "ended");
                }
                Err(Redirect::to(&format!("/console/login?{}", q.finish())).into_response())
            }
            Err(Refused::Forbidden(msg)) => Err(self.fail(None, &ApiError::Forbidden(msg))),
            Err(Refused::Unavailable(msg)) => Err(self.fail(None, &ApiError::Unavailable(msg))),
        }
    }

    /// The viewer of a form post that acts, at `need` or above, from the console's own pages.
    async fn actor(
        &self,
        headers: &HeaderMap,
        csrf: &str,
        need: Level,
        path: &str,
    ) -> Result<Viewer, Response> {
        let v = self.viewer(headers, path).await?;
        if !session::same_origin(headers) || !session::same_secret(&v.csrf, csrf) {
            return Err(self.fail(
                Some(&v),
                &ApiError::Forbidden(
                    "this form did not come from this console's own page: reload it and try again"
                        .into(),
                ),
            ));
        }
        if v.level < need {
            return Err(self.fail(
                Some(&v),
                &ApiError::Forbidden(format!(
                    "this needs skyport/{}; you may {}",
                    need.as_str(),
                    v.level.as_str()
                )),
            ));
        }
        Ok(v)
    }

    /// Whether cookies are marked `Secure`: in the cloud always (API Gateway speaks only HTTPS,
    /// and a cookie sent once over plain HTTP would give the token away), elsewhere when the
    /// console's own callback is HTTPS.
    fn secure(&self) -> bool {
        matches!(self.place, Place::Cloud)
            || matches!(&self.sign_in, SignIn::OAuth(_, c) if c.redirect_uri.starts_with("https://"))
    }
}

fn html(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, m.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Only our own assets run; nothing loads from elsewhere; no other site may frame us.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn fragment(m: Markup) -> Response {
    let mut r = m.into_string().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
