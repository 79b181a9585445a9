//! The agent gets its own tokens with OAuth 2 client credentials (what a site's Cognito app
//! client does), caches them, and pushes to a server that verifies them. The token endpoint
//! here is a stand-in for Cognito's `/oauth2/token` (Cognito cannot run on this machine); it
//! issues real ES256 tokens that the real local server verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cloud::TokenSource;
use crate::cloud::push::{self, Pusher};
use crate::discovery::outbox::Outbox;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use skyport_auth::local::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use skyport_auth::{Jwks, KeySource, LocalIssuer};
use skyport_client::ClientCredentials;
use skyport_redfish::payload::EndpointPayload;

struct TokenServer {
    issuer: LocalIssuer,
    calls: AtomicUsize,
}

async fn token_endpoint(
    State(s): State<Arc<TokenServer>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    s.calls.fetch_add(1, Ordering::Relaxed);
    // client_id "site-a", secret "s3cret", as HTTP Basic.
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some("Basic c2l0ZS1hOnMzY3JldA==");
    if !ok || !body.contains("grant_type=client_credentials") || !body.contains("skyport%2Fedge") {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#).into_response();
    }
    let t = s
        .issuer
        .mint("site-a", &["edge".into()], Duration::from_secs(3600))
        .unwrap();
    axum::Json(serde_json::json!({"access_token": t, "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

fn payload(id: &str, fqdn: &str) -> EndpointPayload {
    EndpointPayload {
        id: id.into(),
        r#type: String::new(),
        name: String::new(),
        fqdn: fqdn.into(),
        user: "root".into(),
        mac_required: true,
        rediscover_on_update: false,
        mac_addr: None,
        schema_version: 1,
        systems: Vec::new(),
        managers: Vec::new(),
        services: Vec::new(),
    }
}

#[tokio::test]
async fn client_credentials_are_exchanged_once_and_verified_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(&dir.path().join("cloud")).unwrap();
    let jwks = Jwks::new(
        KeySource::Static(issuer.jwks().clone()),
        LOCAL_ISSUER,
        vec![LOCAL_AUDIENCE.into()],
    );
    let store: Arc<dyn skyport_store::Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("cloud.db")).unwrap());
    let blobs = Arc::new(
        skyport_images::FsBlobs::open(&dir.path().join("cloud"), "http://127.0.0.1:1").unwrap(),
    );
    let api = skyport::api(
        store,
        skyport_ipxe::Settings::default(),
        blobs,
        "http://127.0.0.1:1/cloud-init".into(),
        Arc::new(skyport_sites::LocalCredentials::new(None)),
        Some(Arc::new(jwks)),
        None,
    );
    let tokens = Arc::new(TokenServer {
        issuer: LocalIssuer::load_or_create(&dir.path().join("cloud")).unwrap(),
        calls: AtomicUsize::new(0),
    });
    let app = api.merge(
        axum::Router::new()
            .route("/oauth2/token", axum::routing::post(token_endpoint))
            .with_state(tokens.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let outbox = Outbox::new(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("edge.sqlite")).unwrap(),
    ));
    for i in 0..5 {
        outbox
            .enqueue(payload(
                &format!("x3000c0s{i}b0"),
                &format!("127.0.9.{}", i + 1),
            ))
            .await
            .unwrap();
    }
    let creds = |secret: &str| ClientCredentials {
        token_url: format!("http://{addr}/oauth2/token"),
        client_id: "site-a".into(),
        client_secret: secret.into(),
        scope: "skyport/edge".into(),
    };
    assert!(!format!("{:?}", creds("s3cret")).contains("s3cret"));

    // A wrong secret: nothing is pushed, everything stays queued, and the reason says why.
    let bad = Pusher::new(
        &format!("http://{addr}"),
        TokenSource::client_credentials(creds("wrong")),
    )
    .unwrap();
    let rep = push::flush_once(&outbox, &bad, 4).await.unwrap();
    assert_eq!(rep.pushed, 0);
    assert!(rep.last_error.unwrap().contains("HTTP 401"));
    assert_eq!(outbox.depth().await.unwrap(), 5);
    outbox.retry_all().await.unwrap();

    let calls_before = tokens.calls.load(Ordering::Relaxed);
    let good = Pusher::new(
        &format!("http://{addr}"),
        TokenSource::client_credentials(creds("s3cret")),
    )
    .unwrap();
    let rep = push::drain(&outbox, &good, 4, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rep.pushed, 5, "{rep:?}");
    assert_eq!(outbox.depth().await.unwrap(), 0);
    // One exchange served all five pushes.
    assert_eq!(tokens.calls.load(Ordering::Relaxed) - calls_before, 1);
    server.abort();
}

/// The inventory's blind 403 for a result that touches another site's records is a refusal of
/// the content (parked with the reason), not a credential problem (retried): a clash with
/// another site's FQDN must not be retried forever. Any other 403 is still retried.
#[tokio::test]
async fn another_sites_refusal_is_parked_and_other_403s_are_retried() {
    let app = axum::Router::new().route(
        "/hsm/v2/Inventory/RedfishEndpoints/{id}",
        axum::routing::put(
            |axum::extract::Path(id): axum::extract::Path<String>| async move {
                let detail = if id == "x3000c0s0b0" {
                    skyport_sites::REFUSED.to_string()
                } else {
                    "insufficient scope".to_string()
                };
                skyport_http::ApiError::Forbidden(detail)
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(Arc::new(
        skyport_store_sqlite::SqliteStore::open(dir.path().join("edge.sqlite")).unwrap(),
    ));
    outbox
        .enqueue(payload("x3000c0s0b0", "bmc.west.example"))
        .await
        .unwrap();
    outbox
        .enqueue(payload("x3000c0s1b0", "127.0.9.2"))
        .await
        .unwrap();
    let pusher = Pusher::new(&format!("http://{addr}"), TokenSource::none()).unwrap();
    let rep = push::flush_once(&outbox, &pusher, 2).await.unwrap();
    assert_eq!(
        (rep.pushed, rep.rejected, rep.retrying),
        (0, 1, 1),
        "{rep:?}"
    );
    server.abort();
}
