//! Console benchmark: the boot board of a large installation, as its live refresh asks for it
//! every two seconds. Seeds `nodes` components and their boot progress (one flight-recorder
//! record per node, most phoned home, some on their way, a few stuck) in the embedded store,
//! then times in process (the router, no network) `GET /console/boots/live` (the board's live
//! fragment: read every progress record, compute the board, render at most
//! `board::MAX_CELLS` cells) against the reference measured in the same run: `GET
//! /edge/v1/boots`, the JSON status route over the same records (read and count, no markup).
//! Also the full page and a node's page, and the fragment's size.
//!
//! Target: the fragment's p99 under 500 ms at 10,000 nodes (a quarter of the refresh
//! interval), and within 3× the JSON route's (rendering costs less than reading).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::body::Body;
use http_body_util::BodyExt;
use skyport_boot::flight::{self, BootEvent, Stage};
use skyport_store::Store;
use tower::ServiceExt;

use crate::{report, stats};

fn xname(i: usize) -> String {
    format!(
        "x{}c{}s{}b0n{}",
        1000 + i / 1024,
        (i / 128) % 8,
        (i / 4) % 32,
        i % 4
    )
}

async fn time(app: &axum::Router, uri: &str, n: usize) -> anyhow::Result<(crate::Stats, usize)> {
    let mut lat = Vec::with_capacity(n);
    let mut size = 0;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let r = app
            .clone()
            .oneshot(axum::http::Request::get(uri).body(Body::empty())?)
            .await?;
        anyhow::ensure!(r.status().is_success(), "{uri}: {}", r.status());
        size = r.into_body().collect().await?.to_bytes().len();
        lat.push(t.elapsed());
    }
    Ok((stats(lat, start.elapsed()), size))
}

pub async fn run(nodes: usize, requests: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(skyport_store_sqlite::SqliteStore::open(
        dir.path().join("bench.db"),
    )?);
    let now = skyport_model::now_ms();
    let seeded = Instant::now();
    let mut events = Vec::with_capacity(nodes * 3);
    for i in 0..nodes {
        let start = now - 120_000 - (i as i64 % 60) * 1000;
        let stages: &[Stage] = match i % 100 {
            0 => &[Stage::DhcpDiscover, Stage::DhcpAck],
            1..=4 => &[Stage::DhcpAck, Stage::BootScript, Stage::Kernel],
            _ => &[Stage::DhcpAck, Stage::Kernel, Stage::PhoneHome],
        };
        // Every hundredth node went silent long ago: stuck.
        let start = if i % 100 == 0 { now - 900_000 } else { start };
        for (k, s) in stages.iter().enumerate() {
            events.push(BootEvent {
                at_ms: start + k as i64 * 20_000,
                stage: *s,
                xname: xname(i),
                mac: String::new(),
                ip: String::new(),
                detail: String::new(),
                failed: false,
            });
        }
    }
    for chunk in events.chunks(3000) {
        flight::record(store.as_ref(), "east", chunk, 25)
            .await
            .context("seeding boot progress")?;
    }
    println!(
        "seeded {nodes} nodes' boot progress in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let console = skyport_console::Console::new(
        store.clone(),
        skyport_boot::BootService::new(store.clone(), skyport_ipxe::Settings::default()),
        skyport_console::Place::Local,
        skyport_console::SignIn::Off,
    )
    .router()
    .merge(skyport_boot::flight::router(store.clone()));
    // Warm the store's cache and the allocator once.
    time(&console, "/console/boots/live", 2).await?;
    let (json, json_size) = time(&console, "/edge/v1/boots", requests).await?;
    let (live, live_size) = time(&console, "/console/boots/live", requests).await?;
    let (page, page_size) = time(&console, "/console/boots", requests.div_ceil(2)).await?;
    let node = format!("/console/nodes/{}", xname(7));
    let (node_page, _) = time(&console, &node, requests).await?;
    println!("\nconsole, {nodes} nodes on the embedded store, in process:");
    report("GET /edge/v1/boots (JSON, reference)", &json, 500.0, "req");
    report("GET /console/boots/live (board)", &live, 500.0, "req");
    report("GET /console/boots (page)", &page, 500.0, "req");
    report("GET /console/nodes/{xname}", &node_page, 100.0, "req");
    println!(
        "board p99 / JSON p99: {:.2} (target ≤ 3)\nsizes: board fragment {} KB ({} cells at most), page {} KB, JSON {} KB",
        live.p99 / json.p99,
        live_size / 1024,
        skyport_console::board::MAX_CELLS,
        page_size / 1024,
        json_size / 1024
    );
    drop(dir);
    Ok(())
}
