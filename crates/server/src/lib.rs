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

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
///
/// The connection loop is hyper-util's rather than `axum::serve` so that per-connection
/// limits can be set: hyper queues at most [`WRITE_BUFFER`] of a response before it stops
/// asking the body for more, which bounds the memory of many concurrent blob downloads.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).max_buf_size(WRITE_BUFFER);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Bytes of response hyper buffers per connection before applying backpressure.
const WRITE_BUFFER: usize = 256 * 1024;
