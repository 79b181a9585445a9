//! `skyport-bench contention`: concurrent writers on distinct components through the inventory
//! API on DynamoDB, with and without the edge sync change log.
//!
//! DynamoDB Local sits behind `skyport_testkit::dynamo_harness`, which adds the service's
//! transaction conflicts (a transaction touching an item another transaction holds is
//! cancelled; each holds its items for `--hold-ms` after Local answered, standing in for the
//! service's commit window). Each writer creates or updates its own components with one
//! `POST /hsm/v2/State/Components` each, so no two requests touch the same component. The
//! reference run is the plain store; the measured run wraps it in `skyport_sync::ChangeLog`, as
//! the Lambdas do, with every writer's cabinet assigned to one site, so each write also reads
//! where its component belongs and adds that site's change entry (and, on create, an index
//! item) to its transaction. (Until issue 14 this wrapper was the sync generation stamp, one
//! item shared by every transaction: see BENCHMARKS.md.) Printed: requests that succeeded,
//! answered 503 (a race lost after the service's retries) or anything else, transactions
//! cancelled at DynamoDB, throughput, and the ratio of the two runs.
//!
//! What the harness does not emulate (see its module header): latency other than the hold,
//! partition splits, and the service's per-item write limit unless `--item-rate` is given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use skyport_store::Store;
use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig, HarnessStats};

pub struct Params {
    pub writers: usize,
    pub writes: usize,
    pub hold: Duration,
    pub item_rate: Option<u32>,
}

struct Run {
    ok: usize,
    unavailable: usize,
    other: usize,
    cancelled: u64,
    transactions: u64,
    elapsed: Duration,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn xname(writer: usize, i: usize) -> String {
    // Cabinet per writer; 48 slots × 8 nodes per cabinet.
    format!("x{}c0s{}b0n{}", 3000 + writer, i % 48, (i / 48) % 8)
}

async fn run_one(
    store: Arc<dyn Store>,
    harness: &DynamoHarness,
    p: &Params,
) -> anyhow::Result<Run> {
    let app = skyport_http::app(skyport_inventory::router(
        skyport_inventory::Inventory::new(store),
    ));
    let stats = harness.stats();
    let (c0, t0) = (
        HarnessStats::get(&stats.conflicts),
        HarnessStats::get(&stats.transactions),
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..p.writers {
        let app = app.clone();
        let writes = p.writes;
        tasks.spawn(async move {
            let (mut ok, mut unavailable, mut other) = (0, 0, 0);
            for i in 0..writes {
                let body = json!({"Components": [{"ID": xname(w, i), "State": "Ready",
                                                  "Role": "Compute", "Arch": "X86"}]});
                let req = Request::post("/hsm/v2/State/Components")
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))?;
                let r = skyport_testkit::app::send(&app, req).await;
                match r.status.as_u16() {
                    200..=299 => ok += 1,
                    503 => unavailable += 1,
                    _ => other += 1,
                }
            }
            anyhow::Ok((ok, unavailable, other))
        });
    }
    let mut run = Run {
        ok: 0,
        unavailable: 0,
        other: 0,
        cancelled: 0,
        transactions: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(r) = tasks.join_next().await {
        let (ok, unavailable, other) = r??;
        run.ok += ok;
        run.unavailable += unavailable;
        run.other += other;
    }
    run.elapsed = start.elapsed();
    run.cancelled = HarnessStats::get(&stats.conflicts) - c0;
    run.transactions = HarnessStats::get(&stats.transactions) - t0;
    Ok(run)
}

pub async fn run(p: Params) -> anyhow::Result<()> {
    let ddb = skyport_testkit::DynamoLocal::start().context("DynamoDB Local")?;
    let harness = DynamoHarness::start(
        &ddb.endpoint(),
        HarnessConfig {
            hold: p.hold,
            item_writes_per_sec: p.item_rate,
            ..HarnessConfig::default()
        },
    )
    .await?;
    let client = skyport_testkit::dynamo_client(&harness.endpoint(), None).await;
    println!(
        "contention: {} writers × {} writes on distinct components, DynamoDB Local behind the \
         conflict harness (hold {} ms{}), {} CPUs",
        p.writers,
        p.writes,
        p.hold.as_millis(),
        p.item_rate
            .map(|r| format!(", {r} writes/s per item"))
            .unwrap_or_default(),
        crate::cpus()
    );
    let plain = skyport_store_dynamo::DynamoStore::new(client.clone(), "contention-plain");
    plain.ensure_table().await?;
    let stamped = skyport_store_dynamo::DynamoStore::new(client, "contention-logged");
    stamped.ensure_table().await?;
    // Every writer's cabinet belongs to one site: all change entries go to its partition.
    for w in 0..p.writers {
        let a = skyport_sites::Assignment {
            xname: format!("x{}", 3000 + w),
            site: "east".into(),
            source: "admin".into(),
            assigned_at: 0,
        };
        stamped.write(vec![a.create()?]).await?;
    }
    let reference = run_one(Arc::new(plain), &harness, &p).await?;
    let measured = run_one(
        Arc::new(skyport_sync::ChangeLog::new(Arc::new(stamped))),
        &harness,
        &p,
    )
    .await?;
    println!(
        "{:<34} {:>6} {:>6} {:>6} {:>12} {:>9} {:>9}",
        "store", "ok", "503", "other", "cancelled", "txns", "ok/s"
    );
    for (name, r) in [
        ("plain (reference)", &reference),
        ("with the change log (one site)", &measured),
    ] {
        println!(
            "{:<34} {:>6} {:>6} {:>6} {:>12} {:>9} {:>9.0}",
            name,
            r.ok,
            r.unavailable,
            r.other,
            r.cancelled,
            r.transactions,
            r.per_sec()
        );
    }
    println!(
        "throughput ratio logged/plain: {:.2}; requests lost to contention (503): {} of {}",
        measured.per_sec() / reference.per_sec().max(1e-9),
        measured.unavailable,
        p.writers * p.writes
    );
    Ok(())
}
