//! The function's app fed real API Gateway HTTP API (payload v2) events, converted exactly as
//! `lambda_http::run` converts them: paths, repeated query parameters, base64 bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use skyport_store::Store;
use tower::ServiceExt;

async fn invoke(
    app: &tower_http::normalize_path::NormalizePath<axum::Router>,
    event: &str,
) -> (u16, serde_json::Value) {
    let path = format!("{}/tests/events/{event}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let lreq: LambdaRequest = serde_json::from_str(&text).unwrap();
    let req: lambda_http::Request = lreq.into();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn api_gateway_v2_events_reach_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let app = skyport_fn_inventory::app(store);
    let (status, _) = invoke(&app, "post-components.json").await;
    assert_eq!(status, 204);
    let (status, body) = invoke(&app, "get-components.json").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["Components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["x1c0s0b0", "x1c0s0b0n0"]);
}
