//! Implementations of the [`berth_core::ports::BlobStore`] port: local filesystem, memory and
//! S3-compatible object storage, plus Google Cloud Storage and Azure Blob Storage behind the
//! `gcs` and `azure` features.
//!
//! Objects live under opaque keys chosen when an upload starts; the metadata store maps
//! digests to keys. Every backend passes [`testsuite`].

mod azure;
mod fs;
mod gcs;
mod memory;
mod s3;
#[cfg(any(test, feature = "testing"))]
pub mod s3_test_server;
#[cfg(any(test, feature = "testing"))]
pub mod testsuite;

#[cfg(feature = "azure")]
pub use azure::AzureBlobStore;
pub use azure::AzureConfig;
pub use fs::FsBlobStore;
#[cfg(feature = "gcs")]
pub use gcs::GcsBlobStore;
pub use gcs::GcsConfig;
pub use memory::MemoryBlobStore;
pub use s3::{ObjectBlobStore, S3BlobStore, S3Config};
