//! The results: the JSON report, the table printed at the end, and the comparison with an
//! earlier report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::workload::{Entry, Group, Window};

#[derive(Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub url: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub config: RunConfig,
    pub groups: Vec<GroupReport>,
    pub workloads: Vec<WorkloadReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsReport>,
}

#[derive(Serialize)]
pub struct RunConfig {
    pub namespace: String,
    pub seed: Option<SeedConfig>,
    /// Whether pulls and App Registry reads authenticated.
    pub auth: bool,
    pub timeout_secs: f64,
}

#[derive(Serialize)]
pub struct SeedConfig {
    pub images: usize,
    pub layers: usize,
    pub layer_size: usize,
    pub packages: usize,
}

/// A group of workers as configured, and how well it kept to its schedule.
#[derive(Serialize)]
pub struct GroupReport {
    pub name: String,
    pub mix: BTreeMap<&'static str, u32>,
    pub concurrency: usize,
    /// Operations per second (open loop); absent for a closed loop.
    pub rate: Option<f64>,
    pub operations_started: u64,
    /// Open-loop operations due in the window that no worker was free to start.
    pub missed_starts: Option<u64>,
    /// How late open-loop operations started (their latencies include it).
    pub start_lag_ms: Option<Percentiles>,
}

#[derive(Serialize)]
pub struct WorkloadReport {
    pub name: String,
    pub kind: &'static str,
    pub group: String,
    /// HTTP requests: every one is a success (2xx), shed (429) or an error.
    pub requests: u64,
    pub successes: u64,
    pub shed: u64,
    pub errors: u64,
    /// By `step: cause` (`blob: HTTP 404`, `manifest: timeout`, ...), including operations
    /// whose answers could not be used.
    pub error_breakdown: BTreeMap<String, u64>,
    pub operations: Operations,
    pub requests_per_sec: f64,
    pub successes_per_sec: f64,
    pub operations_per_sec: f64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub latency_ms: Latencies,
}

#[derive(Serialize)]
pub struct Operations {
    pub completed: u64,
    pub shed: u64,
    pub failed: u64,
}

#[derive(Serialize)]
pub struct Latencies {
    /// Successful requests.
    pub success: Option<Percentiles>,
    /// 429 answers: how fast the server refused.
    pub shed: Option<Percentiles>,
    /// Whole successful operations, from their scheduled start.
    pub operation: Option<Percentiles>,
    /// Successful requests by step.
    pub steps: BTreeMap<&'static str, Percentiles>,
}

#[derive(Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

#[derive(Serialize)]
pub struct MetricsReport {
    pub url: String,
    /// Growth of each counter series (and histogram `_count`/`_sum`) over the measured window.
    pub delta: BTreeMap<String, f64>,
}

pub fn group_report(group: &Group, window: &Window) -> GroupReport {
    GroupReport {
        name: group.spec.name.clone(),
        mix: group.spec.mix.iter().map(|(kind, weight)| (kind.name(), *weight)).collect(),
        concurrency: group.spec.concurrency,
        rate: group.spec.rate,
        operations_started: group.started.load(Relaxed),
        missed_starts: group.missed(window),
        start_lag_ms: group.spec.rate.and_then(|_| Percentiles::of(&group.start_lag())),
    }
}

pub fn workload_report(group: &Group, entry: &Entry, seconds: f64) -> WorkloadReport {
    let c = &entry.stats.counters;
    let h = entry.stats.snapshot();
    let per_sec = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let requests = c.requests.load(Relaxed);
    let successes = c.successes.load(Relaxed);
    let completed = c.ops_done.load(Relaxed);
    WorkloadReport {
        name: entry.name.clone(),
        kind: entry.kind.name(),
        group: group.spec.name.clone(),
        requests,
        successes,
        shed: c.shed.load(Relaxed),
        errors: c.errors.load(Relaxed),
        error_breakdown: h.errors.clone(),
        operations: Operations { completed, shed: c.ops_shed.load(Relaxed), failed: c.ops_failed.load(Relaxed) },
        requests_per_sec: per_sec(requests),
        successes_per_sec: per_sec(successes),
        operations_per_sec: per_sec(completed),
        bytes_received: c.bytes_in.load(Relaxed),
        bytes_sent: c.bytes_out.load(Relaxed),
        latency_ms: Latencies {
            success: Percentiles::of(&h.success),
            shed: Percentiles::of(&h.shed),
            operation: Percentiles::of(&h.operation),
            steps: h.steps.iter().filter_map(|(step, h)| Some((*step, Percentiles::of(h)?))).collect(),
        },
    }
}

/// An open-loop group whose p99 start delay exceeds this is reported as behind schedule.
const LATE_MS: f64 = 5.0;

/// The table printed on standard output.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berth bench against {}: {:.1} s measured{}",
        report.url,
        report.duration_secs,
        if report.warmup_secs > 0.0 { format!(" after {:.1} s of warmup", report.warmup_secs) } else { String::new() }
    );
    let _ = writeln!(
        out,
        "\n{:<24} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>10}",
        "workload", "requests", "req/s", "ok", "shed", "errors", "ops/s", "MiB in", "MiB out"
    );
    for w in &report.workloads {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>9.1} {:>9} {:>9} {:>8} {:>8.1} {:>9.1} {:>10.1}",
            w.name,
            w.requests,
            w.requests_per_sec,
            w.successes,
            w.shed,
            w.errors,
            w.operations_per_sec,
            mib(w.bytes_received),
            mib(w.bytes_sent)
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "of", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for w in &report.workloads {
        let l = &w.latency_ms;
        let rows = [("success", &l.success), ("shed (429)", &l.shed), ("operation", &l.operation)];
        let steps = l.steps.iter().map(|(step, p)| (format!("  {step}"), Some(p)));
        let rows = rows.iter().map(|(what, p)| (what.to_string(), p.as_ref())).chain(steps);
        for (what, p) in rows {
            if let Some(p) = p {
                let _ = writeln!(
                    out,
                    "{:<24} {:<14} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    w.name, what, p.count, p.p50, p.p90, p.p99, p.p99_9, p.max
                );
            }
        }
    }
    let errors: Vec<String> = report
        .workloads
        .iter()
        .flat_map(|w| w.error_breakdown.iter().map(move |(cause, n)| format!("  {}: {cause} x{n}", w.name)))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nerrors:\n{}", errors.join("\n"));
    }
    for g in &report.groups {
        let (Some(rate), Some(missed)) = (g.rate, g.missed_starts) else { continue };
        let lag = g.start_lag_ms.as_ref().map_or(0.0, |p| p.p99);
        if missed > 0 || lag > LATE_MS {
            let _ = writeln!(
                out,
                "\n{}: behind its schedule of {rate}/s: {missed} operations never started, p99 start delay \
                 {lag:.1} ms (a slow server, too few workers or a saturated load generator)",
                g.name
            );
        }
    }
    if report.workloads.iter().any(|w| w.error_breakdown.keys().any(|k| k.ends_with("HTTP 401"))) {
        let _ = writeln!(out, "\n401s: private images or packages? seed them public, or read them with --auth");
    }
    out
}

/// What an earlier report must hold for a comparison (hand-written baselines need no more).
#[derive(Deserialize)]
struct Baseline {
    workloads: Vec<BaselineWorkload>,
}

#[derive(Deserialize)]
struct BaselineWorkload {
    name: String,
    #[serde(default)]
    requests: u64,
    #[serde(default)]
    errors: u64,
    #[serde(default)]
    successes_per_sec: f64,
    #[serde(default)]
    latency_ms: BaselineLatencies,
}

#[derive(Deserialize, Default)]
struct BaselineLatencies {
    success: Option<BaselinePercentiles>,
}

#[derive(Deserialize)]
struct BaselinePercentiles {
    p99: f64,
}

pub struct Comparison {
    pub text: String,
    /// `workload: why` for every regression.
    pub regressions: Vec<String>,
}

fn error_rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 { 0.0 } else { errors as f64 / requests as f64 }
}

/// Compares workloads by name: a regression is a success p99 more than `threshold` higher,
/// a success throughput more than `threshold` lower, or an error rate that grew by more than
/// `threshold` (any error at all when the baseline had none).
pub fn compare(report: &Report, baseline: &str, threshold: f64) -> anyhow::Result<Comparison> {
    let baseline: Baseline = serde_json::from_str(baseline).context("the baseline is not a berth bench report")?;
    let mut text = format!("compared with the baseline (threshold {:.1}%):\n", threshold * 100.0);
    let mut regressions = Vec::new();
    let change = |old: f64, new: f64| if old > 0.0 { (new - old) / old * 100.0 } else { 0.0 };
    for new in &report.workloads {
        let Some(old) = baseline.workloads.iter().find(|b| b.name == new.name) else {
            let _ = writeln!(text, "  {}: not in the baseline", new.name);
            continue;
        };
        let mut why = Vec::new();
        let mut parts = Vec::new();
        if let (Some(old_p99), Some(new_p99)) =
            (old.latency_ms.success.as_ref().map(|p| p.p99), &new.latency_ms.success)
        {
            parts.push(format!("p99 {old_p99:.2} -> {:.2} ms ({:+.1}%)", new_p99.p99, change(old_p99, new_p99.p99)));
            if new_p99.p99 > old_p99 * (1.0 + threshold) {
                why.push(format!("success p99 {:+.1}%", change(old_p99, new_p99.p99)));
            }
        }
        let (old_tp, new_tp) = (old.successes_per_sec, new.successes_per_sec);
        parts.push(format!("ok/s {old_tp:.1} -> {new_tp:.1} ({:+.1}%)", change(old_tp, new_tp)));
        if new_tp < old_tp * (1.0 - threshold) {
            why.push(format!("throughput {:+.1}%", change(old_tp, new_tp)));
        }
        let (old_er, new_er) = (error_rate(old.errors, old.requests), error_rate(new.errors, new.requests));
        parts.push(format!("errors {:.3}% -> {:.3}%", old_er * 100.0, new_er * 100.0));
        if new_er > 0.0 && new_er > old_er * (1.0 + threshold) {
            why.push(format!("error rate {:.3}% -> {:.3}%", old_er * 100.0, new_er * 100.0));
        }
        let verdict = if why.is_empty() { "ok".to_owned() } else { format!("REGRESSION ({})", why.join(", ")) };
        let _ = writeln!(text, "  {}: {}: {verdict}", new.name, parts.join(", "));
        if !why.is_empty() {
            regressions.push(format!("{}: {}", new.name, why.join(", ")));
        }
    }
    for old in &baseline.workloads {
        if !report.workloads.iter().any(|w| w.name == old.name) {
            let _ = writeln!(text, "  {}: in the baseline only", old.name);
        }
    }
    Ok(Comparison { text, regressions })
}

/// `2024-05-01T12:00:00Z` for a time since the Unix epoch.
pub fn rfc3339(since_epoch: std::time::Duration) -> String {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let (year, month, day, hour, minute, second) = berth_core::time::civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(name: &str, requests: u64, errors: u64, ok_per_sec: f64, p99: Option<f64>) -> WorkloadReport {
        let p = |p99: f64| Percentiles { count: 1, mean: p99, p50: p99, p90: p99, p99, p99_9: p99, max: p99 };
        WorkloadReport {
            name: name.into(),
            kind: "pull",
            group: name.into(),
            requests,
            successes: requests - errors,
            shed: 0,
            errors,
            error_breakdown: BTreeMap::new(),
            operations: Operations { completed: 0, shed: 0, failed: 0 },
            requests_per_sec: ok_per_sec,
            successes_per_sec: ok_per_sec,
            operations_per_sec: 0.0,
            bytes_received: 0,
            bytes_sent: 0,
            latency_ms: Latencies { success: p99.map(p), shed: None, operation: None, steps: BTreeMap::new() },
        }
    }

    fn report(workloads: Vec<WorkloadReport>) -> Report {
        Report {
            tool: "berth bench",
            version: "test",
            url: "http://x".into(),
            started_at: rfc3339(std::time::Duration::ZERO),
            duration_secs: 1.0,
            warmup_secs: 0.0,
            config: RunConfig { namespace: "bench".into(), seed: None, auth: false, timeout_secs: 1.0 },
            groups: Vec::new(),
            workloads,
            metrics: None,
        }
    }

    #[test]
    fn regressions_beyond_the_threshold() {
        let baseline = serde_json::json!({ "workloads": [
            { "name": "pull", "requests": 1000, "errors": 0, "successes_per_sec": 100.0, "latency_ms": { "success": { "p99": 10.0 } } },
            { "name": "push", "requests": 1000, "errors": 10, "successes_per_sec": 100.0 },
            { "name": "gone" },
        ]})
        .to_string();
        let fine = report(vec![workload("pull", 1000, 0, 95.0, Some(10.9)), workload("push", 1000, 10, 100.0, None)]);
        let c = compare(&fine, &baseline, 0.1).expect("compares");
        assert!(c.regressions.is_empty(), "{}", c.text);
        assert!(c.text.contains("gone: in the baseline only"), "{}", c.text);

        let slower = report(vec![workload("pull", 1000, 0, 100.0, Some(11.5)), workload("new", 1, 0, 1.0, None)]);
        let c = compare(&slower, &baseline, 0.1).expect("compares");
        assert_eq!(c.regressions.len(), 1, "{}", c.text);
        assert!(c.regressions[0].starts_with("pull: success p99"), "{:?}", c.regressions);
        assert!(c.text.contains("new: not in the baseline"));

        let worse = report(vec![workload("pull", 1000, 1, 80.0, Some(5.0)), workload("push", 1000, 12, 100.0, None)]);
        let c = compare(&worse, &baseline, 0.1).expect("compares");
        assert_eq!(c.regressions.len(), 2, "{}", c.text);
        assert!(
            c.regressions[0].contains("throughput") && c.regressions[0].contains("error rate"),
            "{:?}",
            c.regressions
        );
        assert!(c.regressions[1].starts_with("push: error rate"), "{:?}", c.regressions);

        assert!(compare(&fine, "{\"not\": 1}", 0.1).is_err());
    }

    #[test]
    fn times_and_percentiles() {
        assert_eq!(rfc3339(std::time::Duration::from_secs(1_700_000_000)), "2023-11-14T22:13:20Z");
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        assert!(Percentiles::of(&h).is_none());
        for us in 1..=1000 {
            h.saturating_record(us * 1000);
        }
        let p = Percentiles::of(&h).expect("percentiles");
        assert_eq!(p.count, 1000);
        assert!(
            (p.p50 - 500.0).abs() < 1.0 && (p.p99 - 990.0).abs() < 1.0 && (p.max - 1000.0).abs() < 1.0,
            "{}",
            p.p50
        );
    }
}
