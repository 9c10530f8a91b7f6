//! Berth's HTTP edge. Handlers are thin: parse the request into a typed endpoint, admit it
//! into its traffic class, call one use case on [`berth_core::registry::Registry`], and
//! render the result (or the error, through one mapping table per protocol).

mod limits;
mod oci;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use berth_core::registry::Registry;
use tokio::net::TcpListener;

pub use limits::{Limits, LimitsConfig, TrafficClass};

/// What every request handler can reach.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub limits: Limits,
}

/// All of Berth's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2", any(oci::dispatch))
        .route("/v2/", any(oci::dispatch))
        .route("/v2/{*rest}", any(oci::dispatch))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
