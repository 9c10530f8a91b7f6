//! Wiring: open the stores in the data directory, build the registry, serve it, and run the
//! background tasks, until asked to stop.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use berth_blob::{FsBlobStore, S3BlobStore};
use berth_core::appregistry::AppRegistry;
use berth_core::metered_store::MeteredBlobStore;
use berth_core::ports::{BlobStore, MetaStore};
use berth_core::registry::Registry;
use berth_core::tenancy::{AuditQueue, Tenancy, write_audit_batches};
use berth_meta::DatabaseLimits;
use berth_server::auth::keys::KeyRing;
use berth_server::observe::Observe;
use berth_server::{AppState, Auth, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, StorageBackend, StorageSection};

/// A running Berth: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    meta: Arc<dyn MetaStore>,
    draining: Arc<AtomicBool>,
    shutdown_delay: Duration,
    _lock: Option<File>,
}

/// The metadata store the configuration names (a SQLite file is created if needed).
pub async fn open_meta(config: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    let url = config.database_url()?;
    if matches!(url, berth_meta::DatabaseUrl::Sqlite(_)) {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let limits = DatabaseLimits {
        readers: config.database.readers,
        writers: config.database.writers,
        statement_timeout: Duration::from_millis(config.database.statement_timeout_ms.max(1)),
    };
    berth_meta::open(&url, &limits).await.context("opening the metadata database")
}

/// Applies the schema migrations the database lacks; refuses while a server uses the data
/// directory's SQLite database.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    let _lock = lock_data_dir(config)?;
    berth_meta::migrate(&config.database_url()?).await.context("migrating the metadata database")
}

/// Where Berth kept its token signing keys before they moved into the database.
fn legacy_keys_dir(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("keys")
}

/// The application state over a data directory's stores, and the queue its audit entries go
/// through (drained by [`write_audit_batches`] until the state is dropped).
pub struct Assembled {
    pub state: Arc<AppState>,
    pub audit_queue: AuditQueue,
    pub meta: Arc<dyn MetaStore>,
}

/// The blob store the configuration names.
pub(crate) fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    let storage = &config.storage;
    Ok(match storage.backend {
        StorageBackend::Filesystem => {
            Arc::new(FsBlobStore::open(config.data_dir.join("blobs")).context("opening the blob directory")?)
        }
        StorageBackend::S3 => {
            let mut s3 = storage_table(&storage.s3, "s3")?.clone();
            if let Ok(secret) = std::env::var("BERTH_S3_SECRET_ACCESS_KEY") {
                s3.secret_access_key = secret;
            }
            Arc::new(S3BlobStore::new(s3).context("configuring the S3 blob store")?)
        }
        StorageBackend::Gcs => open_gcs(storage)?,
        StorageBackend::Azure => open_azure(storage)?,
    })
}

/// `[storage.<name>]`, which `backend = "<name>"` needs.
fn storage_table<'a, T>(table: &'a Option<T>, name: &str) -> anyhow::Result<&'a T> {
    table.as_ref().with_context(|| format!("[storage] backend = \"{name}\" needs a [storage.{name}] section"))
}

#[cfg(feature = "gcs")]
fn open_gcs(storage: &StorageSection) -> anyhow::Result<Arc<dyn BlobStore>> {
    let gcs = storage_table(&storage.gcs, "gcs")?.clone();
    Ok(Arc::new(berth_blob::GcsBlobStore::new(gcs).context("configuring the GCS blob store")?))
}

#[cfg(not(feature = "gcs"))]
fn open_gcs(_: &StorageSection) -> anyhow::Result<Arc<dyn BlobStore>> {
    anyhow::bail!("[storage] backend = \"gcs\" needs a Berth built with --features gcs")
}

#[cfg(feature = "azure")]
fn open_azure(storage: &StorageSection) -> anyhow::Result<Arc<dyn BlobStore>> {
    let mut azure = storage_table(&storage.azure, "azure")?.clone();
    if let Ok(key) = std::env::var("BERTH_AZURE_ACCESS_KEY") {
        azure.access_key = key;
    }
    Ok(Arc::new(berth_blob::AzureBlobStore::new(azure).context("configuring the Azure blob store")?))
}

#[cfg(not(feature = "azure"))]
fn open_azure(_: &StorageSection) -> anyhow::Result<Arc<dyn BlobStore>> {
    anyhow::bail!("[storage] backend = \"azure\" needs a Berth built with --features azure")
}

/// Opens a data directory's stores and builds the state every request is served from.
pub async fn assemble(config: &Config) -> anyhow::Result<Assembled> {
    // First, so that the caches built below record into it.
    let observe = Observe::new(Duration::from_millis(config.observability.slow_request_ms));
    let meta = open_meta(config).await?;
    let blobs: Arc<dyn BlobStore> = Arc::new(MeteredBlobStore::new(open_blobs(config)?));
    let registry = Arc::new(Registry::new(meta.clone(), blobs.clone(), config.registry_config()));
    let apps = Arc::new(AppRegistry::new(meta.clone(), blobs, config.app_registry_config()));
    let (tenancy, audit_queue) = Tenancy::new(meta.clone(), &config.tenancy_config());
    let keys =
        KeyRing::open(meta.clone(), Some(&legacy_keys_dir(config))).await.context("opening the token signing keys")?;
    let state = Arc::new(AppState {
        registry,
        apps,
        tenancy: Arc::new(tenancy),
        auth: Auth::new(config.auth_config(), keys),
        limits: Limits::new(&config.limits_config()),
        observe,
    });
    Ok(Assembled { state, audit_queue, meta })
}

/// Opens the data directory, binds the listener and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    // Checked first: a certificate that cannot serve stops Berth before it touches any store.
    let options = config.serve_options()?;
    let lock = lock_data_dir(config)?;
    let Assembled { state, audit_queue, meta } = assemble(config).await?;
    // Fail at start, with the reason, rather than on the first push.
    state.registry.check_stores().await.context("reaching the metadata and blob stores")?;
    if !config.auth.enabled {
        tracing::warn!("authentication is OFF: every request has full rights; never expose this registry");
    } else if meta.count_users().await? == 0 {
        tracing::warn!("no accounts exist yet; create the first one with `berth admin create-user NAME --superuser`");
    }
    let registry = state.registry.clone();
    let store = meta.clone();
    // Subscribed before serving, so no change committed after the first request is missed.
    let changes = meta.subscribe_changes().await.context("listening for other instances' changes")?;
    let draining = state.observe.draining.clone();
    let prometheus = state.observe.prometheus.clone();
    let certificates = options.tls.clone();

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(berth_server::serve(
        listener,
        berth_server::router(state.clone()),
        options,
        until_stopped(stopped.clone()),
    ));
    let mut background = vec![
        tokio::spawn(sweep_uploads(registry, config.uploads.clone(), until_stopped(stopped.clone()))),
        tokio::spawn(reload_keys(state.clone(), until_stopped(stopped.clone()))),
        tokio::spawn(write_audit_batches(audit_queue, store)),
        tokio::spawn(metrics_upkeep(prometheus, until_stopped(stopped.clone()))),
    ];
    let scheme = if certificates.is_some() { "https" } else { "http" };
    if let Some(certificates) = certificates {
        let every = Duration::from_secs(config.tls.reload_check_secs.max(1));
        background.push(tokio::spawn(reload_certificates(certificates, every, until_stopped(stopped.clone()))));
    }
    if let Some(changes) = changes {
        background.push(tokio::spawn(apply_changes(changes, state, until_stopped(stopped))));
    }
    tracing::info!(%addr, scheme, data_dir = %config.data_dir.display(), "berth is serving");
    let shutdown_delay = Duration::from_millis(config.shutdown_delay_ms);
    Ok(Running { addr, stop, server, background, meta, draining, shutdown_delay, _lock: lock })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, flushes the audit log, and closes the
    /// stores.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.draining.store(true, Ordering::Release);
        if !self.shutdown_delay.is_zero() {
            tracing::info!(delay_ms = self.shutdown_delay.as_millis() as u64, "draining: /readyz answers 503");
            tokio::time::sleep(self.shutdown_delay).await;
        }
        let _ = self.stop.send(true);
        let served = self.server.await.context("server task")?;
        // The audit writer ends once the last handle to the application state is gone.
        for task in self.background {
            let _ = task.await;
        }
        self.meta.close().await;
        served.context("serving")
    }

    /// Resolves when the server stops on its own (it only does on an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await.context("server task")?.context("serving")
    }
}

/// One process per data directory holding a SQLite database or blob files (creating the
/// directory if needed); `None` when the instance keeps nothing there.
pub(crate) fn lock_data_dir(config: &Config) -> anyhow::Result<Option<File>> {
    if !config.uses_data_dir()? {
        return Ok(None);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join("berth.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.try_lock().map_err(|_| anyhow::anyhow!("another berth process is using {}", config.data_dir.display()))?;
    Ok(Some(file))
}

/// Drops what this instance cached about changes other instances committed. Holds the state
/// only while applying one, so shutdown can drop it.
async fn apply_changes(
    mut changes: berth_core::ports::ChangeFeed,
    state: Arc<AppState>,
    stopped: impl Future<Output = ()>,
) {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::pin!(stopped);
    loop {
        let change = tokio::select! {
            _ = &mut stopped => return,
            change = changes.recv() => change,
        };
        let (Some(change), Some(state)) = (change, weak.upgrade()) else { return };
        metrics::counter!("berth_changes_applied_total").increment(1);
        state.registry.apply_change(&change);
        state.apps.apply_change(&change);
        state.tenancy.apply_change(&change);
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn sweep_uploads(
    registry: Arc<Registry>,
    config: crate::config::UploadsSection,
    stopped: impl Future<Output = ()>,
) {
    const BATCH: u32 = 100;
    let idle = Duration::from_secs(config.stale_after_secs);
    let mut every = tokio::time::interval(Duration::from_secs(config.sweep_interval_secs.max(1)));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = every.tick() => {}
        }
        // Batch after batch while batches come back full; then wait for the next tick.
        loop {
            let swept = registry.sweep_stale_uploads(idle, BATCH).await;
            let outcome = if swept.is_ok() { "ok" } else { "error" };
            metrics::counter!("berth_background_runs_total", "job" => "upload-sweep", "outcome" => outcome)
                .increment(1);
            match swept {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(ended = n, "ended stale upload sessions");
                    }
                    if n < BATCH as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweeping stale uploads failed");
                    break;
                }
            }
        }
    }
}

/// Picks up signing keys rotated by `berth admin rotate-signing-key` while serving. Holds the
/// state only between ticks, so shutdown can drop it.
async fn reload_keys(state: Arc<AppState>, stopped: impl Future<Output = ()>) {
    let weak = Arc::downgrade(&state);
    drop(state);
    let mut every = tokio::time::interval(Duration::from_secs(60));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = every.tick() => {}
        }
        let Some(state) = weak.upgrade() else { return };
        let reloaded = state.auth.keys.reload().await;
        let outcome = if reloaded.is_ok() { "ok" } else { "error" };
        metrics::counter!("berth_background_runs_total", "job" => "key-reload", "outcome" => outcome).increment(1);
        if let Err(e) = reloaded {
            tracing::warn!(error = %e, "re-reading the signing keys failed");
        }
    }
}

/// Swaps in a renewed TLS certificate and key: looks every `every`, and at once on SIGHUP. A
/// renewal that fails its checks is logged and the current pair keeps serving.
async fn reload_certificates(
    certificates: Arc<berth_server::tls::CertificateSwitch>,
    every: Duration,
    stopped: impl Future<Output = ()>,
) {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "SIGHUP cannot trigger certificate reloads"))
        .ok();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        let asked = tokio::select! {
            _ = &mut stopped => return,
            _ = ticks.tick() => false,
            _ = next_signal(&mut hangups) => true,
        };
        let switch = certificates.clone();
        let reloaded = tokio::task::spawn_blocking(move || switch.reload()).await;
        let files = certificates.files();
        match reloaded {
            Ok(Ok(true)) => tracing::info!(cert = %files.cert.display(), "serving the renewed TLS certificate"),
            Ok(Ok(false)) if asked => tracing::info!("SIGHUP: the TLS certificate and key are unchanged"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                metrics::counter!("berth_background_runs_total", "job" => "tls-reload", "outcome" => "error")
                    .increment(1);
                tracing::error!(error = %e, "the renewed TLS certificate cannot be served; keeping the current one");
            }
            Err(e) => tracing::error!(error = %e, "reloading the TLS certificate panicked"),
        }
    }
}

async fn next_signal(signals: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(signals) = signals
        && signals.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

/// Drains the histogram samples Prometheus has not scraped yet, so they cannot pile up
/// when nobody scrapes.
async fn metrics_upkeep(prometheus: metrics_exporter_prometheus::PrometheusHandle, stopped: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = every.tick() => prometheus.run_upkeep(),
        }
    }
}
