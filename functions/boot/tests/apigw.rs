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
    let app = skyport_fn_boot::app(store, settings, None, None, None);
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

/// The console through the gateway: API Gateway's payload v2 carries the browser's cookies in
/// a `cookies` array, not a `Cookie` header; `lambda_http` must hand them to the pages.
#[tokio::test]
async fn a_console_page_reads_its_session_from_the_events_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let issuer = skyport_auth::LocalIssuer::load_or_create(dir.path()).unwrap();
    let jwks = skyport_auth::Jwks::new(
        skyport_auth::KeySource::Static(issuer.jwks().clone()),
        skyport_auth::local::LOCAL_ISSUER,
        vec![skyport_auth::local::LOCAL_AUDIENCE.to_string()],
    );
    let token = issuer
        .mint(
            "alice",
            &["read".to_string()],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let get =
        |k: &str| (k == "SKYPORT_PUBLIC_URL").then(|| "https://boot.example.org/".to_string());
    let settings = skyport_fn_boot::settings_from_lookup(&get).unwrap();
    let app = skyport_fn_boot::app(store, settings, None, Some(Arc::new(jwks)), None);
    let event = |cookies: serde_json::Value| {
        let v = serde_json::json!({
            "version": "2.0", "routeKey": "ANY /console/{proxy+}", "rawPath": "/console/boots",
            "rawQueryString": "", "cookies": cookies,
            "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
                "http": {"method": "GET", "path": "/console/boots", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.10", "userAgent": "Mozilla/5.0"},
                "requestId": "req-2", "routeKey": "ANY /console/{proxy+}", "stage": "$default",
                "time": "24/Nov/2026:07:00:00 +0000", "timeEpoch": 1795500000000u64},
            "pathParameters": {"proxy": "boots"}, "isBase64Encoded": false});
        let lreq: LambdaRequest = serde_json::from_value(v).unwrap();
        lambda_http::Request::from(lreq)
    };
    let resp = app
        .clone()
        .oneshot(event(serde_json::json!(["theme=dark"])))
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "no session: sign in first");
    let resp = app
        .oneshot(event(serde_json::json!([
            "theme=dark",
            format!("skyport_console={token}")
        ])))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.contains("<h1>Boot board</h1>") && body.contains("alice"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"place\">cloud</span>"),
        "{body}"
    );
}
