//! The function's app fed real API Gateway HTTP API (payload v2) events, converted exactly as
//! `lambda_http::run` converts them: paths, repeated query parameters, base64 bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

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
    let r = skyport_testkit::app::send(app, req.map(axum::body::Body::new)).await;
    (r.status.as_u16(), r.body)
}

#[tokio::test]
async fn api_gateway_v2_events_reach_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let app = skyport_fn_inventory::app(
        store,
        Arc::new(skyport_sites::NoCredentials("none in this test")),
        None,
    );
    let (status, _) = invoke(&app, "post-components.json").await;
    assert_eq!(status, 204);
    let (status, body) = invoke(&app, "get-components.json").await;
    assert_eq!(status, 200);
    let comps = body["Components"].as_array().unwrap();
    let ids: Vec<&str> = comps.iter().map(|c| c["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["x1c0s0b0", "x1c0s0b0n0"]);
}

/// The function verifies tokens itself (the HTTP API's JWT authorizer is only the first line):
/// an event without a token, or with a token lacking the scope, never reaches the inventory.
#[tokio::test]
async fn the_function_enforces_tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let issuer = skyport_auth::LocalIssuer::load_or_create(dir.path()).unwrap();
    let jwks = skyport_auth::Jwks::new(
        skyport_auth::KeySource::Static(issuer.jwks().clone()),
        skyport_auth::local::LOCAL_ISSUER,
        vec![skyport_auth::local::LOCAL_AUDIENCE.into()],
    );
    let app = skyport_fn_inventory::app(
        store,
        Arc::new(skyport_sites::NoCredentials("none in this test")),
        Some(Arc::new(jwks)),
    );
    let with_token = |event: &str, scope: &str| {
        let path = format!("{}/tests/events/{event}", env!("CARGO_MANIFEST_DIR"));
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let t = issuer
            .mint(
                "test",
                &[scope.to_string()],
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        v["headers"]["authorization"] = format!("Bearer {t}").into();
        v.to_string()
    };
    async fn send(
        app: &tower_http::normalize_path::NormalizePath<axum::Router>,
        event: String,
    ) -> u16 {
        let lreq: LambdaRequest = serde_json::from_str(&event).unwrap();
        let req: lambda_http::Request = lreq.into();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }
    let (status, body) = invoke(&app, "post-components.json").await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "missing bearer token");
    assert_eq!(
        send(&app, with_token("post-components.json", "read")).await,
        403
    );
    assert_eq!(
        send(&app, with_token("post-components.json", "write")).await,
        204
    );
    assert_eq!(
        send(&app, with_token("get-components.json", "read")).await,
        200
    );
}

/// The schedule's EventBridge event (no HTTP request) reaches the SCN delivery, which POSTs
/// the pending notification to the subscriber; the same path asked over HTTP is a 404.
#[tokio::test]
async fn the_scheduled_event_delivers_pending_state_change_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let store = skyport_inventory::scn::Notifying::wrap(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap(),
    ));
    let app = skyport_fn_inventory::app(
        store,
        Arc::new(skyport_sites::NoCredentials("none in this test")),
        None,
    );
    let got = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let seen = got.clone();
    let subscriber = axum::Router::new().route(
        "/scn",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(l, subscriber).await.unwrap() });
    let call = |method: &str, path: &str, body: serde_json::Value| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let r = skyport_testkit::app::send(
        &app,
        call(
            "POST",
            "/hsm/v2/Subscriptions/SCN",
            serde_json::json!({"Subscriber": "t", "States": ["On"], "Url": format!("http://{addr}/scn")}),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = skyport_testkit::app::send(
        &app,
        call(
            "POST",
            "/hsm/v2/State/Components",
            serde_json::json!({"Components": [{"ID": "x1c0s0b0n0", "State": "On"}]}),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 204);
    let r = skyport_testkit::app::send(&app, call("POST", "/events", serde_json::json!({}))).await;
    assert_eq!(
        r.status.as_u16(),
        404,
        "only the schedule's own invocation delivers"
    );
    assert!(got.lock().unwrap().is_empty());

    let (status, body) = invoke(&app, "scheduled.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 1, "{body}");
    assert_eq!(
        *got.lock().unwrap(),
        [serde_json::json!({"Components": ["x1c0s0b0n0"], "Flag": "OK", "State": "On"})]
    );
    server.abort();
}
