//! A reservation's expiry. Waiting out SMD's shortest reservation (a minute) would make the
//! test slow, so the test stands in for the clock: it rewrites a live reservation's stored
//! expiry into the past, exactly what the passing of time does to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use skyport_store::{Record, Write};

const RESERVATIONS: skyport_store::Table = skyport_store::Table("Reservations");

#[tokio::test]
async fn an_expired_reservation_is_gone_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::store_sqlite(&dir);
    let api = common::api(store.clone());
    let body = json!({"Components": [{"ID": "x1000c0s0b0n0", "State": "Ready"}]});
    api.call("POST", "/hsm/v2/State/Components", "", Some(body))
        .await
        .expect(204);
    let reserve = json!({"ComponentIDs": ["x1000c0s0b0n0"], "ReservationDuration": 1});
    let r = api
        .call(
            "POST",
            "/hsm/v2/locks/service/reservations",
            "",
            Some(reserve.clone()),
        )
        .await
        .expect(200);
    let dk = r.body["Success"][0]["DeputyKey"].clone();
    let rk = r.body["Success"][0]["ReservationKey"].clone();
    // A second service is refused while it holds.
    api.call(
        "POST",
        "/hsm/v2/locks/service/reservations",
        "",
        Some(reserve.clone()),
    )
    .await
    .expect(400);

    // Time passes: the reservation's end is now behind us.
    let prev = store
        .get(RESERVATIONS, "x1000c0s0b0n0")
        .await
        .unwrap()
        .unwrap();
    let mut v: Value = serde_json::from_str(&prev.body).unwrap();
    v["ExpirationTime"] = json!("2026-01-01T00:00:00Z");
    let record = Record::new(prev.id.clone(), v.to_string());
    store
        .write(vec![Write::Put {
            table: RESERVATIONS,
            record,
            prev: Some(prev),
        }])
        .await
        .unwrap();

    let status = json!({"ComponentIDs": ["x1000c0s0b0n0"]});
    let r = api
        .call("POST", "/hsm/v2/locks/status", "", Some(status))
        .await
        .expect(200);
    assert_eq!(r.body["Components"][0]["Reserved"], false, "{}", r.body);
    let check = json!({"DeputyKeys": [{"ID": "x1000c0s0b0n0", "Key": dk}]});
    let r = api
        .call(
            "POST",
            "/hsm/v2/locks/service/reservations/check",
            "",
            Some(check),
        )
        .await
        .expect(200);
    assert_eq!(r.body["Failure"][0]["Reason"], "NotFound", "{}", r.body);
    let renew =
        json!({"ReservationKeys": [{"ID": "x1000c0s0b0n0", "Key": rk}], "ReservationDuration": 5});
    api.call(
        "POST",
        "/hsm/v2/locks/service/reservations/renew",
        "",
        Some(renew),
    )
    .await
    .expect(400);
    // The next service gets the component, and an admin may lock it once that one ends.
    let r = api
        .call(
            "POST",
            "/hsm/v2/locks/service/reservations",
            "",
            Some(reserve),
        )
        .await
        .expect(200);
    assert_ne!(r.body["Success"][0]["DeputyKey"], dk);
}
