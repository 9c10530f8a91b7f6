//! Azure Blob Storage: the object-store engine of `s3.rs` on `MicrosoftAzure`.
//!
//! The configuration always parses, so that a Berth built without the `azure` feature can say
//! what it lacks; the store itself needs the feature.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where and how to reach the container (also the `[storage.azure]` configuration table).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The storage account.
    pub account: String,
    pub container: String,
    /// The account's access key (base64), which also signs download URLs.
    #[serde(default)]
    pub access_key: String,
    /// Keys are written under this prefix (e.g. `berth/prod`); empty for the container's root.
    #[serde(default)]
    pub prefix: String,
    /// The account's URL, e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite; `None`
    /// is `https://<account>.blob.core.windows.net`.
    pub endpoint: Option<String>,
    /// Allows a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: bool,
}

// By hand so that the key never reaches a log.
impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "azure")]
pub use store::AzureBlobStore;

#[cfg(feature = "azure")]
mod store {
    use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};

    use super::AzureConfig;
    use crate::s3::ObjectBlobStore;

    /// The Azure Blob Storage backend.
    pub type AzureBlobStore = ObjectBlobStore<MicrosoftAzure>;

    impl AzureBlobStore {
        /// A store on `config`'s container. Sends no request: `ping` checks the container.
        pub fn new(config: AzureConfig) -> object_store::Result<AzureBlobStore> {
            let mut builder = MicrosoftAzureBuilder::new()
                .with_account(config.account)
                .with_container_name(config.container)
                .with_access_key(config.access_key)
                .with_allow_http(config.allow_http);
            if let Some(endpoint) = config.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            ObjectBlobStore::with_prefix(builder.build()?, &config.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AzureConfig {
        AzureConfig {
            account: "devstoreaccount1".into(),
            container: "berth".into(),
            access_key: "aHVudGVyMg==".into(),
            prefix: "registry".into(),
            endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            allow_http: true,
        }
    }

    #[test]
    fn the_key_stays_out_of_debug_output() {
        assert!(!format!("{:?}", config()).contains("aHVudGVyMg=="));
    }

    /// A SAS is signed locally with the access key: no emulator needed.
    #[cfg(feature = "azure")]
    #[tokio::test]
    async fn download_urls_are_signed_for_the_object_under_the_prefix() {
        use berth_core::ports::BlobStore;
        use std::time::Duration;

        let store = AzureBlobStore::new(config()).expect("store");
        let key = "0123456789abcdef0123456789abcdef";
        let url = store.direct_url(key, Duration::from_secs(60)).await.expect("signs").expect("a URL");
        assert!(url.starts_with(&format!("http://127.0.0.1:10000/devstoreaccount1/berth/registry/blobs/{key}?")));
        assert!(url.contains("sig="), "{url}");
        assert!(AzureBlobStore::new(AzureConfig { access_key: "not base64!".into(), ..config() }).is_err());
    }
}
