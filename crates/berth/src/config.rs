//! Configuration: built-in defaults, then an optional TOML file, then `BERTH_*` environment
//! variables and command-line flags (the flags and variables are applied by `main`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use std::time::Duration;

use berth_core::appregistry::AppRegistryConfig;
use berth_core::registry::RegistryConfig;
use berth_core::tenancy::TenancyConfig;
use berth_server::{ClassLimits, LimitsConfig, Rate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the database and the blobs live.
    pub data_dir: PathBuf,
    /// On SIGTERM, how long to keep serving with `/readyz` answering 503 before no longer
    /// accepting connections, in milliseconds: the time a load balancer needs to notice.
    pub shutdown_delay_ms: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (or its TLS handshake), and
    /// how long a connection (HTTP/1.1 or HTTP/2) with nothing in flight is kept, in
    /// milliseconds.
    pub header_read_timeout_ms: u64,
    /// Most header lines in one request (431 beyond).
    pub max_headers: usize,
    /// Most bytes of request headers (431 beyond); on HTTP/1 also each connection's buffer.
    pub max_header_bytes: usize,
    /// Longest wait for the next bytes of a request body, in milliseconds; a stalled request
    /// is then ended (an upload session keeps its earlier chunks, not the stalled one).
    pub body_read_timeout_ms: u64,
    /// Requests one HTTP/2 connection may have in flight at once.
    pub http2_max_streams: u32,
    /// Reverse proxies (addresses or networks, e.g. `"10.0.0.0/8"`) whose `Forwarded` or
    /// `X-Forwarded-For`/`-Proto` headers are believed, for rate limits, the audit log and
    /// the token realm's scheme. Empty: none is believed.
    pub trusted_proxies: Vec<String>,
    pub tls: TlsSection,
    pub registry: RegistrySection,
    pub limits: LimitsSection,
    pub uploads: UploadsSection,
    pub database: DatabaseSection,
    pub auth: AuthSection,
    pub app_registry: AppRegistrySection,
    pub observability: ObservabilitySection,
    pub storage: StorageSection,
}

/// `[tls]`: serve HTTPS directly (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, the server's own certificate first (`--tls-cert`).
    pub cert: Option<PathBuf>,
    /// PEM private key of that certificate: PKCS#8, PKCS#1 or SEC1 (`--tls-key`).
    pub key: Option<PathBuf>,
    /// How often to look for a renewed certificate and key, in seconds; SIGHUP looks at once.
    pub reload_check_secs: u64,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection { cert: None, key: None, reload_check_secs: 10 }
    }
}

impl TlsSection {
    /// The files to serve TLS from; `None` serves plain HTTP.
    pub fn files(&self) -> anyhow::Result<Option<berth_server::tls::TlsFiles>> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some(berth_server::tls::TlsFiles { cert: cert.clone(), key: key.clone() })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!("[tls] cert is set but key is not (--tls-key)"),
            (None, Some(_)) => anyhow::bail!("[tls] key is set but cert is not (--tls-cert)"),
        }
    }
}

/// `[storage]`: where blob bytes live.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    pub backend: StorageBackend,
    /// Whole-blob downloads are answered with a 307 to a presigned object-store URL valid this
    /// many seconds, so the bytes bypass Berth (0: off; the filesystem has no such URLs).
    pub redirect_secs: u64,
    /// `[storage.s3]`, for `backend = "s3"`. The secret access key may instead come from
    /// `BERTH_S3_SECRET_ACCESS_KEY`, which wins, to keep it out of the file.
    pub s3: Option<berth_blob::S3Config>,
    /// `[storage.gcs]`, for `backend = "gcs"` (a build with `--features gcs`).
    pub gcs: Option<berth_blob::GcsConfig>,
    /// `[storage.azure]`, for `backend = "azure"` (a build with `--features azure`). The access
    /// key may instead come from `BERTH_AZURE_ACCESS_KEY`, which wins.
    pub azure: Option<berth_blob::AzureConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// `blobs/` in the data directory.
    #[default]
    Filesystem,
    /// An S3-compatible object store.
    S3,
    /// Google Cloud Storage. Parsed in every build, so that one without it can say so.
    Gcs,
    /// Azure Blob Storage. Parsed in every build, so that one without it can say so.
    Azure,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilitySection {
    /// Requests slower than this (to the response head), in milliseconds, are logged.
    pub slow_request_ms: u64,
}

impl Default for ObservabilitySection {
    fn default() -> Self {
        ObservabilitySection { slow_request_ms: 1000 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppRegistrySection {
    /// Largest App Registry push request (JSON carrying the base64 package), in bytes.
    pub max_push_bytes: u64,
    /// Largest uncompressed package a push may carry, in bytes.
    pub max_unpacked_bytes: u64,
    /// Memory for cached packages and listings, in bytes.
    pub cache_bytes: u64,
}

impl Default for AppRegistrySection {
    fn default() -> Self {
        let core = AppRegistryConfig::default();
        AppRegistrySection {
            max_push_bytes: core.max_push_bytes,
            max_unpacked_bytes: core.max_unpacked_bytes,
            cache_bytes: core.cache_bytes,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Off only for experiments and benchmarks: every request then acts with full rights.
    pub enabled: bool,
    /// The `service` named in challenges and tokens.
    pub service: String,
    /// How long a registry token is valid.
    pub token_lifetime_secs: u64,
    /// The URL clients reach Berth at (e.g. `https://registry.example.com`), for the token
    /// realm; by default it is built from each request's `Host` header.
    pub public_url: Option<String>,
    /// How long a verified password or token is trusted before it is checked again.
    pub credential_cache_secs: u64,
    /// Failed logins allowed per client address per minute before 429.
    pub failures_per_address: u32,
    /// Failed logins allowed per account per minute before 429.
    pub failures_per_account: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySection {
    /// Largest blob accepted, in bytes.
    pub max_blob_size: u64,
    /// Most tags or repositories per listing page.
    pub page_limit: u32,
    /// Most referrers per response.
    pub referrers_limit: u32,
    /// Memory for cached manifests, in bytes.
    pub manifest_cache_bytes: u64,
    /// Memory for cached blob lookups, in bytes.
    pub blob_cache_bytes: u64,
}

/// `[limits]`: one table per traffic class; what a table leaves out keeps that class's
/// default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Image reads: manifests, blobs, tag and catalog listings, referrers.
    pub pull: ClassSection,
    /// Image writes: uploads, manifest pushes, deletes.
    pub push: ClassSection,
    /// App Registry reads (listings, shows, pulls).
    pub appr_read: ClassSection,
    /// App Registry writes (pushes, deletes, channel changes) and logins.
    pub appr_write: ClassSection,
    /// The management API.
    pub api: ClassSection,
    /// The token service (`/v2/auth`), which hashes passwords.
    pub auth: ClassSection,
}

/// `[limits.<class>]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassSection {
    /// Requests served at once.
    pub concurrency: Option<u32>,
    /// Requests that may wait for a slot when all are taken; more are refused at once.
    pub queue: Option<u32>,
    /// How long a request waits in the queue before it is refused, in milliseconds.
    pub queue_timeout_ms: Option<u64>,
    /// Database connections the class may hold at once.
    pub db_connections: Option<u32>,
    /// Requests per second the whole class may start (0: unlimited).
    pub rate_per_sec: Option<f64>,
    /// Requests the class may start at once after a quiet spell (0: one second's worth).
    pub rate_burst: Option<u32>,
    /// Requests per second from one client address (0: unlimited).
    pub per_address_per_sec: Option<f64>,
    /// Requests a quiet client address may send at once (0: one second's worth).
    pub per_address_burst: Option<u32>,
    /// Requests per second from one user or robot (0: unlimited).
    pub per_principal_per_sec: Option<f64>,
    /// Requests a quiet user or robot may send at once (0: one second's worth).
    pub per_principal_burst: Option<u32>,
}

impl ClassSection {
    /// This table's settings over `limits`.
    fn apply(&self, limits: &mut ClassLimits) {
        let set = |target: &mut u32, value: Option<u32>| *target = value.unwrap_or(*target);
        set(&mut limits.concurrency, self.concurrency);
        set(&mut limits.queue, self.queue);
        set(&mut limits.db_connections, self.db_connections);
        if let Some(ms) = self.queue_timeout_ms {
            limits.queue_timeout = Duration::from_millis(ms);
        }
        apply_rate(&mut limits.rate, self.rate_per_sec, self.rate_burst);
        apply_rate(&mut limits.per_address, self.per_address_per_sec, self.per_address_burst);
        apply_rate(&mut limits.per_principal, self.per_principal_per_sec, self.per_principal_burst);
    }
}

/// A rate of 0 turns the limit off; a burst of 0 allows one second's worth at once.
fn apply_rate(rate: &mut Option<Rate>, per_second: Option<f64>, burst: Option<u32>) {
    let per_second = per_second.unwrap_or(rate.map_or(0.0, |r| r.per_second));
    let burst = burst.unwrap_or(rate.map_or(0, |r| r.burst));
    *rate = (per_second > 0.0).then(|| Rate {
        per_second,
        burst: if burst == 0 { per_second.ceil().min(u32::MAX as f64) as u32 } else { burst },
    });
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsSection {
    /// Upload sessions idle this long are ended and their bytes removed.
    pub stale_after_secs: u64,
    /// How often to look for stale sessions.
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// Where the metadata lives: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`
    /// [default: `sqlite://<data_dir>/meta.db`]. `BERTH_DATABASE_URL` overrides it, so a
    /// password need not be written in the file.
    pub url: Option<String>,
    /// Reader connections (per instance).
    pub readers: u32,
    /// Writer connections on PostgreSQL (per instance); SQLite always has exactly one.
    pub writers: u32,
    /// Longest a database statement, a wait for a connection or for the write lock may
    /// take, in milliseconds; past it the request is answered 503 with `Retry-After`.
    pub statement_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: PathBuf::from("./berth-data"),
            shutdown_delay_ms: 0,
            max_connections: berth_server::ConnectionLimits::default().max_connections,
            header_read_timeout_ms: 30_000,
            max_headers: berth_server::ConnectionLimits::default().max_headers,
            max_header_bytes: berth_server::ConnectionLimits::default().max_header_bytes,
            body_read_timeout_ms: 60_000,
            http2_max_streams: berth_server::ConnectionLimits::default().http2_max_streams,
            trusted_proxies: Vec::new(),
            tls: TlsSection::default(),
            registry: RegistrySection::default(),
            limits: LimitsSection::default(),
            uploads: UploadsSection::default(),
            database: DatabaseSection::default(),
            auth: AuthSection::default(),
            app_registry: AppRegistrySection::default(),
            observability: ObservabilitySection::default(),
            storage: StorageSection::default(),
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        let auth = berth_server::auth::AuthConfig::default();
        let tenancy = TenancyConfig::default();
        AuthSection {
            enabled: auth.enabled,
            service: auth.service,
            token_lifetime_secs: auth.token_lifetime.as_secs(),
            public_url: None,
            credential_cache_secs: tenancy.credential_cache_ttl.as_secs(),
            failures_per_address: tenancy.failures_per_address,
            failures_per_account: tenancy.failures_per_account,
        }
    }
}

impl Default for RegistrySection {
    fn default() -> Self {
        let core = RegistryConfig::default();
        RegistrySection {
            max_blob_size: core.max_blob_size,
            page_limit: core.page_limit,
            referrers_limit: core.referrers_limit,
            manifest_cache_bytes: core.manifest_cache_bytes,
            blob_cache_bytes: core.blob_cache_bytes,
        }
    }
}

impl Default for UploadsSection {
    fn default() -> Self {
        UploadsSection { stale_after_secs: 24 * 3600, sweep_interval_secs: 600 }
    }
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection { url: None, readers: 4, writers: 4, statement_timeout_ms: 5000 }
    }
}

/// Where the configuration and data directory come from.
#[derive(clap::Args, Debug)]
pub struct Location {
    /// TOML configuration file; flags and BERTH_* variables override what it sets.
    #[arg(long, env = "BERTH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Directory for the database and blobs [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl Location {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(data_dir) = &self.data_dir {
            config.data_dir = data_dir.clone();
        }
        Ok(config)
    }
}

impl Config {
    /// Reads a TOML file; keys it does not set keep their defaults, unknown keys are errors.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// The metadata database: `BERTH_DATABASE_URL`, else `[database] url`, else a SQLite
    /// file in the data directory.
    pub fn database_url(&self) -> anyhow::Result<berth_meta::DatabaseUrl> {
        let url = std::env::var("BERTH_DATABASE_URL").ok().or_else(|| self.database.url.clone());
        match url {
            Some(url) => berth_meta::DatabaseUrl::parse(&url).context("[database] url"),
            None => Ok(berth_meta::DatabaseUrl::Sqlite(self.data_dir.join("meta.db"))),
        }
    }

    /// Whether anything lives in the data directory that one process must own (a SQLite
    /// database or blob files); on PostgreSQL and object storage instances share nothing local.
    pub fn uses_data_dir(&self) -> anyhow::Result<bool> {
        Ok(matches!(self.database_url()?, berth_meta::DatabaseUrl::Sqlite(_))
            || self.storage.backend == StorageBackend::Filesystem)
    }

    /// The effective configuration (the environment's overrides applied) as TOML, with every
    /// secret replaced by `<redacted>`, for `berth config check`.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        const REDACTED: &str = "<redacted>";
        let mut effective = self.clone();
        if let Ok(url) = std::env::var("BERTH_DATABASE_URL") {
            effective.database.url = Some(url);
        }
        effective.database.url = effective.database.url.as_deref().map(berth_meta::redacted);
        if let Some(s3) = &mut effective.storage.s3 {
            s3.secret_access_key = REDACTED.into();
        }
        if let Some(azure) = &mut effective.storage.azure {
            azure.access_key = REDACTED.into();
        }
        toml::to_string_pretty(&effective).context("rendering the configuration")
    }

    /// What would stop `berth serve` with this configuration, found without starting it or
    /// reaching any server.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.database_url() {
            problems.push(format!("{e:#}"));
        }
        // The filesystem store needs nothing checked here (opening it creates directories).
        if self.storage.backend != StorageBackend::Filesystem
            && let Err(e) = crate::app::open_blobs(self)
        {
            problems.push(format!("{e:#}"));
        }
        if self.uploads.stale_after_secs == 0 {
            problems.push("[uploads] stale_after_secs = 0 would end every upload at the next sweep".into());
        }
        if self.auth.token_lifetime_secs == 0 {
            problems.push("[auth] token_lifetime_secs = 0 makes every token expire at once".into());
        }
        if let Err(e) = self.serve_options() {
            problems.push(format!("{e:#}"));
        }
        problems
    }

    pub fn connection_limits(&self) -> berth_server::ConnectionLimits {
        berth_server::ConnectionLimits {
            max_connections: self.max_connections.max(1),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms.max(1)),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms.max(1)),
            max_headers: self.max_headers.max(1),
            max_header_bytes: self.max_header_bytes,
            http2_max_streams: self.http2_max_streams.max(1),
        }
    }

    /// How to serve connections; reads and checks the TLS certificate and key.
    pub fn serve_options(&self) -> anyhow::Result<berth_server::ServeOptions> {
        let tls = match self.tls.files()? {
            Some(files) => Some(std::sync::Arc::new(berth_server::tls::CertificateSwitch::open(files)?)),
            None => None,
        };
        let trusted_proxies = berth_server::TrustedProxies::parse(&self.trusted_proxies).map_err(anyhow::Error::msg)?;
        Ok(berth_server::ServeOptions { limits: self.connection_limits(), tls, trusted_proxies })
    }

    pub fn registry_config(&self) -> RegistryConfig {
        let r = &self.registry;
        RegistryConfig {
            max_blob_size: r.max_blob_size,
            page_limit: r.page_limit.max(1),
            referrers_limit: r.referrers_limit.max(1),
            manifest_cache_bytes: r.manifest_cache_bytes,
            blob_cache_bytes: r.blob_cache_bytes,
            blob_redirect_ttl: (self.storage.redirect_secs > 0)
                .then(|| Duration::from_secs(self.storage.redirect_secs)),
        }
    }

    pub fn app_registry_config(&self) -> AppRegistryConfig {
        let a = &self.app_registry;
        AppRegistryConfig {
            max_push_bytes: a.max_push_bytes,
            max_unpacked_bytes: a.max_unpacked_bytes,
            cache_bytes: a.cache_bytes,
        }
    }

    pub fn auth_config(&self) -> berth_server::auth::AuthConfig {
        berth_server::auth::AuthConfig {
            enabled: self.auth.enabled,
            service: self.auth.service.clone(),
            token_lifetime: Duration::from_secs(self.auth.token_lifetime_secs.max(1)),
            public_url: self.auth.public_url.clone(),
        }
    }

    pub fn tenancy_config(&self) -> TenancyConfig {
        TenancyConfig {
            credential_cache_ttl: Duration::from_secs(self.auth.credential_cache_secs),
            failures_per_address: self.auth.failures_per_address,
            failures_per_account: self.auth.failures_per_account,
            ..TenancyConfig::default()
        }
    }

    pub fn limits_config(&self) -> LimitsConfig {
        let l = &self.limits;
        let mut limits = LimitsConfig {
            db_wait: Duration::from_millis(self.database.statement_timeout_ms),
            ..LimitsConfig::default()
        };
        l.pull.apply(&mut limits.pull);
        l.push.apply(&mut limits.push);
        l.appr_read.apply(&mut limits.app_read);
        l.appr_write.apply(&mut limits.app_write);
        l.api.apply(&mut limits.api);
        l.auth.apply(&mut limits.auth);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_typos() {
        let c: Config = toml::from_str("listen = \"0.0.0.0:6000\"\n[limits.push]\nconcurrency = 3\n").expect("parses");
        assert_eq!(c.listen.port(), 6000);
        let limits = c.limits_config();
        let defaults = LimitsConfig::default();
        assert_eq!(limits.push.concurrency, 3);
        assert_eq!(limits.push.queue, defaults.push.queue);
        assert_eq!(limits.pull, defaults.pull);
        assert!(toml::from_str::<Config>("lisen = \"0.0.0.0:6000\"").is_err());
        assert!(toml::from_str::<Config>("[limits.push]\nconcurency = 3").is_err());
        assert!(toml::from_str::<Config>("[limits.storm]\nconcurrency = 3").is_err());
    }

    #[test]
    fn a_class_table_keeps_that_class_defaults_and_rates_turn_on_and_off() {
        let c: Config = toml::from_str(
            "[limits.appr_read]\nper_address_per_sec = 5.0\n[limits.api]\nper_principal_per_sec = 0\n\
             [limits.pull]\nper_principal_per_sec = 2.5\nper_principal_burst = 10\n",
        )
        .expect("parses");
        let limits = c.limits_config();
        let defaults = LimitsConfig::default();
        assert_eq!(limits.app_read.concurrency, defaults.app_read.concurrency);
        assert_eq!(limits.app_read.db_connections, defaults.app_read.db_connections);
        assert_eq!(limits.app_read.per_address, Some(Rate { per_second: 5.0, burst: 5 }));
        assert_eq!(limits.api.per_principal, None);
        assert_eq!(limits.pull.per_principal, Some(Rate { per_second: 2.5, burst: 10 }));
        assert_eq!(limits.pull.per_address, None, "pulls are not rate limited by default");
    }

    #[test]
    fn storage_is_the_filesystem_unless_s3_is_configured() {
        assert_eq!(Config::default().storage.backend, StorageBackend::Filesystem);
        let c: Config =
            toml::from_str("[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\naccess_key_id = \"k\"\n")
                .expect("parses");
        let s3 = c.storage.s3.expect("an s3 table");
        assert_eq!((c.storage.backend, s3.bucket.as_str(), s3.region.as_str()), (StorageBackend::S3, "b", "us-east-1"));
        assert!(!format!("{s3:?}").contains("secret_access_key"));
        assert!(toml::from_str::<Config>("[storage.s3]\nbucket = \"b\"\naccess_key_id = \"k\"\nbukket = 1\n").is_err());
        assert!(toml::from_str::<Config>("[storage]\nbackend = \"gcloud\"\n").is_err());
    }

    #[test]
    fn gcs_and_azure_tables_parse_in_every_build() {
        let c: Config = toml::from_str(
            "[storage]\nbackend = \"gcs\"\n[storage.gcs]\nbucket = \"b\"\nprefix = \"p\"\n\
             [storage.azure]\naccount = \"a\"\ncontainer = \"c\"\naccess_key = \"hunter2\"\n\
             endpoint = \"http://127.0.0.1:10000/a\"\nallow_http = true\n",
        )
        .expect("parses");
        assert_eq!(c.storage.backend, StorageBackend::Gcs);
        let gcs = c.storage.gcs.expect("a gcs table");
        assert_eq!((gcs.bucket.as_str(), gcs.service_account_path, gcs.prefix.as_str()), ("b", None, "p"));
        let azure = c.storage.azure.expect("an azure table");
        assert_eq!((azure.account.as_str(), azure.container.as_str(), azure.allow_http), ("a", "c", true));
        assert!(!format!("{azure:?}").contains("hunter2"));
        let c: Config = toml::from_str("[storage]\nbackend = \"azure\"\n").expect("parses");
        assert_eq!(c.storage.backend, StorageBackend::Azure);
        let typo = "[storage.azure]\naccount = \"a\"\ncontainer = \"c\"\nkey = \"k\"\n";
        assert!(toml::from_str::<Config>(typo).is_err());
    }

    /// Without its feature a backend is refused with the build it needs; with it, the store is
    /// built (no request is sent, so no emulator is needed).
    #[test]
    fn gcs_and_azure_need_their_cargo_features() {
        let gcs: Config = toml::from_str(
            "[storage]\nbackend = \"gcs\"\n[storage.gcs]\nbucket = \"b\"\n\
             service_account_path = \"/nonexistent/berth-service-account.json\"\n",
        )
        .expect("parses");
        let refused = crate::app::open_blobs(&gcs).err().expect("refused");
        let expected = if cfg!(feature = "gcs") {
            "configuring the GCS blob store"
        } else {
            "[storage] backend = \"gcs\" needs a Berth built with --features gcs"
        };
        assert_eq!(refused.to_string(), expected);

        let azure: Config = toml::from_str(
            "[storage]\nbackend = \"azure\"\n[storage.azure]\naccount = \"a\"\ncontainer = \"c\"\n\
             access_key = \"aHVudGVyMg==\"\n",
        )
        .expect("parses");
        let opened = crate::app::open_blobs(&azure).map(drop).map_err(|e| format!("{e:#}"));
        let expected = if cfg!(feature = "azure") {
            Ok(())
        } else {
            Err("[storage] backend = \"azure\" needs a Berth built with --features azure".to_owned())
        };
        assert_eq!(opened, expected);
    }

    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let readme = include_str!("../../../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README has a TOML example");
        let config: Config = toml::from_str(example).expect("the README's configuration parses");
        assert_eq!(config.limits_config().app_read, LimitsConfig::default().app_read);
    }
}
