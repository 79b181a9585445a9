//! Every route of the local server (what `skyport serve` mounts) × every kind of token. The
//! expected requirement of each route is written out here, independently of the policy code:
//! anonymous routes answer the same whatever the token; protected routes answer 401 (problem
//! JSON, `WWW-Authenticate: Bearer`) for a missing, malformed, expired, forged, wrong-issuer or
//! wrong-audience token, 403 for a valid token without the scope, and neither for one with it.
//! Edge tokens count only when their client is a registered site's: a revoked or unknown
//! client's token is refused (403) on every protected route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::json;
use skyport_auth::local::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use skyport_auth::{Jwks, KeySource, LocalIssuer};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Req {
    Public,
    Read,
    Write,
    Admin,
    /// Discovery pushes, and an agent's snapshot and reports: write or edge.
    Disc,
    /// Image content, which agents cache: read or edge.
    ReadEdge,
    /// Taking a site's jobs and reporting them: edge (or admin) only.
    Agent,
}
use Req::*;

#[rustfmt::skip]
const ROUTES: &[(&str, &str, Req)] = &[
    // SMD
    ("GET",    "/hsm/v2/service/ready", Public),
    ("GET",    "/hsm/v2/service/liveness", Public),
    ("GET",    "/hsm/v2/service/values", Public),
    ("GET",    "/hsm/v2/service/values/arch", Public),
    ("GET",    "/hsm/v2/State/Components", Read),
    ("POST",   "/hsm/v2/State/Components", Write),
    ("DELETE", "/hsm/v2/State/Components", Admin),
    ("GET",    "/hsm/v2/State/Components/ByNID/1", Read),
    ("PATCH",  "/hsm/v2/State/Components/BulkNID", Write),
    ("PATCH",  "/hsm/v2/State/Components/BulkStateData", Write),
    ("PATCH",  "/hsm/v2/State/Components/BulkFlagOnly", Write),
    ("PATCH",  "/hsm/v2/State/Components/BulkEnabled", Write),
    ("PATCH",  "/hsm/v2/State/Components/BulkSoftwareStatus", Write),
    ("PATCH",  "/hsm/v2/State/Components/BulkRole", Write),
    ("GET",    "/hsm/v2/State/Components/x1c0s0b0n0", Read),
    ("PUT",    "/hsm/v2/State/Components/x1c0s0b0n0", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0", Write),
    ("DELETE", "/hsm/v2/State/Components/x1c0s0b0n0", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/StateData", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/FlagOnly", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/Enabled", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/SoftwareStatus", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/Role", Write),
    ("PATCH",  "/hsm/v2/State/Components/x1c0s0b0n0/NID", Write),
    ("GET",    "/hsm/v2/Inventory/RedfishEndpoints", Read),
    ("POST",   "/hsm/v2/Inventory/RedfishEndpoints", Disc),
    ("DELETE", "/hsm/v2/Inventory/RedfishEndpoints", Admin),
    ("GET",    "/hsm/v2/Inventory/RedfishEndpoints/x1c0s0b0", Read),
    ("PUT",    "/hsm/v2/Inventory/RedfishEndpoints/x1c0s0b0", Disc),
    ("PATCH",  "/hsm/v2/Inventory/RedfishEndpoints/x1c0s0b0", Write),
    ("DELETE", "/hsm/v2/Inventory/RedfishEndpoints/x1c0s0b0", Write),
    ("POST",   "/hsm/v2/Inventory/Discover", Write),
    ("GET",    "/hsm/v2/Subscriptions/SCN", Read),
    ("POST",   "/hsm/v2/Subscriptions/SCN", Write),
    ("DELETE", "/hsm/v2/Subscriptions/SCN", Admin),
    ("GET",    "/hsm/v2/Subscriptions/SCN/1", Read),
    ("PUT",    "/hsm/v2/Subscriptions/SCN/1", Write),
    ("PATCH",  "/hsm/v2/Subscriptions/SCN/1", Write),
    ("DELETE", "/hsm/v2/Subscriptions/SCN/1", Write),
    ("GET",    "/hsm/v2/Inventory/ServiceEndpoints", Read),
    ("DELETE", "/hsm/v2/Inventory/ServiceEndpoints", Admin),
    ("GET",    "/hsm/v2/Inventory/ServiceEndpoints/AccountService", Read),
    ("GET",    "/hsm/v2/Inventory/ServiceEndpoints/AccountService/RedfishEndpoints/x1c0s0b0", Read),
    ("DELETE", "/hsm/v2/Inventory/ServiceEndpoints/AccountService/RedfishEndpoints/x1c0s0b0", Write),
    ("GET",    "/hsm/v2/Inventory/DiscoveryStatus", Read),
    ("GET",    "/hsm/v2/Inventory/DiscoveryStatus/0", Read),
    ("GET",    "/hsm/v2/Inventory/ComponentEndpoints", Read),
    ("DELETE", "/hsm/v2/Inventory/ComponentEndpoints", Admin),
    ("GET",    "/hsm/v2/Inventory/ComponentEndpoints/x1c0s0b0", Read),
    ("DELETE", "/hsm/v2/Inventory/ComponentEndpoints/x1c0s0b0", Write),
    ("GET",    "/hsm/v2/Inventory/EthernetInterfaces", Read),
    ("POST",   "/hsm/v2/Inventory/EthernetInterfaces", Write),
    ("DELETE", "/hsm/v2/Inventory/EthernetInterfaces", Admin),
    ("GET",    "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310", Read),
    ("PATCH",  "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310", Write),
    ("DELETE", "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310", Write),
    ("GET",    "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses", Read),
    ("POST",   "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses", Write),
    ("PATCH",  "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.0.0.1", Write),
    ("DELETE", "/hsm/v2/Inventory/EthernetInterfaces/a4bf012b7310/IPAddresses/10.0.0.1", Write),
    ("GET",    "/hsm/v2/groups", Read),
    ("POST",   "/hsm/v2/groups", Write),
    ("GET",    "/hsm/v2/groups/labels", Read),
    ("GET",    "/hsm/v2/groups/compute", Read),
    ("PATCH",  "/hsm/v2/groups/compute", Write),
    ("DELETE", "/hsm/v2/groups/compute", Write),
    ("GET",    "/hsm/v2/groups/compute/members", Read),
    ("POST",   "/hsm/v2/groups/compute/members", Write),
    ("PUT",    "/hsm/v2/groups/compute/members", Write),
    ("DELETE", "/hsm/v2/groups/compute/members/x1c0s0b0n0", Write),
    ("GET",    "/hsm/v2/memberships", Read),
    ("GET",    "/hsm/v2/memberships/x1c0s0b0n0", Read),
    ("GET",    "/hsm/v2/State/Components/Query/x1c0s0b0n0", Read),
    ("POST",   "/hsm/v2/State/Components/Query", Read),
    ("POST",   "/hsm/v2/State/Components/ByNID/Query", Read),
    ("POST",   "/hsm/v2/Inventory/ComponentEndpoints/Query", Read),
    ("GET",    "/hsm/v2/partitions", Read),
    ("POST",   "/hsm/v2/partitions", Write),
    ("GET",    "/hsm/v2/partitions/names", Read),
    ("PATCH",  "/hsm/v2/partitions/p1", Write),
    ("DELETE", "/hsm/v2/partitions/p1", Write),
    ("POST",   "/hsm/v2/partitions/p1/members", Write),
    ("DELETE", "/hsm/v2/partitions/p1/members/x1c0s0b0n0", Write),
    ("POST",   "/hsm/v2/locks/lock", Admin),
    ("POST",   "/hsm/v2/locks/unlock", Admin),
    ("POST",   "/hsm/v2/locks/disable", Admin),
    ("POST",   "/hsm/v2/locks/repair", Admin),
    ("POST",   "/hsm/v2/locks/reservations", Admin),
    ("POST",   "/hsm/v2/locks/reservations/remove", Admin),
    ("POST",   "/hsm/v2/locks/reservations/release", Write),
    ("POST",   "/hsm/v2/locks/service/reservations", Write),
    ("POST",   "/hsm/v2/locks/service/reservations/renew", Write),
    ("POST",   "/hsm/v2/locks/service/reservations/release", Write),
    ("POST",   "/hsm/v2/locks/service/reservations/check", Read),
    ("GET",    "/hsm/v2/locks/status", Read),
    ("POST",   "/hsm/v2/locks/status", Read),
    ("GET",    "/hsm/v2/Defaults/NodeMaps", Read),
    ("POST",   "/hsm/v2/Defaults/NodeMaps", Write),
    ("DELETE", "/hsm/v2/Defaults/NodeMaps", Admin),
    ("PUT",    "/hsm/v2/Defaults/NodeMaps/x1c0s0b0n0", Write),
    ("DELETE", "/hsm/v2/Defaults/NodeMaps/x1c0s0b0n0", Write),
    ("GET",    "/hsm/v2/sysinfo/powermaps", Read),
    ("POST",   "/hsm/v2/sysinfo/powermaps", Write),
    ("DELETE", "/hsm/v2/sysinfo/powermaps", Admin),
    ("PUT",    "/hsm/v2/sysinfo/powermaps/x1c0s0b0n0", Write),
    // BSS
    ("GET",    "/boot/v1/bootparameters", Read),
    ("POST",   "/boot/v1/bootparameters", Write),
    ("PUT",    "/boot/v1/bootparameters", Write),
    ("PATCH",  "/boot/v1/bootparameters", Write),
    ("DELETE", "/boot/v1/bootparameters", Write),
    ("GET",    "/boot/v1/bootscript?mac=02:00:00:00:00:01", Public),
    ("GET",    "/boot/v1/hosts", Read),
    ("POST",   "/boot/v1/hosts", Write),
    ("GET",    "/boot/v1/dumpstate", Admin),
    ("GET",    "/boot/v1/endpoint-history", Read),
    ("GET",    "/boot/v1/service/status", Public),
    ("GET",    "/boot/v1/service/version", Public),
    ("GET",    "/boot/v1/service/hsm", Public),
    ("GET",    "/boot/v1/service/storage/status", Public),
    ("GET",    "/boot/v1/service/status/all", Public),
    // boot-service (OpenCHAMI v0.2)
    ("GET",    "/boot-service/bootconfigurations", Read),
    ("POST",   "/boot-service/bootconfigurations", Write),
    ("GET",    "/boot-service/bootconfigurations/bootconfiguration-00000000", Read),
    ("PUT",    "/boot-service/bootconfigurations/bootconfiguration-00000000", Write),
    ("PATCH",  "/boot-service/bootconfigurations/bootconfiguration-00000000", Write),
    ("DELETE", "/boot-service/bootconfigurations/bootconfiguration-00000000", Write),
    ("PUT",    "/boot-service/bootconfigurations/bootconfiguration-00000000/status", Write),
    ("PATCH",  "/boot-service/bootconfigurations/bootconfiguration-00000000/status", Write),
    ("GET",    "/boot-service/nodes", Read),
    ("POST",   "/boot-service/nodes", Write),
    ("DELETE", "/boot-service/nodes/node-00000000", Write),
    ("GET",    "/boot-service/bmcs", Read),
    ("POST",   "/boot-service/bmcs", Write),
    ("GET",    "/boot-service/bootscript?mac=02:00:00:00:00:01", Public),
    ("GET",    "/boot-service/explain?host=x1000c0s0b0n0", Read),
    // metadata-service (OpenCHAMI v0.2)
    ("GET",    "/metadata-service/meta-data", Public),
    ("GET",    "/metadata-service/user-data", Public),
    ("GET",    "/metadata-service/vendor-data", Public),
    ("GET",    "/metadata-service/network-config", Public),
    ("GET",    "/metadata-service/compute.yaml", Public),
    ("GET",    "/metadata-service/health", Public),
    ("GET",    "/metadata-service/profile=debug/compute.yaml", Public),
    ("GET",    "/metadata-service/profile=debug/vendor-data", Public),
    ("GET",    "/metadata-service/profiles", Read),
    ("POST",   "/metadata-service/profiles", Write),
    ("GET",    "/metadata-service/profiles/profile-00000000", Read),
    ("DELETE", "/metadata-service/profiles/profile-00000000", Write),
    ("GET",    "/metadata-service/instanceinfos/instanceinfo-x1000c0s0b0n0", Read),
    ("GET",    "/metadata-service/clusterdefaultss/clusterdefaults-defaults", Read),
    ("GET",    "/metadata-service/groups", Read),
    ("POST",   "/metadata-service/groups", Write),
    ("GET",    "/metadata-service/groups/group-compute", Read),
    ("PUT",    "/metadata-service/groups/group-compute", Write),
    ("DELETE", "/metadata-service/groups/group-compute", Write),
    ("GET",    "/metadata-service/clusterdefaultss", Read),
    ("POST",   "/metadata-service/clusterdefaultss", Write),
    ("PATCH",  "/metadata-service/clusterdefaultss/clusterdefaults-defaults", Write),
    ("GET",    "/metadata-service/instanceinfos", Read),
    ("POST",   "/metadata-service/instanceinfos", Write),
    ("GET",    "/boot-service/health", Public),
    ("GET",    "/boot-service/service/status", Public),
    ("GET",    "/boot-service/service/version", Public),
    ("GET",    "/boot-service/boot/v1/bootscript?mac=02:00:00:00:00:01", Public),
    ("GET",    "/boot-service/boot/v1/service/status", Public),
    ("GET",    "/boot-service/boot/v1/service/version", Public),
    ("GET",    "/boot-service/bootparameters", Read),
    ("POST",   "/boot-service/bootparameters", Write),
    ("PUT",    "/boot-service/bootparameters", Write),
    ("DELETE", "/boot-service/bootparameters?host=x1000c0s0b0n0", Write),
    ("GET",    "/boot-service/boot/v1/bootparameters", Read),
    // BSS's legacy cloud-init, at the root
    ("GET",    "/meta-data", Public),
    ("GET",    "/user-data", Public),
    ("POST",   "/phone-home", Public),
    // cloud-init
    ("GET",    "/cloud-init/meta-data", Public),
    ("GET",    "/cloud-init/user-data", Public),
    ("GET",    "/cloud-init/vendor-data", Public),
    ("GET",    "/cloud-init/compute.yaml", Public),
    ("GET",    "/cloud-init/admin/cluster-defaults", Admin),
    ("POST",   "/cloud-init/admin/cluster-defaults", Admin),
    ("GET",    "/cloud-init/admin/groups", Admin),
    ("POST",   "/cloud-init/admin/groups", Admin),
    ("GET",    "/cloud-init/admin/groups/compute", Admin),
    ("PUT",    "/cloud-init/admin/groups/compute", Admin),
    ("DELETE", "/cloud-init/admin/groups/compute", Admin),
    ("PUT",    "/cloud-init/admin/instance-info/x1c0s0b0n0", Admin),
    ("GET",    "/cloud-init/admin/impersonation/x1c0s0b0n0/meta-data", Admin),
    ("GET",    "/cloud-init/admin/impersonation/x1c0s0b0n0/user-data", Admin),
    ("GET",    "/cloud-init/admin/impersonation/x1c0s0b0n0/vendor-data", Admin),
    ("GET",    "/cloud-init/admin/impersonation/x1c0s0b0n0/compute.yaml", Admin),
    // images
    ("GET",    "/images/v1/images", Read),
    ("POST",   "/images/v1/images", Write),
    ("GET",    "/images/v1/images/demo-1-x86_64-kernel", Read),
    ("DELETE", "/images/v1/images/demo-1-x86_64-kernel", Write),
    ("POST",   "/images/v1/images/demo-1-x86_64-kernel/complete", Write),
    ("GET",    "/images/v1/images/demo-1-x86_64-kernel/content", ReadEdge),
    ("GET",    "/images/v1/blobs/demo-1-x86_64-kernel?op=get&expires=1&sig=x", Public),
    ("PUT",    "/images/v1/blobs/demo-1-x86_64-kernel?op=put&expires=1&sig=x", Public),
    // edge sync and sites ("other" is not registered: allowed calls answer 404)
    ("GET",    "/edge/v1/snapshot", Disc),
    ("POST",   "/edge/v1/reports", Disc),
    ("GET",    "/edge/v1/candidates", Read),
    ("GET",    "/edge/v1/sites", Read),
    ("POST",   "/edge/v1/sites", Admin),
    ("GET",    "/edge/v1/sites/other", Read),
    ("DELETE", "/edge/v1/sites/other", Admin),
    ("POST",   "/edge/v1/sites/other/rotate", Admin),
    ("POST",   "/edge/v1/sites/other/revoke", Admin),
    ("PUT",    "/edge/v1/sites/other/xnames/x1c0", Write),
    ("DELETE", "/edge/v1/sites/other/xnames/x1c0", Write),
    // jobs on hardware, PCS, and agents' side of them
    ("GET",    "/power/v1/jobs", Read),
    ("POST",   "/power/v1/jobs", Write),
    ("GET",    "/power/v1/jobs/3fa85f64-5717-4562-b3fc-2c963f66afa6", Read),
    ("DELETE", "/power/v1/jobs/3fa85f64-5717-4562-b3fc-2c963f66afa6", Write),
    ("GET",    "/power/v1/status", Read),
    ("GET",    "/power-control/v1/transitions", Read),
    ("POST",   "/power-control/v1/transitions", Write),
    ("GET",    "/power-control/v1/transitions/3fa85f64-5717-4562-b3fc-2c963f66afa6", Read),
    ("DELETE", "/power-control/v1/transitions/3fa85f64-5717-4562-b3fc-2c963f66afa6", Write),
    ("GET",    "/power-control/v1/power-status", Read),
    ("POST",   "/power-control/v1/power-status", Read),
    ("PATCH",  "/power-control/v1/power-cap", Write),
    ("GET",    "/power-control/v1/liveness", Public),
    ("GET",    "/power-control/v1/readiness", Public),
    ("GET",    "/power-control/v1/health", Public),
    ("GET",    "/edge/v1/jobs", Agent),
    ("POST",   "/edge/v1/jobs/results", Agent),
    // the operator console: anonymous to the API's layer, since a browser sends its session
    // as a cookie, which the pages check themselves (tests/tests/console.rs signs in)
    ("GET",    "/console", Public),
    ("GET",    "/console/boots", Public),
    ("GET",    "/console/boots/live", Public),
    ("GET",    "/console/assets/console.js", Public),
    ("GET",    "/console/nodes/x1c0s0b0n0", Public),
    ("POST",   "/console/nodes/x1c0s0b0n0/power", Public),
    ("POST",   "/console/login", Public),
];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String, bool) {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let challenge = resp.headers().contains_key("www-authenticate");
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body =
        String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    if status == 401 || status == 403 {
        assert_eq!(ctype, "application/problem+json", "{method} {path}: {body}");
    }
    (status, body, challenge)
}

#[tokio::test]
async fn every_route_times_every_token() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn skyport_store::Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    let blobs = Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let jwks = Jwks::new(
        KeySource::Static(issuer.jwks().clone()),
        LOCAL_ISSUER,
        vec![LOCAL_AUDIENCE.into()],
    )
    .with_sites(Arc::new(skyport_sites::StoreSites(store.clone())));
    // A registered site's edge client, and one whose site revoked it.
    let registry = skyport_sites::Registry::new(
        store.clone(),
        Arc::new(skyport_sites::LocalCredentials::new(None)),
    );
    let east = registry.register("east", "").await.unwrap();
    let west = registry.register("west", "").await.unwrap();
    registry.revoke("west", None).await.unwrap();
    // The routes' xnames are east's, so an allowed edge push is not refused for ownership.
    registry.assign("east", "x1c0").await.unwrap();
    // Nothing here serves cloud-init: its advertised URL is never called.
    let cloud_init = "http://127.0.0.1:1/cloud-init".to_string();
    let auth = Some(Arc::new(jwks));
    // Mounted as `skyport serve` mounts it: the APIs, and the console beside them.
    let console = skyport::console(
        store.clone(),
        skyport_ipxe::Settings::default(),
        blobs.clone(),
        &auth,
        None,
    );
    let app = skyport::api(
        store,
        skyport_ipxe::Settings::default(),
        blobs,
        cloud_init,
        Arc::new(skyport_sites::LocalCredentials::new(None)),
        auth,
        None,
    )
    .merge(console);

    let mint = |scopes: &[&str]| {
        issuer
            .mint(
                "tester",
                &scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                Duration::from_secs(300),
            )
            .unwrap()
    };
    let claims = json!({"iss": LOCAL_ISSUER, "sub": "x", "aud": LOCAL_AUDIENCE,
                        "exp": now() + 300, "scope": "skyport/admin"});
    // The claims above with `patch`'s keys replaced, signed by the server's own key.
    let signed = |patch: serde_json::Value| {
        let mut c = claims.as_object().unwrap().clone();
        c.extend(patch.as_object().unwrap().clone());
        issuer.sign_claims(&serde_json::Value::Object(c)).unwrap()
    };
    let other_dir = tempfile::tempdir().unwrap();
    let other = LocalIssuer::load_or_create(other_dir.path()).unwrap();
    let bad_tokens: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("not-a-jwt".into())),
        ("expired", Some(signed(json!({"exp": now() - 600})))),
        (
            "wrong issuer",
            Some(signed(json!({"iss": "https://evil.example"}))),
        ),
        (
            "wrong audience",
            Some(signed(json!({"aud": "another-api"}))),
        ),
        (
            "forged",
            Some(other.sign_claims_with_kid(&claims, &issuer.kid()).unwrap()),
        ),
        ("unknown key", Some(other.sign_claims(&claims).unwrap())),
    ];
    let edge_of = |client: &str| {
        issuer
            .mint_for_client(client, &["edge".to_string()], Duration::from_secs(300))
            .unwrap()
    };
    let scoped: Vec<(&str, String)> = vec![
        ("no scope", mint(&[])),
        ("read", mint(&["read"])),
        ("write", mint(&["write"])),
        ("edge", edge_of(&east.client_id)),
        ("edge, revoked client", edge_of(&west.client_id)),
        ("edge, no site's client", edge_of("skyport-unknown")),
        ("edge, no client at all", mint(&["edge"])),
        ("admin", mint(&["admin"])),
    ];
    let allowed = |req: Req, scope: &str| match req {
        Public => true,
        Read => matches!(scope, "read" | "write" | "admin"),
        Write => matches!(scope, "write" | "admin"),
        Admin => scope == "admin",
        Disc => matches!(scope, "write" | "edge" | "admin"),
        ReadEdge => matches!(scope, "read" | "write" | "edge" | "admin"),
        Agent => matches!(scope, "edge" | "admin"),
    };

    let mut checked = 0;
    for (method, path, req) in ROUTES {
        if *req == Public {
            let (reference, _, _) = call(&app, method, path, None).await;
            assert!(reference != 401, "{method} {path} must be anonymous");
            for (name, t) in bad_tokens
                .iter()
                .map(|(n, t)| (*n, t.clone()))
                .chain(scoped.iter().map(|(n, t)| (*n, Some(t.clone()))))
            {
                let (s, body, _) = call(&app, method, path, t.as_deref()).await;
                assert_eq!(s, reference, "{method} {path} with {name}: {body}");
                checked += 1;
            }
            continue;
        }
        for (name, t) in &bad_tokens {
            let (s, body, challenge) = call(&app, method, path, t.as_deref()).await;
            assert_eq!(s, 401, "{method} {path} with {name} token: {body}");
            assert!(challenge, "{method} {path}: no WWW-Authenticate");
            checked += 1;
        }
        for (scope, t) in &scoped {
            let (s, body, _) = call(&app, method, path, Some(t)).await;
            if allowed(*req, scope) {
                assert!(
                    s != 401 && s != 403,
                    "{method} {path} with {scope}: {s} {body}"
                );
            } else if scope.starts_with("edge,") {
                // Refused before any route is considered: the client speaks for no site.
                assert_eq!(s, 403, "{method} {path} with {scope}: {body}");
                assert!(body.contains("belongs to no registered site"), "{body}");
            } else {
                assert_eq!(s, 403, "{method} {path} with {scope}: {body}");
                assert!(body.contains("this route needs"), "{body}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * 15);
}

/// One API Gateway route of `infra/template.yaml`: method (`ANY` too), path pattern, and
/// whether it skips the gateway's JWT authorizer.
struct GatewayRoute {
    method: String,
    path: String,
    anonymous: bool,
}

fn gateway_routes() -> Vec<GatewayRoute> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut out = Vec::new();
    for (_, res) in doc["Resources"].as_mapping().unwrap() {
        let Some(events) = res["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, ev) in events {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &ev["Properties"];
            out.push(GatewayRoute {
                method: p["Method"].as_str().unwrap().to_uppercase(),
                path: p["Path"].as_str().unwrap().to_string(),
                anonymous: p["Auth"]["Authorizer"].as_str() == Some("NONE"),
            });
        }
    }
    assert!(out.len() > 10, "no API routes found in the template");
    out
}

/// How specifically `pattern` matches `path` (API Gateway picks the most specific route:
/// literal segments over `{param}` over a greedy `{proxy+}`, a named method over `ANY`), or
/// `None` if it does not.
fn specificity(
    pattern: &str,
    method: &str,
    route_method: &str,
    path: &str,
) -> Option<(usize, bool, bool)> {
    if route_method != "ANY" && route_method != method {
        return None;
    }
    let pat: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let named = route_method != "ANY";
    let mut literal = 0;
    for (i, p) in pat.iter().enumerate() {
        if p.ends_with("+}") {
            return (seg.len() > i).then_some((literal, false, named));
        }
        let s = seg.get(i)?;
        if !p.starts_with('{') {
            if p != s {
                return None;
            }
            literal += 1;
        }
    }
    (pat.len() == seg.len()).then_some((literal, true, named))
}

/// The services' access declarations and the deployed gateway agree: every route a service
/// declares anonymous (what a booting node asks for, and the console's pages, which check a
/// session cookie) skips the gateway's authorizer, or nodes could not boot from the cloud; and
/// every route that skips it is one a node, an edge agent (whose tokens the function verifies
/// itself) or a browser on the console calls.
#[test]
fn the_gateway_lets_through_exactly_the_routes_nodes_and_agents_call() {
    let gateway = gateway_routes();
    let mut anonymous_used = vec![false; gateway.len()];
    for (method, path, req) in ROUTES {
        let path = path.split('?').next().unwrap();
        let chosen = gateway
            .iter()
            .enumerate()
            .filter_map(|(i, g)| specificity(&g.path, method, &g.method, path).map(|s| (s, i)))
            .max();
        // Only the local server has these: its token endpoint (Cognito's is the cloud's) and
        // its signed blob URLs (the cloud hands out S3's presigned URLs instead).
        if path == "/oauth2/token" || path.starts_with("/images/v1/blobs/") {
            continue;
        }
        let Some((_, i)) = chosen else {
            panic!("{method} {path} is not routed by the gateway");
        };
        let g = &gateway[i];
        if *req == Public {
            assert!(
                g.anonymous,
                "{method} {path} is anonymous in its service but behind the gateway's authorizer ({} {})",
                g.method, g.path
            );
        }
        if g.anonymous && matches!(req, Public | Disc | ReadEdge | Agent) {
            anonymous_used[i] = true;
        }
    }
    for (g, used) in gateway.iter().zip(anonymous_used) {
        assert!(
            !g.anonymous || used,
            "{} {} skips the gateway's authorizer but no node or agent route needs it",
            g.method,
            g.path
        );
    }
}
