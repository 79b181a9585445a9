//! A discovery pass over a mixed fleet: healthy BMCs, hanging ones, an address with nothing on
//! it, one that is not in the site map, and hostile ones that try to exhaust the agent's memory.
//! Every target gets a verdict; the hung BMCs cost their timeout and the hostile ones their
//! memory budget, nothing more; only named BMCs are queued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use skyport_edge::discover::{self, CredentialSource, DiscoverOptions, Status};
use skyport_edge::outbox::Outbox;
use skyport_edge::sitemap::SiteMap;
use skyport_edge::targets;
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
    let fleet = Fleet::start(
        specs,
        &FleetOptions {
            username: "admin".into(),
            password: "pw".into(),
            tls: Some(self_signed().unwrap().config),
        },
    )
    .await
    .unwrap();
    // Everything but .12 is in the site map.
    let site: String = (1..=11)
        .map(|i| format!("127.0.7.{i}: x3000c0s{i}b0\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("edge.sqlite")).unwrap(),
    ));
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
        credentials: CredentialSource {
            store: None,
            default: Some(Credentials {
                username: "admin".into(),
                password: "pw".into(),
            }),
        },
        site_map: Some(SiteMap::parse(&site, std::path::Path::new("site.yaml")).unwrap()),
    };
    let t = targets::expand(&["127.0.7.1-14".into()], &[port]).unwrap();
    let started = Instant::now();
    let found = discover::run(t, Arc::new(opts), Some(outbox.clone()), |_| {}).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout + Duration::from_millis(1500),
        "a hung BMC held up the run: {elapsed:?}"
    );
    let verdict = |ip: &str| {
        found
            .iter()
            .find(|f| f.row.target == format!("https://{ip}:{port}"))
            .unwrap()
            .row
            .clone()
    };
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
    let queued: Vec<String> = outbox
        .all()
        .await
        .unwrap()
        .iter()
        .map(|q| q.id().to_string())
        .collect();
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
) -> (Vec<discover::Found>, Vec<String>, u16) {
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
    let fleet = Fleet::start(
        vec![hostile, good],
        &FleetOptions {
            username: "admin".into(),
            password: "pw".into(),
            tls: Some(self_signed().unwrap().config),
        },
    )
    .await
    .unwrap();
    let site = format!("{hostile_ip}: x3000c0s1b0\n{good_ip}: x3000c0s2b0\n");
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("edge.sqlite")).unwrap(),
    ));
    let opts = DiscoverOptions {
        scheme: "https".into(),
        concurrency,
        scan_concurrency: concurrency,
        limits,
        bmc_deadline: Duration::from_secs(60),
        crawl: CrawlOptions::default(),
        auth: AuthMode::Basic,
        tls: TlsPolicy::Insecure,
        credentials: CredentialSource {
            store: None,
            default: Some(Credentials {
                username: "admin".into(),
                password: "pw".into(),
            }),
        },
        site_map: Some(SiteMap::parse(&site, std::path::Path::new("site.yaml")).unwrap()),
    };
    let t = targets::expand(&[format!("{hostile_ip}-{}", base + 1)], &[port]).unwrap();
    let found = discover::run(t, Arc::new(opts), Some(outbox.clone()), |_| {}).await;
    let queued = outbox
        .all()
        .await
        .unwrap()
        .iter()
        .map(|q| q.id().to_string())
        .collect();
    drop(fleet);
    (found, queued, port)
}

fn verdict(found: &[discover::Found], ip: &str, port: u16) -> skyport_edge::discover::Row {
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
    let (found, queued, port) = hostile_and_good_pass(1, limits, 2).await;
    let hostile = verdict(&found, "127.0.8.1", port);
    assert_eq!(hostile.status, Status::Failed, "{hostile:?}");
    let reason = hostile.reason.unwrap();
    assert!(
        reason.contains("memory budget of 4194304 bytes per BMC exhausted"),
        "{reason}"
    );
    let good = verdict(&found, "127.0.8.2", port);
    assert_eq!(good.status, Status::Discovered, "{good:?}");
    assert_eq!(good.xname.as_deref(), Some("x3000c0s2b0"));
    assert_eq!(queued, ["x3000c0s2b0"]);
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
    let (found, queued, port) = hostile_and_good_pass(3, limits, 1).await;
    let hostile = verdict(&found, "127.0.8.3", port);
    assert_eq!(hostile.status, Status::Failed, "{hostile:?}");
    let reason = hostile.reason.unwrap();
    assert!(
        reason.contains("memory budget of 4194304 bytes per discovery pass exhausted"),
        "{reason}"
    );
    let good = verdict(&found, "127.0.8.4", port);
    assert_eq!(good.status, Status::Discovered, "{good:?}");
    assert_eq!(queued, ["x3000c0s2b0"]);
}
