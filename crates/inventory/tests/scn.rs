//! SMD's state change notifications end to end: subscriptions and component changes through the
//! real Router on a [`Notifying`] store, delivered by [`Delivery`] to a real HTTP subscriber on
//! 127.0.0.1 that refuses POSTs when told to. Runs on the embedded store and on DynamoDB Local
//! behind `skyport_testkit::dynamo_harness` (which adds the transaction conflicts and
//! throttling Local never produces): every change a subscriber wants reaches it exactly once,
//! even when the writes that made the changes lost races and were recomputed, and even when the
//! subscriber was down and the deliverer restarted meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use common::Api;
use serde_json::{Value, json};
use skyport_inventory::scn::events::EVENTS;
use skyport_inventory::scn::{Delivery, DeliveryOptions, Notifying};
use skyport_store::Store;

/// A subscriber: records what each of its paths received; refuses (503) while `refuse` > 0,
/// counting down, or always while `down`.
#[derive(Clone, Default)]
struct Subscriber {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    refuse: Arc<AtomicUsize>,
    down: Arc<std::sync::atomic::AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Subscriber {
    async fn start(&self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .route(
                "/{name}",
                axum::routing::post(
                    |State(s): State<Subscriber>, Path(name): Path<String>, body: String| async move {
                        let refuse = s.down.load(Ordering::SeqCst)
                            || s
                                .refuse
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                        if refuse {
                            s.refused.fetch_add(1, Ordering::SeqCst);
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let v: Value = serde_json::from_str(&body).unwrap();
                        s.got.lock().unwrap().push((name, v));
                        StatusCode::OK
                    },
                ),
            )
            .with_state(self.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        });
        (addr, h)
    }

    fn of(&self, name: &str) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn delivery(store: &Arc<dyn Store>) -> Delivery {
    Delivery::new(
        store.clone(),
        DeliveryOptions {
            timeout: Duration::from_secs(2),
            first_retry: Duration::from_millis(50),
            max_retry: Duration::from_millis(200),
            ..DeliveryOptions::default()
        },
    )
    .unwrap()
}

/// Rounds until `done` or 20 s.
async fn deliver_until(d: &Delivery, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        let r = d.round().await.unwrap();
        assert!(
            Instant::now() < deadline,
            "not delivered: {what}; last round {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn patch(api: &Api, path: &str, body: Value) {
    api.call(
        "PATCH",
        &format!("/hsm/v2/State/Components{path}"),
        "",
        Some(body),
    )
    .await
    .expect(204);
    // Events are ordered by the millisecond they were stored in.
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// POSTs components `xnames` in `state`.
async fn create(api: &Api, xnames: &[impl AsRef<str>], state: &str) {
    let comps: Vec<Value> = xnames
        .iter()
        .map(|x| json!({"ID": x.as_ref(), "State": state}))
        .collect();
    api.call(
        "POST",
        "/hsm/v2/State/Components",
        "",
        Some(json!({"Components": comps})),
    )
    .await
    .expect(204);
}

async fn scenario(store: Arc<dyn Store>) {
    let store = Notifying::wrap(store);
    let api = common::api(store.clone());
    let sub = Subscriber {
        refuse: Arc::new(AtomicUsize::new(2)),
        ..Subscriber::default()
    };
    let (addr, server) = sub.start().await;
    let subscribe = |body: Value| api.call("POST", "/hsm/v2/Subscriptions/SCN", "", Some(body));
    let a = subscribe(
        json!({"Subscriber": "hmnfd", "States": ["ready"], "Url": format!("http://{addr}/a")}),
    )
    .await
    .expect(200);
    assert_eq!(a.body["ID"], 1);
    let b = subscribe(json!({"Subscriber": "bos", "Enabled": true, "Roles": ["Service"], "Url": format!("http://{addr}/b")}))
        .await
        .expect(200);
    assert_eq!(b.body["ID"], 2);

    let nodes = ["x1c0s0b0n0", "x1c0s0b0n1"];
    create(&api, &nodes, "On").await;
    patch(
        &api,
        "/BulkStateData",
        json!({"ComponentIDs": nodes, "State": "Ready"}),
    )
    .await;
    patch(
        &api,
        &format!("/{}/Enabled", nodes[0]),
        json!({"Enabled": false}),
    )
    .await;
    patch(
        &api,
        &format!("/{}/Role", nodes[1]),
        json!({"Role": "Service"}),
    )
    .await;
    // A change that was refused (a stale If-Match) is not notified.
    let stale = api
        .raw(
            "PATCH",
            &format!("/hsm/v2/State/Components/{}", nodes[0]),
            &[("content-type", "application/json"), ("if-match", "\"1\"")],
            br#"{"Enabled": true}"#.to_vec(),
        )
        .await;
    assert_eq!(stale.status.as_u16(), 412);

    let d = delivery(&store);
    deliver_until(&d, "a and b", || {
        sub.of("a").len() == 1 && sub.of("b").len() == 2
    })
    .await;
    assert_eq!(
        sub.of("a"),
        [json!({"Components": nodes, "Flag": "OK", "State": "Ready"})]
    );
    assert_eq!(
        sub.refused.load(Ordering::SeqCst),
        2,
        "refused twice, then taken"
    );
    assert_eq!(
        sub.of("b"),
        [
            json!({"Components": [nodes[0]], "Enabled": false}),
            json!({"Components": [nodes[1]], "Role": "Service"}),
        ]
    );

    // The subscriber goes down; changes wait, across a restart of the deliverer.
    sub.down.store(true, Ordering::SeqCst);
    api.call(
        "PATCH",
        "/hsm/v2/Subscriptions/SCN/1",
        "",
        Some(json!({"Op": "add", "States": ["Off"]})),
    )
    .await
    .expect(204);
    patch(
        &api,
        &format!("/{}/StateData", nodes[0]),
        json!({"State": "Off"}),
    )
    .await;
    patch(
        &api,
        &format!("/{}/StateData", nodes[1]),
        json!({"State": "Off"}),
    )
    .await;
    let mut failed = 0;
    for _ in 0..5 {
        let r = d.round().await.unwrap();
        failed += r.failed;
        assert_eq!(r.delivered, 0);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(failed >= 2, "retried while down: {failed}");
    assert_eq!(store.list_all(EVENTS, None).await.unwrap().len(), 2);
    let waiting = store.list_all(EVENTS, None).await.unwrap();
    assert!(
        waiting
            .iter()
            .all(|r| r.body.contains("\"due_ms\":") && r.body.contains("/a\"")),
        "both wait for a retry to /a: {waiting:?}"
    );
    drop(d);
    sub.down.store(false, Ordering::SeqCst);
    // A newer change, while the older ones still wait for their retry, never overtakes them.
    patch(
        &api,
        &format!("/{}/StateData", nodes[0]),
        json!({"State": "Ready"}),
    )
    .await;
    let d = delivery(&store);
    deliver_until(&d, "after the outage", || sub.of("a").len() == 4).await;
    assert_eq!(
        sub.of("a")[1..],
        [
            json!({"Components": [nodes[0]], "Flag": "OK", "State": "Off"}),
            json!({"Components": [nodes[1]], "Flag": "OK", "State": "Off"}),
            json!({"Components": [nodes[0]], "Flag": "OK", "State": "Ready"}),
        ],
        "in the order they happened"
    );

    // Concurrent writers, each setting two nodes Ready and every node set by two of them:
    // the writes race (lost races are recomputed from fresh data), and each node's one change
    // to Ready is told once, whichever writer made it.
    let many: Vec<String> = (0..12).map(|i| format!("x2c0s{i}b0n0")).collect();
    create(&api, &many, "Off").await;
    let writers = (0..many.len()).map(|i| {
        let (api, pair) = (&api, [&many[i], &many[(i + 1) % many.len()]]);
        async move {
            api.call(
                "PATCH",
                "/hsm/v2/State/Components/BulkStateData",
                "",
                Some(json!({"ComponentIDs": pair, "State": "Ready"})),
            )
            .await
            .expect(204);
        }
    });
    futures::future::join_all(writers).await;
    let told = |state: &str| -> Vec<String> {
        let mut v: Vec<String> = sub
            .of("a")
            .iter()
            .filter(|p| p["State"] == state)
            .flat_map(|p| p["Components"].as_array().unwrap().clone())
            .map(|x| x.as_str().unwrap().to_string())
            .filter(|x| x.starts_with("x2"))
            .collect();
        v.sort();
        v
    };
    let mut want = many.clone();
    want.sort();
    deliver_until(&d, "the racing writers' changes", || {
        told("Ready").len() >= many.len()
    })
    .await;
    for _ in 0..3 {
        d.round().await.unwrap();
    }
    assert_eq!(
        told("Ready"),
        want,
        "each node became Ready once, and was told once"
    );
    assert_eq!(told("Off"), want, "each node was created Off");
    assert!(
        store.list_all(EVENTS, None).await.unwrap().is_empty(),
        "nothing left pending"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scn_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(common::store_sqlite(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scn_on_dynamodb_local() {
    use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig};
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let harness = DynamoHarness::start(&ddb.endpoint(), HarnessConfig::api_suite())
        .await
        .unwrap();
    scenario(common::store_dynamo(&harness.endpoint(), "skyport-scn").await).await;
}
