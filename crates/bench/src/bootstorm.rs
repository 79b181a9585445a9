//! Boot storm: the edge agent answering `bootscript` for 10,000 distinct MACs, and image
//! downloads in parallel, measured with `wrk` against the agent and against nginx serving the
//! very same script bodies and image files as static files, on the same machine in the same
//! run. Targets: scripts at ≥ 0.8× nginx's requests/s with p99 < 10 ms; images at ≥ 0.9× nginx's
//! throughput.
//!
//! The agent speaks for a registered site (its own token; the nodes' cabinets assigned to it)
//! and keeps syncing and reporting at the default interval while the storm runs, as the daemon
//! does: each storm spans several intervals (`--seconds`, 30 by default), and what the polls
//! did meanwhile is printed (an unchanged site's polls are 304s and re-apply nothing).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use skyport_edge::internals::CloudClient;
use skyport_edge::internals::ImageCache;
use skyport_edge::internals::Metrics;
use skyport_edge::internals::Replica;
use skyport_edge::internals::Site;
use skyport_edge::internals::TokenSource;
use skyport_edge::internals::{Polled, Syncer, report_once};
use skyport_store::Store;

/// The agent's default sync interval (`skyport-edge --sync-interval`).
const SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// What the agent's sync loop did during the storm.
#[derive(Default)]
struct Polls {
    unchanged: std::sync::atomic::AtomicU64,
    applied: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    reported: std::sync::atomic::AtomicU64,
}

impl Polls {
    fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

pub struct Params {
    pub nodes: usize,
    pub connections: u32,
    pub seconds: u32,
    pub image_mb: usize,
}

/// What one `wrk` run printed that we use.
#[derive(Debug, Clone, Copy)]
struct Wrk {
    rps: f64,
    p99_ms: f64,
    bytes_per_s: f64,
}

fn unit_ms(v: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * mult)
}

fn unit_bytes(v: &str) -> Option<f64> {
    for (suffix, mult) in [
        ("GB", 1u64 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
        ("B", 1),
    ] {
        if let Some(n) = v.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|x| x * mult as f64);
        }
    }
    None
}

fn parse_wrk(out: &str) -> anyhow::Result<Wrk> {
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{out}"))?;
    let p99_ms = field("99%")
        .and_then(|v| unit_ms(&v))
        .with_context(|| format!("no 99% latency in wrk output:\n{out}"))?;
    let bytes_per_s = field("Transfer/sec:")
        .and_then(|v| unit_bytes(&v))
        .with_context(|| format!("no Transfer/sec in wrk output:\n{out}"))?;
    if out.contains("Non-2xx or 3xx responses") {
        bail!("wrk saw error responses:\n{out}");
    }
    Ok(Wrk {
        rps,
        p99_ms,
        bytes_per_s,
    })
}

fn wrk(url: &str, script: Option<&Path>, connections: u32, seconds: u32) -> anyhow::Result<Wrk> {
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    let out = c
        .arg(url)
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text)
}

/// A `wrk` script cycling through the nodes' MACs (as the bench seeds them).
fn lua(nodes: usize) -> String {
    format!(
        r#"local n = {nodes}
local i = 0
request = function()
  i = (i + 1) % n
  local b = math.floor(i / 4)
  local mac = string.format("02:%02x:%02x:%02x:00:%02x", math.floor(b / 65536) % 256, math.floor(b / 256) % 256, b % 256, i % 4 + 1)
  return wrk.format(nil, "/boot/v1/bootscript?mac=" .. mac)
end
"#
    )
}

struct Nginx {
    child: Child,
    conf: std::path::PathBuf,
    prefix: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `-s stop` makes the master stop its workers too; killing only the master would leave
        // them running.
        let stopped = Command::new("nginx")
            .arg("-c")
            .arg(&self.conf)
            .arg("-p")
            .arg(&self.prefix)
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.child.kill().is_ok() {
            let _reaped = self.child.wait();
        }
    }
}

fn nginx(dir: &Path, port: u16) -> anyhow::Result<Nginx> {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            r#"worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {d}/tmp-body;
  proxy_temp_path {d}/tmp-proxy;
  fastcgi_temp_path {d}/tmp-fastcgi;
  uwsgi_temp_path {d}/tmp-uwsgi;
  scgi_temp_path {d}/tmp-scgi;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location = /boot/v1/bootscript {{
      default_type "text/plain; charset=UTF-8";
      try_files /scripts/$arg_mac =404;
    }}
    location /edge/v1/images/ {{ default_type application/octet-stream; }}
  }}
}}
"#
        ),
    )?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (Debian package `nginx` or `nginx-light`)")?;
    let n = Nginx {
        child,
        conf,
        prefix: dir.to_path_buf(),
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        if Instant::now() > deadline {
            bail!("nginx did not listen on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(n)
}

async fn upload(
    h: &reqwest::Client,
    base: &str,
    name: &str,
    kind: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<String> {
    use sha2::Digest;
    let sha = skyport_images::hex(&sha2::Sha256::digest(&bytes));
    let r: serde_json::Value = h
        .post(format!("{base}/images/v1/images"))
        .json(
            &json!({"name": name, "version": "1", "arch": "x86_64", "kind": kind,
            "size": bytes.len(), "sha256": sha}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = r["image"]["id"]
        .as_str()
        .context("no image id")?
        .to_string();
    let url = r["upload"]["url"].as_str().context("no upload URL")?;
    h.put(url).body(bytes).send().await?.error_for_status()?;
    h.post(format!("{base}/images/v1/images/{id}/complete"))
        .send()
        .await?
        .error_for_status()?;
    Ok(id)
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    let cpus = crate::cpus();
    println!(
        "skyport-bench bootstorm: {} nodes, wrk -t2 -c{} -d{}s, {} MiB image, {cpus} CPUs",
        p.nodes, p.connections, p.seconds, p.image_mb
    );
    let dir = tempfile::tempdir()?;
    // The cloud: the local server's routers on SQLite, with the change log.
    let store: Arc<dyn Store> = skyport_sync::ChangeLog::local(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("cloud.db"))?,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let cloud = format!("http://{}", listener.local_addr()?);
    let blobs = Arc::new(skyport_images::FsBlobs::open(
        &dir.path().join("cloud"),
        &cloud,
    )?);
    skyport_sync::changes::backfill(store.as_ref()).await?;
    // Auth on, as in production: an admin seeds, the agent has its site's own token.
    let issuer = skyport_auth::LocalIssuer::load_or_create(&dir.path().join("cloud"))?;
    let jwks = skyport_auth::Jwks::new(
        skyport_auth::KeySource::Static(issuer.jwks().clone()),
        skyport_auth::local::LOCAL_ISSUER,
        vec![skyport_auth::local::LOCAL_AUDIENCE.to_string()],
    )
    .with_sites(Arc::new(skyport_sites::StoreSites(store.clone())));
    let api = skyport::api(
        store,
        skyport_ipxe::Settings::default(),
        blobs,
        format!("{cloud}/cloud-init"),
        Arc::new(skyport_sites::LocalCredentials::new(None)),
        Some(Arc::new(jwks)),
        None,
    );
    let cloud_task = tokio::spawn(async move { axum::serve(listener, api).await });
    let admin = issuer.mint("bench", &["admin".to_string()], Duration::from_secs(86_400))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {admin}").parse()?,
    );
    let h = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let t = Instant::now();
    let site: serde_json::Value = h
        .post(format!("{cloud}/edge/v1/sites"))
        .json(&json!({"name": "storm"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let client_id = site["client_id"]
        .as_str()
        .context("no client_id")?
        .to_string();
    // The BMCs `seed_http` makes are x1000c*s*b0, x1001c*s*b0, ... (512 to a cabinet).
    for cab in 0..=(p.nodes / 4 / 512) {
        h.put(format!(
            "{cloud}/edge/v1/sites/storm/xnames/x{}",
            1000 + cab
        ))
        .send()
        .await?
        .error_for_status()?;
    }
    crate::seed_http(&h, &format!("{cloud}/hsm/v2"), p.nodes).await?;
    let image: Vec<u8> = (0..p.image_mb << 20).map(|i| (i * 7 % 251) as u8).collect();
    let kernel = upload(&h, &cloud, "vmlinuz", "kernel", image.clone()).await?;
    let initrd = upload(&h, &cloud, "initrd", "initrd", b"initrd".repeat(1000)).await?;
    let mut params = crate::boot_params_body(p.nodes);
    params["kernel"] = json!(format!("image:{kernel}"));
    params["initrd"] = json!(format!("image:{initrd}"));
    h.put(format!("{cloud}/boot/v1/bootparameters"))
        .json(&params)
        .send()
        .await?
        .error_for_status()?;
    println!("seeded the cloud in {:.1} s", t.elapsed().as_secs_f64());

    // The edge agent, synced once, then serving from its copy.
    let edge_dir = dir.path().join("edge");
    std::fs::create_dir_all(&edge_dir)?;
    let token = issuer.mint_for_client(
        &client_id,
        &["edge".to_string()],
        Duration::from_secs(86_400),
    )?;
    let client = CloudClient::new(&cloud, TokenSource::fixed(token))?;
    let metrics = Arc::new(Metrics::default());
    let replica = Arc::new(Replica::open(&edge_dir)?);
    let cache = ImageCache::open(
        &edge_dir.join("images"),
        u64::MAX,
        Some(client.clone()),
        metrics.clone(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let edge = format!("http://{}", listener.local_addr()?);
    let site = Site::new(replica.clone(), cache, metrics.clone(), &edge, 30);
    let t = Instant::now();
    let syncer = Syncer::new(client.clone(), replica.clone(), metrics.clone());
    syncer.poll().await?;
    let missing = site.prefetch().await?;
    // As the daemon does after every applied snapshot.
    let indexed = site.rebuild_index().await?;
    if indexed != p.nodes {
        bail!("{indexed} of {} boot scripts pre-rendered", p.nodes);
    }
    if missing > 0 {
        bail!("{missing} images could not be cached");
    }
    println!(
        "edge synced and cached images in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let app = site
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let edge_task = tokio::spawn(async move { axum::serve(listener, app).await });
    // The daemon's sync loop from here on (every default interval): poll, re-render after a
    // change, store the nodes' fetches, report.
    let polls = Arc::new(Polls::default());
    let sync_task = {
        let (site, polls) = (site.clone(), polls.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SYNC_INTERVAL).await;
                match syncer.poll().await {
                    Ok(Polled::Unchanged) => bump(&polls.unchanged),
                    Ok(Polled::Applied(_)) => {
                        bump(&polls.applied);
                        site.invalidate_index();
                        if let Err(e) = site.rebuild_index().await {
                            eprintln!("re-rendering after a change failed: {e}");
                        }
                    }
                    Err(e) => {
                        bump(&polls.failed);
                        eprintln!("sync failed during the storm: {e}");
                    }
                }
                if let Err(e) = site.flush_accesses().await {
                    eprintln!("storing endpoint history failed: {e}");
                }
                match report_once(&client, &replica, "storm", &metrics, false).await {
                    Ok(_) => bump(&polls.reported),
                    Err(e) => eprintln!("report failed during the storm: {e}"),
                }
            }
        })
    };

    // nginx gets exactly what the edge answers: every node's script body, the image bytes.
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("scripts"))?;
    std::fs::create_dir_all(www.join("edge/v1/images"))?;
    let bodies: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..p.nodes)
        .map(|n| {
            let (h, edge) = (h.clone(), edge.clone());
            async move {
                let mac = crate::node_mac(n / 4, n % 4);
                let body = h
                    .get(format!("{edge}/boot/v1/bootscript?mac={mac}"))
                    .send()
                    .await?
                    .text()
                    .await?;
                if !body.starts_with("#!ipxe\nkernel --name kernel") {
                    bail!("{mac}: unexpected script {body}");
                }
                Ok((mac, body))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for b in bodies {
        let (mac, body) = b?;
        std::fs::write(www.join("scripts").join(mac), body)?;
    }
    std::fs::write(www.join("edge/v1/images").join(&kernel), &image)?;
    let nginx_port = skyport_testkit::free_port()?;
    let _nginx = nginx(dir.path(), nginx_port)?;
    let nginx_url = format!("http://127.0.0.1:{nginx_port}");

    let script = dir.path().join("macs.lua");
    std::fs::write(&script, lua(p.nodes))?;
    let scripts = |base: &str| {
        wrk(
            &format!("{base}/boot/v1/bootscript"),
            Some(&script),
            p.connections,
            p.seconds,
        )
    };
    let images = |base: &str| {
        wrk(
            &format!("{base}/edge/v1/images/{kernel}"),
            None,
            8,
            p.seconds,
        )
    };
    // Alternate the two servers so neither always runs on a warmer machine.
    let edge_s = tokio::task::block_in_place(|| scripts(&edge))?;
    let nginx_s = tokio::task::block_in_place(|| scripts(&nginx_url))?;
    let edge_i = tokio::task::block_in_place(|| images(&edge))?;
    let nginx_i = tokio::task::block_in_place(|| images(&nginx_url))?;

    println!(
        "bootscript, {} distinct MACs   edge {:>9.0} req/s  p99 {:>6.2} ms | nginx {:>9.0} req/s  p99 {:>6.2} ms | ratio {:.2} (target >= 0.80; p99 target < 10 ms)",
        p.nodes,
        edge_s.rps,
        edge_s.p99_ms,
        nginx_s.rps,
        nginx_s.p99_ms,
        edge_s.rps / nginx_s.rps
    );
    println!(
        "image download ({} MiB, c=8)      edge {:>8.0} MiB/s  p99 {:>6.1} ms | nginx {:>8.0} MiB/s  p99 {:>6.1} ms | ratio {:.2} (target >= 0.90)",
        p.image_mb,
        edge_i.bytes_per_s / 1048576.0,
        edge_i.p99_ms,
        nginx_i.bytes_per_s / 1048576.0,
        nginx_i.p99_ms,
        edge_i.bytes_per_s / nginx_i.bytes_per_s
    );
    println!(
        "meanwhile the agent polled every {} s: {} unchanged (304), {} applied, {} failed; {} reports sent",
        SYNC_INTERVAL.as_secs(),
        Polls::get(&polls.unchanged),
        Polls::get(&polls.applied),
        Polls::get(&polls.failed),
        Polls::get(&polls.reported)
    );
    sync_task.abort();
    edge_task.abort();
    cloud_task.abort();
    Ok(())
}
