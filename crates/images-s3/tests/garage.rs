//! The image registry on a real S3 server (Garage, started and stopped here), which checks
//! presigned signatures and expiry like AWS: upload through the presigned URL, verify, download;
//! a tampered and an expired URL are refused by the server itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;
use skyport_images::{Blobs, ImageIn, ImageService, ImageState, Kind};
use skyport_images_s3::S3Blobs;
use skyport_store::Store;
use skyport_testkit::Garage;

/// Version 1 of x86_64 image `name` of `kind`, registered for `bytes`.
fn image(name: &str, kind: Kind, bytes: &[u8]) -> ImageIn {
    ImageIn {
        name: name.into(),
        version: "1".into(),
        arch: "x86_64".into(),
        kind,
        size: bytes.len() as u64,
        sha256: skyport_images::hex(&sha2::Sha256::digest(bytes)),
    }
}

/// The body of a GET of `url`, whatever its status.
async fn fetch(http: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = http.get(url).send().await.unwrap();
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_upload_verify_and_download_on_garage() {
    let garage = Garage::start("skyport-images").expect("Garage");
    let blobs = Arc::new(S3Blobs::new(
        garage.client().await,
        "skyport-images",
        "images/",
    ));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap());
    let svc = ImageService::new(store, blobs.clone());
    let http = reqwest::Client::new();

    let bytes = b"kernel bytes on S3 ".repeat(5000);
    let reg = svc
        .register(&image("vmlinuz", Kind::Kernel, &bytes))
        .await
        .unwrap();
    let url = reg.upload.url.clone();
    assert!(
        url.starts_with(&garage.endpoint) && url.contains("X-Amz-Signature="),
        "{url}"
    );

    // A tampered presigned URL is refused by Garage.
    let tampered = url.replace("vmlinuz-1", "vmlinuz-2");
    let r = http
        .put(&tampered)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap_or_default());

    // Nothing uploaded: completing is refused; then the real upload and verification.
    assert!(
        svc.complete("vmlinuz-1-x86_64-kernel", &Default::default())
            .await
            .is_err()
    );
    let r = http.put(&url).body(bytes.clone()).send().await.unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let image = svc
        .complete("vmlinuz-1-x86_64-kernel", &Default::default())
        .await
        .unwrap();
    assert_eq!(image.state, ImageState::Ready);

    // The download URL serves exactly those bytes.
    let get = svc.download_url("vmlinuz-1-x86_64-kernel").await.unwrap();
    let got = fetch(&http, &get).await;
    assert_eq!(&got[..], &bytes[..]);

    // An s3:// reference (as admins put in BSS boot parameters) becomes a presigned URL too.
    let via_s3 = svc
        .resolve("s3://skyport-images/images/vmlinuz-1-x86_64-kernel")
        .await
        .unwrap();
    let got = fetch(&http, &via_s3).await;
    assert_eq!(&got[..], &bytes[..]);
    assert!(svc.resolve("s3://no bucket/x").await.is_err());
    assert_eq!(
        svc.resolve("http://plain/url").await.unwrap(),
        "http://plain/url"
    );

    // An expired presigned URL is refused by Garage.
    let short = blobs
        .download_url("vmlinuz-1-x86_64-kernel", Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = http.get(&short).send().await.unwrap();
    assert!(
        r.status().is_client_error(),
        "expired URL answered {}",
        r.status()
    );

    // Wrong bytes are discarded at verification.
    let other = b"initrd".repeat(10);
    let reg = svc
        .register(&ImageIn {
            name: "initrd".into(),
            version: "1".into(),
            arch: "x86_64".into(),
            kind: Kind::Initrd,
            size: other.len() as u64,
            sha256: "0".repeat(64),
        })
        .await
        .unwrap();
    http.put(&reg.upload.url)
        .body(other)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert!(
        svc.complete("initrd-1-x86_64-initrd", &Default::default())
            .await
            .is_err()
    );
    assert!(
        blobs
            .digest("initrd-1-x86_64-initrd")
            .await
            .unwrap()
            .is_none(),
        "mismatched object deleted"
    );
}

/// A large image goes up in parts: each part to its own presigned URL, then assembled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_on_garage() {
    let garage = Garage::start("skyport-parts").expect("Garage");
    let blobs = Arc::new(S3Blobs::new(garage.client().await, "skyport-parts", ""));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(skyport_store_sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap());
    let part = skyport_images::MIN_PART_SIZE;
    let svc = ImageService::new(store, blobs).with_part_size(part);
    let bytes: Vec<u8> = (0..part as usize + 4096).map(|i| (i % 251) as u8).collect();
    let reg = svc
        .register(&image("rootfs", Kind::Rootfs, &bytes))
        .await
        .unwrap();
    assert_eq!(reg.upload.method, "multipart");
    assert_eq!(reg.upload.parts.len(), 2);
    // Completing without the parts' ETags is refused.
    assert!(
        svc.complete("rootfs-1-x86_64-rootfs", &Default::default())
            .await
            .is_err()
    );
    let http = reqwest::Client::new();
    let mut done = Vec::new();
    for (i, p) in reg.upload.parts.iter().enumerate() {
        let start = i * part as usize;
        let end = (start + part as usize).min(bytes.len());
        let r = http
            .put(&p.url)
            .body(bytes[start..end].to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "part {}: {}", p.number, r.status());
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        done.push(serde_json::json!({"number": p.number, "etag": etag}));
    }
    let done: skyport_images::CompleteIn =
        serde_json::from_value(serde_json::json!({"parts": done})).unwrap();
    let image = svc.complete("rootfs-1-x86_64-rootfs", &done).await.unwrap();
    assert_eq!(image.state, ImageState::Ready);
    let got = fetch(
        &http,
        &svc.download_url("rootfs-1-x86_64-rootfs").await.unwrap(),
    )
    .await;
    assert_eq!(got.len(), bytes.len());
    assert!(got[..] == bytes[..]);
}
