//! DHCPv4 packets as the agent reads and writes them, over `dhcproto`: a request from the
//! wire is checked (size, BOOTP header, Ethernet hardware address, magic cookie, a message
//! type) and reduced to what the agent answers by ([`Request`]); a [`Reply`] is encoded back
//! with `dhcproto`.
//! Anything that does not pass is a [`PacketError`], never a panic.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    Architecture, DhcpOption, Flags, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Encodable, Encoder};
use skyport_model::Mac;

/// The fixed BOOTP header and the magic cookie (RFC 2131 §2).
const HEADER: usize = 236;
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The largest request read: an Ethernet frame's payload. Bigger datagrams are refused.
pub const MAX_PACKET: usize = 1500;
/// BOOTP's minimum message (RFC 1542 §2.1): some PXE ROMs drop shorter replies.
const MIN_REPLY: usize = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("{0} bytes: shorter than a DHCP header")]
    Truncated(usize),
    #[error("{0} bytes: larger than {MAX_PACKET}")]
    Oversized(usize),
    #[error("not a BOOTREQUEST (op {0})")]
    NotRequest(u8),
    #[error("hardware type {htype} with address length {hlen}: only Ethernet is served")]
    NotEthernet { htype: u8, hlen: u8 },
    #[error("no DHCP magic cookie")]
    NoCookie,
    #[error("no DHCP message type (a plain BOOTP request)")]
    NoMessageType,
    #[error("undecodable: {0}")]
    Malformed(String),
    #[error("reply for {mac} not encodable: {reason}")]
    Encode { mac: Mac, reason: String },
}

/// What kind of network boot a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A PXE ROM or UEFI PXE (`PXEClient` in option 60).
    Pxe,
    /// UEFI HTTP boot (`HTTPClient` in option 60).
    Http,
    /// iPXE itself (user class `iPXE`): it gets the boot script, never a binary again.
    Ipxe,
    /// Not a network boot client (an OS's DHCP client).
    Other,
}

/// A request, reduced to what the agent answers by.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: MessageType,
    pub xid: u32,
    pub mac: Mac,
    pub broadcast: bool,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub hops: u8,
    pub secs: u16,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    pub client: Client,
    /// Option 93, or the architecture named in option 60 (`PXEClient:Arch:00007:…`).
    pub arch: Option<u16>,
    /// Option 97 (the PXE client's GUID), echoed in PXE answers as the PXE spec asks.
    pub machine_id: Option<Vec<u8>>,
    /// Option 82, echoed to the relay (RFC 3046).
    /// Option 82's raw value.
    pub relay_info: Option<Vec<u8>>,
    /// Option 12, for logs.
    pub hostname: Option<String>,
}

/// A request's options by code, values of repeated codes concatenated (RFC 3396).
type Options = std::collections::BTreeMap<u8, Vec<u8>>;

/// Reads one options area (the options field, or `file`/`sname` when overloaded).
fn read_options(area: &[u8], out: &mut Options) -> Result<(), PacketError> {
    let mut i = 0;
    while let Some(&code) = area.get(i) {
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => return Ok(()),
            _ => {}
        }
        let len = *area
            .get(i + 1)
            .ok_or_else(|| PacketError::Malformed(format!("option {code} has no length")))?
            as usize;
        let data = area.get(i + 2..i + 2 + len).ok_or_else(|| {
            PacketError::Malformed(format!("option {code} ({len} bytes) runs past the packet"))
        })?;
        out.entry(code).or_default().extend_from_slice(data);
        i += 2 + len;
    }
    // No end marker: some clients stop at the end of the datagram.
    Ok(())
}

fn ipv4_at(o: &Options, code: u8) -> Result<Option<Ipv4Addr>, PacketError> {
    match o.get(&code) {
        None => Ok(None),
        Some(v) => <[u8; 4]>::try_from(v.as_slice())
            .map(|b| Some(Ipv4Addr::from(b)))
            .map_err(|_| PacketError::Malformed(format!("option {code} is not an IPv4 address"))),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The architecture in a `PXEClient:Arch:xxxxx:UNDI:yyyzzz` class identifier.
fn arch_in_class(class: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(class).ok()?;
    let mut parts = s.split(':');
    while let Some(p) = parts.next() {
        if p == "Arch" {
            return parts.next()?.parse().ok();
        }
    }
    None
}

impl Request {
    /// Reads a datagram received on a server port. The header is read by offset (RFC 2131
    /// §2) and the options by a bounds-checked walk: `dhcproto`'s option decoder asserts on
    /// lengths a hostile client chooses, so here it only encodes replies.
    pub fn parse(buf: &[u8]) -> Result<Request, PacketError> {
        if buf.len() < HEADER + COOKIE.len() {
            return Err(PacketError::Truncated(buf.len()));
        }
        if buf.len() > MAX_PACKET {
            return Err(PacketError::Oversized(buf.len()));
        }
        if buf[0] != 1 {
            return Err(PacketError::NotRequest(buf[0]));
        }
        if buf[1] != 1 || buf[2] != 6 {
            return Err(PacketError::NotEthernet {
                htype: buf[1],
                hlen: buf[2],
            });
        }
        if buf[HEADER..HEADER + 4] != COOKIE {
            return Err(PacketError::NoCookie);
        }
        let mut opts = Options::new();
        read_options(&buf[HEADER + 4..], &mut opts)?;
        // Option overload (RFC 2132 §9.3): `file`, then `sname`, hold more options.
        let overload = opts.get(&52).and_then(|v| v.first().copied()).unwrap_or(0);
        if overload & 1 != 0 {
            read_options(&buf[108..236], &mut opts)?;
        }
        if overload & 2 != 0 {
            read_options(&buf[44..108], &mut opts)?;
        }
        let kind = match opts.get(&53).map(Vec::as_slice) {
            None => return Err(PacketError::NoMessageType),
            Some([t @ 1..=8]) => MessageType::from(*t),
            Some(other) => {
                return Err(PacketError::Malformed(format!(
                    "message type {other:?} is not a DHCP message"
                )));
            }
        };
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&buf[28..34]);
        let class = opts.get(&60);
        // iPXE sends a bare "iPXE" in option 77; RFC 3004 clients prefix each class with its
        // length. Both contain the name.
        let ipxe = opts
            .get(&77)
            .is_some_and(|u| u.windows(4).any(|w| w == b"iPXE"));
        let client = match class {
            _ if ipxe => Client::Ipxe,
            Some(c) if c.starts_with(b"PXEClient") => Client::Pxe,
            Some(c) if c.starts_with(b"HTTPClient") => Client::Http,
            _ => Client::Other,
        };
        // Option 93 may list several architectures; the first is the client's own.
        let arch = match opts.get(&93).map(Vec::as_slice) {
            Some([a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
            _ => class.and_then(|c| arch_in_class(c)),
        };
        Ok(Request {
            kind,
            xid: be32(buf, 4),
            mac: Mac::from_octets(chaddr),
            broadcast: buf[10] & 0x80 != 0,
            ciaddr: Ipv4Addr::from(be32(buf, 12)),
            giaddr: Ipv4Addr::from(be32(buf, 24)),
            hops: buf[3],
            secs: u16::from_be_bytes([buf[8], buf[9]]),
            requested_ip: ipv4_at(&opts, 50)?,
            server_id: ipv4_at(&opts, 54)?,
            client,
            arch,
            machine_id: opts.get(&97).cloned(),
            relay_info: opts.get(&82).cloned(),
            hostname: opts
                .get(&12)
                .map(|h| String::from_utf8_lossy(h).chars().take(64).collect()),
        })
    }
}

/// Where a network boot client goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFile {
    /// A file on this agent's TFTP server.
    Tftp(String),
    /// A URL: an EFI binary for UEFI HTTP boot, or the boot script for iPXE.
    Url(String),
}

/// The boot part of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub file: BootFile,
    /// Where the file is (siaddr, and the PXE server name).
    pub next_server: Ipv4Addr,
    /// Option 60 in the answer: `PXEClient` or `HTTPClient`, as the client asked.
    pub class: &'static str,
}

/// An answer, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub kind: MessageType,
    pub yiaddr: Ipv4Addr,
    pub server_id: Ipv4Addr,
    pub boot: Option<Boot>,
    /// Address options (mask, router, DNS, domain, lease time, hostname), in code order.
    pub options: Vec<DhcpOption>,
    /// Human-readable reason of a NAK (option 56).
    pub message: Option<String>,
}

impl Reply {
    /// The datagram answering `req`.
    pub fn encode(&self, req: &Request) -> Result<Vec<u8>, PacketError> {
        let enc_err = |reason: String| PacketError::Encode {
            mac: req.mac,
            reason,
        };
        let mut msg = Message::new_with_id(
            req.xid,
            if self.kind == MessageType::Nak {
                Ipv4Addr::UNSPECIFIED
            } else {
                req.ciaddr
            },
            self.yiaddr,
            Ipv4Addr::UNSPECIFIED,
            req.giaddr,
            &req.mac.octets(),
        );
        msg.set_opcode(Opcode::BootReply);
        msg.set_hops(req.hops);
        // A NAK through a relay must be broadcast on the client's segment (RFC 2131 §4.3.2).
        let relayed = !req.giaddr.is_unspecified();
        if req.broadcast || (relayed && self.kind == MessageType::Nak) {
            msg.set_flags(Flags::default().set_broadcast());
        }
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(self.kind));
        opts.insert(DhcpOption::ServerIdentifier(self.server_id));
        for o in &self.options {
            opts.insert(o.clone());
        }
        if let Some(m) = &self.message {
            opts.insert(DhcpOption::Message(m.clone()));
        }
        // Relay agent information goes back to the relay that added it (RFC 3046), when it
        // fits one option.
        if let Some(r) = req
            .relay_info
            .as_ref()
            .filter(|r| relayed && r.len() <= 255)
        {
            opts.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::RelayAgentInformation,
                r.clone(),
            )));
        }
        if let Some(b) = &self.boot {
            let name = match &b.file {
                BootFile::Tftp(f) | BootFile::Url(f) => f.clone(),
            };
            let opts = msg.opts_mut();
            opts.insert(DhcpOption::ClassIdentifier(b.class.as_bytes().to_vec()));
            if b.class == "PXEClient" {
                // PXE vendor options: discovery control 8, "boot the file named in this
                // packet" (no boot server discovery, no menu), then the end marker.
                opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
            }
            // The PXE client's GUID: a type byte and 16 bytes (RFC 4578 §2.2).
            if let Some(m) = req.machine_id.as_ref().filter(|m| m.len() <= 17) {
                opts.insert(DhcpOption::ClientMachineIdentifier(m.clone()));
            }
            // The file field holds 127 bytes and a NUL; a longer name goes in option 67 only.
            if name.len() < 128 {
                msg.set_fname(name.as_bytes());
            } else {
                msg.opts_mut()
                    .insert(DhcpOption::BootfileName(name.as_bytes().to_vec()));
            }
            msg.set_siaddr(b.next_server);
            msg.set_sname_str(b.next_server.to_string());
        }
        let mut out = Vec::with_capacity(MIN_REPLY);
        msg.encode(&mut Encoder::new(&mut out))
            .map_err(|e| enc_err(e.to_string()))?;
        if out.len() < MIN_REPLY {
            out.resize(MIN_REPLY, 0);
        }
        Ok(out)
    }
}

/// The boot file for a client of `arch` (RFC 4578 §2.1 numbers; `None`: not served).
/// iPXE gets the boot script whatever it runs on, so it never loads itself again.
pub fn boot_file(
    client: Client,
    arch: Option<u16>,
    script: &str,
    ipxe_url: &str,
) -> Option<BootFile> {
    match (client, arch.unwrap_or(0)) {
        (Client::Ipxe, _) => Some(BootFile::Url(script.to_string())),
        (Client::Pxe, 0) => Some(BootFile::Tftp("undionly.kpxe".into())),
        (Client::Pxe, 7 | 9) => Some(BootFile::Tftp("ipxe.efi".into())),
        (Client::Pxe, 11) => Some(BootFile::Tftp(ARM64_EFI.into())),
        (Client::Http, 16) => Some(BootFile::Url(format!("{ipxe_url}/ipxe.efi"))),
        (Client::Http, 19) => Some(BootFile::Url(format!("{ipxe_url}/{ARM64_EFI}"))),
        _ => None,
    }
}

/// The iPXE binary for arm64 UEFI, when the site provides one in the iPXE directory (Debian's
/// `ipxe` package is x86 only).
pub const ARM64_EFI: &str = "ipxe-arm64.efi";

/// The iPXE binaries a boot answer can name.
pub const BINARIES: [&str; 3] = ["undionly.kpxe", "ipxe.efi", ARM64_EFI];

/// Architecture numbers as `dhcproto` names them, for tests and logs.
pub fn arch_name(arch: Option<u16>) -> String {
    match arch {
        None => "unknown".into(),
        Some(a) => format!("{:?}", Architecture::from(a)),
    }
}

/// A minimal request, for tests.
#[cfg(test)]
pub fn build_request(kind: MessageType, mac: Mac, xid: u32, opts: Vec<DhcpOption>) -> Vec<u8> {
    let mut msg = Message::new_with_id(
        xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac.octets(),
    );
    msg.opts_mut().insert(DhcpOption::MessageType(kind));
    for o in opts {
        msg.opts_mut().insert(o);
    }
    let mut out = Vec::new();
    // Encoding a message built from valid parts cannot fail; an empty buffer would be
    // refused by `parse` anyway.
    let _encoded = msg.encode(&mut Encoder::new(&mut out)).is_ok();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ipxe_discover() -> Vec<u8> {
        build_request(
            MessageType::Discover,
            Mac::from_octets([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            7,
            vec![
                DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
                DhcpOption::UserClass(b"iPXE".to_vec()),
                DhcpOption::MaxMessageSize(1472),
            ],
        )
    }

    #[test]
    fn what_the_header_says_is_checked_before_decoding() {
        let good = ipxe_discover();
        let r = Request::parse(&good).unwrap();
        assert_eq!((r.client, r.arch, r.xid), (Client::Ipxe, Some(0), 7));
        assert_eq!(r.mac.to_string(), "52:54:00:12:34:56");
        let mut b = good.clone();
        b[2] = 200; // an hlen past chaddr's 16 bytes made dhcproto index out of bounds
        assert!(matches!(
            Request::parse(&b),
            Err(PacketError::NotEthernet { .. })
        ));
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(Request::parse(&b), Err(PacketError::NotRequest(2)));
        let mut b = good.clone();
        b[236] = 0;
        assert_eq!(Request::parse(&b), Err(PacketError::NoCookie));
        assert_eq!(
            Request::parse(&good[..100]),
            Err(PacketError::Truncated(100))
        );
        let mut big = good.clone();
        big.resize(MAX_PACKET + 1, 0);
        assert!(matches!(
            Request::parse(&big),
            Err(PacketError::Oversized(_))
        ));
        // BOOTP (no message type) is not served.
        let mut bootp = good[..240].to_vec();
        bootp.push(255);
        assert_eq!(Request::parse(&bootp), Err(PacketError::NoMessageType));
    }

    #[test]
    fn options_overloaded_into_the_file_field_are_read() {
        let mut b = build_request(
            MessageType::Discover,
            Mac::from_octets([2, 0, 0, 0, 0, 1]),
            1,
            vec![DhcpOption::OptionOverload(1)],
        );
        // Option 60 in the `file` field (offset 108), then the end marker.
        let class = b"PXEClient:Arch:00007:UNDI:003000";
        b[108] = 60;
        b[109] = class.len() as u8;
        b[110..110 + class.len()].copy_from_slice(class);
        b[110 + class.len()] = 255;
        let r = Request::parse(&b).unwrap();
        assert_eq!((r.client, r.arch), (Client::Pxe, Some(7)));
    }

    #[test]
    fn relayed_naks_are_broadcast_and_relay_information_goes_back_to_relays_only() {
        let mut req = Request::parse(&ipxe_discover()).unwrap();
        req.relay_info = Some(vec![1, 4, b'p', b'o', b'r', b't']);
        let nak = Reply {
            kind: MessageType::Nak,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            server_id: Ipv4Addr::new(10, 0, 0, 1),
            boot: None,
            options: vec![],
            message: Some("no".into()),
        };
        let direct = nak.encode(&req).unwrap();
        assert_eq!(direct[10] & 0x80, 0, "a direct client's own flag");
        assert!(
            !direct.windows(2).any(|w| w == [82, 6]),
            "no option 82 without a relay"
        );
        req.giaddr = Ipv4Addr::new(10, 2, 0, 1);
        let relayed = nak.encode(&req).unwrap();
        assert_eq!(relayed[10] & 0x80, 0x80);
        assert!(relayed.windows(2).any(|w| w == [82, 6]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_datagram_parses_or_is_refused_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..1600)
        ) {
            if let Ok(r) = Request::parse(&bytes) {
                let _ = Reply {
                    kind: MessageType::Offer,
                    yiaddr: Ipv4Addr::new(10, 0, 0, 5),
                    server_id: Ipv4Addr::new(10, 0, 0, 1),
                    boot: None,
                    options: vec![],
                    message: None,
                }.encode(&r);
            }
        }

        #[test]
        fn damaged_requests_never_panic_and_replies_always_encode(
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..24),
            cut in 0usize..400,
            extra in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut b = ipxe_discover();
            // Keep the header valid so the options decoder is what is exercised.
            for (at, v) in flips {
                let at = 240 + at % (b.len().saturating_sub(240).max(1));
                if at < b.len() { b[at] = v; }
            }
            b.truncate(240 + cut % (b.len() - 239));
            b.extend_from_slice(&extra);
            if let Ok(r) = Request::parse(&b) {
                let reply = Reply {
                    kind: MessageType::Ack,
                    yiaddr: Ipv4Addr::new(10, 0, 0, 5),
                    server_id: Ipv4Addr::new(10, 0, 0, 1),
                    boot: Some(Boot {
                        file: BootFile::Url("http://10.0.0.1:8080/boot/v1/bootscript?mac=x".repeat(4)),
                        next_server: Ipv4Addr::new(10, 0, 0, 1),
                        class: "PXEClient",
                    }),
                    options: vec![DhcpOption::Hostname("x1000c0s0b0n0".into())],
                    message: Some("m".into()),
                };
                let out = reply.encode(&r).unwrap();
                prop_assert!(out.len() >= MIN_REPLY);
            }
        }
    }
}
