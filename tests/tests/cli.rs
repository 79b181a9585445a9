//! The `skyport` command driven as an administrator would, against a real `skyport serve`:
//! every subcommand, JSON and YAML output parsed back, exit codes, validation before sending,
//! and an upload that was interrupted before being started over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use skyport_e2e::{Server, skyport_bin};

struct Cli {
    config: PathBuf,
    url: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(skyport_bin().unwrap())
            .arg("--cli-config")
            .arg(&self.config)
            .args(args)
            .env_remove("SKYPORT_URL")
            .env_remove("SKYPORT_TOKEN")
            .env_remove("SKYPORT_PROFILE")
            .env("SKYPORT_URL", &self.url)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs, expects success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "skyport {args:?}: {:?}\n{}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Runs, expects exit `code`, returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "skyport {args:?}: {err}");
        err
    }
}

/// A `skyport serve` with its data in `dir`/server, and the CLI configured at `dir`/`config`
/// to talk to it; the server's data directory too (where `login --data` finds the token).
fn serve(dir: &Path, config: &str) -> (Server, Cli, PathBuf) {
    let data = dir.join("server");
    let server = Server::start(&data).unwrap();
    let cli = Cli {
        config: dir.join(config),
        url: format!("http://{}", server.addr),
    };
    (server, cli, data)
}

/// The words of a command line without quoting (none of its arguments holds a space).
fn args(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

/// The arguments uploading file `path` as version 6.1 of image `name` of `kind`.
fn upload<'a>(path: &'a str, name: &'a str, kind: &'a str) -> Vec<&'a str> {
    let mut a = vec!["image", "upload", path, "--name", name];
    a.extend(["--version", "6.1", "--kind", kind]);
    a
}

fn file(dir: &Path, name: &str, text: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn every_subcommand_against_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, cli, data) = serve(dir.path(), "cli/cli.toml");

    // No token yet: the server refuses (exit 3) and says why.
    let err = cli.fails(&["component", "list"], 3);
    assert!(err.contains("401"), "{err}");
    cli.ok(&["login", "--data", data.to_str().unwrap()]);
    let conf = std::fs::read_to_string(&cli.config).unwrap();
    assert!(conf.contains("[profiles.local]"), "{conf}");

    // Components.
    let c = cli.json(&args("component add x1000c0s0b0n0 --role Compute --nid 1"));
    assert_eq!(
        (c["ID"].as_str(), c["NID"].as_i64()),
        (Some("x1000c0s0b0n0"), Some(1))
    );
    cli.ok(&args("component add x1000c0s0b0n1 --nid 2 --role Service"));
    let list = cli.json(&["component", "list", "--type", "Node"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let table = cli.ok(&["component", "list", "--role", "Compute"]);
    assert!(
        table.starts_with("ID ") && table.contains("x1000c0s0b0n0") && !table.contains("n1"),
        "{table}"
    );
    let c = cli.json(&["component", "set", "x1000c0s0b0n1", "--state", "Standby"]);
    assert_eq!(c["State"], "Standby");
    cli.fails(&["component", "set", "x1000c0s0b0n1"], 1);
    let err = cli.fails(&["component", "get", "x1000c0s9b0n0"], 3);
    assert!(err.contains("HTTP 404"), "{err}");
    let err = cli.fails(&["component", "add", "node7"], 1);
    assert!(err.contains("node7"), "{err}");

    // Interfaces, groups, Redfish endpoints.
    let i = cli.json(&args(
        "iface add 52-54-00-00-00-01 --component x1000c0s0b0n0 --ip 10.1.0.1",
    ));
    assert_eq!(i["MACAddress"], "52:54:00:00:00:01");
    cli.ok(&args(
        "iface add 52:54:00:00:00:02 --component x1000c0s0b0n1",
    ));
    let y = cli.ok(&args("iface list --component x1000c0s0b0n0 -o yaml"));
    let y: serde_json::Value = serde_norway::from_str(&y).unwrap();
    assert_eq!(y[0]["IPAddresses"][0]["IPAddress"], "10.1.0.1");
    cli.fails(&["iface", "add", "52:54:00:00:00:03", "--ip", "ten"], 1);
    let g = cli.json(&["group", "add", "compute", "--member", "x1000c0s0b0n0"]);
    assert_eq!(g["members"]["ids"][0], "x1000c0s0b0n0");
    cli.ok(&["group", "add-member", "compute", "x1000c0s0b0n1"]);
    assert_eq!(
        cli.json(&["group", "get", "compute"])["members"]["ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    cli.ok(&["group", "remove-member", "compute", "x1000c0s0b0n1"]);
    assert_eq!(cli.json(&["group", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(
        cli.json(&["redfish-endpoint", "list"]),
        serde_json::json!([])
    );

    // Images: uploaded, recognised when uploaded again.
    let kernel: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let kpath = file(dir.path(), "vmlinuz", &kernel);
    let k = cli.json(&upload(&kpath, "vmlinuz", "kernel"));
    assert_eq!(k["state"], "ready");
    let again = cli.run(&upload(&kpath, "vmlinuz", "kernel"));
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already uploaded"));
    // Same id, other bytes: refused before anything is sent again.
    let other = file(dir.path(), "other", b"other bytes");
    let err = cli.fails(&upload(&other, "vmlinuz", "kernel"), 1);
    assert!(err.contains("other bytes"), "{err}");
    let ipath = file(dir.path(), "initrd", b"initrd bytes");
    cli.ok(&upload(&ipath, "initrd", "initrd"));
    assert_eq!(cli.json(&["image", "list"]).as_array().unwrap().len(), 2);

    // Boot parameters from flags and from an `ochami bss boot params` file; validated first.
    cli.ok(&[
        "bootparams",
        "add",
        "--host",
        "x1000c0s0b0n0",
        "--kernel",
        "image:vmlinuz-6.1-x86_64-kernel",
        "--initrd",
        "image:initrd-6.1-x86_64-initrd",
        "--params",
        "console=ttyS0 quiet",
    ]);
    let f = file(
        dir.path(),
        "bp.yaml",
        b"hosts:\n  - x1000c0s0b0n1\nkernel: https://example.com/vmlinuz\nparams: console=ttyS0\n",
    );
    cli.ok(&["bootparams", "add", "-f", &f]);
    let got = cli.json(&["bootparams", "get", "--host", "x1000c0s0b0n1"]);
    assert_eq!(got[0]["kernel"], "https://example.com/vmlinuz");
    cli.ok(&args(
        "bootparams update --host x1000c0s0b0n1 --params console=ttyS1",
    ));
    assert_eq!(
        cli.json(&["bootparams", "get", "--host", "x1000c0s0b0n1"])[0]["params"],
        "console=ttyS1"
    );
    let bad = file(
        dir.path(),
        "bad.yaml",
        b"hosts: [x1000c0s0b0n1]\nkernal: oops\n",
    );
    let err = cli.fails(&["bootparams", "add", "-f", &bad], 1);
    assert!(
        err.contains("bad.yaml") && err.contains("line 2") && err.contains("kernal"),
        "{err}"
    );
    let err = cli.fails(&args("bootparams add --host x1000c0s0b0 --kernel k"), 1);
    assert!(err.contains("not a Node"), "{err}");
    let err = cli.fails(
        &[
            "bootparams",
            "set",
            "--host",
            "x1000c0s0b0n0",
            "--kernel",
            "http://x/k\nshell",
        ],
        1,
    );
    assert!(!err.is_empty());
    let s = cli.ok(&["bootscript", "--mac", "52:54:00:00:00:01"]);
    assert!(
        s.starts_with("#!ipxe") && s.contains("xname=x1000c0s0b0n0") && s.contains("nid=1"),
        "{s}"
    );
    cli.ok(&["bootparams", "delete", "--host", "x1000c0s0b0n1"]);
    // BSS answers 404 for nodes without parameters.
    cli.fails(&["bootparams", "get", "--host", "x1000c0s0b0n1"], 3);

    // Boot configurations (OpenCHAMI v0.2's boot-service): every node of group `compute`
    // boots one image, in one command; applying again changes it rather than adding another.
    cli.ok(&["group", "add-member", "compute", "x1000c0s0b0n1"]);
    let apply = "bootconfig apply compute --group compute --kernel image:vmlinuz-6.1-x86_64-kernel --params";
    let c = cli.json(&[args(apply), vec!["console=ttyS0"]].concat());
    let uid = c[0]["metadata"]["uid"].as_str().unwrap().to_string();
    assert!(uid.starts_with("bootconfiguration-"), "{c}");
    let c = cli.json(&[args(apply), vec!["console=ttyS1 quiet"]].concat());
    assert_eq!(c[0]["metadata"]["uid"], uid.as_str());
    // x1000c0s0b0n1 has no boot parameters of its own and is in `compute`; x1000c0s0b0n0 keeps
    // its own entry.
    let s = cli.ok(&["bootscript", "--mac", "52:54:00:00:00:02"]);
    assert!(s.contains("console=ttyS1 quiet xname=x1000c0s0b0n1"), "{s}");
    let why = cli.ok(&["bootconfig", "explain", "x1000c0s0b0n1"]);
    assert!(
        why.contains("boots   compute (") && why.contains("by the best score (25)"),
        "{why}"
    );
    let why = cli.ok(&["bootconfig", "explain", "52:54:00:00:00:01"]);
    assert!(why.contains("by its own BSS entry"), "{why}");
    let f = file(
        dir.path(),
        "configs.yaml",
        b"- name: slot0\n  hosts: [\"x1000c0s0b*\"]\n  kernel: https://example.com/slot0\n\
          - apiVersion: boot.openchami.io/v1\n  metadata: {name: by-mac}\n  spec: {macs: [\"52:54:00:00:00:02\"], kernel: https://example.com/mac}\n",
    );
    let applied = cli.json(&["bootconfig", "apply", "-f", &f]);
    assert_eq!(applied.as_array().unwrap().len(), 2);
    let why = cli.json(&["bootconfig", "explain", "x1000c0s0b0n1"]);
    assert_eq!(why["chosen"]["name"], "by-mac", "{why}");
    let scores: Vec<(&str, u64)> = why["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["score"].as_u64().unwrap()))
        .collect();
    assert_eq!(scores, [("by-mac", 100), ("slot0", 42), ("compute", 25)]);
    let table = cli.ok(&["bootconfig", "list"]);
    assert!(
        table.starts_with("NAME ")
            && table.contains("bss-host-x1000c0s0b0n0")
            && table.contains("slot0"),
        "{table}"
    );
    assert_eq!(
        cli.json(&["bootconfig", "show", "compute"])["spec"]["groups"],
        serde_json::json!(["compute"])
    );
    let bad = file(dir.path(), "badcfg.yaml", b"- name: x\n  kernal: oops\n");
    let err = cli.fails(&["bootconfig", "apply", "-f", &bad], 1);
    assert!(
        err.contains("badcfg.yaml") && err.contains("kernal"),
        "{err}"
    );
    let err = cli.fails(&args("bootconfig apply bad --host * --kernel vmlinuz"), 1);
    assert!(err.contains("invalid host XName format: *"), "{err}");
    cli.ok(&["bootconfig", "delete", "compute", "slot0", "by-mac"]);
    let left = cli.json(&["bootconfig", "list"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");

    // cloud-init.
    let d = file(
        dir.path(),
        "defaults.yaml",
        b"cluster-name: demo\nbase-url: http://10.1.0.254:27779/cloud-init\n",
    );
    cli.ok(&["cloud-init", "defaults", "set", "-f", &d]);
    assert_eq!(
        cli.json(&["cloud-init", "defaults", "get"])["cluster-name"],
        "demo"
    );
    let gf = file(
        dir.path(),
        "g.yaml",
        b"description: compute nodes\nmeta-data:\n  role: compute\n",
    );
    cli.ok(&["cloud-init", "group", "set", "compute", "-f", &gf]);
    assert!(
        cli.ok(&["cloud-init", "group", "list"])
            .contains("compute nodes")
    );
    assert!(
        cli.ok(&["cloud-init", "meta-data", "x1000c0s0b0n0"])
            .contains("x1000c0s0b0n0")
    );

    assert_eq!(cli.json(&["edge", "candidates"]), serde_json::json!([]));
    assert_eq!(cli.json(&["edge", "status"]), serde_json::json!([]));

    // Sites: the secret is printed once, never listed; rotation revokes the old client.
    let added = cli.json(&["site", "add", "east", "--description", "building 3"]);
    let secret = added["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40, "{added}");
    assert!(
        added["token_url"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/token")
    );
    assert!(cli.fails(&["site", "add", "east"], 3).contains("409"));
    assert!(cli.fails(&["site", "add", "East Wing"], 3).contains("400"));
    let assigned = cli.json(&["site", "assign", "east", "x1000c0", "x1001c0"]);
    assert_eq!(assigned[1]["xname"], "x1001c0");
    let list = cli.json(&["site", "list"]);
    assert_eq!(
        (&list[0]["name"], &list[0]["assigned"]),
        (&serde_json::json!("east"), &serde_json::json!(2))
    );
    assert!(!cli.ok(&["site", "list", "-o", "json"]).contains(&secret));
    let rot = cli.json(&["site", "rotate", "east"]);
    assert_eq!(rot["revoked"], serde_json::json!([added["client_id"]]));
    cli.ok(&["site", "unassign", "east", "x1001c0"]);
    assert_eq!(cli.json(&["site", "show", "east"])["assigned"], 1);
    assert!(cli.fails(&["site", "show", "west"], 3).contains("404"));
    let env = cli.ok(&["site", "add", "west", "--env"]);
    assert!(
        env.contains("export SKYPORT_EDGE_CLIENT_SECRET='") && env.contains("/oauth2/token'"),
        "{env}"
    );
    cli.ok(&["site", "delete", "east"]);
    cli.ok(&["site", "delete", "west"]);
    assert_eq!(cli.json(&["site", "list"]), serde_json::json!([]));
    assert!(cli.ok(&["completions", "bash"]).contains("skyport"));

    // Deletes.
    cli.ok(&["iface", "delete", "52:54:00:00:00:02"]);
    cli.ok(&["group", "delete", "compute"]);
    cli.ok(&["image", "delete", "initrd-6.1-x86_64-initrd"]);
    cli.fails(&["image", "get", "initrd-6.1-x86_64-initrd"], 3);
    cli.ok(&["component", "delete", "x1000c0s0b0n1"]);

    // Unreachable: exit 4, and the URL tried is in the message.
    let down = Cli {
        config: cli.config.clone(),
        url: "http://127.0.0.1:9".into(),
    };
    let err = down.fails(&["component", "list"], 4);
    assert!(
        err.contains("http://127.0.0.1:9/hsm/v2/State/Components"),
        "{err}"
    );
}

#[test]
fn an_interrupted_upload_is_started_over_and_never_left_half_registered() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli, data) = serve(dir.path(), "cli.toml");
    cli.ok(&["login", "--data", data.to_str().unwrap()]);
    let bytes = vec![7u8; 2_000_000];
    let path = file(dir.path(), "rootfs", &bytes);
    // What an upload killed after registering leaves: a pending image with no bytes.
    let token = server.token("admin").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = reqwest::Client::new();
        let sha = {
            let out = Command::new("sha256sum").arg(&path).output().unwrap();
            String::from_utf8_lossy(&out.stdout)[..64].to_string()
        };
        let r = h
            .post(format!("http://{}/images/v1/images", server.addr))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({"name": "rootfs", "version": "1", "arch": "x86_64",
                "kind": "rootfs", "size": bytes.len(), "sha256": sha}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    assert_eq!(
        cli.json(&["image", "get", "rootfs-1-x86_64-rootfs"])["state"],
        "pending"
    );
    let out = cli.run(&[
        "image",
        "upload",
        &path,
        "--name",
        "rootfs",
        "--version",
        "1",
        "--kind",
        "rootfs",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting it over"));
    assert_eq!(
        cli.json(&["image", "get", "rootfs-1-x86_64-rootfs"])["state"],
        "ready"
    );

    // An upload that fails midway (the file shrinks under it) removes its registration.
    let big = file(dir.path(), "big", &vec![1u8; 3_000_000]);
    let shrinking = std::thread::spawn({
        let big = big.clone();
        move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            std::fs::write(&big, b"short").unwrap();
        }
    });
    let o = cli.run(&[
        "image",
        "upload",
        &big,
        "--name",
        "big",
        "--version",
        "1",
        "--kind",
        "rootfs",
    ]);
    shrinking.join().unwrap();
    if !o.status.success() {
        cli.fails(&["image", "get", "big-1-x86_64-rootfs"], 3);
    } else {
        // The upload won the race: then the bytes must be complete and verified.
        assert_eq!(
            cli.json(&["image", "get", "big-1-x86_64-rootfs"])["state"],
            "ready"
        );
    }
}

/// A stand-in for the stack's Cognito domain: its token endpoint checks the PKCE verifier
/// against the challenge the CLI sent, and answers with a token the local server accepts.
struct FakeIdp {
    challenge: std::sync::Mutex<String>,
    token: String,
}

async fn fake_token(
    axum::extract::State(idp): axum::extract::State<std::sync::Arc<FakeIdp>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use base64::Engine;
    use sha2::Digest;
    let f: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let want = idp.challenge.lock().unwrap().clone();
    let got = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    if f.get("grant_type").map(String::as_str) != Some("authorization_code")
        || f.get("code").map(String::as_str) != Some("the-code")
        || f.get("client_id").map(String::as_str) != Some("admin-client")
        || got != want
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    axum::Json(
        serde_json::json!({"access_token": idp.token, "token_type": "Bearer", "expires_in": 3600}),
    )
    .into_response()
}

#[test]
fn login_through_an_authorization_server_with_pkce() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server")).unwrap();
    let idp = std::sync::Arc::new(FakeIdp {
        challenge: std::sync::Mutex::new(String::new()),
        token: server.token("admin").unwrap(),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp_addr = rt.block_on(async {
        let app = axum::Router::new()
            .route("/oauth2/token", axum::routing::post(fake_token))
            .with_state(idp.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        a
    });
    let conf = dir.path().join("cli.toml");
    let login = |state_override: Option<&str>| {
        let cb = skyport_testkit::free_port().unwrap();
        let mut child = Command::new(skyport_bin().unwrap())
            .arg("--cli-config")
            .arg(&conf)
            .args([
                "--profile",
                "cloud",
                "--url",
                &format!("http://{}", server.addr),
                "login",
            ])
            .args([
                "--auth-url",
                &format!("http://{idp_addr}"),
                "--client-id",
                "admin-client",
            ])
            .args(["--redirect-uri", &format!("http://127.0.0.1:{cb}/callback")])
            .env_remove("SKYPORT_URL")
            .env_remove("SKYPORT_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut url = String::new();
        while !url.contains("/oauth2/authorize?") {
            url.clear();
            assert!(
                err.read_line(&mut url).unwrap() > 0,
                "no authorize URL printed"
            );
        }
        let url = url.trim();
        let q: std::collections::HashMap<String, String> =
            form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["client_id"], "admin-client");
        *idp.challenge.lock().unwrap() = q["code_challenge"].clone();
        // The browser, sent back by the authorization server.
        let state = state_override.unwrap_or(&q["state"]).to_string();
        let redirect = format!("{}?code=the-code&state={state}", q["redirect_uri"]);
        let page = rt.block_on(async { reqwest::get(&redirect).await.unwrap().status() });
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        (status, page, rest)
    };
    // A redirect that is not this sign-in's (a forged state) is refused; nothing is saved.
    let (status, page, rest) = login(Some("forged"));
    assert_eq!((status.code(), page.as_u16()), (Some(1), 400), "{rest}");
    assert!(!conf.exists() || !std::fs::read_to_string(&conf).unwrap().contains("cloud"));
    let (status, page, rest) = login(None);
    assert!(status.success(), "{rest}");
    assert_eq!(page.as_u16(), 200);
    let cli = Cli {
        config: conf.clone(),
        url: format!("http://{}", server.addr),
    };
    cli.ok(&["--profile", "cloud", "component", "list"]);
}
