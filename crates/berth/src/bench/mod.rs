//! `berth bench`: a load generator against any registry URL, Berth or not. Several workloads
//! run at once, each with its own workers and optionally its own open-loop rate; every HTTP
//! request is one sample, counted as a success (2xx), shed (429) or an error, with latencies
//! in HDR histograms. A seed phase creates what the workloads read; the results are printed,
//! written as JSON, and optionally compared with an earlier report.

mod client;
mod metrics_delta;
mod progress;
mod report;
mod seed;
mod spec;
mod stats;
mod workload;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::Args;
use reqwest::{Method, StatusCode};

use client::Target;
use seed::SeedPlan;
use spec::{Kind, WorkloadSpec};
use workload::{Group, Shared, Window};

/// Exit status of a run that regressed against `--baseline`.
const EXIT_REGRESSION: u8 = 3;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The registry to load, e.g. http://127.0.0.1:5000 (plain HTTP).
    #[arg(long)]
    url: String,
    /// Account for the seed phase, pushes and --auth (Docker token flow on /v2, Basic on /cnr
    /// and /api).
    #[arg(long, env = "BERTH_BENCH_USER")]
    user: Option<String>,
    /// The account's password (or a robot's token).
    #[arg(long, env = "BERTH_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A workload, repeatable; all run at once: KINDS[:CONCURRENCY][@RATE] with KINDS one of
    /// pull, push, appr-storm, mixed (pull=80,push=5,appr-storm=15) or weights like
    /// pull=70,push=30; RATE is operations started per second (open loop), without it each
    /// worker starts its next operation when the last one ends (closed loop).
    #[arg(long = "workload", value_name = "SPEC")]
    workloads: Vec<String>,
    /// A mix by weight run as one more workload with --concurrency and --rate, e.g.
    /// pull=70,push=10,appr-storm=20.
    #[arg(long, value_name = "WEIGHTS")]
    mix: Option<String>,
    /// Workers of a workload that does not give its own.
    #[arg(long, default_value = "16")]
    concurrency: String,
    /// Operations per second of a workload that does not give its own rate.
    #[arg(long)]
    rate: Option<String>,
    /// How long to measure (e.g. 30s, 2m).
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Load before measuring starts, not counted.
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Images to seed (NAMESPACE/bench-image-N:latest) and pull.
    #[arg(long, default_value_t = 20)]
    seed_images: usize,
    /// Layers per seeded or pushed image.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Bytes per layer (e.g. 64KiB, 1MiB).
    #[arg(long, default_value = "64KiB")]
    layer_size: String,
    /// App Registry packages to seed (NAMESPACE/bench-pkg-N) for appr-storm.
    #[arg(long, default_value_t = 200)]
    seed_packages: usize,
    /// Do not seed: the images and packages are there from an earlier run.
    #[arg(long)]
    no_seed: bool,
    /// Namespace of everything the bench creates.
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Authenticate pulls (bearer token per repository, cached) and App Registry reads (Basic);
    /// they are anonymous otherwise.
    #[arg(long)]
    auth: bool,
    /// Longest a request may take before it counts as an error.
    #[arg(long, default_value = "30s")]
    timeout: String,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// An earlier JSON report: exit with status 3 if a workload regressed beyond --threshold.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Allowed growth of p99 and of the error rate, and drop of throughput (e.g. 10%).
    #[arg(long, default_value = "10%")]
    threshold: String,
    /// The server's Prometheus metrics, scraped before and after to report their growth.
    #[arg(long, value_name = "URL", conflicts_with = "metrics")]
    metrics_url: Option<String>,
    /// Scrape URL/metrics (as --metrics-url).
    #[arg(long)]
    metrics: bool,
    /// No progress line (it is shown only when standard error is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

/// The arguments, checked and parsed.
struct Plan {
    url: String,
    credentials: Option<(String, String)>,
    groups: Vec<WorkloadSpec>,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    seed: SeedPlan,
    threshold: f64,
    metrics_url: Option<String>,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Plan> {
        let credentials = match (&args.user, &args.password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            (Some(_), None) => bail!("--user needs --password (or BERTH_BENCH_PASSWORD)"),
            (None, Some(_)) => bail!("--password needs --user (or BERTH_BENCH_USER)"),
        };
        let concurrency = spec::parse_concurrency(&args.concurrency).context("--concurrency")?;
        let rate = args.rate.as_deref().map(spec::parse_rate).transpose().context("--rate")?;
        let mut groups = Vec::new();
        for text in &args.workloads {
            groups.push(WorkloadSpec::parse(text, concurrency, rate).with_context(|| format!("--workload {text}"))?);
        }
        if let Some(mix) = &args.mix {
            ensure!(!mix.contains([':', '@']), "--mix {mix}: give concurrency and rate with --concurrency and --rate");
            ensure!(mix.contains('='), "--mix {mix}: weights look like pull=70,push=30");
            groups.push(WorkloadSpec::parse(mix, concurrency, rate).with_context(|| format!("--mix {mix}"))?);
        }
        if groups.is_empty() {
            groups.push(WorkloadSpec::parse("pull", concurrency, rate)?);
        }
        // Workloads of the same name are told apart in the report.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for group in &mut groups {
            let n = seen.entry(group.name.clone()).or_default();
            *n += 1;
            if *n > 1 {
                group.name = format!("{}#{n}", group.name);
            }
        }
        let needs = |kind: Kind| groups.iter().any(|g| g.includes(kind));
        let namespace = args.namespace.clone();
        ensure!(
            !namespace.is_empty()
                && namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)),
            "--namespace {namespace:?}: lowercase letters, digits, '.', '_' and '-' only"
        );
        ensure!(!needs(Kind::Pull) || args.seed_images > 0, "pull needs images: --seed-images must be at least 1");
        ensure!(
            !needs(Kind::ApprStorm) || args.seed_packages > 0,
            "appr-storm needs packages: --seed-packages must be at least 1"
        );
        ensure!(!needs(Kind::Pull) && !needs(Kind::Push) || args.layers > 0, "--layers must be at least 1");
        let seed = SeedPlan {
            namespace,
            images: if needs(Kind::Pull) { args.seed_images } else { 0 },
            layers: args.layers,
            layer_size: spec::parse_size(&args.layer_size).context("--layer-size")?,
            packages: if needs(Kind::ApprStorm) { args.seed_packages } else { 0 },
        };
        let url = args.url.trim_end_matches('/').to_owned();
        let metrics_url = match (&args.metrics_url, args.metrics) {
            (Some(url), _) => Some(url.clone()),
            (None, true) => Some(format!("{url}/metrics")),
            (None, false) => None,
        };
        let duration = spec::parse_duration(&args.duration).context("--duration")?;
        ensure!(!duration.is_zero(), "--duration must be longer than zero");
        Ok(Plan {
            url,
            credentials,
            groups,
            duration,
            warmup: spec::parse_duration(&args.warmup).context("--warmup")?,
            timeout: spec::parse_duration(&args.timeout).context("--timeout")?,
            seed,
            threshold: spec::parse_threshold(&args.threshold).context("--threshold")?,
            metrics_url,
        })
    }

    fn needs(&self, kind: Kind) -> bool {
        self.groups.iter().any(|g| g.includes(kind))
    }
}

/// Seeds, runs every workload at once, prints the table, writes the report, compares it
/// with the baseline: exit status 0, or 3 on a regression (2 is what clap uses for usage errors).
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args)?;
    let baseline = match &args.baseline {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("reading the baseline {}", path.display()))?)
        }
        None => None,
    };
    let workers: usize = plan.groups.iter().map(|g| g.concurrency).sum();
    let target = Arc::new(Target::connect(&plan.url, plan.credentials.clone(), plan.timeout, workers + 16).await?);
    if !args.no_seed {
        seed::seed(&target, &plan.seed).await?;
    } else if plan.needs(Kind::ApprStorm) {
        check_app_registry(&target).await?;
    }
    let http = target.http.clone();
    if let Some(url) = &plan.metrics_url {
        metrics_delta::scrape(&http, url).await?;
    }

    let started_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let shared = Arc::new(Shared {
        target,
        namespace: plan.seed.namespace.clone(),
        images: (0..plan.seed.images).map(|i| seed::image_name(&plan.seed.namespace, i)).collect(),
        packages: (0..plan.seed.packages).map(|i| seed::package_name(&plan.seed.namespace, i)).collect(),
        auth: args.auth,
        layers: plan.seed.layers,
        layer_size: plan.seed.layer_size,
        run_id: started_at.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(40),
        pushes: AtomicU64::new(0),
    });
    let groups =
        plan.groups.iter().map(|spec| Group::new(spec.clone()).map(Arc::new)).collect::<anyhow::Result<Vec<_>>>()?;
    let start = Instant::now();
    let window = Window { start, measure_from: start + plan.warmup, end: start + plan.warmup + plan.duration };

    let before = plan.metrics_url.clone().map(|url| {
        let http = http.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window.measure_from.into()).await;
            metrics_delta::scrape(&http, &url).await
        })
    });
    let entries: Vec<_> = groups.iter().flat_map(|g| g.entries.iter().cloned()).collect();
    let progress = (!args.no_progress && std::io::stderr().is_terminal())
        .then(|| progress::Progress::start(entries.clone(), window));
    let ran = workload::run(shared, &groups, window).await;
    if let Some(progress) = progress {
        progress.finish().await;
    }
    ran?;
    let metrics = match (before, &plan.metrics_url) {
        (Some(before), Some(url)) => {
            let before = before.await.context("the metrics scrape panicked")??;
            let after = metrics_delta::scrape(&http, url).await?;
            Some(report::MetricsReport { url: url.clone(), delta: metrics_delta::delta(&before, &after) })
        }
        _ => None,
    };

    let seconds = plan.duration.as_secs_f64();
    let report = report::Report {
        tool: "berth bench",
        version: env!("CARGO_PKG_VERSION"),
        url: plan.url.clone(),
        started_at: report::rfc3339(started_at),
        duration_secs: seconds,
        warmup_secs: plan.warmup.as_secs_f64(),
        config: report::RunConfig {
            namespace: plan.seed.namespace.clone(),
            seed: (!args.no_seed).then_some(report::SeedConfig {
                images: plan.seed.images,
                layers: plan.seed.layers,
                layer_size: plan.seed.layer_size,
                packages: plan.seed.packages,
            }),
            auth: args.auth,
            timeout_secs: plan.timeout.as_secs_f64(),
        },
        groups: groups.iter().map(|g| report::group_report(g, &window)).collect(),
        workloads: groups
            .iter()
            .flat_map(|g| g.entries.iter().map(|e| report::workload_report(g, e, seconds)))
            .collect(),
        metrics,
    };
    print!("{}", report::table(&report));
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).context("rendering the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing the report {}", path.display()))?;
    }
    if let (Some(baseline), Some(path)) = (baseline, &args.baseline) {
        let comparison = report::compare(&report, &baseline, plan.threshold)
            .with_context(|| format!("comparing with {}", path.display()))?;
        print!("\n{}", comparison.text);
        if !comparison.regressions.is_empty() {
            eprintln!("regressed against {}: {}", path.display(), comparison.regressions.join("; "));
            return Ok(ExitCode::from(EXIT_REGRESSION));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a seed, appr-storm still needs an App Registry API (a 429 says it has one).
async fn check_app_registry(target: &Target) -> anyhow::Result<()> {
    let answer = target.request(Method::GET, "/cnr/version").send().await.context("probing /cnr/version")?;
    match answer.status() {
        status if status.is_success() || status == StatusCode::TOO_MANY_REQUESTS => Ok(()),
        status => {
            bail!("{} has no App Registry API (/cnr/version answered {status}): appr-storm cannot run", target.base)
        }
    }
}
