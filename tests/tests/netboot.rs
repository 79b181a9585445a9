//! A real network boot: QEMU with iPXE asks the edge agent (`skyport-edge daemon --listen`) for
//! its boot script, downloads a kernel and an initramfs that were uploaded through the image
//! registry of the local cloud (`skyport serve`), and boots Linux; the initramfs prints
//! `/proc/cmdline` on the serial console. Then the cloud is stopped for good, the agent is
//! restarted, and a second VM boots from what the agent kept.
//!
//! Needs qemu-system-x86_64, iPXE's `pxe-e1000.rom`, a static busybox and a kernel; their paths
//! come from `scripts/install-test-tools` (SKYPORT_NETBOOT_*), which CI runs first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skyport_e2e::{Server, edge_bin};
use skyport_testkit::free_port;

fn tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run `eval \"$(scripts/install-test-tools)\"` first")
    });
    assert!(p.exists(), "{var}={} does not exist", p.display());
    p
}

/// An initramfs (cpio "newc") with a static busybox and an `/init` that prints the kernel
/// command line and powers off.
fn initramfs(busybox: &Path) -> Vec<u8> {
    let init = "#!/bin/busybox sh\n\
        /bin/busybox mount -t proc proc /proc\n\
        echo \"SKYPORT-CMDLINE: $(/bin/busybox cat /proc/cmdline)\"\n\
        /bin/busybox poweroff -f\n";
    let bb = std::fs::read(busybox).unwrap();
    let mut out = Vec::new();
    // (path, mode, (device major, minor), contents)
    type CpioEntry<'a> = (&'a str, u32, (u32, u32), &'a [u8]);
    let entries: Vec<CpioEntry> = vec![
        ("bin", 0o040755, (0, 0), b""),
        ("dev", 0o040755, (0, 0), b""),
        ("proc", 0o040755, (0, 0), b""),
        // The kernel opens /dev/console for init before anything is mounted.
        ("dev/console", 0o020600, (5, 1), b""),
        ("bin/busybox", 0o100755, (0, 0), &bb),
        ("init", 0o100755, (0, 0), init.as_bytes()),
        ("TRAILER!!!", 0, (0, 0), b""),
    ];
    let pad = |out: &mut Vec<u8>| {
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    };
    for (ino, (name, mode, (maj, min), data)) in entries.into_iter().enumerate() {
        let fields = [
            ino as u32 + 1,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            maj,
            min,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(&mut out);
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

struct Api {
    h: reqwest::Client,
    root: String,
    token: String,
}

impl Api {
    async fn send(&self, r: reqwest::RequestBuilder) -> serde_json::Value {
        let resp = r.bearer_auth(&self.token).send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{status}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    async fn upload(&self, name: &str, kind: &str, bytes: Vec<u8>) -> String {
        let r = self
            .send(self.h.post(format!("{}/images/v1/images", self.root)).json(
                &serde_json::json!({"name": name, "version": "1", "arch": "x86_64",
                        "kind": kind, "size": bytes.len(), "sha256": sha256_hex(&bytes)}),
            ))
            .await;
        let id = r["image"]["id"].as_str().unwrap().to_string();
        let put = self
            .h
            .put(r["upload"]["url"].as_str().unwrap())
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{}", put.text().await.unwrap());
        self.send(
            self.h
                .post(format!("{}/images/v1/images/{id}/complete", self.root)),
        )
        .await;
        id
    }
}

/// `skyport-edge daemon` serving nodes; killed on drop.
struct Edge(Child);

impl Edge {
    fn start(data: &Path, listen: SocketAddr, cloud: &str, token: &str) -> Edge {
        let child = Command::new(edge_bin().unwrap())
            .arg("--data")
            .arg(data)
            .args([
                "--listen",
                &listen.to_string(),
                // What the VM calls the host's loopback (QEMU user networking).
                "--node-url",
                &format!("http://10.0.2.2:{}", listen.port()),
                "--cloud-url",
                cloud,
                "--sync-interval",
                "1",
                "daemon",
            ])
            .env("SKYPORT_EDGE_TOKEN", token)
            .env("RUST_LOG", "warn,skyport_edge=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Edge(child)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
    }
}

async fn wait_ready(h: &reqwest::Client, edge: &str, want_images: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready =
            matches!(h.get(format!("{edge}/readyz")).send().await, Ok(r) if r.status() == 200);
        if ready {
            let mut all = true;
            for id in want_images {
                let r = h.head(format!("{edge}/edge/v1/images/{id}")).send().await;
                all &= matches!(r, Ok(r) if r.status() == 200);
            }
            if all {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "edge agent at {edge} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Boots a VM with `mac` from `port` on the host; returns what its serial console printed.
async fn boot_vm(port: u16, mac: &str) -> String {
    let rom = tool("SKYPORT_NETBOOT_ROM");
    let mac = mac.to_string();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("timeout")
            .args([
                "180",
                "qemu-system-x86_64",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
            ])
            .arg("-netdev")
            .arg(format!(
                "user,id=n0,bootfile=http://10.0.2.2:{port}/boot/v1/bootscript?mac=${{net0/mac}}"
            ))
            .arg("-device")
            .arg(format!(
                "e1000,netdev=n0,mac={mac},bootindex=1,romfile={}",
                rom.display()
            ))
            .stdin(Stdio::null())
            .output()
            .expect("running qemu-system-x86_64");
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        s
    })
    .await
    .unwrap()
}

/// The kernel arguments of the boot script's `kernel` line.
fn script_params(script: &str) -> String {
    let line = script
        .lines()
        .find(|l| l.starts_with("kernel "))
        .unwrap_or_else(|| panic!("no kernel line in {script}"));
    let rest = line.split_once(" || ").unwrap().0;
    // kernel --name kernel <url> <params>
    rest.splitn(5, ' ').nth(4).unwrap().to_string()
}

fn cmdline(console: &str) -> String {
    console
        .lines()
        .find_map(|l| {
            l.trim_end_matches('\r')
                .split_once("SKYPORT-CMDLINE: ")
                .map(|(_, c)| c.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the VM never printed its command line; console:\n{console}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_network_boot_from_the_edge_with_the_cloud_up_and_gone() {
    let kernel = std::fs::read(tool("SKYPORT_NETBOOT_KERNEL")).unwrap();
    let initrd = initramfs(&tool("SKYPORT_NETBOOT_BUSYBOX"));
    let dir = tempfile::tempdir().unwrap();
    let cloud = Server::start(&dir.path().join("cloud")).unwrap();
    let api = Api {
        h: reqwest::Client::new(),
        root: format!("http://{}", cloud.addr),
        token: cloud.token("admin").unwrap(),
    };
    let k = api.upload("debian-cloud", "kernel", kernel).await;
    let i = api.upload("cmdline-printer", "initrd", initrd).await;
    let nodes = [
        ("x1000c0s0b0n0", 1, "52:54:00:12:34:56"),
        ("x1000c0s0b0n1", 2, "52:54:00:12:34:57"),
    ];
    for (x, nid, mac) in nodes {
        api.send(api.h.post(format!("{}/hsm/v2/State/Components", api.root)).json(
            &serde_json::json!({"Components": [{"ID": x, "State": "Ready", "Role": "Compute",
                "NID": nid, "Type": "Node", "Enabled": true}]}),
        ))
        .await;
        api.send(
            api.h
                .post(format!("{}/hsm/v2/Inventory/EthernetInterfaces", api.root))
                .json(&serde_json::json!({"MACAddress": mac, "ComponentID": x})),
        )
        .await;
        api.send(
            api.h
                .post(format!("{}/boot/v1/bootparameters", api.root))
                .json(
                    &serde_json::json!({"hosts": [x], "kernel": format!("image:{k}"),
                "initrd": format!("image:{i}"),
                "params": format!("console=ttyS0 panic=-1 skyport.site=lab {x}.marker=1")}),
                ),
        )
        .await;
    }

    let port = free_port().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let edge_url = format!("http://{listen}");
    let edge_data = dir.path().join("edge");
    let edge_token = cloud.edge_token("lab").unwrap();
    // The nodes are the lab site's (an admin's assignment): its agent's snapshot carries them.
    api.send(
        api.h
            .put(format!("{}/edge/v1/sites/lab/xnames/x1000c0s0b0", api.root)),
    )
    .await;
    let edge = Edge::start(&edge_data, listen, &api.root, &edge_token);
    wait_ready(&api.h, &edge_url, &[&k, &i]).await;

    // First VM, cloud up.
    let (x, nid, mac) = nodes[0];
    let script = api
        .h
        .get(format!("{edge_url}/boot/v1/bootscript?mac={mac}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = script_params(&script);
    assert!(
        want.contains(&format!(
            "console=ttyS0 panic=-1 skyport.site=lab {x}.marker=1"
        )) && want.contains(&format!("xname={x} nid={nid}")),
        "{want}"
    );
    let console = boot_vm(port, mac).await;
    assert_eq!(cmdline(&console), want, "console:\n{console}");

    // The cloud goes away for good; the agent restarts with it gone.
    cloud.stop().unwrap();
    drop(edge);
    let _edge = Edge::start(&edge_data, listen, &api.root, &edge_token);
    wait_ready(&api.h, &edge_url, &[&k, &i]).await;

    let (x, nid, mac) = nodes[1];
    let console = boot_vm(port, mac).await;
    let got = cmdline(&console);
    assert!(
        got.contains(&format!(
            "console=ttyS0 panic=-1 skyport.site=lab {x}.marker=1"
        )) && got.contains(&format!("xname={x} nid={nid}"))
            && got.contains(&format!("BOOTIF=01-{}", mac.replace(':', "-"))),
        "console:\n{console}"
    );
}
