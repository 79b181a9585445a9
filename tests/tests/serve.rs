//! `skyport serve` as an operator runs it: data survives a restart, bad configuration is a
//! clear error naming the file and key, and nothing listens on anything but what was asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use skyport_e2e::{Server, bash, skyport_bin};

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).unwrap();
    let token = s.token("write").unwrap();
    let (ok, out) = bash(&format!(
        "curl -fsS -X POST {}/State/Components -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"Components\":[{{\"ID\":\"x5c0s0b0n0\",\"State\":\"Ready\"}}]}}'",
        s.base()
    ))
    .unwrap();
    assert!(ok, "{out}");
    s.stop().unwrap();
    // The signing key is kept in the data directory, so tokens outlive a restart too.
    let s = Server::start(dir.path()).unwrap();
    let (ok, out) = bash(&format!(
        "curl -fsS -H 'Authorization: Bearer {token}' {}/State/Components/x5c0s0b0n0",
        s.base()
    ))
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("\"State\":\"Ready\""), "{out}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\ndatadir = \"/tmp\"\n").unwrap();
    let out = Command::new(skyport_bin().unwrap())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.toml") && err.contains("datadir"),
        "{err}"
    );

    let out = Command::new(skyport_bin().unwrap())
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));

    // An unusable data directory names the path.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(skyport_bin().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a-file/sub"));
}

/// One raw request on its own connection; the whole answer as text.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn every_refusal_is_problem_json() {
    // Found by hostile testing: a path that is not UTF-8 answered text/plain, and 414 and 431
    // had empty bodies.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).unwrap();
    let token = s.token("read").unwrap();
    let cases = [
        (
            format!(
                "GET /hsm/v2/State/Components/x%FF%FE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            ),
            "400",
        ),
        (
            format!(
                "GET /hsm/v2/State/Components?id={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "x".repeat(9000)
            ),
            "414",
        ),
        (
            format!(
                "GET /hsm/v2/service/ready HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
                (0..150)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
            "431",
        ),
    ];
    for (req, status) in cases {
        let r = raw(s.addr, req.as_bytes());
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{r}"
        );
        let body = r.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let p: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["status"].to_string(), status, "{r}");
    }
    s.stop().unwrap();
}
