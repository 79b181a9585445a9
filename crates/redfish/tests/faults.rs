//! Hostile and broken BMCs, served by the mock fleet over HTTPS: each bad document costs one
//! resource (with a reason), a bad BMC costs one BMC, nothing panics or hangs. Plus property
//! tests that the lenient parsers accept any JSON at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};
use skyport_mockbmc::{
    BmcSpec, Canned, Faults, Fleet, FleetOptions, Tree, self_signed, shared_mockups, site_ca,
};
use skyport_redfish::crawl::{CrawlError, nic, parse_system};
use skyport_redfish::{
    AuthMode, BmcClient, CrawlOptions, Credentials, FetchError, Limits, PinStore, TlsPolicy, crawl,
};

fn creds() -> Credentials {
    Credentials {
        username: "admin".into(),
        password: "pw".into(),
    }
}

async fn fleet(specs: Vec<BmcSpec>) -> Fleet {
    Fleet::start(
        specs,
        &FleetOptions {
            username: "admin".into(),
            password: "pw".into(),
            tls: Some(self_signed().unwrap().config),
        },
    )
    .await
    .unwrap()
}

fn client(addr: SocketAddr, mode: AuthMode, limits: Limits) -> BmcClient {
    BmcClient::new(
        &format!("https://{addr}"),
        &TlsPolicy::Insecure,
        Some(creds()),
        mode,
        limits,
    )
    .unwrap()
}

fn tree(resources: Vec<(&str, Value)>) -> Arc<Tree> {
    Arc::new(Tree {
        name: "synthetic".into(),
        resources: resources
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    })
}

fn canned(status: u16, headers: &[(&str, &str)], body: String) -> Canned {
    Canned {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

fn members(paths: &[&str]) -> Value {
    json!({"Members": paths.iter().map(|p| json!({"@odata.id": p})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn hostile_documents_cost_one_resource_each_with_a_reason() {
    let t = tree(vec![
        (
            "/redfish/v1",
            json!({"RedfishVersion": "1.6.0", "Systems": {"@odata.id": "/redfish/v1/Systems"}}),
        ),
        (
            "/redfish/v1/Systems",
            members(&[
                "/redfish/v1/Systems/good",
                "/redfish/v1/Systems/deep",
                "/redfish/v1/Systems/huge",
                "/redfish/v1/Systems/types",
                "https://evil.example/redfish/v1/Systems/x",
                "/redfish/v1/Systems/loop",
                "/redfish/v1/Systems/away",
                "/redfish/v1/Systems/good",
                "/redfish/v1/Systems/array",
            ]),
        ),
        (
            "/redfish/v1/Systems/good",
            json!({"Id": "good", "UUID": "u-1", "PowerState": "On",
            "EthernetInterfaces": {"@odata.id": "/redfish/v1/Systems/good/EthernetInterfaces"}}),
        ),
        (
            "/redfish/v1/Systems/good/EthernetInterfaces",
            members(&[
                "/redfish/v1/Systems/good/EthernetInterfaces/1",
                "http://10.9.9.9/redfish/v1/x",
            ]),
        ),
        (
            "/redfish/v1/Systems/good/EthernetInterfaces/1",
            json!({"MACAddress": "aa:bb:cc:00:11:22"}),
        ),
        // Every field the wrong type.
        (
            "/redfish/v1/Systems/types",
            json!({"Id": 7, "UUID": ["x"], "PowerState": {"a": 1},
            "ProcessorSummary": {"Count": "N/A", "Model": 5}, "MemorySummary": {"TotalSystemMemoryGiB": [64]},
            "SerialNumber": "To be filled by O.E.M.", "EthernetInterfaces": "not a link",
            "Links": {"Chassis": "nope", "ManagedBy": [1, null, {"@odata.id": 3}]},
            "Actions": {"#ComputerSystem.Reset": {"ResetType@Redfish.AllowableValues": "On"}}}),
        ),
        ("/redfish/v1/Systems/array", json!([1, 2, 3])),
    ]);
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let huge = format!("{{\"Id\":\"{}\"}}", "x".repeat(5 << 20));
    let mut spec = BmcSpec::new("127.0.0.1:0".parse().unwrap(), t);
    spec.faults = Faults {
        canned: HashMap::from([
            (
                "/redfish/v1/Systems/deep".to_string(),
                canned(200, &[], deep),
            ),
            (
                "/redfish/v1/Systems/huge".to_string(),
                canned(200, &[], huge),
            ),
            (
                "/redfish/v1/Systems/loop".to_string(),
                canned(
                    302,
                    &[("location", "/redfish/v1/Systems/loop2")],
                    String::new(),
                ),
            ),
            (
                "/redfish/v1/Systems/loop2".to_string(),
                canned(
                    302,
                    &[("location", "/redfish/v1/Systems/loop")],
                    String::new(),
                ),
            ),
            (
                "/redfish/v1/Systems/away".to_string(),
                canned(
                    301,
                    &[("location", "https://198.51.100.7/redfish/v1/")],
                    String::new(),
                ),
            ),
        ]),
        ..Faults::default()
    };
    let f = fleet(vec![spec]).await;
    let c = client(f.bmcs[0].addr, AuthMode::Basic, Limits::default());
    let started = Instant::now();
    let inv = crawl(&c, None, None, &CrawlOptions::default())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let paths: Vec<&str> = inv.systems.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/redfish/v1/Systems/good", "/redfish/v1/Systems/types"]
    );
    let good = &inv.systems[0];
    assert_eq!(good.ethernet_interfaces.len(), 1);
    let types = &inv.systems[1];
    assert_eq!(types.id.as_deref(), Some("7"));
    assert_eq!(
        (types.uuid.clone(), types.power_state.clone()),
        (None, None)
    );
    assert_eq!((types.processor_count, types.memory_gib), (None, None));
    assert_eq!(types.serial, None);
    assert!(
        types.reset_types.is_empty() && types.managed_by.is_empty() && types.chassis.is_empty()
    );
    let w = inv.warnings.join("\n");
    for needle in [
        "Systems/deep: not valid JSON: recursion limit exceeded",
        "Systems/huge: body larger than",
        "member https://evil.example/redfish/v1/Systems/x leaves the BMC",
        "member http://10.9.9.9/redfish/v1/x leaves the BMC",
        "Systems/array: not valid JSON: expected a JSON object",
    ] {
        assert!(w.contains(needle), "missing {needle:?} in:\n{w}");
    }
    assert!(w.contains("Systems/loop: error following redirect"), "{w}");
    assert!(w.contains("redirect to another host"), "{w}");
}

#[tokio::test]
async fn redirects_are_bounded_and_stay_on_the_bmc() {
    let t = tree(vec![("/redfish/v1", json!({"RedfishVersion": "1.0.0"}))]);
    let mut spec = BmcSpec::new("127.0.0.1:0".parse().unwrap(), t);
    spec.faults.canned = HashMap::from([
        (
            "/redfish/v1/a".to_string(),
            canned(302, &[("location", "/redfish/v1/b")], String::new()),
        ),
        (
            "/redfish/v1/b".to_string(),
            canned(302, &[("location", "/redfish/v1/a")], String::new()),
        ),
        (
            "/redfish/v1/out".to_string(),
            canned(
                302,
                &[("location", "https://198.51.100.7/redfish/v1/")],
                String::new(),
            ),
        ),
    ]);
    let f = fleet(vec![spec]).await;
    let c = client(f.bmcs[0].addr, AuthMode::Basic, Limits::default());
    let e = c.get("/redfish/v1/a").await.unwrap_err();
    assert!(matches!(e, FetchError::Redirect { .. }), "{e}");
    assert!(e.to_string().contains("more than 3 redirects"), "{e}");
    let e = c.get("/redfish/v1/out").await.unwrap_err();
    assert!(e.to_string().contains("redirect to another host"), "{e}");
    assert!(
        f.bmcs[0]
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            <= 6
    );
}

#[tokio::test]
async fn paging_is_followed_and_a_looping_next_link_is_cut() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut plain = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf.clone());
    plain.rewrite_ip = Some("192.168.0.10".into());
    let mut paged = plain.clone();
    paged.faults.page_size = Some(1);
    let f = fleet(vec![plain, paged]).await;
    let mut a = crawl(
        &client(f.bmcs[0].addr, AuthMode::Basic, Limits::default()),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap();
    let mut b = crawl(
        &client(f.bmcs[1].addr, AuthMode::Basic, Limits::default()),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap();
    assert!(b.requests > a.requests, "pages cost requests");
    assert_eq!(b.systems[0].ethernet_interfaces.len(), 4);
    for inv in [&mut a, &mut b] {
        inv.url.clear();
        inv.requests = 0;
    }
    assert_eq!(a, b);

    let t = tree(vec![
        (
            "/redfish/v1",
            json!({"Systems": {"@odata.id": "/redfish/v1/Systems"}}),
        ),
        (
            "/redfish/v1/Systems",
            json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}],
            "Members@odata.nextLink": "/redfish/v1/Systems"}),
        ),
        ("/redfish/v1/Systems/1", json!({"Id": "1"})),
    ]);
    let f = fleet(vec![BmcSpec::new("127.0.0.1:0".parse().unwrap(), t)]).await;
    let inv = crawl(
        &client(f.bmcs[0].addr, AuthMode::Basic, Limits::default()),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(inv.systems.len(), 1);
    assert!(
        inv.warnings.iter().any(|w| w.contains("nextLink loops")),
        "{:?}",
        inv.warnings
    );
}

#[tokio::test]
async fn a_hanging_bmc_costs_its_timeout_and_bad_credentials_fail_cleanly() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut hang = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf.clone());
    hang.faults.hang = true;
    let f = fleet(vec![
        hang,
        BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf),
    ])
    .await;
    let limits = Limits {
        request_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let started = Instant::now();
    let e = crawl(
        &client(f.bmcs[0].addr, AuthMode::Basic, limits),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, CrawlError::Fetch(FetchError::Timeout { .. })),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    let wrong = BmcClient::new(
        &format!("https://{}", f.bmcs[1].addr),
        &TlsPolicy::Insecure,
        Some(Credentials {
            username: "admin".into(),
            password: "wrong".into(),
        }),
        AuthMode::Session,
        Limits::default(),
    )
    .unwrap();
    let e = crawl(&wrong, None, None, &CrawlOptions::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("authentication refused (HTTP 401)"),
        "{e}"
    );
    assert_eq!(f.bmcs[1].active_sessions(), 0);
}

#[tokio::test]
async fn session_caps_are_respected_because_sessions_are_always_deleted() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut spec = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf);
    spec.faults.session_cap = 1;
    let f = fleet(vec![spec]).await;
    for _ in 0..3 {
        let c = client(f.bmcs[0].addr, AuthMode::Session, Limits::default());
        crawl(&c, None, None, &CrawlOptions::default())
            .await
            .unwrap();
        assert_eq!(f.bmcs[0].active_sessions(), 0);
    }
    // A BMC whose sessions are all taken refuses with 503, and the crawl says so.
    let hog = client(f.bmcs[0].addr, AuthMode::Session, Limits::default());
    hog.login(None).await.unwrap();
    let c = client(f.bmcs[0].addr, AuthMode::Session, Limits::default());
    let e = crawl(&c, None, None, &CrawlOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    hog.logout().await.unwrap();
    assert_eq!(f.bmcs[0].active_sessions(), 0);
}

#[tokio::test]
async fn garbage_everywhere_and_injected_errors() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut garbage = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf.clone());
    garbage.faults.malformed = true;
    let mut flaky = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf);
    flaky.faults.error_every = 4;
    let f = fleet(vec![garbage, flaky]).await;
    let e = crawl(
        &client(f.bmcs[0].addr, AuthMode::Basic, Limits::default()),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().starts_with("no usable inventory"), "{e}");
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    let inv = crawl(
        &client(f.bmcs[1].addr, AuthMode::Basic, Limits::default()),
        None,
        None,
        &CrawlOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        inv.warnings.iter().any(|w| w.contains("HTTP 500")),
        "{:?}",
        inv.warnings
    );
}

#[tokio::test]
async fn a_changed_certificate_is_refused_after_the_first_pin() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let pins = Arc::new(PinStore::memory());
    let spec = BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf.clone());
    let first = fleet(vec![spec]).await;
    let addr = first.bmcs[0].addr;
    let tofu = |pins: &Arc<PinStore>| {
        BmcClient::new(
            &format!("https://{addr}"),
            &TlsPolicy::Tofu(pins.clone()),
            Some(creds()),
            AuthMode::Basic,
            Limits::default(),
        )
        .unwrap()
    };
    tofu(&pins).service_root().await.unwrap();
    let pinned = pins.get(&addr.to_string()).unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Same address, new key: a replaced BMC or someone in the middle.
    let second = fleet(vec![BmcSpec::new(addr, dmtf)]).await;
    let e = tofu(&pins).service_root().await.unwrap_err();
    assert!(matches!(e, FetchError::CertificateChanged { .. }), "{e}");
    assert_eq!(pins.get(&addr.to_string()).unwrap(), pinned);
    // An admin who checked the new certificate forgets the pin; the next contact pins anew.
    assert!(pins.forget(&addr.to_string()));
    tofu(&pins).service_root().await.unwrap();
    assert_ne!(pins.get(&addr.to_string()).unwrap(), pinned);
    drop(second);
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("N/A".to_string()),
            Just("Not Available".to_string()),
            Just("aa-bb-cc-dd-ee-ff".to_string()),
            Just("0.0.0.0".to_string()),
            "\\PC{0,24}"
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("Id".to_string()),
        Just("UUID".to_string()),
        Just("MACAddress".to_string()),
        Just("IPv4Addresses".to_string()),
        Just("Address".to_string()),
        Just("ProcessorSummary".to_string()),
        Just("Count".to_string()),
        Just("MemorySummary".to_string()),
        Just("TotalSystemMemoryGiB".to_string()),
        Just("Links".to_string()),
        Just("Chassis".to_string()),
        Just("@odata.id".to_string()),
        Just("Actions".to_string()),
        Just("Status".to_string()),
        Just("State".to_string()),
        "[A-Za-z@.#]{1,12}"
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn lenient_parsers_take_any_json(v in any_json()) {
        let resolve = |s: &str| Some(s.to_string());
        let sys = parse_system("/redfish/v1/Systems/1".into(), &v, &resolve);
        if let Some(c) = sys.processor_count {
            prop_assert!(c < 1_000_000_000);
        }
        if let Some(m) = sys.memory_gib {
            prop_assert!(m >= 0.0 && m.is_finite());
        }
        let n = nic("/x".into(), &v);
        for ip in n.ipv4 {
            prop_assert!(!ip.is_unspecified());
        }
        if let Some(m) = n.mac {
            prop_assert!(m.octets() != [0; 6] && m.octets() != [0xff; 6]);
        }
    }
}

#[tokio::test]
async fn a_site_ca_bundle_verifies_bmc_certificates() {
    let dmtf = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let ca = site_ca(&[]).unwrap();
    let f = Fleet::start(
        vec![BmcSpec::new("127.0.0.1:0".parse().unwrap(), dmtf)],
        &FleetOptions {
            username: "admin".into(),
            password: "pw".into(),
            tls: Some(ca.config),
        },
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("skyport-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("site-ca.pem");
    std::fs::write(&good, &ca.ca_pem).unwrap();
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, site_ca(&[]).unwrap().ca_pem).unwrap();
    let with = |bundle: &std::path::Path| {
        BmcClient::new(
            &format!("https://{}", f.bmcs[0].addr),
            &TlsPolicy::ca_bundle(bundle).unwrap(),
            Some(creds()),
            AuthMode::Basic,
            Limits::default(),
        )
        .unwrap()
    };
    let inv = crawl(&with(&good), None, None, &CrawlOptions::default())
        .await
        .unwrap();
    assert_eq!(inv.systems.len(), 1);
    let e = with(&other).service_root().await.unwrap_err();
    assert!(matches!(e, FetchError::Tls { .. }), "{e}");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    assert!(TlsPolicy::ca_bundle(&empty).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
