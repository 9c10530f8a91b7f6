//! What a client can observe going wrong. Each wire protocol maps these in one place.

use berth_oci::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(Digest),
    #[error("upload session is unknown or has ended")]
    BlobUploadUnknown,
    #[error("{0}")]
    BlobUploadInvalid(String),
    /// A chunk that does not start where the upload ends (out of order or overlapping).
    #[error("chunk must start at offset {offset}")]
    ChunkOutOfOrder { offset: u64 },
    #[error("{0}")]
    DigestInvalid(String),
    #[error("manifest references blobs or manifests this repository does not have: {}", list(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("{0}")]
    ManifestUnknown(String),
    #[error("repository {0} is not known")]
    NameUnknown(String),
    /// A declared length does not match the content.
    #[error("{0}")]
    SizeInvalid(String),
    /// Content over a configured limit (413).
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unsupported(String),
    /// The request's traffic class is over its budget; retry after this many seconds.
    #[error("too many requests; retry later")]
    TooManyRequests { retry_after_secs: u64 },
    /// A shared resource (database connections, a statement's time) ran out; retry after
    /// this many seconds (503).
    #[error("{reason}; retry later")]
    Unavailable { reason: String, retry_after_secs: u64 },
    /// Credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but lacks the right.
    #[error("{0}")]
    Denied(String),
    /// A named account, team, repository or permission does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing being created exists already.
    #[error("{0}")]
    Conflict(String),
    /// The repository exists but holds the other kind of content (images versus App
    /// Registry packages), which this protocol does not serve.
    #[error("{0}")]
    WrongKind(String),
    /// App Registry: no such package (or it has no such release and media type).
    #[error("{0}")]
    PackageNotFound(String),
    /// App Registry: no release matches the version asked for.
    #[error("{0}")]
    ReleaseNotFound(String),
    /// App Registry: no such channel.
    #[error("{0}")]
    ChannelNotFound(String),
    /// A release that is not SemVer, or a version query that does not parse.
    #[error("{0}")]
    InvalidVersion(String),
    /// A request that is malformed in a way no protocol code above describes.
    #[error("{0}")]
    InvalidInput(String),
    /// A failure of the metadata or blob store. The message is for the log, never for the
    /// client.
    #[error("internal error: {0}")]
    Backend(String),
}

impl Error {
    pub fn backend(e: impl std::fmt::Display) -> Error {
        Error::Backend(e.to_string())
    }
}

fn list(digests: &[Digest]) -> String {
    digests.iter().map(Digest::as_str).collect::<Vec<_>>().join(", ")
}
