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
//! Access follows the API's scopes ([`session`]): the routes are anonymous to the API's auth
//! layer and check the console's own session instead (a browser sends a cookie, not a bearer
//! header).

pub mod board;
pub mod config;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use skyport_boot::BootService;
use skyport_boot::flight;
use skyport_http::ApiError;
use skyport_http::access::Access;
use skyport_inventory::Inventory;
use skyport_model::now_ms;
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
            .route("/console/login", get(login_page).post(login_token))
            .route("/console/login/start", get(login_start))
            .route("/console/callback", get(callback))
            .route("/console/logout", post(logout))
            .route("/console/boots", get(boots))
            .route("/console/boots/live", get(boots_live))
            .route("/console/sites", get(sites))
            .route("/console/nodes/{node}", get(node))
            .route("/console/nodes/{node}/boots", get(node_boots))
            .route("/console/nodes/{node}/jobs", get(node_jobs))
            .route(
                "/console/nodes/{node}/power",
                get(confirm_power).post(power),
            )
            .route("/console/jobs/{id}", get(job))
            .route("/console/jobs/{id}/live", get(job_live))
            .route("/console/discovery", get(discovery))
            .route("/console/discovery/discover", post(discover))
            .route("/console/discovery/retry", post(retry_outbox))
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
                    q.append_pair("message", &msg);
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

    fn secure(&self) -> bool {
        match &self.sign_in {
            SignIn::OAuth(_, c) => c.redirect_uri.starts_with("https://"),
            _ => false,
        }
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

// ---- signing in ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    message: String,
}

/// Only the console's own pages are places to go back to after signing in.
fn safe_next(next: &str) -> &str {
    if next.starts_with("/console/") && !next.starts_with("/console//") && !next.contains('\\') {
        next
    } else {
        "/console/boots"
    }
}

const TOKEN_HINT: &str = "A token from <code>skyport token --scope read</code> (or write, admin) on the server's machine.";
const EDGE_HINT: &str = "The agent's admin token (its <code>console_admin_token_file</code>).";

async fn login_page(State(c): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(&q.next);
    let (oauth, hint) = match &c.sign_in {
        SignIn::OAuth(..) => (true, ""),
        SignIn::EdgeAdmin(None) => {
            return c.render(
                "Sign in",
                Nav::None,
                None,
                pages::problem(
                    "Read-only",
                    "This agent has no admin token configured: its console only shows.",
                ),
            );
        }
        SignIn::EdgeAdmin(Some(_)) => (false, EDGE_HINT),
        SignIn::Off => return Redirect::to(next).into_response(),
        SignIn::Token(_) => (false, TOKEN_HINT),
    };
    // What the message says is shown as text (escaped), never as markup.
    let msg: String = q.message.chars().take(300).collect();
    c.render(
        "Sign in",
        Nav::None,
        None,
        pages::login(&msg, oauth, next, hint),
    )
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

async fn login_token(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let again = |msg: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("next", safe_next(&f.next));
        q.append_pair("message", msg);
        Redirect::to(&format!("/console/login?{}", q.finish())).into_response()
    };
    if !session::same_origin(&headers) {
        return again("That sign-in did not come from this console's page.");
    }
    let token = f.token.trim();
    if !session::cookie_safe(token) {
        return again("That is not a token.");
    }
    // Checked now, so a wrong token is said at once rather than on the next page.
    let mut probe = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}={token}", session::COOKIE)) {
        probe.insert(header::COOKIE, v);
    }
    match session::viewer(&c.sign_in, &probe).await {
        Ok(v) if v.signed_in => {}
        Ok(_) => return again("That is not this agent's admin token."),
        Err(Refused::SignIn(m) | Refused::Forbidden(m) | Refused::Unavailable(m)) => {
            return again(if m.is_empty() {
                "That token is not valid here."
            } else {
                &m
            });
        }
    }
    let mut r = Redirect::to(safe_next(&f.next)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, token, c.secure(), None),
    );
    r
}

async fn login_start(State(c): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    let SignIn::OAuth(_, client) = &c.sign_in else {
        return Redirect::to("/console/login").into_response();
    };
    let (Ok(state), Ok(verifier)) = (session::random_url_safe(24), session::random_url_safe(48))
    else {
        return c.fail(
            None,
            &ApiError::Internal("no randomness for the sign-in".into()),
        );
    };
    // The state carries where to go back to; the cookie ties the callback to this browser.
    let next = safe_next(&q.next);
    let value = format!("{state}.{verifier}.{}", base64_url(next));
    let mut r = Redirect::to(&client.authorize_url(&state, &verifier)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::PKCE_COOKIE, &value, c.secure(), Some(600)),
    );
    r
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[derive(Deserialize)]
struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

async fn callback(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    use base64::Engine;
    let SignIn::OAuth(_, client) = &c.sign_in else {
        return Redirect::to("/console/login").into_response();
    };
    let again = |msg: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("message", msg);
        Redirect::to(&format!("/console/login?{}", q.finish())).into_response()
    };
    if !q.error.is_empty() {
        return again(&format!("The sign-in was refused: {}", q.error));
    }
    let pkce = session::cookie(&headers, session::PKCE_COOKIE).unwrap_or_default();
    let mut parts = pkce.splitn(3, '.');
    let (Some(state), Some(verifier), next) = (parts.next(), parts.next(), parts.next()) else {
        return again("The sign-in took too long or started in another browser. Try again.");
    };
    if q.code.is_empty() || !session::same_secret(state, &q.state) {
        return again("The sign-in took too long or started in another browser. Try again.");
    }
    let next = next
        .and_then(|n| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let token = match client.exchange(&q.code, verifier).await {
        Ok(t) if session::cookie_safe(&t) => t,
        Ok(_) => return again("The authorization server sent a token this console cannot keep."),
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in: code exchange failed");
            return again(&format!("The sign-in could not be completed: {e}"));
        }
    };
    let mut r = Redirect::to(safe_next(&next)).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, &token, c.secure(), None),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::PKCE_COOKIE, "", c.secure(), None),
    );
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(c): State<Console>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = c
        .actor(&headers, &f.csrf, Level::Read, "/console/boots")
        .await
    {
        return r;
    }
    let mut r = Redirect::to("/console/login?message=Signed+out.").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, "", c.secure(), None),
    );
    r
}

// ---- boot board --------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct BoardQuery {
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
        Ok(board::board(&nodes, now_ms(), flight::STUCK_AFTER_S))
    }

    async fn scopes(&self) -> (Vec<String>, Vec<String>) {
        let sites = match &self.place {
            Place::Edge(_) => Vec::new(),
            _ => skyport_sites::Registry::new(
                self.store.clone(),
                Arc::new(skyport_sites::NoCredentials(
                    "the console creates no credentials",
                )),
            )
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

async fn boots(
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

async fn boots_live(
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

// ---- sites -------------------------------------------------------------------------------------

async fn sites(State(c): State<Console>, headers: HeaderMap) -> Response {
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
            let reg = skyport_sites::Registry::new(
                c.store.clone(),
                Arc::new(skyport_sites::NoCredentials(
                    "the console creates no credentials",
                )),
            );
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
                        silent_after_s: AGENT_SILENT_S,
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

// ---- node --------------------------------------------------------------------------------------

/// A node named in a path: an xname (normalised) or a MAC (canonical).
fn node_name(s: &str) -> Result<String, ApiError> {
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
const BOOTS_SHOWN: usize = 3;
/// How many jobs the node page shows.
const JOBS_SHOWN: usize = 10;

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
fn hardware_summary(hw: &skyport_wire::hwinv::HwInvByLoc) -> serde_json::Value {
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

async fn node(State(c): State<Console>, headers: HeaderMap, Path(node): Path<String>) -> Response {
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

async fn node_boots(
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

async fn node_jobs(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Response {
    if let Err(r) = c.viewer(&headers, "/console/boots").await {
        return r;
    }
    match async { c.node_jobs(&node_name(&node)?).await }.await {
        Ok(j) => fragment(pages::jobs(&j)),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PowerQuery {
    #[serde(default)]
    op: String,
}

fn power_action(op: &str) -> Option<(skyport_power::Action, &'static str, &'static str)> {
    use skyport_power::{Action, BootTarget, Operation};
    let (_, label, what) = pages::POWER_ACTIONS.iter().find(|(o, _, _)| *o == op)?;
    let action = match op {
        "on" => Action::Power {
            operation: Operation::On,
            boot: None,
        },
        "off" => Action::Power {
            operation: Operation::Off,
            boot: None,
        },
        "reset" => Action::Power {
            operation: Operation::HardRestart,
            boot: None,
        },
        "reset-pxe" => Action::Power {
            operation: Operation::HardRestart,
            boot: Some(BootTarget::Pxe),
        },
        "cycle" => Action::Power {
            operation: Operation::Init,
            boot: None,
        },
        _ => return None,
    };
    Some((action, label, what))
}

async fn confirm_power(
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
struct PowerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
}

async fn power(
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
        if c.edge().is_some() {
            return Err(ApiError::Forbidden(
                "power actions are taken through the cloud's console".into(),
            ));
        }
        let n = node_name(&node)?;
        let (action, _, _) = power_action(&f.op)
            .ok_or_else(|| ApiError::bad_request(format!("unknown power action {:?}", f.op)))?;
        let job = skyport_power::Jobs::new(c.store.clone())
            .create(skyport_power::NewJob {
                action,
                xnames: vec![n.clone()],
                start_within_s: skyport_power::jobs::DEFAULT_START_WITHIN_S,
                settle_s: skyport_power::jobs::DEFAULT_SETTLE_S,
                created_by: if v.who.is_empty() { "console".into() } else { v.who.clone() },
            })
            .await?;
        tracing::info!(xname = %n, job = %job.job.id, action = %job.job.action, who = %v.who, "console: power job created");
        Ok(job.job.id)
    }
    .await;
    match r {
        Ok(id) => Redirect::to(&format!("/console/jobs/{}", pages::enc(&id))).into_response(),
        Err(e) => c.fail(Some(&v), &e),
    }
}

async fn job(State(c): State<Console>, headers: HeaderMap, Path(id): Path<String>) -> Response {
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

async fn job_live(
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

// ---- discovery ---------------------------------------------------------------------------------

async fn discovery(State(c): State<Console>, headers: HeaderMap) -> Response {
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
                let reg = skyport_sites::Registry::new(
                    c.store.clone(),
                    Arc::new(skyport_sites::NoCredentials(
                        "the console creates no credentials",
                    )),
                );
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
                jobs.truncate(JOBS_SHOWN);
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
struct DiscoverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    bmc: String,
}

async fn discover(
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
        if c.edge().is_some() {
            return Err(ApiError::Forbidden(
                "discovery jobs are created through the cloud's console".into(),
            ));
        }
        let x = skyport_model::Xname::parse(&f.bmc)
            .map_err(|e| ApiError::bad_request(format!("{:?}: {e}", f.bmc)))?;
        let job = skyport_power::Jobs::new(c.store.clone())
            .create(skyport_power::NewJob {
                action: skyport_power::Action::Discover,
                xnames: vec![x.to_string()],
                start_within_s: skyport_power::jobs::DEFAULT_START_WITHIN_S,
                settle_s: 0,
                created_by: if v.who.is_empty() {
                    "console".into()
                } else {
                    v.who.clone()
                },
            })
            .await?;
        Ok(job.job.id)
    }
    .await;
    match r {
        Ok(id) => Redirect::to(&format!("/console/jobs/{}", pages::enc(&id))).into_response(),
        Err(e) => c.fail(Some(&v), &e),
    }
}

async fn retry_outbox(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
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
