//! Seeing what the server does: a request id and one metrics sample per request, slow
//! requests logged, Prometheus text at `/metrics`, and the `/healthz` and `/readyz` probes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::AppState;
use crate::limits::TrafficClass;

/// Which class and route a response belongs to, set by the dispatchers (whose routes are
/// wildcards to axum) so that metrics are labelled by endpoint, never by repository.
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel {
    pub class: &'static str,
    pub route: &'static str,
}

/// Latency buckets, in seconds: from a cached manifest to a large blob.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's Prometheus recorder (installed once; every server in the process shares it).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// The help text of every metric Berth records.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("berth_http_requests_total", "Requests answered, by traffic class, route and status.");
    describe_histogram!(
        "berth_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by traffic class and route."
    );
    describe_gauge!("berth_requests_in_flight", "Requests of each traffic class being served now.");
    describe_counter!(
        "berth_requests_shed_total",
        "Requests refused with 429, by class and reason (busy: queue full; queue-timeout; new-work: a new upload while the class is half busy; class-rate; client-rate; principal-rate)."
    );
    describe_gauge!("berth_requests_queued", "Requests of each traffic class waiting for a slot now.");
    describe_histogram!(
        "berth_queue_wait_seconds",
        Unit::Seconds,
        "Time queued requests waited for a slot of their class (admitted or shed)."
    );
    describe_gauge!("berth_db_connections_in_use", "Database connections each traffic class holds now.");
    describe_histogram!(
        "berth_db_share_wait_seconds",
        Unit::Seconds,
        "Time requests waited for one of their class's database connections."
    );
    describe_counter!(
        "berth_db_share_timeouts_total",
        "Requests answered 503 because their class's database connections stayed busy."
    );
    describe_gauge!("berth_db_pool_connections", "Database pool connections, by pool and state (in_use, idle, max).");
    describe_histogram!(
        "berth_db_acquire_wait_seconds",
        Unit::Seconds,
        "Time to take a connection from a database pool."
    );
    describe_counter!("berth_db_acquire_waits_total", "Connection requests that found no idle connection in the pool.");
    describe_histogram!(
        "berth_db_query_duration_seconds",
        Unit::Seconds,
        "Database statements and transactions, by pool, from start to completion."
    );
    describe_counter!("berth_db_timeouts_total", "Database operations abandoned after the statement timeout, by kind.");
    describe_counter!(
        "berth_changes_applied_total",
        "Changes other instances announced (through the database) that this instance applied to its caches."
    );
    describe_counter!(
        "berth_change_publish_failures_total",
        "Committed changes this instance could not announce to the other instances."
    );
    describe_gauge!("berth_upload_sessions", "Upload sessions open now (across every instance on this database).");
    describe_counter!("berth_cache_requests_total", "Cache lookups, by cache and result (hit or miss).");
    describe_counter!("berth_background_runs_total", "Runs of background jobs, by job and outcome.");
    describe_histogram!(
        "berth_blob_store_operation_duration_seconds",
        Unit::Seconds,
        "Blob store operations, by operation (a read is timed until it starts streaming)."
    );
    describe_counter!("berth_blob_store_bytes_total", "Bytes written to (in) and read from (out) the blob store.");
}

/// A fresh request id: a random per-process prefix and a counter, unique without asking the
/// kernel for randomness on every request.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    crate::oci::response::value(format!("{prefix}-{n:x}"))
}

/// The status as a label value, without allocating for the common ones.
fn status_label(status: u16) -> Cow<'static, str> {
    const COMMON: [(u16, &str); 20] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (206, "206"),
        (304, "304"),
        (307, "307"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (416, "416"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    COMMON
        .iter()
        .find(|(code, _)| *code == status)
        .map_or_else(|| Cow::Owned(status.to_string()), |(_, s)| Cow::Borrowed(*s))
}

/// Request ids a client may choose: short, and safe in a header and a log line.
fn client_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get("x-request-id")?;
    let text = value.to_str().ok()?;
    let sane =
        !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| value.clone())
}

/// The class of a request no dispatcher labelled.
fn class_of_path(path: &str) -> &'static str {
    if path.starts_with("/api/") {
        "api"
    } else if path.starts_with("/v2/auth") {
        "auth"
    } else {
        "other"
    }
}

/// Wraps every request: gives it an id (the client's `X-Request-Id` if sane), runs it in a
/// span carrying that id, and records its count and latency (to the response head; blob
/// bodies stream on) by class, route and status.
pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = client_request_id(request.headers()).unwrap_or_else(new_request_id);
    // Cheap to clone; turned into a label only for routes no dispatcher labels.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let fallback_class = class_of_path(request.uri().path());
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = id.to_str().unwrap_or(""), %method);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    // Static label values where possible: the hot path should not allocate for its metrics.
    let (class, route): (&'static str, Cow<'static, str>) = match response.extensions().get::<RouteLabel>() {
        Some(label) => (label.class, Cow::Borrowed(label.route)),
        None => (fallback_class, matched.map_or(Cow::Borrowed("unmatched"), |m| Cow::Owned(m.as_str().to_owned()))),
    };
    let status = response.status().as_u16();
    metrics::counter!("berth_http_requests_total", "class" => class, "route" => route.clone(), "status" => status_label(status))
        .increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", "class" => class, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    if elapsed >= state.observe.slow_request {
        let elapsed_ms = elapsed.as_millis() as u64;
        tracing::warn!(parent: &span, class, route = &*route, status, elapsed_ms, "slow request");
    }
    response.headers_mut().insert("x-request-id", id);
    response
}

/// Observability settings and state shared by the handlers.
pub struct Observe {
    pub prometheus: PrometheusHandle,
    /// Requests slower than this (to the response head) are logged.
    pub slow_request: Duration,
    /// Set when shutdown begins: `/readyz` turns false so load balancers stop sending.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Observe {
    pub fn new(slow_request: Duration) -> Observe {
        Observe { prometheus: prometheus(), slow_request, draining: Default::default() }
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    for class in TrafficClass::ALL {
        let label = class.as_str();
        metrics::gauge!("berth_requests_in_flight", "class" => label).set(state.limits.in_flight(class) as f64);
        metrics::gauge!("berth_requests_queued", "class" => label).set(state.limits.queued(class) as f64);
        metrics::gauge!("berth_db_connections_in_use", "class" => label)
            .set(state.limits.db_connections_in_use(class) as f64);
    }
    for pool in state.registry.connection_pools() {
        for (kind, value) in [("in_use", pool.in_use), ("idle", pool.idle), ("max", pool.max)] {
            metrics::gauge!("berth_db_pool_connections", "pool" => pool.pool, "state" => kind).set(f64::from(value));
        }
    }
    // Counted in the database, so that it holds every instance's sessions; a failed count
    // leaves the last value rather than failing the scrape.
    match state.registry.count_uploads().await {
        Ok(sessions) => metrics::gauge!("berth_upload_sessions").set(sessions as f64),
        Err(e) => tracing::warn!(error = %e, "counting upload sessions for /metrics failed"),
    }
    let mut response = state.observe.prometheus.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// The process is up and serving.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Ready for traffic: not draining, and the metadata and blob stores answer.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.observe.draining.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    match state.registry.check_stores().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut response = Response::new(Body::from(format!("not ready: {e}\n")));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}
