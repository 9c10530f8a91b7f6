//! Rows as SQLite returns them, and their conversion into core records. A value that does
//! not parse means the database was altered behind Berth's back: a backend error, not a panic.

use berth_core::ports::{BlobRecord, ManifestRecord, Referrer, UploadRecord};
use berth_core::{Error, Result};
use berth_oci::{Algorithm, Digest, RepositoryName};
use bytes::Bytes;

fn corrupt(what: &str, value: &str) -> Error {
    Error::Backend(format!("database holds an invalid {what}: {value:?}"))
}

fn digest(value: &str) -> Result<Digest> {
    Digest::parse(value).map_err(|_| corrupt("digest", value))
}

fn size(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt("size", &value.to_string()))
}

#[derive(sqlx::FromRow)]
pub struct BlobRow {
    digest: String,
    size: i64,
    storage_key: String,
}

impl BlobRow {
    pub fn new(digest: String, size: i64, storage_key: String) -> BlobRow {
        BlobRow { digest, size, storage_key }
    }

    pub fn into_record(self) -> Result<BlobRecord> {
        Ok(BlobRecord { digest: digest(&self.digest)?, size: size(self.size)?, storage_key: self.storage_key })
    }
}

#[derive(sqlx::FromRow)]
pub struct UploadRow {
    id: String,
    repository: String,
    storage_key: String,
    length: i64,
    hash_algorithm: String,
    hash_state: Vec<u8>,
    hash_state_format: String,
    backend_state: Vec<u8>,
    created_at: i64,
    updated_at: i64,
}

impl UploadRow {
    pub fn into_record(self) -> Result<UploadRecord> {
        Ok(UploadRecord {
            repository: RepositoryName::parse(&self.repository)
                .map_err(|_| corrupt("repository name", &self.repository))?,
            length: size(self.length)?,
            hash_algorithm: Algorithm::parse(&self.hash_algorithm)
                .map_err(|_| corrupt("hash algorithm", &self.hash_algorithm))?,
            id: self.id,
            storage_key: self.storage_key,
            hash_state: self.hash_state,
            hash_state_format: self.hash_state_format,
            backend_state: self.backend_state,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ManifestRow {
    digest: String,
    media_type: String,
    bytes: Vec<u8>,
}

impl ManifestRow {
    pub fn into_record(self) -> Result<ManifestRecord> {
        Ok(ManifestRecord {
            digest: digest(&self.digest)?,
            media_type: self.media_type,
            bytes: Bytes::from(self.bytes),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ReferrerRow {
    digest: String,
    media_type: String,
    size: i64,
    artifact_type: Option<String>,
    annotations: Option<String>,
}

impl ReferrerRow {
    pub fn into_referrer(self) -> Result<Referrer> {
        let annotations = match self.annotations {
            Some(json) => match serde_json::from_str(&json) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => return Err(corrupt("annotations object", &json)),
            },
            None => None,
        };
        Ok(Referrer {
            digest: digest(&self.digest)?,
            media_type: self.media_type,
            size: size(self.size)?,
            artifact_type: self.artifact_type,
            annotations,
        })
    }
}
