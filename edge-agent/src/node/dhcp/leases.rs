//! The authoritative DHCP server's address book: which address is offered to, bound to or
//! declined for whom, until when. Bound and declined addresses are persisted in the agent's
//! store (table `EdgeDhcpLeases`, one record per address) before the client hears of them, so
//! a restarted agent hands out the same addresses; offers live in memory only.
//! Memory is bounded by the configured ranges and the inventory's reservations: one entry per
//! address, never per client asking.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use skyport_model::Mac;
use skyport_store::{Record, Store, StoreError, Table, Write};

/// Persisted leases, by address. Never synced: they are the site's own state.
pub const LEASES: Table = Table("EdgeDhcpLeases");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Offered, not yet requested (memory only).
    Offered,
    Bound,
    /// A client said the address is in use by someone else (DHCPDECLINE).
    Declined,
    /// Given back (DHCPRELEASE) or expired; free.
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub mac: Option<Mac>,
    /// Unix time the lease (or the decline's quarantine) ends.
    pub expires: i64,
    pub state: State,
}

impl Lease {
    fn live(&self, now: i64) -> bool {
        self.state != State::Released && self.expires > now
    }
}

#[derive(Debug, Default)]
pub struct Leases {
    by_ip: HashMap<Ipv4Addr, Lease>,
    by_mac: HashMap<Mac, Ipv4Addr>,
}

impl Leases {
    /// Reads the persisted leases (records that do not decode are skipped with a warning).
    pub async fn load(store: &dyn Store) -> Result<Leases, StoreError> {
        let mut out = Leases::default();
        for r in store.list_all(LEASES, None).await? {
            match serde_json::from_str::<Lease>(&r.body) {
                Ok(l) => out.put(l),
                Err(e) => {
                    tracing::warn!(id = %r.id, error = %e, "skipping an unreadable DHCP lease")
                }
            }
        }
        Ok(out)
    }

    fn put(&mut self, l: Lease) {
        if let Some(old) = self.by_ip.get(&l.ip)
            && let Some(m) = old.mac
            && self.by_mac.get(&m) == Some(&l.ip)
        {
            self.by_mac.remove(&m);
        }
        if let Some(m) = l.mac
            && matches!(l.state, State::Offered | State::Bound)
        {
            // A client holds one address: its previous one is let go.
            if let Some(prev) = self.by_mac.insert(m, l.ip)
                && prev != l.ip
                && let Some(p) = self.by_ip.get_mut(&prev)
                && p.mac == Some(m)
                && p.state == State::Offered
            {
                p.state = State::Released;
            }
        }
        self.by_ip.insert(l.ip, l);
    }

    /// Who holds `ip` now (an offer, a binding or a decline), if anyone.
    pub fn holder(&self, ip: Ipv4Addr, now: i64) -> Option<&Lease> {
        self.by_ip.get(&ip).filter(|l| l.live(now))
    }

    /// The address `mac` was offered or holds, while it lasts.
    pub fn of_mac(&self, mac: Mac, now: i64) -> Option<Ipv4Addr> {
        let ip = *self.by_mac.get(&mac)?;
        self.holder(ip, now)
            .filter(|l| l.mac == Some(mac) && matches!(l.state, State::Offered | State::Bound))
            .map(|l| l.ip)
    }

    /// Whether `ip` is free for `mac`: nobody else holds it and it is not quarantined.
    pub fn free_for(&self, ip: Ipv4Addr, mac: Mac, now: i64) -> bool {
        match self.holder(ip, now) {
            None => true,
            Some(l) => l.state != State::Declined && l.mac == Some(mac),
        }
    }

    /// Holds `ip` for `mac` until `until` while it decides (memory only).
    pub fn offer(&mut self, ip: Ipv4Addr, mac: Mac, now: i64, until: i64) {
        if self
            .holder(ip, now)
            .is_some_and(|l| l.state == State::Bound && l.mac == Some(mac))
        {
            return;
        }
        self.put(Lease {
            ip,
            mac: Some(mac),
            expires: until,
            state: State::Offered,
        });
    }

    /// Withdraws what was only offered to `mac` (it took another server's offer); a binding
    /// stays until it is released or runs out.
    pub fn withdraw_offer(&mut self, mac: Mac, now: i64) {
        if let Some(ip) = self.of_mac(mac, now)
            && let Some(l) = self.by_ip.get_mut(&ip)
            && l.state == State::Offered
        {
            l.state = State::Released;
        }
    }

    /// Binds `ip` to `mac` until `expires`; the returned write persists it.
    pub fn bind(&mut self, ip: Ipv4Addr, mac: Mac, expires: i64) -> Result<Write, StoreError> {
        let l = Lease {
            ip,
            mac: Some(mac),
            expires,
            state: State::Bound,
        };
        let w = persist(&l)?;
        self.put(l);
        Ok(w)
    }

    /// `mac` gives `ip` back; the write persists it (none if it did not hold it).
    pub fn release(
        &mut self,
        ip: Ipv4Addr,
        mac: Mac,
        now: i64,
    ) -> Result<Option<Write>, StoreError> {
        let Some(l) = self.by_ip.get(&ip) else {
            return Ok(None);
        };
        if l.mac != Some(mac) || !l.live(now) || l.state == State::Declined {
            return Ok(None);
        }
        let l = Lease {
            ip,
            mac: Some(mac),
            expires: now,
            state: State::Released,
        };
        let w = persist(&l)?;
        self.put(l);
        Ok(Some(w))
    }

    /// Nobody gets `ip` until `until` (a client found it in use).
    pub fn decline(&mut self, ip: Ipv4Addr, until: i64) -> Result<Write, StoreError> {
        let l = Lease {
            ip,
            mac: None,
            expires: until,
            state: State::Declined,
        };
        let w = persist(&l)?;
        self.put(l);
        Ok(w)
    }

    /// Forgets offers that ran out (bindings stay: they are on disk anyway).
    pub fn sweep(&mut self, now: i64) {
        let stale: Vec<Ipv4Addr> = self
            .by_ip
            .values()
            .filter(|l| l.state == State::Offered && l.expires <= now)
            .map(|l| l.ip)
            .collect();
        for ip in stale {
            if let Some(l) = self.by_ip.remove(&ip)
                && let Some(m) = l.mac
                && self.by_mac.get(&m) == Some(&ip)
            {
                self.by_mac.remove(&m);
            }
        }
    }

    /// Every lease.
    #[cfg(test)]
    pub fn all(&self) -> Vec<Lease> {
        let mut v: Vec<Lease> = self.by_ip.values().cloned().collect();
        v.sort_by_key(|l| l.ip);
        v
    }
}

fn persist(l: &Lease) -> Result<Write, StoreError> {
    let body = serde_json::to_string(l)
        .map_err(|e| StoreError::unavailable(format!("encoding the lease of {}: {e}", l.ip)))?;
    Ok(Write::Upsert {
        table: LEASES,
        record: Record::new(l.ip.to_string(), body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> Mac {
        Mac::from_octets([2, 0, 0, 0, 0, n])
    }

    #[test]
    fn an_address_has_one_holder_and_a_client_one_address() {
        let mut l = Leases::default();
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6));
        l.offer(a, mac(1), 0, 100);
        assert!(!l.free_for(a, mac(2), 50));
        assert!(l.free_for(a, mac(1), 50));
        assert!(l.free_for(a, mac(2), 100), "an offer lapses");
        l.bind(a, mac(1), 1000).unwrap();
        l.offer(b, mac(1), 0, 100);
        assert_eq!(l.of_mac(mac(1), 50), Some(b));
        l.release(b, mac(1), 60).unwrap();
        l.decline(a, 2000).unwrap();
        assert!(!l.free_for(a, mac(1), 1500), "declined for everyone");
        assert!(l.free_for(a, mac(1), 2001));
        l.sweep(3000);
        assert_eq!(l.of_mac(mac(1), 3000), None);
    }
}
