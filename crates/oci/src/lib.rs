//! The OCI distribution vocabulary Berth speaks, as pure functions over bytes and strings.
//!
//! Everything here is deterministic and free of I/O so it can be property-tested and fuzzed:
//! digests and streaming hashers, repository names, tags and references, media types,
//! lenient manifest views over the exact pushed bytes, the `/v2` path grammar and the HTTP
//! `Range` / `Content-Range` arithmetic.

pub mod digest;
pub mod error_code;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod path;
pub mod range;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error_code::ErrorCode;
pub use name::{NameError, RepositoryName};
pub use reference::{Reference, Tag, TagError};
