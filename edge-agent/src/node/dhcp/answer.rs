//! What the agent answers a DHCP request, decided without sockets: proxyDHCP (boot
//! information only, beside the site's own DHCP server) or authoritative (addresses from the
//! inventory's reservations and the configured ranges, plus boot information). The decision
//! updates the in-memory lease book and says what must be persisted before the reply goes out.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, RwLock};

use dhcproto::v4::{DhcpOption, MessageType};
use skyport_inventory::reads::InterfaceAddresses;
use skyport_model::Mac;
use skyport_store::Write;

use super::leases::Leases;
use super::packet::{Boot, BootFile, Client, Reply, Request, boot_file};
use super::{Mode, Settings, Subnet, Unknown};

/// How long an offered address is held for the client that was offered it.
const OFFER_HOLD: i64 = 60;
/// How long a range found full is not scanned again (seconds).
const EXHAUSTED_FOR: i64 = 5;

/// The inventory as the DHCP server sees it: each interface's component and reserved
/// addresses. An address reserved for two MACs is given to neither.
#[derive(Debug, Default)]
pub struct Hosts {
    by_mac: HashMap<Mac, (String, Vec<Ipv4Addr>)>,
    owner: HashMap<Ipv4Addr, Mac>,
    conflicts: HashSet<Ipv4Addr>,
}

impl Hosts {
    pub fn build(list: Vec<InterfaceAddresses>) -> Hosts {
        let mut h = Hosts::default();
        for i in list {
            for ip in &i.ipv4 {
                match h.owner.get(ip) {
                    Some(m) if *m != i.mac => {
                        h.conflicts.insert(*ip);
                    }
                    _ => {
                        h.owner.insert(*ip, i.mac);
                    }
                }
            }
            h.by_mac.insert(i.mac, (i.xname, i.ipv4));
        }
        for ip in &h.conflicts {
            h.owner.remove(ip);
            tracing::warn!(ip = %ip, "an address is reserved for more than one MAC in the inventory: given to none");
        }
        h
    }

    pub fn knows(&self, mac: &Mac) -> bool {
        self.by_mac.contains_key(mac)
    }

    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    fn xname(&self, mac: &Mac) -> Option<&str> {
        self.by_mac
            .get(mac)
            .map(|(x, _)| x.as_str())
            .filter(|x| !x.is_empty())
    }

    fn reserved_in(&self, mac: &Mac, s: &Subnet) -> Option<Ipv4Addr> {
        self.by_mac
            .get(mac)?
            .1
            .iter()
            .copied()
            .find(|ip| s.network.contains(ip))
    }
}

/// Which server port a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// 67: broadcast (and relayed) requests.
    Dhcp,
    /// 4011: a PXE client's unicast request to a proxyDHCP server.
    Proxy,
}

/// A request as received.
pub struct Incoming<'a> {
    pub req: &'a Request,
    pub port: Port,
    /// This agent's address on the interface it came in on.
    pub local: Ipv4Addr,
    pub src: SocketAddrV4,
}

#[derive(Debug)]
pub enum Outcome {
    Reply {
        reply: Reply,
        to: SocketAddrV4,
        /// Lease changes that must be stored before the reply is sent.
        persist: Vec<Write>,
    },
    /// Nothing sent; a lease change (release, decline) may still need storing.
    Silent { why: String, persist: Vec<Write> },
}

fn silent(why: impl Into<String>) -> Outcome {
    Outcome::Silent {
        why: why.into(),
        persist: Vec::new(),
    }
}

/// The decision engine, shared by every socket of the service.
pub struct Engine {
    settings: Arc<Settings>,
    hosts: RwLock<Arc<Hosts>>,
    leases: Mutex<Leases>,
    /// Servers whose identifier a client named instead of ours (authoritative mode), with
    /// when they were last reported.
    foreign: Mutex<HashMap<Ipv4Addr, i64>>,
    /// Ranges found full, until when.
    exhausted: Mutex<HashMap<ipnet::Ipv4Net, i64>>,
}

const BROADCAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);

impl Engine {
    pub fn new(settings: Arc<Settings>, leases: Leases) -> Self {
        Engine {
            settings,
            hosts: RwLock::new(Arc::new(Hosts::default())),
            leases: Mutex::new(leases),
            foreign: Mutex::new(HashMap::new()),
            exhausted: Mutex::new(HashMap::new()),
        }
    }

    /// Puts a new view of the inventory in service.
    pub fn set_hosts(&self, h: Hosts) {
        if let Ok(mut cur) = self.hosts.write() {
            *cur = Arc::new(h);
        }
    }

    pub fn hosts(&self) -> Arc<Hosts> {
        self.hosts.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// Every lease.
    #[cfg(test)]
    pub fn leases(&self) -> Vec<super::leases::Lease> {
        self.leases.lock().map(|l| l.all()).unwrap_or_default()
    }

    /// Servers other than this one that clients chose (authoritative mode only).
    #[cfg(test)]
    pub fn foreign_servers(&self) -> Vec<Ipv4Addr> {
        self.foreign
            .lock()
            .map(|f| f.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Where a reply to `inc` goes (RFC 2131 §4.1).
    fn destination(inc: &Incoming, kind: MessageType) -> SocketAddrV4 {
        let r = inc.req;
        if inc.port == Port::Proxy {
            return inc.src;
        }
        if !r.giaddr.is_unspecified() {
            return SocketAddrV4::new(r.giaddr, 67);
        }
        if kind != MessageType::Nak && !r.ciaddr.is_unspecified() {
            return SocketAddrV4::new(r.ciaddr, 68);
        }
        // Unicast to an address the client does not have yet would need an ARP entry the
        // agent cannot add; broadcasting is always allowed.
        BROADCAST
    }

    /// The boot part of an answer to a network boot client, if it gets one.
    fn boot(&self, inc: &Incoming) -> Option<Boot> {
        let r = inc.req;
        let s = &self.settings;
        let script = format!("{}/boot/v1/bootscript?mac={}", s.node_url, r.mac);
        let file = boot_file(
            r.client,
            r.arch,
            &script,
            &format!("{}/edge/v1/ipxe", s.node_url),
        )?;
        if let BootFile::Tftp(f) = &file
            && !s.binaries.contains(f.as_str())
        {
            tracing::warn!(mac = %r.mac, file = %f, dir = %s.ipxe_dir.display(),
                "a client needs an iPXE binary the iPXE directory lacks");
            return None;
        }
        Some(Boot {
            file,
            next_server: inc.local,
            class: if r.client == Client::Http {
                "HTTPClient"
            } else {
                "PXEClient"
            },
        })
    }

    /// Decides the answer to `inc` at Unix time `now`.
    pub fn answer(&self, inc: &Incoming, now: i64) -> Outcome {
        let r = inc.req;
        let hosts = self.hosts();
        let known = hosts.knows(&r.mac);
        if !known && self.settings.unknown == Unknown::Ignore {
            return silent("MAC not in the inventory (unknown clients are ignored)");
        }
        match self.settings.mode {
            Mode::Proxy => self.proxy(inc),
            Mode::Authoritative => self.authoritative(inc, &hosts, now),
        }
    }

    fn proxy(&self, inc: &Incoming) -> Outcome {
        let r = inc.req;
        if r.client == Client::Other {
            return silent("not a network boot client");
        }
        let kind = match (inc.port, r.kind) {
            (Port::Dhcp, MessageType::Discover) => MessageType::Offer,
            (Port::Proxy, MessageType::Request | MessageType::Discover) => MessageType::Ack,
            // A request that names this agent on port 67 (some PXE ROMs do).
            (Port::Dhcp, MessageType::Request) if r.server_id == Some(inc.local) => {
                MessageType::Ack
            }
            _ => return silent("proxyDHCP answers DISCOVER on 67 and REQUEST on 4011 only"),
        };
        let Some(boot) = self.boot(inc) else {
            return silent(format!(
                "no boot file for a {:?} client of architecture {}",
                r.client,
                super::packet::arch_name(r.arch)
            ));
        };
        Outcome::Reply {
            reply: Reply {
                kind,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                server_id: inc.local,
                boot: Some(boot),
                options: Vec::new(),
                message: None,
            },
            to: Self::destination(inc, kind),
            persist: Vec::new(),
        }
    }

    /// The subnet a request is for: its relay's, or the receiving interface's.
    fn subnet(&self, inc: &Incoming) -> Option<&Subnet> {
        let at = if inc.req.giaddr.is_unspecified() {
            inc.local
        } else {
            inc.req.giaddr
        };
        self.settings
            .subnets
            .iter()
            .find(|s| s.network.contains(&at))
    }

    /// Whether `ip` of `s` may be handed out at all (not the network, broadcast, router or
    /// this agent's own address).
    fn usable(s: &Subnet, ip: Ipv4Addr, inc: &Incoming) -> bool {
        s.network.contains(&ip)
            && ip != s.network.network()
            && ip != s.network.broadcast()
            && Some(ip) != s.router
            && ip != inc.local
            && ip != inc.req.giaddr
    }

    /// The address `mac` gets in `s`, or why none.
    fn choose(
        &self,
        inc: &Incoming,
        s: &Subnet,
        hosts: &Hosts,
        leases: &Leases,
        now: i64,
    ) -> Result<Ipv4Addr, String> {
        let mac = inc.req.mac;
        if let Some(ip) = hosts.reserved_in(&mac, s) {
            if !Self::usable(s, ip, inc) {
                return Err(format!(
                    "its reserved address {ip} is not assignable in {}",
                    s.network
                ));
            }
            if hosts.conflicts.contains(&ip) {
                return Err(format!(
                    "its reserved address {ip} is reserved for another MAC too"
                ));
            }
            return match leases.holder(ip, now) {
                Some(l) if l.mac != Some(mac) => Err(format!(
                    "its reserved address {ip} is held by {} until {} ({:?})",
                    l.mac
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "nobody (declined)".into()),
                    l.expires,
                    l.state
                )),
                Some(l) if l.state == super::leases::State::Declined => {
                    Err(format!("its reserved address {ip} was declined as in use"))
                }
                _ => Ok(ip),
            };
        }
        let Some((lo, hi)) = s.range else {
            return Err(format!(
                "no reservation in {} and no range for other clients",
                s.network
            ));
        };
        let in_range = |ip: Ipv4Addr| (u32::from(lo)..=u32::from(hi)).contains(&u32::from(ip));
        let free = |ip: Ipv4Addr| {
            in_range(ip)
                && Self::usable(s, ip, inc)
                && !hosts.owner.contains_key(&ip)
                && !hosts.conflicts.contains(&ip)
                && leases.free_for(ip, mac, now)
        };
        if let Some(ip) = leases.of_mac(mac, now).filter(|ip| free(*ip)) {
            return Ok(ip);
        }
        // The address it asks for (INIT-REBOOT), or holds (RENEW, REBIND), if still free.
        let r = inc.req;
        let hint = r
            .requested_ip
            .or((!r.ciaddr.is_unspecified()).then_some(r.ciaddr));
        if let Some(ip) = hint.filter(|ip| free(*ip)) {
            return Ok(ip);
        }
        // A full range is not scanned again for every request of a flood: it is known
        // exhausted for a few seconds.
        let full = || format!("the range {lo}-{hi} is exhausted");
        if self
            .exhausted
            .lock()
            .is_ok_and(|e| e.get(&s.network).is_some_and(|until| *until > now))
        {
            return Err(full());
        }
        match (u32::from(lo)..=u32::from(hi))
            .map(Ipv4Addr::from)
            .find(|ip| free(*ip))
        {
            Some(ip) => Ok(ip),
            None => {
                if let Ok(mut e) = self.exhausted.lock() {
                    e.insert(s.network, now + EXHAUSTED_FOR);
                }
                Err(full())
            }
        }
    }

    fn address_options(s: &Subnet, hosts: &Hosts, mac: &Mac, lease: bool) -> Vec<DhcpOption> {
        let mut o = vec![DhcpOption::SubnetMask(s.network.netmask())];
        if let Some(r) = s.router {
            o.push(DhcpOption::Router(vec![r]));
        }
        if !s.dns.is_empty() {
            o.push(DhcpOption::DomainNameServer(s.dns.clone()));
        }
        if let Some(d) = &s.domain {
            o.push(DhcpOption::DomainName(d.clone()));
        }
        if let Some(x) = hosts.xname(mac) {
            o.push(DhcpOption::Hostname(x.to_string()));
        }
        if lease {
            let t = s.lease_time;
            o.push(DhcpOption::AddressLeaseTime(t));
            o.push(DhcpOption::Renewal(t / 2));
            o.push(DhcpOption::Rebinding(t / 8 * 7));
        }
        o
    }

    fn authoritative(&self, inc: &Incoming, hosts: &Hosts, now: i64) -> Outcome {
        let r = inc.req;
        if inc.port == Port::Proxy {
            return silent("port 4011 is served in proxy mode only");
        }
        let Some(s) = self.subnet(inc) else {
            return silent(format!(
                "no configured subnet holds {}",
                if r.giaddr.is_unspecified() {
                    inc.local
                } else {
                    r.giaddr
                }
            ));
        };
        let Ok(mut leases) = self.leases.lock() else {
            return silent("lease book unavailable");
        };
        let mine = r.server_id.is_none_or(|id| id == inc.local);
        let reply = |kind: MessageType, yiaddr: Ipv4Addr, lease: bool, persist: Vec<Write>| {
            let boot = if kind == MessageType::Nak {
                None
            } else {
                self.boot(inc)
            };
            Outcome::Reply {
                reply: Reply {
                    kind,
                    yiaddr,
                    server_id: inc.local,
                    boot,
                    options: if kind == MessageType::Nak {
                        Vec::new()
                    } else {
                        Self::address_options(s, hosts, &r.mac, lease)
                    },
                    message: None,
                },
                to: Self::destination(inc, kind),
                persist,
            }
        };
        let nak = |why: String| {
            tracing::info!(mac = %r.mac, reason = %why, "DHCPNAK");
            let mut o = reply(MessageType::Nak, Ipv4Addr::UNSPECIFIED, false, Vec::new());
            if let Outcome::Reply { reply, .. } = &mut o {
                reply.message = Some(why);
            }
            o
        };
        match r.kind {
            MessageType::Discover => match self.choose(inc, s, hosts, &leases, now) {
                Ok(ip) => {
                    leases.offer(ip, r.mac, now, now + OFFER_HOLD);
                    reply(MessageType::Offer, ip, true, Vec::new())
                }
                Err(why) => {
                    tracing::warn!(mac = %r.mac, subnet = %s.network, reason = %why, "no address offered");
                    silent(why)
                }
            },
            MessageType::Request if !mine => {
                // The client took another server's offer: ours is withdrawn. In authoritative
                // mode a second server on the segment is a misconfiguration worth shouting about.
                if let Some(id) = r.server_id {
                    self.note_foreign(id, r.mac, now);
                }
                leases.withdraw_offer(r.mac, now);
                silent("the client chose another server")
            }
            MessageType::Request => {
                let want = r
                    .requested_ip
                    .or((!r.ciaddr.is_unspecified()).then_some(r.ciaddr));
                let Some(want) = want else {
                    return silent("a REQUEST naming no address");
                };
                if !s.network.contains(&want) {
                    return nak(format!("{want} is not on this network ({})", s.network));
                }
                match self.choose(inc, s, hosts, &leases, now) {
                    Ok(ip) if ip == want => {
                        let expires = now + i64::from(s.lease_time);
                        match leases.bind(ip, r.mac, expires) {
                            Ok(w) => reply(MessageType::Ack, ip, true, vec![w]),
                            Err(e) => silent(format!("lease not recorded: {e}")),
                        }
                    }
                    Ok(ip) => nak(format!("{want} is not this client's address ({ip} is)")),
                    // A client this server has nothing for that asks on its own (INIT-REBOOT
                    // without a reservation) is left to whoever it knows (RFC 2131 §4.3.2).
                    Err(why) if r.server_id.is_none() && !hosts.knows(&r.mac) => silent(why),
                    Err(why) => nak(why),
                }
            }
            MessageType::Release => {
                let persist = leases
                    .release(r.ciaddr, r.mac, now)
                    .ok()
                    .flatten()
                    .into_iter()
                    .collect();
                tracing::info!(mac = %r.mac, ip = %r.ciaddr, "DHCPRELEASE");
                Outcome::Silent {
                    why: "released".into(),
                    persist,
                }
            }
            MessageType::Decline => {
                // Only the client this server gave the address to may decline it (RFC 2131
                // §4.3.3: a DECLINE names the server): nobody else can quarantine addresses.
                let Some(ip) = r.requested_ip.filter(|ip| s.network.contains(ip)) else {
                    return silent("a DECLINE naming no address of this network");
                };
                if r.server_id != Some(inc.local)
                    || !leases.holder(ip, now).is_some_and(|l| {
                        l.mac == Some(r.mac)
                            && matches!(
                                l.state,
                                super::leases::State::Offered | super::leases::State::Bound
                            )
                    })
                {
                    return silent("a DECLINE of an address this server did not give the client");
                }
                tracing::warn!(mac = %r.mac, ip = %ip,
                    "DHCPDECLINE: the client found the address in use; quarantined for a lease time");
                let persist = leases
                    .decline(ip, now + i64::from(s.lease_time))
                    .ok()
                    .into_iter()
                    .collect();
                Outcome::Silent {
                    why: "declined".into(),
                    persist,
                }
            }
            MessageType::Inform => {
                reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED, false, Vec::new())
            }
            other => silent(format!("{other:?} is not a client message")),
        }
    }

    fn note_foreign(&self, id: Ipv4Addr, mac: Mac, now: i64) {
        let Ok(mut f) = self.foreign.lock() else {
            return;
        };
        // Bounded: a hostile client could name many servers.
        if f.len() >= 64 && !f.contains_key(&id) {
            return;
        }
        let last = f.insert(id, now);
        if last.is_none_or(|t| now - t >= 3600) {
            tracing::warn!(server = %id, mac = %mac,
                "another DHCP server answers on this network; two authoritative servers hand out conflicting addresses (use proxy mode beside an existing server)");
        }
    }

    /// Forgets lapsed offers.
    pub fn sweep(&self, now: i64) {
        if let Ok(mut l) = self.leases.lock() {
            l.sweep(now);
        }
    }
}

#[cfg(test)]
mod tests;
