//! The boot-image registry: kernels, initrds and root images registered with name, version,
//! architecture, size and SHA-256, uploaded straight to object storage through short-lived signed
//! URLs, verified after upload, and handed to booting nodes as short-lived signed download URLs.
//!
//! Object storage sits behind [`Blobs`]. This crate ships the filesystem backend for local mode
//! ([`FsBlobs`]): its signed URLs point at the local server's `/images/v1/blobs/...` and carry an
//! HMAC-SHA256 signature and an expiry, checked exactly as S3 checks presigned URLs (a tampered
//! or expired URL is refused), so scripts and clients behave the same on both.

pub mod blobs;
pub mod error;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skyport_store::{Record, Store, StoreError, Table, Write};

pub use blobs::{BlobError, Blobs, FsBlobs};
pub use error::ImageError;
pub use routes::{access, router};

pub const IMAGES: Table = Table("Images");

/// The image registry's table a site's edge agent copies.
pub const SYNCED: [Table; 1] = [IMAGES];

/// Where a record of table `t` belongs (edge sync): an image, at every site (the registry is
/// installation-wide metadata: name, size, digest; which images a site downloads follows its
/// boot parameters). `None` if `t` is not the registry's.
pub fn placement(t: Table) -> Option<skyport_sites::Placement> {
    (t == IMAGES).then_some(skyport_sites::Placement::Everywhere)
}

/// Whether edge sync reads `t` whole for a site's snapshot (the registry: every site has it).
pub fn read_whole(t: Table) -> bool {
    t == IMAGES
}

/// How long an upload URL stays valid.
pub const UPLOAD_TTL: Duration = Duration::from_secs(3600);
/// How long a download URL handed to a booting node stays valid.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(900);
/// The largest image accepted (root images can be large; this bounds mistakes, not use).
pub const MAX_IMAGE_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// What an image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Kernel,
    Initrd,
    Rootfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// Registered; bytes not uploaded or not verified yet.
    Pending,
    /// Uploaded and verified: size and SHA-256 match the registration.
    Ready,
}

/// A registered image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
    pub state: ImageState,
    /// The multipart upload in progress, if the image is uploaded in parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// Registration request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageIn {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
}

/// Where and how to upload an image's bytes: one `PUT` to `url`, or (`method: "multipart"`) one
/// `PUT` of `part_size` bytes (the last one shorter) to each of `parts`, then `complete` with
/// each part's ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    pub method: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartUrl>,
    pub expires_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartUrl {
    pub number: u32,
    pub url: String,
}

/// `POST images/{id}/complete` body for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct CompleteIn {
    #[serde(default)]
    pub parts: Vec<CompletedPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
}

/// Images larger than this are uploaded in parts of this size (where the backend supports it).
pub const DEFAULT_PART_SIZE: u64 = 512 * 1024 * 1024;
/// S3's limits: parts of at least 5 MiB (but the last), at most 10,000 parts.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub image: Image,
    pub upload: Upload,
}

fn word(field: &'static str, v: &str, max: usize) -> Result<String, ImageError> {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !v.starts_with('.')
        && !v.starts_with('-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ImageError::BadWord {
            field,
            value: v.to_string(),
            max,
        })
    }
}

/// The reference boot parameters use for a registered image: `image:<id>`.
pub fn image_ref(id: &str) -> String {
    format!("image:{id}")
}

#[derive(Clone)]
pub struct ImageService {
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    part_size: u64,
}

impl ImageService {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>) -> Self {
        ImageService {
            store,
            blobs,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Sets the multipart part size (at least S3's 5 MiB).
    pub fn with_part_size(mut self, part_size: u64) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.blobs
    }

    /// Registers an image (pending) and returns where to upload its bytes.
    pub async fn register(&self, i: &ImageIn) -> Result<Registered, ImageError> {
        let name = word("name", &i.name, 64)?;
        let version = word("version", &i.version, 64)?;
        let arch = word("arch", &i.arch, 16)?;
        let sha = i.sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ImageError::BadSha256 {
                value: i.sha256.clone(),
            });
        }
        if i.size == 0 || i.size > MAX_IMAGE_BYTES {
            return Err(ImageError::BadSize { size: i.size });
        }
        let kind = serde_json::to_value(i.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let id = format!("{name}-{version}-{arch}-{kind}");
        let parts = i.size.div_ceil(self.part_size);
        if parts > MAX_PARTS {
            return Err(ImageError::TooManyParts { size: i.size });
        }
        // Registration first: a second registration of the same id must not start an upload.
        let mut image = Image {
            id: id.clone(),
            name,
            version,
            arch,
            kind: i.kind,
            size: i.size,
            sha256: sha,
            state: ImageState::Pending,
            upload_id: None,
        };
        self.put(&id, &image, None).await?;
        let multipart = if parts > 1 {
            self.blobs
                .start_multipart(&id, parts as u32, UPLOAD_TTL)
                .await?
        } else {
            None
        };
        let upload = match multipart {
            Some((upload_id, urls)) => {
                image.upload_id = Some(upload_id);
                let prev = self.record(&id).await?.1;
                self.put(&id, &image, Some(prev)).await?;
                Upload {
                    method: "multipart",
                    url: String::new(),
                    part_size: Some(self.part_size),
                    parts: urls
                        .into_iter()
                        .enumerate()
                        .map(|(i, url)| PartUrl {
                            number: i as u32 + 1,
                            url,
                        })
                        .collect(),
                    expires_in: UPLOAD_TTL.as_secs(),
                }
            }
            None => Upload {
                method: "PUT",
                url: self.blobs.upload_url(&id, UPLOAD_TTL).await?,
                part_size: None,
                parts: Vec::new(),
                expires_in: UPLOAD_TTL.as_secs(),
            },
        };
        Ok(Registered { image, upload })
    }

    /// Writes `image` as `id` over `prev`; without `prev` a new image, refused as
    /// [`ImageError::AlreadyRegistered`] if `id` exists.
    async fn put(&self, id: &str, image: &Image, prev: Option<Record>) -> Result<(), ImageError> {
        let body = serde_json::to_string(image).map_err(|source| ImageError::Encode {
            id: id.to_string(),
            source,
        })?;
        let new = prev.is_none();
        let record = Record::new(id, body);
        self.store
            .write(vec![Write::Put {
                table: IMAGES,
                record,
                prev,
            }])
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } if new => {
                    ImageError::AlreadyRegistered { id: id.to_string() }
                }
                other => other.into(),
            })
    }

    async fn record(&self, id: &str) -> Result<(Image, Record), ImageError> {
        let r = self
            .store
            .get(IMAGES, id)
            .await?
            .ok_or_else(|| ImageError::NoSuchImage { id: id.to_string() })?;
        let i = decode(&r)?;
        Ok((i, r))
    }

    pub async fn get(&self, id: &str) -> Result<Image, ImageError> {
        Ok(self.record(id).await?.0)
    }

    pub async fn list(&self) -> Result<Vec<Image>, ImageError> {
        self.store
            .list_all(IMAGES, None)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Verifies the uploaded bytes against the registration. On a mismatch the bytes are
    /// deleted and the image stays pending (the client may upload again): a registered image
    /// never points at wrong or missing bytes.
    pub async fn complete(&self, id: &str, done: &CompleteIn) -> Result<Image, ImageError> {
        let (mut image, mut prev) = self.record(id).await?;
        if image.state == ImageState::Ready {
            return Ok(image);
        }
        if let Some(upload_id) = image.upload_id.clone() {
            if done.parts.is_empty() {
                return Err(ImageError::PartsMissing { id: id.to_string() });
            }
            let parts: Vec<(u32, String)> = done
                .parts
                .iter()
                .map(|p| (p.number, p.etag.clone()))
                .collect();
            self.blobs
                .finish_multipart(id, &upload_id, &parts)
                .await
                .map_err(|source| ImageError::Assembly {
                    id: id.to_string(),
                    source,
                })?;
            // Assembled: a retry of `complete` verifies the object, not the finished upload.
            image.upload_id = None;
            self.put(id, &image, Some(prev)).await?;
            prev = self.record(id).await?.1;
        }
        let Some((size, sha)) = self.blobs.digest(id).await? else {
            return Err(ImageError::NotUploaded { id: id.to_string() });
        };
        let got = hex(&sha);
        if size != image.size || got != image.sha256 {
            self.blobs.delete(id).await?;
            return Err(ImageError::Mismatch {
                id: id.to_string(),
                size,
                sha256: got,
                registered_size: image.size,
                registered_sha256: image.sha256,
            });
        }
        image.state = ImageState::Ready;
        self.put(id, &image, Some(prev)).await?;
        Ok(image)
    }

    pub async fn delete(&self, id: &str) -> Result<(), ImageError> {
        let (_, prev) = self.record(id).await?;
        self.store
            .write(vec![Write::Delete {
                table: IMAGES,
                prev,
            }])
            .await?;
        Ok(self.blobs.delete(id).await?)
    }

    /// A short-lived URL a node can download a ready image from.
    pub async fn download_url(&self, id: &str) -> Result<String, ImageError> {
        let image = self.get(id).await?;
        if image.state != ImageState::Ready {
            return Err(ImageError::NotReady { id: id.to_string() });
        }
        Ok(self.blobs.download_url(id, DOWNLOAD_TTL).await?)
    }

    /// Resolves a boot-parameter value: `image:<id>` and `s3://bucket/key` become short-lived
    /// download URLs; anything else is returned unchanged.
    pub async fn resolve(&self, value: &str) -> Result<String, ImageError> {
        if let Some(id) = value.strip_prefix("image:") {
            return self.download_url(id).await;
        }
        if value.starts_with("s3://") {
            return Ok(self.blobs.presign_s3(value, DOWNLOAD_TTL).await?);
        }
        Ok(value.to_string())
    }
}

/// A stored image record.
fn decode(r: &Record) -> Result<Image, ImageError> {
    serde_json::from_str(&r.body).map_err(|source| ImageError::Corrupt {
        id: r.id.clone(),
        source,
    })
}

/// Size and SHA-256 of a file, read in 1 MiB blocks (blocking: call from `spawn_blocking`).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<(u64, [u8; 32])> {
    sha256_file_with(path, |_| {})
}

/// [`sha256_file`], handing every block read to `each` too (the edge cache computes its chunk
/// sums in the same pass).
pub fn sha256_file_with(
    path: &std::path::Path,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<(u64, [u8; 32])> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        each(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize().into()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
