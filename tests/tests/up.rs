//! `skyport up --demo` on a clean data directory: the APIs, an edge agent and mock BMCs come up,
//! the BMCs are discovered into the inventory, the CLI profile holds a working token, and a node
//! gets its boot script from the API and from the edge agent; SIGTERM stops it all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skyport_e2e::skyport_bin;
use skyport_testkit::free_port;

#[test]
fn up_demo_brings_up_a_working_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (api, edge) = (free_port().unwrap(), free_port().unwrap());
    let conf = dir.path().join("cli.toml");
    let mut cmd = Command::new(skyport_bin().unwrap());
    cmd.arg("--cli-config")
        .arg(&conf)
        .args(["up", "--demo", "--demo-bmcs", "3", "--data"])
        .arg(dir.path().join("data"))
        .args([
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--edge-listen",
            &format!("127.0.0.1:{edge}"),
        ])
        .env("RUST_LOG", "warn");
    let mut up = common::spawn(&mut cmd, Stdio::piped(), Stdio::inherit());
    let stdout = up.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = String::new();
    while !printed.contains("Ctrl-C stops everything") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                printed.push_str(&l);
                printed.push('\n');
            }
            Err(_) => panic!("skyport up did not come up; it printed:\n{printed}"),
        }
    }
    assert!(
        printed.contains("3 mock BMCs, 3 discovered and queued, 3 pushed"),
        "{printed}"
    );

    let cli = |args: &[&str]| {
        let o = Command::new(skyport_bin().unwrap())
            .arg("--cli-config")
            .arg(&conf)
            .args(args)
            .env_remove("SKYPORT_URL")
            .env_remove("SKYPORT_TOKEN")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let nodes: serde_json::Value =
        serde_json::from_str(&cli(&["component", "list", "--type", "Node", "-o", "json"])).unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 3, "{nodes}");
    let eps: serde_json::Value =
        serde_json::from_str(&cli(&["redfish-endpoint", "list", "-o", "json"])).unwrap();
    assert_eq!(eps.as_array().unwrap().len(), 3, "{eps}");
    let ep: serde_json::Value = serde_json::from_str(&cli(&[
        "redfish-endpoint",
        "get",
        "x9000c0s2b0",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(ep["IPAddress"], "127.0.1.3", "{ep}");
    let nic: serde_json::Value =
        serde_json::from_str(&cli(&["iface", "get", "02:5b:00:00:01:01", "-o", "json"])).unwrap();
    assert_eq!(nic["ComponentID"], "x9000c0s1b0n0", "{nic}");
    cli(&["redfish-endpoint", "delete", "x9000c0s2b0"]);
    let eps: serde_json::Value =
        serde_json::from_str(&cli(&["redfish-endpoint", "list", "-o", "json"])).unwrap();
    assert_eq!(eps.as_array().unwrap().len(), 2, "{eps}");
    let mac = "02:5b:00:00:00:01";
    let script = cli(&["bootscript", "--mac", mac]);
    assert!(
        script.contains("xname=x9000c0s0b0n0") && script.contains("console=ttyS0"),
        "{script}"
    );

    // The demo's nodes have hardware: two CPUs, four DIMMs and a drive each.
    let hw = cli(&["hardware", "x9000c0s1b0n0"]);
    assert_eq!(
        hw.lines().filter(|l| l.contains(" Processor ")).count(),
        2,
        "{hw}"
    );
    assert_eq!(hw.lines().filter(|l| l.contains("DDR5")).count(), 4, "{hw}");
    assert!(hw.contains("Demo NVMe") && hw.contains("1920 GB"), "{hw}");

    // The demo's nodes can be powered: a cycle through the local site's agent and its mock BMCs.
    let job: serde_json::Value = serde_json::from_str(&cli(&[
        "power",
        "cycle",
        "x9000c0s0b0",
        "--wait",
        "--settle",
        "30",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["tasks"][0]["power"], "On", "{job}");

    // The edge agent serves the same node once it has synced (every 2 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = Command::new("curl")
            .args([
                "-fsS",
                &format!("http://127.0.0.1:{edge}/boot/v1/bootscript?mac={mac}"),
            ])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        if s.contains("xname=x9000c0s0b0n0") {
            assert!(
                s.contains(&format!("http://127.0.0.1:{edge}/boot/v1/bootscript?mac=")),
                "{s}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge never served the node: {s}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // With nothing changing, the registered demo site's polls are answered 304 and nothing is
    // re-applied (the agent once sent back the wrong tag and re-downloaded its whole share
    // every interval; the change feed's re-sent recent entries must not count as changes).
    let counter = |name: &str| -> u64 {
        let o = Command::new("curl")
            .args(["-fsS", &format!("http://127.0.0.1:{edge}/metrics")])
            .output()
            .unwrap();
        let m = String::from_utf8_lossy(&o.stdout).into_owned();
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("skyport_edge_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
    };
    // First let the edge catch up with the last real change (the endpoint deleted above may
    // still be on its way): the count must hold still for 3 s, more than an interval; with the
    // old agent it never does.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut applied = counter("sync_applied_total");
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = counter("sync_applied_total");
        if now == applied {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge re-applied its snapshot every interval ({now} applies)"
        );
        applied = now;
    }
    let unchanged = counter("sync_unchanged_total");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        counter("sync_applied_total"),
        applied,
        "an unchanged site's snapshot was applied again"
    );
    assert!(
        counter("sync_unchanged_total") >= unchanged + 2,
        "polls were not answered 304"
    );

    let stuck = "skyport up did not stop on SIGTERM";
    let st = common::terminate(&mut up, Duration::from_secs(20), stuck);
    assert!(st.success(), "{st}");
}
