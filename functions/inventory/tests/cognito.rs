//! Site registration in AWS mode: the inventory function creates, rotates and deletes each
//! site's Cognito app client. Cognito cannot run here, so the user-pool API is moto's emulator
//! (`moto_server`, installed by `scripts/install-test-tools`), which checks the requests and
//! keeps the clients; the test reads them back through the same API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cognitoidentityprovider::types::{OAuthFlowType, ResourceServerScopeType};
use serde_json::json;
use skyport_store::Store;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            let _reaped = self.child.wait();
        }
    }
}

fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKYPORT_MOTO_SERVER") {
        return p.into();
    }
    let cache = std::env::var_os("SKYPORT_TOOLS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/skyport-tools")))
        .unwrap();
    let p = cache.join("venv-moto-5.1.22/bin/moto_server");
    assert!(
        p.exists(),
        "moto_server not found at {}: run scripts/install-test-tools (or set SKYPORT_MOTO_SERVER)",
        p.display()
    );
    p
}

fn start_moto() -> Moto {
    let port = skyport_testkit::free_port().unwrap();
    let child = Command::new(moto_bin())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    m
}

async fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url)
        .load()
        .await
}

async fn call(
    app: &tower_http::normalize_path::NormalizePath<axum::Router>,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let r = skyport_testkit::app::send(app, req).await;
    (r.status.as_u16(), r.body)
}

#[tokio::test]
async fn sites_get_their_own_cognito_clients_and_lose_them_on_revocation() {
    let moto = start_moto();
    let aws = sdk(&moto.url).await;
    let idp = Client::new(&aws);
    let pool = idp
        .create_user_pool()
        .pool_name("skyport-users")
        .send()
        .await
        .unwrap()
        .user_pool
        .unwrap()
        .id
        .unwrap();
    idp.create_resource_server()
        .user_pool_id(&pool)
        .identifier("skyport")
        .name("Skyport API")
        .scopes(
            ResourceServerScopeType::builder()
                .scope_name("edge")
                .scope_description("edge agent")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // Wired exactly as the Lambda main wires it, from the environment the template sets.
    let env = |pool: String| {
        let url = moto.url.clone();
        move |k: &str| match k {
            "SKYPORT_USER_POOL_ID" => Some(pool.clone()),
            "SKYPORT_TOKEN_URL" => Some("https://auth.example/oauth2/token".to_string()),
            "SKYPORT_COGNITO_ENDPOINT_URL" => Some(url.clone()),
            _ => None,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let creds = skyport_fn_inventory::credentials_from_lookup(&env(pool.clone()), &aws).unwrap();
    let app = skyport_fn_inventory::app(store.clone(), creds, None);

    let east = json!({"name": "east"});
    let (s, east) = call(&app, "POST", "/edge/v1/sites", east).await;
    assert_eq!(s, 201, "{east}");
    assert_eq!(east["token_url"], "https://auth.example/oauth2/token");
    let id = east["client_id"].as_str().unwrap().to_string();
    let c = idp
        .describe_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&id)
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap();
    assert_eq!(c.client_name.as_deref(), Some("skyport-edge-east"));
    assert_eq!(c.client_secret.as_deref(), east["client_secret"].as_str());
    assert_eq!(c.allowed_o_auth_flows(), [OAuthFlowType::ClientCredentials]);
    assert_eq!(c.allowed_o_auth_scopes(), ["skyport/edge"]);
    assert_eq!(c.allowed_o_auth_flows_user_pool_client, Some(true));
    let (_, site) = call(&app, "GET", "/edge/v1/sites/east", json!(null)).await;
    assert_eq!(site["clients"][0]["kind"], "cognito");

    // Rotation deletes the old app client upstream; revocation deletes the new one.
    let (s, rot) = call(&app, "POST", "/edge/v1/sites/east/rotate", json!({})).await;
    assert_eq!(s, 200, "{rot}");
    let gone = |client: String| {
        let idp = idp.clone();
        let pool = pool.clone();
        async move {
            idp.describe_user_pool_client()
                .user_pool_id(pool)
                .client_id(client)
                .send()
                .await
                .err()
                .and_then(|e| {
                    e.into_service_error()
                        .is_resource_not_found_exception()
                        .then_some(())
                })
                .is_some()
        }
    };
    assert!(
        gone(id.clone()).await,
        "the rotated-away client still exists"
    );
    let new_id = rot["client_id"].as_str().unwrap().to_string();
    assert!(!gone(new_id.clone()).await);
    let (s, _) = call(&app, "POST", "/edge/v1/sites/east/revoke", json!({})).await;
    assert_eq!(s, 200);
    assert!(gone(new_id).await, "the revoked client still exists");

    // A pool that does not exist: 503 with the upstream reason, and no site half-registered.
    let bad =
        skyport_fn_inventory::credentials_from_lookup(&env("us-east-1_doesnotexist".into()), &aws)
            .unwrap();
    let app = skyport_fn_inventory::app(store, bad, None);
    let west = json!({"name": "west"});
    let (s, p) = call(&app, "POST", "/edge/v1/sites", west).await;
    assert_eq!(s, 503, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("CreateUserPoolClient"),
        "{p}"
    );
    let (s, _) = call(&app, "GET", "/edge/v1/sites/west", json!(null)).await;
    assert_eq!(s, 404);
}
