//! One discovery run: scan every target (TCP connect, then an unauthenticated
//! `GET /redfish/v1/`), crawl each BMC found, name it from the site map, and queue its SMD
//! payload in the outbox. Targets run `concurrency` at a time; each BMC is bounded by its
//! timeouts, an overall deadline and a memory budget, so a hung or hostile BMC costs at most that
//! and never holds up the others.
//!
//! Memory: every BMC's budget (`Limits::max_retained`) counts against the pass's
//! (`Limits::max_pass_retained`) for as long as the BMC's crawl or its result is held, so the
//! pass as a whole is bounded too. A BMC that passes either budget fails with a reason naming it;
//! a result that would take the results held past half the pass's budget is still queued, but
//! its inventory and payload are left out of the report, so crawls keep the other half.
//!
//! Discovery is grouped here: what to scan ([`targets`]), how BMCs are named ([`sitemap`]) and
//! logged in to ([`secrets`]), and where results wait for the cloud ([`outbox`]).

pub mod outbox;
pub mod secrets;
pub mod sitemap;
pub mod targets;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Serialize;
use skyport_redfish::payload::{EndpointPayload, Identity, build};
use skyport_redfish::{
    AuthMode, BmcClient, BmcInventory, CrawlOptions, Credentials, FetchError, Limits, MemoryBudget,
    Scope, TlsPolicy, crawl,
};

use crate::discovery::outbox::Outbox;
use crate::discovery::secrets::SecretStore;
use crate::discovery::sitemap::SiteMap;
use crate::discovery::targets::Target;
use crate::hardware::directory::{self, Directory};

/// Where BMC credentials come from: the encrypted file first, then a default for every BMC.
#[derive(Default)]
pub struct CredentialSource {
    pub store: Option<SecretStore>,
    pub default: Option<Credentials>,
}

impl CredentialSource {
    pub fn for_target(&self, t: &Target) -> Option<Credentials> {
        self.store
            .as_ref()
            .and_then(|s| s.lookup(&t.host, t.port).cloned())
            .or_else(|| self.default.clone())
    }
}

pub struct DiscoverOptions {
    pub scheme: String,
    /// BMCs crawled at once.
    pub concurrency: usize,
    /// Targets probed at once (TCP connect + one GET each: cheap, so wider).
    pub scan_concurrency: usize,
    pub limits: Limits,
    /// Overall time one BMC may take, scan and crawl together.
    pub bmc_deadline: Duration,
    pub crawl: CrawlOptions,
    pub auth: AuthMode,
    pub tls: TlsPolicy,
    pub credentials: CredentialSource,
    pub site_map: Option<SiteMap>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Crawled, named and queued (or printed).
    Discovered,
    /// A Redfish BMC, crawled, but not queued (not in the site map).
    Skipped,
    /// A Redfish BMC that could not be crawled (credentials, TLS, timeouts, garbage).
    Failed,
    /// Nothing Redfish there (no answer, closed port, not a Redfish service root).
    Absent,
}

/// One line of the summary table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    pub status: Status,
    pub xname: Option<String>,
    pub vendor: Option<String>,
    pub mac: Option<String>,
    pub systems: usize,
    pub requests: usize,
    pub elapsed_ms: u64,
    pub reason: Option<String>,
    pub warnings: Vec<String>,
}

/// A row plus what was found, for `--output` and tests.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    #[serde(flatten)]
    pub row: Row,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<BmcInventory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<EndpointPayload>,
    /// The BMC's memory account, holding the inventory's and payload's bytes against the pass's
    /// budget for as long as this result is kept.
    #[serde(skip)]
    held: Option<Arc<MemoryBudget>>,
}

fn row(t: &Target, scheme: &str, status: Status, started: Instant) -> Row {
    Row {
        target: t.url(scheme),
        status,
        xname: None,
        vendor: None,
        mac: None,
        systems: 0,
        requests: 0,
        elapsed_ms: started.elapsed().as_millis() as u64,
        reason: None,
        warnings: Vec::new(),
    }
}

/// Whether an error means "no Redfish here" rather than "a BMC that failed".
fn absent(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::Connect { .. } | FetchError::Status { .. } | FetchError::Json { .. }
    )
}

/// A BMC that answered the probe, waiting for its crawl.
struct Probed {
    t: Target,
    client: BmcClient,
    root: serde_json::Value,
    started: Instant,
    /// The BMC user the client authenticates as (reported in the payload, never the password).
    user: Option<String>,
}

fn verdict(
    t: &Target,
    o: &DiscoverOptions,
    started: Instant,
    status: Status,
    reason: String,
) -> Found {
    Found {
        row: Row {
            reason: Some(reason),
            ..row(t, &o.scheme, status, started)
        },
        inventory: None,
        payload: None,
        held: None,
    }
}

/// The scan: TCP connect, then an unauthenticated `GET /redfish/v1/` that must be a service root.
async fn probe(t: Target, o: &DiscoverOptions, pass: &Arc<MemoryBudget>) -> Result<Probed, Found> {
    let started = Instant::now();
    let mk = |status, reason: String| verdict(&t, o, started, status, reason);
    // TCP first: a closed port or an empty address answers fast or within the connect timeout.
    let addr = match t.ip() {
        Some(ip) => format!("{}", std::net::SocketAddr::new(ip, t.port)),
        None => format!("{}:{}", t.host, t.port),
    };
    match tokio::time::timeout(
        o.limits.connect_timeout,
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(mk(Status::Absent, format!("no TCP connection: {e}"))),
        Err(_) => return Err(mk(Status::Absent, "no TCP connection: timed out".into())),
    }
    let creds = o.credentials.for_target(&t);
    let user = creds.as_ref().map(|c| c.username.clone());
    let client = match BmcClient::new(&t.url(&o.scheme), &o.tls, creds, o.auth, o.limits.clone()) {
        Ok(c) => c.within_pass(pass),
        Err(e) => return Err(mk(Status::Failed, e.to_string())),
    };
    let root = match tokio::time::timeout(o.bmc_deadline, client.service_root()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if absent(&e) => {
            return Err(mk(Status::Absent, format!("not Redfish: {e}")));
        }
        Ok(Err(e)) => return Err(mk(Status::Failed, e.to_string())),
        Err(_) => {
            return Err(mk(
                Status::Failed,
                format!("gave up after {}s", o.bmc_deadline.as_secs()),
            ));
        }
    };
    if root.get("RedfishVersion").is_none() && root.get("Systems").is_none() {
        return Err(mk(
            Status::Absent,
            "not Redfish: /redfish/v1/ is not a service root".into(),
        ));
    }
    Ok(Probed {
        t,
        client,
        root,
        started,
        user,
    })
}

/// What the results of one pass hold against its memory budget.
struct Results {
    pass: Arc<MemoryBudget>,
    held: AtomicUsize,
}

impl Results {
    /// Keeps `f`'s inventory and payload if the results held stay within half the pass's budget;
    /// otherwise drops them (and their charge) and says so in the row.
    fn keep(&self, mut f: Found) -> Found {
        let Some(held) = f.held.as_ref() else {
            return f;
        };
        let bytes = held.used();
        let half = self.pass.limit() / 2;
        let fits = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                h.checked_add(bytes).filter(|n| *n <= half)
            })
            .is_ok();
        if !fits {
            f.inventory = None;
            f.payload = None;
            f.held = None;
            f.row.warnings.push(format!(
                "result left out of this report: the results held reached half of the pass's \
                 memory budget of {} bytes{}",
                self.pass.limit(),
                if f.row.status == Status::Discovered {
                    "; it was queued"
                } else {
                    ""
                }
            ));
        }
        f
    }
}

/// The crawl of a probed BMC, naming it and queueing its payload.
async fn crawl_one(p: Probed, o: &DiscoverOptions, outbox: Option<&Outbox>) -> Found {
    let Probed {
        t,
        client,
        root,
        started,
        user,
    } = p;
    let mk = |status, reason: String| verdict(&t, o, started, status, reason);
    let Some(user) = user else {
        return mk(
            Status::Failed,
            "no credentials for this BMC (secrets file or --bmc-user)".into(),
        );
    };
    let left = o.bmc_deadline.saturating_sub(started.elapsed());
    let inv = match tokio::time::timeout(left, crawl(&client, Some(root), t.ip(), &o.crawl)).await {
        Ok(Ok(inv)) => inv,
        Ok(Err(e)) => {
            let mut f = mk(Status::Failed, e.to_string());
            f.row.requests = client.requests();
            return f;
        }
        Err(_) => {
            // The crawl future was dropped: any session it opened is abandoned. Try to close it
            // so the BMC's session slots are not used up by our retries.
            if let Err(e) = client.logout().await {
                tracing::debug!(bmc = %client.key(), error = %e, "logout after deadline failed");
            }
            let mut f = mk(
                Status::Failed,
                format!("gave up after {}s", o.bmc_deadline.as_secs()),
            );
            f.row.requests = client.requests();
            return f;
        }
    };
    let mut r = row(&t, &o.scheme, Status::Discovered, started);
    r.vendor = Some(inv.vendor.clone());
    r.mac = inv.bmc_mac.map(|m| m.to_string());
    r.systems = inv.systems.len();
    r.requests = inv.requests;
    r.warnings = inv.warnings.clone();
    let xname = o
        .site_map
        .as_ref()
        .and_then(|m| m.lookup(t.ip(), inv.bmc_mac))
        .cloned();
    let Some(xname) = xname else {
        r.status = Status::Skipped;
        r.reason = Some(match &o.site_map {
            Some(_) => "not in the site map (by IP or BMC MAC); nothing queued".into(),
            None => "no site map given; nothing queued".into(),
        });
        return Found {
            row: r,
            inventory: Some(inv),
            payload: None,
            held: Some(client.memory().clone()),
        };
    };
    r.xname = Some(xname.to_string());
    let fqdn = match (t.ip(), t.port) {
        (Some(IpAddr::V6(ip)), 443) => ip.to_string(),
        (Some(IpAddr::V6(ip)), p) => format!("[{ip}]:{p}"),
        (_, 443) => t.host.clone(),
        (_, p) => format!("{}:{p}", t.host),
    };
    // The payload copies what the inventory holds, which is about what the crawl kept.
    let kept = client.memory().used();
    if let Err(e) = client.memory().try_charge(kept) {
        let mut f = mk(Status::Failed, format!("{e} (building its payload)"));
        f.row.requests = inv.requests;
        return f;
    }
    let payload = build(
        &inv,
        &Identity {
            xname: xname.to_string(),
            fqdn,
            user,
        },
    );
    if let Some(ob) = outbox {
        if let Err(e) = ob.enqueue(payload.clone()).await {
            r.status = Status::Failed;
            r.reason = Some(format!("could not queue the result: {e}"));
        }
        // Where jobs will find this BMC's nodes (kept beside the outbox, never sent).
        let e = directory::entry(&xname, &t.url(&o.scheme), &t.host, t.port, &inv);
        if let Err(e) = Directory::new(ob.store().clone()).record(&e).await {
            tracing::warn!(bmc = %r.target, xname = %xname, error = %e,
                "BMC not recorded for jobs; power actions on its nodes fail until the next pass");
        }
    }
    tracing::info!(bmc = %r.target, xname = %xname, vendor = %inv.vendor,
        systems = r.systems, "BMC discovered");
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    Found {
        row: r,
        inventory: Some(inv),
        payload: Some(payload),
        held: Some(client.memory().clone()),
    }
}

/// Runs discovery over `targets`; `progress` is called after each target. Probes run
/// `scan_concurrency` at a time and crawls `concurrency` at a time, pipelined: a BMC that hangs
/// the probe holds a cheap probe slot for its timeout, not a crawl slot.
pub async fn run(
    targets: Vec<Target>,
    opts: Arc<DiscoverOptions>,
    outbox: Option<Outbox>,
    progress: impl Fn(&Found),
) -> Vec<Found> {
    // Probing runs in its own task so it is not held back while every crawl slot is busy: a
    // hung BMC starts its timeout early and overlaps the crawls. The channel bounds how far it
    // runs ahead (each waiting result holds a client and a service root).
    let ahead = opts.scan_concurrency.max(1) * 4;
    let results = Arc::new(Results {
        pass: MemoryBudget::new(Scope::Pass, opts.limits.max_pass_retained),
        held: AtomicUsize::new(0),
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Probed, Found>>(ahead);
    let prober = {
        let opts = opts.clone();
        let pass = results.pass.clone();
        tokio::spawn(async move {
            let mut probes = stream::iter(targets)
                .map(|t| {
                    let opts = opts.clone();
                    let pass = pass.clone();
                    async move { probe(t, &opts, &pass).await }
                })
                .buffer_unordered(opts.scan_concurrency.max(1));
            while let Some(p) = probes.next().await {
                if tx.send(p).await.is_err() {
                    break;
                }
            }
        })
    };
    let probes = stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut out: Vec<Found> = probes
        .map(|p| {
            let opts = opts.clone();
            let outbox = outbox.clone();
            let results = results.clone();
            async move {
                match p {
                    Ok(p) => results.keep(crawl_one(p, &opts, outbox.as_ref()).await),
                    Err(done) => done,
                }
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .inspect(|f| progress(f))
        .collect()
        .await;
    if let Err(e) = prober.await {
        tracing::error!(error = %e, "the probe task failed; some targets have no verdict");
    }
    out.sort_by(|a, b| {
        a.row
            .status
            .cmp(&b.row.status)
            .then_with(|| a.row.target.cmp(&b.row.target))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered(pass: &Arc<MemoryBudget>, bytes: usize) -> Found {
        let bmc = pass.child(Scope::Bmc, usize::MAX);
        bmc.try_charge(bytes).unwrap_or_else(|e| panic!("{e}"));
        let t = Target {
            host: "10.0.0.1".into(),
            port: 443,
        };
        Found {
            row: row(&t, "https", Status::Discovered, Instant::now()),
            inventory: Some(BmcInventory::default()),
            payload: None,
            held: Some(bmc),
        }
    }

    #[test]
    fn results_past_half_the_pass_budget_are_left_out_of_the_report_and_release_their_bytes() {
        let results = Results {
            pass: MemoryBudget::new(Scope::Pass, 1000),
            held: AtomicUsize::new(0),
        };
        let a = results.keep(discovered(&results.pass, 300));
        assert!(a.inventory.is_some() && a.row.warnings.is_empty());
        let b = results.keep(discovered(&results.pass, 300));
        assert!(b.inventory.is_none() && b.held.is_none());
        assert!(
            b.row.warnings[0].contains("half of the pass's memory budget of 1000 bytes"),
            "{:?}",
            b.row.warnings
        );
        assert_eq!(
            b.row.status,
            Status::Discovered,
            "still queued, only not held"
        );
        assert_eq!(
            results.pass.used(),
            300,
            "the left-out result returned its bytes"
        );
        let c = results.keep(discovered(&results.pass, 200));
        assert!(c.inventory.is_some());
        assert_eq!(results.pass.used(), 500);
    }
}
