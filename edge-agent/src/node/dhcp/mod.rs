//! The agent's DHCPv4 server on the provisioning network, answering from the synced copy so
//! nodes get leases and boot files with the cloud gone. Two modes: **proxy** (the default:
//! beside the site's own DHCP server, boot information only, to PXE/iPXE/HTTP boot clients,
//! on ports 67 and 4011) and **authoritative** (addresses from the inventory's reservations and
//! the configured ranges). The packet codec is [`packet`], the decisions [`answer`], the
//! address book [`leases`]; this module owns the sockets, the per-MAC rate limit and the
//! group-committed lease writes.

pub mod answer;
pub mod leases;
pub mod packet;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use skyport_model::Mac;
use skyport_store::{Store, StoreError, Write};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, inc};
use crate::node::recorder::Recorder;
use answer::{Engine, Incoming, Outcome, Port};
use dhcproto::v4::MessageType;
use leases::Leases;
use packet::{Client, Request};
use skyport_boot::flight::Stage;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Boot information only, beside the site's DHCP server.
    Proxy,
    /// Addresses and boot information: the only DHCP server on the segment.
    Authoritative,
}

/// What clients whose MAC the inventory does not know get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unknown {
    /// Answered like known ones (they boot the unknown-node script and are reported as
    /// enrollment candidates).
    Answer,
    /// Not answered (still reported).
    Ignore,
}

/// One subnet the authoritative server hands addresses in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub network: ipnet::Ipv4Net,
    /// Addresses for clients without a reservation in this subnet (none: reservations only).
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Seconds.
    pub lease_time: u32,
}

/// The DHCP and TFTP part of the agent's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DhcpConfig {
    pub mode: Mode,
    /// Interfaces of the provisioning network(s), e.g. `["eno2"]`.
    pub interfaces: Vec<String>,
    pub subnets: Vec<Subnet>,
    pub unknown: Unknown,
    /// Where the iPXE binaries are (served over TFTP and HTTP).
    pub ipxe_dir: PathBuf,
}

/// What the engine answers with, resolved at start.
#[derive(Debug)]
pub struct Settings {
    pub mode: Mode,
    pub subnets: Vec<Subnet>,
    pub unknown: Unknown,
    /// How nodes reach the agent's HTTP listener.
    pub node_url: String,
    pub ipxe_dir: PathBuf,
    /// The iPXE binaries present in `ipxe_dir`.
    pub binaries: HashSet<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("interface {iface}: {reason}")]
    Interface { iface: String, reason: String },
    #[error("binding {addr} on {iface}: {source}")]
    Bind {
        iface: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("loading DHCP leases: {0}")]
    Leases(#[from] StoreError),
}

/// Requests one MAC may send in a window before it is ignored for the rest of it: a boot
/// takes a handful (PXE, iPXE, the OS), a stuck client or a flood takes many.
const PER_MAC: u32 = 40;
const WINDOW: Duration = Duration::from_secs(10);
/// MACs tracked in a window: a flood of made-up MACs is dropped beyond this, bounding memory.
const TRACKED_MACS: usize = 65_536;
/// Requests being answered at once.
const IN_FLIGHT: usize = 512;

/// Per-MAC request counting in fixed windows.
struct Limiter {
    start: Instant,
    counts: HashMap<Mac, u32>,
}

#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// First request of this MAC in the window.
    First,
    Again,
    Refused,
}

impl Limiter {
    fn admit(&mut self, mac: Mac, now: Instant) -> Admit {
        if now.duration_since(self.start) >= WINDOW {
            self.counts.clear();
            self.start = now;
        }
        if let Some(c) = self.counts.get_mut(&mac) {
            *c = c.saturating_add(1);
            return if *c <= PER_MAC {
                Admit::Again
            } else {
                Admit::Refused
            };
        }
        if self.counts.len() >= TRACKED_MACS {
            return Admit::Refused;
        }
        self.counts.insert(mac, 1);
        Admit::First
    }
}

/// One interface's sockets.
struct Iface {
    name: String,
    addr: Ipv4Addr,
    /// 0.0.0.0:67 bound to the interface: broadcasts and relayed requests.
    dhcp: Arc<UdpSocket>,
    /// <addr>:4011 (proxy mode): PXE clients' unicast requests.
    proxy: Option<Arc<UdpSocket>>,
}

type Pending = (Vec<Write>, oneshot::Sender<Result<(), String>>);

/// The running server: its sockets are bound when it is opened.
pub struct DhcpService {
    engine: Arc<Engine>,
    ifaces: Vec<Iface>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    limiter: std::sync::Mutex<Limiter>,
    writes: mpsc::Sender<Pending>,
    writes_rx: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// Held while a request is decided and its lease writes queued.
    order: tokio::sync::Mutex<()>,
    /// Hears of unknown MACs (enrollment candidates).
    unknown: OnUnknown,
    recorder: Arc<Recorder>,
}

/// Told of a MAC the inventory does not know that asked to boot (and its address, if any).
pub type OnUnknown =
    Arc<dyn Fn(Mac, Option<String>) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// The first IPv4 address of interface `name`.
pub fn interface_addr(name: &str) -> Result<Ipv4Addr, DhcpError> {
    let err = |reason: String| DhcpError::Interface {
        iface: name.to_string(),
        reason,
    };
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| err(format!("listing addresses: {e}")))?;
    let mut seen = false;
    for a in addrs {
        if a.interface_name != name {
            continue;
        }
        seen = true;
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Ok(sin.ip());
        }
    }
    Err(err(if seen {
        "has no IPv4 address".into()
    } else {
        "no such interface".into()
    }))
}

fn udp_socket(iface: &str, addr: SocketAddrV4, device: bool) -> Result<Arc<UdpSocket>, DhcpError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_err = |source: std::io::Error| DhcpError::Bind {
        iface: iface.to_string(),
        addr: addr.into(),
        source,
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(bind_err)?;
    // Several interfaces (and a DHCP server beside the agent) share port 67; each socket
    // hears only its own interface.
    s.set_reuse_address(true).map_err(bind_err)?;
    s.set_broadcast(true).map_err(bind_err)?;
    // A boot storm arrives faster than lease writes commit at times: the kernel holds the
    // burst (about 13,000 requests) instead of dropping it.
    s.set_recv_buffer_size(4 << 20).map_err(bind_err)?;
    if device {
        s.bind_device(Some(iface.as_bytes())).map_err(bind_err)?;
    }
    s.set_nonblocking(true).map_err(bind_err)?;
    s.bind(&SocketAddr::V4(addr).into()).map_err(bind_err)?;
    let std: std::net::UdpSocket = s.into();
    Ok(Arc::new(UdpSocket::from_std(std).map_err(bind_err)?))
}

/// The iPXE binaries `dir` holds (logged when one is missing).
pub fn binaries_in(dir: &std::path::Path) -> HashSet<&'static str> {
    let mut out = HashSet::new();
    for b in packet::BINARIES {
        if dir.join(b).is_file() {
            out.insert(b);
        } else if b != packet::ARM64_EFI {
            tracing::warn!(dir = %dir.display(), file = b,
                "iPXE binary missing: clients that need it get no boot answer (Debian: apt install ipxe)");
        }
    }
    out
}

impl DhcpService {
    /// Binds the sockets and loads the leases; an error here stops the agent at start-up.
    pub async fn open(
        cfg: &DhcpConfig,
        node_url: &str,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        unknown: OnUnknown,
        recorder: Arc<Recorder>,
    ) -> Result<Arc<Self>, DhcpError> {
        let mut ifaces = Vec::new();
        for name in &cfg.interfaces {
            let addr = interface_addr(name)?;
            let dhcp = udp_socket(name, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67), true)?;
            let proxy = match cfg.mode {
                Mode::Proxy => Some(udp_socket(name, SocketAddrV4::new(addr, 4011), false)?),
                Mode::Authoritative => None,
            };
            tracing::info!(iface = %name, addr = %addr, mode = ?cfg.mode, "DHCP listening");
            ifaces.push(Iface {
                name: name.clone(),
                addr,
                dhcp,
                proxy,
            });
        }
        let settings = Settings {
            mode: cfg.mode,
            subnets: cfg.subnets.clone(),
            unknown: cfg.unknown,
            node_url: node_url.trim_end_matches('/').to_string(),
            binaries: binaries_in(&cfg.ipxe_dir),
            ipxe_dir: cfg.ipxe_dir.clone(),
        };
        let leases = Leases::load(store.as_ref()).await?;
        let (writes, writes_rx) = mpsc::channel(4096);
        Ok(Arc::new(DhcpService {
            engine: Arc::new(Engine::new(Arc::new(settings), leases)),
            ifaces,
            store,
            metrics,
            limiter: std::sync::Mutex::new(Limiter {
                start: Instant::now(),
                counts: HashMap::new(),
            }),
            writes,
            writes_rx: tokio::sync::Mutex::new(writes_rx),
            order: tokio::sync::Mutex::new(()),
            unknown,
            recorder,
        }))
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The addresses the server listens on, by interface (TFTP binds the same).
    pub fn addresses(&self) -> Vec<(String, Ipv4Addr)> {
        self.ifaces
            .iter()
            .map(|i| (i.name.clone(), i.addr))
            .collect()
    }

    /// Receives and answers until cancelled, every socket at once.
    pub async fn serve(self: &Arc<Self>, cancel: CancellationToken) {
        let mut loops = JoinSet::new();
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        for (i, iface) in self.ifaces.iter().enumerate() {
            let mut socks = vec![(iface.dhcp.clone(), Port::Dhcp)];
            if let Some(p) = &iface.proxy {
                socks.push((p.clone(), Port::Proxy));
            }
            for (sock, port) in socks {
                let (me, permits, cancel) = (self.clone(), permits.clone(), cancel.clone());
                loops.spawn(async move { me.receive(i, sock, port, permits, cancel).await });
            }
        }
        let sweeper = {
            let (me, cancel) = (self.clone(), cancel.clone());
            async move {
                while !cancel.is_cancelled() {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(30)) => me.engine.sweep(skyport_model::now()),
                    }
                }
            }
        };
        loops.spawn(sweeper);
        while loops.join_next().await.is_some() {}
    }

    async fn receive(
        self: Arc<Self>,
        iface: usize,
        sock: Arc<UdpSocket>,
        port: Port,
        permits: Arc<Semaphore>,
        cancel: CancellationToken,
    ) {
        let mut buf = vec![0u8; packet::MAX_PACKET + 1];
        let mut answering = JoinSet::new();
        loop {
            let got = tokio::select! {
                _ = cancel.cancelled() => break,
                r = sock.recv_from(&mut buf) => r,
            };
            while answering.try_join_next().is_some() {}
            let (n, src) = match got {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(iface = %self.ifaces[iface].name, error = %e, "DHCP receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let SocketAddr::V4(src) = src else { continue };
            let req = match Request::parse(&buf[..n]) {
                Ok(r) => r,
                Err(e) => {
                    inc(&self.metrics.dhcp_malformed);
                    tracing::debug!(src = %src, error = %e, "DHCP packet ignored");
                    continue;
                }
            };
            let admit = match self.limiter.lock() {
                Ok(mut l) => l.admit(req.mac, Instant::now()),
                Err(_) => Admit::Refused,
            };
            if admit == Admit::Refused {
                inc(&self.metrics.dhcp_rate_limited);
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                inc(&self.metrics.dhcp_rate_limited);
                continue;
            };
            let me = self.clone();
            let sock = sock.clone();
            answering.spawn(async move {
                me.handle(iface, &sock, port, req, src, admit == Admit::First)
                    .await;
                drop(permit);
            });
        }
    }

    async fn handle(
        &self,
        iface: usize,
        sock: &UdpSocket,
        port: Port,
        req: Request,
        src: SocketAddrV4,
        first: bool,
    ) {
        let local = self.ifaces[iface].addr;
        inc(&self.metrics.dhcp_requests);
        let known = self.engine.hosts().knows(&req.mac);
        if !known && first && req.client != Client::Other {
            let ip = (!req.ciaddr.is_unspecified()).then(|| req.ciaddr.to_string());
            (self.unknown)(req.mac, ip).await;
        }
        let client = format!("{:?}", req.client).to_lowercase();
        // Boot progress is what network boot clients do; an OS renewing its lease is not.
        let booting = req.client != Client::Other;
        let asked = match req.kind {
            MessageType::Discover => Some(Stage::DhcpDiscover),
            MessageType::Request => Some(Stage::DhcpRequest),
            _ => None,
        };
        if let Some(stage) = asked.filter(|_| booting) {
            self.recorder
                .event(stage, Some(req.mac), None, client.clone(), false);
        }
        let inc_ = Incoming {
            req: &req,
            port,
            local,
            src,
        };
        // Deciding and queueing the lease writes happen in one step, so the writes reach the
        // store in the order the decisions were taken (a release then a new binding of the
        // same address never lands the other way round).
        let (reply, to, stored) = {
            let _order = self.order.lock().await;
            let (reply, to, persist) = match self.engine.answer(&inc_, skyport_model::now()) {
                Outcome::Reply { reply, to, persist } => (Some(reply), Some(to), persist),
                Outcome::Silent { why, persist } => {
                    tracing::debug!(mac = %req.mac, kind = ?req.kind, reason = %why, "DHCP request not answered");
                    (None, None, persist)
                }
            };
            let stored = if persist.is_empty() {
                None
            } else {
                Some(self.enqueue(persist).await)
            };
            (reply, to, stored)
        };
        if let Some(stored) = stored
            && !Self::stored(stored).await
        {
            return;
        }
        let (Some(reply), Some(to)) = (reply, to) else {
            inc(&self.metrics.dhcp_silent);
            return;
        };
        let bytes = match reply.encode(&req) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(mac = %req.mac, error = %e, "DHCP reply not sent");
                return;
            }
        };
        match sock.send_to(&bytes, to).await {
            Ok(_) => {
                inc(&self.metrics.dhcp_replies);
                let stage = match reply.kind {
                    MessageType::Offer => Some(Stage::DhcpOffer),
                    MessageType::Ack if req.kind != MessageType::Inform => Some(Stage::DhcpAck),
                    MessageType::Nak => Some(Stage::DhcpNak),
                    _ => None,
                };
                if let Some(stage) = stage.filter(|_| booting) {
                    let mut detail = client;
                    if !reply.yiaddr.is_unspecified() {
                        detail = format!("{detail} {}", reply.yiaddr);
                    }
                    if let Some(b) = &reply.boot {
                        detail = format!(
                            "{detail} {}",
                            match &b.file {
                                packet::BootFile::Tftp(f) => format!("tftp {f}"),
                                packet::BootFile::Url(u) => u.clone(),
                            }
                        );
                    }
                    if reply.kind == MessageType::Ack {
                        self.recorder.learn(reply.yiaddr, req.mac);
                    }
                    self.recorder.event(
                        stage,
                        Some(req.mac),
                        None,
                        detail,
                        reply.kind == MessageType::Nak,
                    );
                }
                tracing::info!(mac = %req.mac, kind = ?req.kind, reply = ?reply.kind,
                    ip = %reply.yiaddr, client = ?req.client,
                    file = ?reply.boot.as_ref().map(|b| &b.file), to = %to, "DHCP answered");
            }
            Err(e) => tracing::warn!(mac = %req.mac, to = %to, error = %e, "DHCP reply not sent"),
        }
    }

    /// Stores lease changes through the group-committing writer; false (logged) if they could
    /// not be stored, and then no reply may promise them.
    async fn enqueue(&self, w: Vec<Write>) -> Option<oneshot::Receiver<Result<(), String>>> {
        let (tx, rx) = oneshot::channel();
        if self.writes.send((w, tx)).await.is_err() {
            tracing::error!("lease writer gone: DHCP reply withheld");
            return None;
        }
        Some(rx)
    }

    /// Whether queued lease changes were stored; no reply may promise them otherwise. (The
    /// in-memory book keeps the change: the client asks again and gets the same answer, which
    /// is then stored.)
    async fn stored(rx: Option<oneshot::Receiver<Result<(), String>>>) -> bool {
        let Some(rx) = rx else {
            return false;
        };
        match rx.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "lease not stored: DHCP reply withheld");
                false
            }
            Err(_) => false,
        }
    }

    /// Writes queued lease changes, as many as are waiting in one batch.
    pub async fn write_leases(&self, cancel: CancellationToken) {
        let mut rx = self.writes_rx.lock().await;
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            let mut batch = vec![first];
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let ops: Vec<Write> = batch.iter().flat_map(|(w, _)| w.iter().cloned()).collect();
            let r = self.store.write(ops).await.map_err(|e| e.to_string());
            for (_, tx) in batch {
                // A requester that stopped waiting has nothing left to tell.
                let _gone = tx.send(r.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_made_up_macs_is_bounded_and_a_chatty_mac_cut_off() {
        let t0 = Instant::now();
        let mut l = Limiter {
            start: t0,
            counts: HashMap::new(),
        };
        let m = Mac::from_octets([2, 0, 0, 0, 0, 1]);
        assert_eq!(l.admit(m, t0), Admit::First);
        for _ in 1..PER_MAC {
            assert_eq!(l.admit(m, t0), Admit::Again);
        }
        assert_eq!(l.admit(m, t0), Admit::Refused);
        assert_eq!(l.admit(m, t0 + WINDOW), Admit::First, "a new window");
        for i in 0..TRACKED_MACS as u32 * 2 {
            let b = i.to_be_bytes();
            l.admit(
                Mac::from_octets([6, 0, b[0], b[1], b[2], b[3]]),
                t0 + WINDOW,
            );
        }
        assert_eq!(l.counts.len(), TRACKED_MACS);
    }
}
