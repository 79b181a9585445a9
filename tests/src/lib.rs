//! Helpers for the end-to-end tests: build and start the real `skyport` binary on a free
//! loopback port with its own data directory, and stop it when the handle drops.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skyport_testkit::{free_port, repo_root};

pub mod webdriver;

/// Path of a workspace binary, built (debug) on first use.
pub fn workspace_bin(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(repo_root())
        .status()
        .with_context(|| format!("running cargo build -p {package}"))?;
    if !status.success() {
        bail!("cargo build -p {package} failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    Ok(target.join("debug").join(bin))
}

/// Path of the `skyport` binary, built (debug) on first use.
pub fn skyport_bin() -> anyhow::Result<PathBuf> {
    workspace_bin("skyport", "skyport")
}

/// Path of the `skyport-edge` binary, built (debug) on first use.
pub fn edge_bin() -> anyhow::Result<PathBuf> {
    workspace_bin("skyport-edge", "skyport-edge")
}

/// A running `skyport serve`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    data: PathBuf,
}

/// Runs `skyport` with `args` (and extra environment), returning its trimmed stdout, or an
/// error with its stderr.
fn skyport_output(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<String> {
    let what = args
        .iter()
        .take(2)
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(skyport_bin()?)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("running skyport {what}"))?;
    if !out.status.success() {
        bail!(
            "skyport {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A token from the local issuer of the server whose data directory is `data`
/// (`skyport token`), with `scope` (`read`, `write`, `admin`, `edge`, comma-separated).
pub fn token(data: &Path, scope: &str) -> anyhow::Result<String> {
    skyport_output(
        &[
            "token".as_ref(),
            "--scope".as_ref(),
            scope.as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
        &[],
    )
}

impl Server {
    pub fn start(data: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], port)), data)
    }

    /// Starts on a given address (a restart on the same port after a kill).
    pub fn start_at(addr: SocketAddr, data: &Path) -> anyhow::Result<Self> {
        let child = Command::new(skyport_bin()?)
            .args(["serve", "--listen", &addr.to_string(), "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting skyport serve")?;
        let mut s = Server {
            child,
            addr,
            data: data.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if let Some(st) = s.child.try_wait()? {
                bail!("skyport serve exited early: {st}");
            }
            if Instant::now() > deadline {
                bail!("skyport serve did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(s)
    }

    /// A token this server accepts.
    pub fn token(&self, scope: &str) -> anyhow::Result<String> {
        token(&self.data, scope)
    }

    /// An edge token for `site`, as a site admin gets one: the site is registered through the
    /// API (`skyport site add`), and a token is minted for its client (the local issuer's
    /// shortcut for the client-credentials exchange the agent would do).
    pub fn edge_token(&self, site: &str) -> anyhow::Result<String> {
        let admin = self.token("admin")?;
        let url = format!("http://{}", self.addr);
        let no_profile = self.data.join("no-cli-config.toml");
        let added = skyport_output(
            &["site", "add", site, "-o", "json", "--url", &url].map(std::ffi::OsStr::new),
            &[
                ("SKYPORT_TOKEN", admin.as_ref()),
                ("SKYPORT_CLI_CONFIG", no_profile.as_os_str()),
            ],
        )?;
        let v: serde_json::Value =
            serde_json::from_str(&added).context("skyport site add printed no JSON")?;
        let id = v["client_id"]
            .as_str()
            .context("skyport site add printed no client_id")?;
        skyport_output(
            &[
                "token".as_ref(),
                "--scope".as_ref(),
                "edge".as_ref(),
                "--client-id".as_ref(),
                id.as_ref(),
                "--data".as_ref(),
                self.data.as_os_str(),
            ],
            &[],
        )
    }

    pub fn base(&self) -> String {
        format!("http://{}/hsm/v2", self.addr)
    }

    /// Stops the server with SIGTERM-equivalent semantics is not needed by tests: kill and reap.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            let _reaped = self.child.wait();
        }
    }
}

/// Runs a bash script with `set -euo pipefail`, returning (success, stdout+stderr).
pub fn bash(script: &str) -> anyhow::Result<(bool, String)> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .output()
        .context("running bash")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// Runs the `skyport` CLI with `args` as an admin holding `token` (no CLI profile), returning
/// its stdout; panics with its stderr if it fails.
pub fn skyport(args: &[&str], token: &str) -> String {
    let no_profile = std::env::temp_dir().join("skyport-e2e-no-cli-config.toml");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    skyport_output(
        &args,
        &[
            ("SKYPORT_TOKEN", token.as_ref()),
            ("SKYPORT_CLI_CONFIG", no_profile.as_os_str()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}
