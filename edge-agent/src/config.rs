//! Configuration of `skyport-edge`, resolved in one place: defaults, then the TOML file
//! (`--config`/`SKYPORT_EDGE_CONFIG`), then `SKYPORT_EDGE_*` environment variables, then flags
//! (clap reads flag and variable together, the flag winning). `docs/configuration.md` has the
//! table. The BMC password is deliberately not a file key: it lives in the encrypted secrets
//! file or in the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// A configuration the agent cannot run with; the message names the setting and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
}

/// Returns a [`ConfigError::Invalid`] with the formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(ConfigError::Invalid(format!($($arg)*)))
    };
}
use skyport_redfish::AuthMode;

use crate::node::dhcp::{DhcpConfig, Mode, Subnet, Unknown};

#[derive(Args, Debug, Default, Clone)]
pub struct EdgeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SKYPORT_EDGE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the agent's embedded store (outbox, certificate pins) [default: ./skyport-edge-data].
    #[arg(long, env = "SKYPORT_EDGE_DATA", global = true)]
    pub data: Option<PathBuf>,
    /// Inventory API root the results are pushed to, e.g. http://127.0.0.1:27779.
    #[arg(long, env = "SKYPORT_EDGE_CLOUD_URL", global = true)]
    pub cloud_url: Option<String>,
    /// Bearer token for the cloud API (or `token_file`).
    #[arg(
        long,
        env = "SKYPORT_EDGE_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the bearer token.
    #[arg(long, env = "SKYPORT_EDGE_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// OAuth 2 token endpoint for client credentials (the stack's `TokenUrl` output).
    #[arg(long, env = "SKYPORT_EDGE_TOKEN_URL", global = true)]
    pub token_url: Option<String>,
    /// The site's app client ID (with --token-url).
    #[arg(long, env = "SKYPORT_EDGE_CLIENT_ID", global = true)]
    pub client_id: Option<String>,
    /// The site's app client secret (environment only: it is a secret).
    #[arg(skip)]
    pub client_secret: Option<String>,
    /// Networks, ranges or hosts to scan (repeatable; comma lists accepted).
    #[arg(
        long = "subnet",
        env = "SKYPORT_EDGE_SUBNETS",
        value_delimiter = ',',
        global = true
    )]
    pub subnets: Vec<String>,
    /// Ports to probe (repeatable) [default: 443].
    #[arg(
        long = "port",
        env = "SKYPORT_EDGE_PORTS",
        value_delimiter = ',',
        global = true
    )]
    pub ports: Vec<u16>,
    /// http or https [default: https].
    #[arg(long, env = "SKYPORT_EDGE_SCHEME", global = true)]
    pub scheme: Option<String>,
    /// BMCs scanned and crawled at once [default: 64].
    #[arg(long, env = "SKYPORT_EDGE_CONCURRENCY", global = true)]
    pub concurrency: Option<usize>,
    /// Targets probed at once (TCP connect + GET /redfish/v1/) [default: 256].
    #[arg(long, env = "SKYPORT_EDGE_SCAN_CONCURRENCY", global = true)]
    pub scan_concurrency: Option<usize>,
    /// TCP connect timeout, seconds [default: 3].
    #[arg(long, env = "SKYPORT_EDGE_CONNECT_TIMEOUT", global = true)]
    pub connect_timeout: Option<f64>,
    /// Per-request timeout, seconds [default: 10].
    #[arg(long, env = "SKYPORT_EDGE_REQUEST_TIMEOUT", global = true)]
    pub request_timeout: Option<f64>,
    /// Most time one BMC may take in total, seconds [default: 120].
    #[arg(long, env = "SKYPORT_EDGE_BMC_DEADLINE", global = true)]
    pub bmc_deadline: Option<f64>,
    /// Site map file (BMC IP or MAC → xname).
    #[arg(long, env = "SKYPORT_EDGE_SITE_MAP", global = true)]
    pub site_map: Option<PathBuf>,
    /// Encrypted BMC credentials file [default: <data>/bmc-secrets.json].
    #[arg(long, env = "SKYPORT_EDGE_SECRETS_FILE", global = true)]
    pub secrets_file: Option<PathBuf>,
    /// Default BMC user for BMCs without an entry in the secrets file.
    #[arg(long, env = "SKYPORT_EDGE_BMC_USER", global = true)]
    pub bmc_user: Option<String>,
    /// Default BMC password (environment preferred; flags show up in `ps`).
    #[arg(
        long,
        env = "SKYPORT_EDGE_BMC_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub bmc_password: Option<String>,
    /// Verify BMC certificates against this PEM bundle instead of pinning on first use.
    #[arg(long, env = "SKYPORT_EDGE_CA_BUNDLE", global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// Do not verify BMC certificates at all.
    #[arg(long, env = "SKYPORT_EDGE_INSECURE", global = true)]
    pub insecure: bool,
    /// basic or session [default: basic].
    #[arg(long, env = "SKYPORT_EDGE_AUTH", global = true)]
    pub auth: Option<String>,
    /// Also crawl NetworkInterfaces and NetworkAdapters.
    #[arg(long, env = "SKYPORT_EDGE_NETWORK_INTERFACES", global = true)]
    pub network_interfaces: bool,
    /// Seconds between discovery runs in daemon mode [default: 3600].
    #[arg(long, env = "SKYPORT_EDGE_INTERVAL", global = true)]
    pub interval: Option<u64>,
    /// text or json [default: text, json in daemon mode].
    #[arg(long, env = "SKYPORT_EDGE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Address the site's nodes are served on (boot scripts, images, cloud-init), e.g. 0.0.0.0:8080.
    #[arg(long, env = "SKYPORT_EDGE_LISTEN", global = true)]
    pub listen: Option<String>,
    /// URL the nodes reach --listen at, used in chain and image URLs [default: http://<listen>].
    #[arg(long, env = "SKYPORT_EDGE_NODE_URL", global = true)]
    pub node_url: Option<String>,
    /// Seconds between polls of the cloud for boot data [default: 10].
    #[arg(long, env = "SKYPORT_EDGE_SYNC_INTERVAL", global = true)]
    pub sync_interval: Option<f64>,
    /// Most disk the image cache may use, in GiB [default: 50].
    #[arg(long, env = "SKYPORT_EDGE_CACHE_MAX_GB", global = true)]
    pub cache_max_gb: Option<f64>,
    /// Seconds between two verifications of every cached image against its SHA-256 [default: 86400].
    #[arg(long, env = "SKYPORT_EDGE_CACHE_VERIFY_INTERVAL", global = true)]
    pub cache_verify_interval: Option<f64>,
    /// This site's name in reports to the cloud [default: default].
    #[arg(long, env = "SKYPORT_EDGE_SITE", global = true)]
    pub site: Option<String>,
    /// Address the operator console (read-only without an admin token) is served on, e.g.
    /// 10.0.0.5:8081 on the management network [default: none, no console]. Needs --listen.
    #[arg(long, env = "SKYPORT_EDGE_CONSOLE_LISTEN", global = true)]
    pub console_listen: Option<String>,
    /// A file holding the console's admin token (at least 16 characters): whoever signs in
    /// with it may act (retry queued discovery results) [default: none, read-only].
    #[arg(long, env = "SKYPORT_EDGE_CONSOLE_ADMIN_TOKEN_FILE", global = true)]
    pub console_admin_token_file: Option<PathBuf>,
    /// Seconds between polls of the cloud for this site's jobs [default: 2].
    #[arg(long, env = "SKYPORT_EDGE_JOBS_POLL_INTERVAL", global = true)]
    pub jobs_poll_interval: Option<f64>,
    /// BMCs acted on at once in one chassis (power and boot jobs) [default: 4].
    #[arg(long, env = "SKYPORT_EDGE_POWER_PER_CHASSIS", global = true)]
    pub power_per_chassis: Option<usize>,
    /// Milliseconds between two BMC calls in one chassis [default: 250].
    #[arg(long, env = "SKYPORT_EDGE_POWER_DELAY_MS", global = true)]
    pub power_delay_ms: Option<u64>,
    /// BMCs acted on at once across the site [default: 64].
    #[arg(long, env = "SKYPORT_EDGE_POWER_CONCURRENCY", global = true)]
    pub power_concurrency: Option<usize>,
    /// Seconds a graceful shutdown gets before `off` forces it [default: 60].
    #[arg(long, env = "SKYPORT_EDGE_POWER_GRACEFUL_TIMEOUT", global = true)]
    pub power_graceful_timeout: Option<f64>,
    /// Interfaces of the provisioning network the DHCP and TFTP servers listen on (repeatable;
    /// none: no DHCP).
    #[arg(
        long = "dhcp-interface",
        env = "SKYPORT_EDGE_DHCP_INTERFACES",
        value_delimiter = ',',
        global = true
    )]
    pub dhcp_interfaces: Vec<String>,
    /// proxy (beside the site's DHCP server) or authoritative (addresses from the inventory)
    /// [default: proxy].
    #[arg(long, env = "SKYPORT_EDGE_DHCP_MODE", global = true)]
    pub dhcp_mode: Option<String>,
    /// answer or ignore DHCP clients whose MAC the inventory lacks [default: answer].
    #[arg(long, env = "SKYPORT_EDGE_DHCP_UNKNOWN", global = true)]
    pub dhcp_unknown: Option<String>,
    /// Directory of the iPXE binaries served over TFTP and HTTP [default: /usr/lib/ipxe].
    #[arg(long, env = "SKYPORT_EDGE_IPXE_DIR", global = true)]
    pub ipxe_dir: Option<PathBuf>,
}

/// A `[[dhcp_subnets]]` table of the configuration file.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
struct SubnetFile {
    network: String,
    range: Option<String>,
    router: Option<String>,
    #[serde(default)]
    dns: Vec<String>,
    domain: Option<String>,
    lease_time: Option<u32>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct EdgeFile {
    data: Option<PathBuf>,
    cloud_url: Option<String>,
    token_file: Option<PathBuf>,
    token_url: Option<String>,
    client_id: Option<String>,
    subnets: Option<Vec<String>>,
    ports: Option<Vec<u16>>,
    scheme: Option<String>,
    concurrency: Option<usize>,
    scan_concurrency: Option<usize>,
    connect_timeout: Option<f64>,
    request_timeout: Option<f64>,
    bmc_deadline: Option<f64>,
    site_map: Option<PathBuf>,
    secrets_file: Option<PathBuf>,
    bmc_user: Option<String>,
    ca_bundle: Option<PathBuf>,
    insecure: Option<bool>,
    auth: Option<String>,
    network_interfaces: Option<bool>,
    interval: Option<u64>,
    log_format: Option<String>,
    listen: Option<String>,
    node_url: Option<String>,
    sync_interval: Option<f64>,
    cache_max_gb: Option<f64>,
    cache_verify_interval: Option<f64>,
    site: Option<String>,
    jobs_poll_interval: Option<f64>,
    power_per_chassis: Option<usize>,
    power_delay_ms: Option<u64>,
    power_concurrency: Option<usize>,
    power_graceful_timeout: Option<f64>,
    dhcp_interfaces: Option<Vec<String>>,
    dhcp_mode: Option<String>,
    dhcp_unknown: Option<String>,
    ipxe_dir: Option<PathBuf>,
    dhcp_subnets: Option<Vec<SubnetFile>>,
    console_listen: Option<String>,
    console_admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    pub data: PathBuf,
    pub cloud_url: Option<String>,
    pub token: Option<String>,
    /// Client credentials, when the agent gets its own tokens.
    pub client: Option<skyport_client::ClientCredentials>,
    pub subnets: Vec<String>,
    pub ports: Vec<u16>,
    pub scheme: String,
    pub concurrency: usize,
    pub scan_concurrency: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub bmc_deadline: Duration,
    pub site_map: Option<PathBuf>,
    pub secrets_file: PathBuf,
    pub bmc_user: Option<String>,
    pub bmc_password: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub insecure: bool,
    pub auth: AuthMode,
    pub network_interfaces: bool,
    pub interval: Duration,
    pub log_json: Option<bool>,
    /// Where nodes are served, and the URL they use for it.
    pub listen: Option<std::net::SocketAddr>,
    pub node_url: Option<String>,
    pub sync_interval: Duration,
    pub cache_max_bytes: u64,
    pub cache_verify_interval: Duration,
    pub site: String,
    pub power: PowerSettings,
    /// DHCP and TFTP on the provisioning network (needs `listen`).
    pub dhcp: Option<DhcpConfig>,
    /// Where the operator console is served (needs `listen`).
    pub console_listen: Option<std::net::SocketAddr>,
    /// The console's admin token; without one the console only shows.
    pub console_admin_token: Option<String>,
}

fn ipv4(what: &str, v: &str) -> Result<std::net::Ipv4Addr, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::Invalid(format!("{what} {v:?} is not an IPv4 address")))
}

fn subnet(f: &SubnetFile) -> Result<Subnet, ConfigError> {
    let network: ipnet::Ipv4Net = f.network.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "dhcp_subnets: network {:?} is not an IPv4 network like 10.1.0.0/24",
            f.network
        ))
    })?;
    let network = network.trunc();
    let inside = |what: &str, ip: std::net::Ipv4Addr| {
        if network.contains(&ip) {
            Ok(ip)
        } else {
            Err(ConfigError::Invalid(format!(
                "dhcp_subnets {network}: {what} {ip} is outside the network"
            )))
        }
    };
    let range = match &f.range {
        None => None,
        Some(r) => {
            let (lo, hi) = r.split_once('-').ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "dhcp_subnets {network}: range {r:?} must be FIRST-LAST, e.g. 10.1.0.100-10.1.0.199"
                ))
            })?;
            let (lo, hi) = (
                inside("range start", ipv4("range start", lo)?)?,
                inside("range end", ipv4("range end", hi)?)?,
            );
            if lo > hi {
                bail!("dhcp_subnets {network}: range {r:?} ends before it starts");
            }
            // A range is scanned for a free address: bounded, like every per-request cost.
            if u32::from(hi) - u32::from(lo) >= 65_536 {
                bail!("dhcp_subnets {network}: range {r:?} holds more than 65536 addresses");
            }
            Some((lo, hi))
        }
    };
    let router = match &f.router {
        None => None,
        Some(r) => Some(inside("router", ipv4("router", r)?)?),
    };
    let dns = f
        .dns
        .iter()
        .map(|d| ipv4("dns server", d))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(d) = &f.domain
        && (d.is_empty()
            || d.len() > 253
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        bail!("dhcp_subnets {network}: domain {d:?} is not a DNS name");
    }
    let lease_time = f.lease_time.unwrap_or(3600);
    if !(60..=31_536_000).contains(&lease_time) {
        bail!(
            "dhcp_subnets {network}: lease_time must be 60 to 31536000 seconds, got {lease_time}"
        );
    }
    Ok(Subnet {
        network,
        range,
        router,
        dns,
        domain: f.domain.clone(),
        lease_time,
    })
}

fn dhcp(a: &EdgeArgs, f: &mut EdgeFile, serving: bool) -> Result<Option<DhcpConfig>, ConfigError> {
    let interfaces = if a.dhcp_interfaces.is_empty() {
        f.dhcp_interfaces.take().unwrap_or_default()
    } else {
        a.dhcp_interfaces.clone()
    };
    let mode = match a.dhcp_mode.clone().or(f.dhcp_mode.take()).as_deref() {
        None | Some("proxy") => Mode::Proxy,
        Some("authoritative") => Mode::Authoritative,
        Some("off") => return Ok(None),
        Some(o) => bail!("dhcp_mode must be proxy, authoritative or off, got {o:?}"),
    };
    let unknown = match a.dhcp_unknown.clone().or(f.dhcp_unknown.take()).as_deref() {
        None | Some("answer") => Unknown::Answer,
        Some("ignore") => Unknown::Ignore,
        Some(o) => bail!("dhcp_unknown must be answer or ignore, got {o:?}"),
    };
    let subnets = f
        .dhcp_subnets
        .take()
        .unwrap_or_default()
        .iter()
        .map(subnet)
        .collect::<Result<Vec<_>, _>>()?;
    let ipxe_dir = a
        .ipxe_dir
        .clone()
        .or(f.ipxe_dir.take())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/ipxe"));
    if interfaces.is_empty() {
        return Ok(None);
    }
    if !serving {
        bail!("dhcp_interfaces needs listen: DHCP hands out this agent's boot URLs");
    }
    if let Some(i) = interfaces.iter().find(|i| {
        i.is_empty() || i.len() > 15 || i.contains('/') || i.contains(char::is_whitespace)
    }) {
        bail!("dhcp_interfaces: {i:?} is not an interface name");
    }
    if mode == Mode::Authoritative && subnets.is_empty() {
        bail!("dhcp_mode authoritative needs at least one [[dhcp_subnets]] in the config file");
    }
    for (i, s) in subnets.iter().enumerate() {
        if let Some(o) = subnets[..i].iter().find(|o| {
            o.network.contains(&s.network.network()) || s.network.contains(&o.network.network())
        }) {
            bail!("dhcp_subnets {} and {} overlap", o.network, s.network);
        }
    }
    Ok(Some(DhcpConfig {
        mode,
        interfaces,
        subnets,
        unknown,
        ipxe_dir,
    }))
}

/// How the agent takes and runs jobs on hardware.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSettings {
    /// Between two polls of the cloud for the site's jobs.
    pub poll_interval: Duration,
    /// BMCs acted on at once within one chassis.
    pub per_chassis: usize,
    /// Least time between two task starts within one chassis (OpenCHAMI's guidance for BMC
    /// calls is 250-1000 ms).
    pub delay: Duration,
    /// BMCs acted on at once across the site.
    pub concurrency: usize,
    /// What a graceful shutdown gets before `off` forces it.
    pub graceful_timeout: Duration,
}

fn secs(what: &str, v: f64) -> Result<Duration, ConfigError> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        bail!("{what} must be between 0 and 86400 seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

fn read_file(p: &Path) -> Result<EdgeFile, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        what: "reading config",
        path: p.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: p.display().to_string(),
        source,
    })
}

impl EdgeConfig {
    pub fn resolve(a: &EdgeArgs) -> Result<Self, ConfigError> {
        let mut f = match &a.config {
            Some(p) => read_file(p)?,
            None => EdgeFile::default(),
        };
        let serving = a.listen.is_some() || f.listen.is_some();
        let dhcp = dhcp(a, &mut f, serving)?;
        let data = a
            .data
            .clone()
            .or(f.data)
            .unwrap_or_else(|| PathBuf::from("./skyport-edge-data"));
        let token_file = a.token_file.clone().or(f.token_file);
        let token = match (&a.token, token_file) {
            (Some(t), _) => Some(t.trim().to_string()),
            (None, Some(p)) => Some(
                std::fs::read_to_string(&p)
                    .map_err(|source| ConfigError::Read {
                        what: "reading token file",
                        path: p.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        }
        .filter(|t| !t.is_empty());
        let token_url = a.token_url.clone().or(f.token_url);
        let client_id = a.client_id.clone().or(f.client_id);
        let client_secret = a
            .client_secret
            .clone()
            .or_else(|| std::env::var("SKYPORT_EDGE_CLIENT_SECRET").ok());
        let client = match (token_url, client_id, client_secret) {
            (None, None, None) => None,
            (Some(url), Some(id), Some(secret)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    bail!("token URL {url:?} must start with https:// or http://");
                }
                if token.is_some() {
                    bail!("both a token and client credentials are configured; choose one");
                }
                Some(skyport_client::ClientCredentials {
                    token_url: url,
                    client_id: id,
                    client_secret: secret,
                    scope: "skyport/edge".into(),
                })
            }
            _ => bail!(
                "client credentials need all of token_url, client_id and SKYPORT_EDGE_CLIENT_SECRET"
            ),
        };
        let scheme = a
            .scheme
            .clone()
            .or(f.scheme)
            .unwrap_or_else(|| "https".into());
        if scheme != "https" && scheme != "http" {
            bail!("scheme must be http or https, got {scheme:?}");
        }
        let auth = match a.auth.clone().or(f.auth).as_deref() {
            None | Some("basic") => AuthMode::Basic,
            Some("session") => AuthMode::Session,
            Some(o) => bail!("auth must be basic or session, got {o:?}"),
        };
        let concurrency = a.concurrency.or(f.concurrency).unwrap_or(64);
        if concurrency == 0 || concurrency > 4096 {
            bail!("concurrency must be between 1 and 4096, got {concurrency}");
        }
        let scan_concurrency = a.scan_concurrency.or(f.scan_concurrency).unwrap_or(256);
        if scan_concurrency == 0 || scan_concurrency > 4096 {
            bail!("scan concurrency must be between 1 and 4096, got {scan_concurrency}");
        }
        let log_json = match a.log_format.clone().or(f.log_format).as_deref() {
            None => None,
            Some("json") => Some(true),
            Some("text") => Some(false),
            Some(o) => bail!("log format must be text or json, got {o:?}"),
        };
        let cloud_url = a.cloud_url.clone().or(f.cloud_url);
        if let Some(u) = &cloud_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("cloud URL {u:?} must start with http:// or https://");
        }
        let ca_bundle = a.ca_bundle.clone().or(f.ca_bundle);
        let insecure = a.insecure || f.insecure.unwrap_or(false);
        if insecure && ca_bundle.is_some() {
            bail!("--insecure and a CA bundle contradict each other; choose one");
        }
        let listen = match a.listen.clone().or(f.listen) {
            None => None,
            Some(l) => Some(l.parse::<std::net::SocketAddr>().map_err(|e| {
                ConfigError::Invalid(format!("listen address {l:?} (expected IP:port): {e}"))
            })?),
        };
        let node_url = match (a.node_url.clone().or(f.node_url), listen) {
            (Some(u), _) => {
                if !u.starts_with("http://") {
                    bail!("node URL {u:?} must start with http:// (firmware iPXE has no HTTPS)");
                }
                Some(u.trim_end_matches('/').to_string())
            }
            (None, Some(l)) if l.ip().is_unspecified() => bail!(
                "listening on {l} needs node_url (SKYPORT_EDGE_NODE_URL): the address nodes use to reach this agent"
            ),
            (None, Some(l)) => Some(format!("http://{l}")),
            (None, None) => None,
        };
        let cache_gb = a.cache_max_gb.or(f.cache_max_gb).unwrap_or(50.0);
        if !cache_gb.is_finite() || cache_gb <= 0.0 || cache_gb > 1_000_000.0 {
            bail!("cache_max_gb must be a positive number of GiB, got {cache_gb}");
        }
        let verify = a
            .cache_verify_interval
            .or(f.cache_verify_interval)
            .unwrap_or(crate::node::cache::VERIFY_INTERVAL.as_secs_f64());
        // Up to 30 days; at least a second, since each pass reads the whole cache.
        if !verify.is_finite() || !(1.0..=2_592_000.0).contains(&verify) {
            bail!("cache_verify_interval must be between 1 and 2592000 seconds, got {verify}");
        }
        let site = a
            .site
            .clone()
            .or(f.site)
            .unwrap_or_else(|| "default".into());
        if site.is_empty() || site.len() > 64 || site.chars().any(|c| c.is_control()) {
            bail!("site must be 1-64 printable characters, got {site:?}");
        }
        let per_chassis = a.power_per_chassis.or(f.power_per_chassis).unwrap_or(4);
        let concurrency_power = a.power_concurrency.or(f.power_concurrency).unwrap_or(64);
        if !(1..=1024).contains(&per_chassis) || !(1..=4096).contains(&concurrency_power) {
            bail!(
                "power_per_chassis must be 1-1024 and power_concurrency 1-4096, got {per_chassis} and {concurrency_power}"
            );
        }
        let delay_ms = a.power_delay_ms.or(f.power_delay_ms).unwrap_or(250);
        if delay_ms > 60_000 {
            bail!("power_delay_ms must be at most 60000, got {delay_ms}");
        }
        let power = PowerSettings {
            poll_interval: secs(
                "jobs poll interval",
                a.jobs_poll_interval.or(f.jobs_poll_interval).unwrap_or(2.0),
            )?,
            per_chassis,
            delay: Duration::from_millis(delay_ms),
            concurrency: concurrency_power,
            graceful_timeout: secs(
                "power graceful timeout",
                a.power_graceful_timeout
                    .or(f.power_graceful_timeout)
                    .unwrap_or(60.0),
            )?,
        };
        let console_listen = match a.console_listen.clone().or(f.console_listen) {
            None => None,
            Some(_) if listen.is_none() => {
                bail!("console_listen needs listen: the console shows what the agent serves")
            }
            Some(l) => Some(l.parse::<std::net::SocketAddr>().map_err(|e| {
                ConfigError::Invalid(format!(
                    "console_listen address {l:?} (expected IP:port): {e}"
                ))
            })?),
        };
        let console_admin_token = match a
            .console_admin_token_file
            .clone()
            .or(f.console_admin_token_file)
        {
            None => None,
            Some(p) => {
                let t = std::fs::read_to_string(&p).map_err(|e| {
                    ConfigError::Invalid(format!("console_admin_token_file {}: {e}", p.display()))
                })?;
                let t = t.trim().to_string();
                if t.len() < 16 || !skyport_console::session::cookie_safe(&t) {
                    bail!(
                        "console_admin_token_file {}: the token must be at least 16 characters of A-Z, a-z, 0-9 and -_.~+/=",
                        p.display()
                    );
                }
                Some(t)
            }
        };
        Ok(Self {
            power,
            dhcp,
            listen,
            console_listen,
            console_admin_token,
            node_url,
            sync_interval: secs(
                "sync interval",
                a.sync_interval.or(f.sync_interval).unwrap_or(10.0),
            )?,
            cache_max_bytes: (cache_gb * 1024.0 * 1024.0 * 1024.0) as u64,
            cache_verify_interval: Duration::from_secs_f64(verify),
            site,
            secrets_file: a
                .secrets_file
                .clone()
                .or(f.secrets_file)
                .unwrap_or_else(|| data.join("bmc-secrets.json")),
            data,
            cloud_url,
            token,
            client,
            subnets: if a.subnets.is_empty() {
                f.subnets.unwrap_or_default()
            } else {
                a.subnets.clone()
            },
            ports: if a.ports.is_empty() {
                f.ports.unwrap_or_else(|| vec![443])
            } else {
                a.ports.clone()
            },
            scheme,
            concurrency,
            scan_concurrency,
            connect_timeout: secs(
                "connect timeout",
                a.connect_timeout.or(f.connect_timeout).unwrap_or(3.0),
            )?,
            request_timeout: secs(
                "request timeout",
                a.request_timeout.or(f.request_timeout).unwrap_or(10.0),
            )?,
            bmc_deadline: secs(
                "BMC deadline",
                a.bmc_deadline.or(f.bmc_deadline).unwrap_or(120.0),
            )?,
            site_map: a.site_map.clone().or(f.site_map),
            bmc_user: a.bmc_user.clone().or(f.bmc_user),
            bmc_password: a.bmc_password.clone(),
            ca_bundle,
            insecure,
            auth,
            network_interfaces: a.network_interfaces || f.network_interfaces.unwrap_or(false),
            interval: Duration::from_secs(a.interval.or(f.interval).unwrap_or(3600).max(1)),
            log_json,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        let c = EdgeConfig::resolve(&EdgeArgs::default()).unwrap();
        assert_eq!(c.ports, vec![443]);
        assert_eq!(c.cache_verify_interval, Duration::from_secs(86_400));
        assert_eq!(c.scheme, "https");
        assert_eq!(c.concurrency, 64);
        assert_eq!(
            c.secrets_file,
            PathBuf::from("./skyport-edge-data/bmc-secrets.json")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.toml");
        std::fs::write(
            &p,
            "subnets = [\"10.0.0.0/24\"]\nports = [8443]\nconcurrency = 8\nauth = \"session\"\ncache_verify_interval = 3600\n",
        )
        .unwrap();
        let mut a = EdgeArgs {
            config: Some(p.clone()),
            ..Default::default()
        };
        let c = EdgeConfig::resolve(&a).unwrap();
        assert_eq!(
            (c.ports.clone(), c.concurrency, c.auth),
            (vec![8443], 8, AuthMode::Session)
        );
        assert_eq!(c.cache_verify_interval, Duration::from_secs(3600));
        a.concurrency = Some(2);
        a.ports = vec![443, 8443];
        let c = EdgeConfig::resolve(&a).unwrap();
        assert_eq!((c.ports, c.concurrency), (vec![443, 8443], 2));
        assert_eq!(c.sync_interval, Duration::from_secs(10));
        assert_eq!(c.node_url, None);
        a.listen = Some("10.1.0.1:8080".into());
        let c = EdgeConfig::resolve(&a).unwrap();
        assert_eq!(c.node_url.as_deref(), Some("http://10.1.0.1:8080"));
    }

    #[test]
    fn dhcp_is_on_with_interfaces_and_subnets_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.toml");
        std::fs::write(
            &p,
            "listen = \"10.1.0.1:8080\"\ndhcp_interfaces = [\"eno2\"]\ndhcp_mode = \"authoritative\"\n\
             [[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.100-10.1.0.199\"\n\
             router = \"10.1.0.1\"\ndns = [\"10.1.0.2\"]\ndomain = \"site.example\"\n",
        )
        .unwrap();
        let a = EdgeArgs {
            config: Some(p),
            ..Default::default()
        };
        let d = EdgeConfig::resolve(&a).unwrap().dhcp.unwrap();
        assert_eq!((d.mode, d.unknown), (Mode::Authoritative, Unknown::Answer));
        assert_eq!(d.interfaces, vec!["eno2"]);
        assert_eq!(d.ipxe_dir, PathBuf::from("/usr/lib/ipxe"));
        let s = &d.subnets[0];
        assert_eq!(
            s.range.map(|(a, b)| (a.to_string(), b.to_string())),
            Some(("10.1.0.100".into(), "10.1.0.199".into()))
        );
        assert_eq!(s.lease_time, 3600);
        // Flags win; no interface, no DHCP.
        let d = EdgeConfig::resolve(&EdgeArgs {
            dhcp_mode: Some("proxy".into()),
            dhcp_interfaces: vec!["br0".into()],
            ..a.clone()
        })
        .unwrap()
        .dhcp
        .unwrap();
        assert_eq!(
            (d.mode, d.interfaces),
            (Mode::Proxy, vec!["br0".to_string()])
        );
        let none = EdgeConfig::resolve(&EdgeArgs {
            listen: Some("127.0.0.1:8080".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(none.dhcp, None);
    }

    #[test]
    fn bad_dhcp_settings_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (file, want) in [
            ("dhcp_interfaces = [\"br0\"]\n", "needs listen"),
            (
                "listen = \"10.1.0.1:80\"\ndhcp_interfaces = [\"br0\"]\ndhcp_mode = \"authoritative\"\n",
                "at least one",
            ),
            (
                "listen = \"10.1.0.1:80\"\ndhcp_interfaces = [\"br0\"]\ndhcp_mode = \"loud\"\n",
                "dhcp_mode",
            ),
            (
                "listen = \"10.1.0.1:80\"\ndhcp_interfaces = [\"br0\"]\ndhcp_unknown = \"maybe\"\n",
                "dhcp_unknown",
            ),
            (
                "listen = \"10.1.0.1:80\"\ndhcp_interfaces = [\"a b\"]\n",
                "interface name",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/33\"\n",
                "IPv4 network",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.1.1-10.1.1.9\"\n",
                "outside",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.9-10.1.0.1\"\n",
                "ends before",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.9\"\n",
                "FIRST-LAST",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nrouter = \"10.2.0.1\"\n",
                "router",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nlease_time = 5\n",
                "lease_time",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\ndomain = \"a b\"\n",
                "domain",
            ),
            (
                "[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\nbogus = 1\n",
                "bogus",
            ),
            (
                "listen = \"10.1.0.1:80\"\ndhcp_interfaces = [\"br0\"]\n[[dhcp_subnets]]\nnetwork = \"10.0.0.0/8\"\n[[dhcp_subnets]]\nnetwork = \"10.1.0.0/24\"\n",
                "overlap",
            ),
        ] {
            let p = dir.path().join("edge.toml");
            std::fs::write(&p, file).unwrap();
            let e = EdgeConfig::resolve(&EdgeArgs {
                config: Some(p),
                ..Default::default()
            })
            .unwrap_err();
            assert!(format!("{e:#}").contains(want), "{file}: {e:#}");
        }
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.toml");
        std::fs::write(&p, "bmc_password = \"x\"\n").unwrap();
        let e = EdgeConfig::resolve(&EdgeArgs {
            config: Some(p),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("bmc_password"), "{e:#}");
        for a in [
            EdgeArgs {
                scheme: Some("ftp".into()),
                ..Default::default()
            },
            EdgeArgs {
                concurrency: Some(0),
                ..Default::default()
            },
            EdgeArgs {
                request_timeout: Some(-1.0),
                ..Default::default()
            },
            EdgeArgs {
                auth: Some("kerberos".into()),
                ..Default::default()
            },
            EdgeArgs {
                cloud_url: Some("localhost:1".into()),
                ..Default::default()
            },
            EdgeArgs {
                insecure: true,
                ca_bundle: Some("x.pem".into()),
                ..Default::default()
            },
            EdgeArgs {
                listen: Some("0.0.0.0:8080".into()),
                ..Default::default()
            },
            EdgeArgs {
                listen: Some("8080".into()),
                ..Default::default()
            },
            EdgeArgs {
                listen: Some("127.0.0.1:8080".into()),
                node_url: Some("https://edge".into()),
                ..Default::default()
            },
            EdgeArgs {
                cache_max_gb: Some(0.0),
                ..Default::default()
            },
            EdgeArgs {
                sync_interval: Some(0.0),
                ..Default::default()
            },
            EdgeArgs {
                cache_verify_interval: Some(0.5),
                ..Default::default()
            },
            EdgeArgs {
                cache_verify_interval: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            assert!(EdgeConfig::resolve(&a).is_err(), "{a:?}");
        }
    }
}
