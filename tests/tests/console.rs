//! The operator console in a real browser (Debian's headless Chromium over WebDriver) against
//! the real `skyport serve`: signing in with the local issuer's tokens, the boot board of a site
//! whose agent reported a boot storm (stuck nodes first, updating by itself), a node's page,
//! scopes (a `read` sign-in cannot act), a power action confirmed and its job, and every page
//! checked by axe-core for WCAG 2 A/AA (labels, contrast, landmarks). Screenshots of each page
//! go to `target/console-shots/local/` (CI keeps them as artifacts).
//!
//! Booting VMs is the netboot test's job: there the console watches a real VM boot, resets it
//! through its BMC, and shows the edge's board with the cloud stopped. Here the boots come as
//! the agent reports them (`POST /edge/v1/reports`, with the site's own token), which is what
//! the cloud's board reads in the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use skyport_e2e::Server;
use skyport_e2e::webdriver::{Browser, axe_source};

const NODES: u32 = 24;

fn xname(i: u32) -> String {
    format!("x1000c0s{i}b0n0")
}

fn mac(i: u32) -> String {
    format!("02:00:00:10:00:{i:02x}")
}

struct Api {
    h: reqwest::Client,
    root: String,
    token: String,
}

impl Api {
    async fn send(&self, r: reqwest::RequestBuilder, token: &str) -> serde_json::Value {
        let r = r.bearer_auth(token).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{status}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

fn event(at_ms: i64, stage: &str, i: u32, failed: bool) -> serde_json::Value {
    json!({"at_ms": at_ms, "stage": stage, "xname": xname(i), "mac": mac(i), "failed": failed,
           "ip": format!("10.1.0.{}", 10 + i)})
}

/// A boot storm as the site's agent reports it: most nodes phoned home, some on their way,
/// two stuck (silent for ten minutes), one whose boot script failed.
fn storm(now_ms: i64) -> Vec<serde_json::Value> {
    let mut ev = Vec::new();
    for i in 0..NODES {
        let start = now_ms - 60_000 - i64::from(i) * 1000;
        let stages: &[&str] = match i {
            0 | 1 => &["dhcp_discover", "dhcp_ack", "tftp"],
            2 => &["dhcp_discover", "dhcp_ack", "tftp", "boot_script"],
            3..=6 => &["dhcp_discover", "dhcp_ack", "tftp", "boot_script", "kernel"],
            _ => &[
                "dhcp_discover",
                "dhcp_ack",
                "tftp",
                "boot_script",
                "kernel",
                "initrd",
                "meta_data",
                "phone_home",
            ],
        };
        // The stuck ones went silent ten minutes ago.
        let start = if i < 2 { now_ms - 600_000 } else { start };
        for (k, s) in stages.iter().enumerate() {
            let failed = i == 2 && *s == "boot_script";
            ev.push(event(start + k as i64 * 3000, s, i, failed));
        }
    }
    ev
}

async fn sign_in(b: &Browser, root: &str, token: &str) {
    b.goto(&format!("{root}/console/boots")).await.unwrap();
    b.wait_for("input#token", Duration::from_secs(10))
        .await
        .unwrap();
    b.type_into("input#token", token).await.unwrap();
    b.click("form[action='/console/login'] button")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.url().await.unwrap().contains("/console/login") {
        assert!(
            std::time::Instant::now() < deadline,
            "sign-in did not leave the sign-in page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.wait_for("h1", Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_boot_storm_and_acts_only_with_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server")).unwrap();
    let api = Api {
        h: reqwest::Client::new(),
        root: format!("http://{}", server.addr),
        token: server.token("admin").unwrap(),
    };
    let r = &api.root;
    let comps: Vec<_> = (0..NODES)
        .map(|i| {
            json!({"ID": xname(i), "State": "Ready", "Role": "Compute", "NID": i + 1,
                        "Type": "Node", "Enabled": true})
        })
        .collect();
    api.send(
        api.h
            .post(format!("{r}/hsm/v2/State/Components"))
            .json(&json!({ "Components": comps })),
        &api.token,
    )
    .await;
    for i in 0..NODES {
        api.send(
            api.h
                .post(format!("{r}/hsm/v2/Inventory/EthernetInterfaces"))
                .json(&json!({"MACAddress": mac(i), "ComponentID": xname(i)})),
            &api.token,
        )
        .await;
    }
    let hosts: Vec<String> = (0..NODES).map(xname).collect();
    api.send(
        api.h
            .post(format!("{r}/boot/v1/bootparameters"))
            .json(&json!({
            "hosts": hosts, "kernel": "http://images.example/vmlinuz",
            "initrd": "http://images.example/initrd", "params": "console=ttyS0"})),
        &api.token,
    )
    .await;
    api.send(
        api.h
            .post(format!("{r}/hsm/v2/groups"))
            .json(&json!({"label": "compute", "members": {"ids": hosts[..12]}})),
        &api.token,
    )
    .await;
    let edge = server.edge_token("lab").unwrap();
    api.send(
        api.h.put(format!("{r}/edge/v1/sites/lab/xnames/x1000c0")),
        &api.token,
    )
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let report = |events: Vec<serde_json::Value>| {
        json!({"site": "lab", "boot_events": events, "status": {
            "generation": "g1", "applied_at": now_ms / 1000, "last_sync_ok": now_ms / 1000,
            "outbox_depth": 3, "cache_bytes": 3_221_225_472u64, "reports_pending": 0,
            "version": "0.1.0"}})
    };
    api.send(
        api.h
            .post(format!("{r}/edge/v1/reports"))
            .json(&report(storm(now_ms))),
        &edge,
    )
    .await;

    let shots = skyport_testkit::repo_root().join("target/console-shots/local");
    let axe = axe_source().unwrap();
    let b = Browser::start(&shots).await.unwrap();

    // Not signed in: the sign-in page, which says where the token comes from.
    b.goto(&format!("{r}/console/boots")).await.unwrap();
    let hint = b.wait_for(".hint", Duration::from_secs(10)).await.unwrap();
    assert!(hint.contains("skyport token"), "{hint}");
    b.check_page(&axe, "login").await;
    // A wrong token is said at once.
    b.type_into("input#token", "not-a-token").await.unwrap();
    b.click("form[action='/console/login'] button")
        .await
        .unwrap();
    let alert = b
        .wait_for("[role=alert]", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!alert.is_empty());

    // A read sign-in sees the board: stuck nodes first, the failed one next, counts per stage.
    sign_in(&b, r, &server.token("read").unwrap()).await;
    let summary = b.text(".summary").await.unwrap().unwrap();
    assert!(
        summary.starts_with(&format!(
            "{NODES} nodes · {} phoned home · 2 stuck",
            NODES - 7
        )),
        "{summary}"
    );
    let first = b.text(".cells li a").await.unwrap().unwrap();
    assert!(
        first.contains("x1000c0s0b0n0") && first.contains("stuck"),
        "{first}"
    );
    let third = b
        .execute("return document.querySelectorAll('.cells li a')[2].innerText")
        .await
        .unwrap();
    assert!(
        third.as_str().unwrap().contains("x1000c0s2b0n0")
            && third.as_str().unwrap().contains("failed"),
        "{third}"
    );
    let hist = b.text("table.hist").await.unwrap().unwrap();
    let hist = hist.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(hist.contains("under 30 s 17"), "{hist}");
    b.check_page(&axe, "board").await;

    // The board updates by itself: a stuck node reports again and moves on without a reload.
    api.send(
        api.h
            .post(format!("{r}/edge/v1/reports"))
            .json(&report(vec![
                event(now_ms + 1000, "boot_script", 0, false),
                event(now_ms + 2000, "kernel", 0, false),
            ])),
        &edge,
    )
    .await;
    b.wait_for(
        ".cells a[data-node='x1000c0s0b0n0'][data-stage='kernel']",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    // A group's board: only its members.
    b.goto(&format!("{r}/console/boots?site=lab&group=compute"))
        .await
        .unwrap();
    let summary = b.text(".summary").await.unwrap().unwrap();
    assert!(summary.starts_with("12 nodes"), "{summary}");

    // A node: identity, what it boots (the exact script), its boot's timeline; read-only.
    b.click(".cells a[data-node='x1000c0s9b0n0']")
        .await
        .unwrap();
    b.wait_text("h1", "Node x1000c0s9b0n0", Duration::from_secs(10))
        .await
        .unwrap();
    let main = b.text("main").await.unwrap().unwrap();
    for want in [
        "02:00:00:10:00:09",
        "lab",
        "its own boot parameters",
        "console=ttyS0",
        "phoned home",
        "Your sign-in may only read",
    ] {
        assert!(main.contains(want), "node page lacks {want:?}:\n{main}");
    }
    b.execute("document.querySelector('details').open = true")
        .await
        .unwrap();
    let script = b.text("details pre").await.unwrap().unwrap();
    assert!(
        script.starts_with("#!ipxe") && script.contains("http://images.example/vmlinuz"),
        "{script}"
    );
    b.check_page(&axe, "node-read").await;
    // A read sign-in cannot act, even by posting the form itself.
    b.goto(&format!("{r}/console/nodes/x1000c0s9b0n0/power?op=reset"))
        .await
        .unwrap();
    b.click("button.danger").await.unwrap();
    b.wait_text("h1", "Forbidden", Duration::from_secs(10))
        .await
        .unwrap();

    // Sites and discovery.
    b.goto(&format!("{r}/console/sites")).await.unwrap();
    let sites = b.text("main table").await.unwrap().unwrap();
    assert!(
        sites.contains("lab") && sites.contains("reachable") && sites.contains("3.0 GiB"),
        "{sites}"
    );
    b.check_page(&axe, "sites").await;
    b.goto(&format!("{r}/console/discovery")).await.unwrap();
    let d = b.text("main").await.unwrap().unwrap();
    assert!(d.contains("lab: 3"), "{d}");
    b.check_page(&axe, "discovery").await;

    // Sign out; a write sign-in acts: a reset, confirmed, becomes a job (pending: no agent
    // runs here, which the job page says).
    b.click("form[action='/console/logout'] button")
        .await
        .unwrap();
    b.wait_for("input#token", Duration::from_secs(10))
        .await
        .unwrap();
    sign_in(&b, r, &server.token("write").unwrap()).await;
    b.goto(&format!("{r}/console/nodes/x1000c0s9b0n0"))
        .await
        .unwrap();
    b.click("a.button[href$='op=reset-pxe']").await.unwrap();
    b.wait_text(
        "h1",
        "Reset and network-boot x1000c0s9b0n0?",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    b.check_page(&axe, "confirm").await;
    b.click("button.danger").await.unwrap();
    let state = b
        .wait_for(".job[data-state]", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(state, "pending");
    let url = b.url().await.unwrap();
    let id = url.rsplit('/').next().unwrap().to_string();
    let job = api
        .send(api.h.get(format!("{r}/power/v1/jobs/{id}")), &api.token)
        .await;
    assert_eq!(job["action"]["operation"], "Hard-Restart", "{job:#}");
    assert_eq!(job["action"]["boot"], "pxe", "{job:#}");
    assert_eq!(job["tasks"][0]["xname"], "x1000c0s9b0n0");
    b.check_page(&axe, "job").await;

    // A form from another origin is refused, whatever the session.
    let cookie = format!("skyport_console={}", server.token("admin").unwrap());
    let forged = api
        .h
        .post(format!("{r}/console/nodes/x1000c0s9b0n0/power"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("op=off&csrf=whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    drop(b);
    drop(server);
}
