//! Berth's HTTP edge. Handlers are thin: parse the request into a typed endpoint, admit it
//! into its traffic class, call one use case on [`berth_core::registry::Registry`], and
//! render the result (or the error, through one mapping table per protocol).

mod activity;
pub mod api;
pub mod auth;
mod body_timeout;
pub mod cnr;
mod forwarded;
mod held_body;
mod limits;
pub mod observe;
mod oci;
pub mod tls;
mod unread_body;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use berth_core::appregistry::AppRegistry;
use berth_core::registry::Registry;
use berth_core::tenancy::Tenancy;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use forwarded::TrustedProxies;
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

/// The client a request is from: the connection's peer, or, when the peer is a trusted proxy,
/// the client it forwarded for (see [`TrustedProxies`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client's IP address, from a request's extensions (absent for in-process calls).
    pub fn ip_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
        extensions.get::<ClientAddr>().map(|a| a.0)
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
    /// How long a client may take to send a request's headers (and to finish the TLS
    /// handshake), and how long a connection with no request in flight that sends nothing
    /// stays open (see `until_closed`).
    pub header_read_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_read_timeout: Duration,
    /// Most header lines in one HTTP/1 request.
    pub max_headers: usize,
    /// Most bytes of request headers; on HTTP/1 it is also the per-connection buffer, which
    /// bounds the memory of many concurrent downloads (hyper stops asking a body for more
    /// once this much of the response waits to be sent).
    pub max_header_bytes: usize,
    /// Requests one HTTP/2 connection may have in flight at once.
    pub http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_headers: 100,
            max_header_bytes: 256 * 1024,
            http2_max_streams: 128,
        }
    }
}

/// How connections are served.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub limits: ConnectionLimits,
    /// TLS on every connection when set; plain HTTP (HTTP/1.1, or HTTP/2 with prior
    /// knowledge) otherwise.
    pub tls: Option<Arc<tls::CertificateSwitch>>,
    pub trusted_proxies: TrustedProxies,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
///
/// The connection loop is hyper-util's rather than `axum::serve` so that per-connection
/// limits can be set: hyper queues at most `max_header_bytes` of an HTTP/1 response before it
/// stops asking the body for more, which bounds the memory of many concurrent blob downloads;
/// a client that trickles its headers (slow loris), its TLS handshake or its body, or idles,
/// is cut off; and at most `max_connections` are open at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = options.limits.clone();
    let tls = match &options.tls {
        Some(switch) => Some(tokio_rustls::TlsAcceptor::from(switch.server_config().map_err(std::io::Error::other)?)),
        None => None,
    };
    let builder = connection_builder(&limits);
    let trusted_proxies = Arc::new(options.trusted_proxies);
    let max_connections = u32::try_from(limits.max_connections).unwrap_or(u32::MAX).max(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
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
        let trusted_proxies = trusted_proxies.clone();
        let body_read_timeout = limits.body_read_timeout;
        let over_tls = tls.is_some();
        let activity = activity::Activity::new();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let in_flight = requests.begin();
            let client = trusted_proxies.client_of(peer.ip(), request.headers());
            let mut request = request.map(|body| body_timeout::ProgressTimeout::new(body, body_read_timeout));
            forwarded::settle_scheme(&trusted_proxies, peer.ip(), over_tls, request.headers_mut());
            // HTTP/2 names the host in the URI (:authority), handlers read it from Host.
            if !request.headers().contains_key(axum::http::header::HOST)
                && let Some(host) = request.uri().authority().and_then(|a| a.as_str().parse().ok())
            {
                request.headers_mut().insert(axum::http::header::HOST, host);
            }
            request.extensions_mut().insert(ClientAddr(client));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| held_body::hold_until_sent(body, in_flight)))
            }
        });
        let builder = builder.clone();
        let closing = closing_seen.clone();
        let handshake_within = limits.header_read_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // hyper's header timer starts once it knows the protocol, which takes a first
            // byte: a client that connects and says nothing is cut off here instead.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(handshake_within, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let stream = activity::ReadClock::new(stream, activity.clone());
            let served = match tls {
                None => {
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    until_closed(connection, &activity, handshake_within, closing).await
                }
                Some(acceptor) => match tokio::time::timeout(handshake_within, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        until_closed(connection, &activity, handshake_within, closing).await
                    }
                    Ok(Err(e)) => {
                        metrics::counter!("berth_tls_handshake_failures_total").increment(1);
                        tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics::counter!("berth_slow_clients_cut_total", "phase" => "handshake").increment(1);
                        return;
                    }
                },
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot until it ends.
    let _ = slots.acquire_many(max_connections).await;
    Ok(())
}

/// Serves a connection until it ends. It is asked to finish (HTTP/1: after the response in
/// flight; HTTP/2: GOAWAY) when it has been idle for `idle_after` or the server shuts down,
/// and dropped if it is then idle that long again (a client that ignores GOAWAY).
async fn until_closed<C>(
    connection: C,
    activity: &activity::Activity,
    idle_after: Duration,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Finishing,
{
    tokio::pin!(connection);
    let mut finishing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => return served,
            _ = closing.wait_for(|closing| *closing), if !finishing => {
                connection.as_mut().finish();
                finishing = true;
            }
            () = activity.idle(idle_after) => {
                if finishing {
                    return Ok(());
                }
                metrics::counter!("berth_idle_connections_closed_total").increment(1);
                connection.as_mut().finish();
                finishing = true;
            }
        }
    }
}

/// A connection that can be asked to finish what it is doing and close.
trait Finishing {
    fn finish(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E> Finishing for auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: hyper::body::Body + Send + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn finish(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// hyper's per-connection settings for HTTP/1.1 and HTTP/2.
fn connection_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams.max(1))
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        // Windows large enough for a layer download to fill a fast link, small enough that
        // a connection's unread uploads stay bounded.
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .max_send_buf_size(HTTP2_STREAM_WINDOW as usize)
        // Pings find peers that vanished without closing while a response is in flight
        // (connections with nothing in flight are closed by `until_closed`).
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// hyper's smallest HTTP/1 buffer.
const MIN_HEADER_BYTES: usize = 8192;
const HTTP2_STREAM_WINDOW: u32 = 1024 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
