//! Berth's HTTP edge. Handlers are thin: parse the request into a typed endpoint, admit it
//! into its traffic class, call one use case on [`berth_core::registry::Registry`], and
//! render the result (or the error, through one mapping table per protocol).

pub mod api;
pub mod auth;
pub mod cnr;
mod limits;
pub mod observe;
mod oci;
mod unread_body;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use berth_core::appregistry::AppRegistry;
use berth_core::registry::Registry;
use berth_core::tenancy::Tenancy;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use limits::{ClassLimits, Limits, LimitsConfig, Rate, TrafficClass};

/// What every request handler can reach.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub apps: Arc<AppRegistry>,
    pub tenancy: Arc<Tenancy>,
    pub auth: Auth,
    pub limits: Limits,
    pub observe: observe::Observe,
}

/// The token service: its configuration, signing keys, and tokens verified lately.
pub struct Auth {
    pub config: auth::AuthConfig,
    pub keys: auth::keys::KeyRing,
    verified: auth::VerifiedTokens,
}

impl Auth {
    pub fn new(config: auth::AuthConfig, keys: auth::keys::KeyRing) -> Auth {
        Auth { config, keys, verified: auth::VerifiedTokens::default() }
    }
}

/// The peer address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// The client's IP address, from a request's extensions (absent for in-process calls).
    pub fn ip_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
        extensions.get::<ClientAddr>().map(|a| a.0.ip())
    }
}

/// All of Berth's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/auth", get(auth::token_endpoint).post(auth::token_endpoint))
        .route("/cnr", any(cnr::dispatch))
        .route("/cnr/", any(cnr::dispatch))
        .route("/cnr/{*rest}", any(cnr::dispatch))
        .merge(api::router(state.clone()))
        .route("/v2", any(oci::dispatch))
        .route("/v2/", any(oci::dispatch))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/metrics", get(observe::metrics))
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(axum::middleware::from_fn(unread_body::close_if_body_unread))
        .with_state(state)
}

/// Limits on connections, against slow and hostile clients.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once; past it new connections wait in the listen backlog
    /// until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open waiting for the next request.
    pub header_read_timeout: Duration,
    /// Most header lines in one request.
    pub max_headers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 10_000, header_read_timeout: Duration::from_secs(30), max_headers: 100 }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
///
/// The connection loop is hyper-util's rather than `axum::serve` so that per-connection
/// limits can be set: hyper queues at most [`WRITE_BUFFER`] of a response before it stops
/// asking the body for more, which bounds the memory of many concurrent blob downloads; a
/// client that trickles its headers (slow loris) or idles is cut off after
/// `header_read_timeout`; and at most `max_connections` are open at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(WRITE_BUFFER)
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let first_byte_within = limits.header_read_timeout;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            router.clone().oneshot(request)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header timer starts once it knows the protocol, which takes a first
            // byte: a client that connects and says nothing is cut off here instead.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(first_byte_within, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Bytes of response hyper buffers per connection before applying backpressure.
const WRITE_BUFFER: usize = 256 * 1024;
