//! `berth bench`, run as the real binary against in-process registries: several workloads at
//! once with their own report entries, shed answers told apart from errors, the baseline
//! comparison's exit status, and argument errors. Timings are never asserted.

use std::path::Path;
use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::process::berth_command;
use crate::support::{ADMIN, TestRegistry, anonymous_client};

/// Runs `berth bench --url URL ARGS` (credentials from the environment) off the runtime's
/// threads, so the in-process registry keeps serving.
async fn bench(url: &str, args: &[&str]) -> Output {
    let mut command = berth_command();
    command.args(["bench", "--no-progress", "--url", url]).args(args);
    command.env("BERTH_BENCH_USER", ADMIN.0).env("BERTH_BENCH_PASSWORD", ADMIN.1);
    tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("berth bench runs")
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn succeeded(output: &Output) {
    assert!(output.status.success(), "berth bench failed ({}): {}", output.status, text(output));
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report is written")).expect("the report is JSON")
}

fn workload<'r>(report: &'r Value, name: &str) -> &'r Value {
    let workloads = report["workloads"].as_array().expect("workloads");
    workloads.iter().find(|w| w["name"] == name).unwrap_or_else(|| panic!("no workload {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_pushes_and_an_app_registry_storm_run_together_and_report_each() {
    let registry = TestRegistry::start().await;
    let report_path = registry.dir.path().join("report.json");
    let report_arg = report_path.display().to_string();
    let seed = ["--seed-images", "3", "--layers", "2", "--layer-size", "4KiB", "--seed-packages", "5"];
    let workloads = ["--workload", "pull:2", "--workload", "push:1", "--workload", "appr-storm:2@50"];
    let output = bench(
        &registry.base,
        &[&workloads[..], &seed, &["--duration", "2s", "--metrics", "--report", &report_arg]].concat(),
    )
    .await;
    succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("latency (ms)") && stdout.contains("appr-storm"), "{stdout}");

    let report = read_report(&report_path);
    assert_eq!(report["tool"], "berth bench");
    assert_eq!(report["url"], registry.base);
    assert_eq!(report["groups"].as_array().map(Vec::len), Some(3), "{report}");
    for name in ["pull", "push", "appr-storm"] {
        let w = workload(&report, name);
        let requests = w["requests"].as_u64().expect("requests");
        assert!(requests > 0, "{name}: {w}");
        assert_eq!(w["errors"], 0, "{name}: {w}");
        assert_eq!(w["shed"], 0, "{name}: {w}");
        assert_eq!(w["successes"], requests, "{name}: {w}");
        assert_eq!(w["error_breakdown"], json!({}), "{name}: {w}");
        assert!(w["operations"]["completed"].as_u64().is_some_and(|n| n > 0), "{name}: {w}");
        let success = &w["latency_ms"]["success"];
        assert_eq!(success["count"], requests, "{name}: {w}");
        for p in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(success[p].as_f64().is_some_and(|ms| ms >= 0.0), "{name} {p}: {w}");
        }
        assert!(w["latency_ms"]["shed"].is_null(), "{name}: {w}");
    }
    let steps = |name: &str| workload(&report, name)["latency_ms"]["steps"].clone();
    assert!(steps("pull")["manifest"]["count"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(steps("appr-storm")["show"]["count"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(workload(&report, "push")["bytes_sent"].as_u64().is_some_and(|n| n > 0));

    // The seeded images are public; the pushed ones are really there.
    let seeded = anonymous_client()
        .get(format!("{}/v2/bench/bench-image-0/manifests/latest", registry.base))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("request");
    assert_eq!(seeded.status(), StatusCode::OK);
    let tags: Value = registry.send(Method::GET, "/v2/bench/bench-push-0/tags/list").await.json().await.expect("json");
    let tags = tags["tags"].as_array().expect("tags");
    assert!(!tags.is_empty() && tags.iter().all(|t| t.as_str().is_some_and(|t| t.starts_with("run-"))), "{tags:?}");

    // The server's counters grew by what the run sent.
    let delta = report["metrics"]["delta"].as_object().expect("a metrics delta");
    let grew = |prefix: &str| delta.iter().any(|(series, n)| series.starts_with(prefix) && n.as_f64() > Some(0.0));
    assert!(grew("berth_http_requests_total{class=\"pull\""), "{delta:?}");
    assert!(grew("berth_http_requests_total{class=\"appr-read\""), "{delta:?}");
    assert!(grew("berth_http_requests_total{class=\"push\""), "{delta:?}");

    // Seeding again over the same seed works.
    let again = bench(
        &registry.base,
        &[&seed[..], &["--workload", "pull:1", "--workload", "appr-storm:1", "--duration", "1s"]].concat(),
    )
    .await;
    succeeded(&again);
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_app_registry_requests_are_reported_as_shed_not_as_errors() {
    // No App Registry read gets a slot: every one is refused with 429 at once.
    let registry = TestRegistry::start_with(|c| {
        c.limits.appr_read.concurrency = Some(0);
        c.limits.appr_read.queue = Some(0);
    })
    .await;
    let report_path = registry.dir.path().join("report.json");
    let args = [
        "--workload",
        "appr-storm:2@100",
        "--workload",
        "pull:1",
        "--seed-images",
        "1",
        "--layers",
        "1",
        "--layer-size",
        "1KiB",
        "--seed-packages",
        "2",
        "--duration",
        "1s",
        "--report",
        &report_path.display().to_string(),
    ];
    succeeded(&bench(&registry.base, &args).await);
    let report = read_report(&report_path);
    let storm = workload(&report, "appr-storm");
    let requests = storm["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{storm}");
    assert_eq!(storm["shed"], requests, "{storm}");
    assert_eq!((&storm["errors"], &storm["successes"]), (&json!(0), &json!(0)), "{storm}");
    assert_eq!(storm["latency_ms"]["shed"]["count"], requests, "{storm}");
    assert!(storm["latency_ms"]["shed"]["p99"].as_f64().is_some(), "{storm}");
    assert!(storm["latency_ms"]["success"].is_null(), "{storm}");
    assert_eq!(storm["operations"]["completed"], 0, "{storm}");
    assert!(storm["operations"]["shed"].as_u64().is_some_and(|n| n > 0), "{storm}");
    let pull = workload(&report, "pull");
    assert!(pull["successes"].as_u64().is_some_and(|n| n > 0), "{pull}");
    assert_eq!((&pull["errors"], &pull["shed"]), (&json!(0), &json!(0)), "{pull}");
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_against_the_baseline_exits_3_and_names_the_workload() {
    let registry = TestRegistry::start().await;
    let dir = registry.dir.path();
    let impossible = dir.join("impossible.json");
    let baseline = json!({ "workloads": [{
        "name": "pull",
        "requests": 1000,
        "errors": 0,
        "successes_per_sec": 1e12,
        "latency_ms": { "success": { "p99": 0.000001 } },
    }]});
    std::fs::write(&impossible, baseline.to_string()).expect("write the baseline");
    let first = dir.join("first.json");
    let run =
        ["--workload", "pull:1", "--seed-images", "1", "--layers", "1", "--layer-size", "1KiB", "--duration", "1s"];
    let output = bench(
        &registry.base,
        &[&run[..], &["--baseline", &impossible.display().to_string(), "--report", &first.display().to_string()]]
            .concat(),
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("pull: p99") && stdout.contains("REGRESSION"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("regressed") && stderr.contains("pull: success p99"), "{stderr}");
    assert!(stderr.contains("throughput"), "{stderr}");
    // The report is written all the same.
    assert!(read_report(&first)["workloads"][0]["requests"].as_u64().is_some_and(|n| n > 0));

    // An earlier report of the same run as the baseline, with a threshold no run can cross.
    let first = first.display().to_string();
    let args = [&run[..], &["--no-seed", "--baseline", &first, "--threshold", "1000000%"]].concat();
    let output = bench(&registry.base, &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("pull: p99"), "{}", text(&output));
    registry.stop().await;
}

#[tokio::test]
async fn bad_arguments_are_refused_before_any_request() {
    // Nothing listens there: the arguments are refused before the registry is contacted.
    let url = "http://127.0.0.1:9";
    for (args, expected) in [
        (&["--workload", "storm"][..], "unknown workload \"storm\""),
        (&["--workload", "pull=x,push=1"], "the weight \"x\" of pull is not a whole number"),
        (&["--workload", "pull:0"], "concurrency \"0\""),
        (&["--mix", "pull=70,push"], "\"push\" in \"pull=70,push\" is not KIND=WEIGHT"),
        (&["--duration", "3 fortnights"], "--duration"),
        (&["--threshold", "much"], "--threshold"),
    ] {
        let output = bench(url, args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    }
}
