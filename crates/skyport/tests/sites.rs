//! One cloud, two sites: each site's edge agent gets its credentials from site registration,
//! its tokens from the local token endpoint, and then sees and changes only its own site. The
//! leak check is textual: nothing naming the other site's nodes, MACs or groups appears
//! anywhere in a site's snapshot. Rotation and revocation take effect on the next request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skyport_auth::local::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use skyport_auth::{Jwks, KeySource, LocalIssuer};
use tower::ServiceExt;

struct Cloud {
    app: axum::Router,
    admin: String,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    body: Value,
    text: String,
}

impl Cloud {
    fn new(dir: tempfile::TempDir, raw: Arc<dyn skyport_store::Store>) -> Self {
        let store: Arc<dyn skyport_store::Store> = skyport_sync::ChangeLog::local(raw);
        let blobs =
            Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
        let issuer = Arc::new(LocalIssuer::load_or_create(dir.path()).unwrap());
        let jwks = Jwks::new(
            KeySource::Static(issuer.jwks().clone()),
            LOCAL_ISSUER,
            vec![LOCAL_AUDIENCE.into()],
        )
        .with_sites(Arc::new(skyport_sites::StoreSites(store.clone())));
        let creds = Arc::new(skyport_sites::LocalCredentials::new(Some(
            "http://127.0.0.1:1/oauth2/token".into(),
        )));
        let app = skyport::api(
            store.clone(),
            skyport_ipxe::Settings::default(),
            blobs,
            "http://127.0.0.1:1/cloud-init".into(),
            creds,
            Some(Arc::new(jwks)),
            None,
        )
        .merge(skyport_sites::token::router(store, issuer.clone()));
        let admin = issuer
            .mint(
                "admin",
                &["admin".to_string()],
                std::time::Duration::from_secs(600),
            )
            .unwrap();
        Cloud {
            app,
            admin,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(b.body(body).unwrap()).await
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, &self.admin.clone(), body).await
    }

    /// Client credentials → token, as the agent (and Cognito's endpoint) does it.
    async fn token(&self, id: &str, secret: &str, form: &str) -> Resp {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let req = Request::post("/oauth2/token")
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// A discovery push as an agent makes it: `PUT` to the BMC's own path, or `POST`.
    async fn discover(&self, method: &str, token: &str, body: Value) -> Resp {
        let path = match method {
            "PUT" => format!(
                "/hsm/v2/Inventory/RedfishEndpoints/{}",
                body["ID"].as_str().unwrap()
            ),
            _ => "/hsm/v2/Inventory/RedfishEndpoints".to_string(),
        };
        self.call(method, &path, token, Some(body)).await
    }

    /// [`discovered`], PUT to the BMC's path.
    async fn push(&self, token: &str, bmc: &str, ip: &str, mac: &str) -> Resp {
        self.discover("PUT", token, discovered(bmc, ip, mac)).await
    }
}

impl Resp {
    /// Asserts the status, showing the body if it is another.
    fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.text);
        self
    }
}

const GRANT: &str = "grant_type=client_credentials&scope=skyport%2Fedge";

/// A refusal that tells a site's token nothing about the records it ran into: 403, a problem
/// whose detail is the one text every such refusal has, and none of `secrets` anywhere.
fn refused_blind(r: &Resp, secrets: &[&str]) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["detail"], skyport_sites::REFUSED, "{}", r.text);
    for s in secrets {
        assert!(!r.text.contains(s), "the refusal names {s}: {}", r.text);
    }
}

/// The string `key` of each element of the array `list`, in order.
fn strs<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    let list = list.as_array().unwrap();
    list.iter().map(|e| e[key].as_str().unwrap()).collect()
}

/// What an agent pushes for one BMC with one node and one NIC.
fn discovered(bmc: &str, ip: &str, mac: &str) -> Value {
    json!({
        "ID": bmc, "FQDN": ip, "User": "root", "Password": "x", "MACAddr": format!("{mac}:01"),
        "Systems": [{"uri": format!("https://{ip}/redfish/v1/Systems/1"), "uuid": format!("uuid-{bmc}"),
                     "ethernet_interfaces": [{"mac": format!("{mac}:10"), "name": "NIC 1"}],
                     "power": {"state": "On"}}]
    })
}

#[tokio::test]
async fn one_cloud_many_sites_no_leaks_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let raw = Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
    one_cloud_many_sites_no_leaks(Cloud::new(dir, raw)).await;
}

#[tokio::test]
async fn one_cloud_many_sites_no_leaks_dynamodb() {
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let client = skyport_testkit::dynamo_client(&ddb.endpoint(), None).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "skyport-sites");
    store.ensure_table().await.unwrap();
    one_cloud_many_sites_no_leaks(Cloud::new(tempfile::tempdir().unwrap(), Arc::new(store))).await;
}

async fn one_cloud_many_sites_no_leaks(c: Cloud) {
    // Registration: credentials shown once, names validated, no duplicates.
    let east = c
        .admin(
            "POST",
            "/edge/v1/sites",
            Some(json!({"name": "east", "description": "building 3"})),
        )
        .await;
    assert_eq!(east.status, 201, "{}", east.text);
    assert_eq!(east.body["token_url"], "http://127.0.0.1:1/oauth2/token");
    let west = c
        .admin("POST", "/edge/v1/sites", Some(json!({"name": "west"})))
        .await;
    assert_eq!(west.status, 201, "{}", west.text);
    for (body, status) in [
        (json!({"name": "east"}), 409),
        (json!({"name": "East Wing"}), 400),
        (json!({"name": ""}), 400),
        (json!({"name": "ok", "colour": "blue"}), 400),
    ] {
        let r = c.admin("POST", "/edge/v1/sites", Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.text.contains("\"detail\""), "{}", r.text);
    }
    let id = |r: &Resp, k: &str| r.body[k].as_str().unwrap().to_string();

    // Tokens from the token endpoint, and its refusals (OAuth 2 error shapes).
    let t = c
        .token(&id(&east, "client_id"), &id(&east, "client_secret"), GRANT)
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let east_token = id(&t, "access_token");
    let t = c
        .token(&id(&west, "client_id"), &id(&west, "client_secret"), GRANT)
        .await;
    let west_token = id(&t, "access_token");
    for (secret, form, status, error) in [
        ("wrong", GRANT, 401, "invalid_client"),
        ("", "grant_type=password", 400, "unsupported_grant_type"),
        (
            "",
            "grant_type=client_credentials&scope=skyport%2Fadmin",
            400,
            "invalid_scope",
        ),
        ("", "scope=skyport%2Fedge", 400, "invalid_request"),
    ] {
        let secret = if secret.is_empty() {
            id(&east, "client_secret")
        } else {
            secret.to_string()
        };
        let r = c.token(&id(&east, "client_id"), &secret, form).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(error)),
            "{form}"
        );
    }

    // East owns cabinet x1000c0 by assignment; discovery claims what it pushes elsewhere.
    for path in [
        "/edge/v1/sites/east/xnames/x1000c0",
        "/edge/v1/sites/west/xnames/x2000c0",
    ] {
        c.admin("PUT", path, None).await.expect(200);
    }
    for (token, bmc, ip, mac) in [
        (&east_token, "x1000c0s0b0", "10.1.0.1", "02:e0:00:00:00"),
        // Unassigned: claimed by discovery.
        (&east_token, "x3000c0s0b0", "10.3.0.1", "02:e3:00:00:00"),
        (&west_token, "x2000c0s0b0", "10.2.0.1", "02:a0:00:00:00"),
    ] {
        c.push(token, bmc, ip, mac).await.expect(200);
    }
    // Across the line: refused, and nothing of it written.
    for (token, bmc, ip, mac) in [
        (&east_token, "x2000c0s1b0", "10.2.0.9", "02:e9:00:00:00"),
        (&west_token, "x3000c0s0b0", "10.3.0.1", "02:a9:00:00:00"),
        (&west_token, "x1000c0s5b0", "10.1.0.5", "02:a5:00:00:00"),
    ] {
        let r = c.push(token, bmc, ip, mac).await;
        refused_blind(&r, &["east", "west", "x1000c0", "x2000c0", "x3000c0s0b0"]);
    }
    // A site's token learns nothing of another site's records from a refusal: not that its
    // BMC exists, nor who holds an FQDN or a MAC. Each is 403 with the same text as any
    // refusal, and nothing is written.
    let west_bmc = ["x2000c0s0b0", "10.2.0.1", "02:a0:00:00:00:01", "west"];
    let mut bmc_mac = discovered("x1000c0s3b0", "10.1.0.3", "02:e3:00:00:04");
    bmc_mac["MACAddr"] = json!("02:a0:00:00:00:01");
    for (method, body) in [
        // West's BMC, replaced (PUT) or created again (POST, 409 "exists" before).
        (
            "PUT",
            discovered("x2000c0s0b0", "10.9.0.1", "02:e9:00:00:01"),
        ),
        (
            "POST",
            discovered("x2000c0s0b0", "10.9.0.1", "02:e9:00:00:01"),
        ),
        // A new BMC of east's with west's FQDN (409 "fqdn 10.2.0.1 belongs to x2000c0s0b0"
        // before), by POST and by PUT; and with west's BMC MAC.
        (
            "POST",
            discovered("x1000c0s3b0", "10.2.0.1", "02:e3:00:00:03"),
        ),
        (
            "PUT",
            discovered("x1000c0s3b0", "10.2.0.1", "02:e3:00:00:03"),
        ),
        // West's BMC MAC on a BMC of east's (its nodes' NICs new), and west's node NIC under it.
        ("PUT", bmc_mac),
        (
            "PUT",
            discovered("x1000c0s3b0", "10.1.0.3", "02:a0:00:00:00"),
        ),
    ] {
        let r = c.discover(method, &east_token, body).await;
        refused_blind(&r, &west_bmc);
    }
    for bmc in ["x1000c0s3b0", "x2000c0s1b0"] {
        let path = format!("/hsm/v2/Inventory/RedfishEndpoints/{bmc}");
        let r = c.admin("GET", &path, None).await;
        assert_eq!(r.status, 404, "{bmc}: {}", r.text);
    }
    let path = "/hsm/v2/Inventory/RedfishEndpoints/x2000c0s0b0";
    let r = c.admin("GET", path, None).await;
    assert_eq!(r.body["FQDN"], "10.2.0.1", "{}", r.text);
    // The site's own records still explain a conflict.
    for (body, conflict) in [
        (
            discovered("x1000c0s0b0", "10.1.0.1", "02:e0:00:00:00"),
            "x1000c0s0b0 exists",
        ),
        (
            discovered("x1000c0s3b0", "10.1.0.1", "02:e3:00:00:03"),
            "belongs to x1000c0s0b0",
        ),
    ] {
        let r = c.discover("POST", &east_token, body).await.expect(409);
        assert!(r.text.contains(conflict), "{}", r.text);
    }
    let gone = "/hsm/v2/Inventory/RedfishEndpoints/x2000c0s1b0";
    c.admin("GET", gone, None).await.expect(404);
    // West cannot take east's NIC by claiming it under its own BMC (even as a forced update).
    c.push(&west_token, "x2000c0s2b0", "10.2.0.2", "02:e0:00:00:00")
        .await
        .expect(403);

    // A node lent to west inside east's cabinet: east's re-discovery of its BMC may not
    // rewrite it (nor give it NICs).
    let lent = "/edge/v1/sites/west/xnames/x1000c0s0b0n0";
    c.admin("PUT", lent, None).await.expect(200);
    let r = c
        .push(&east_token, "x1000c0s0b0", "10.1.0.1", "02:e0:00:00:00")
        .await;
    refused_blind(&r, &["x1000c0s0b0n0", "west"]);
    c.admin("DELETE", lent, None).await.expect(204);
    c.push(&east_token, "x1000c0s0b0", "10.1.0.1", "02:e0:00:00:00")
        .await
        .expect(200);

    // A BMC already in the inventory but assigned to no site (written by an admin, or before
    // sites existed) is not any agent's to take: an admin assigns it first.
    let x4000 = discovered("x4000c0s0b0", "10.4.0.1", "02:e4:00:00:00");
    c.admin(
        "PUT",
        "/hsm/v2/Inventory/RedfishEndpoints/x4000c0s0b0",
        Some(x4000),
    )
    .await
    .expect(200);
    let r = c
        .push(&east_token, "x4000c0s0b0", "10.4.0.1", "02:e4:00:00:00")
        .await
        .expect(403);
    assert!(r.text.contains("assigned to no site"), "{}", r.text);
    c.admin("PUT", "/edge/v1/sites/east/xnames/x4000c0s0b0", None)
        .await;
    c.push(&east_token, "x4000c0s0b0", "10.4.0.1", "02:e4:00:00:00")
        .await
        .expect(200);

    let (params, groups) = ("/boot/v1/bootparameters", "/hsm/v2/groups");
    let node = |x: &str, nid: u32| json!({"Components": [{"ID": x, "State": "On", "NID": nid, "Role": "Compute"}]});
    for (path, body) in [
        // A NIC and host boot parameters for a node of east's that has no component yet.
        (
            "/hsm/v2/Inventory/EthernetInterfaces",
            json!({"MACAddress": "02:e5:00:00:00:10", "ComponentID": "x1000c0s9b0n0"}),
        ),
        (
            params,
            json!({"hosts": ["x1000c0s9b0n0"], "kernel": "http://k/new"}),
        ),
        // An admin-created node of each site, boot parameters by host, MAC and NID, groups
        // across both sites.
        ("/hsm/v2/State/Components", node("x1000c0s7b0n0", 17)),
        ("/hsm/v2/State/Components", node("x2000c0s7b0n0", 27)),
        (
            params,
            json!({"hosts": ["x1000c0s0b0n0", "x2000c0s0b0n0"], "kernel": "http://k/vmlinuz"}),
        ),
        (
            params,
            json!({"macs": ["02:e0:00:00:00:10", "02:a0:00:00:00:10"], "kernel": "http://k/by-mac"}),
        ),
        (
            params,
            json!({"nids": [17, 27], "kernel": "http://k/by-nid"}),
        ),
        (
            groups,
            json!({"label": "compute", "members": {"ids": ["x1000c0s0b0n0", "x2000c0s0b0n0"]}}),
        ),
        (
            groups,
            json!({"label": "westonly", "members": {"ids": ["x2000c0s7b0n0"]}}),
        ),
    ] {
        let r = c.admin("POST", path, Some(body)).await;
        assert!(r.status < 300, "{path}: {}", r.text);
    }

    // Each site's snapshot is its own share; nothing of the other's is in it.
    let snap = |token: String| {
        let c = &c;
        async move { c.call("GET", "/edge/v1/snapshot", &token, None).await }
    };
    let e = snap(east_token.clone()).await;
    assert_eq!(e.status, 200, "{}", e.text);
    let ids = |r: &Resp, t: &str| -> Vec<String> {
        let ids = strs(&r.body["tables"][t], "id");
        ids.into_iter().map(String::from).collect()
    };
    assert_eq!(
        ids(&e, "Components"),
        [
            "x1000c0s0b0n0",
            "x1000c0s7b0n0",
            "x3000c0s0b0n0",
            "x4000c0s0b0n0"
        ]
    );
    assert!(ids(&e, "EthernetInterfaces").contains(&"02e500000010".to_string()));
    assert_eq!(
        ids(&e, "BootParams"),
        [
            "host:x1000c0s0b0n0",
            "host:x1000c0s9b0n0",
            "mac:02:e0:00:00:00:10",
            "nid:17"
        ]
    );
    assert_eq!(ids(&e, "Groups"), ["compute"]);
    for leak in ["x2000", "02:a0", "02a0", "westonly", "nid:27"] {
        assert!(
            !e.text.contains(leak),
            "east's snapshot names {leak}: {}",
            e.text
        );
    }
    let w = snap(west_token.clone()).await;
    assert_eq!(ids(&w, "Components"), ["x2000c0s0b0n0", "x2000c0s7b0n0"]);
    assert_eq!(ids(&w, "Groups"), ["compute", "westonly"]);
    for leak in ["x1000", "x3000", "02:e0", "02e0", "nid:17"] {
        assert!(
            !w.text.contains(leak),
            "west's snapshot names {leak}: {}",
            w.text
        );
    }
    // An admin may ask for any one site; an edge token only for its own.
    let r = c
        .call("GET", "/edge/v1/snapshot?site=west", &east_token, None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = c.admin("GET", "/edge/v1/snapshot?site=west", None).await;
    assert_eq!(ids(&r, "Components"), ids(&w, "Components"));

    // An edge token reads nothing outside its snapshot, and reports only for its own site.
    let r = c
        .call("GET", "/hsm/v2/State/Components", &east_token, None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = c
        .call(
            "POST",
            "/edge/v1/reports",
            &east_token,
            Some(json!({"site": "west", "endpoint_history": [
                {"name": "x1000c0s0b0n0", "endpoint": "bootscript", "last_epoch": now},
                {"name": "x2000c0s0b0n0", "endpoint": "bootscript", "last_epoch": now}],
                "status": {"generation": "g", "version": "t"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["endpoint_history"].as_u64(),
            r.body["skipped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // An unknown MAC east saw stays east's candidate, whatever west reports about it later.
    let unknown = |t: u64| {
        json!({"unknown_macs": [{"mac": "02:ff:00:00:00:01", "ip": "10.9.9.9",
                                 "first_seen": t, "last_seen": t}]})
    };
    let r = c
        .call(
            "POST",
            "/edge/v1/reports",
            &east_token,
            Some(unknown(now - 10)),
        )
        .await;
    assert_eq!(r.body["unknown_macs"], 1, "{}", r.text);
    let r = c
        .call("POST", "/edge/v1/reports", &west_token, Some(unknown(now)))
        .await;
    assert_eq!(
        (r.body["unknown_macs"].as_u64(), r.body["skipped"].as_u64()),
        (Some(0), Some(1))
    );
    let r = c.admin("GET", "/edge/v1/candidates", None).await;
    assert_eq!(r.body[0]["site"], "east", "{}", r.text);
    // A query the snapshot does not know is refused as a problem, not ignored.
    let r = c
        .call(
            "GET",
            "/edge/v1/snapshot?site=east&site=west",
            &c.admin.clone(),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("\"detail\""), "{}", r.text);
    let r = c.admin("GET", "/edge/v1/snapshot?sight=east", None).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // The registry shows both sites, east's discovery claim and its agent's status.
    let r = c.admin("GET", "/edge/v1/sites/east", None).await;
    // x1000c0s0b0 needed no claim: it is under east's cabinet already.
    let claims = &r.body["assignments"];
    assert_eq!(
        strs(claims, "xname"),
        ["x1000c0", "x3000c0s0b0", "x4000c0s0b0"]
    );
    assert_eq!(strs(claims, "source"), ["admin", "discovery", "admin"]);
    // Filed under the token's site, whatever the agent called itself.
    assert_eq!(r.body["status"]["site"], "east");
    assert!(c.admin("GET", "/edge/v1/sites/west", None).await.body["status"].is_null());
    let r = c.admin("GET", "/edge/v1/sites", None).await;
    assert_eq!(strs(&r.body, "name"), ["east", "west"]);
    assert!(!r.text.contains("secret"), "{}", r.text);

    // Rotation: the old secret and the old (unexpired) token stop working at once.
    let rot = c.admin("POST", "/edge/v1/sites/east/rotate", None).await;
    assert_eq!(rot.status, 200, "{}", rot.text);
    assert_eq!(rot.body["revoked"], json!([id(&east, "client_id")]));
    let r = c
        .token(&id(&east, "client_id"), &id(&east, "client_secret"), GRANT)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = snap(east_token.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let t = c
        .token(&id(&rot, "client_id"), &id(&rot, "client_secret"), GRANT)
        .await;
    let new_token = id(&t, "access_token");
    assert_eq!(snap(new_token.clone()).await.status, 200);
    // A hand-over keeps both until the old one is revoked by ID.
    let rot2 = c
        .admin(
            "POST",
            "/edge/v1/sites/east/rotate",
            Some(json!({"keep_previous": true})),
        )
        .await;
    assert_eq!(rot2.body["revoked"], json!([]));
    assert_eq!(snap(new_token.clone()).await.status, 200);
    let r = c
        .admin(
            "POST",
            "/edge/v1/sites/east/revoke",
            Some(json!({"client_id": id(&rot, "client_id")})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(snap(new_token).await.status, 403);

    // Reassigning a subtree moves its nodes to the other site's snapshot on the next poll.
    let subtree = "/edge/v1/sites/west/xnames/x3000c0s0b0";
    c.admin("PUT", subtree, None).await.expect(200);
    let w2 = snap(west_token.clone()).await;
    assert!(ids(&w2, "Components").contains(&"x3000c0s0b0n0".to_string()));
    let east_subtree = "/edge/v1/sites/east/xnames/x3000c0s0b0";
    c.admin("DELETE", east_subtree, None).await.expect(404);

    // Deleting a site removes its credentials and assignments, not the inventory.
    c.admin("DELETE", "/edge/v1/sites/west", None)
        .await
        .expect(200);
    assert_eq!(snap(west_token).await.status, 403);
    for (path, status) in [
        ("/hsm/v2/State/Components/x2000c0s0b0n0", 200),
        ("/edge/v1/sites/west", 404),
    ] {
        c.admin("GET", path, None).await.expect(status);
    }
}

/// A hundred agents' worth of discovery pushes into one site at once, on DynamoDB behind the
/// conflict harness (which cancels transactions that share an item, as the service does): none
/// is lost, none refused (a `503` is retried, as the agent's push retries it; a 4xx would be
/// parked for an admin), none duplicated, no transaction cancelled (nothing they write is
/// shared: each claims its own BMC and logs its own change entry), and the site's snapshot holds
/// every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_pushes_into_one_site_dynamodb() {
    use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig, HarnessStats};
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let harness = DynamoHarness::start(&ddb.endpoint(), HarnessConfig::default())
        .await
        .unwrap();
    let client = skyport_testkit::dynamo_client(&harness.endpoint(), None).await;
    let store = skyport_store_dynamo::DynamoStore::new(client, "skyport-pushes");
    store.ensure_table().await.unwrap();
    let c = Arc::new(Cloud::new(tempfile::tempdir().unwrap(), Arc::new(store)));
    let east = c
        .admin("POST", "/edge/v1/sites", Some(json!({"name": "east"})))
        .await
        .expect(201);
    let t = c
        .token(
            east.body["client_id"].as_str().unwrap(),
            east.body["client_secret"].as_str().unwrap(),
            GRANT,
        )
        .await
        .expect(200);
    let token = t.body["access_token"].as_str().unwrap().to_string();
    let before = HarnessStats::get(&harness.stats().conflicts);
    let pushes: Vec<_> = (0..100)
        .map(|i| {
            let (c, token) = (c.clone(), token.clone());
            tokio::spawn(async move {
                let bmc = format!("x5000c0s{i}b0");
                let (ip, mac) = (format!("10.50.0.{}", i + 1), format!("02:50:00:00:{i:02x}"));
                let mut retried = 0;
                loop {
                    let r = c.push(&token, &bmc, &ip, &mac).await;
                    match r.status {
                        200 | 201 => return retried,
                        503 => {
                            retried += 1;
                            assert!(retried < 20, "{bmc}: still 503 after 20 tries");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        s => panic!("{bmc}: {s} would be parked: {}", r.text),
                    }
                }
            })
        })
        .collect();
    let mut retried = 0;
    for p in pushes {
        retried += p.await.unwrap();
    }
    let cancelled = HarnessStats::get(&harness.stats().conflicts) - before;
    eprintln!(
        "100 concurrent pushes: {retried} retried after a 503, {cancelled} transactions cancelled"
    );
    assert_eq!(cancelled, 0, "pushes into one site shared an item");
    let eps = c
        .admin("GET", "/hsm/v2/Inventory/RedfishEndpoints", None)
        .await
        .expect(200);
    assert_eq!(strs(&eps.body["RedfishEndpoints"], "ID").len(), 100);
    let nodes = c
        .admin("GET", "/hsm/v2/State/Components?type=Node", None)
        .await
        .expect(200);
    let ids = strs(&nodes.body["Components"], "ID");
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (100, 100));
    let snap = c
        .call("GET", "/edge/v1/snapshot", &token, None)
        .await
        .expect(200);
    assert!(snap.body["next"].is_null(), "one page: {}", snap.text);
    assert_eq!(strs(&snap.body["tables"]["Components"], "id").len(), 100);
}
