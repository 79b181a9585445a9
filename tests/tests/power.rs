//! Jobs on hardware end to end, with the real `skyport serve` and `skyport-edge daemon` and the
//! mock BMC fleet (whose systems keep power and boot-override state and count every reset):
//! a PCS transition reaches the site's agent, which acts on the BMCs it discovered with the
//! credentials only it holds and reports back; power states reach PCS's status and the
//! inventory; a `kill -9` of the agent mid-job and a cloud outage neither lose a task nor reset
//! a node twice; a site's token reads only its own jobs.
//!
//! What the mock does not emulate (see `crates/mockbmc/src/power.rs`): reset tasks (202 with a
//! task monitor), ETags, a BIOS honouring the override. The VM test with sushy-tools covers a
//! BMC nobody here wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyport_e2e::{Server, edge_bin};
use skyport_mockbmc::{BmcSpec, Faults, Fleet, FleetOptions, Tree, shared_mockups};
use skyport_testkit::free_port;

const SYSTEM: &str = "/redfish/v1/Systems/437XR1138R2";

struct Site {
    rt: tokio::runtime::Runtime,
    fleet: Fleet,
    dir: tempfile::TempDir,
    port: u16,
    n: u32,
}

/// `n` DMTF BMCs on 127.0.7.0/24 (plain HTTP), each BMC `x3000c0s{i}b0` with node `…n0`.
fn site(n: u32, latency: Duration) -> Site {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = free_port().unwrap();
    let tree = Arc::new(Tree::load(&shared_mockups().join("dmtf-public-rackmount1")).unwrap());
    let mut map = String::new();
    let specs = (0..n)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 0, 7, 1 + i as u8);
            let mut s = BmcSpec::new(SocketAddr::new(IpAddr::V4(ip), port), tree.clone());
            s.uniquify = Some(i);
            s.rewrite_ip = Some("192.168.0.10".into());
            s.faults = Faults {
                latency,
                ..Faults::default()
            };
            map.push_str(&format!("{ip}: x3000c0s{i}b0\n"));
            s
        })
        .collect();
    let fleet = rt
        .block_on(Fleet::start(
            specs,
            &FleetOptions {
                username: "admin".into(),
                password: "bmc-pass".into(),
                tls: None,
            },
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yaml"), map).unwrap();
    Site {
        rt,
        fleet,
        dir,
        port,
        n,
    }
}

impl Site {
    fn nodes(&self) -> Vec<String> {
        (0..self.n).map(|i| format!("x3000c0s{i}b0n0")).collect()
    }

    /// Every reset BMC `i` accepted, as `<ResetType>[ boot=<target>]`.
    fn resets(&self, i: usize) -> Vec<String> {
        self.fleet.bmcs[i]
            .stats
            .resets
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.trim_start_matches(SYSTEM).trim().to_string())
            .collect()
    }

    /// The agent in daemon mode against `server`, acting one BMC at a time per chassis.
    fn daemon(&self, server: &SocketAddr, token: &str) -> common::Spawned {
        let conf = self.dir.path().join("edge.toml");
        std::fs::write(
            &conf,
            format!(
                "cloud_url = \"http://{server}\"\nsubnets = [\"127.0.7.1-127.0.7.{}\"]\n\
                 ports = [{}]\nscheme = \"http\"\nsite_map = \"{}\"\ninterval = 3600\n\
                 bmc_user = \"admin\"\njobs_poll_interval = 0.2\npower_per_chassis = 1\n\
                 power_delay_ms = 20\n",
                self.n,
                self.port,
                self.dir.path().join("site.yaml").display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(edge_bin().unwrap());
        cmd.arg("--config")
            .arg(&conf)
            .arg("--data")
            .arg(self.dir.path().join("edge"))
            .arg("daemon")
            .env("SKYPORT_EDGE_BMC_PASSWORD", "bmc-pass")
            .env("SKYPORT_EDGE_TOKEN", token)
            .env("RUST_LOG", "warn");
        common::spawn(&mut cmd, Stdio::null(), Stdio::inherit())
    }
}

struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(server: &Server, scope: &str) -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: format!("http://{}", server.addr),
            token: server.token(scope).unwrap(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        self.rt.block_on(async {
            match r.send().await {
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    (s, resp.json().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        })
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    fn transition(&self, op: &str, nodes: &[String], boot: Option<&str>) -> String {
        let location: Vec<Value> = nodes.iter().map(|x| json!({ "xname": x })).collect();
        let mut body = json!({"operation": op, "location": location});
        if let Some(b) = boot {
            body["bootOverride"] = json!(b);
        }
        let v = self.ok("POST", "/power-control/v1/transitions", Some(body));
        v["transitionID"].as_str().unwrap().to_string()
    }

    /// Polls a transition until `done` says so (or fails after `within`).
    fn wait(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (s, v) = self.call("GET", &format!("/power-control/v1/transitions/{id}"), None);
            if s == 200 && done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "transition {id} stuck: {s} {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn completed(&self, id: &str) -> Value {
        self.wait(id, Duration::from_secs(90), |v| {
            v["transitionStatus"] == "completed"
        })
    }
}

fn discovered(api: &Api, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = api.call("GET", "/hsm/v2/Inventory/RedfishEndpoints", None);
        if v["RedfishEndpoints"].as_array().map(Vec::len) == Some(n as usize) {
            return;
        }
        assert!(Instant::now() < deadline, "the agent discovered nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_succeeded(t: &Value, n: u32) {
    assert_eq!(t["taskCounts"]["succeeded"], n, "{t:#}");
}

#[test]
fn a_transition_runs_on_the_sites_bmcs_through_its_agent() {
    let s = site(4, Duration::ZERO);
    let server = Server::start(&s.dir.path().join("cloud")).unwrap();
    let admin = Api::new(&server, "write");
    let _agent = s.daemon(&server.addr, &server.edge_token("lab").unwrap());
    discovered(&admin, s.n);
    let nodes = s.nodes();
    // An SMD client subscribed to nodes going Off (SCN): the server delivers what the agents'
    // results change.
    let scn = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let seen = scn.clone();
    let receiver = axum::Router::new().route(
        "/scn",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let l =
        s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
    let scn_url = format!("http://{}/scn", l.local_addr().unwrap());
    s.rt.spawn(async move { axum::serve(l, receiver).await });
    admin.ok(
        "POST",
        "/hsm/v2/Subscriptions/SCN",
        Some(json!({"Subscriber": "e2e", "States": ["Off"], "Url": scn_url})),
    );

    // Off: the mock's OS honours the graceful shutdown.
    let off = admin.transition("off", &nodes, None);
    let t = admin.completed(&off);
    all_succeeded(&t, s.n);
    let deadline = Instant::now() + Duration::from_secs(30);
    let told = loop {
        let mut told: Vec<String> = scn
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["State"] == "Off")
            .flat_map(|p| p["Components"].as_array().unwrap().clone())
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        told.sort();
        if told.len() >= nodes.len() || Instant::now() > deadline {
            break told;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        told,
        nodes,
        "each node's Off told once: {:?}",
        scn.lock().unwrap()
    );
    assert_eq!(t["operation"], "Off");
    assert!(
        t["tasks"][0]["taskStatusDescription"]
            .as_str()
            .unwrap()
            .contains("off"),
        "{t:#}"
    );
    let st = admin.ok(
        "GET",
        &format!("/power-control/v1/power-status?xname={}", nodes[0]),
        None,
    );
    assert_eq!(st["status"][0]["powerState"], "off");
    let c = admin.ok(
        "GET",
        &format!("/hsm/v2/State/Components/{}", nodes[0]),
        None,
    );
    assert_eq!(c["State"], "Off");

    // "Reimage" as an admin types it: network boot once, then a hard restart of every node
    // under the chassis (from off: one power-on each), followed to the end.
    let url = format!("http://{}", server.addr);
    let out = skyport_e2e::skyport(
        &[
            "power", "reset", "x3000c0", "--boot", "pxe", "--wait", "-o", "json", "--url", &url,
        ],
        &admin.token,
    );
    let job: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["tasks"].as_array().unwrap().len(), s.n as usize);
    let list = skyport_e2e::skyport(&["job", "list", "--url", &url], &admin.token);
    assert!(list.contains("power Hard-Restart (boot pxe)"), "{list}");
    assert!(list.contains("power Off"), "{list}");
    for i in 0..s.n as usize {
        assert_eq!(s.resets(i), ["GracefulShutdown", "On boot=Pxe"], "BMC {i}");
    }
    let c = admin.ok(
        "GET",
        &format!("/hsm/v2/State/Components/{}", nodes[1]),
        None,
    );
    assert_eq!(c["State"], "On");

    // The same through Skyport's own API: a boot override job, then a status job.
    let job = admin.ok(
        "POST",
        "/power/v1/jobs",
        Some(json!({"action": {"kind": "boot", "target": "none"}, "xnames": [nodes[2]]})),
    );
    let id = job["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let v = admin.ok("GET", &format!("/power/v1/jobs/{id}"), None);
        if v["state"] == "done" || v["state"] == "failed" {
            break v;
        }
        assert!(Instant::now() < deadline, "{v:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(done["tasks"][0]["site"], "lab");

    // The crawl's services reach SMD's ServiceEndpoints.
    let se = admin.ok(
        "GET",
        "/hsm/v2/Inventory/ServiceEndpoints?redfish_ep=x3000c0s0b0",
        None,
    );
    let types: Vec<&str> = se["ServiceEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["RedfishType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "AccountService",
            "EventService",
            "SessionService",
            "TaskService",
            "UpdateService"
        ],
        "{se:#}"
    );
    let account = &se["ServiceEndpoints"][0];
    assert_eq!(account["ServiceInfo"]["Id"], "AccountService", "{se:#}");
    assert!(
        account["RedfishURL"]
            .as_str()
            .unwrap()
            .ends_with("/redfish/v1/AccountService"),
        "{se:#}"
    );

    // SMD's Discover: the cloud asks the owning site's agent to crawl the BMC again, and what
    // the crawl finds reaches the inventory (here: the ComponentEndpoint an admin deleted).
    let st = admin.ok("GET", "/hsm/v2/Inventory/DiscoveryStatus/0", None);
    assert_eq!(st["Status"], "NotStarted", "{st:#}");
    let ce = format!("/hsm/v2/Inventory/ComponentEndpoints/{}", nodes[0]);
    admin.ok("DELETE", &ce, None);
    assert_eq!(admin.call("GET", &ce, None).0, 404);
    let (status, body) = admin.call(
        "POST",
        "/hsm/v2/Inventory/Discover",
        Some(json!({"xnames": ["x3000c0s0b0", "x3000c0s9b0"]})),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["detail"], "No such RedfishEndpoint: x3000c0s9b0");
    let uri = admin.ok(
        "POST",
        "/hsm/v2/Inventory/Discover",
        Some(json!({"xnames": ["x3000c0s0b0"], "force": false})),
    );
    assert_eq!(uri, json!([{"URI": "/hsm/v2/Inventory/DiscoveryStatus/0"}]));
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        let v = admin.ok("GET", "/hsm/v2/Inventory/DiscoveryStatus", None);
        if v[0]["Status"] == "Complete" {
            break v[0].clone();
        }
        assert_eq!(v[0]["Status"], "InProgress", "{v:#}");
        assert!(Instant::now() < deadline, "{v:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["Details"]["Tasks"], json!({"succeeded": 1}), "{st:#}");
    let job = admin.ok(
        "GET",
        &format!("/power/v1/jobs/{}", st["Details"]["Job"].as_str().unwrap()),
        None,
    );
    assert_eq!(job["tasks"][0]["site"], "lab", "{job:#}");
    assert!(
        job["tasks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("queued for the inventory"),
        "{job:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.call("GET", &ce, None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the crawl's result never reached the inventory"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A node of the site that its agent never discovered fails with the reason.
    admin.ok("PUT", "/edge/v1/sites/lab/xnames/x3000", None);
    let stray = admin.transition("on", &["x3000c0s40b0n0".to_string()], None);
    let t = admin.completed(&stray);
    assert_eq!(t["taskCounts"]["failed"], 1, "{t:#}");
    assert!(
        t["tasks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("has not discovered it"),
        "{t:#}"
    );

    // A site's token reads only its own jobs.
    let other = Api {
        token: server.edge_token("other").unwrap(),
        ..Api::new(&server, "read")
    };
    let (status, body) = other.call("GET", "/edge/v1/jobs?site=lab", None);
    assert_eq!(status, 403, "{body}");
    // Agents took and reported jobs; admins with a read token cannot make one.
    let reader = Api::new(&server, "read");
    let (status, _) = reader.call(
        "POST",
        "/power-control/v1/transitions",
        Some(json!({"operation": "on", "location": [{"xname": nodes[0]}]})),
    );
    assert_eq!(status, 403);
    drop(s.rt);
}

/// A hard restart (not repeatable) of slow BMCs, one at a time: the agent is killed while a
/// task is under way, the cloud goes away while the rest run; afterwards every task is final,
/// no BMC was reset twice, and the interrupted task says why it was not repeated.
#[test]
fn jobs_survive_a_kill_9_of_the_agent_and_a_cloud_outage() {
    let s = site(4, Duration::from_millis(300));
    let data = s.dir.path().join("cloud");
    let server = Server::start(&data).unwrap();
    let addr = server.addr;
    let admin = Api::new(&server, "write");
    let token = server.edge_token("lab").unwrap();
    let mut agent = s.daemon(&addr, &token);
    discovered(&admin, s.n);
    let nodes = s.nodes();
    let id = admin.transition("hard-restart", &nodes, None);
    // Killed once a task is running (and at least one finished, so the run is mid-job).
    admin.wait(&id, Duration::from_secs(60), |v| {
        v["taskCounts"]["in-progress"] == 1 && v["taskCounts"]["succeeded"].as_u64() >= Some(1)
    });
    agent.kill().unwrap();
    agent.wait().unwrap();

    // The cloud goes away; the agent comes back and finishes the job offline.
    server.stop().unwrap();
    let _agent = s.daemon(&addr, &token);
    let resets = |s: &Site| (0..s.n as usize).map(|i| s.resets(i).len()).sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = resets(&s);
    while resets(&s) + 1 < s.n as usize {
        assert!(
            Instant::now() < deadline,
            "the agent did not go on without the cloud ({before} resets)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The cloud returns; the results kept on the agent reach it.
    let server = Server::start_at(addr, &data).unwrap();
    let admin = Api::new(&server, "write");
    let t = admin.completed(&id);
    let failed: Vec<&Value> = t["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["taskStatus"] == "failed")
        .collect();
    assert_eq!(
        t["taskCounts"]["succeeded"].as_u64().unwrap() + failed.len() as u64,
        s.n as u64,
        "{t:#}"
    );
    assert!(failed.len() <= 1, "{t:#}");
    for f in &failed {
        assert!(
            f["error"].as_str().unwrap().contains("not repeated"),
            "{t:#}"
        );
    }
    for i in 0..s.n as usize {
        assert!(
            s.resets(i).len() <= 1,
            "BMC {i} reset twice: {:?}",
            s.resets(i)
        );
    }
    server.stop().unwrap();
    drop(s.rt);
}
