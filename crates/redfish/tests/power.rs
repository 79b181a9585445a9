//! Power operations and the boot override against the mock BMC serving vendors' trees (the mock
//! keeps power and override state, refuses what a system does not list, can be slow and can
//! ignore graceful requests; `crates/mockbmc/src/power.rs` says what it does not emulate).
//! Proves: each PCS operation makes the calls it should and no more, ends in its state, never
//! sends a reset type the BMC did not list, and a one-time override is used by the next boot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, shared_mockups};
use skyport_redfish::power::{
    self, BootTarget, Operation, PowerError, PowerState, ResetType, SystemRef, Timing,
};
use skyport_redfish::vendor::generic::Generic;
use skyport_redfish::{AuthMode, BmcClient, Credentials, FetchError, Limits, TlsPolicy};

fn tree(name: &str) -> Arc<Tree> {
    Arc::new(Tree::load(&shared_mockups().join(name)).unwrap())
}

async fn one(tree: Arc<Tree>, faults: Faults) -> (Fleet, BmcClient) {
    let mut spec = BmcSpec::new("127.0.0.1:0".parse().unwrap(), tree);
    spec.faults = faults;
    let fleet = Fleet::start(
        vec![spec],
        &FleetOptions {
            username: "admin".into(),
            password: "pw".into(),
            tls: None,
        },
    )
    .await
    .unwrap();
    let c = BmcClient::new(
        &format!("http://{}", fleet.addrs()[0]),
        &TlsPolicy::Insecure,
        Some(Credentials {
            username: "admin".into(),
            password: "pw".into(),
        }),
        AuthMode::Basic,
        Limits::default(),
    )
    .unwrap();
    (fleet, c)
}

fn fast() -> Timing {
    Timing {
        graceful: Duration::from_millis(300),
        settle: Duration::from_secs(5),
        poll: Duration::from_millis(20),
    }
}

fn resets(f: &Fleet) -> Vec<String> {
    f.bmcs[0].stats.resets.lock().unwrap().clone()
}

fn hpe_system() -> SystemRef {
    SystemRef {
        path: "/redfish/v1/Systems/1".into(),
        reset_target: "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset".into(),
        reset_types: [
            "On",
            "ForceOff",
            "GracefulShutdown",
            "ForceRestart",
            "Nmi",
            "PushPowerButton",
            "GracefulRestart",
        ]
        .map(String::from)
        .to_vec(),
        boot_targets: ["None", "Pxe", "UefiHttp"].map(String::from).to_vec(),
    }
}

#[tokio::test]
async fn operations_make_the_calls_they_need_and_end_in_their_state() {
    let faults = Faults {
        ignore_graceful: true,
        ..Faults::default()
    };
    let (fleet, c) = one(tree("hpe-proliant-dl325-gen10plus"), faults).await;
    let sys = hpe_system();
    let t = fast();
    assert_eq!(
        power::status(&c, &sys.path).await.unwrap().state,
        PowerState::On
    );

    // The host ignores the graceful shutdown: off forces it once the grace is over.
    let out = power::run(&c, &sys, &Generic, Operation::Off, &t)
        .await
        .unwrap();
    assert_eq!(
        out.calls,
        vec![ResetType::GracefulShutdown, ResetType::ForceOff]
    );
    assert_eq!(out.state, PowerState::Off);

    // Off again, and soft-off of an off node: no call at all.
    for op in [Operation::Off, Operation::SoftOff, Operation::ForceOff] {
        let out = power::run(&c, &sys, &Generic, op, &t).await.unwrap();
        assert!(out.calls.is_empty(), "{op}: {:?}", out.calls);
    }
    // A soft restart needs a running OS.
    let e = power::run(&c, &sys, &Generic, Operation::SoftRestart, &t)
        .await
        .unwrap_err();
    assert!(matches!(e, PowerError::NotOn { .. }), "{e}");

    let out = power::run(&c, &sys, &Generic, Operation::On, &t)
        .await
        .unwrap();
    assert_eq!(
        (out.calls, out.state),
        (vec![ResetType::On], PowerState::On)
    );
    let out = power::run(&c, &sys, &Generic, Operation::On, &t)
        .await
        .unwrap();
    assert!(out.calls.is_empty(), "on twice powers on once");

    // Hard restart of a running node is one ForceRestart; of an off node, one On.
    let out = power::run(&c, &sys, &Generic, Operation::HardRestart, &t)
        .await
        .unwrap();
    assert_eq!(out.calls, vec![ResetType::ForceRestart]);
    // Init from on: the graceful request is ignored, so forced, then on.
    let out = power::run(&c, &sys, &Generic, Operation::Init, &t)
        .await
        .unwrap();
    assert_eq!(
        out.calls,
        vec![
            ResetType::GracefulShutdown,
            ResetType::ForceOff,
            ResetType::On
        ]
    );
    assert_eq!(
        resets(&fleet),
        [
            "GracefulShutdown",
            "ForceOff",
            "On",
            "ForceRestart",
            "GracefulShutdown",
            "ForceOff",
            "On"
        ]
        .map(|t| format!("/redfish/v1/Systems/1 {t}"))
    );
}

#[tokio::test]
async fn a_slow_bmc_is_waited_for_and_a_stuck_one_times_out() {
    let faults = Faults {
        power_delay: Duration::from_millis(300),
        ..Faults::default()
    };
    let (_fleet, c) = one(tree("hpe-proliant-dl325-gen10plus"), faults).await;
    let sys = hpe_system();
    let out = power::run(&c, &sys, &Generic, Operation::ForceOff, &fast())
        .await
        .unwrap();
    assert_eq!(out.state, PowerState::Off, "waited through PoweringOff");

    let impatient = Timing {
        settle: Duration::from_millis(100),
        ..fast()
    };
    let e = power::run(&c, &sys, &Generic, Operation::On, &impatient)
        .await
        .unwrap_err();
    match e {
        PowerError::Timeout { want, last, .. } => {
            assert_eq!((want, last), (PowerState::On, PowerState::PoweringOn))
        }
        e => panic!("{e}"),
    }
    // Not waiting at all (PCS's taskDeadlineMinutes 0): the call is made, nothing is read.
    let off = Timing {
        settle: Duration::ZERO,
        ..fast()
    };
    tokio::time::sleep(Duration::from_millis(350)).await;
    let out = power::run(&c, &sys, &Generic, Operation::ForceOff, &off)
        .await
        .unwrap();
    assert_eq!(out.calls, vec![ResetType::ForceOff]);
}

#[tokio::test]
async fn unlisted_reset_types_are_never_sent_and_bmc_refusals_keep_their_message() {
    let (fleet, c) = one(tree("dmtf-public-rackmount1"), Faults::default()).await;
    let mut sys = SystemRef {
        path: "/redfish/v1/Systems/437XR1138R2".into(),
        reset_target: "/redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Reset".into(),
        reset_types: vec!["ForceOff".into(), "ForceOn".into()],
        boot_targets: Vec::new(),
    };
    // No GracefulRestart listed: unsupported, and the BMC hears nothing.
    let e = power::run(&c, &sys, &Generic, Operation::SoftRestart, &fast())
        .await
        .unwrap_err();
    assert!(
        matches!(e, PowerError::Unsupported { .. }),
        "{e}: {:?}",
        resets(&fleet)
    );
    assert!(resets(&fleet).is_empty());
    // On goes through ForceOn, the name this BMC lists.
    power::run(&c, &sys, &Generic, Operation::ForceOff, &fast())
        .await
        .unwrap();
    let out = power::run(&c, &sys, &Generic, Operation::On, &fast())
        .await
        .unwrap();
    assert_eq!(out.calls, vec![ResetType::ForceOn]);

    // What the BMC refuses comes back with its own words.
    sys.reset_types.clear();
    let e = c
        .send(
            reqwest::Method::POST,
            &sys.reset_target,
            &json!({"ResetType": "PowerCycle"}),
        )
        .await
        .unwrap_err();
    match e {
        FetchError::Refused { status, reason, .. } => {
            assert_eq!(status, 400);
            assert!(reason.contains("PowerCycle"), "{reason}");
        }
        e => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_one_time_network_boot_is_used_by_the_next_power_on() {
    let (fleet, c) = one(tree("dmtf-public-rackmount1"), Faults::default()).await;
    let sys = SystemRef {
        path: "/redfish/v1/Systems/437XR1138R2".into(),
        reset_target: "/redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Reset".into(),
        reset_types: Vec::new(),
        boot_targets: ["None", "Pxe", "Cd", "Usb", "Hdd"]
            .map(String::from)
            .to_vec(),
    };
    // This BMC lists no UEFI HTTP boot: refused before anything is sent.
    let e = power::set_boot(&c, &sys, &Generic, BootTarget::UefiHttp)
        .await
        .unwrap_err();
    assert!(matches!(e, PowerError::BootUnsupported { .. }), "{e}");

    let set = power::set_boot(&c, &sys, &Generic, BootTarget::None)
        .await
        .unwrap();
    assert_eq!(set.enabled.as_deref(), Some("Disabled"));
    let set = power::set_boot(&c, &sys, &Generic, BootTarget::Pxe)
        .await
        .unwrap();
    assert_eq!(
        (set.target.as_deref(), set.enabled.as_deref()),
        (Some("Pxe"), Some("Once"))
    );
    power::run(&c, &sys, &Generic, Operation::HardRestart, &fast())
        .await
        .unwrap();
    power::run(&c, &sys, &Generic, Operation::HardRestart, &fast())
        .await
        .unwrap();
    let log = resets(&fleet);
    assert_eq!(
        log,
        [
            "/redfish/v1/Systems/437XR1138R2 ForceRestart boot=Pxe",
            "/redfish/v1/Systems/437XR1138R2 ForceRestart",
        ]
    );
    let after = power::status(&c, &sys.path).await.unwrap().boot;
    assert_eq!(after.enabled.as_deref(), Some("Disabled"), "used once");
}
