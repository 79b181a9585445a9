//! The image registry's domain error, [`ImageError`]: what was wrong with a registration, which
//! image was missing, not uploaded or did not match, and the store and object-storage failures
//! underneath. Each variant's text is the `detail` clients get today (scripts match on them);
//! `routes.rs` alone turns them into HTTP answers.

use skyport_store::StoreError;

use crate::blobs::BlobError;
use crate::{MAX_IMAGE_BYTES, MAX_PARTS};

/// Why an operation of [`crate::ImageService`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A name-like registration field (`name`, `version`, `arch`) that is not a short word.
    #[error(
        "{field} {value:?} must be 1-{max} characters of letters, digits, '.', '_' or '-', not starting with '.' or '-'"
    )]
    BadWord {
        field: &'static str,
        value: String,
        max: usize,
    },
    /// The registered SHA-256 is not 64 hexadecimal digits (`value` as sent).
    #[error("sha256 must be 64 hexadecimal digits")]
    BadSha256 { value: String },
    /// The registered size is 0 or above [`MAX_IMAGE_BYTES`].
    #[error("size must be between 1 and {max} bytes", max = MAX_IMAGE_BYTES)]
    BadSize { size: u64 },
    /// The registered size would need more than [`MAX_PARTS`] parts of the part size.
    #[error("size {size} needs more than {max} parts", max = MAX_PARTS)]
    TooManyParts { size: u64 },
    #[error("no such image: {id}")]
    NoSuchImage { id: String },
    /// A registration of an id that exists (a re-registration must not start an upload).
    #[error("image {id} is already registered")]
    AlreadyRegistered { id: String },
    /// `complete` of a multipart upload without the parts' numbers and ETags.
    #[error("image {id} is uploaded in parts: give each part's number and ETag")]
    PartsMissing { id: String },
    /// The backend could not assemble a multipart upload from the parts given.
    #[error("image {id}: assembling the parts failed: {source}")]
    Assembly { id: String, source: BlobError },
    /// `complete` before any bytes arrived.
    #[error("image {id}: nothing has been uploaded yet")]
    NotUploaded { id: String },
    /// The uploaded bytes are not the registered ones (they were deleted).
    #[error(
        "image {id}: uploaded {size} bytes with SHA-256 {sha256}, registered {registered_size} bytes with SHA-256 {registered_sha256}; the upload was discarded"
    )]
    Mismatch {
        id: String,
        size: u64,
        sha256: String,
        registered_size: u64,
        registered_sha256: String,
    },
    /// A download of an image that is still pending.
    #[error("image {id} has not been uploaded and verified yet")]
    NotReady { id: String },
    /// An image record that cannot be encoded for the store (the text is serde's alone, as
    /// answered before this type existed).
    #[error("{source}")]
    Encode {
        id: String,
        source: serde_json::Error,
    },
    /// A stored image record that cannot be read back.
    #[error("stored image {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
