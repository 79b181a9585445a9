//! Delivering pending notifications: each is matched against the subscriptions when first
//! tried (SMD's rule: one trigger per payload, by priority `State` > `Role` > `SubRole` >
//! `SoftwareStatus` > `Enabled`; values compared in any case; an `Enabled` subscription hears
//! enables and disables), then POSTed to every matching URL until each took it.
//!
//! At least once, in order per URL: a deliverer claims an event (a compare-and-swap on its
//! record) before sending, so two deliverers rarely send one event twice, and never lose it;
//! events are tried oldest first, and while an event waits for a URL (its retry, or another
//! deliverer's claim), that URL's later events wait behind it instead of overtaking it. A failed URL is retried with
//! exponential backoff ([`DeliveryOptions`]) until it answers 2xx or the event is
//! `give_up_after` old, when the event is dropped with an error in the log.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skyport_store::{PageRequest, Record, Store, StoreError, Write};
use skyport_wire::scn::{ScnPayload, ScnSubscription};
use tokio_util::sync::CancellationToken;

use super::events::{EVENTS, Event};
use super::subscriptions::SUBSCRIPTIONS;

/// How delivery behaves.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The whole of one POST, connection included.
    pub timeout: Duration,
    /// The wait before the first retry; doubled each time up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// Events older than this are dropped (logged) instead of retried.
    pub give_up_after: Duration,
    /// How long a claimed event is left to the deliverer that claimed it.
    pub lease: Duration,
    /// Events looked at per round.
    pub batch: usize,
    /// `User-Agent` of the POSTs.
    pub user_agent: String,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            batch: 200,
            user_agent: "skyport-smd".into(),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// POSTs a subscriber took.
    pub delivered: usize,
    /// POSTs that failed (to be retried).
    pub failed: usize,
    /// Events no subscription wanted.
    pub unwanted: usize,
    /// Events dropped after `give_up_after`.
    pub dropped: usize,
    /// Events left pending.
    pub pending: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("SCN delivery: {0}")]
    Store(#[from] StoreError),
    #[error("SCN delivery: HTTP client: {0}")]
    Client(String),
}

/// Whether subscription `s` wants payload `p` (SMD's `JobSCN.Run` matching).
pub fn wants(s: &ScnSubscription, p: &ScnPayload) -> bool {
    let s = &s.triggers;
    let any = |list: &[String], v: &str| list.iter().any(|x| x.eq_ignore_ascii_case(v));
    if !p.state.is_empty() {
        any(&s.states, &p.state)
    } else if !p.role.is_empty() {
        any(&s.roles, &p.role)
    } else if !p.sub_role.is_empty() {
        any(&s.sub_roles, &p.sub_role)
    } else if !p.software_status.is_empty() {
        any(&s.software_status, &p.software_status)
    } else if p.enabled.is_some() {
        s.enabled == Some(true)
    } else {
        false
    }
}

/// The URLs that want `p`, each once.
fn targets(subs: &[ScnSubscription], p: &ScnPayload) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in subs.iter().filter(|s| wants(s, p)) {
        if !out.contains(&s.url) {
            out.push(s.url.clone());
        }
    }
    out
}

/// Delivers the notifications of one store.
#[derive(Clone)]
pub struct Delivery {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    opts: DeliveryOptions,
}

impl Delivery {
    pub fn new(store: Arc<dyn Store>, opts: DeliveryOptions) -> Result<Self, DeliveryError> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(opts.user_agent.clone())
            .build()
            .map_err(|e| DeliveryError::Client(e.to_string()))?;
        Ok(Self { store, http, opts })
    }

    fn backoff(&self, attempts: u32) -> Duration {
        skyport_model::Backoff::new(self.opts.first_retry, self.opts.max_retry)
            .delay(attempts.saturating_sub(1))
    }

    async fn post(&self, url: &str, body: &str) -> Result<(), String> {
        let r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status().as_u16()))
        }
    }

    /// Stores `ev` over `prev` (`None` deletes); the stored record, or `None` when deleted or
    /// when another deliverer changed it first.
    async fn save(&self, prev: Record, ev: Option<&Event>) -> Result<Option<Record>, StoreError> {
        let (op, kept) = match ev {
            None => (
                Write::Delete {
                    table: EVENTS,
                    prev,
                },
                None,
            ),
            Some(ev) => {
                let body = serde_json::to_string(ev)
                    .map_err(|e| StoreError::InvalidBatch(format!("encoding an SCN event: {e}")))?;
                // The store's contract: a replace is the previous version + 1, which the next
                // compare-and-swap needs (no read back).
                let kept = Record {
                    version: prev.version + 1,
                    ..Record::new(prev.id.clone(), body.clone())
                };
                let op = Write::Put {
                    table: EVENTS,
                    record: Record::new(prev.id.clone(), body),
                    prev: Some(prev),
                };
                (op, Some(kept))
            }
        };
        match self.store.write(vec![op]).await {
            Ok(()) => Ok(kept),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tries every due event once (oldest first, up to `batch`).
    pub async fn round(&self) -> Result<Round, DeliveryError> {
        let page = self
            .store
            .list(EVENTS, None, PageRequest::first(self.opts.batch))
            .await?;
        let mut out = Round::default();
        let mut subs: Option<Vec<ScnSubscription>> = None;
        // URLs that failed this round, and when their failed event is due again.
        let mut down: std::collections::HashMap<String, i64> = Default::default();
        for r in page.records {
            let now = skyport_model::now_ms();
            let mut ev: Event = match serde_json::from_str(&r.body) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(event = %r.id, error = %e, "unreadable SCN event dropped");
                    self.save(r, None).await?;
                    continue;
                }
            };
            if ev.due_ms > now {
                // Waiting for a retry (or claimed by another deliverer): later events for its
                // URLs wait behind it, so no URL hears a newer change before an older one.
                for u in ev.targets.iter().flatten() {
                    down.entry(u.clone()).or_insert(ev.due_ms);
                }
                out.pending += 1;
                continue;
            }
            let want = match ev.targets.take() {
                Some(t) => t,
                None => {
                    if subs.is_none() {
                        let all = self.store.list_all(SUBSCRIPTIONS, None).await?;
                        let mut read = Vec::with_capacity(all.len());
                        for r in &all {
                            match serde_json::from_str(&r.body) {
                                Ok(s) => read.push(s),
                                Err(e) => tracing::error!(subscription = %r.id, error = %e,
                                    "unreadable SCN subscription skipped"),
                            }
                        }
                        subs = Some(read);
                    }
                    targets(subs.as_deref().unwrap_or_default(), &ev.payload)
                }
            };
            if want.is_empty() {
                out.unwanted += 1;
                self.save(r, None).await?;
                continue;
            }
            // URLs that failed earlier this round keep their order: this event waits too.
            let (wait, now_try): (Vec<String>, Vec<String>) =
                want.into_iter().partition(|u| down.contains_key(u));
            // Claim it, so another deliverer leaves it alone while it is sent.
            ev.targets = Some(now_try.iter().chain(&wait).cloned().collect());
            ev.due_ms = now + self.opts.lease.as_millis() as i64;
            let Some(claimed) = self.save(r, Some(&ev)).await? else {
                continue;
            };
            let body = serde_json::to_string(&ev.payload)
                .map_err(|e| StoreError::InvalidBatch(e.to_string()))?;
            let body = body.as_str();
            let sends = now_try
                .iter()
                .map(|u| async move { (u, self.post(u, body).await) });
            let mut left: Vec<String> = wait.clone();
            let mut errors = Vec::new();
            for (url, res) in futures::future::join_all(sends).await {
                match res {
                    Ok(()) => out.delivered += 1,
                    Err(e) => {
                        out.failed += 1;
                        tracing::warn!(url = %url, error = %e, event = %claimed.id, "SCN not taken; retrying later");
                        errors.push(format!("{url}: {e}"));
                        left.push(url.clone());
                    }
                }
            }
            if left.is_empty() {
                self.save(claimed, None).await?;
                continue;
            }
            if !errors.is_empty() {
                ev.attempts += 1;
                ev.last_error = errors.join("; ");
            }
            let age = now - ev.created_ms;
            if age > self.opts.give_up_after.as_millis() as i64 {
                tracing::error!(event = %claimed.id, urls = ?left, attempts = ev.attempts,
                    last_error = %ev.last_error, "SCN dropped: its subscribers did not take it in time");
                out.dropped += 1;
                self.save(claimed, None).await?;
                continue;
            }
            let retry_at = now + self.backoff(ev.attempts.max(1)).as_millis() as i64;
            let due = left
                .iter()
                .filter_map(|u| down.get(u).copied())
                .chain(std::iter::once(retry_at))
                .max()
                .unwrap_or(retry_at);
            for u in &left {
                down.entry(u.clone()).or_insert(due);
            }
            ev.due_ms = due;
            ev.targets = Some(left);
            out.pending += 1;
            self.save(claimed, Some(&ev)).await?;
        }
        Ok(out)
    }

    /// Rounds until nothing is due or `budget` is spent (a scheduled invocation's work).
    pub async fn drain(&self, budget: Duration) -> Result<Round, DeliveryError> {
        let started = Instant::now();
        let mut total = Round::default();
        loop {
            let r = self.round().await?;
            let busy = r.delivered + r.unwanted + r.dropped > 0;
            total.delivered += r.delivered;
            total.failed += r.failed;
            total.unwanted += r.unwanted;
            total.dropped += r.dropped;
            total.pending = r.pending;
            if !busy || started.elapsed() >= budget {
                return Ok(total);
            }
        }
    }

    /// Rounds every `every` until `cancel` (the local server's supervised task).
    pub async fn run(self, every: Duration, cancel: CancellationToken) {
        let mut seen_error = HashSet::new();
        while !cancel.is_cancelled() {
            match self.round().await {
                Ok(r) if r.delivered + r.failed + r.dropped > 0 => {
                    tracing::debug!(?r, "SCN delivery round");
                }
                Ok(_) => {}
                Err(e) => {
                    // Once per distinct error: a store outage must not flood the log.
                    if seen_error.insert(e.to_string()) {
                        tracing::warn!(error = %e, "SCN delivery round failed");
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sub(v: serde_json::Value) -> ScnSubscription {
        serde_json::from_value(v).unwrap()
    }

    fn pay(v: serde_json::Value) -> ScnPayload {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn smds_matching() {
        use serde_json::json;
        let states = sub(
            json!({"ID":1,"Subscriber":"a","Url":"http://a","States":["ready"],"Roles":["Compute"]}),
        );
        let enabled = sub(json!({"ID":2,"Subscriber":"b","Url":"http://b","Enabled":true}));
        let off = sub(
            json!({"ID":3,"Subscriber":"c","Url":"http://c","Enabled":false,"SoftwareStatus":["AdminDown"]}),
        );
        let ready = pay(json!({"Components":["x1"],"State":"Ready","Flag":"OK"}));
        let role = pay(json!({"Components":["x1"],"Role":"Compute","SubRole":"Worker"}));
        let disabled = pay(json!({"Components":["x1"],"Enabled":false}));
        let sw = pay(json!({"Components":["x1"],"SoftwareStatus":"admindown"}));
        assert!(wants(&states, &ready) && !wants(&enabled, &ready));
        assert!(wants(&states, &role), "Role SCNs match Roles");
        assert!(wants(&enabled, &disabled) && !wants(&off, &disabled));
        assert!(wants(&off, &sw));
        let subs = [states.clone(), states, enabled];
        assert_eq!(targets(&subs, &ready), ["http://a"], "one POST per URL");
    }
}
