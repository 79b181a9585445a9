//! The image registry end to end on the filesystem backend: register, upload through the signed
//! URL, verify, download; tampered, expired and wrong-operation URLs; size and SHA-256 mismatch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::Digest;
use skyport_images::{Blobs, FsBlobs, ImageService};
use skyport_store::Store;
use skyport_testkit::app::{Api, Resp};
use skyport_testkit::spec::Spec;

struct Env {
    api: Api,
    blobs: Arc<FsBlobs>,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("i.db")).unwrap());
    let blobs = Arc::new(FsBlobs::open(dir.path(), "http://127.0.0.1:27779").unwrap());
    let svc = ImageService::new(store, blobs.clone());
    // No upstream spec covers this Skyport API; the spec argument only serves spec-checked calls.
    let spec = Spec::openchami("OpenCHAMI-bss_api_swagger.yaml").unwrap();
    Env {
        api: Api::new(
            skyport_http::app(skyport_images::router(svc, Some(blobs.clone()))),
            spec,
        ),
        blobs,
        _dir: dir,
    }
}

fn sha(b: &[u8]) -> String {
    skyport_images::hex(&sha2::Sha256::digest(b))
}

/// The path and query of a signed URL (the test client talks to the app in-process).
fn local(url: &str) -> String {
    url.trim_start_matches("http://127.0.0.1:27779").to_string()
}

/// Asks the service to verify the bytes uploaded for image `id`, expecting `status`.
async fn complete(e: &Env, id: &str, status: u16) -> Resp {
    let uri = format!("/images/v1/images/{id}/complete");
    e.api.call("POST", &uri, "", None).await.expect(status)
}

#[tokio::test]
async fn register_upload_verify_download() {
    let e = env();
    let kernel = b"\x7fELF pretend kernel bytes".repeat(1000);
    let r = e.api.call("POST", "/images/v1/images", "", Some(json!({"name": "vmlinuz", "version": "6.1.0", "arch": "x86_64", "kind": "kernel", "size": kernel.len(), "sha256": sha(&kernel)}))).await.expect(201);
    assert_eq!(r.body["image"]["id"], "vmlinuz-6.1.0-x86_64-kernel");
    assert_eq!(r.body["image"]["state"], "pending");
    assert_eq!(
        r.headers["location"],
        "/images/v1/images/vmlinuz-6.1.0-x86_64-kernel"
    );
    let put = local(r.body["upload"]["url"].as_str().unwrap());
    assert!(put.contains("op=put&expires=") && put.contains("&sig="));

    // Downloads are refused until the bytes are verified.
    e.api
        .get("/images/v1/images/vmlinuz-6.1.0-x86_64-kernel/content", "")
        .await
        .expect(422);
    complete(&e, "vmlinuz-6.1.0-x86_64-kernel", 422).await;

    // A tampered URL is refused, and so is the signed URL used for the wrong operation.
    let tampered = put.replace("vmlinuz-6.1.0", "vmlinuz-6.1.1");
    e.api
        .raw("PUT", &tampered, &[], kernel.clone())
        .await
        .expect(403);
    let forged = format!("{}0", put);
    e.api
        .raw("PUT", &forged, &[], kernel.clone())
        .await
        .expect(403);
    e.api
        .raw("GET", &put.replace("op=put", "op=get"), &[], Vec::new())
        .await
        .expect(403);

    // More bytes than registered are refused and leave nothing behind.
    let mut too_big = kernel.clone();
    too_big.push(0);
    e.api.raw("PUT", &put, &[], too_big).await.expect(413);
    assert!(
        e.blobs
            .digest("vmlinuz-6.1.0-x86_64-kernel")
            .await
            .unwrap()
            .is_none()
    );

    // The right bytes go through; complete verifies them.
    let r = e
        .api
        .raw("PUT", &put, &[], kernel.clone())
        .await
        .expect(200);
    assert_eq!(r.body["bytes"], kernel.len());
    let r = complete(&e, "vmlinuz-6.1.0-x86_64-kernel", 200).await;
    assert_eq!(r.body["state"], "ready");
    e.api
        .raw("PUT", &put, &[], kernel.clone())
        .await
        .expect(409);

    // Download: a redirect to a signed URL serving exactly the registered bytes.
    let r = e
        .api
        .get("/images/v1/images/vmlinuz-6.1.0-x86_64-kernel/content", "")
        .await
        .expect(307);
    let get = local(r.headers["location"].to_str().unwrap());
    let r = e.api.raw("GET", &get, &[], Vec::new()).await.expect(200);
    assert_eq!(r.raw, kernel);
    let r = e.api.get("/images/v1/images", "").await.expect(200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);

    e.api
        .call(
            "DELETE",
            "/images/v1/images/vmlinuz-6.1.0-x86_64-kernel",
            "",
            None,
        )
        .await
        .expect(204);
    e.api.raw("GET", &get, &[], Vec::new()).await.expect(404);
    e.api
        .get("/images/v1/images/vmlinuz-6.1.0-x86_64-kernel", "")
        .await
        .expect(404);
}

#[tokio::test]
async fn sha256_mismatch_discards_the_upload() {
    let e = env();
    let good = b"initrd".repeat(100);
    let r = e.api.call("POST", "/images/v1/images", "", Some(json!({"name": "initrd", "version": "1", "arch": "x86_64", "kind": "initrd", "size": good.len(), "sha256": sha(&good)}))).await.expect(201);
    let put = local(r.body["upload"]["url"].as_str().unwrap());
    let mut bad = good.clone();
    bad[0] ^= 1;
    e.api.raw("PUT", &put, &[], bad).await.expect(200);
    let r = complete(&e, "initrd-1-x86_64-initrd", 422).await;
    assert!(r.detail().contains("discarded"), "{}", r.detail());
    assert!(
        e.blobs
            .digest("initrd-1-x86_64-initrd")
            .await
            .unwrap()
            .is_none(),
        "mismatched bytes removed"
    );
    let r = e
        .api
        .get("/images/v1/images/initrd-1-x86_64-initrd", "")
        .await
        .expect(200);
    assert_eq!(r.body["state"], "pending");
    // Uploading the right bytes afterwards works.
    e.api.raw("PUT", &put, &[], good).await.expect(200);
    complete(&e, "initrd-1-x86_64-initrd", 200).await;
}

#[tokio::test]
async fn expired_urls_are_refused() {
    let e = env();
    let data = b"rootfs".to_vec();
    e.api.call("POST", "/images/v1/images", "", Some(json!({"name": "root", "version": "1", "arch": "x86_64", "kind": "rootfs", "size": data.len(), "sha256": sha(&data)}))).await.expect(201);
    let url = local(
        &e.blobs
            .upload_url("root-1-x86_64-rootfs", Duration::ZERO)
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = e.api.raw("PUT", &url, &[], data).await.expect(403);
    assert!(r.detail().contains("expired"), "{}", r.detail());
}

#[tokio::test]
async fn bad_registrations() {
    let e = env();
    let ok = json!({"name": "k", "version": "1", "arch": "x86_64", "kind": "kernel", "size": 10, "sha256": "a".repeat(64)});
    for (field, value) in [
        ("name", json!("../etc")),
        ("name", json!("")),
        ("version", json!("1 2")),
        ("arch", json!("x86/64")),
        ("kind", json!("firmware")),
        ("size", json!(0)),
        ("size", json!(-1)),
        ("sha256", json!("abc")),
        ("sha256", json!("z".repeat(64))),
    ] {
        let mut b = ok.clone();
        b[field] = value.clone();
        let r = e.api.call("POST", "/images/v1/images", "", Some(b)).await;
        assert_eq!(
            r.status,
            400,
            "{field}={value}: {}",
            String::from_utf8_lossy(&r.raw)
        );
    }
    e.api
        .call("POST", "/images/v1/images", "", Some(ok.clone()))
        .await
        .expect(201);
    e.api
        .call("POST", "/images/v1/images", "", Some(ok))
        .await
        .expect(409);
    e.api
        .raw(
            "GET",
            "/images/v1/blobs/..%2Fi.db?op=get&expires=9999999999&sig=00",
            &[],
            Vec::new(),
        )
        .await
        .expect(400);
}
