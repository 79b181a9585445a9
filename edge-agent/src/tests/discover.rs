//! A discovery pass over a mixed fleet: healthy BMCs, hanging ones, an address with nothing on
//! it, one that is not in the site map, and hostile ones that try to exhaust the agent's memory.
//! Every target gets a verdict; the hung BMCs cost their timeout and the hostile ones their
//! memory budget, nothing more; only named BMCs are queued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::discovery::outbox::Outbox;
use crate::discovery::sitemap::SiteMap;
use crate::discovery::targets;
use crate::discovery::{self, CredentialSource, DiscoverOptions, Status};
use serde_json::json;
use skyport_mockbmc::{
    BmcSpec, Fleet, FleetOptions, HugeMembers, Tree, self_signed, shared_mockups,
};
use skyport_redfish::{AuthMode, CrawlOptions, Credentials, Limits, PinStore, TlsPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_bmcs_cost_one_timeout_and_every_target_gets_a_verdict() {
    let tree = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let port = 47_000 + (std::process::id() % 1000) as u16;
    // 127.0.7.1..=12 serve; .5 and .9 hang; .13 and .14 have nothing listening.
    let specs: Vec<BmcSpec> = (1..=12u8)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 0, 7, i);
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree.clone());
            s.uniquify = Some(i as u32);
            s.rewrite_ip = Some("192.168.0.10".into());
            s.faults.hang = i == 5 || i == 9;
            s
        })
        .collect();
    let fleet = fleet(specs).await;
    // Everything but .12 is in the site map.
    let site: String = (1..=11)
        .map(|i| format!("127.0.7.{i}: x3000c0s{i}b0\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let outbox = outbox(&dir);
    let timeout = Duration::from_millis(800);
    let opts = DiscoverOptions {
        scheme: "https".into(),
        concurrency: 16,
        scan_concurrency: 64,
        limits: Limits {
            request_timeout: timeout,
            ..Limits::default()
        },
        bmc_deadline: Duration::from_secs(30),
        crawl: CrawlOptions::default(),
        auth: AuthMode::Basic,
        tls: TlsPolicy::Tofu(Arc::new(PinStore::memory())),
        credentials: admin_pw(),
        site_map: Some(site_map(&site)),
    };
    let t = targets::expand(&["127.0.7.1-14".into()], &[port]).unwrap();
    let started = Instant::now();
    let found = discovery::run(t, Arc::new(opts), Some(outbox.clone()), |_| {}).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout + Duration::from_millis(1500),
        "a hung BMC held up the run: {elapsed:?}"
    );
    let verdict = |ip: &str| verdict(&found, ip, port);
    for i in [1, 2, 3, 4, 6, 7, 8, 10, 11] {
        let r = verdict(&format!("127.0.7.{i}"));
        assert_eq!(r.status, Status::Discovered, "{r:?}");
        assert_eq!(r.xname.as_deref(), Some(format!("x3000c0s{i}b0").as_str()));
    }
    for i in [5, 9] {
        let r = verdict(&format!("127.0.7.{i}"));
        assert_eq!(r.status, Status::Failed, "{r:?}");
        assert!(r.reason.as_deref().unwrap().contains("timed out"), "{r:?}");
    }
    let r = verdict("127.0.7.12");
    assert_eq!(r.status, Status::Skipped);
    assert!(r.reason.unwrap().contains("not in the site map"));
    for i in [13, 14] {
        assert_eq!(verdict(&format!("127.0.7.{i}")).status, Status::Absent);
    }
    // Only the named, healthy BMCs were queued, once each.
    let queued = queued(&outbox).await;
    assert_eq!(queued.len(), 9, "{queued:?}");
    assert!(!queued.contains(&"x3000c0s5b0".to_string()));
    // A second pass replaces the queued results instead of adding to them.
    drop(fleet);
}

/// A pass over two BMCs at 127.0.8.`base`+{0,1}: the first emulates the BMC of issue 12 (a
/// `Systems` collection of 64 members of 256 KiB, their bulk in a field the crawl keeps), the
/// second is a healthy one. Both are in the site map.
async fn hostile_and_good_pass(
    base: u8,
    limits: Limits,
    concurrency: usize,
) -> (Vec<discovery::Found>, Vec<String>, u16) {
    let port = 47_000 + (std::process::id() % 1000) as u16;
    let hostile_ip = Ipv4Addr::new(127, 0, 8, base);
    let good_ip = Ipv4Addr::new(127, 0, 8, base + 1);
    let root = json!({"RedfishVersion": "1.6.0", "Systems": {"@odata.id": "/redfish/v1/Systems"}});
    let mut hostile = BmcSpec::new(
        SocketAddr::new(IpAddr::V4(hostile_ip), port),
        Arc::new(Tree {
            name: "hostile".into(),
            resources: [("/redfish/v1".to_string(), root)].into_iter().collect(),
        }),
    );
    hostile.faults.huge_members = Some(HugeMembers::strings("/redfish/v1/Systems", 64, 256 << 10));
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut good = BmcSpec::new(SocketAddr::new(IpAddr::V4(good_ip), port), dmtf);
    good.rewrite_ip = Some("192.168.0.10".into());
    let fleet = fleet(vec![hostile, good]).await;
    let site = format!("{hostile_ip}: x3000c0s1b0\n{good_ip}: x3000c0s2b0\n");
    let dir = tempfile::tempdir().unwrap();
    let outbox = outbox(&dir);
    let opts = DiscoverOptions {
        scheme: "https".into(),
        concurrency,
        scan_concurrency: concurrency,
        limits,
        bmc_deadline: Duration::from_secs(60),
        crawl: CrawlOptions::default(),
        auth: AuthMode::Basic,
        tls: TlsPolicy::Insecure,
        credentials: admin_pw(),
        site_map: Some(site_map(&site)),
    };
    let t = targets::expand(&[format!("{hostile_ip}-{}", base + 1)], &[port]).unwrap();
    let found = discovery::run(t, Arc::new(opts), Some(outbox.clone()), |_| {}).await;
    let queued = queued(&outbox).await;
    drop(fleet);
    (found, queued, port)
}

/// Asserts of a [`hostile_and_good_pass`] at `base` that the hostile BMC failed on its memory
/// budget (`budget` ... exhausted) and the good one was discovered and alone queued; returns
/// the good one's row.
fn hostile_failed_good_queued(
    (found, queued, port): (Vec<discovery::Found>, Vec<String>, u16),
    base: u8,
    budget: &str,
) -> crate::discovery::Row {
    let hostile = verdict(&found, &format!("127.0.8.{base}"), port);
    assert_eq!(hostile.status, Status::Failed, "{hostile:?}");
    let reason = hostile.reason.unwrap();
    assert!(reason.contains(&format!("{budget} exhausted")), "{reason}");
    let good = verdict(&found, &format!("127.0.8.{}", base + 1), port);
    assert_eq!(good.status, Status::Discovered, "{good:?}");
    assert_eq!(queued, ["x3000c0s2b0"]);
    good
}

/// The mock fleet serving `specs` over HTTPS, user admin, password pw.
async fn fleet(specs: Vec<BmcSpec>) -> Fleet {
    let tls = Some(self_signed().unwrap().config);
    let options = FleetOptions {
        username: "admin".into(),
        password: "pw".into(),
        tls,
    };
    Fleet::start(specs, &options).await.unwrap()
}

/// The outbox of an agent whose data is in `dir`.
fn outbox(dir: &tempfile::TempDir) -> Outbox {
    let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("edge.sqlite")).unwrap();
    Outbox::new(Arc::new(store))
}

/// The IDs of what `outbox` holds.
async fn queued(outbox: &Outbox) -> Vec<String> {
    let all = outbox.all().await.unwrap();
    all.iter().map(|q| q.id().to_string()).collect()
}

/// The fleet's credentials, as the site's default.
fn admin_pw() -> CredentialSource {
    let default = Credentials {
        username: "admin".into(),
        password: "pw".into(),
    };
    CredentialSource {
        store: None,
        default: Some(default),
    }
}

fn site_map(site: &str) -> SiteMap {
    SiteMap::parse(site, std::path::Path::new("site.yaml")).unwrap()
}

fn verdict(found: &[discovery::Found], ip: &str, port: u16) -> crate::discovery::Row {
    found
        .iter()
        .find(|f| f.row.target == format!("https://{ip}:{port}"))
        .unwrap()
        .row
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_past_its_memory_budget_fails_and_the_good_one_beside_it_is_queued() {
    let limits = Limits {
        max_body: 512 << 10,
        max_retained: 4 << 20,
        ..Limits::default()
    };
    let pass = hostile_and_good_pass(1, limits, 2).await;
    let good = hostile_failed_good_queued(pass, 1, "memory budget of 4194304 bytes per BMC");
    assert_eq!(good.xname.as_deref(), Some("x3000c0s2b0"));
}

/// The pass's own bound: a BMC within its own budget but past the pass's fails with a reason
/// naming the pass, and what it held is returned, so the healthy BMC crawled after it is
/// discovered and queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_past_the_pass_memory_budget_fails_and_the_pass_goes_on() {
    let limits = Limits {
        max_body: 512 << 10,
        max_retained: 64 << 20,
        max_pass_retained: 4 << 20,
        ..Limits::default()
    };
    // One at a time, the hostile BMC first.
    let pass = hostile_and_good_pass(3, limits, 1).await;
    hostile_failed_good_queued(pass, 3, "memory budget of 4194304 bytes per discovery pass");
}
