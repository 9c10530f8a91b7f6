//! Implementations of the [`berth_core::ports::BlobStore`] port.
//!
//! Objects live under opaque keys chosen when an upload starts; the metadata store maps
//! digests to keys. Every backend passes [`testsuite`].

mod fs;
mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod testsuite;

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;
