//! The local Lambda loop as the README documents it: `cargo lambda watch` serving the real
//! function binaries against DynamoDB Local and Garage, with token verification on (keys from
//! the local issuer's JWKS file). Every function is called through it, and the inventory also
//! through `cargo lambda invoke` with an API Gateway v2 event; the watcher is stopped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use skyport_auth::LocalIssuer;
use skyport_testkit::{DynamoLocal, Garage, free_port, repo_root};

struct Watch(Child);

/// Every descendant of `pid`, children before grandchildren, read from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces.
            if let Ok(stat) = std::fs::read_to_string(e.path().join("stat"))
                && let Some((_, rest)) = stat.rsplit_once(')')
                && let Some(ppid) = rest.split_whitespace().nth(1)
                && let Ok(ppid) = ppid.parse::<u32>()
            {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(x) = frontier.pop() {
        for (p, pp) in &parent_of {
            if *pp == x && !out.contains(p) {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SIGKILL, process by process: the watcher and the functions it started (and only
        // those). No signal handler of the watcher runs, and no process group is signalled.
        let mut victims = descendants(self.0.id());
        victims.reverse();
        if self.0.kill().is_ok() {
            let _reaped = self.0.wait();
        }
        for p in victims {
            // Gone already (it exited with its parent) is fine.
            let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
        }
    }
}

fn lambda_bin_dir() -> PathBuf {
    let v = std::env::var_os("SKYPORT_LAMBDA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/skyport-tools/venv-cargo-lambda-1.9.2-zig0.17.1")
        });
    let bin = v.join("bin");
    assert!(
        bin.join("cargo-lambda").exists(),
        "cargo-lambda not found in {}: run scripts/install-test-tools",
        bin.display()
    );
    bin
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "120",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn cargo_lambda_watch_serves_every_function_with_auth_on() {
    let bin = lambda_bin_dir();
    let ddb = DynamoLocal::start().unwrap();
    let garage = Garage::start("skyport-watch-images").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::to_string(issuer.jwks()).unwrap()).unwrap();
    let token = |scope: &str| {
        issuer
            .mint("watch-test", &[scope.to_string()], Duration::from_secs(600))
            .unwrap()
    };

    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}/lambda-url");
    let envs = [
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", garage.key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", garage.secret.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", ddb.endpoint()),
        ("AWS_ENDPOINT_URL_S3", garage.endpoint.clone()),
        ("SKYPORT_S3_PATH_STYLE", "1".into()),
        ("SKYPORT_CREATE_TABLE", "1".into()),
        ("SKYPORT_TABLE", "skyport-watch".into()),
        ("SKYPORT_LOG_FORMAT", "text".into()),
        (
            "SKYPORT_AUTH_ISSUER",
            skyport_auth::local::LOCAL_ISSUER.into(),
        ),
        (
            "SKYPORT_AUTH_AUDIENCE",
            skyport_auth::local::LOCAL_AUDIENCE.into(),
        ),
        ("SKYPORT_AUTH_JWKS_URL", jwks.display().to_string()),
        ("SKYPORT_PUBLIC_URL", format!("{base}/boot")),
        (
            "SKYPORT_CLOUD_INIT_URL",
            format!("{base}/metadata/cloud-init"),
        ),
        ("SKYPORT_IMAGE_BUCKET", garage.bucket.clone()),
    ];
    // cargo-lambda (and the zig it builds with) first on the PATH.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("cargo");
    cmd.args([
        "lambda",
        "watch",
        "-A",
        "127.0.0.1",
        "-P",
        &port.to_string(),
    ])
    .current_dir(repo_root())
    .env("PATH", &path)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in &envs {
        cmd.args(["--env-var", &format!("{k}={v}")]);
    }
    let watch = Watch(cmd.spawn().unwrap());

    // The first request builds and starts the function; allow for a cold debug build.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (s, _) = curl(&[&format!("{base}/inventory/hsm/v2/service/liveness")]);
        if s == 204 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch never served the inventory"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    let auth = |scope: &str| format!("Authorization: Bearer {}", token(scope));
    // A GET of `path` under the function URLs with one extra header line.
    let get = |path: &str, header: &str| curl(&[&format!("{base}{path}"), "-H", header]);
    // A JSON POST of `body` to `path`, with `scope`'s token if any.
    let post = |path: &str, scope: Option<&str>, body: &str| {
        let url = format!("{base}{path}");
        let mut args = vec!["-X", "POST", &url, "-H", "content-type: application/json"];
        let auth = scope.map(&auth);
        if let Some(a) = &auth {
            args.extend(["-H", a]);
        }
        args.extend(["-d", body]);
        curl(&args)
    };
    // Inventory: anonymous write refused, authorised write and read work.
    let body = r#"{"Components":[{"ID":"x1000c0s0b0n0","State":"Ready","NID":1}]}"#;
    let (s, b) = post("/inventory/hsm/v2/State/Components", None, body);
    assert_eq!(s, 401, "{b}");
    let (s, b) = post("/inventory/hsm/v2/State/Components", Some("write"), body);
    assert_eq!(s, 204, "{b}");
    let node = "/inventory/hsm/v2/State/Components/x1000c0s0b0n0";
    let (s, b) = get(node, &auth("read"));
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("\"NID\":1"), "{b}");

    // Boot: the node's script is anonymous and knows the node from DynamoDB.
    let params = r#"{"hosts":["x1000c0s0b0n0"],"kernel":"http://10.0.0.1/vmlinuz","params":"console=ttyS0"}"#;
    let (s, b) = post("/boot/boot/v1/bootparameters", Some("write"), params);
    assert!(s == 200 || s == 201, "{s} {b}");
    let (s, b) = curl(&[&format!(
        "{base}/boot/boot/v1/bootscript?name=x1000c0s0b0n0"
    )]);
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains(
            "kernel --name kernel http://10.0.0.1/vmlinuz console=ttyS0 xname=x1000c0s0b0n0 nid=1"
        ),
        "{b}"
    );

    // cloud-init: admin routes need admin; a node's own data is anonymous (unknown IP: 422).
    let defaults = "/metadata/cloud-init/admin/cluster-defaults";
    let (s, b) = get(defaults, &auth("read"));
    assert_eq!(s, 403, "{b}");
    let (s, b) = get(defaults, &auth("admin"));
    assert_eq!(s, 200, "{b}");
    let (s, b) = get(
        "/metadata/cloud-init/meta-data",
        "X-Forwarded-For: 10.9.9.9",
    );
    assert_eq!(s, 422, "{b}");

    // Images: registering one returns a presigned Garage URL.
    let (s, b) = get("/images/images/v1/images", &auth("read"));
    assert_eq!(s, 200, "{b}");
    let image = r#"{"name":"demo","version":"1","arch":"x86_64","kind":"kernel","size":4,"sha256":"88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"}"#;
    let (s, b) = post("/images/images/v1/images", Some("write"), image);
    assert_eq!(s, 201, "{b}");
    assert!(b.contains(&garage.endpoint), "{b}");

    // The same function through `cargo lambda invoke` with an API Gateway v2 event.
    let event = repo_root().join("functions/inventory/tests/events/get-components.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(event).unwrap()).unwrap();
    v["headers"]["authorization"] = format!("Bearer {}", token("read")).into();
    let event = dir.path().join("event.json");
    std::fs::write(&event, v.to_string()).unwrap();
    let out = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--data-file",
        ])
        .arg(&event)
        .arg("inventory")
        .current_dir(repo_root())
        .env("PATH", &path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert!(
        resp["body"].as_str().unwrap().contains("x1000c0s0b0n0"),
        "{resp}"
    );
    drop(watch);
}
