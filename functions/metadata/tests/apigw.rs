//! The metadata function's app fed a real API Gateway HTTP API (payload v2) event: the node is
//! identified by the X-Forwarded-For header API Gateway sets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use skyport_store::Store;
use tower::ServiceExt;

#[tokio::test]
async fn meta_data_event_identifies_the_node_by_forwarded_ip() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let app = skyport_fn_metadata::app(store, "https://ci.example.org/cloud-init".into(), None);
    let text = std::fs::read_to_string(format!(
        "{}/tests/events/get-meta-data.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let lreq: LambdaRequest = serde_json::from_str(&text).unwrap();
    let resp = app.oneshot(lambda_http::Request::from(lreq)).await.unwrap();
    // No node has 192.0.2.10: upstream's 422.
    assert_eq!(resp.status(), 422);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["detail"].as_str().unwrap().contains("192.0.2.10"), "{v}");
}

#[test]
fn base_url_is_required_and_validated() {
    use skyport_fn_metadata::base_url_from_lookup;
    assert!(base_url_from_lookup(&|_| None).is_err());
    assert!(base_url_from_lookup(&|_| Some("ftp://x".into())).is_err());
    assert_eq!(
        base_url_from_lookup(&|_| Some("https://a/ci/".into())).unwrap(),
        "https://a/ci"
    );
}
