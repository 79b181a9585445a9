//! The engine's answers, mode by mode, on requests shaped as the real clients send them
//! (class identifiers, user class and architecture as iPXE, OVMF's PXE and HTTP boot, and
//! SeaBIOS's iPXE ROM sent them in the VM tests).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use dhcproto::v4::{Architecture, DhcpOption, MessageType};
use skyport_inventory::reads::InterfaceAddresses;
use skyport_model::Mac;

use super::*;
use crate::node::dhcp::leases::{Leases, State};
use crate::node::dhcp::packet::{BootFile, Client, Request, build_request};
use crate::node::dhcp::{Mode, Settings, Subnet, Unknown};

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const NODE_URL: &str = "http://10.1.0.1:8080";

fn mac(n: u8) -> Mac {
    Mac::from_octets([0x52, 0x54, 0, 0, 0, n])
}

fn subnet() -> Subnet {
    Subnet {
        network: "10.1.0.0/24".parse().unwrap(),
        range: Some((Ipv4Addr::new(10, 1, 0, 100), Ipv4Addr::new(10, 1, 0, 102))),
        router: Some(LOCAL),
        dns: vec![Ipv4Addr::new(10, 1, 0, 2)],
        domain: Some("site.example".into()),
        lease_time: 3600,
    }
}

fn engine(mode: Mode, unknown: Unknown) -> Engine {
    let e = Engine::new(
        Arc::new(Settings {
            mode,
            subnets: vec![subnet(), {
                let mut s = subnet();
                s.network = "10.2.0.0/24".parse().unwrap();
                s.range = None;
                s.router = Some(Ipv4Addr::new(10, 2, 0, 1));
                s
            }],
            unknown,
            node_url: NODE_URL.into(),
            ipxe_dir: "/usr/lib/ipxe".into(),
            binaries: HashSet::from(["undionly.kpxe", "ipxe.efi"]),
        }),
        Leases::default(),
    );
    e.set_hosts(Hosts::build(vec![
        InterfaceAddresses {
            mac: mac(1),
            xname: "x1000c0s0b0n0".into(),
            ipv4: vec![Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 2, 0, 10)],
        },
        InterfaceAddresses {
            mac: mac(2),
            xname: "x1000c0s0b0n1".into(),
            ipv4: vec![Ipv4Addr::new(10, 1, 0, 11)],
        },
        // Two interfaces claiming one address: neither gets it.
        InterfaceAddresses {
            mac: mac(3),
            xname: "x1000c0s1b0n0".into(),
            ipv4: vec![Ipv4Addr::new(10, 1, 0, 12)],
        },
        InterfaceAddresses {
            mac: mac(4),
            xname: "x1000c0s1b0n1".into(),
            ipv4: vec![Ipv4Addr::new(10, 1, 0, 12)],
        },
    ]));
    e
}

enum Kind {
    Ipxe,
    BiosPxe,
    UefiPxe,
    UefiHttp,
    Os,
}

fn request(kind: MessageType, m: Mac, who: Kind, extra: Vec<DhcpOption>) -> Request {
    let mut opts = match who {
        Kind::Ipxe => vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            DhcpOption::UserClass(b"iPXE".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(0)),
        ],
        Kind::BiosPxe => vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(0)),
            DhcpOption::ClientMachineIdentifier(vec![0; 17]),
        ],
        // OVMF's PXE names its architecture in option 60 as well as 93.
        Kind::UefiPxe => vec![DhcpOption::ClassIdentifier(
            b"PXEClient:Arch:00007:UNDI:003000".to_vec(),
        )],
        Kind::UefiHttp => vec![
            DhcpOption::ClassIdentifier(b"HTTPClient:Arch:00016:UNDI:003000".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(16)),
        ],
        Kind::Os => vec![],
    };
    opts.extend(extra);
    Request::parse(&build_request(kind, m, 0x1234, opts)).unwrap()
}

fn at(req: &Request, port: Port) -> Incoming<'_> {
    Incoming {
        req,
        port,
        local: LOCAL,
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
    }
}

fn reply(o: Outcome) -> (Reply, SocketAddrV4, Vec<skyport_store::Write>) {
    match o {
        Outcome::Reply { reply, to, persist } => (reply, to, persist),
        Outcome::Silent { why, .. } => panic!("no reply: {why}"),
    }
}

fn is_silent(o: &Outcome) -> bool {
    matches!(o, Outcome::Silent { .. })
}

#[test]
fn proxy_answers_each_client_with_its_boot_file_and_never_an_address() {
    let e = engine(Mode::Proxy, Unknown::Answer);
    let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
    let cases = [
        (
            Kind::Ipxe,
            BootFile::Url(format!(
                "{NODE_URL}/boot/v1/bootscript?mac=52:54:00:00:00:01"
            )),
            "PXEClient",
        ),
        (
            Kind::BiosPxe,
            BootFile::Tftp("undionly.kpxe".into()),
            "PXEClient",
        ),
        (
            Kind::UefiPxe,
            BootFile::Tftp("ipxe.efi".into()),
            "PXEClient",
        ),
        (
            Kind::UefiHttp,
            BootFile::Url(format!("{NODE_URL}/edge/v1/ipxe/ipxe.efi")),
            "HTTPClient",
        ),
    ];
    for (who, file, class) in cases {
        let r = request(MessageType::Discover, mac(1), who, vec![]);
        let (rep, to, persist) = reply(e.answer(&at(&r, Port::Dhcp), 0));
        assert_eq!(rep.kind, MessageType::Offer);
        assert_eq!(rep.yiaddr, Ipv4Addr::UNSPECIFIED, "proxyDHCP never leases");
        assert!(rep.options.is_empty());
        let boot = rep.boot.clone().unwrap();
        assert_eq!(
            (boot.file, boot.class, boot.next_server),
            (file, class, LOCAL)
        );
        assert_eq!(to, bcast);
        assert!(persist.is_empty());
        // And the wire form carries it where firmware looks.
        let bytes = rep.encode(&r).unwrap();
        let msg = <dhcproto::v4::Message as dhcproto::Decodable>::decode(
            &mut dhcproto::Decoder::new(&bytes),
        )
        .unwrap();
        assert_eq!(msg.siaddr(), LOCAL);
        assert!(bytes.len() >= 300);
        assert_eq!(
            msg.opts().get(dhcproto::v4::OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(class.as_bytes().to_vec()))
        );
        assert_eq!(
            msg.opts().get(dhcproto::v4::OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(LOCAL))
        );
    }
    // The PXE client's unicast request on 4011 gets an ACK back where it came from.
    let r = request(MessageType::Request, mac(1), Kind::UefiPxe, vec![]);
    let mut i = at(&r, Port::Proxy);
    i.src = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 150), 68);
    let (rep, to, _) = reply(e.answer(&i, 0));
    assert_eq!((rep.kind, to), (MessageType::Ack, i.src));
    // Requests meant for the site's DHCP server, and OS clients, are left alone.
    let r = request(
        MessageType::Request,
        mac(1),
        Kind::Ipxe,
        vec![DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 1, 0, 2))],
    );
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 0)));
    let r = request(MessageType::Discover, mac(1), Kind::Os, vec![]);
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 0)));
    // A client the binaries do not cover (arm64 without an arm64 build) gets nothing.
    let r = request(
        MessageType::Discover,
        mac(1),
        Kind::BiosPxe,
        vec![DhcpOption::ClientSystemArchitecture(Architecture::from(11))],
    );
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 0)));
}

#[test]
fn unknown_macs_are_answered_or_not_by_policy() {
    let stranger = mac(99);
    let r = request(MessageType::Discover, stranger, Kind::Ipxe, vec![]);
    let e = engine(Mode::Proxy, Unknown::Answer);
    let (rep, _, _) = reply(e.answer(&at(&r, Port::Dhcp), 0));
    assert_eq!(
        rep.boot.unwrap().file,
        BootFile::Url(format!("{NODE_URL}/boot/v1/bootscript?mac={stranger}"))
    );
    let e = engine(Mode::Proxy, Unknown::Ignore);
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 0)));
    let e = engine(Mode::Authoritative, Unknown::Ignore);
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 0)));
}

/// DISCOVER, then REQUEST of what was offered; the ACK and what it persists.
fn lease(e: &Engine, m: Mac, who: fn() -> Kind, now: i64) -> (Reply, Vec<skyport_store::Write>) {
    let d = request(MessageType::Discover, m, who(), vec![]);
    let (offer, _, _) = reply(e.answer(&at(&d, Port::Dhcp), now));
    assert_eq!(offer.kind, MessageType::Offer);
    let r = request(
        MessageType::Request,
        m,
        who(),
        vec![
            DhcpOption::RequestedIpAddress(offer.yiaddr),
            DhcpOption::ServerIdentifier(LOCAL),
        ],
    );
    let (ack, _, persist) = reply(e.answer(&at(&r, Port::Dhcp), now));
    assert_eq!((ack.kind, ack.yiaddr), (MessageType::Ack, offer.yiaddr));
    (ack, persist)
}

#[test]
fn authoritative_leases_reserved_addresses_with_the_subnet_settings() {
    let e = engine(Mode::Authoritative, Unknown::Answer);
    let (ack, persist) = lease(&e, mac(1), || Kind::Ipxe, 1000);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 1, 0, 10));
    assert_eq!(persist.len(), 1, "the binding is stored before the ACK");
    assert!(
        ack.boot.is_some(),
        "a booting client gets its boot file with its lease"
    );
    for want in [
        DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
        DhcpOption::Router(vec![LOCAL]),
        DhcpOption::DomainNameServer(vec![Ipv4Addr::new(10, 1, 0, 2)]),
        DhcpOption::DomainName("site.example".into()),
        DhcpOption::Hostname("x1000c0s0b0n0".into()),
        DhcpOption::AddressLeaseTime(3600),
    ] {
        assert!(
            ack.options.contains(&want),
            "{want:?} missing in {:?}",
            ack.options
        );
    }
    // The booted OS asks again (no boot file for it), and renews by unicast.
    let (ack, _) = lease(&e, mac(1), || Kind::Os, 1010);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 1, 0, 10));
    assert!(ack.boot.is_none());
    let mut renew = request(MessageType::Request, mac(1), Kind::Os, vec![]);
    renew.ciaddr = ack.yiaddr;
    let (ack, to, _) = reply(e.answer(&at(&renew, Port::Dhcp), 2000));
    assert_eq!(
        (ack.kind, to),
        (MessageType::Ack, SocketAddrV4::new(ack.yiaddr, 68))
    );
    // An unknown client gets the range; a second unknown the next address.
    let (a, _) = lease(&e, mac(50), || Kind::Os, 1000);
    let (b, _) = lease(&e, mac(51), || Kind::Os, 1000);
    assert_eq!(
        (a.yiaddr, b.yiaddr),
        (Ipv4Addr::new(10, 1, 0, 100), Ipv4Addr::new(10, 1, 0, 101))
    );
    assert!(
        !a.options
            .iter()
            .any(|o| matches!(o, DhcpOption::Hostname(_)))
    );
}

#[test]
fn a_reserved_address_someone_else_holds_is_refused_and_a_wrong_one_naked() {
    let e = engine(Mode::Authoritative, Unknown::Answer);
    // A stranger holds 10.1.0.11 by asking for it before the reservation existed: simulate by
    // binding it in the book.
    {
        let mut l = e.leases.lock().unwrap();
        l.bind(Ipv4Addr::new(10, 1, 0, 11), mac(77), 5000).unwrap();
    }
    let d = request(MessageType::Discover, mac(2), Kind::Ipxe, vec![]);
    assert!(
        is_silent(&e.answer(&at(&d, Port::Dhcp), 1000)),
        "refused while held"
    );
    assert!(is_silent(&e.answer(&at(&d, Port::Dhcp), 1000)));
    // Once the other lease ran out, the reservation wins.
    let (ack, _) = lease(&e, mac(2), || Kind::Ipxe, 6000);
    assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 1, 0, 11));
    // An address reserved twice goes to neither.
    let d = request(MessageType::Discover, mac(3), Kind::Ipxe, vec![]);
    assert!(is_silent(&e.answer(&at(&d, Port::Dhcp), 1000)));
    // INIT-REBOOT with another address than its reservation: NAK, broadcast.
    let r = request(
        MessageType::Request,
        mac(1),
        Kind::Os,
        vec![DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 0, 55))],
    );
    let (nak, to, _) = reply(e.answer(&at(&r, Port::Dhcp), 1000));
    assert_eq!(
        (nak.kind, to),
        (MessageType::Nak, SocketAddrV4::new(Ipv4Addr::BROADCAST, 68))
    );
    // An address of another network: NAK too.
    let r = request(
        MessageType::Request,
        mac(1),
        Kind::Os,
        vec![DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            192, 168, 0, 5,
        ))],
    );
    assert_eq!(
        reply(e.answer(&at(&r, Port::Dhcp), 1000)).0.kind,
        MessageType::Nak
    );
}

#[test]
fn release_decline_inform_relay_and_a_second_server() {
    let e = engine(Mode::Authoritative, Unknown::Answer);
    let (a, _) = lease(&e, mac(50), || Kind::Os, 1000);
    let mut rel = request(MessageType::Release, mac(50), Kind::Os, vec![]);
    rel.ciaddr = a.yiaddr;
    match e.answer(&at(&rel, Port::Dhcp), 1100) {
        Outcome::Silent { persist, .. } => assert_eq!(persist.len(), 1),
        o => panic!("{o:?}"),
    }
    let l = e.leases();
    assert_eq!(
        l.iter().find(|l| l.ip == a.yiaddr).unwrap().state,
        State::Released
    );
    // The released address goes to the next client, which finds it in use and declines it.
    let (d, _) = lease(&e, mac(51), || Kind::Os, 1150);
    assert_eq!(d.yiaddr, Ipv4Addr::new(10, 1, 0, 100));
    let decline = |m: Mac| {
        request(
            MessageType::Decline,
            m,
            Kind::Os,
            vec![
                DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 0, 100)),
                DhcpOption::ServerIdentifier(LOCAL),
            ],
        )
    };
    // Nobody else can quarantine it.
    match e.answer(&at(&decline(mac(60)), Port::Dhcp), 1200) {
        Outcome::Silent { persist, .. } => assert!(persist.is_empty()),
        o => panic!("{o:?}"),
    }
    match e.answer(&at(&decline(mac(51)), Port::Dhcp), 1200) {
        Outcome::Silent { persist, .. } => assert_eq!(persist.len(), 1),
        o => panic!("{o:?}"),
    }
    // A decline quarantines the address for everyone: the next client skips it.
    let (b, _) = lease(&e, mac(52), || Kind::Os, 1300);
    assert_eq!(b.yiaddr, Ipv4Addr::new(10, 1, 0, 101));
    // The range has three addresses: one declined, one bound, one left; then it is exhausted.
    let (c, _) = lease(&e, mac(53), || Kind::Os, 1300);
    assert_eq!(c.yiaddr, Ipv4Addr::new(10, 1, 0, 102));
    let d = request(MessageType::Discover, mac(54), Kind::Os, vec![]);
    assert!(is_silent(&e.answer(&at(&d, Port::Dhcp), 1300)));
    // INFORM: settings, no address, no lease time, unicast.
    let mut inf = request(MessageType::Inform, mac(1), Kind::Os, vec![]);
    inf.ciaddr = Ipv4Addr::new(10, 1, 0, 10);
    let (ack, to, _) = reply(e.answer(&at(&inf, Port::Dhcp), 1300));
    assert_eq!(
        (ack.kind, ack.yiaddr, to.port()),
        (MessageType::Ack, Ipv4Addr::UNSPECIFIED, 68)
    );
    assert!(
        !ack.options
            .iter()
            .any(|o| matches!(o, DhcpOption::AddressLeaseTime(_)))
    );
    // Relayed from a routed rack: that rack's subnet and reservation, answered to the relay.
    let mut d = request(MessageType::Discover, mac(1), Kind::Ipxe, vec![]);
    d.giaddr = Ipv4Addr::new(10, 2, 0, 1);
    let (offer, to, _) = reply(e.answer(&at(&d, Port::Dhcp), 1300));
    assert_eq!(offer.yiaddr, Ipv4Addr::new(10, 2, 0, 10));
    assert_eq!(to, SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 1), 67));
    assert!(
        offer
            .options
            .contains(&DhcpOption::Router(vec![Ipv4Addr::new(10, 2, 0, 1)]))
    );
    // A relay from a network nobody configured: silence.
    d.giaddr = Ipv4Addr::new(172, 16, 0, 1);
    assert!(is_silent(&e.answer(&at(&d, Port::Dhcp), 1300)));
    // A client that took another server's offer tells on that server.
    let r = request(
        MessageType::Request,
        mac(2),
        Kind::Os,
        vec![
            DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 0, 200)),
            DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 1, 0, 254)),
        ],
    );
    assert!(is_silent(&e.answer(&at(&r, Port::Dhcp), 1300)));
    assert_eq!(e.foreign_servers(), vec![Ipv4Addr::new(10, 1, 0, 254)]);
}

#[test]
fn the_ipxe_user_class_always_gets_the_script_so_there_is_no_boot_loop() {
    let e = engine(Mode::Proxy, Unknown::Answer);
    for arch in [0u16, 7, 9, 16] {
        let r = request(
            MessageType::Discover,
            mac(1),
            Kind::Ipxe,
            vec![DhcpOption::ClientSystemArchitecture(Architecture::from(
                arch,
            ))],
        );
        assert_eq!(r.client, Client::Ipxe);
        let (rep, _, _) = reply(e.answer(&at(&r, Port::Dhcp), 0));
        assert!(
            matches!(rep.boot.unwrap().file, BootFile::Url(u) if u.contains("/boot/v1/bootscript?mac=")),
            "arch {arch}"
        );
    }
}
