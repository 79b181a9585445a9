//! Memory accounting for discovery: the bytes one BMC's crawl holds, and the bytes one
//! discovery pass over many BMCs holds. A body being read is charged while it is held; the fields
//! kept from each document are charged for as long as the crawl (and its result) lives. A charge
//! that would pass a limit is refused with an error naming that limit, so a hostile BMC fails
//! with a reason instead of exhausting the agent, and its charges go back when it is dropped.
//!
//! A per-BMC budget may have the pass's budget as its parent: every charge is made on both, so
//! the pass is bounded too, and dropping a BMC's budget returns whatever it still held.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which budget a limit belongs to (named in the error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One BMC's crawl and its result.
    Bmc,
    /// Every BMC of one discovery pass together.
    Pass,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Bmc => "per BMC",
            Scope::Pass => "per discovery pass",
        })
    }
}

/// A refused charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("memory budget of {limit} bytes {scope} exhausted")]
pub struct Exhausted {
    pub scope: Scope,
    pub limit: usize,
}

/// Bytes held against a limit, with the highest value reached.
#[derive(Debug)]
pub struct MemoryBudget {
    scope: Scope,
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    parent: Option<Arc<MemoryBudget>>,
}

impl MemoryBudget {
    pub fn new(scope: Scope, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            scope,
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            parent: None,
        })
    }

    /// A budget whose charges also count against this one.
    pub fn child(self: &Arc<Self>, scope: Scope, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            scope,
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            parent: Some(self.clone()),
        })
    }

    /// Charges `n` bytes here and on every parent, or nothing at all.
    pub fn try_charge(&self, n: usize) -> Result<(), Exhausted> {
        self.take(n)?;
        if let Some(p) = &self.parent
            && let Err(e) = p.try_charge(n)
        {
            self.give(n);
            return Err(e);
        }
        Ok(())
    }

    /// Returns `n` bytes charged earlier, here and on every parent.
    pub fn release(&self, n: usize) {
        self.give(n);
        if let Some(p) = &self.parent {
            p.release(n);
        }
    }

    fn take(&self, n: usize) -> Result<(), Exhausted> {
        let limit = self.limit;
        // A compare-and-swap loop rather than add-then-undo: a refused charge never shows, even
        // for a moment, so concurrent chargers are not refused because of it and `peak` never
        // passes the limit.
        match self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|v| *v <= limit)
            }) {
            Ok(before) => {
                self.peak.fetch_max(before + n, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => Err(Exhausted {
                scope: self.scope,
                limit,
            }),
        }
    }

    fn give(&self, n: usize) {
        // Saturating: a release can never make the account wrap and refuse everything after.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }
}

impl Drop for MemoryBudget {
    fn drop(&mut self) {
        if let Some(p) = &self.parent {
            p.release(*self.used.get_mut());
        }
    }
}

/// Bytes charged for as long as this value lives (a body being read).
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a MemoryBudget,
    bytes: usize,
}

impl<'a> Held<'a> {
    pub fn new(budget: &'a MemoryBudget) -> Self {
        Self { budget, bytes: 0 }
    }

    pub fn grow(&mut self, n: usize) -> Result<(), Exhausted> {
        self.budget.try_charge(n)?;
        self.bytes += n;
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_name_it() {
        let b = MemoryBudget::new(Scope::Bmc, 100);
        b.try_charge(60).unwrap();
        let e = b.try_charge(41).unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory budget of 100 bytes per BMC exhausted"
        );
        assert_eq!(b.used(), 60, "a refused charge takes nothing");
        b.try_charge(40).unwrap();
        b.release(70);
        assert_eq!((b.used(), b.peak()), (30, 100));
        assert!(b.try_charge(usize::MAX).is_err());
    }

    #[test]
    fn a_child_counts_against_its_parent_and_returns_its_bytes_when_dropped() {
        let pass = MemoryBudget::new(Scope::Pass, 100);
        let a = pass.child(Scope::Bmc, 80);
        let b = pass.child(Scope::Bmc, 80);
        a.try_charge(70).unwrap();
        // b is within its own limit but the pass is not.
        let e = b.try_charge(40).unwrap_err();
        assert_eq!(e.scope, Scope::Pass);
        assert_eq!((b.used(), pass.used()), (0, 70));
        {
            let mut held = Held::new(&b);
            held.grow(30).unwrap();
            assert_eq!(pass.used(), 100);
        }
        assert_eq!(pass.used(), 70);
        drop(a);
        assert_eq!(pass.used(), 0);
        b.try_charge(80).unwrap();
        assert_eq!(b.try_charge(1).unwrap_err().scope, Scope::Bmc);
    }
}
