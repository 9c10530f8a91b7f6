//! `/metrics`, `/healthz`, `/readyz`, request ids, and traffic classes that shed on their own.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};

use crate::support::{TestRegistry, anonymous_client, tool_available};

async fn metrics_text(registry: &TestRegistry) -> String {
    let r = anonymous_client().get(format!("{}/metrics", registry.base)).send().await.expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/plain")));
    r.text().await.expect("text")
}

/// The value of the first sample line starting with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_class_route_and_status_and_pass_promtool() {
    let registry = TestRegistry::start().await;
    registry.push_image("acme/app", "v1", &[b"layer"]).await;
    for _ in 0..2 {
        assert_eq!(registry.send(Method::GET, "/v2/acme/app/manifests/v1").await.status(), StatusCode::OK);
    }
    assert_eq!(registry.send(Method::GET, "/v2/acme/app/manifests/missing").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(registry.send(Method::GET, "/cnr/api/v1/packages").await.status(), StatusCode::OK);
    assert_eq!(registry.send(Method::GET, "/api/v1/user").await.status(), StatusCode::OK);
    // One upload session left open.
    let started = registry.send(Method::POST, "/v2/acme/app/blobs/uploads/").await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);

    let text = metrics_text(&registry).await;
    assert_eq!(sample(&text, "berth_upload_sessions "), Some(1.0), "{text}");
    // SQLite has one writer; PostgreSQL the configured number (4 by default).
    let writers = if registry.is_on_postgres() { 4.0 } else { 1.0 };
    assert_eq!(sample(&text, r#"berth_db_pool_connections{pool="writer",state="max"}"#), Some(writers), "{text}");
    assert!(sample(&text, r#"berth_db_pool_connections{pool="reader",state="max"}"#).is_some_and(|n| n >= 1.0));
    for expected in [
        r#"berth_db_query_duration_seconds_count{pool="writer"}"#,
        r#"berth_db_query_duration_seconds_count{pool="reader"}"#,
        r#"berth_db_acquire_wait_seconds_count{pool="reader"}"#,
        r#"berth_db_connections_in_use{class="pull"}"#,
        r#"berth_requests_queued{class="push"}"#,
    ] {
        assert!(sample(&text, expected).is_some_and(|n| n >= 0.0), "{expected} missing from:\n{text}");
    }
    for expected in [
        r#"berth_http_requests_total{class="pull",route="GetManifest",status="200"}"#,
        r#"berth_http_requests_total{class="pull",route="GetManifest",status="404"}"#,
        r#"berth_http_requests_total{class="push",route="PutManifest",status="201"}"#,
        r#"berth_http_requests_total{class="appr-read",route="ListPackages",status="200"}"#,
        r#"berth_http_requests_total{class="api",route="/api/v1/user",status="200"}"#,
        r#"berth_http_request_duration_seconds_bucket{class="pull",route="GetManifest",le="0.5"}"#,
        r#"berth_requests_in_flight{class="appr-read"}"#,
        r#"berth_cache_requests_total{cache="manifests",result="hit"}"#,
        r#"berth_cache_requests_total{cache="appr-listings",result="miss"}"#,
        r#"berth_background_runs_total{job="upload-sweep",outcome="ok"}"#,
        r#"berth_blob_store_operation_duration_seconds_count{op="append"}"#,
        r#"berth_blob_store_bytes_total{direction="in"}"#,
    ] {
        assert!(sample(&text, expected).is_some(), "{expected} missing from:\n{text}");
    }
    // Labels never carry a repository.
    assert!(!text.contains("acme/app"), "{text}");

    if tool_available("promtool") {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs");
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
        let output = child.wait_with_output().expect("promtool finishes");
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    registry.stop().await;
}

#[tokio::test]
async fn a_saturated_class_sheds_while_the_others_get_through() {
    // No App Registry read, API or token request may run at all: those classes are
    // saturated from the start. App Registry reads have no queue and are refused at once;
    // the others wait in theirs for the timeout first.
    let registry = TestRegistry::start_with(|c| {
        c.limits.appr_read.concurrency = Some(0);
        c.limits.appr_read.queue = Some(0);
        for class in [&mut c.limits.api, &mut c.limits.auth] {
            class.concurrency = Some(0);
            class.queue = Some(4);
            class.queue_timeout_ms = Some(5);
        }
    })
    .await;
    registry.push_image("acme/app", "v1", &[b"layer"]).await;
    for _ in 0..3 {
        let r = registry.send(Method::GET, "/cnr/api/v1/packages").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key("retry-after"));
        let body: serde_json::Value = r.json().await.expect("App Registry error JSON");
        assert_eq!(body["error"]["code"], "too-many-requests");
    }
    // Each protocol sheds in its own format.
    let api = registry.send(Method::GET, "/api/v1/user").await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers().contains_key("retry-after"));
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    let token = registry.send(Method::GET, "/v2/auth?service=berth").await;
    crate::support::expect_error(token, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    assert_eq!(registry.send(Method::GET, "/v2/acme/app/manifests/v1").await.status(), StatusCode::OK);

    let text = metrics_text(&registry).await;
    let busy = r#"berth_requests_shed_total{class="appr-read",reason="busy"}"#;
    assert!(sample(&text, busy).is_some_and(|n| n >= 3.0), "{text}");
    for class in ["api", "auth"] {
        let shed = format!("berth_requests_shed_total{{class=\"{class}\",reason=\"queue-timeout\"}}");
        assert!(sample(&text, &shed).is_some_and(|n| n >= 1.0), "{shed}: {text}");
        let waited = format!("berth_queue_wait_seconds_count{{class=\"{class}\"}}");
        assert!(sample(&text, &waited).is_some_and(|n| n >= 1.0), "{waited}: {text}");
    }
    assert!(!text.contains(r#"berth_requests_shed_total{class="pull""#), "{text}");
    let shed = r#"berth_http_requests_total{class="appr-read",route="ListPackages",status="429"}"#;
    assert!(sample(&text, shed).is_some_and(|n| n >= 3.0), "{text}");
    registry.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_the_probes_answer() {
    let registry = TestRegistry::start().await;
    let client = anonymous_client();
    let url = format!("{}/healthz", registry.base);
    let generated = client.get(&url).send().await.expect("healthz");
    assert_eq!(generated.status(), StatusCode::OK);
    let id = generated.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(id.len() >= 16, "{id}");
    let other = client.get(&url).send().await.expect("healthz");
    assert_ne!(other.headers()["x-request-id"].to_str().ok(), Some(id.as_str()), "ids differ per request");
    // A sane id from the client is kept (to follow a request through proxies); others are replaced.
    let chosen = client.get(&url).header("x-request-id", "trace-42.a").send().await.expect("healthz");
    assert_eq!(chosen.headers()["x-request-id"], "trace-42.a");
    let hostile = client.get(&url).header("x-request-id", "x".repeat(200)).send().await.expect("healthz");
    assert_ne!(hostile.headers()["x-request-id"].to_str().ok(), Some("x".repeat(200).as_str()));
    // Errors carry one too.
    let missing = client.get(format!("{}/v2/acme/none/tags/list", registry.base)).send().await.expect("get");
    assert!(missing.headers().contains_key("x-request-id"));

    let ready = client.get(format!("{}/readyz", registry.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    registry.stop().await;
}

#[tokio::test]
async fn clients_and_classes_over_their_rate_are_refused_in_each_protocol_and_others_are_not() {
    // Ten minutes per token: nothing refills during the test.
    let registry = TestRegistry::start_with(|c| {
        c.limits.pull.per_address_per_sec = Some(1.0 / 600.0);
        c.limits.pull.per_address_burst = Some(3);
        c.limits.api.per_principal_per_sec = Some(1.0 / 600.0);
        c.limits.api.per_principal_burst = Some(2);
        c.limits.appr_read.rate_per_sec = Some(1.0 / 600.0);
        c.limits.appr_read.rate_burst = Some(2);
    })
    .await;
    let r = registry
        .req(Method::POST, "/api/v1/users")
        .json(&serde_json::json!({"name": "bob", "password": "bob-password"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    // The admin has used one of its two API requests; the second passes, the third is refused.
    assert_eq!(registry.send(Method::GET, "/api/v1/user").await.status(), StatusCode::OK);
    let refused = registry.send(Method::GET, "/api/v1/user").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let retry_after: u64 = crate::support::header(&refused, "retry-after").parse().expect("seconds");
    assert!(retry_after >= 60, "{retry_after}");
    // Another account has its own budget.
    let bob = crate::support::client_as("bob", "bob-password");
    let r = bob.get(format!("{}/api/v1/user", registry.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);

    // Pulls from 127.0.0.1: three, then the OCI envelope's TOOMANYREQUESTS. Pushes have no
    // rate limit and still pass.
    for _ in 0..3 {
        assert_eq!(registry.send(Method::GET, "/v2/").await.status(), StatusCode::OK);
    }
    crate::support::expect_error(
        registry.send(Method::GET, "/v2/").await,
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
    )
    .await;
    let upload = registry.send(Method::POST, "/v2/acme/app/blobs/uploads/").await;
    assert_eq!(upload.status(), StatusCode::ACCEPTED);

    // The whole App Registry read class: two requests, whoever sends them.
    assert_eq!(registry.send(Method::GET, "/cnr/api/v1/packages").await.status(), StatusCode::OK);
    let r = anonymous_client().get(format!("{}/cnr/api/v1/packages", registry.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = anonymous_client().get(format!("{}/cnr/api/v1/packages", registry.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = r.json().await.expect("App Registry error JSON");
    assert_eq!(body["error"]["code"], "too-many-requests");

    let text = metrics_text(&registry).await;
    let class_rate = r#"berth_requests_shed_total{class="appr-read",reason="class-rate"}"#;
    assert!(sample(&text, class_rate).is_some_and(|n| n >= 1.0), "{text}");
    let by_address = r#"berth_requests_shed_total{class="pull",reason="client-rate"}"#;
    assert!(sample(&text, by_address).is_some_and(|n| n >= 1.0), "{text}");
    let by_principal = r#"berth_requests_shed_total{class="api",reason="principal-rate"}"#;
    assert!(sample(&text, by_principal).is_some_and(|n| n >= 1.0), "{text}");
    registry.stop().await;
}

#[tokio::test]
async fn a_response_sent_before_its_request_body_was_read_closes_the_connection() {
    let registry = TestRegistry::start_with(|c| {
        c.limits.push.concurrency = Some(0);
        c.limits.push.queue = Some(0);
    })
    .await;
    // A shed upload's body is never read: the client must not reuse the connection.
    let body = vec![7u8; 256 * 1024];
    let monolithic = format!("/v2/acme/app/blobs/uploads/?digest={}", crate::support::sha256(&body));
    let shed = registry.req(Method::POST, &monolithic).body(body);
    let shed = shed.send().await.expect("send");
    assert_eq!(shed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(crate::support::header(&shed, "connection"), "close");
    // Requests without a body, and bodies read to the end, keep the connection.
    let pulled = registry.send(Method::GET, "/v2/").await;
    assert_eq!(pulled.status(), StatusCode::OK);
    assert!(!pulled.headers().contains_key("connection"));
    let api = registry.req(Method::POST, "/api/v1/organizations").json(&serde_json::json!({"name": "acme"}));
    let api = api.send().await.expect("send");
    assert_eq!(api.status(), StatusCode::CREATED);
    assert!(!api.headers().contains_key("connection"));
    registry.stop().await;
}

#[tokio::test]
async fn a_class_without_database_connections_gets_503_while_pulls_use_theirs() {
    let registry = TestRegistry::start_with(|c| {
        c.database.statement_timeout_ms = 100;
        c.limits.appr_read.db_connections = Some(0);
    })
    .await;
    registry.push_image("acme/app", "v1", &[b"layer"]).await;
    // The listing is not cached yet, so it needs the database, and its class has no share.
    let refused = anonymous_client().get(format!("{}/cnr/api/v1/packages", registry.base)).send().await.expect("send");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.expect("App Registry error JSON");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(registry.send(Method::GET, "/v2/acme/app/manifests/v1").await.status(), StatusCode::OK);
    let text = metrics_text(&registry).await;
    let timeouts = r#"berth_db_share_timeouts_total{class="appr-read"}"#;
    assert!(sample(&text, timeouts).is_some_and(|n| n >= 1.0), "{text}");
    registry.stop().await;
}
