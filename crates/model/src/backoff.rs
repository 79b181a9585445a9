//! Retry delays: one exponential backoff for every retry loop of the project (the edge's
//! outbox and image cache, its supervised tasks, the services' write races), so that "how long
//! until the next try" is decided in one place.

use std::time::Duration;

/// Doubling delays from `base`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The wait after the `attempt`-th consecutive failure (1-based): `base`, `2 × base`,
    /// `4 × base` … never more than `max` (attempt 0 waits `base` too).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// [`Self::delay`] spread uniformly over `[delay / 2, delay × 1.5)`, so that concurrent
    /// losers of a race do not collide again in lockstep.
    pub fn jittered(&self, attempt: u32) -> Duration {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is randomly seeded per instance: a dependency-free source of jitter.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let d = self.delay(attempt);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        d / 2 + Duration::from_nanos(random % nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let secs: Vec<u64> = (0..=10).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_delays() {
        let b = Backoff::new(Duration::from_millis(1), Duration::from_millis(64));
        for attempt in 1..10 {
            let d = b.delay(attempt);
            for _ in 0..50 {
                let j = b.jittered(attempt);
                assert!(j >= d / 2 && j < d + d / 2, "{j:?} for {d:?}");
            }
        }
    }
}
