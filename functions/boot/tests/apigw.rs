//! The boot function's app fed a real API Gateway HTTP API (payload v2) event, converted as
//! `lambda_http::run` converts it, and its configuration checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use skyport_store::Store;
use tower::ServiceExt;

/// The API Gateway event `name` (tests/events), converted as `lambda_http::run` converts it.
fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let lreq: LambdaRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    lambda_http::Request::from(lreq)
}

#[tokio::test]
async fn bootscript_event_reaches_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let get =
        |k: &str| (k == "SKYPORT_PUBLIC_URL").then(|| "https://boot.example.org/".to_string());
    let settings = skyport_fn_boot::settings_from_lookup(&get).unwrap();
    let app = skyport_fn_boot::app(store, settings, None, None);
    let resp = app.oneshot(event("get-bootscript.json")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    // Unknown node: the retry script, chaining to the configured public URL.
    assert!(body.starts_with("#!ipxe\nsleep 10\nchain https://boot.example.org/boot/v1/bootscript?mac=52:54:00:12:34:56&arch=${buildarch}&ts="), "{body}");
}

#[test]
fn settings_are_validated() {
    use skyport_fn_boot::settings_from_lookup;
    assert!(
        settings_from_lookup(&|_| None)
            .unwrap_err()
            .to_string()
            .contains("SKYPORT_PUBLIC_URL is required")
    );
    let bad = |k: &str| (k == "SKYPORT_PUBLIC_URL").then(|| "http://a b".to_string());
    assert!(settings_from_lookup(&bad).is_err());
    let bad_delay = |k: &str| match k {
        "SKYPORT_PUBLIC_URL" => Some("http://a".to_string()),
        "SKYPORT_BOOT_RETRY_DELAY" => Some("0".to_string()),
        _ => None,
    };
    assert!(
        settings_from_lookup(&bad_delay)
            .unwrap_err()
            .to_string()
            .contains("SKYPORT_BOOT_RETRY_DELAY")
    );
    let ok = |k: &str| (k == "SKYPORT_PUBLIC_URL").then(|| "http://10.0.0.1:8080/".to_string());
    let s = settings_from_lookup(&ok).unwrap();
    assert_eq!(
        s.advertise.as_deref(),
        Some("http://10.0.0.1:8080/cloud-init")
    );
}
