//! The whole boot chain on a real provisioning network: QEMU VMs on tap devices in a network
//! namespace the test builds (a bridge, taps, a veth uplink to the host where the cloud runs),
//! with **no** QEMU user-mode networking and no DHCP, TFTP or HTTP server but the edge agent's
//! (and dnsmasq, as the site's own address-only DHCP server, where the test is about sitting
//! beside one). Firmware is real: SeaBIOS with QEMU's iPXE ROM, and OVMF's own PXE and HTTP
//! boot, all under software emulation (TCG), as `../shared/reference/toolchain.md` requires.
//!
//! Each VM loads a kernel and an initramfs uploaded through the cloud's image registry (named
//! by its own BSS boot parameters, or by a BootConfiguration selecting its inventory group); the
//! initramfs prints `/proc/cmdline`, loads the virtio network modules, gets an address by DHCP
//! and prints it, then powers off.
//!
//! The last test drives a VM the other way round, as an admin does: libvirt manages it,
//! sushy-tools' emulator (OpenStack's, how Ironic and Metal3 test; nobody here wrote it) is its
//! Redfish BMC, the agent discovers that BMC, and the admin, in the operator console in a real
//! browser (headless Chromium), resets the node into a network boot, watches the job finish and
//! the boot board until the VM phoned home, then, with the cloud stopped, opens the site's own
//! console on the agent. Every page is checked with axe-core and screenshotted
//! (`target/console-shots/netboot/`).
//!
//! Needs root (namespaces, taps), `ip`, qemu-system-x86_64, OVMF, Debian's `ipxe` binaries,
//! dnsmasq, a static busybox, the cloud kernel with its virtio modules, libvirtd and
//! sushy-tools with Debian's libvirt binding, Chromium, chromedriver and axe-core;
//! `scripts/install-test-tools` installs them and
//! prints their paths (`SKYPORT_NETBOOT_*`, `SKYPORT_OVMF_DIR`, `SKYPORT_IPXE_DIR`,
//! `SKYPORT_SUSHY_VENV`), and CI runs it first. The power test owns the machine's libvirtd for
//! its duration (the daemon's socket is system-wide): it stops one left running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skyport_e2e::webdriver::{Browser, axe_source};
use skyport_e2e::{Server, edge_bin};
use skyport_testkit::free_port;

fn tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run `eval \"$(scripts/install-test-tools)\"` first")
    });
    assert!(p.exists(), "{var}={} does not exist", p.display());
    p
}

/// Runs a command to completion; panics with its output if it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip(args: &str) {
    run(Command::new("ip").args(args.split_whitespace()));
}

/// The provisioning network of one test: namespace `skn<id>` with bridge `br0` (10.77.0.1/24,
/// the agent's interface), `taps` tap devices on it, and a veth uplink `up0` (10.78.<id>.2/30)
/// to the host (10.78.<id>.1), where the cloud listens. With `site_dhcp`, a second namespace
/// `skd<id>` (10.77.0.2 on the bridge) runs dnsmasq as the site's address-only DHCP server.
/// Everything is deleted on drop.
struct Net {
    ns: String,
    site_ns: Option<String>,
    host_if: String,
    uplink: Ipv4Addr,
    agent_up: Ipv4Addr,
}

impl Net {
    fn create(id: u8, taps: usize, site_dhcp: bool) -> Net {
        let pid = std::process::id() % 100_000;
        let ns = format!("skn{pid}-{id}");
        let host_if = format!("sku{pid}-{id}");
        // Leftovers of an earlier run killed before cleaning up.
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let net = Net {
            site_ns: site_dhcp.then(|| format!("skd{pid}-{id}")),
            ns: ns.clone(),
            host_if: host_if.clone(),
            uplink: Ipv4Addr::new(10, 78, id, 1),
            agent_up: Ipv4Addr::new(10, 78, id, 2),
        };
        ip(&format!("netns add {ns}"));
        let x = |a: &str| ip(&format!("-n {ns} {a}"));
        x("link set lo up");
        x("link add br0 type bridge");
        x("addr add 10.77.0.1/24 dev br0");
        x("link set br0 up");
        for t in 0..taps {
            x(&format!("tuntap add dev tap{t} mode tap"));
            x(&format!("link set tap{t} master br0"));
            x(&format!("link set tap{t} up"));
        }
        ip(&format!(
            "link add {host_if} type veth peer name up0 netns {ns}"
        ));
        ip(&format!("addr add {}/30 dev {host_if}", net.uplink));
        ip(&format!("link set {host_if} up"));
        x(&format!("addr add {}/30 dev up0", net.agent_up));
        x("link set up0 up");
        if let Some(sd) = &net.site_ns {
            ip(&format!("netns add {sd}"));
            ip(&format!(
                "-n {sd} link add dh0 type veth peer name dhp netns {ns}"
            ));
            ip(&format!("-n {sd} addr add 10.77.0.2/24 dev dh0"));
            ip(&format!("-n {sd} link set dh0 up"));
            x("link set dhp master br0");
            x("link set dhp up");
        }
        net
    }

    /// `program` run inside the namespace (`site`: the site DHCP server's).
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>, site: bool) -> Command {
        let mut c = Command::new("ip");
        let ns = if site {
            self.site_ns.as_ref().unwrap()
        } else {
            &self.ns
        };
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in std::iter::once(&self.ns).chain(self.site_ns.iter()) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
    }
}

/// dnsmasq as the site's DHCP server: addresses 10.77.0.100-150, no boot information.
fn site_dhcp(net: &Net, dir: &Path) -> Proc {
    let child = net
        .cmd("dnsmasq", true)
        .args([
            "--no-daemon",
            "--port=0",
            "--interface=dh0",
            "--bind-interfaces",
            "--dhcp-range=10.77.0.100,10.77.0.150,1h",
            "--log-dhcp",
        ])
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.join("dnsmasq.leases").display()
        ))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("dnsmasq.log")).unwrap())
        .spawn()
        .unwrap();
    Proc(child)
}

/// The edge agent in the namespace: HTTP on 0.0.0.0:8080 (nodes use 10.77.0.1, the test the
/// uplink), DHCP and TFTP on br0, the cloud through the uplink.
fn agent(
    net: &Net,
    data: &Path,
    cloud: &str,
    token: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.with_extension("log"))
        .unwrap();
    let child = net
        .cmd(edge_bin().unwrap(), false)
        .arg("--data")
        .arg(data)
        .args([
            "--listen",
            "0.0.0.0:8080",
            "--node-url",
            "http://10.77.0.1:8080",
            "--cloud-url",
            cloud,
            "--sync-interval",
            "1",
            "--dhcp-interface",
            "br0",
            "--ipxe-dir",
        ])
        .arg(tool("SKYPORT_IPXE_DIR"))
        .args(args)
        .arg("daemon")
        .envs(envs.iter().copied())
        .env("SKYPORT_EDGE_TOKEN", token)
        .env("RUST_LOG", "warn,skyport_edge=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// An initramfs (cpio "newc"): static busybox, the virtio network modules, and an `/init` that
/// prints the kernel command line, takes an address by DHCP, prints it, and powers off.
fn initramfs(busybox: &Path, modules: &Path) -> Vec<u8> {
    let init = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "SKYPORT-CMDLINE: $(cat /proc/cmdline)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  insmod /lib/$m.ko
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 8 -T 2 -s /bin/dhcp-event >/dev/null 2>&1
echo "SKYPORT-IP: $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
url=$(sed -n 's/.*ds=nocloud-net;s=\([^ ]*\).*/\1/p' /proc/cmdline)
x=$(sed -n 's/.* xname=\([^ ]*\).*/\1/p' /proc/cmdline)
wget -q -O /dev/null "${url}meta-data" && echo "SKYPORT-META-DATA: ok"
# What cloud-init's phone_home module sends.
wget -q -O /dev/null --post-data "instance_id=$x&hostname=$x&fqdn=$x" "${url}phone-home/$x" &&
  echo "SKYPORT-PHONED-HOME: $x"
poweroff -f
"#;
    let event = "#!/bin/busybox sh\n\
        case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; \
        ip addr add \"$ip/$mask\" dev \"$interface\";; esac\n";
    let bb = std::fs::read(busybox).unwrap();
    let mut mods: Vec<(String, Vec<u8>)> = Vec::new();
    for m in std::fs::read_dir(modules).unwrap() {
        let m = m.unwrap();
        mods.push((
            format!("lib/{}", m.file_name().to_string_lossy()),
            std::fs::read(m.path()).unwrap(),
        ));
    }
    let mut out = Vec::new();
    // (path, mode, (device major, minor), contents)
    type CpioEntry<'a> = (&'a str, u32, (u32, u32), &'a [u8]);
    let mut entries: Vec<CpioEntry> = vec![
        ("bin", 0o040755, (0, 0), b""),
        ("dev", 0o040755, (0, 0), b""),
        ("proc", 0o040755, (0, 0), b""),
        ("sys", 0o040755, (0, 0), b""),
        ("lib", 0o040755, (0, 0), b""),
        // The kernel opens /dev/console for init before anything is mounted.
        ("dev/console", 0o020600, (5, 1), b""),
        ("bin/busybox", 0o100755, (0, 0), &bb),
        ("bin/dhcp-event", 0o100755, (0, 0), event.as_bytes()),
        ("init", 0o100755, (0, 0), init.as_bytes()),
    ];
    for (name, data) in &mods {
        entries.push((name, 0o100644, (0, 0), data));
    }
    entries.push(("TRAILER!!!", 0, (0, 0), b""));
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
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

    /// A node with one interface (and its reserved address, if any) and boot parameters
    /// naming the uploaded kernel and initrd.
    async fn node(&self, n: &Node, kernel: &str, initrd: &str) {
        let r = &self.root;
        self.send(self.h.post(format!("{r}/hsm/v2/State/Components")).json(
            &serde_json::json!({"Components": [{"ID": n.xname, "State": "Ready", "Role": "Compute",
                "NID": n.nid, "Type": "Node", "Enabled": true}]}),
        ))
        .await;
        let mut ei = serde_json::json!({"MACAddress": n.mac, "ComponentID": n.xname});
        if let Some(ip) = n.ip {
            ei["IPAddresses"] = serde_json::json!([{"IPAddress": ip.to_string()}]);
        }
        self.send(
            self.h
                .post(format!("{r}/hsm/v2/Inventory/EthernetInterfaces"))
                .json(&ei),
        )
        .await;
        if n.group.is_some() {
            return;
        }
        self.send(self.h.post(format!("{r}/boot/v1/bootparameters")).json(
            &serde_json::json!({"hosts": [n.xname], "kernel": format!("image:{kernel}"),
                "initrd": format!("image:{initrd}"), "params": n.params()}),
        ))
        .await;
    }

    /// Inventory group `label` of `nodes`, and one BootConfiguration that boots every member.
    async fn group(&self, label: &str, nodes: &[&Node], kernel: &str, initrd: &str) {
        let r = &self.root;
        let ids: Vec<&str> = nodes.iter().map(|n| n.xname).collect();
        self.send(
            self.h
                .post(format!("{r}/hsm/v2/groups"))
                .json(&serde_json::json!({"label": label, "members": {"ids": ids}})),
        )
        .await;
        self.send(
            self.h
                .post(format!("{r}/boot-service/bootconfigurations"))
                .json(
                    &serde_json::json!({"metadata": {"name": label}, "spec": {"groups": [label],
                "kernel": format!("image:{kernel}"), "initrd": format!("image:{initrd}"),
                "params": nodes[0].params()}}),
                ),
        )
        .await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Firmware {
    /// SeaBIOS running QEMU's iPXE option ROM: DHCP straight to the boot script.
    Bios,
    /// OVMF's own PXE (no option ROM): DHCP, TFTP of `ipxe.efi`, then iPXE.
    UefiPxe,
    /// OVMF's HTTP boot (PXE switched off): DHCP, `ipxe.efi` over HTTP, then iPXE.
    UefiHttp,
}

struct Node {
    xname: &'static str,
    nid: i64,
    mac: &'static str,
    ip: Option<Ipv4Addr>,
    fw: Firmware,
    /// The inventory group whose BootConfiguration (OpenCHAMI v0.2's boot-service) the node
    /// boots; `None`: its own BSS boot parameters.
    group: Option<&'static str>,
}

impl Node {
    fn params(&self) -> String {
        format!(
            "console=ttyS0 panic=-1 {}.marker=1",
            self.group.unwrap_or(self.xname)
        )
    }
}

/// Boots `node` on tap `tap`; returns what its serial console printed.
async fn boot(net: &Net, tap: usize, node: &Node, dir: &Path) -> String {
    let mut c = net.cmd("timeout", false);
    c.args([
        "300",
        "qemu-system-x86_64",
        "-m",
        "384",
        "-nographic",
        "-no-reboot",
    ]);
    c.arg("-netdev")
        .arg(format!("tap,id=n0,ifname=tap{tap},script=no,downscript=no"));
    let nic = format!("virtio-net-pci,netdev=n0,mac={},bootindex=1", node.mac);
    if node.fw == Firmware::Bios {
        c.arg("-device").arg(nic);
    } else {
        let ovmf = tool("SKYPORT_OVMF_DIR");
        let vars = dir.join(format!("{}.vars.fd", node.xname));
        std::fs::copy(ovmf.join("OVMF_VARS_4M.fd"), &vars).unwrap();
        c.arg("-drive").arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            ovmf.join("OVMF_CODE_4M.fd").display()
        ));
        c.arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
        // No option ROM: the firmware's own network stack boots.
        c.arg("-device").arg(format!("{nic},romfile="));
        if node.fw == Firmware::UefiHttp {
            for knob in ["IPv4PXESupport", "IPv6PXESupport"] {
                c.arg("-fw_cfg")
                    .arg(format!("name=opt/org.tianocore/{knob},string=n"));
            }
        }
    }
    c.stdin(Stdio::null());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || c.output().expect("running qemu"))
        .await
        .unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "{} ({:?}) booted in {:.0} s",
        node.xname,
        node.fw,
        started.elapsed().as_secs_f64()
    );
    s
}

fn line<'a>(console: &'a str, tag: &str) -> Option<&'a str> {
    console.lines().find_map(|l| {
        l.trim_end_matches('\r')
            .split_once(tag)
            .map(|(_, c)| c.trim())
    })
}

/// The console shows the exact command line the agent's boot script gave, and the address.
fn check_boot(
    console: &str,
    script: &str,
    node: &Node,
    want_ip: impl Fn(Ipv4Addr) -> bool,
    log: &Path,
) {
    let want = script
        .lines()
        .find(|l| l.starts_with("kernel "))
        .and_then(|l| l.split_once(" || "))
        .and_then(|(k, _)| k.splitn(5, ' ').nth(4))
        .unwrap_or_else(|| panic!("no kernel line in {script}"));
    let got = line(console, "SKYPORT-CMDLINE: ").unwrap_or_else(|| {
        panic!(
            "{} never printed its command line; console:\n{console}\nagent log:\n{}",
            node.xname,
            tail(log)
        )
    });
    // iPXE hands an EFI kernel its image name first (`kernel --name kernel`), as argv[0].
    let got = if node.fw == Firmware::Bios {
        got
    } else {
        got.strip_prefix("kernel ").unwrap_or(got)
    };
    assert_eq!(got, want, "{}: console:\n{console}", node.xname);
    assert!(
        got.contains(&format!("xname={} nid={}", node.xname, node.nid))
            && got.contains(&node.params())
            && got.contains(&format!("BOOTIF=01-{}", node.mac.replace(':', "-"))),
        "{got}"
    );
    let addr = line(console, "SKYPORT-IP: ").unwrap_or("");
    let ip: Ipv4Addr = addr
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{}: no address ({addr:?}); console:\n{console}", node.xname));
    assert!(want_ip(ip), "{}: address {ip}", node.xname);
    assert_eq!(
        line(console, "SKYPORT-PHONED-HOME: "),
        Some(node.xname),
        "{}: no phone-home; console:\n{console}",
        node.xname
    );
}

/// The node's last boot as the flight recorder at `base` (an agent or the cloud) keeps it:
/// `want` must appear in this order (other events may come between).
async fn check_timeline(
    h: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    node: &Node,
    want: &[&str],
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut r = h.get(format!("{base}/edge/v1/boots/{}", node.xname));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let v: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
        let events: Vec<skyport_boot::flight::BootEvent> =
            serde_json::from_value(v["events"].clone()).unwrap_or_default();
        let boot = skyport_boot::flight::last_boot(&events);
        let stages: Vec<&str> = boot.iter().map(|e| e.stage.name()).collect();
        let mut it = stages.iter();
        if want.iter().all(|w| it.any(|s| s == w)) {
            let known = boot
                .iter()
                .any(|e| e.stage.name() == "boot_script" && e.detail == "known");
            assert!(known, "{}: {boot:?}", node.xname);
            // The figures BENCHMARKS.md quotes: each stage's time since the boot's first event.
            let start = boot.first().map(|e| e.at_ms).unwrap_or(0);
            let split: Vec<String> = boot
                .iter()
                .map(|e| {
                    format!(
                        "{} +{:.1}s",
                        e.stage.name(),
                        (e.at_ms - start) as f64 / 1000.0
                    )
                })
                .collect();
            eprintln!(
                "{} ({:?}) at {base}: {}",
                node.xname,
                node.fw,
                split.join(", ")
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} at {base}: stages {stages:?}, want {want:?} in order",
            node.xname
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_ready(h: &reqwest::Client, edge: &str, images: &[&str], log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready =
            matches!(h.get(format!("{edge}/readyz")).send().await, Ok(r) if r.status() == 200);
        if ready {
            let mut all = true;
            for id in images {
                let r = h.head(format!("{edge}/edge/v1/images/{id}")).send().await;
                all &= matches!(r, Ok(r) if r.status() == 200);
            }
            if all {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the agent at {edge} never became ready:\n{}",
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Cloud on the uplink, images uploaded, nodes registered and assigned to site `lab`.
async fn cloud(net: &Net, dir: &Path, nodes: &[Node]) -> (Server, Api, [String; 2], String) {
    let cloud = Server::start_at(
        SocketAddr::from((net.uplink, free_port().unwrap())),
        &dir.join("cloud"),
    )
    .unwrap();
    let api = Api {
        h: reqwest::Client::new(),
        root: format!("http://{}", cloud.addr),
        token: cloud.token("admin").unwrap(),
    };
    let kernel = std::fs::read(tool("SKYPORT_NETBOOT_KERNEL")).unwrap();
    let initrd = initramfs(
        &tool("SKYPORT_NETBOOT_BUSYBOX"),
        &tool("SKYPORT_NETBOOT_MODULES"),
    );
    let k = api.upload("debian-cloud", "kernel", kernel).await;
    let i = api.upload("cmdline-printer", "initrd", initrd).await;
    for n in nodes {
        api.node(n, &k, &i).await;
    }
    let mut groups: Vec<&str> = nodes.iter().filter_map(|n| n.group).collect();
    groups.dedup();
    for g in groups {
        let members: Vec<&Node> = nodes.iter().filter(|n| n.group == Some(g)).collect();
        api.group(g, &members, &k, &i).await;
    }
    let token = cloud.edge_token("lab").unwrap();
    api.send(
        api.h
            .put(format!("{}/edge/v1/sites/lab/xnames/x1000c0s0b0", api.root)),
    )
    .await;
    (cloud, api, [k, i], token)
}

async fn script(h: &reqwest::Client, edge: &str, mac: &str) -> String {
    h.get(format!("{edge}/boot/v1/bootscript?mac={mac}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn metric(h: &reqwest::Client, edge: &str, name: &str) -> u64 {
    let page = h
        .get(format!("{edge}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("skyport_edge_{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_dhcp_beside_the_sites_dhcp_server_boots_bios_and_uefi() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::create(1, 2, true);
    let nodes = [
        Node {
            xname: "x1000c0s0b0n0",
            nid: 1,
            mac: "52:54:00:77:01:00",
            ip: None,
            fw: Firmware::Bios,
            group: None,
        },
        Node {
            xname: "x1000c0s0b0n1",
            nid: 2,
            mac: "52:54:00:77:01:01",
            ip: None,
            fw: Firmware::UefiPxe,
            group: None,
        },
    ];
    let (_cloud, api, [k, i], token) = cloud(&net, dir.path(), &nodes).await;
    let _dnsmasq = site_dhcp(&net, dir.path());
    let data = dir.path().join("edge");
    let _agent = agent(
        &net,
        &data,
        &api.root,
        &token,
        &["--dhcp-mode", "proxy"],
        &[],
    );
    let edge = format!("http://{}:8080", net.agent_up);
    let log = data.with_extension("log");
    wait_ready(&api.h, &edge, &[&k, &i], &log).await;
    let scripts = [
        script(&api.h, &edge, nodes[0].mac).await,
        script(&api.h, &edge, nodes[1].mac).await,
    ];
    let (a, b) = tokio::join!(
        boot(&net, 0, &nodes[0], dir.path()),
        boot(&net, 1, &nodes[1], dir.path())
    );
    // Addresses come from the site's server; boot information from the agent alone.
    let from_site = |ip: Ipv4Addr| (100..=150).contains(&ip.octets()[3]);
    check_boot(&a, &scripts[0], &nodes[0], from_site, &log);
    check_boot(&b, &scripts[1], &nodes[1], from_site, &log);
    assert!(
        metric(&api.h, &edge, "tftp_transfers_total").await >= 1,
        "the UEFI VM loaded iPXE over TFTP"
    );
    // The flight recorder, at the edge and (reported) in the cloud. Beside another DHCP
    // server the agent sees the DISCOVER and answers with its OFFER; the lease is the site's.
    let bios = [
        "dhcp_discover",
        "dhcp_offer",
        "boot_script",
        "kernel",
        "initrd",
        "phone_home",
    ];
    let uefi = [
        "dhcp_discover",
        "dhcp_offer",
        "tftp",
        "boot_script",
        "kernel",
        "initrd",
        "phone_home",
    ];
    check_timeline(&api.h, &edge, None, &nodes[0], &bios).await;
    check_timeline(&api.h, &edge, None, &nodes[1], &uefi).await;
    check_timeline(&api.h, &api.root, Some(&api.token), &nodes[1], &uefi).await;
    assert!(metric(&api.h, &edge, "boot_time_to_phone_home_seconds_count").await >= 2);
    let status = skyport_e2e::skyport(
        &[
            "boot", "status", "--site", "lab", "-o", "json", "--url", &api.root,
        ],
        &api.token,
    );
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        (v["nodes"].as_u64(), v["phoned_home"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let table = skyport_e2e::skyport(
        &["boot", "timeline", nodes[1].xname, "--url", &edge],
        &api.token,
    );
    assert!(
        table.contains("tftp") && table.contains("phone_home"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authoritative_dhcp_boots_four_at_once_and_again_with_the_cloud_gone() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::create(2, 4, false);
    let node = |n: u8, fw| Node {
        xname: [
            "x1000c0s0b0n0",
            "x1000c0s0b0n1",
            "x1000c0s0b0n2",
            "x1000c0s0b0n3",
        ][n as usize],
        nid: i64::from(n) + 1,
        mac: [
            "52:54:00:77:02:00",
            "52:54:00:77:02:01",
            "52:54:00:77:02:02",
            "52:54:00:77:02:03",
        ][n as usize],
        ip: Some(Ipv4Addr::new(10, 77, 0, 10 + n)),
        fw,
        // Two of the four boot by inventory group, through one BootConfiguration (OpenCHAMI
        // v0.2's boot-service); one of them boots again below with the cloud gone, from the
        // agent's copy of the group, its members and the configuration.
        group: (n == 1 || n == 3).then_some("compute"),
    };
    let nodes = [
        node(0, Firmware::Bios),
        node(1, Firmware::UefiPxe),
        node(2, Firmware::UefiHttp),
        node(3, Firmware::Bios),
    ];
    let (cloud, api, [k, i], token) = cloud(&net, dir.path(), &nodes).await;
    let config = dir.path().join("edge.toml");
    // Reservations only: no range, so every address handed out is one the inventory holds.
    std::fs::write(
        &config,
        "dhcp_mode = \"authoritative\"\n\n[[dhcp_subnets]]\nnetwork = \"10.77.0.0/24\"\n\
         router = \"10.77.0.1\"\ndns = [\"10.77.0.1\"]\ndomain = \"lab.example\"\nlease_time = 600\n",
    )
    .unwrap();
    let data = dir.path().join("edge");
    let log = data.with_extension("log");
    let cfg = config.to_str().unwrap();
    let agent1 = agent(&net, &data, &api.root, &token, &["--config", cfg], &[]);
    let edge = format!("http://{}:8080", net.agent_up);
    wait_ready(&api.h, &edge, &[&k, &i], &log).await;
    let mut scripts = Vec::new();
    for n in &nodes {
        scripts.push(script(&api.h, &edge, n.mac).await);
    }
    let consoles = futures::future::join_all(
        nodes
            .iter()
            .enumerate()
            .map(|(t, n)| boot(&net, t, n, dir.path())),
    )
    .await;
    for ((n, c), s) in nodes.iter().zip(&consoles).zip(&scripts) {
        check_boot(c, s, n, |ip| Some(ip) == n.ip, &log);
        // Its reserved address is in the inventory: cloud-init knows it by it.
        assert_eq!(line(c, "SKYPORT-META-DATA: "), Some("ok"), "{}", n.xname);
    }
    let lease = ["dhcp_discover", "dhcp_offer", "dhcp_request", "dhcp_ack"];
    let tail = ["boot_script", "kernel", "initrd", "meta_data", "phone_home"];
    let bios: Vec<&str> = lease.iter().chain(&tail).copied().collect();
    let pxe: Vec<&str> = lease
        .iter()
        .chain(&["tftp"])
        .chain(&tail)
        .copied()
        .collect();
    let http: Vec<&str> = lease
        .iter()
        .chain(&["binary"])
        .chain(&tail)
        .copied()
        .collect();
    check_timeline(&api.h, &edge, None, &nodes[0], &bios).await;
    check_timeline(&api.h, &edge, None, &nodes[1], &pxe).await;
    check_timeline(&api.h, &edge, None, &nodes[2], &http).await;

    // The cloud goes away for good; the agent restarts with it gone, and a UEFI VM gets its
    // lease, its iPXE binary over TFTP, its script (chosen by its inventory group) and its
    // kernel from the agent alone.
    cloud.stop().unwrap();
    drop(agent1);
    let _agent2 = agent(&net, &data, &api.root, &token, &["--config", cfg], &[]);
    wait_ready(&api.h, &edge, &[&k, &i], &log).await;
    let before = metric(&api.h, &edge, "tftp_transfers_total").await;
    let c = boot(&net, 1, &nodes[1], dir.path()).await;
    check_boot(
        &c,
        &scripts[1],
        &nodes[1],
        |ip| Some(ip) == nodes[1].ip,
        &log,
    );
    assert!(metric(&api.h, &edge, "tftp_transfers_total").await > before);
}

/// libvirtd started inside the test's namespace (its QEMU opens the namespace's taps), and one
/// domain defined in it; on drop the domain is destroyed and undefined and the daemon killed.
struct Libvirt {
    _daemon: Proc,
    domain: String,
}

fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .args(["-c", "qemu:///system", "-q"])
        .args(args)
        .output()
        .expect("running virsh")
}

impl Libvirt {
    fn start(net: &Net, dir: &Path) -> Libvirt {
        // The daemon's socket is system-wide: one left by a killed run (its namespace gone)
        // would take ours.
        let _stale = Command::new("pkill").args(["-x", "libvirtd"]).output();
        std::thread::sleep(Duration::from_millis(300));
        let log = std::fs::File::create(dir.join("libvirtd.log")).unwrap();
        let daemon = Proc(
            net.cmd("libvirtd", false)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !virsh(&["list", "--all"]).status.success() {
            assert!(Instant::now() < deadline, "libvirtd did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        // Domains of earlier runs (persistent definitions outlive the daemon).
        let listed = virsh(&["list", "--all", "--name"]);
        for name in String::from_utf8_lossy(&listed.stdout).lines() {
            if name.starts_with("skyport-vm-") {
                let _gone = virsh(&["destroy", name]);
                let _undefined = virsh(&["undefine", name]);
            }
        }
        Libvirt {
            _daemon: daemon,
            domain: String::new(),
        }
    }

    /// Defines a BIOS VM with one virtio NIC on `tap` (network boot only: no disk) and its
    /// serial console in `console`; returns its UUID. It starts powered off.
    fn define(&mut self, name: &str, mac: &str, tap: &str, console: &Path) -> String {
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>384</memory>\
             <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <features><acpi/></features><on_poweroff>destroy</on_poweroff>\
             <on_reboot>restart</on_reboot><devices>\
             <emulator>/usr/bin/qemu-system-x86_64</emulator>\
             <interface type='ethernet'><mac address='{mac}'/>\
             <target dev='{tap}' managed='no'/><model type='virtio'/></interface>\
             <serial type='file'><source path='{}'/><target port='0'/></serial>\
             </devices></domain>",
            console.display()
        );
        let file = console.with_extension("xml");
        std::fs::write(&file, xml).unwrap();
        let out = virsh(&["define", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.domain = name.to_string();
        let uuid = virsh(&["domuuid", name]);
        String::from_utf8_lossy(&uuid.stdout).trim().to_string()
    }

    fn state(&self) -> String {
        let out = virsh(&["domstate", &self.domain]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        if !self.domain.is_empty() {
            let _gone = virsh(&["destroy", &self.domain]);
            let _undefined = virsh(&["undefine", &self.domain]);
        }
        // The daemon (a field) is killed after this, when the fields drop.
    }
}

/// sushy-tools' emulator in the namespace on 127.0.0.1:`port`, serving `uuid` only.
fn sushy(net: &Net, dir: &Path, uuid: &str, port: u16) -> Proc {
    let conf = dir.join("sushy.conf");
    std::fs::write(
        &conf,
        format!(
            "SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'\n\
             SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{uuid}']\n"
        ),
    )
    .unwrap();
    let bin = tool("SKYPORT_SUSHY_VENV").join("bin/sushy-emulator");
    let child = net
        .cmd(bin, false)
        .arg("--config")
        .arg(&conf)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sushy.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = net
            .cmd("bash", false)
            .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
            .output()
            .unwrap();
        if up.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sushy-emulator did not listen: {}",
            tail(&dir.join("sushy.log"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Proc(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_reset_through_a_redfish_bmc_network_boots_a_libvirt_vm() {
    const XNAME: &str = "x3000c0s5b0n0";
    const MAC: &str = "52:54:00:77:03:00";
    let dir = tempfile::tempdir().unwrap();
    let net = Net::create(3, 1, false);
    let mut lv = Libvirt::start(&net, dir.path());
    let console = dir.path().join("vm.console");
    let uuid = lv.define(
        &format!("skyport-vm-{}", std::process::id()),
        MAC,
        "tap0",
        &console,
    );
    assert_eq!(lv.state(), "shut off");
    let _bmc = sushy(&net, dir.path(), &uuid, 8000);

    let (cloud_server, api, [k, i], token) = cloud(&net, dir.path(), &[]).await;
    api.send(api.h.post(format!("{}/boot/v1/bootparameters", api.root)).json(
        &serde_json::json!({"hosts": [XNAME], "kernel": format!("image:{k}"),
            "initrd": format!("image:{i}"), "params": format!("console=ttyS0 panic=-1 {XNAME}.marker=1")}),
    ))
    .await;
    let site_map = dir.path().join("site.yaml");
    std::fs::write(&site_map, "127.0.0.1: x3000c0s5b0\n").unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "subnets = [\"127.0.0.1\"]\nports = [8000]\nscheme = \"http\"\nsite_map = \"{}\"\n\
             bmc_user = \"admin\"\ninterval = 3600\njobs_poll_interval = 0.5\n\
             site = \"lab\"\nconsole_listen = \"0.0.0.0:8081\"\n\
             dhcp_mode = \"authoritative\"\n\n[[dhcp_subnets]]\nnetwork = \"10.77.0.0/24\"\n\
             range = \"10.77.0.100-10.77.0.150\"\nrouter = \"10.77.0.1\"\n",
            site_map.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("edge");
    let log = data.with_extension("log");
    let _agent = agent(
        &net,
        &data,
        &api.root,
        &token,
        &["--config", config.to_str().unwrap()],
        // sushy-tools runs without authentication; the agent needs a password to send.
        &[("SKYPORT_EDGE_BMC_PASSWORD", "unused")],
    );
    let edge = format!("http://{}:8080", net.agent_up);
    wait_ready(&api.h, &edge, &[&k, &i], &log).await;

    // The agent discovered the BMC: the VM's NIC is the node's interface, in the cloud and in
    // the agent's copy (its boot script names the node).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (nid, script) = loop {
        let c = api
            .h
            .get(format!("{}/hsm/v2/State/Components/{XNAME}", api.root))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
        if c.status().is_success() {
            let c: serde_json::Value = c.json().await.unwrap();
            let s = script(&api.h, &edge, MAC).await;
            if s.contains(&format!("xname={XNAME}")) {
                break (c["NID"].as_i64().unwrap(), s);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the VM's BMC was not discovered and synced:\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // "Reimage", as an admin does it in the console (`skyport power reset --boot pxe` is the
    // same job; tests/tests/power.rs drives the command): sign in, open the node, reset it
    // into a network boot, confirm, and watch the job finish.
    let shots = skyport_testkit::repo_root().join("target/console-shots/netboot");
    let axe = axe_source().unwrap();
    let b = Browser::start(&shots).await.unwrap();
    let r = &api.root;
    b.goto(&format!("{r}/console/nodes/{XNAME}")).await.unwrap();
    b.wait_for("input#token", Duration::from_secs(10))
        .await
        .unwrap();
    b.type_into("input#token", &api.token).await.unwrap();
    b.click("form[action='/console/login'] button")
        .await
        .unwrap();
    b.wait_for("a.button[href$='op=reset-pxe']", Duration::from_secs(10))
        .await
        .unwrap();
    b.click("a.button[href$='op=reset-pxe']").await.unwrap();
    b.wait_for("button.danger", Duration::from_secs(10))
        .await
        .unwrap();
    b.click("button.danger").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = b
            .text(".job[data-state]")
            .await
            .unwrap()
            .unwrap_or_default();
        if state == "done" {
            break;
        }
        assert!(
            !["failed", "expired"].contains(&state.as_str()) && Instant::now() < deadline,
            "the console's reset job is {state:?}:\n{}\n{}",
            b.text("main").await.unwrap().unwrap_or_default(),
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.check_page(&axe, "job-done").await;
    let id = b
        .url()
        .await
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job: serde_json::Value = api
        .h
        .get(format!("{r}/power/v1/jobs/{id}"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "done", "{job:#}\n{}", tail(&log));
    assert_eq!(job["tasks"][0]["power"], "On", "{job:#}");
    assert_eq!(job["action"]["boot"], "pxe", "{job:#}");

    // The boot board, watched until the VM's cell says it phoned home: it passes through the
    // stages the agent reports on its way.
    b.goto(&format!("{r}/console/boots")).await.unwrap();
    let cell = format!(".cells a[data-node='{XNAME}']");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let stage = b
            .execute(&format!(
                "const e = document.querySelector(\"{cell}\"); return e ? e.dataset.stage : null;"
            ))
            .await
            .unwrap();
        if let Some(st) = stage.as_str()
            && seen.last().map(String::as_str) != Some(st)
        {
            seen.push(st.to_string());
        }
        if seen.last().map(String::as_str) == Some("phone_home") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the board never showed {XNAME} phoned home (saw {seen:?}); console:\n{}\nagent log:\n{}",
            std::fs::read_to_string(&console).unwrap_or_default(),
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("the cloud's board showed {XNAME} at: {}", seen.join(" → "));
    assert!(seen.len() >= 2, "the board jumped straight to {seen:?}");
    b.check_page(&axe, "board-vm").await;
    b.click(&cell).await.unwrap();
    b.wait_for("table.timeline", Duration::from_secs(10))
        .await
        .unwrap();
    let timeline = b.text("table.timeline").await.unwrap().unwrap();
    for want in ["lease", "boot script", "kernel", "phoned home"] {
        assert!(
            timeline.contains(want),
            "the node's timeline lacks {want}:\n{timeline}"
        );
    }
    b.check_page(&axe, "node-vm").await;

    // The VM really powered on, network-booted from the agent and printed its command line.
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        if text.contains("SKYPORT-PHONED-HOME: ") || lv.state() == "shut off" {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the VM did not boot; console:\n{text}\nagent log:\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The cloud goes away; the site's own console still shows its board, from the agent's
    // copy (read-only: no admin token configured).
    drop(cloud_server);
    let edge_console = format!("http://{}:8081", net.agent_up);
    b.goto(&format!("{edge_console}/console/boots"))
        .await
        .unwrap();
    b.wait_for(
        &format!("{cell}[data-stage='phone_home']"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let place = b.text(".place").await.unwrap().unwrap();
    assert_eq!(place, "edge site lab");
    assert!(
        b.text("main .note")
            .await
            .unwrap()
            .unwrap()
            .starts_with("Read-only")
    );
    b.check_page(&axe, "edge-board").await;
    b.click(&cell).await.unwrap();
    let timeline = b
        .wait_for("table.timeline", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(timeline.contains("phoned home"), "{timeline}");
    assert!(
        b.text("main")
            .await
            .unwrap()
            .unwrap()
            .contains("Power state and actions are the cloud's")
    );
    b.check_page(&axe, "edge-node").await;
    b.goto(&format!("{edge_console}/console/sites"))
        .await
        .unwrap();
    let sites = b.text("main table").await.unwrap().unwrap();
    assert!(sites.contains("lab"), "{sites}");
    b.check_page(&axe, "edge-sites").await;
    drop(b);
    let node = Node {
        xname: XNAME,
        nid,
        mac: MAC,
        ip: None,
        fw: Firmware::Bios,
        group: None,
    };
    check_boot(
        &text,
        &script,
        &node,
        |ip| (100..=150).contains(&ip.octets()[3]),
        &log,
    );
}
