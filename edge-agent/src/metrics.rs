//! Counters behind the agent's `/metrics` page (Prometheus text format): what nodes asked for,
//! how the image cache answered, how fresh the synced data is and how much waits to be sent.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub bootscript_requests: AtomicU64,
    pub bootscript_unknown: AtomicU64,
    pub cloud_init_requests: AtomicU64,
    pub image_requests: AtomicU64,
    pub image_bytes_served: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_downloads_failed: AtomicU64,
    pub cache_corrupt_dropped: AtomicU64,
    pub cache_evictions: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub sync_ok: AtomicU64,
    pub sync_unchanged: AtomicU64,
    pub sync_failed: AtomicU64,
    /// Unix time of the last poll that reached the cloud and got a usable answer.
    pub last_sync_ok: AtomicI64,
    /// Unix time the snapshot in service was applied.
    pub snapshot_applied_at: AtomicI64,
    pub outbox_depth: AtomicU64,
    pub reports_pending: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The page; `now` is the current Unix time (for the sync age).
    pub fn render(&self, now: i64) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP skyport_edge_{name} {help}");
            let _ = writeln!(out, "# TYPE skyport_edge_{name} {kind}");
            let _ = writeln!(out, "skyport_edge_{name} {v}");
        };
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        counter(
            "bootscript_requests_total",
            "Boot script requests served.",
            "counter",
            g(&self.bootscript_requests),
        );
        counter(
            "bootscript_unknown_total",
            "Boot script requests from MACs not in the inventory.",
            "counter",
            g(&self.bootscript_unknown),
        );
        counter(
            "cloud_init_requests_total",
            "cloud-init requests served.",
            "counter",
            g(&self.cloud_init_requests),
        );
        counter(
            "image_requests_total",
            "Image downloads requested by nodes.",
            "counter",
            g(&self.image_requests),
        );
        counter(
            "image_bytes_served_total",
            "Image bytes sent to nodes (full-file and range responses, as planned).",
            "counter",
            g(&self.image_bytes_served),
        );
        counter(
            "cache_hits_total",
            "Image requests answered from the verified cache.",
            "counter",
            g(&self.cache_hits),
        );
        counter(
            "cache_misses_total",
            "Image requests that needed a download first.",
            "counter",
            g(&self.cache_misses),
        );
        counter(
            "cache_download_failures_total",
            "Image downloads that failed or did not verify.",
            "counter",
            g(&self.cache_downloads_failed),
        );
        counter(
            "cache_corrupt_dropped_total",
            "Cached files dropped because their bytes no longer matched their SHA-256.",
            "counter",
            g(&self.cache_corrupt_dropped),
        );
        counter(
            "cache_evictions_total",
            "Cached images evicted to stay under the size cap.",
            "counter",
            g(&self.cache_evictions),
        );
        counter(
            "cache_bytes",
            "Bytes of verified images on disk.",
            "gauge",
            g(&self.cache_bytes),
        );
        counter(
            "sync_applied_total",
            "Snapshots applied.",
            "counter",
            g(&self.sync_ok),
        );
        counter(
            "sync_unchanged_total",
            "Polls answered 304 Not Modified.",
            "counter",
            g(&self.sync_unchanged),
        );
        counter(
            "sync_failures_total",
            "Polls that failed (cloud down, 5xx, refused snapshot).",
            "counter",
            g(&self.sync_failed),
        );
        let last = self.last_sync_ok.load(Ordering::Relaxed);
        let age = if last > 0 {
            (now - last).max(0) as f64
        } else {
            f64::INFINITY
        };
        counter(
            "sync_age_seconds",
            "Seconds since the cloud last answered a poll (+Inf: never).",
            "gauge",
            if age.is_finite() {
                age.to_string()
            } else {
                "+Inf".into()
            },
        );
        counter(
            "snapshot_applied_timestamp_seconds",
            "Unix time the snapshot in service was applied (0: none).",
            "gauge",
            self.snapshot_applied_at.load(Ordering::Relaxed).to_string(),
        );
        counter(
            "outbox_depth",
            "Discovery results waiting to be pushed.",
            "gauge",
            g(&self.outbox_depth),
        );
        counter(
            "reports_pending",
            "Endpoint-history entries and unknown MACs waiting to be reported.",
            "gauge",
            g(&self.reports_pending),
        );
        out
    }
}
