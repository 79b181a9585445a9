//! Discovery against `sushy-emulator --fake` (OpenStack sushy-tools, installed by
//! `scripts/install-test-tools`): an emulator nobody here wrote, sparse and partly broken (no
//! manager NICs, 404/500 on advertised links), behind Basic auth over plain HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sushy(Child);

impl Drop for Sushy {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
    }
}

fn venv() -> PathBuf {
    let v = std::env::var_os("SKYPORT_SUSHY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/skyport-tools/venv-sushy-tools-2.2.0")
        });
    assert!(
        v.join("bin/sushy-emulator").exists(),
        "sushy-emulator not found in {}: run scripts/install-test-tools",
        v.display()
    );
    v
}

#[test]
fn sushy_emulator_fake_is_discovered_with_its_gaps_reported() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import bcrypt; print(bcrypt.hashpw(b'sushy-pw', bcrypt.gensalt()).decode())",
        ])
        .output()
        .unwrap();
    assert!(hash.status.success());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("sushy:{}", String::from_utf8_lossy(&hash.stdout)),
    )
    .unwrap();
    let conf = dir.path().join("sushy.conf");
    std::fs::write(
        &conf,
        format!("SUSHY_EMULATOR_AUTH_FILE = '{}'\n", htpasswd.display()),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _sushy = Sushy(
        Command::new(venv.join("bin/sushy-emulator"))
            .args([
                "--fake",
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--config",
            ])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(Instant::now() < deadline, "sushy-emulator did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(dir.path().join("site.yaml"), "127.0.0.1: x9000c1s0b0\n").unwrap();
    let run = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_skyport-edge"))
            .arg("--data")
            .arg(dir.path().join("edge"))
            .args([
                "discover",
                "127.0.0.1",
                "--scheme",
                "http",
                "--port",
                &port.to_string(),
            ])
            .arg("--site-map")
            .arg(dir.path().join("site.yaml"))
            .args(["-o", "json"])
            .env("SKYPORT_EDGE_BMC_USER", "sushy")
            .env("SKYPORT_EDGE_BMC_PASSWORD", password)
            .output()
            .unwrap()
    };
    let out = run("sushy-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &rows[0];
    assert_eq!(r["status"], "discovered", "{r:#}");
    assert_eq!(r["xname"], "x9000c1s0b0");
    assert!(r["systems"].as_u64().unwrap() >= 1, "{r:#}");
    // The fake driver's manager has no NICs: no BMC MAC, and the reason is recorded.
    assert!(r["mac"].is_null());
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("BMC MAC unknown"), "{warnings}");
    let sys = &r["inventory"]["systems"][0];
    assert!(sys["uuid"].is_string(), "{sys:#}");
    assert!(sys["power_state"].is_string(), "{sys:#}");
    // sushy names its NICs by MAC; they come through as the node's interfaces.
    let payload = &r["payload"];
    assert_eq!(payload["SchemaVersion"], 1);
    assert_eq!(payload["FQDN"], format!("127.0.0.1:{port}"));
    assert!(!payload.to_string().contains("sushy-pw"));

    let out = run("wrong");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "failed");
    assert!(
        rows[0]["reason"].as_str().unwrap().contains("401"),
        "{:#}",
        rows[0]
    );
}
