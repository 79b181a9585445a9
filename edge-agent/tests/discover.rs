//! A discovery pass over a mixed fleet: healthy BMCs, hanging ones, an address with nothing on
//! it, one that is not in the site map. Every target gets a verdict; the hung BMCs cost their
//! timeout and nothing more; only named BMCs are queued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skyport_edge::discover::{self, CredentialSource, DiscoverOptions, Status};
use skyport_edge::outbox::Outbox;
use skyport_edge::sitemap::SiteMap;
use skyport_edge::targets;
use skyport_mockbmc::{BmcSpec, Fleet, FleetOptions, Tree, self_signed, shared_mockups};
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
