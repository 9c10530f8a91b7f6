//! Google Cloud Storage: the object-store engine of `s3.rs` on `GoogleCloudStorage`.
//!
//! The configuration always parses, so that a Berth built without the `gcs` feature can say
//! what it lacks; the store itself needs the feature.

use serde::{Deserialize, Serialize};

/// Where and how to reach the bucket (also the `[storage.gcs]` configuration table).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    pub bucket: String,
    /// A service account key file (JSON); `None` uses application default credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file, then the metadata server).
    pub service_account_path: Option<String>,
    /// Keys are written under this prefix (e.g. `berth/prod`); empty for the bucket's root.
    #[serde(default)]
    pub prefix: String,
}

#[cfg(feature = "gcs")]
pub use store::GcsBlobStore;

#[cfg(feature = "gcs")]
mod store {
    use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};

    use super::GcsConfig;
    use crate::s3::ObjectBlobStore;

    /// The GCS backend.
    pub type GcsBlobStore = ObjectBlobStore<GoogleCloudStorage>;

    impl GcsBlobStore {
        /// A store on `config`'s bucket. Sends no request: `ping` checks the bucket.
        pub fn new(config: GcsConfig) -> object_store::Result<GcsBlobStore> {
            let mut builder = GoogleCloudStorageBuilder::new().with_bucket_name(config.bucket);
            builder = match config.service_account_path {
                Some(path) => builder.with_service_account_path(path),
                // The builder looks for gcloud's file and the metadata server, but not for the
                // variable that comes first in Google's order.
                None => match std::env::var("GOOGLE_APPLICATION_CREDENTIALS") {
                    Ok(path) => builder.with_application_credentials(path),
                    Err(_) => builder,
                },
            };
            ObjectBlobStore::with_prefix(builder.build()?, &config.prefix)
        }
    }
}

#[cfg(all(test, feature = "gcs"))]
mod tests {
    use super::*;

    #[test]
    fn a_missing_service_account_file_is_an_error() {
        let config = GcsConfig {
            bucket: "b".into(),
            service_account_path: Some("/nonexistent/berth-service-account.json".into()),
            prefix: String::new(),
        };
        assert!(GcsBlobStore::new(config).is_err());
    }
}
