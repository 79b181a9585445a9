//! The images Lambda function's configuration and app: the registry over DynamoDB (records) and
//! S3 (bytes, through presigned URLs only).

use std::sync::Arc;

use skyport_images::ImageService;
use skyport_images_s3::S3Blobs;
use skyport_lambda::ConfigError;
use skyport_store::Store;

/// `SKYPORT_IMAGE_BUCKET` (required) and `SKYPORT_IMAGE_PREFIX` (default `images/`).
/// The S3 client, built once: path-style addressing when `SKYPORT_S3_PATH_STYLE=1` (S3-compatible
/// servers such as Garage or MinIO in development; AWS itself needs no setting).
pub fn s3_client(
    aws: &aws_config::SdkConfig,
    get: &dyn Fn(&str) -> Option<String>,
) -> aws_sdk_s3::Client {
    let path_style = matches!(get("SKYPORT_S3_PATH_STYLE").as_deref(), Some("1" | "true"));
    let conf = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn bucket_from_lookup(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), ConfigError> {
    let bucket = get("SKYPORT_IMAGE_BUCKET").ok_or(ConfigError::Missing {
        var: "SKYPORT_IMAGE_BUCKET",
        why: "the S3 bucket holding image bytes",
    })?;
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c));
    if !valid {
        return Err(ConfigError::invalid(
            "SKYPORT_IMAGE_BUCKET",
            bucket,
            "not an S3 bucket name",
        ));
    }
    let prefix = get("SKYPORT_IMAGE_PREFIX").unwrap_or_else(|| "images/".to_string());
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            "SKYPORT_IMAGE_PREFIX",
            prefix,
            "contains whitespace",
        ));
    }
    Ok((bucket, prefix))
}

/// The image service on S3, for this function and for the boot function.
pub fn service(
    store: Arc<dyn Store>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
) -> ImageService {
    ImageService::new(store, Arc::new(S3Blobs::new(s3, bucket, prefix)))
}

pub fn app(
    images: ImageService,
    auth: skyport_auth::AuthLayer,
) -> tower_http::normalize_path::NormalizePath<axum::Router> {
    skyport_http::app(skyport_auth::auth_layer(
        skyport_images::router(images, None),
        &[skyport_images::access],
        auth,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_settings_are_validated() {
        assert!(bucket_from_lookup(&|_| None).is_err());
        assert!(
            bucket_from_lookup(&|k| (k == "SKYPORT_IMAGE_BUCKET").then(|| "Bad_Bucket".into()))
                .is_err()
        );
        let (b, p) =
            bucket_from_lookup(&|k| (k == "SKYPORT_IMAGE_BUCKET").then(|| "skyport-images".into()))
                .unwrap();
        assert_eq!((b.as_str(), p.as_str()), ("skyport-images", "images/"));
    }
}
