//! The wall clock as every service stamps records with it: whole seconds since the Unix epoch
//! ([`now`]), or milliseconds where the order of events within a second matters ([`now_ms`]).
//! One definition, so that expiry, retry and "last seen" times agree across services and the
//! edge agent.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the system clock is set before 1970 (a clock that wrong
/// makes every stamp meaningless anyway, and a panic would take the service down with it).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 before 1970, as [`now`]).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_this_code_was_written() {
        // 2025-01-01T00:00:00Z: a clock reading before it would mean `now` lost its epoch.
        assert!(super::now() > 1_735_689_600);
        assert!(super::now_ms() / 1000 >= 1_735_689_600);
    }
}
