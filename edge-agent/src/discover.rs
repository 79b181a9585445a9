//! One discovery run: scan every target (TCP connect, then an unauthenticated
//! `GET /redfish/v1/`), crawl each BMC found, name it from the site map, and queue its SMD
//! payload in the outbox. Targets run `concurrency` at a time; each BMC is bounded by its
//! timeouts and an overall deadline, so a hung or hostile BMC costs at most that and never
//! holds up the others.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Serialize;
use skyport_redfish::payload::{EndpointPayload, Identity, build};
use skyport_redfish::{
    AuthMode, BmcClient, BmcInventory, CrawlOptions, Credentials, FetchError, Limits, TlsPolicy,
    crawl,
};

use crate::outbox::Outbox;
use crate::secrets::SecretStore;
use crate::sitemap::SiteMap;
use crate::targets::Target;

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
    pub concurrency: usize,
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

async fn one(t: Target, o: &DiscoverOptions, outbox: Option<&Outbox>) -> Found {
    let started = Instant::now();
    let mk = |status, reason: String| Found {
        row: Row {
            reason: Some(reason),
            ..row(&t, &o.scheme, status, started)
        },
        inventory: None,
        payload: None,
    };
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
        Ok(Err(e)) => return mk(Status::Absent, format!("no TCP connection: {e}")),
        Err(_) => return mk(Status::Absent, "no TCP connection: timed out".into()),
    }
    let client = match BmcClient::new(
        &t.url(&o.scheme),
        &o.tls,
        o.credentials.for_target(&t),
        o.auth,
        o.limits.clone(),
    ) {
        Ok(c) => c,
        Err(e) => return mk(Status::Failed, e.to_string()),
    };
    let work = async {
        let root = match client.service_root().await {
            Ok(r) => r,
            Err(e) if absent(&e) => return Err((Status::Absent, format!("not Redfish: {e}"))),
            Err(e) => return Err((Status::Failed, e.to_string())),
        };
        if root.get("RedfishVersion").is_none() && root.get("Systems").is_none() {
            return Err((
                Status::Absent,
                "not Redfish: /redfish/v1/ is not a service root".into(),
            ));
        }
        if o.credentials.for_target(&t).is_none() {
            return Err((
                Status::Failed,
                "no credentials for this BMC (secrets file or --bmc-user)".into(),
            ));
        }
        crawl(&client, Some(root), t.ip(), &o.crawl)
            .await
            .map_err(|e| (Status::Failed, e.to_string()))
    };
    let inv = match tokio::time::timeout(o.bmc_deadline, work).await {
        Ok(Ok(inv)) => inv,
        Ok(Err((status, reason))) => {
            let mut f = mk(status, reason);
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
        };
    };
    r.xname = Some(xname.to_string());
    let fqdn = match (t.ip(), t.port) {
        (Some(IpAddr::V6(ip)), 443) => ip.to_string(),
        (Some(IpAddr::V6(ip)), p) => format!("[{ip}]:{p}"),
        (_, 443) => t.host.clone(),
        (_, p) => format!("{}:{p}", t.host),
    };
    let user = o
        .credentials
        .for_target(&t)
        .map(|c| c.username)
        .unwrap_or_default();
    let payload = build(
        &inv,
        &Identity {
            xname: xname.to_string(),
            fqdn,
            user,
        },
    );
    if let Some(ob) = outbox
        && let Err(e) = ob.enqueue(payload.clone()).await
    {
        r.status = Status::Failed;
        r.reason = Some(format!("could not queue the result: {e}"));
    }
    tracing::info!(bmc = %r.target, xname = %xname, vendor = %inv.vendor,
        systems = r.systems, "BMC discovered");
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    Found {
        row: r,
        inventory: Some(inv),
        payload: Some(payload),
    }
}

/// Runs discovery over `targets`; `progress` is called after each target.
pub async fn run(
    targets: Vec<Target>,
    opts: Arc<DiscoverOptions>,
    outbox: Option<Outbox>,
    progress: impl Fn(&Found),
) -> Vec<Found> {
    let mut out: Vec<Found> = stream::iter(targets)
        .map(|t| {
            let opts = opts.clone();
            let outbox = outbox.clone();
            async move { one(t, &opts, outbox.as_ref()).await }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .inspect(|f| progress(f))
        .collect()
        .await;
    out.sort_by(|a, b| {
        a.row
            .status
            .cmp(&b.row.status)
            .then_with(|| a.row.target.cmp(&b.row.target))
    });
    out
}
