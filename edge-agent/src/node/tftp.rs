//! A read-only TFTP server (RFC 1350, with the option extension of RFC 2347 and the
//! `blksize`, `tsize` and `timeout` options of RFC 2348/2349) for the iPXE binaries PXE
//! firmware loads. Only plain file names directly under its root are served (no directories,
//! no `..`, no absolute paths; links the admin placed in the root are followed); transfers are bounded in number, in file size
//! and in how long a silent client is waited for.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, inc};

/// Transfers at once; a request beyond them gets a "busy" error and retries.
pub const MAX_SESSIONS: usize = 64;
/// The largest file served (iPXE binaries are about 1 MiB).
pub const MAX_FILE: u64 = 64 << 20;
/// Largest block offered: fits an Ethernet frame with IP and UDP headers.
const MAX_BLOCK: usize = 1468;
/// Retransmissions of one packet before the client is given up on.
const RETRIES: u32 = 5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest per-packet timeout a client may ask for (seconds).
const MAX_TIMEOUT_S: u64 = 5;
/// Transfers from one address at once (firmware fetches one file at a time, plus a probe).
const PER_CLIENT: usize = 4;
/// The longest a transfer may take, however the client paces it.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(300);
/// Files kept in memory for concurrent transfers (one copy each, whatever the sessions).
const CACHED_FILES: usize = 16;

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TftpError {
    #[error("{0} bytes: not a TFTP request")]
    Short(usize),
    #[error("opcode {0}: only read requests are served")]
    NotRead(u16),
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("{name:?}: {why}")]
    Refused { name: String, why: &'static str },
    #[error("{0:?}: no such file")]
    NotFound(String),
}

impl TftpError {
    /// The TFTP error code and message sent back.
    fn wire(&self) -> (u16, String) {
        match self {
            TftpError::NotFound(_) => (1, "File not found".into()),
            TftpError::Refused { .. } | TftpError::NotRead(WRQ) => (2, "Access violation".into()),
            _ => (4, "Illegal TFTP operation".into()),
        }
    }
}

/// A read request with the options the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub file: String,
    pub blksize: Option<usize>,
    pub tsize: bool,
    pub timeout: Option<Duration>,
}

/// Reads an RRQ (`opcode filename NUL mode NUL [option NUL value NUL]…`).
pub fn parse_request(buf: &[u8]) -> Result<ReadRequest, TftpError> {
    if buf.len() < 4 {
        return Err(TftpError::Short(buf.len()));
    }
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    if op != RRQ {
        return Err(TftpError::NotRead(op));
    }
    let body = &buf[2..];
    if body.last() != Some(&0) {
        return Err(TftpError::Malformed("fields are not NUL-terminated"));
    }
    let mut fields = body[..body.len() - 1].split(|b| *b == 0);
    let file = fields.next().ok_or(TftpError::Malformed("no file name"))?;
    let mode = fields.next().ok_or(TftpError::Malformed("no mode"))?;
    let file = std::str::from_utf8(file)
        .map_err(|_| TftpError::Malformed("file name is not UTF-8"))?
        .to_string();
    if !(mode.eq_ignore_ascii_case(b"octet") || mode.eq_ignore_ascii_case(b"netascii")) {
        return Err(TftpError::Malformed("mode must be octet or netascii"));
    }
    let mut req = ReadRequest {
        file,
        blksize: None,
        tsize: false,
        timeout: None,
    };
    while let Some(name) = fields.next() {
        let value = fields
            .next()
            .ok_or(TftpError::Malformed("option without a value"))?;
        let value = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        // Unknown or unparsable options are left out of the OACK (RFC 2347).
        match (name.to_ascii_lowercase().as_slice(), value) {
            (b"blksize", Some(v)) if (8..=65464).contains(&v) => {
                req.blksize = Some((v as usize).min(MAX_BLOCK));
            }
            (b"tsize", Some(_)) => req.tsize = true,
            // A long timeout lets one request hold a session for minutes: longer ones are
            // left out of the OACK, and the default applies (RFC 2349 allows it).
            (b"timeout", Some(v)) if (1..=MAX_TIMEOUT_S).contains(&v) => {
                req.timeout = Some(Duration::from_secs(v));
            }
            _ => {}
        }
    }
    Ok(req)
}

/// The file `name` names under `root`, if it may be served.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, TftpError> {
    let refused = |why| TftpError::Refused {
        name: name.to_string(),
        why,
    };
    // Firmware often asks for "/undionly.kpxe": a leading slash means the root.
    let bare = name.trim_start_matches('/');
    if bare.is_empty()
        || bare.len() > 128
        || bare.starts_with('.')
        || !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(refused("only plain file names in the TFTP root are served"));
    }
    // A symbolic link the admin put in the root is followed (Debian's ipxe.efi links to
    // /boot): what the client names can only be a file directly in the root.
    let path = root.join(bare);
    if !path.is_file() {
        return Err(TftpError::NotFound(name.to_string()));
    }
    Ok(path)
}

fn error_packet(code: u16, msg: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + msg.len());
    p.extend_from_slice(&ERROR.to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    p
}

/// How a transfer ended, for metrics and the flight recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done {
        bytes: u64,
    },
    /// The client stopped (an error packet, e.g. after learning the size) or went silent.
    Aborted {
        bytes: u64,
        why: String,
    },
    Refused(String),
}

/// Hears of every transfer: client address, file name, how it ended.
pub type OnTransfer = Arc<dyn Fn(Ipv4Addr, &str, &Ended) + Send + Sync>;

pub struct TftpServer {
    root: PathBuf,
    sockets: Vec<(Ipv4Addr, Arc<UdpSocket>)>,
    metrics: Arc<Metrics>,
    sessions: Arc<Semaphore>,
    per_client: std::sync::Mutex<std::collections::HashMap<Ipv4Addr, usize>>,
    /// File bytes by path, with the modification time and length they were read at.
    files: std::sync::Mutex<std::collections::HashMap<PathBuf, CachedFile>>,
    on_transfer: OnTransfer,
}

impl TftpServer {
    /// Binds `port` on each of `addrs`.
    pub async fn open(
        addrs: &[Ipv4Addr],
        port: u16,
        root: PathBuf,
        metrics: Arc<Metrics>,
        on_transfer: OnTransfer,
    ) -> std::io::Result<Arc<Self>> {
        let mut sockets = Vec::new();
        for a in addrs {
            let s = UdpSocket::bind(SocketAddrV4::new(*a, port))
                .await
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("binding TFTP on {a}:{port}: {e}"))
                })?;
            tracing::info!(addr = %a, port, root = %root.display(), "TFTP listening");
            sockets.push((*a, Arc::new(s)));
        }
        Ok(Arc::new(TftpServer {
            root,
            sockets,
            metrics,
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            per_client: std::sync::Mutex::new(std::collections::HashMap::new()),
            files: std::sync::Mutex::new(std::collections::HashMap::new()),
            on_transfer,
        }))
    }

    /// The bound addresses (port 0 in tests picks one).
    #[cfg(test)]
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|(_, s)| s.local_addr().ok())
            .collect()
    }

    /// Serves read requests until cancelled; transfers in flight are abandoned.
    pub async fn serve(self: &Arc<Self>, cancel: CancellationToken) {
        let mut loops = JoinSet::new();
        for (local, sock) in &self.sockets {
            let (me, sock, local, cancel) = (self.clone(), sock.clone(), *local, cancel.clone());
            loops.spawn(async move { me.listen(local, sock, cancel).await });
        }
        while loops.join_next().await.is_some() {}
    }

    async fn listen(
        self: Arc<Self>,
        local: Ipv4Addr,
        sock: Arc<UdpSocket>,
        cancel: CancellationToken,
    ) {
        let mut buf = vec![0u8; 1024];
        let mut transfers = JoinSet::new();
        loop {
            let got = tokio::select! {
                _ = cancel.cancelled() => return,
                r = sock.recv_from(&mut buf) => r,
            };
            while transfers.try_join_next().is_some() {}
            let (n, SocketAddr::V4(peer)) = (match got {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "TFTP receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }) else {
                continue;
            };
            let req = parse_request(&buf[..n]).and_then(|r| {
                let path = resolve(&self.root, &r.file)?;
                Ok((r, path))
            });
            let (req, path) = match req {
                Ok(v) => v,
                Err(e) => {
                    inc(&self.metrics.tftp_refused);
                    tracing::info!(client = %peer, error = %e, "TFTP request refused");
                    let (code, msg) = e.wire();
                    let _sent = sock.send_to(&error_packet(code, &msg), peer).await;
                    let name = parse_request(&buf[..n]).map(|r| r.file).unwrap_or_default();
                    (self.on_transfer)(*peer.ip(), &name, &Ended::Refused(e.to_string()));
                    continue;
                }
            };
            let ip = *peer.ip();
            let admitted = self.per_client.lock().is_ok_and(|mut m| {
                let n = m.entry(ip).or_insert(0);
                *n += 1;
                *n <= PER_CLIENT
            });
            let client = ClientSlot(&self.per_client, ip);
            let permit = if admitted {
                self.sessions.clone().try_acquire_owned().ok()
            } else {
                None
            };
            let Some(permit) = permit else {
                drop(client);
                inc(&self.metrics.tftp_refused);
                let _sent = sock
                    .send_to(&error_packet(0, "Server busy, try again"), peer)
                    .await;
                continue;
            };
            let me = self.clone();
            // The count moves to the transfer task, whose own guard gives it back.
            std::mem::forget(client);
            transfers.spawn(async move {
                let slot = ClientSlot(&me.per_client, ip);
                let ended = match tokio::time::timeout(
                    TRANSFER_DEADLINE,
                    me.transfer(local, peer, &req, &path),
                )
                .await
                {
                    Ok(e) => e,
                    Err(_) => Ended::Aborted {
                        bytes: 0,
                        why: format!("not done in {} s", TRANSFER_DEADLINE.as_secs()),
                    },
                };
                drop(slot);
                match &ended {
                    Ended::Done { bytes } => {
                        inc(&me.metrics.tftp_transfers);
                        tracing::info!(client = %peer, file = %req.file, bytes, "TFTP transfer done");
                    }
                    Ended::Aborted { bytes, why } => {
                        inc(&me.metrics.tftp_aborted);
                        tracing::info!(client = %peer, file = %req.file, bytes, reason = %why, "TFTP transfer ended early");
                    }
                    Ended::Refused(_) => {}
                }
                (me.on_transfer)(*peer.ip(), &req.file, &ended);
                drop(permit);
            });
        }
    }

    /// One transfer from its own port (the transfer ID), lock-step with the client's ACKs.
    async fn transfer(
        &self,
        local: Ipv4Addr,
        peer: SocketAddrV4,
        req: &ReadRequest,
        path: &Path,
    ) -> Ended {
        let aborted = |bytes: u64, why: String| Ended::Aborted { bytes, why };
        let data = match self.read(path).await {
            Ok(d) => d,
            Err(e) => {
                // The client is told, instead of waiting for a file that will not come.
                if let Ok(s) = UdpSocket::bind(SocketAddrV4::new(local, 0)).await {
                    let _sent = s.send_to(&error_packet(0, "File not readable"), peer).await;
                }
                return Ended::Refused(e);
            }
        };
        let sock = match UdpSocket::bind(SocketAddrV4::new(local, 0)).await {
            Ok(s) => s,
            Err(e) => return aborted(0, format!("no transfer socket: {e}")),
        };
        if let Err(e) = sock.connect(peer).await {
            return aborted(0, format!("connecting to the client: {e}"));
        }
        let block = req.blksize.unwrap_or(512);
        let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut oack = Vec::new();
        if let Some(b) = req.blksize {
            oack.push(("blksize", b.to_string()));
        }
        if req.tsize {
            oack.push(("tsize", data.len().to_string()));
        }
        if let Some(t) = req.timeout {
            oack.push(("timeout", t.as_secs().to_string()));
        }
        if !oack.is_empty() {
            let mut p = OACK.to_be_bytes().to_vec();
            for (k, v) in oack {
                p.extend_from_slice(k.as_bytes());
                p.push(0);
                p.extend_from_slice(v.as_bytes());
                p.push(0);
            }
            if let Err(why) = self.lockstep(&sock, &p, 0, timeout).await {
                return aborted(0, why);
            }
        }
        let mut sent = 0u64;
        let mut n: u16 = 1;
        let mut offset = 0usize;
        loop {
            let end = (offset + block).min(data.len());
            let mut p = Vec::with_capacity(4 + end - offset);
            p.extend_from_slice(&DATA.to_be_bytes());
            p.extend_from_slice(&n.to_be_bytes());
            p.extend_from_slice(&data[offset..end]);
            if let Err(why) = self.lockstep(&sock, &p, n, timeout).await {
                return aborted(sent, why);
            }
            let len = (end - offset) as u64;
            sent += len;
            self.metrics
                .tftp_bytes
                .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            if end - offset < block {
                return Ended::Done { bytes: sent };
            }
            offset = end;
            // Block numbers wrap past 65535, as iPXE and EDK2 expect for big files.
            n = n.wrapping_add(1);
        }
    }

    /// Sends `packet` until the client acknowledges block `n`; an error says why it gave up.
    async fn lockstep(
        &self,
        sock: &UdpSocket,
        packet: &[u8],
        n: u16,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut buf = [0u8; 516];
        for _ in 0..=RETRIES {
            sock.send(packet)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let got = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await;
                let len = match got {
                    Err(_) => break, // timed out: send again
                    Ok(Err(e)) => return Err(format!("receiving: {e}")),
                    Ok(Ok(len)) => len,
                };
                if len < 4 {
                    continue;
                }
                let op = u16::from_be_bytes([buf[0], buf[1]]);
                let arg = u16::from_be_bytes([buf[2], buf[3]]);
                match op {
                    ACK if arg == n => return Ok(()),
                    // A duplicate ACK of the previous block is not answered (the Sorcerer's
                    // Apprentice bug of RFC 1350 doubles every packet otherwise).
                    ACK => continue,
                    ERROR => {
                        let msg = String::from_utf8_lossy(&buf[4..len]);
                        return Err(format!(
                            "client error {arg}: {}",
                            msg.trim_end_matches('\0')
                        ));
                    }
                    _ => continue,
                }
            }
        }
        Err(format!("no acknowledgement after {} tries", RETRIES + 1))
    }
}

/// A file's bytes and the modification time they were read at.
type CachedFile = (std::time::SystemTime, Arc<Vec<u8>>);

/// Gives a client's transfer slot back when dropped.
struct ClientSlot<'a>(
    &'a std::sync::Mutex<std::collections::HashMap<Ipv4Addr, usize>>,
    Ipv4Addr,
);

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.lock()
            && let Some(n) = m.get_mut(&self.1)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

impl TftpServer {
    /// The file's bytes, shared by concurrent transfers while it is unchanged on disk.
    async fn read(&self, path: &Path) -> Result<Arc<Vec<u8>>, String> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_FILE {
            return Err(format!("{}: larger than {MAX_FILE} bytes", path.display()));
        }
        let modified = meta
            .modified()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(f) = self.files.lock()
            && let Some((m, bytes)) = f.get(path)
            && *m == modified
            && bytes.len() as u64 == meta.len()
        {
            return Ok(bytes.clone());
        }
        let bytes = Arc::new(
            tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
        if let Ok(mut f) = self.files.lock() {
            if f.len() >= CACHED_FILES {
                f.clear();
            }
            f.insert(path.to_path_buf(), (modified, bytes.clone()));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
