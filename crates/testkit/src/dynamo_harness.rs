//! A DynamoDB front for tests that behaves like the service where DynamoDB Local does not.
//!
//! DynamoDB Local applies transactions one at a time and never reports a conflict or a
//! throttle (tried: 16 threads × 100 transactions sharing one item, zero conflicts). The real
//! service does both, and code that is only ever tested on Local never meets them:
//!
//! - **Transaction conflicts.** A `TransactWriteItems` that touches an item another
//!   `TransactWriteItems` is still committing fails whole with `TransactionCanceledException`,
//!   reason `TransactionConflict` for that item; a plain `PutItem`/`UpdateItem`/`DeleteItem` on
//!   such an item fails with `TransactionConflictException`. Here a transaction holds its items
//!   (every `Put`, `Update`, `Delete` and `ConditionCheck`) from its arrival until Local has
//!   answered plus [`HarnessConfig::hold`], which stands in for the service's commit window.
//! - **Throttling.** A configurable share of data-plane calls is refused with
//!   `ProvisionedThroughputExceededException` or `ThrottlingException` (alternately), which the
//!   SDK retries with backoff like the real ones; and each item takes at most
//!   [`HarnessConfig::item_writes_per_sec`] writes a second (the service's per-partition limit
//!   is 1,000 write units), beyond which writes are throttled.
//!
//! What it does not emulate: reads that conflict with transactions (`TransactGetItems`),
//! idempotency tokens, eventual consistency of reads, and latency other than the hold.
//!
//! Everything else is forwarded to DynamoDB Local unchanged, and Local's answer (with its
//! CRC32 header) goes back unchanged.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How hard the front is.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// How long a transaction keeps its items after Local answered it.
    pub hold: Duration,
    /// Data-plane calls refused as throttled, per thousand (0 = none).
    pub throttle_per_mille: u32,
    /// Writes one item takes per second before it is throttled (`None` = no limit).
    pub item_writes_per_sec: Option<u32>,
    /// The table's key attributes (the Skyport store's `pk` and `sk`).
    pub key_attributes: [&'static str; 2],
    /// Keep the items of every write call ([`DynamoHarness::write_log`]), to prove which
    /// writes meet on an item.
    pub record_writes: bool,
}

impl HarnessConfig {
    /// What API suites run behind: transactions keep their items a few milliseconds (so
    /// concurrent writers meet `TransactionConflict`) and 2% of calls are throttled (the SDK
    /// retries them), as DynamoDB does under load and Local never does.
    pub fn api_suite() -> Self {
        HarnessConfig {
            throttle_per_mille: 20,
            hold: Duration::from_millis(5),
            ..HarnessConfig::default()
        }
    }
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            hold: Duration::from_millis(20),
            throttle_per_mille: 0,
            item_writes_per_sec: None,
            key_attributes: ["pk", "sk"],
            record_writes: false,
        }
    }
}

/// What the front did, counted.
#[derive(Debug, Default)]
pub struct HarnessStats {
    pub transactions: AtomicU64,
    /// Transactions cancelled for a conflict.
    pub conflicts: AtomicU64,
    /// Single-item writes refused for a transaction in progress on the item.
    pub write_conflicts: AtomicU64,
    /// Calls refused as throttled (the random share and the per-item limit).
    pub throttled: AtomicU64,
    pub forwarded: AtomicU64,
}

impl HarnessStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The running front; stopped when dropped.
pub struct DynamoHarness {
    addr: SocketAddr,
    stats: Arc<HarnessStats>,
    log: Arc<Mutex<Vec<Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DynamoHarness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DynamoHarness {
    /// A front on a free loopback port forwarding to `upstream` (DynamoDB Local's endpoint).
    pub async fn start(upstream: &str, config: HarnessConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the DynamoDB harness")?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(HarnessStats::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let inner = Arc::new(Inner {
            log: log.clone(),
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            config,
            stats: stats.clone(),
            held: Mutex::new(HashSet::new()),
            writes: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(inner);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("DynamoDB harness stopped: {e}");
            }
        });
        Ok(DynamoHarness {
            addr,
            stats,
            log,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`, to give the SDK as its endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> &HarnessStats {
        &self.stats
    }

    /// The items each write call forwarded so far named (`TransactWriteItems` and single
    /// writes alike), each as `pk sk`, and forgets them (with
    /// [`HarnessConfig::record_writes`]; empty otherwise).
    pub fn write_log(&self) -> Vec<Vec<String>> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// An item, as `table \0 key-attribute JSON ...`.
type ItemKey = String;

struct Inner {
    upstream: String,
    http: reqwest::Client,
    config: HarnessConfig,
    stats: Arc<HarnessStats>,
    /// Items of the transactions in progress.
    held: Mutex<HashSet<ItemKey>>,
    /// Per item: the second its writes are counted in, and how many.
    writes: Mutex<HashMap<ItemKey, (Instant, u32)>>,
    calls: AtomicU64,
    log: Arc<Mutex<Vec<Vec<String>>>>,
}

/// Releases a transaction's items when it is done, however it ends.
struct Held<'a> {
    inner: &'a Inner,
    keys: Vec<ItemKey>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.inner.held.lock() {
            for k in &self.keys {
                held.remove(k);
            }
        }
    }
}

impl Inner {
    fn item_key(&self, table: &str, attrs: &serde_json::Map<String, Value>) -> ItemKey {
        let mut k = table.to_string();
        for a in self.config.key_attributes {
            k.push('\0');
            k.push_str(&attrs.get(a).map(Value::to_string).unwrap_or_default());
        }
        k
    }

    /// The item a single write or one entry of a transaction names.
    fn key_of(&self, req: &Value) -> Option<ItemKey> {
        let table = req.get("TableName")?.as_str()?;
        let attrs = req.get("Key").or_else(|| req.get("Item"))?.as_object()?;
        Some(self.item_key(table, attrs))
    }

    /// Notes a forwarded write's items, readably (`pk sk`, without the table and quotes).
    fn record(&self, keys: &[ItemKey]) {
        if !self.config.record_writes {
            return;
        }
        let readable = keys
            .iter()
            .map(|k| {
                let parts: Vec<&str> = k.split('\0').skip(1).collect();
                let v: Vec<String> = parts
                    .iter()
                    .map(|p| {
                        serde_json::from_str::<Value>(p)
                            .ok()
                            .and_then(|v| v.get("S").and_then(Value::as_str).map(str::to_string))
                            .unwrap_or_else(|| (*p).to_string())
                    })
                    .collect();
                v.join(" ")
            })
            .collect();
        if let Ok(mut l) = self.log.lock() {
            l.push(readable);
        }
    }

    /// The random share: every `1000 / throttle_per_mille`-th call, spread by a counter so a
    /// run is repeatable.
    fn throttle_roll(&self) -> bool {
        let per_mille = u64::from(self.config.throttle_per_mille);
        if per_mille == 0 {
            return false;
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        // Multiplicative hashing spreads the refusals instead of bunching them.
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000 < per_mille
    }

    /// Counts a write of each of `keys`; false if one of them is over its per-second limit.
    fn within_item_rate(&self, keys: &[ItemKey]) -> bool {
        let Some(limit) = self.config.item_writes_per_sec else {
            return true;
        };
        let Ok(mut writes) = self.writes.lock() else {
            return true;
        };
        let now = Instant::now();
        let mut ok = true;
        for k in keys {
            let e = writes.entry(k.clone()).or_insert((now, 0));
            if now.duration_since(e.0) >= Duration::from_secs(1) {
                *e = (now, 0);
            }
            e.1 += 1;
            ok &= e.1 <= limit;
        }
        ok
    }
}

fn error(kind: &str, message: &str, extra: Value) -> Response {
    let mut body = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(x.clone());
    }
    let mut r = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

fn throttled(inner: &Inner) -> Response {
    let n = inner.stats.throttled.fetch_add(1, Ordering::Relaxed);
    if n.is_multiple_of(2) {
        error(
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
            Value::Null,
        )
    } else {
        error(
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
            Value::Null,
        )
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string();
    let data_plane = matches!(
        op.as_str(),
        "GetItem"
            | "BatchGetItem"
            | "Query"
            | "Scan"
            | "PutItem"
            | "UpdateItem"
            | "DeleteItem"
            | "BatchWriteItem"
            | "TransactWriteItems"
            | "TransactGetItems"
    );
    if data_plane && inner.throttle_roll() {
        return throttled(&inner);
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match op.as_str() {
        "TransactWriteItems" => transact(&inner, &headers, body, &req).await,
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            let key = inner.key_of(&req);
            if let Some(k) = &key {
                let busy = inner.held.lock().map(|h| h.contains(k)).unwrap_or(false);
                if busy {
                    inner.stats.write_conflicts.fetch_add(1, Ordering::Relaxed);
                    return error(
                        "TransactionConflictException",
                        "Transaction is ongoing for the item",
                        Value::Null,
                    );
                }
            }
            if !inner.within_item_rate(key.as_slice()) {
                return throttled(&inner);
            }
            inner.record(key.as_slice());
            forward(&inner, &headers, body).await
        }
        _ => forward(&inner, &headers, body).await,
    }
}

async fn transact(inner: &Inner, headers: &HeaderMap, body: Bytes, req: &Value) -> Response {
    inner.stats.transactions.fetch_add(1, Ordering::Relaxed);
    let keys: Vec<Option<ItemKey>> = req
        .get("TransactItems")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|it| {
                    ["Put", "Update", "Delete", "ConditionCheck"]
                        .iter()
                        .find_map(|kind| it.get(*kind))
                        .and_then(|r| inner.key_of(r))
                })
                .collect()
        })
        .unwrap_or_default();
    let claimed: Vec<ItemKey> = keys.iter().flatten().cloned().collect();
    let hits: Vec<bool> = {
        let Ok(mut held) = inner.held.lock() else {
            return forward(inner, headers, body).await;
        };
        let hits: Vec<bool> = keys
            .iter()
            .map(|k| k.as_ref().is_some_and(|k| held.contains(k)))
            .collect();
        if !hits.contains(&true) {
            held.extend(claimed.iter().cloned());
        }
        hits
    };
    if hits.contains(&true) {
        inner.stats.conflicts.fetch_add(1, Ordering::Relaxed);
        let reasons: Vec<Value> = hits
            .iter()
            .map(|hit| {
                if *hit {
                    json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                } else {
                    json!({"Code": "None"})
                }
            })
            .collect();
        let codes: Vec<&str> = hits
            .iter()
            .map(|h| if *h { "TransactionConflict" } else { "None" })
            .collect();
        return error(
            "TransactionCanceledException",
            &format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
            json!({ "CancellationReasons": reasons }),
        );
    }
    let _held = Held {
        inner,
        keys: claimed.clone(),
    };
    if !inner.within_item_rate(&claimed) {
        return throttled(inner);
    }
    inner.record(&claimed);
    let answer = forward(inner, headers, body).await;
    tokio::time::sleep(inner.config.hold).await;
    answer
}

async fn forward(inner: &Inner, headers: &HeaderMap, body: Bytes) -> Response {
    inner.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let mut req = inner.http.post(format!("{}/", inner.upstream)).body(body);
    for (name, value) in headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("DynamoDB harness: upstream unreachable: {e}"),
            )
                .into_response();
        }
    };
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in resp.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().extend(out_headers);
    r
}
