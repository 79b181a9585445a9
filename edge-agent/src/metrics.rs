//! Counters behind the agent's `/metrics` page (Prometheus text format): what nodes asked for,
//! how the image cache answered, how fresh the synced data is and how much waits to be sent.

use std::fmt::Write as _;
use std::sync::Arc;
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
    /// Images whose last download failed for lack of disk space (a gauge).
    pub cache_disk_full: AtomicU64,
    pub cache_disk_full_failures: AtomicU64,
    pub cache_downloads_deferred: AtomicU64,
    pub cache_verified: AtomicU64,
    /// Unix time the last scheduled verification of the whole cache finished.
    pub cache_last_verified_at: AtomicI64,
    pub image_reads_aborted: AtomicU64,
    pub sync_ok: AtomicU64,
    pub sync_unchanged: AtomicU64,
    pub sync_failed: AtomicU64,
    /// Unix time of the last poll that reached the cloud and got a usable answer.
    pub last_sync_ok: AtomicI64,
    /// Unix time the snapshot in service was applied.
    pub snapshot_applied_at: AtomicI64,
    pub outbox_depth: AtomicU64,
    /// Job tasks waiting to run or to be reported (a gauge).
    pub jobs_pending: Arc<AtomicU64>,
    pub reports_pending: AtomicU64,
    pub dhcp_requests: AtomicU64,
    pub dhcp_replies: AtomicU64,
    pub dhcp_silent: AtomicU64,
    pub dhcp_malformed: AtomicU64,
    pub dhcp_rate_limited: AtomicU64,
    pub tftp_transfers: AtomicU64,
    pub tftp_aborted: AtomicU64,
    pub tftp_refused: AtomicU64,
    pub tftp_bytes: AtomicU64,
    pub boot_events_dropped: AtomicU64,
    /// Boot events waiting to be reported to the cloud (a gauge).
    pub boot_outbox: AtomicU64,
    /// Boot events by stage, in `Stage::ALL` order.
    boot_stages: [AtomicU64; 14],
    /// Time from a boot's first event to phone-home: bucket counts (by [`PHONE_HOME_BUCKETS`]
    /// upper bounds, then +Inf), the sum in ms and the count.
    phone_home_buckets: [AtomicU64; 12],
    phone_home_sum_ms: AtomicU64,
}

/// Upper bounds (seconds) of the time-to-phone-home histogram.
pub const PHONE_HOME_BUCKETS: [f64; 11] = [
    10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0,
];

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Counts a boot event of `stage`.
    pub fn count_stage(&self, stage: skyport_boot::flight::Stage) {
        if let Some(i) = skyport_boot::flight::Stage::ALL
            .iter()
            .position(|s| *s == stage)
        {
            inc(&self.boot_stages[i]);
        }
    }

    /// Adds a boot's time from its first event to phone-home.
    pub fn observe_phone_home(&self, ms: i64) {
        let s = ms.max(0) as f64 / 1000.0;
        let i = PHONE_HOME_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(PHONE_HOME_BUCKETS.len());
        inc(&self.phone_home_buckets[i]);
        self.phone_home_sum_ms
            .fetch_add(ms.max(0) as u64, Ordering::Relaxed);
    }

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
            "cache_disk_full",
            "Images waiting for disk space: their last download found no room for them (0: none).",
            "gauge",
            g(&self.cache_disk_full),
        );
        counter(
            "cache_disk_full_total",
            "Image downloads that failed because the cache's disk had no room for them.",
            "counter",
            g(&self.cache_disk_full_failures),
        );
        counter(
            "cache_downloads_deferred_total",
            "Prefetches skipped because the image is backing off after a failed download.",
            "counter",
            g(&self.cache_downloads_deferred),
        );
        counter(
            "cache_verified_files_total",
            "Cached files hashed again by the scheduled verification.",
            "counter",
            g(&self.cache_verified),
        );
        counter(
            "cache_last_verified_timestamp_seconds",
            "Unix time the last scheduled verification of the cache finished (0: none yet).",
            "gauge",
            self.cache_last_verified_at
                .load(Ordering::Relaxed)
                .to_string(),
        );
        counter(
            "image_reads_aborted_total",
            "Image responses cut short because a chunk failed its check (the file is dropped).",
            "counter",
            g(&self.image_reads_aborted),
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
            "jobs_pending",
            "Job tasks on hardware waiting to run, or whose result waits to be reported.",
            "gauge",
            g(&self.jobs_pending),
        );
        counter(
            "reports_pending",
            "Endpoint-history entries and unknown MACs waiting to be reported.",
            "gauge",
            g(&self.reports_pending),
        );
        for (name, help, c) in [
            (
                "dhcp_requests_total",
                "DHCP requests admitted for an answer.",
                &self.dhcp_requests,
            ),
            (
                "dhcp_replies_total",
                "DHCP replies sent (offers, ACKs, NAKs).",
                &self.dhcp_replies,
            ),
            (
                "dhcp_silent_total",
                "Admitted DHCP requests not answered (not for this server, or refused).",
                &self.dhcp_silent,
            ),
            (
                "dhcp_malformed_total",
                "DHCP datagrams that were not a valid request.",
                &self.dhcp_malformed,
            ),
            (
                "dhcp_rate_limited_total",
                "DHCP requests dropped by the per-MAC or in-flight limit.",
                &self.dhcp_rate_limited,
            ),
            (
                "tftp_transfers_total",
                "TFTP transfers completed.",
                &self.tftp_transfers,
            ),
            (
                "tftp_aborted_total",
                "TFTP transfers the client abandoned or stopped acknowledging.",
                &self.tftp_aborted,
            ),
            (
                "tftp_refused_total",
                "TFTP requests refused (unknown file, path outside the root, write, busy).",
                &self.tftp_refused,
            ),
            (
                "tftp_bytes_total",
                "Bytes sent over TFTP.",
                &self.tftp_bytes,
            ),
            (
                "boot_events_dropped_total",
                "Boot events not recorded (no node to file them under, or the recorder was full).",
                &self.boot_events_dropped,
            ),
        ] {
            counter(name, help, "counter", g(c));
        }
        counter(
            "boot_events_outbox",
            "Boot events waiting to be reported to the cloud.",
            "gauge",
            g(&self.boot_outbox),
        );
        let _ = writeln!(
            out,
            "# HELP skyport_edge_boot_stage_total Boot events recorded, by stage."
        );
        let _ = writeln!(out, "# TYPE skyport_edge_boot_stage_total counter");
        for (stage, c) in skyport_boot::flight::Stage::ALL
            .iter()
            .zip(&self.boot_stages)
        {
            let _ = writeln!(
                out,
                "skyport_edge_boot_stage_total{{stage=\"{}\"}} {}",
                stage.name(),
                g(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP skyport_edge_boot_time_to_phone_home_seconds Time from a boot's first event (DHCP) to the booted node's phone-home."
        );
        let _ = writeln!(
            out,
            "# TYPE skyport_edge_boot_time_to_phone_home_seconds histogram"
        );
        let mut cumulative = 0u64;
        for (i, c) in self.phone_home_buckets.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = PHONE_HOME_BUCKETS
                .get(i)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "+Inf".into());
            let _ = writeln!(
                out,
                "skyport_edge_boot_time_to_phone_home_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "skyport_edge_boot_time_to_phone_home_seconds_sum {}",
            self.phone_home_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "skyport_edge_boot_time_to_phone_home_seconds_count {cumulative}"
        );
        out
    }
}
