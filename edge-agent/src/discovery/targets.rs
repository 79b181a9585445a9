//! Scan targets from what an admin types: CIDRs (`10.254.1.0/24`, `fd00::/120`), ranges
//! (`10.254.1.10-10.254.1.40` or `10.254.1.10-40`), and single hosts (IPs or names), each on
//! every configured port. Expansion is bounded so a typo like `/8` fails instead of queueing
//! sixteen million probes.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most addresses one run may expand to.
pub const MAX_TARGETS: usize = 65_536;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    #[error("{input:?}: {reason}")]
    Invalid { input: String, reason: String },
    #[error("targets expand to more than {MAX_TARGETS} addresses; narrow the subnet")]
    TooMany,
    #[error("no targets given")]
    Empty,
}

/// One BMC address to probe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `https://10.0.0.5:443`, `https://[fd00::5]:443`.
    pub fn url(&self, scheme: &str) -> String {
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> TargetError {
    TargetError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// The host bits a `/len` prefix leaves in a `family` address of `bits` bits, if it names few
/// enough hosts to scan (at most 2^16).
fn host_bits(spec: &str, len: u32, family: &str, bits: u32) -> Result<u32, TargetError> {
    if len > bits {
        return Err(invalid(spec, format!("{family} prefix longer than {bits}")));
    }
    let host_bits = bits - len;
    if host_bits > 16 {
        return Err(TargetError::TooMany);
    }
    Ok(host_bits)
}

fn expand_one(
    spec: &str,
    out: &mut BTreeSet<IpAddr>,
    hosts: &mut BTreeSet<String>,
) -> Result<(), TargetError> {
    let s = spec.trim();
    if s.is_empty() {
        return Err(invalid(spec, "empty"));
    }
    if let Some((net, len)) = s.split_once('/') {
        let ip: IpAddr = net
            .parse()
            .map_err(|_| invalid(spec, "not an IP network"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| invalid(spec, "prefix length is not a number"))?;
        match ip {
            IpAddr::V4(v4) => {
                let host_bits = host_bits(spec, len, "IPv4", 32)?;
                let base = u32::from(v4) & (u32::MAX.checked_shl(host_bits).unwrap_or(0));
                let size = 1u64 << host_bits;
                for i in 0..size {
                    // Network and broadcast addresses are not hosts (except /31 and /32).
                    if host_bits >= 2 && (i == 0 || i == size - 1) {
                        continue;
                    }
                    out.insert(IpAddr::V4(Ipv4Addr::from(base + i as u32)));
                }
            }
            IpAddr::V6(v6) => {
                let host_bits = host_bits(spec, len, "IPv6", 128)?;
                let base = u128::from(v6) & (u128::MAX.checked_shl(host_bits).unwrap_or(0));
                for i in 0..(1u128 << host_bits) {
                    // The subnet-router anycast address is not a host.
                    if host_bits > 0 && i == 0 {
                        continue;
                    }
                    out.insert(IpAddr::V6(Ipv6Addr::from(base + i)));
                }
            }
        }
    } else if let Some((a, b)) = s
        .split_once('-')
        .filter(|(a, _)| a.parse::<IpAddr>().is_ok())
    {
        let start: IpAddr = a.parse().map_err(|_| invalid(spec, "bad range start"))?;
        let end: IpAddr = match b.parse::<IpAddr>() {
            Ok(e) => e,
            // `10.0.0.10-40`: the end replaces the last IPv4 octet.
            Err(_) => match (start, b.parse::<u8>()) {
                (IpAddr::V4(v4), Ok(last)) => {
                    let o = v4.octets();
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last))
                }
                _ => return Err(invalid(spec, "bad range end")),
            },
        };
        let (lo, hi) = match (start, end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(invalid(spec, "range mixes IPv4 and IPv6")),
        };
        if hi < lo {
            return Err(invalid(spec, "range ends before it starts"));
        }
        if hi - lo >= MAX_TARGETS as u128 {
            return Err(TargetError::TooMany);
        }
        for n in lo..=hi {
            out.insert(match start {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
            });
        }
    } else if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        out.insert(ip);
    } else if s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !s.starts_with('-')
    {
        hosts.insert(s.to_ascii_lowercase());
    } else {
        return Err(invalid(spec, "not an IP, CIDR, range or host name"));
    }
    if out.len() + hosts.len() > MAX_TARGETS {
        return Err(TargetError::TooMany);
    }
    Ok(())
}

/// Expands every spec on every port, de-duplicated, in address order.
pub fn expand(specs: &[String], ports: &[u16]) -> Result<Vec<Target>, TargetError> {
    let mut ips = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for spec in specs {
        // Comma-separated lists are accepted too (`--subnet a,b`).
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            expand_one(part, &mut ips, &mut hosts)?;
        }
    }
    let ports: Vec<u16> = if ports.is_empty() {
        vec![443]
    } else {
        ports.to_vec()
    };
    if ports.contains(&0) {
        return Err(invalid("0", "port 0 is not a port"));
    }
    let total = (ips.len() + hosts.len()).saturating_mul(ports.len());
    if total > MAX_TARGETS {
        return Err(TargetError::TooMany);
    }
    if total == 0 {
        return Err(TargetError::Empty);
    }
    let mut out = Vec::with_capacity(total);
    for ip in &ips {
        for p in &ports {
            out.push(Target {
                host: ip.to_string(),
                port: *p,
            });
        }
    }
    for h in &hosts {
        for p in &ports {
            out.push(Target {
                host: h.clone(),
                port: *p,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hosts(v: &[Target]) -> Vec<String> {
        v.iter().map(|t| t.host.clone()).collect()
    }

    #[test]
    fn cidrs_skip_network_and_broadcast() {
        let t = expand(&["10.254.1.0/30".into()], &[443]).unwrap();
        assert_eq!(hosts(&t), ["10.254.1.1", "10.254.1.2"]);
        assert_eq!(expand(&["10.0.0.0/24".into()], &[]).unwrap().len(), 254);
        // A host address with a prefix means its whole network, as in Magellan's --subnet.
        assert_eq!(
            expand(&["10.0.0.77/24".into()], &[]).unwrap()[0].host,
            "10.0.0.1"
        );
        assert_eq!(
            hosts(&expand(&["10.0.0.5/32".into()], &[]).unwrap()),
            ["10.0.0.5"]
        );
    }

    #[test]
    fn ranges_lists_ports_and_ipv6() {
        let t = expand(&["10.0.0.10-12,10.0.0.11".into()], &[443, 8443]).unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(t[1].url("https"), "https://10.0.0.10:8443");
        let t = expand(&["fd00::/126".into()], &[443]).unwrap();
        assert_eq!(hosts(&t), ["fd00::1", "fd00::2", "fd00::3"]);
        assert_eq!(t[0].url("https"), "https://[fd00::1]:443");
        let t = expand(&["bmc-01.mgmt".into(), "[fd00::9]".into()], &[443]).unwrap();
        assert_eq!(hosts(&t), ["fd00::9", "bmc-01.mgmt"]);
    }

    #[test]
    fn mistakes_are_refused_with_the_input() {
        assert_eq!(
            expand(&["10.0.0.0/8".into()], &[]),
            Err(TargetError::TooMany)
        );
        assert_eq!(
            expand(&["fd00::/64".into()], &[]),
            Err(TargetError::TooMany)
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fd00::1",
            "a b",
            "10.0.0.0/x",
            "/",
        ] {
            let e = expand(&[bad.into()], &[]).unwrap_err();
            assert!(matches!(e, TargetError::Invalid { .. }), "{bad}: {e}");
        }
        assert_eq!(expand(&[], &[]), Err(TargetError::Empty));
        assert!(expand(&["10.0.0.1".into()], &[0]).is_err());
    }

    proptest! {
        #[test]
        fn any_input_expands_or_errors_without_panicking(s in "\\PC{0,40}") {
            if let Ok(t) = expand(&[s], &[443]) {
                prop_assert!(t.len() <= MAX_TARGETS);
            }
        }

        #[test]
        fn ipv4_cidrs_stay_inside_their_network(a in any::<u32>(), len in 16u32..=32) {
            let net = Ipv4Addr::from(a);
            let t = expand(&[format!("{net}/{len}")], &[443]).unwrap();
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            for x in t {
                let ip: Ipv4Addr = x.host.parse().unwrap();
                prop_assert_eq!(u32::from(ip) & mask, a & mask);
            }
        }
    }
}
