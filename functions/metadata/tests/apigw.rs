//! The metadata function's app fed a real API Gateway HTTP API (payload v2) event: the node is
//! identified by the X-Forwarded-For header API Gateway sets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use tower::ServiceExt;

#[tokio::test]
async fn meta_data_event_identifies_the_node_by_forwarded_ip() {
    let dir = tempfile::tempdir().unwrap();
    let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap();
    let base_url = "https://ci.example.org/cloud-init".to_string();
    let app = skyport_fn_metadata::app(Arc::new(store), base_url, None);
    let resp = app.oneshot(event("get-meta-data.json")).await.unwrap();
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

/// The API Gateway event `name` (tests/events), converted as `lambda_http::run` converts it.
fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let lreq: LambdaRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    lambda_http::Request::from(lreq)
}
