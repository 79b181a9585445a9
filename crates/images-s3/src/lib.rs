//! The S3 backend of the image registry. Uploads and downloads use presigned URLs, so image
//! bytes go between the client (or node, or edge agent) and S3 directly, never through the API;
//! only verification reads the object back to check its size and SHA-256.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use sha2::{Digest, Sha256};
use skyport_images::{BlobError, Blobs};

pub struct S3Blobs {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Blobs {
    /// Objects live at `s3://<bucket>/<prefix><key>`. The client is built once at start-up
    /// (path-style addressing for local S3 servers is the caller's choice).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        S3Blobs {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> Result<String, BlobError> {
        let ok = !key.is_empty()
            && !key.starts_with('.')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(format!("{}{key}", self.prefix))
        } else {
            Err(BlobError::BadKey(key.to_string()))
        }
    }

    /// `s3://bucket/key` of an object.
    pub fn url_of(&self, key: &str) -> Result<String, BlobError> {
        Ok(format!("s3://{}/{}", self.bucket, self.key(key)?))
    }
}

fn presign_config(ttl: Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(ttl.max(Duration::from_secs(1)))
        .map_err(|e| BlobError::Remote(format!("presigning: {e}")))
}

fn remote(what: &str, e: impl std::fmt::Debug) -> BlobError {
    BlobError::Remote(format!("{what}: {e:?}"))
}

/// The URL of a presigned `op` request.
async fn presigned<E: std::fmt::Debug>(
    op: &str,
    req: impl std::future::Future<Output = Result<aws_sdk_s3::presigning::PresignedRequest, E>>,
) -> Result<String, BlobError> {
    let req = req
        .await
        .map_err(|e| remote(&format!("presigning {op}"), e))?;
    Ok(req.uri().to_string())
}

#[async_trait::async_trait]
impl Blobs for S3Blobs {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn upload_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        let put = self.client.put_object().bucket(&self.bucket);
        let req = put.key(self.key(key)?).presigned(presign_config(ttl)?);
        presigned("PutObject", req).await
    }

    async fn download_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        let get = self.client.get_object().bucket(&self.bucket);
        presigned(
            "GetObject",
            get.key(self.key(key)?).presigned(presign_config(ttl)?),
        )
        .await
    }

    async fn digest(&self, key: &str) -> Result<Option<(u64, [u8; 32])>, BlobError> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key)?)
            .send()
            .await;
        let out = match resp {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(remote("GetObject", e)),
        };
        let mut body = out.body;
        let mut h = Sha256::new();
        let mut n: u64 = 0;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| remote("reading object", e))?
        {
            h.update(&chunk);
            n += chunk.len() as u64;
        }
        Ok(Some((n, h.finalize().into())))
    }

    async fn start_multipart(
        &self,
        key: &str,
        parts: u32,
        ttl: Duration,
    ) -> Result<Option<(String, Vec<String>)>, BlobError> {
        let k = self.key(key)?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&k)
            .send()
            .await
            .map_err(|e| remote("CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Remote("CreateMultipartUpload returned no upload id".into()))?
            .to_string();
        let mut urls = Vec::with_capacity(parts as usize);
        for n in 1..=parts {
            let req = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&k)
                .upload_id(&upload_id)
                .part_number(
                    i32::try_from(n).map_err(|_| BlobError::Remote("too many parts".into()))?,
                )
                .presigned(presign_config(ttl)?)
                .await
                .map_err(|e| remote("presigning UploadPart", e))?;
            urls.push(req.uri().to_string());
        }
        Ok(Some((upload_id, urls)))
    }

    async fn finish_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), BlobError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let mut completed = Vec::with_capacity(parts.len());
        for (n, etag) in parts {
            completed.push(
                CompletedPart::builder()
                    .part_number(
                        i32::try_from(*n)
                            .map_err(|_| BlobError::Remote(format!("part number {n}")))?,
                    )
                    .e_tag(etag)
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(key)?)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| remote("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn presign_s3(&self, url: &str, ttl: Duration) -> Result<String, BlobError> {
        let (bucket, key) = skyport_images::blobs::parse_s3_url(url)?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(presign_config(ttl)?)
            .await
            .map_err(|e| remote("presigning GetObject", e))?;
        Ok(req.uri().to_string())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key)?)
            .send()
            .await
            .map_err(|e| remote("DeleteObject", e))?;
        Ok(())
    }
}
