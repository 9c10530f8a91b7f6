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
use berth_core::tenancy::store::TenancyStore;
use berth_core::tenancy::{AuditQueue, Tenancy, write_audit_batches};
use berth_meta::{DatabaseLimits, SqliteMetaStore};
use berth_server::auth::keys::KeyRing;
use berth_server::observe::Observe;
use berth_server::{AppState, Auth, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, StorageBackend};

/// A running Berth: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    meta: Arc<SqliteMetaStore>,
    draining: Arc<AtomicBool>,
    shutdown_delay: Duration,
    _lock: File,
}

/// The metadata store of a data directory (created if needed).
pub async fn open_meta(config: &Config) -> anyhow::Result<Arc<SqliteMetaStore>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let limits = DatabaseLimits {
        readers: config.database.readers,
        statement_timeout: Duration::from_millis(config.database.statement_timeout_ms.max(1)),
    };
    let meta = SqliteMetaStore::open(&config.data_dir.join("meta.db"), &limits)
        .await
        .context("opening the metadata database")?;
    Ok(Arc::new(meta))
}

/// Applies the schema migrations the data directory's database lacks; refuses while a server
/// uses the directory.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let _lock = lock_data_dir(config)?;
    SqliteMetaStore::migrate(&config.data_dir.join("meta.db")).await.context("migrating the metadata database")
}

/// Where the token service keeps its signing keys.
pub fn keys_dir(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("keys")
}

/// The application state over a data directory's stores, and the queue its audit entries go
/// through (drained by [`write_audit_batches`] until the state is dropped).
pub struct Assembled {
    pub state: Arc<AppState>,
    pub audit_queue: AuditQueue,
    pub meta: Arc<SqliteMetaStore>,
}

/// The blob store the configuration names.
fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match (config.storage.backend, &config.storage.s3) {
        (StorageBackend::Filesystem, _) => {
            Arc::new(FsBlobStore::open(config.data_dir.join("blobs")).context("opening the blob directory")?)
        }
        (StorageBackend::S3, Some(s3)) => {
            let mut s3 = s3.clone();
            if let Ok(secret) = std::env::var("BERTH_S3_SECRET_ACCESS_KEY") {
                s3.secret_access_key = secret;
            }
            Arc::new(S3BlobStore::new(s3).context("configuring the S3 blob store")?)
        }
        (StorageBackend::S3, None) => anyhow::bail!("[storage] backend = \"s3\" needs a [storage.s3] section"),
    })
}

/// Opens a data directory's stores and builds the state every request is served from.
pub async fn assemble(config: &Config) -> anyhow::Result<Assembled> {
    // First, so that the caches built below record into it.
    let observe = Observe::new(Duration::from_millis(config.observability.slow_request_ms));
    let meta = open_meta(config).await?;
    let blobs: Arc<dyn BlobStore> = Arc::new(MeteredBlobStore::new(open_blobs(config)?));
    let registry = Arc::new(Registry::new(meta.clone(), blobs.clone(), config.registry_config()));
    let apps = Arc::new(AppRegistry::new(meta.clone(), blobs, config.app_registry_config()));
    let store: Arc<dyn MetaStore> = meta.clone();
    let (tenancy, audit_queue) = Tenancy::new(store, &config.tenancy_config());
    let keys = KeyRing::open(keys_dir(config)).context("opening the token signing keys")?;
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
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
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
    let store: Arc<dyn MetaStore> = meta.clone();
    let draining = state.observe.draining.clone();
    let prometheus = state.observe.prometheus.clone();

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(berth_server::serve(
        listener,
        berth_server::router(state.clone()),
        until_stopped(stopped.clone()),
    ));
    let background = vec![
        tokio::spawn(sweep_uploads(registry, config.uploads.clone(), until_stopped(stopped.clone()))),
        tokio::spawn(reload_keys(state, until_stopped(stopped.clone()))),
        tokio::spawn(write_audit_batches(audit_queue, store)),
        tokio::spawn(metrics_upkeep(prometheus, until_stopped(stopped))),
    ];
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "berth is serving");
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

/// One process per data directory: the upload locks live in memory.
fn lock_data_dir(config: &Config) -> anyhow::Result<File> {
    let path = config.data_dir.join("berth.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.try_lock().map_err(|_| anyhow::anyhow!("another berth process is using {}", config.data_dir.display()))?;
    Ok(file)
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
        let reloaded = state.auth.keys.reload();
        let outcome = if reloaded.is_ok() { "ok" } else { "error" };
        metrics::counter!("berth_background_runs_total", "job" => "key-reload", "outcome" => outcome).increment(1);
        if let Err(e) = reloaded {
            tracing::warn!(error = %e, "re-reading the signing keys failed");
        }
    }
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
