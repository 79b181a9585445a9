//! `skyport-edge` as a site admin runs it, against the real `skyport serve` and the mock BMC
//! fleet (and sushy-tools): every shared mockup lands in the inventory with the expected
//! components, ComponentEndpoints and EthernetInterfaces; killing the inventory server or
//! `kill -9`ing the agent mid-push loses nothing and duplicates nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use skyport_e2e::{Server, edge_bin};
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, self_signed, shared_mockups};
use skyport_testkit::free_port;

struct Harness {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// A read token for the inventory under test.
    token: String,
}

impl Harness {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::new(),
            token: String::new(),
        }
    }

    fn fleet(&self, specs: Vec<BmcSpec>) -> Fleet {
        let tls = self_signed().unwrap().config;
        self.rt
            .block_on(Fleet::start(
                specs,
                &FleetOptions {
                    username: "admin".into(),
                    password: "bmc-pass".into(),
                    tls: Some(tls),
                },
            ))
            .unwrap()
    }

    fn get(&self, url: &str) -> Value {
        self.rt.block_on(async {
            let r = self
                .http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "GET {url}: {}", r.status());
            r.json().await.unwrap()
        })
    }

    /// How many RedfishEndpoints the server has, or None while it is down.
    fn endpoint_count(&self, server: &SocketAddr) -> Option<usize> {
        self.rt.block_on(async {
            let url = format!("http://{server}/hsm/v2/Inventory/RedfishEndpoints");
            let r = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v["RedfishEndpoints"].as_array().map(Vec::len)
        })
    }
}

fn edge(data: &Path, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(edge_bin().unwrap());
    c.env("SKYPORT_EDGE_TOKEN", token);
    c.arg("--data")
        .arg(data)
        .args(args)
        .env("SKYPORT_EDGE_BMC_USER", "admin")
        .env("SKYPORT_EDGE_BMC_PASSWORD", "bmc-pass")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    c
}

/// The string `key` of each element of the JSON array `list`, in order.
fn column<'a>(list: &'a Value, key: &'a str) -> impl Iterator<Item = String> + 'a {
    let list = list.as_array().unwrap();
    list.iter()
        .map(move |e| e[key].as_str().unwrap().to_string())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One BMC per shared tree: (tree, IP its BMC NIC reports, xname given in the site map).
const TREES: &[(&str, Option<&str>, &str)] = &[
    (
        "dmtf-public-rackmount1",
        Some("192.168.0.10"),
        "x3000c0s10b0",
    ),
    ("hpe-cray-cmm", None, "x1000c0b0"),
    ("hpe-cray-ex235a", None, "x1000c0s0b0"),
    (
        "hpe-proliant-dl325-gen10plus",
        Some("10.254.1.15"),
        "x3000c0s12b0",
    ),
    ("openbmc-bmcweb-stock", Some("10.0.2.15"), "x3000c0s13b0"),
];

/// MACs the inventory must hold afterwards, by component: real MACs only, host-interface NICs
/// (the same on every iLO / DMTF BMC) left out, duplicates (a VLAN on the same port) once.
fn expected_interfaces() -> BTreeSet<(String, String)> {
    [
        ("x3000c0s10b0", "23:11:8a:33:cf:ea"),
        ("x3000c0s10b0n0", "12:44:6a:3b:04:11"),
        ("x3000c0s10b0n0", "aa:bb:cc:dd:ee:00"),
        ("x1000c0s0b0n0", "00:40:a6:83:3a:52"),
        ("x3000c0s12b0", "94:40:c9:37:d3:fc"),
        ("x3000c0s12b0", "94:40:c9:37:d3:fd"),
        ("x3000c0s12b0n0", "94:40:c9:5c:86:bc"),
        ("x3000c0s12b0n0", "94:40:c9:5c:86:bd"),
        ("x3000c0s12b0n0", "14:02:ec:d9:3a:a0"),
        ("x3000c0s12b0n0", "14:02:ec:d9:3a:a1"),
        ("x3000c0s13b0", "ae:0d:e8:39:69:bb"),
    ]
    .iter()
    .map(|(c, m)| (c.to_string(), m.to_string()))
    .collect()
}

#[test]
fn every_mockup_is_discovered_pushed_and_derived_into_the_inventory() {
    let mut h = Harness::new();
    let port = free_port().unwrap();
    let mut specs = Vec::new();
    let mut site = String::new();
    for (i, (name, from, xname)) in TREES.iter().enumerate() {
        let ip = Ipv4Addr::new(127, 0, 4, 10 + i as u8);
        let tree = Arc::new(Tree::load(&shared_mockups().join(name)).unwrap());
        let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree);
        s.rewrite_ip = from.map(str::to_string);
        specs.push(s);
        site.push_str(&format!("{ip}: {xname}\n"));
    }
    let fleet = h.fleet(specs);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("cloud")).unwrap();
    std::fs::write(dir.path().join("site.yaml"), site).unwrap();

    let tok = server.edge_token("lab").unwrap();
    h.token = server.token("read").unwrap();
    let out = edge(
        &dir.path().join("edge"),
        &tok,
        &[
            "discover",
            "--subnet",
            "127.0.4.8/29",
            "--port",
            &port.to_string(),
            "--site-map",
        ],
    )
    .arg(dir.path().join("site.yaml"))
    .args(["--cloud-url", &format!("http://{}", server.addr)])
    .args(["--push", "-o", "json"])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let discovered: BTreeMap<String, &Value> = rows
        .iter()
        .filter(|r| r["status"] == "discovered")
        .map(|r| (r["xname"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(discovered.len(), TREES.len(), "{}", text(&out));
    assert!(
        rows.iter()
            .filter(|r| r["status"] != "discovered")
            .all(|r| r["status"] == "absent"),
        "{}",
        text(&out)
    );
    assert_eq!(
        discovered["x3000c0s12b0"]["mac"], "94:40:c9:37:d3:fc",
        "the BMC MAC is the NIC holding the scanned address"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("pushed 5 result(s)"));

    let base = format!("http://{}/hsm/v2", server.addr);
    let eps = h.get(&format!("{base}/Inventory/RedfishEndpoints"));
    let ids: BTreeSet<String> = column(&eps["RedfishEndpoints"], "ID").collect();
    assert_eq!(ids, TREES.iter().map(|t| t.2.to_string()).collect());
    for e in eps["RedfishEndpoints"].as_array().unwrap() {
        assert_eq!(e["User"], "admin");
        assert!(!e.to_string().contains("bmc-pass"), "password leaked: {e}");
        assert_eq!(
            e["FQDN"].as_str().unwrap(),
            format!("{}:{port}", e["IPAddress"].as_str().unwrap())
        );
    }

    let comps = h.get(&format!("{base}/State/Components"));
    let comps = &comps["Components"];
    let states = column(comps, "Type").zip(column(comps, "State"));
    let comps: BTreeMap<String, (String, String)> = column(comps, "ID").zip(states).collect();
    let want: BTreeMap<String, (String, String)> = [
        ("x3000c0s10b0", "NodeBMC", "Ready"),
        ("x3000c0s10b0n0", "Node", "On"),
        ("x1000c0b0", "ChassisBMC", "Ready"),
        ("x1000c0s0b0", "NodeBMC", "Ready"),
        ("x1000c0s0b0n0", "Node", "On"),
        ("x3000c0s12b0", "NodeBMC", "Ready"),
        ("x3000c0s12b0n0", "Node", "On"),
        ("x3000c0s13b0", "NodeBMC", "Ready"),
        ("x3000c0s13b0n0", "Node", "Off"),
    ]
    .iter()
    .map(|(i, t, s)| (i.to_string(), (t.to_string(), s.to_string())))
    .collect();
    assert_eq!(comps, want);

    let ces = h.get(&format!("{base}/Inventory/ComponentEndpoints"));
    let ces = &ces["ComponentEndpoints"];
    let ces: BTreeMap<String, String> = column(ces, "ID").zip(column(ces, "RedfishType")).collect();
    let want_ces: BTreeMap<String, String> = want
        .iter()
        .map(|(id, (t, _))| {
            let rf = if t == "Node" {
                "ComputerSystem"
            } else {
                "Manager"
            };
            (id.clone(), rf.to_string())
        })
        .collect();
    assert_eq!(ces, want_ces);
    let node = h.get(&format!(
        "{base}/Inventory/ComponentEndpoints/x3000c0s12b0n0"
    ));
    assert_eq!(node["OdataID"], "/redfish/v1/Systems/1");
    assert_eq!(
        node["RedfishURL"],
        format!("127.0.4.13:{port}/redfish/v1/Systems/1")
    );

    let eis = h.get(&format!("{base}/Inventory/EthernetInterfaces"));
    let eis: BTreeSet<(String, String)> = column(&eis, "ComponentID")
        .zip(column(&eis, "MACAddress"))
        .collect();
    assert_eq!(eis, expected_interfaces());
    for b in &fleet.bmcs {
        assert_eq!(b.active_sessions(), 0);
    }

    // Hardware inventory: every processor, accelerator and memory module each tree holds,
    // with its serial number, under its node; BMC-reported health sets the node's Flag.
    for (name, _, bmc) in TREES {
        let root = shared_mockups().join(name);
        let Some(system) = std::fs::read_dir(root.join("Systems"))
            .ok()
            .and_then(|d| d.filter_map(Result::ok).find(|e| e.path().is_dir()))
        else {
            continue;
        };
        let docs = |sub: &str| -> Vec<Value> {
            std::fs::read_dir(system.path().join(sub))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().join("index.json").exists())
                        .map(|e| {
                            serde_json::from_slice(
                                &std::fs::read(e.path().join("index.json")).unwrap(),
                            )
                            .unwrap()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let procs = docs("Processors");
        let accel = |p: &Value| {
            matches!(
                p["ProcessorType"].as_str(),
                Some("GPU" | "FPGA" | "Accelerator" | "DSP")
            )
        };
        let node = format!("{bmc}n0");
        let inv = h.get(&format!(
            "{base}/Inventory/Hardware/Query/{node}?format=FullyFlat"
        ));
        let count = |k: &str| inv[k].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(count("Nodes"), 1, "{name}: {inv:#}");
        assert_eq!(
            count("Processors"),
            procs.iter().filter(|p| !accel(p)).count(),
            "{name}"
        );
        assert_eq!(
            count("NodeAccels"),
            procs.iter().filter(|p| accel(p)).count(),
            "{name}"
        );
        assert_eq!(count("Memory"), docs("Memory").len(), "{name}");
        let serials: BTreeSet<String> = ["Processors", "NodeAccels", "Memory"]
            .iter()
            .flat_map(|k| inv[*k].as_array().cloned().unwrap_or_default())
            .filter_map(|l| {
                let f = &l["PopulatedFRU"];
                ["ProcessorFRUInfo", "NodeAccelFRUInfo", "MemoryFRUInfo"]
                    .iter()
                    .find_map(|k| f[*k]["SerialNumber"].as_str().map(str::to_string))
            })
            .collect();
        let want: BTreeSet<String> = procs
            .iter()
            .chain(docs("Memory").iter())
            .filter(|d| d["Status"]["State"] != "Absent")
            .filter_map(|d| d["SerialNumber"].as_str().map(str::to_string))
            .filter(|s| !s.trim().is_empty())
            .collect();
        assert_eq!(serials, want, "{name}");
        // Empty DIMM slots are locations without a part.
        for m in inv["Memory"].as_array().into_iter().flatten() {
            assert_eq!(m["PopulatedFRU"].is_null(), m["Status"] == "Empty", "{m}");
        }
    }
    // The DMTF tree's power supply reports Warning: its node is flagged, and the part is there.
    let c = h.get(&format!("{base}/State/Components/x3000c0s10b0n0"));
    assert_eq!(c["Flag"], "Warning", "{c}");
    let psu = h.get(&format!("{base}/Inventory/Hardware/x3000c0s10e0t0"));
    assert_eq!(
        psu["PopulatedFRU"]["NodeEnclosurePowerSupplyFRUInfo"]["SerialNumber"],
        "1Z0000001"
    );
    let fruid = psu["PopulatedFRU"]["FRUID"].as_str().unwrap();
    let fru = h.get(&format!("{base}/Inventory/HardwareByFRU/{fruid}"));
    assert_eq!(
        fru["HWInventoryByFRUType"],
        "HWInvByFRUNodeEnclosurePowerSupply"
    );
    let nested = h.get(&format!("{base}/Inventory/Hardware/x3000c0s12b0n0"));
    assert_eq!(
        nested["Processors"].as_array().map(Vec::len),
        Some(1),
        "{nested:#}"
    );
    server.stop().unwrap();
}

/// N copies of the DMTF tree with their own MACs and addresses on 127.0.6.0/23.
fn dmtf_fleet(h: &Harness, n: u32, port: u16, latency: Duration) -> (Fleet, String) {
    let tree = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut site = String::new();
    let specs = (0..n)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 6, 1)) + i);
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree.clone());
            s.uniquify = Some(i);
            s.rewrite_ip = Some("192.168.0.10".into());
            s.faults = Faults {
                latency,
                ..Faults::default()
            };
            site.push_str(&format!("{ip}: x3000c{}s{}b0\n", i / 64, i % 64));
            s
        })
        .collect();
    (h.fleet(specs), site)
}

/// [`dmtf_fleet`] without latency on a free port, a directory holding its site map as
/// `site.yaml`, and the port.
fn dmtf_site(h: &Harness, n: u32) -> (Fleet, tempfile::TempDir, u16) {
    let port = free_port().unwrap();
    let (fleet, site) = dmtf_fleet(h, n, port, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yaml"), site).unwrap();
    (fleet, dir, port)
}

fn assert_exactly_once(h: &Harness, server: &SocketAddr, n: usize) {
    let base = format!("http://{server}/hsm/v2");
    let eps = h.get(&format!("{base}/Inventory/RedfishEndpoints"));
    let ids: Vec<String> = column(&eps["RedfishEndpoints"], "ID").collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (n, n));
    let comps = h.get(&format!("{base}/State/Components"));
    assert_eq!(comps["Components"].as_array().unwrap().len(), 2 * n);
    // Per BMC: one BMC NIC and two node NICs.
    let eis = h.get(&format!("{base}/Inventory/EthernetInterfaces"));
    assert_eq!(eis.as_array().unwrap().len(), 3 * n);
}

/// Polls until the server holds at least one endpoint; returns how many it held.
fn wait_for_first_push(h: &Harness, server: &SocketAddr) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(c) = h.endpoint_count(server)
            && c > 0
        {
            return c;
        }
        assert!(Instant::now() < deadline, "nothing was pushed");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killing_the_inventory_server_mid_push_loses_and_duplicates_nothing() {
    const N: u32 = 150;
    let mut h = Harness::new();
    let (_fleet, dir, port) = dmtf_site(&h, N);
    let cloud_addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    // The site is registered (and its token minted) in a first run of the cloud; the test
    // proper starts with the cloud down.
    let first = Server::start_at(cloud_addr, &dir.path().join("cloud")).unwrap();
    let tok = first.edge_token("lab").unwrap();
    first.stop().unwrap();
    h.token = skyport_e2e::token(&dir.path().join("cloud"), "read").unwrap();
    let cloud_url = format!("http://{cloud_addr}");
    let edge_data = dir.path().join("edge");
    let site_map = dir.path().join("site.yaml");
    let discover = |push_timeout: &str| {
        edge(&edge_data, &tok, &["discover", "--subnet", "127.0.6.0/23"])
            .args(["--port", &port.to_string(), "--site-map"])
            .arg(&site_map)
            .args([
                "--cloud-url",
                &cloud_url,
                "--push",
                "--push-timeout",
                push_timeout,
            ])
            .output()
            .unwrap()
    };

    // The cloud is down for the whole first run: everything is discovered and stays queued.
    let out = discover("1");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let list = edge(&edge_data, &tok, &["outbox", "list"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        N as usize,
        "{}",
        text(&list)
    );

    // The cloud comes up; the agent flushes; the server is killed mid-flush and restarted.
    let server = Server::start_at(cloud_addr, &dir.path().join("cloud")).unwrap();
    let flush = edge(&edge_data, &tok, &["outbox", "flush", "--timeout", "90"])
        .args(["--cloud-url", &cloud_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let at_kill = wait_for_first_push(&h, &cloud_addr);
    server.stop().unwrap();
    assert!(at_kill < N as usize, "the kill did not land mid-push");
    std::thread::sleep(Duration::from_millis(1500));
    let server = Server::start_at(cloud_addr, &dir.path().join("cloud")).unwrap();
    let out = flush.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&h, &cloud_addr, N as usize);

    // A second full run re-pushes everything: upserts, still exactly once.
    let out = discover("60");
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&h, &cloud_addr, N as usize);
    server.stop().unwrap();
}

#[test]
fn kill_9_of_the_agent_mid_push_loses_and_duplicates_nothing() {
    const N: u32 = 150;
    let mut h = Harness::new();
    let (_fleet, dir, port) = dmtf_site(&h, N);
    let server = Server::start(&dir.path().join("cloud")).unwrap();
    let tok = server.edge_token("lab").unwrap();
    h.token = server.token("read").unwrap();
    let cloud_url = format!("http://{}", server.addr);
    let edge_data = dir.path().join("edge");
    let mut agent = edge(&edge_data, &tok, &["discover", "--subnet", "127.0.6.0/23"])
        .args(["--port", &port.to_string(), "--site-map"])
        .arg(dir.path().join("site.yaml"))
        .args(["--cloud-url", &cloud_url, "--push"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let at_kill = wait_for_first_push(&h, &server.addr);
    agent.kill().unwrap(); // SIGKILL: no cleanup, no flush
    agent.wait().unwrap();
    let after = h.endpoint_count(&server.addr).unwrap();
    assert!(
        after < N as usize,
        "the kill did not land mid-push ({at_kill}, {after})"
    );

    // Whatever the killed agent had queued and not seen acknowledged survives on disk ...
    let list = edge(&edge_data, &tok, &["outbox", "list"])
        .output()
        .unwrap();
    let queued: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect();
    // ... and the restarted agent pushes it.
    let out = edge(&edge_data, &tok, &["outbox", "flush"])
        .args(["--cloud-url", &cloud_url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let eps = h.get(&format!(
        "http://{}/hsm/v2/Inventory/RedfishEndpoints",
        server.addr
    ));
    let ids: BTreeSet<String> = column(&eps["RedfishEndpoints"], "ID").collect();
    for q in &queued {
        assert!(ids.contains(q), "{q} was queued but never pushed");
    }
    assert!(ids.len() >= after, "an acknowledged result disappeared");
    // The next run (what the daemon does on its schedule) completes the site, exactly once.
    let out = edge(&edge_data, &tok, &["discover", "--subnet", "127.0.6.0/23"])
        .args(["--port", &port.to_string(), "--site-map"])
        .arg(dir.path().join("site.yaml"))
        .args(["--cloud-url", &cloud_url, "--push"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_exactly_once(&h, &server.addr, N as usize);
    server.stop().unwrap();
}

#[test]
fn daemon_mode_discovers_on_a_schedule_pushes_and_stops_on_sigterm() {
    let mut h = Harness::new();
    let (_fleet, dir, port) = dmtf_site(&h, 5);
    let server = Server::start(&dir.path().join("cloud")).unwrap();
    h.token = server.token("read").unwrap();
    let conf = dir.path().join("edge.toml");
    std::fs::write(
        &conf,
        format!(
            "cloud_url = \"http://{}\"\nsubnets = [\"127.0.6.1-127.0.6.5\"]\nports = [{port}]\n\
             site_map = \"{}\"\ninterval = 3600\nbmc_user = \"admin\"\n",
            server.addr,
            dir.path().join("site.yaml").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(edge_bin().unwrap());
    cmd.arg("--config")
        .arg(&conf)
        .arg("--data")
        .arg(dir.path().join("edge"))
        .arg("daemon")
        .env("SKYPORT_EDGE_BMC_PASSWORD", "bmc-pass")
        .env("SKYPORT_EDGE_TOKEN", server.edge_token("lab").unwrap())
        .env("RUST_LOG", "info");
    let mut daemon = common::spawn(&mut cmd, Stdio::null(), Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.endpoint_count(&server.addr) != Some(5) {
        assert!(Instant::now() < deadline, "the daemon pushed nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stuck = "the daemon ignored SIGTERM";
    let status = common::terminate(&mut daemon, Duration::from_secs(20), stuck);
    assert!(status.success(), "{status}");
    let mut logs = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut logs).unwrap();
    // JSON logs, one object per line, with the structured fields an operator filters on.
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "BMC discovered" && l["xname"].is_string())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "pushed to the inventory")
    );
    assert!(!logs.contains("bmc-pass"));
    assert_exactly_once(&h, &server.addr, 5);
    server.stop().unwrap();
}
