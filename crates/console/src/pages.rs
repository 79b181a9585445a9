//! The console's markup (maud): the page frame and each page, from data the routes have read.
//! Nothing here reads storage or decides access; a page is a pure function of its view, so what
//! the cloud, the local server and an edge agent show differs only by what they pass in.
//!
//! Accessibility: landmarks (`header`, `nav`, `main`), one `h1` per page, tables with headers,
//! every form control labelled, colour never the only signal (each cell says its stage in text),
//! live regions for what updates by itself, and contrast checked by the browser test (axe).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use skyport_boot::flight::{BootEvent, Stage};

use crate::board::{Board, stage_class, stage_label};
use crate::session::{Level, Viewer};

/// The pages in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Boots,
    Sites,
    Discovery,
    None,
}

/// What every page shows around its content.
pub struct Frame<'a> {
    pub title: &'a str,
    pub nav: Nav,
    pub viewer: Option<&'a Viewer>,
    /// Where this console runs: `local`, `cloud`, or `edge site <name>`.
    pub place: &'a str,
    /// Whether this console can only show (an edge agent without its admin token).
    pub read_only: bool,
    /// Whether signing in would give more (an edge agent with an admin token).
    pub sign_in_offered: bool,
}

pub fn page(f: &Frame, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, text: &str| {
        html! {
            @if f.nav == nav {
                a href=(href) aria-current="page" { (text) }
            } @else {
                a href=(href) { (text) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (f.title) " · Skyport" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Skyport" }
                    span.place { (f.place) }
                    nav aria-label="Console" {
                        (link(Nav::Boots, "/console/boots", "Boot board"))
                        (link(Nav::Sites, "/console/sites", "Sites"))
                        (link(Nav::Discovery, "/console/discovery", "Discovery"))
                    }
                    div.who {
                        @if let Some(v) = f.viewer {
                            @if !v.who.is_empty() { span { (v.who) } }
                            span.badge title="What you may do here" { (v.level.as_str()) }
                            @if v.signed_in {
                                form method="post" action="/console/logout" {
                                    input type="hidden" name="csrf" value=(v.csrf);
                                    button type="submit" { "Sign out" }
                                }
                            } @else if f.read_only && f.sign_in_offered {
                                a href="/console/login" { "Admin sign-in" }
                            }
                        }
                    }
                }
                main id="main" {
                    @if f.read_only {
                        p.note {
                            "Read-only: this is a site's agent."
                            @if f.sign_in_offered { " Sign in with its admin token to act." }
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// Seconds as people read a duration.
pub fn ago(s: i64) -> String {
    match s {
        s if s < 0 => "in the future".into(),
        s if s < 90 => format!("{s} s"),
        s if s < 5400 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Bytes as people read a size.
pub fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A Unix time (seconds) in UTC, RFC 3339.
pub fn when(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_s.to_string())
}

pub fn node_href(node: &str) -> String {
    format!("/console/nodes/{}", enc(node))
}

/// `s` as one URL path segment or query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- boot board ----------------------------------------------------------------------------

/// What the board is of.
pub struct Scope<'a> {
    pub site: Option<&'a str>,
    pub group: Option<&'a str>,
    pub sites: &'a [String],
    pub groups: &'a [String],
}

impl Scope<'_> {
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.site {
            q.append_pair("site", s);
        }
        if let Some(g) = self.group {
            q.append_pair("group", g);
        }
        q.finish()
    }
}

pub fn boots(scope: &Scope, board: &Board, now_s: i64) -> Markup {
    let q = scope.query();
    html! {
        h1 { "Boot board" }
        form.filters method="get" action="/console/boots" {
            @if !scope.sites.is_empty() {
                label for="site" { "Site" }
                select id="site" name="site" {
                    option value="" { "all sites" }
                    @for s in scope.sites {
                        option value=(s) selected[scope.site == Some(s.as_str())] { (s) }
                    }
                }
            }
            label for="group" { "Group" }
            select id="group" name="group" {
                option value="" { "all nodes" }
                @for g in scope.groups {
                    option value=(g) selected[scope.group == Some(g.as_str())] { (g) }
                }
            }
            button type="submit" { "Show" }
        }
        div id="board" data-live=(format!("/console/boots/live?{q}")) aria-live="polite" {
            (board_live(board, now_s))
        }
    }
}

/// The part of the board that refreshes by itself.
pub fn board_live(b: &Board, now_s: i64) -> Markup {
    html! {
        p.summary {
            strong { (b.nodes) } @if b.nodes == 1 { " node · " } @else { " nodes · " }
            strong { (b.phoned_home) } " phoned home · "
            strong.warn-text { (b.stuck) } " stuck (silent " (ago(b.stuck_after_s)) ") · "
            strong { (b.failed) } " failed · as of " (when(now_s))
        }
        div.counts role="list" aria-label="Nodes per stage" {
            @for (stage, n) in &b.counts {
                @if *n > 0 || matches!(stage, Stage::DhcpAck | Stage::BootScript | Stage::Kernel | Stage::MetaData | Stage::PhoneHome) {
                    span role="listitem" class={"count " (stage_class(*stage))} {
                        (stage_label(*stage)) ": " strong { (n) }
                    }
                }
            }
        }
        @if b.cells.is_empty() {
            p { "No boots recorded yet. Nodes appear here from their first DHCP request." }
        } @else {
            ul.cells aria-label="Nodes, stuck first" {
                @for c in &b.cells {
                    li class={"cell " (stage_class(c.stage)) @if c.stuck {" stuck"} @if c.failed {" failed"}} {
                        a href=(node_href(&c.node)) data-node=(c.node) data-stage=(c.stage.name()) {
                            span.n { (c.node) }
                            span.s {
                                (stage_label(c.stage))
                                @if c.failed { " (failed)" }
                                @if c.stuck { " · stuck " (ago(c.silent_s)) }
                            }
                        }
                    }
                }
            }
        }
        @if b.hidden > 0 {
            p.note { (b.hidden) " more nodes are not drawn (stuck and failed ones always are): choose a site or a group to see them." }
        }
        h2 { "Time to phone home" }
        @if let Some(d) = &b.durations {
            p { (d.count) " boots: median " (format!("{:.0}", d.p50)) " s, 90th percentile "
                (format!("{:.0}", d.p90)) " s, slowest " (format!("{:.0}", d.max)) " s." }
        } @else {
            p { "No node has phoned home yet." }
        }
        @let most = b.histogram.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
        table.hist {
            caption.visually-hidden { "Boots by time to phone home" }
            thead { tr { th scope="col" { "Took" } th scope="col" { "Boots" } } }
            tbody {
                @for (label, n) in &b.histogram {
                    tr {
                        th scope="row" { (label) }
                        td {
                            span.bar style=(format!("width:{:.1}rem", *n as f64 * 14.0 / most as f64)) {}
                            " " (n)
                        }
                    }
                }
            }
        }
    }
}

// ---- sites -----------------------------------------------------------------------------------

/// One site as the Sites page shows it.
pub struct SiteRow {
    pub name: String,
    pub registered: bool,
    pub status: Option<skyport_sites::EdgeStatus>,
    pub assigned: usize,
    /// Seconds since the agent (or, at the edge, the cloud) was last heard from; `None`: never.
    pub heard_s: Option<i64>,
    /// Beyond this silence the other side counts as unreachable.
    pub silent_after_s: i64,
}

pub fn sites(rows: &[SiteRow], edge: bool) -> Markup {
    html! {
        h1 { "Sites" }
        @if rows.is_empty() {
            p { "No site is registered and no agent has reported. Add one with " code { "skyport site add <name>" } "." }
        } @else {
            table {
                caption.visually-hidden { "Sites and their agents" }
                thead { tr {
                    th scope="col" { "Site" }
                    th scope="col" { @if edge { "Cloud" } @else { "Agent" } }
                    th scope="col" { "Version" }
                    th scope="col" { "Last sync" }
                    th scope="col" { "Outbox" }
                    th scope="col" { "Image cache" }
                    th scope="col" { "Reports pending" }
                    @if !edge { th scope="col" { "Subtrees" } }
                } }
                tbody {
                    @for r in rows {
                        @let st = r.status.as_ref();
                        tr {
                            th scope="row" {
                                a href=(format!("/console/boots?site={}", enc(&r.name))) { (r.name) }
                                @if !r.registered { " " span.badge { "unregistered" } }
                            }
                            td {
                                @match r.heard_s {
                                    None => span.warn-text { "never heard from" },
                                    Some(s) if s > r.silent_after_s => span.warn-text { "unreachable, last heard " (ago(s)) " ago" },
                                    Some(s) => span.ok-text { "reachable, heard " (ago(s)) " ago" },
                                }
                            }
                            td { (st.map(|s| s.version.as_str()).filter(|v| !v.is_empty()).unwrap_or("-")) }
                            td {
                                @match st.map(|s| s.last_sync_ok).filter(|t| *t > 0) {
                                    Some(t) => (when(t)),
                                    None => "never",
                                }
                            }
                            td { (st.map(|s| s.outbox_depth).unwrap_or(0)) }
                            td { (size(st.map(|s| s.cache_bytes).unwrap_or(0))) }
                            td { (st.map(|s| s.reports_pending).unwrap_or(0)) }
                            @if !edge { td { (r.assigned) } }
                        }
                    }
                }
            }
        }
    }
}

// ---- node ------------------------------------------------------------------------------------

/// Everything the node page shows.
pub struct NodePage {
    pub node: String,
    pub component: Option<skyport_wire::Component>,
    pub site: Option<String>,
    /// (MAC, IPs) of its interfaces.
    pub interfaces: Vec<(String, Vec<String>)>,
    /// `(type, status, location info)` of its hardware inventory entry.
    pub hardware: Option<serde_json::Value>,
    pub boot: Option<BootView>,
    /// Its boots, newest first (at most a few).
    pub boots: Vec<Vec<BootEvent>>,
    /// The last power state a BMC reported, and when (Unix seconds).
    pub power: Option<(String, i64, String)>,
    /// Whether power actions exist here (the cloud and the local server; not an edge agent).
    pub can_power: bool,
    pub jobs: Vec<skyport_power::JobView>,
}

/// What the node boots and why.
pub struct BootView {
    pub rule: String,
    pub kernel: String,
    pub params: String,
    pub script: String,
    pub asked_as: String,
}

/// The power actions offered: (form value, button text, what it does).
pub const POWER_ACTIONS: [(&str, &str, &str); 5] = [
    ("on", "Power on", "powers the node on"),
    (
        "off",
        "Power off",
        "shuts the node down gracefully, then forces it off",
    ),
    (
        "reset",
        "Reset",
        "restarts the node at once, whatever its OS is doing",
    ),
    (
        "reset-pxe",
        "Reset and network-boot",
        "sets the next boot to PXE, then restarts the node at once",
    ),
    ("cycle", "Power cycle", "powers the node off, then on"),
];

pub fn node(n: &NodePage, viewer: &Viewer) -> Markup {
    let c = n.component.as_ref();
    html! {
        h1 { "Node " (n.node) }
        @if c.is_none() {
            p.note { "The inventory does not know this node (yet): only what the boot flight recorder saw is shown." }
        }
        div.grid {
        section aria-labelledby="identity" {
            h2 id="identity" { "Identity and health" }
            dl.facts {
                dt { "xname" } dd { (c.map(|c| c.id.as_str()).unwrap_or("-")) }
                dt { "NID" } dd { (c.and_then(|c| c.nid).map(|n| n.to_string()).unwrap_or_else(|| "-".into())) }
                dt { "Role" } dd { (c.map(|c| format!("{} {}", c.role, c.sub_role).trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())) }
                dt { "State" } dd { (c.map(|c| format!("{} ({})", c.state, c.flag)).unwrap_or_else(|| "-".into())) }
                dt { "Enabled" } dd { (c.and_then(|c| c.enabled).map(|e| if e { "yes" } else { "no" }).unwrap_or("-")) }
                dt { "Site" } dd { (n.site.as_deref().unwrap_or("none")) }
                dt { "Interfaces" }
                dd {
                    @if n.interfaces.is_empty() { "none known" }
                    ul.plain {
                        @for (mac, ips) in &n.interfaces {
                            li { code { (mac) } @if !ips.is_empty() { " — " (ips.join(", ")) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="hw" {
            h2 id="hw" { "Hardware" }
            @match &n.hardware {
                Some(hw) => {
                    dl.facts {
                        @for (k, v) in hw.as_object().into_iter().flatten() {
                            dt { (k) } dd { (match v { serde_json::Value::String(s) => s.clone(), v => v.to_string() }) }
                        }
                    }
                }
                None => p { "No hardware inventory: discovery has not described this node." },
            }
        }
        section aria-labelledby="power" {
            h2 id="power" { "Power" }
            @if !n.can_power {
                p { "Power state and actions are the cloud's: open this node in the cloud's console." }
            } @else {
            @match &n.power {
                Some((state, at, err)) => p {
                    "Last reported " strong { (state) } " at " (when(*at)) "."
                    @if !err.is_empty() { " " span.warn-text { (err) } }
                },
                None => p { "No power state reported yet." },
            }
            @if viewer.level >= Level::Write && c.is_some() {
                ul.actions {
                    @for (op, label, _) in POWER_ACTIONS {
                        li { a.button href=(format!("{}/power?op={op}", node_href(&n.node))) { (label) "…" } }
                    }
                }
            } @else if c.is_some() {
                p { "Your sign-in may only read: power actions need skyport/write." }
            }
            }
        }
        @if n.can_power {
            section aria-labelledby="jobs" {
                h2 id="jobs" { "Jobs" }
                // Not refreshed live: finding a node's jobs reads them all; a job's own page is.
                (jobs(&n.jobs))
            }
        }
        }
        section aria-labelledby="bootcfg" {
            h2 id="bootcfg" { "Boot" }
            @match &n.boot {
                Some(b) => {
                    dl.facts {
                        dt { "Chosen by" } dd { (b.rule) }
                        dt { "Kernel" } dd { code { (b.kernel) } }
                        dt { "Parameters" } dd { code { (b.params) } }
                    }
                    details {
                        summary { "The exact script it gets (asked as " (b.asked_as) ")" }
                        pre tabindex="0" aria-label="Boot script" { code { (b.script) } }
                    }
                }
                None => p { "No boot parameters apply to this node." },
            }
        }
        section aria-labelledby="timeline" {
            h2 id="timeline" { "Last boots" }
            div data-live=(format!("{}/boots", node_href(&n.node))) aria-live="polite" {
                (timelines(&n.boots))
            }
        }
    }
}

pub fn timelines(boots: &[Vec<BootEvent>]) -> Markup {
    html! {
        @if boots.is_empty() {
            p { "No boot recorded." }
        }
        @for (i, b) in boots.iter().enumerate() {
            @let start = b.first().map(|e| e.at_ms).unwrap_or(0);
            table.timeline {
                caption { @if i == 0 { "Latest boot" } @else { "Earlier boot" } ", started " (when(start / 1000)) }
                thead { tr { th scope="col" { "After" } th scope="col" { "Stage" } th scope="col" { "Detail" } th scope="col" { "Address" } } }
                tbody {
                    @for e in b {
                        tr class=[e.failed.then_some("failed")] {
                            td { (format!("{:.1} s", (e.at_ms - start) as f64 / 1000.0)) }
                            td { span class={"dot " (stage_class(e.stage))} {} (stage_label(e.stage)) @if e.failed { " (failed)" } }
                            td { (e.detail) }
                            td { (e.ip) }
                        }
                    }
                }
            }
        }
    }
}

pub fn jobs(jobs: &[skyport_power::JobView]) -> Markup {
    html! {
        @if jobs.is_empty() {
            p { "No job has touched this node." }
        } @else {
            table {
                caption.visually-hidden { "Jobs on this node, newest first" }
                thead { tr { th scope="col" { "Job" } th scope="col" { "Action" } th scope="col" { "State" } th scope="col" { "Created" } th scope="col" { "By" } } }
                tbody {
                    @for j in jobs {
                        tr {
                            td { a href=(format!("/console/jobs/{}", enc(&j.job.id))) { (j.job.id.get(..8).unwrap_or(&j.job.id)) } }
                            td { (j.job.action.to_string()) }
                            td { span class={"job " (job_state(j))} data-state=(job_state(j)) { (job_state(j)) } }
                            td { (when(j.job.created)) }
                            td { (j.job.created_by) }
                        }
                    }
                }
            }
        }
    }
}

pub fn job_state(j: &skyport_power::JobView) -> &'static str {
    use skyport_power::JobState;
    match j.state {
        JobState::Pending => "pending",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
        JobState::Expired => "expired",
        JobState::Aborted => "aborted",
    }
}

pub fn job(j: &skyport_power::JobView) -> Markup {
    html! {
        h1 { "Job " (j.job.id) }
        div data-live=(format!("/console/jobs/{}/live", enc(&j.job.id))) aria-live="polite" {
            (job_live(j))
        }
    }
}

pub fn job_live(j: &skyport_power::JobView) -> Markup {
    html! {
        p { (j.job.action.to_string()) ": " strong.job data-state=(job_state(j)) { (job_state(j)) }
            " · created " (when(j.job.created))
            @if !j.job.created_by.is_empty() { " by " (j.job.created_by) } }
        table {
            caption.visually-hidden { "The job's targets" }
            thead { tr { th scope="col" { "Target" } th scope="col" { "State" } th scope="col" { "Power" } th scope="col" { "Detail" } } }
            tbody {
                @for t in &j.tasks {
                    tr {
                        td { a href=(node_href(&t.xname)) { (t.xname) } }
                        td { (t.state.as_str()) }
                        td { (t.power.map(|p| p.as_str()).unwrap_or("-")) }
                        td { (t.detail) @if !t.error.is_empty() { " " span.warn-text { (t.error) } } }
                    }
                }
            }
        }
    }
}

/// The confirmation of a power action: a form that posts it, or a way back.
pub fn confirm_power(node: &str, op: &str, label: &str, what: &str, viewer: &Viewer) -> Markup {
    html! {
        h1 { (label) " " (node) "?" }
        p { "This " (what) ". It runs through the site's agent on the node's BMC." }
        form method="post" action=(format!("{}/power", node_href(node))) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="op" value=(op);
            button.danger type="submit" { "Yes, " (label.to_lowercase()) }
            " "
            a href=(node_href(node)) { "Cancel" }
        }
    }
}

// ---- discovery -------------------------------------------------------------------------------

/// A BMC as the discovery page shows it.
pub struct EndpointRow {
    pub id: String,
    pub address: String,
    pub status: String,
    pub attempted: String,
    pub site: Option<String>,
}

/// A discovery result waiting at the edge.
pub struct OutboxRow {
    pub id: String,
    pub attempts: u32,
    pub parked: bool,
    pub last_error: Option<String>,
}

pub struct DiscoveryPage {
    pub endpoints: Vec<EndpointRow>,
    pub jobs: Vec<skyport_power::JobView>,
    /// At an edge agent: its outbox.
    pub outbox: Option<Vec<OutboxRow>>,
    /// In the cloud: each site's outbox depth.
    pub depths: Vec<(String, u64)>,
}

pub fn discovery(d: &DiscoveryPage, viewer: &Viewer, can_discover: bool) -> Markup {
    let ok = |s: &str| s == "DiscoverOK";
    html! {
        h1 { "Discovery" }
        section aria-labelledby="bmcs" {
            h2 id="bmcs" { "BMCs" }
            @let failed = d.endpoints.iter().filter(|e| !ok(&e.status)).count();
            p { (d.endpoints.len()) " found, " (failed) " not discovered cleanly (listed first)." }
            @if !d.endpoints.is_empty() {
                table {
                    caption.visually-hidden { "BMCs, failures first" }
                    thead { tr {
                        th scope="col" { "BMC" } th scope="col" { "Address" } th scope="col" { "Last status" }
                        th scope="col" { "Last attempt" } th scope="col" { "Site" }
                        @if can_discover && viewer.level >= Level::Write { th scope="col" { span.visually-hidden { "Action" } } }
                    } }
                    tbody {
                        @for e in &d.endpoints {
                            tr {
                                th scope="row" { (e.id) }
                                td { (e.address) }
                                td { @if ok(&e.status) { span.ok-text { (e.status) } } @else { span.warn-text { (e.status) } } }
                                td { (e.attempted) }
                                td { (e.site.as_deref().unwrap_or("-")) }
                                @if can_discover && viewer.level >= Level::Write {
                                    td {
                                        form method="post" action="/console/discovery/discover" {
                                            input type="hidden" name="csrf" value=(viewer.csrf);
                                            input type="hidden" name="bmc" value=(e.id);
                                            button type="submit" aria-label=(format!("Discover {} again", e.id)) { "Discover again" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !d.depths.is_empty() {
            section aria-labelledby="outboxes" {
                h2 id="outboxes" { "Results waiting at sites" }
                ul.plain { @for (s, n) in &d.depths { li { (s) ": " (n) } } }
            }
        }
        @if let Some(out) = &d.outbox {
            section aria-labelledby="outbox" {
                h2 id="outbox" { "Waiting to reach the cloud" }
                @if out.is_empty() {
                    p { "Nothing: every result reached the cloud." }
                } @else {
                    table {
                        caption.visually-hidden { "Queued discovery results" }
                        thead { tr { th scope="col" { "BMC" } th scope="col" { "Attempts" } th scope="col" { "State" } th scope="col" { "Last error" } } }
                        tbody {
                            @for o in out {
                                tr {
                                    th scope="row" { (o.id) }
                                    td { (o.attempts) }
                                    td { @if o.parked { span.warn-text { "parked (refused by the cloud)" } } @else { "retrying" } }
                                    td { (o.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    @if viewer.level >= Level::Admin {
                        form method="post" action="/console/discovery/retry" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Retry all now" }
                        }
                    }
                }
            }
        }
        @if !d.jobs.is_empty() {
            section aria-labelledby="runs" {
                h2 id="runs" { "Recent discovery jobs" }
                (jobs(&d.jobs))
            }
        }
    }
}

// ---- sign-in and errors ------------------------------------------------------------------------

/// The sign-in page: a token form, or a link to the authorization server.
pub fn login(message: &str, oauth: bool, next: &str, token_hint: &str) -> Markup {
    html! {
        h1 { "Sign in" }
        @if !message.is_empty() { p.note role="alert" { (message) } }
        @if oauth {
            p { a.button href=(format!("/console/login/start?next={}", enc(next))) { "Sign in with your organisation's account" } }
        } @else {
            form method="post" action="/console/login" {
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "Token" }
                    input id="token" name="token" type="password" autocomplete="off" required;
                }
                p.hint { (PreEscaped(token_hint)) }
                button type="submit" { "Sign in" }
            }
        }
    }
}

pub fn problem(title: &str, detail: &str) -> Markup {
    html! {
        h1 { (title) }
        p role="alert" { (detail) }
        p { a href="/console/boots" { "Back to the boot board" } }
    }
}
