//! The cloud side of edge sync, under `/edge/v1`: a site's snapshot (paged), its change feed
//! (with `ETag`/`If-None-Match`, so an unchanged poll is a `304`), the agents' reports, and the
//! enrollment candidates they found.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use skyport_auth::Principal;
use skyport_sites::Ownership;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use skyport_boot::EndpointAccess;
use skyport_http::access::{Access, Need, is_read};
use skyport_http::encode;
use skyport_http::{ApiError, ApiJson, json};
use skyport_model::{Mac, Xname};
use skyport_sites::registry::now;
use skyport_store::{Record, Store, Write};

use crate::feed::{self, FeedError};
use crate::snapshot::{ChangePage, MAX_REPORT_ENTRIES, Report, SnapshotPage, UnknownMac};
use crate::{CANDIDATES, FORMAT};

pub use skyport_sites::routes::BASE;

type Res = Result<Response, ApiError>;

#[derive(Clone)]
struct Edge {
    store: Arc<dyn Store>,
    limits: Limits,
}

/// Most enrollment candidates kept per site, as many as an agent keeps unknown MACs
/// (`skyport_edge::serve::MAX_UNKNOWN_MACS`): reports must not grow the cloud's table without
/// bound either.
pub const MAX_CANDIDATES_PER_SITE: usize = 10_000;

/// Bounds and modes of the edge routes (the defaults in production; tests set them low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Enrollment candidates kept per site; new MACs beyond it are dropped and counted.
    pub candidates_per_site: usize,
    /// Whether agents without a site are served (the store is a [`crate::ChangeLog`] that
    /// logs the whole installation): the local server; never the cloud.
    pub whole_installation: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            candidates_per_site: MAX_CANDIDATES_PER_SITE,
            whole_installation: false,
        }
    }
}

/// `/edge/v1` over `store` (the same store the APIs write, a [`crate::ChangeLog`]). The sites' own routes are `skyport_sites::router`.
/// Who may call each route of [`router`]: a site's boot data includes cloud-init user data, so
/// only agents and writers copy it or report; candidates are readable.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    let r = route.strip_prefix(BASE)?;
    let read = is_read(method);
    Some(match r {
        "/snapshot" | "/changes" if read => Access::Need(Need::Discovery),
        "/reports" if *method == axum::http::Method::POST => Access::Need(Need::Discovery),
        "/reindex" => Access::Need(Need::Admin),
        "/candidates" if read => Access::Need(Need::Read),
        "/snapshot" | "/changes" | "/reports" | "/candidates" => Access::Need(Need::Admin),
        _ => return None,
    })
}

pub fn router(store: Arc<dyn Store>) -> Router {
    router_with(store, Limits::default())
}

/// [`router`] with other [`Limits`].
pub fn router_with(store: Arc<dyn Store>, limits: Limits) -> Router {
    Router::new()
        .route(&format!("{BASE}/snapshot"), get(snapshot))
        .route(&format!("{BASE}/changes"), get(changes))
        .route(&format!("{BASE}/reindex"), post(reindex))
        .route(&format!("{BASE}/reports"), post(report))
        .route(&format!("{BASE}/candidates"), get(candidates))
        .with_state(Edge { store, limits })
}

/// The site an edge token speaks for; `None` for people's tokens and with auth off.
fn token_site(p: &Option<Extension<Principal>>) -> Option<String> {
    p.as_ref().and_then(|Extension(p)| p.site.clone())
}

fn matches(h: &HeaderMap, tag: &HeaderValue) -> bool {
    h.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t.as_bytes() == tag.as_bytes())
        })
    })
}

/// The site a request reads for: an edge token's own (asking for another is refused), or the
/// one an admin names; `None` for the whole installation. Refuses query parameters other than
/// `site` and `allowed`.
fn site_of_request(
    principal: &Option<Extension<Principal>>,
    q: &skyport_http::QueryParams,
    limits: Limits,
    route: &str,
    allowed: &str,
) -> Result<Option<String>, ApiError> {
    let asked = match q.all("site").as_slice() {
        [] => None,
        [one] => Some(one.to_string()),
        _ => return Err(ApiError::bad_request("site: give it once")),
    };
    if let Some((k, _)) = q.0.iter().find(|(k, _)| k != "site" && k != allowed) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {k:?}: the {route} takes only site and {allowed}"
        )));
    }
    if q.all(allowed).len() > 1 {
        return Err(ApiError::bad_request(format!("{allowed}: give it once")));
    }
    let site = match (token_site(principal), asked) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::Forbidden(format!(
                "this token is site {own:?}'s, not {asked:?}'s"
            )));
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    match &site {
        Some(s) => skyport_sites::registry::check_name(s)?,
        None if !limits.whole_installation => return Err(no_whole_installation()),
        None => {}
    }
    Ok(site)
}

fn feed_error(e: FeedError) -> ApiError {
    match e {
        FeedError::BadCursor(_) | FeedError::BadToken(_) => ApiError::bad_request(e.to_string()),
        FeedError::Expired(_) => ApiError::Gone(e.to_string()),
        FeedError::Store(s) => s.into(),
    }
}

/// `GET /edge/v1/snapshot[?page=<token>]`: one page of the site's whole share.
async fn snapshot(
    State(Edge { store, limits }): State<Edge>,
    principal: Option<Extension<Principal>>,
    q: skyport_http::QueryParams,
    h: HeaderMap,
) -> Res {
    let site = site_of_request(&principal, &q, limits, "snapshot", "page")?;
    let token = q.first("page");
    let page = feed::snapshot_page(store.as_ref(), site.as_deref(), token)
        .await
        .map_err(feed_error)?;
    let doc = SnapshotPage {
        format: FORMAT,
        cursor: page.cursor.encode(),
        next: page.next,
        tables: crate::snapshot::tables(page.records),
    };
    body(&h, &doc, None)
}

/// `POST /edge/v1/reindex`: indexes every stored record for site snapshots (once, after an
/// upgrade from before the index; harmless again). Answers how many index items it wrote.
async fn reindex(State(Edge { store, .. }): State<Edge>) -> Res {
    let n = crate::changes::backfill(store.as_ref()).await?;
    tracing::info!(items = n, "placement index complete");
    Ok(json(StatusCode::OK, &serde_json::json!({"indexed": n})))
}

fn no_whole_installation() -> ApiError {
    ApiError::bad_request(
        "this installation syncs edge agents by site: use a site's token, or name the site (?site=)",
    )
}

/// `GET /edge/v1/changes?after=<cursor>`: what changed in the site's share after the cursor;
/// `304` (one read per partition) when nothing did.
async fn changes(
    State(Edge { store, limits }): State<Edge>,
    principal: Option<Extension<Principal>>,
    q: skyport_http::QueryParams,
    h: HeaderMap,
) -> Res {
    let site = site_of_request(&principal, &q, limits, "change feed", "after")?;
    let parts = feed::partitions(site.as_deref());
    let after = q.first("after").ok_or_else(|| {
        ApiError::bad_request("after: required (the cursor of the last snapshot or changes page)")
    })?;
    let cursor = feed::Cursor::parse(after, parts.len()).map_err(feed_error)?;
    let entries = feed::entries(store.as_ref(), &parts, &cursor)
        .await
        .map_err(feed_error)?;
    let tag = HeaderValue::from_str(&entries.tag(&cursor))
        .map_err(|e| ApiError::Internal(format!("change tag: {e}")))?;
    // A 304 only when the read saw everything after the cursor (a cut-short read may hide a
    // new entry behind the ones it read), and not for a cursor a day old: answering it moves
    // the cursor on, so a quiet site is never sent back to a full snapshot by expiry.
    let day = std::time::Duration::from_secs(86_400).as_micros();
    let stale = cursor
        .0
        .iter()
        .any(|p| u128::from(p.micros()) + day < u128::from(crate::changes::now_micros()));
    let truncated = entries.truncated.iter().any(|t| *t);
    if !truncated && !stale && matches(&h, &tag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, tag);
        return Ok(r);
    }
    let c = feed::changes(store.as_ref(), site.as_deref(), &cursor, &entries)
        .await
        .map_err(feed_error)?;
    let tag = HeaderValue::from_str(&entries.tag(&c.cursor))
        .map_err(|e| ApiError::Internal(format!("change tag: {e}")))?;
    let mut deleted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, ids) in c.view.deleted {
        deleted.insert(t.name().to_string(), ids);
    }
    let doc = ChangePage {
        format: FORMAT,
        cursor: c.cursor.encode(),
        more: c.more,
        resync: c.resync,
        tables: crate::snapshot::tables(c.view.records),
        deleted,
    };
    // The tag names what this answer was made of: the next poll with the same cursor and no
    // new entries is a 304. A page with more after it has no tag (the agent asks on at once).
    body(&h, &doc, (!c.more).then_some(tag))
}

/// A JSON answer, gzipped when the agent takes it (a site's records shrink about tenfold: less
/// WAN for the edge, and pages stay far below Lambda's 6 MB response limit).
fn body<T: serde::Serialize>(h: &HeaderMap, doc: &T, tag: Option<HeaderValue>) -> Res {
    let body = serde_json::to_vec(doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut r = if accepts_gzip(h) {
        let mut r = (StatusCode::OK, gzip(&body)?).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, body).into_response()
    };
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(tag) = tag {
        headers.insert(header::ETAG, tag);
    }
    Ok(r)
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|e| {
                let mut parts = e.split(';').map(str::trim);
                parts.next().is_some_and(|n| n.eq_ignore_ascii_case("gzip"))
                    && !parts.any(|q| q.replace(' ', "") == "q=0")
            })
        })
    })
}

fn gzip(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body)
        .and_then(|()| enc.finish())
        .map_err(|e| ApiError::Internal(format!("compressing the snapshot: {e}")))
}

/// Epochs an agent may report: not before 2000, not more than a day ahead of our clock.
fn check_epoch(what: &str, t: i64) -> Result<(), ApiError> {
    if (946_684_800..=now() + 86_400).contains(&t) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what}: {t} is not a plausible Unix time"
        )))
    }
}

async fn report(
    State(Edge { store, limits, .. }): State<Edge>,
    principal: Option<Extension<Principal>>,
    ApiJson(mut rep): ApiJson<Report>,
) -> Res {
    // The token's site is the report's, whatever the agent's own `site` setting says (it
    // defaults to "default", and a mismatch must not make every report bounce forever).
    let own = token_site(&principal);
    if let Some(own) = &own {
        if !rep.site.trim().is_empty() && rep.site.trim() != own {
            tracing::warn!(site = %own, claimed = %rep.site.trim(),
                "report names another site than its token's; filed under the token's");
        }
        rep.site = own.clone();
    }
    let n = rep.endpoint_history.len() + rep.unknown_macs.len() + rep.boot_events.len();
    if n > MAX_REPORT_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "a report carries at most {MAX_REPORT_ENTRIES} entries, this one {n}"
        )));
    }
    let site = rep.site.trim();
    if site.len() > 64 || site.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(
            "site must be at most 64 printable characters",
        ));
    }
    // Validate everything before writing anything: a report is taken whole or not at all.
    let mut history: BTreeMap<String, EndpointAccess> = BTreeMap::new();
    for e in &rep.endpoint_history {
        let x = Xname::parse(&e.name)
            .map_err(|err| ApiError::bad_request(format!("endpoint_history: {}: {err}", e.name)))?;
        if e.endpoint != "bootscript" && e.endpoint != "user-data" {
            return Err(ApiError::bad_request(format!(
                "endpoint_history: {}: endpoint {:?} is not bootscript or user-data",
                e.name, e.endpoint
            )));
        }
        check_epoch("endpoint_history.last_epoch", e.last_epoch)?;
        let entry = EndpointAccess {
            name: x.to_string(),
            endpoint: e.endpoint.clone(),
            last_epoch: e.last_epoch,
        };
        let id = entry.id();
        if history.get(&id).is_none_or(|o| o.last_epoch < e.last_epoch) {
            history.insert(id, entry);
        }
    }
    let mut macs: BTreeMap<String, UnknownMac> = BTreeMap::new();
    for u in &rep.unknown_macs {
        let mac =
            Mac::parse(&u.mac).map_err(|e| ApiError::bad_request(format!("unknown_macs: {e}")))?;
        check_epoch("unknown_macs.first_seen", u.first_seen)?;
        check_epoch("unknown_macs.last_seen", u.last_seen)?;
        if let Some(ip) = &u.ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ApiError::bad_request(format!(
                "unknown_macs: {mac}: ip {ip:?} is not an IP address"
            )));
        }
        macs.insert(
            mac.to_string(),
            UnknownMac {
                mac: mac.to_string(),
                ip: u.ip.clone(),
                first_seen: u.first_seen.min(u.last_seen),
                last_seen: u.last_seen.max(u.first_seen),
                site: site.to_string(),
            },
        );
    }
    // A bad boot event is skipped, not a reason to refuse the report: the agent would send it
    // again forever, and its endpoint history and candidates with it.
    let mut events = Vec::with_capacity(rep.boot_events.len());
    let mut bad_events = 0usize;
    for e in &rep.boot_events {
        match checked_event(e) {
            Ok(e) => events.push(e),
            Err(err) => {
                if bad_events == 0 {
                    tracing::warn!(site = %site, error = %err, "boot event skipped");
                }
                bad_events += 1;
            }
        }
    }
    // A site reports only its own nodes' history. Another site's node can appear when an
    // xname was reassigned after the agent's last snapshot: skipped (and counted), so the
    // agent's report is still taken and its watermark moves on.
    let mut skipped = bad_events;
    if let Some(own) = &own {
        let owners = Ownership::load(store.as_ref()).await?;
        events.retain(|e| {
            let mine = e.xname.is_empty() || owners.site_of(&e.xname) == Some(own.as_str());
            if !mine {
                skipped += 1;
            }
            mine
        });
        history.retain(|_, e| {
            let mine = owners.site_of(&e.name) == Some(own.as_str());
            if !mine {
                skipped += 1;
                tracing::warn!(site = %own, xname = %e.name, "endpoint history of another site's node skipped");
            }
            mine
        });
    }
    // A report may arrive long after a newer fetch was recorded in the cloud: keep the newest.
    let ids: Vec<String> = history.keys().cloned().collect();
    for old in skyport_boot::stored_history(store.as_ref(), Some(&ids)).await? {
        if history
            .get(&old.id())
            .is_some_and(|n| n.last_epoch <= old.last_epoch)
        {
            history.remove(&old.id());
        }
    }
    let ids: Vec<String> = macs.keys().cloned().collect();
    let mut known = std::collections::HashSet::new();
    for r in store.get_many(CANDIDATES, &ids).await? {
        known.insert(r.id.clone());
        if let (Ok(old), Some(new)) = (
            serde_json::from_str::<UnknownMac>(&r.body),
            macs.get_mut(&r.id),
        ) {
            if own.is_some() && !old.site.is_empty() && old.site != new.site {
                // Another site's candidate: a site's agent does not rewrite it.
                macs.remove(&r.id);
                skipped += 1;
                continue;
            }
            new.first_seen = new.first_seen.min(old.first_seen);
            if old.last_seen > new.last_seen {
                new.last_seen = old.last_seen;
                new.ip = old.ip;
                new.site = old.site;
            }
        }
    }
    let dropped = cap_candidates(store.as_ref(), site, &mut macs, &known, limits).await?;
    let mut ops = Vec::new();
    for e in history.values() {
        ops.push(e.upsert()?);
    }
    for (id, m) in &macs {
        ops.push(Write::Upsert {
            table: CANDIDATES,
            record: Record::new(id, encode(m)?),
        });
    }
    if rep.status.is_some() && site.is_empty() {
        return Err(ApiError::bad_request(
            "a status needs the site it belongs to",
        ));
    }
    let (h, m) = (history.len(), macs.len());
    // Upserts of independent facts: written in chunks the backends take in one batch.
    for chunk in ops.chunks(25) {
        store.write(chunk.to_vec()).await?;
    }
    if let Some(st) = &rep.status {
        skyport_sites::record_status(store.as_ref(), site, st, now()).await?;
    }
    let boot_events = events.len();
    skyport_boot::flight::record(store.as_ref(), site, &events, 25).await?;
    tracing::info!(
        site,
        endpoint_history = h,
        unknown_macs = m,
        boot_events,
        dropped,
        "edge report stored"
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"endpoint_history": h, "unknown_macs": m, "boot_events": boot_events,
                            "skipped": skipped, "dropped": dropped}),
    ))
}

/// A reported boot event, checked and in canonical form.
fn checked_event(
    e: &skyport_boot::flight::BootEvent,
) -> Result<skyport_boot::flight::BootEvent, ApiError> {
    check_epoch("boot_events.at_ms", e.at_ms / 1000)?;
    let mut e = e.clone();
    if !e.xname.is_empty() {
        e.xname = Xname::parse(&e.xname)
            .map_err(|err| ApiError::bad_request(format!("boot_events: {}: {err}", e.xname)))?
            .to_string();
    }
    if !e.mac.is_empty() {
        e.mac = Mac::parse(&e.mac)
            .map_err(|err| ApiError::bad_request(format!("boot_events: {err}")))?
            .to_string();
    }
    if e.xname.is_empty() && e.mac.is_empty() {
        return Err(ApiError::bad_request("boot_events: an event names no node"));
    }
    if !e.ip.is_empty() && e.ip.parse::<std::net::IpAddr>().is_err() {
        return Err(ApiError::bad_request(format!(
            "boot_events: ip {:?} is not an IP address",
            e.ip
        )));
    }
    if e.detail.len() > 512 || e.detail.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "boot_events: detail must be at most 512 printable characters",
        ));
    }
    Ok(e)
}

/// Keeps a site's enrollment candidates within [`Limits::candidates_per_site`], as the agent
/// keeps its unknown MACs: candidates the site has already are always updated; new ones are
/// taken in the order they were first seen (then by MAC) while there is room, and the rest are
/// removed from `macs`, logged and counted (the returned number). The rest of the report is
/// taken as usual. Counting reads every candidate (the table has no per-site index); it runs
/// only for reports that bring new MACs.
async fn cap_candidates(
    store: &dyn Store,
    site: &str,
    macs: &mut BTreeMap<String, UnknownMac>,
    known: &std::collections::HashSet<String>,
    limits: Limits,
) -> Result<usize, ApiError> {
    let mut new: Vec<(i64, String)> = macs
        .iter()
        .filter(|(id, _)| !known.contains(*id))
        .map(|(id, m)| (m.first_seen, id.clone()))
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    let mut kept = 0usize;
    for r in store.list_all(CANDIDATES, None).await? {
        let m: UnknownMac = serde_json::from_str(&r.body).map_err(|e| {
            ApiError::Internal(format!("stored candidate {} is unreadable: {e}", r.id))
        })?;
        if m.site == site {
            kept += 1;
        }
    }
    let room = limits.candidates_per_site.saturating_sub(kept);
    if new.len() <= room {
        return Ok(0);
    }
    new.sort();
    let over = new.split_off(room);
    for (_, id) in &over {
        macs.remove(id);
    }
    tracing::warn!(
        site,
        dropped = over.len(),
        kept,
        limit = limits.candidates_per_site,
        "unknown MACs not kept as enrollment candidates: the site has too many already"
    );
    Ok(over.len())
}

async fn candidates(
    State(Edge { store, .. }): State<Edge>,
    principal: Option<Extension<Principal>>,
) -> Res {
    let own = token_site(&principal);
    let mut out = Vec::new();
    for r in store.list_all(CANDIDATES, None).await? {
        let m: UnknownMac = serde_json::from_str(&r.body).map_err(|e| {
            ApiError::Internal(format!("stored candidate {} is unreadable: {e}", r.id))
        })?;
        if own.as_ref().is_none_or(|o| *o == m.site) {
            out.push(m);
        }
    }
    Ok(json(StatusCode::OK, &out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let r = app.clone().oneshot(req).await.unwrap();
        let (p, b) = r.into_parts();
        let bytes = b.collect().await.unwrap().to_bytes();
        (p.status, p.headers, String::from_utf8_lossy(&bytes).into())
    }

    fn get(path: &str, inm: Option<&str>) -> Request<Body> {
        let mut b = Request::get(path);
        if let Some(t) = inm {
            b = b.header(header::IF_NONE_MATCH, t);
        }
        b.body(Body::empty()).unwrap()
    }

    fn post(body: &str) -> Request<Body> {
        Request::post("/edge/v1/reports")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    fn whole() -> Limits {
        Limits {
            whole_installation: true,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn changes_are_304_until_something_synced_changes() {
        let (_dir, raw) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let store = crate::ChangeLog::local(raw);
        let app = router_with(store.clone(), whole());
        let (s, _, body) = call(&app, get("/edge/v1/snapshot", None)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let snap: SnapshotPage = serde_json::from_str(&body).unwrap();
        assert_eq!((snap.format, snap.next.as_deref()), (FORMAT, None));
        let changes = |c: &str| format!("/edge/v1/changes?after={c}");
        let (s, h, body) = call(&app, get(&changes(&snap.cursor), None)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let page: ChangePage = serde_json::from_str(&body).unwrap();
        assert!(page.tables.is_empty() && page.deleted.is_empty() && !page.more);
        // The answer's tag is for its own cursor: asking on from there with it is a 304.
        let tag = h.get(header::ETAG).unwrap().to_str().unwrap().to_string();
        let cursor = page.cursor;
        let (s, h2, body) = call(&app, get(&changes(&cursor), Some(&tag))).await;
        assert_eq!((s, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
        assert_eq!(h2.get(header::ETAG).unwrap().to_str().unwrap(), tag);
        store
            .write(vec![Write::Put {
                table: skyport_boot::params::BOOT_PARAMS,
                record: Record::new("host:x1000c0s0b0n0", "{\"kernel\":\"k\"}"),
                prev: None,
            }])
            .await
            .unwrap();
        // Endpoint history is written on every boot; it must not make every edge re-download.
        store
            .write(vec![Write::Upsert {
                table: skyport_boot::ENDPOINT_HISTORY,
                record: Record::new("x#bootscript", "{}"),
            }])
            .await
            .unwrap();
        let gz = Request::get(changes(&cursor))
            .header(header::ACCEPT_ENCODING, "br, gzip;q=0.8")
            .header(header::IF_NONE_MATCH, &tag)
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(gz).await.unwrap();
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let new_tag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_ne!(new_tag, tag);
        let zipped = r.into_body().collect().await.unwrap().to_bytes();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut text)
            .unwrap();
        let page: ChangePage = serde_json::from_str(&text).unwrap();
        assert_eq!(page.tables["BootParams"][0].id, "host:x1000c0s0b0n0");
        assert_eq!(page.tables.len(), 1, "{text}");
        let (s, _, _) = call(&app, get(&changes(&page.cursor), Some(&new_tag))).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn bad_cursors_are_refused_and_old_ones_are_gone() {
        let (_dir, raw) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let app = router_with(crate::ChangeLog::local(raw.clone()), whole());
        let zero = "0000000000000000-0000000000000000";
        for path in [
            "/edge/v1/changes".to_string(),
            "/edge/v1/changes?after=yesterday".to_string(),
            format!("/edge/v1/changes?after={zero}.{zero}"),
            format!("/edge/v1/changes?after={zero}&after={zero}"),
            format!("/edge/v1/changes?after={zero}&since=1"),
            "/edge/v1/snapshot?page=garbage".to_string(),
            "/edge/v1/snapshot?site=East".to_string(),
        ] {
            let (s, _, body) = call(&app, get(&path, None)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body.contains("\"detail\""), "{body}");
        }
        let (s, _, body) = call(&app, get(&format!("/edge/v1/changes?after={zero}"), None)).await;
        assert_eq!(s, StatusCode::GONE, "{body}");
        assert!(body.contains("full snapshot"), "{body}");
        // The cloud serves agents by site only: one without is told so.
        let cloud = router(crate::ChangeLog::new(raw).into_arc());
        let (s, _, body) = call(&cloud, get("/edge/v1/snapshot", None)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("by site"), "{body}");
        let (s, _, body) = call(&cloud, get("/edge/v1/snapshot?site=east", None)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    /// Emulates what the hostile test did (reports of thousands of new unknown MACs, one after
    /// another), scaled down with a low cap.
    #[tokio::test]
    async fn candidates_are_capped_per_site_first_seen_first() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let app = router_with(
            store.clone(),
            Limits {
                candidates_per_site: 5,
                ..Limits::default()
            },
        );
        let t = now() - 1000;
        let report = |site: &str, macs: &[(u8, i64)]| {
            let macs: Vec<serde_json::Value> = macs
                .iter()
                .map(|(m, first)| {
                    serde_json::json!({"mac": format!("52:54:00:00:00:{m:02x}"),
                                       "first_seen": t + first, "last_seen": t + 500})
                })
                .collect();
            post(&serde_json::json!({"site": site, "unknown_macs": macs}).to_string())
        };
        let listed = |body: &str, site: &str| -> Vec<String> {
            let c: Vec<UnknownMac> = serde_json::from_str(body).unwrap();
            c.into_iter()
                .filter(|m| m.site == site)
                .map(|m| m.mac)
                .collect()
        };
        // (new candidates, dropped) of one report, which must be accepted.
        let counts = async |site: &str, macs: &[(u8, i64)]| {
            let (s, _, body) = call(&app, report(site, macs)).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (v["unknown_macs"].as_u64(), v["dropped"].as_u64())
        };
        let (s, _, body) = call(&app, report("lab", &[(1, 1), (2, 2), (3, 3)])).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        // Two places left: the report is taken, its two earliest-seen new MACs kept, the
        // others dropped and counted, and MAC 1 (already a candidate) updated regardless.
        assert_eq!(
            counts("lab", &[(9, 9), (4, 4), (1, 0), (8, 8), (5, 5)]).await,
            (Some(3), Some(2))
        );
        let (_, _, body) = call(&app, get("/edge/v1/candidates", None)).await;
        assert_eq!(
            listed(&body, "lab"),
            [
                "52:54:00:00:00:01",
                "52:54:00:00:00:02",
                "52:54:00:00:00:03",
                "52:54:00:00:00:04",
                "52:54:00:00:00:05"
            ]
        );
        let c: Vec<UnknownMac> = serde_json::from_str(&body).unwrap();
        assert_eq!(c[0].first_seen, t, "a kept candidate is still updated");
        // Full: known MACs are still updated, new ones dropped, and the report is not refused.
        assert_eq!(counts("lab", &[(2, 2), (6, 6)]).await, (Some(1), Some(1)));
        // The cap is per site.
        assert_eq!(counts("annex", &[(6, 6), (7, 7)]).await, (Some(2), Some(0)));
        let (_, _, body) = call(&app, get("/edge/v1/candidates", None)).await;
        assert_eq!(listed(&body, "lab").len(), 5);
        assert_eq!(listed(&body, "annex").len(), 2);
    }

    #[tokio::test]
    async fn boot_events_are_kept_and_a_bad_one_is_skipped_not_the_report() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let app = router(store.clone());
        let ms = now() * 1000;
        let rep = format!(
            r#"{{"site":"lab","boot_events":[
                {{"at_ms":{ms},"stage":"dhcp_discover","xname":"x1000c0s0b0n0","mac":"52:54:00:00:00:01"}},
                {{"at_ms":{ms},"stage":"tftp","mac":"52:54:00:00:00:02","detail":"a\nb"}},
                {{"at_ms":5,"stage":"kernel","xname":"x1000c0s0b0n0"}},
                {{"at_ms":{},"stage":"phone_home","xname":"x1000c0s0b0n0","ip":"10.0.0.5"}}]}}"#,
            ms + 1000
        );
        let (s, _, body) = call(&app, post(&rep)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["boot_events"].as_u64(), v["skipped"].as_u64()),
            (Some(2), Some(2)),
            "{v}"
        );
        let t = skyport_boot::flight::timeline(store.as_ref(), "x1000c0s0b0n0")
            .await
            .unwrap();
        assert_eq!(t.len(), 2);
        let p = skyport_boot::flight::progress(store.as_ref(), Some("lab"))
            .await
            .unwrap();
        assert_eq!(p[0].phoned_home_after_ms, Some(1000));
        // An unknown stage is a malformed report (serde), as any malformed body.
        let (s, _, _) = call(&app, post(&rep.replace("dhcp_discover", "warp"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn reports_are_validated_whole_and_keep_the_newest() {
        let (_dir, store) = skyport_store_sqlite::SqliteStore::temporary().unwrap();
        let app = router(store.clone());
        let t = now() - 100;
        let good = format!(
            r#"{{"site":"lab","endpoint_history":[{{"name":"x1000c0s0b0n0","endpoint":"bootscript","last_epoch":{t}}}],
               "unknown_macs":[{{"mac":"52-54-00-AA-BB-CC","ip":"10.0.0.9","first_seen":{t},"last_seen":{t}}}]}}"#
        );
        let (s, _, body) = call(&app, post(&good)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (_, _, body) = call(&app, get("/edge/v1/candidates", None)).await;
        let c: Vec<UnknownMac> = serde_json::from_str(&body).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].mac.as_str(), c[0].site.as_str()),
            ("52:54:00:aa:bb:cc", "lab")
        );
        // An older report of the same node does not move its history back.
        let old = good.replace(&t.to_string(), &(t - 50).to_string());
        call(&app, post(&old)).await;
        let r = store
            .get(skyport_boot::ENDPOINT_HISTORY, "x1000c0s0b0n0#bootscript")
            .await
            .unwrap()
            .unwrap();
        assert!(r.body.contains(&t.to_string()), "{}", r.body);
        let (_, _, body) = call(&app, get("/edge/v1/candidates", None)).await;
        let c: Vec<UnknownMac> = serde_json::from_str(&body).unwrap();
        assert_eq!((c[0].first_seen, c[0].last_seen), (t - 50, t));
        // One bad entry refuses the whole report; nothing of it is written.
        for bad in [
            good.replace("x1000c0s0b0n0", "node7"),
            good.replace("\"bootscript\"", "\"kernel\""),
            good.replace("52-54-00-AA-BB-CC", "00:00:00:00:00:00"),
            good.replace("10.0.0.9", "ten"),
            good.replace(&format!("\"last_seen\":{t}"), "\"last_seen\":99999999999"),
            good.replace("\"lab\"", &format!("\"{}\"", "s".repeat(65))),
            "{".to_string(),
        ] {
            let bad = bad.replace("52-54-00-AA-BB-CC", "52:54:00:00:00:01");
            let (s, _, body) = call(&app, post(&bad)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (_, _, body) = call(&app, get("/edge/v1/candidates", None)).await;
        assert!(!body.contains("52:54:00:00:00:01"), "{body}");
    }
}
