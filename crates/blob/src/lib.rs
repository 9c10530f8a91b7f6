//! Implementations of the [`berth_core::ports::BlobStore`] port: local filesystem, memory and
//! S3-compatible object storage.
//!
//! Objects live under opaque keys chosen when an upload starts; the metadata store maps
//! digests to keys. Every backend passes [`testsuite`].

mod fs;
mod memory;
mod s3;
#[cfg(any(test, feature = "testing"))]
pub mod s3_test_server;
#[cfg(any(test, feature = "testing"))]
pub mod testsuite;

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;
pub use s3::{S3BlobStore, S3Config};
