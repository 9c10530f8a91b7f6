//! The workers: every workload is a group of `concurrency` tasks, closed loop (each starts its
//! next operation when the last ends) or open loop (operations are due on a fixed schedule
//! of `rate` per second and a late start counts against the latency, so a slow server
//! cannot hide behind the load generator waiting for it).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use tokio::task::JoinSet;

use super::client::{Call, Stop, Target};
use super::seed::{PACKAGE_MEDIA_TYPE, Rng, random_image};
use super::spec::{Kind, WorkloadSpec};
use super::stats::{Stats, histogram, micros};

/// Repositories the `push` workload spreads its images over.
const PUSH_REPOSITORIES: usize = 8;

/// How late after the end an open-loop worker may still start an operation due before it.
const TIMER_GRACE: Duration = Duration::from_millis(10);

/// What every worker reads.
pub struct Shared {
    pub target: Arc<Target>,
    pub namespace: String,
    pub images: Vec<String>,
    pub packages: Vec<String>,
    /// Pulls and App Registry reads authenticate (they are anonymous otherwise).
    pub auth: bool,
    pub layers: usize,
    pub layer_size: usize,
    /// Makes this run's push tags unique.
    pub run_id: u64,
    pub pushes: AtomicU64,
}

/// One kind of operation within a group, reported on its own.
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub weight: u32,
    pub stats: Stats,
}

pub struct Group {
    pub spec: WorkloadSpec,
    pub entries: Vec<Arc<Entry>>,
    /// The next open-loop slot to claim.
    next_slot: AtomicU64,
    /// Operations started in the measured window.
    pub started: AtomicU64,
    /// How late open-loop operations started, in microseconds: high when every worker was
    /// busy (a slow server, too few workers, or a saturated load generator).
    start_lag: Mutex<Histogram<u64>>,
}

impl Group {
    /// Entries are named after the group, or `group/kind` when it mixes several kinds.
    pub fn new(spec: WorkloadSpec) -> anyhow::Result<Group> {
        let entries = spec
            .mix
            .iter()
            .map(|&(kind, weight)| {
                let name =
                    if spec.mix.len() == 1 { spec.name.clone() } else { format!("{}/{}", spec.name, kind.name()) };
                Ok(Arc::new(Entry { name, kind, weight, stats: Stats::new(kind.steps())? }))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Group {
            spec,
            entries,
            next_slot: AtomicU64::new(0),
            started: AtomicU64::new(0),
            start_lag: Mutex::new(histogram()?),
        })
    }

    fn pick(&self, rng: &mut Rng) -> &Arc<Entry> {
        let total: u32 = self.entries.iter().map(|e| e.weight).sum();
        let mut ticket = rng.below(total as usize) as u32;
        for entry in &self.entries {
            if ticket < entry.weight {
                return entry;
            }
            ticket -= entry.weight;
        }
        &self.entries[0]
    }

    pub fn start_lag(&self) -> Histogram<u64> {
        self.start_lag.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Open-loop operations due in the measured window that no worker could start in time.
    pub fn missed(&self, window: &Window) -> Option<u64> {
        let rate = self.spec.rate?;
        let due = |d: Duration| (d.as_secs_f64() * rate).ceil() as u64;
        let scheduled = due(window.end - window.start).saturating_sub(due(window.measure_from - window.start));
        Some(scheduled.saturating_sub(self.started.load(Relaxed)))
    }
}

/// When the run starts, when measuring starts (after the warmup) and when it ends.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

/// Runs every group's workers until the window ends and each has finished its operation.
///
/// Each group runs on a runtime (one thread) and an HTTP client of its own, like a separate
/// client program: a heavy storm then cannot hold up a light workload's workers inside the
/// load generator and pass that delay off as the server's latency.
pub async fn run(shared: Arc<Shared>, groups: &[Arc<Group>], window: Window) -> anyhow::Result<()> {
    let mut runs = JoinSet::new();
    let mut first_worker = 0;
    for group in groups {
        let target = Arc::new(shared.target.with_own_client(group.spec.concurrency + 4)?);
        let (shared, group, first) = (Arc::clone(&shared), Arc::clone(group), first_worker);
        first_worker += group.spec.concurrency as u64;
        runs.spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a workload's runtime")?;
            runtime.block_on(run_group(shared, target, group, window, first))
        });
    }
    while let Some(done) = runs.join_next().await {
        done.context("a bench workload panicked")??;
    }
    Ok(())
}

async fn run_group(
    shared: Arc<Shared>,
    target: Arc<Target>,
    group: Arc<Group>,
    window: Window,
    first_worker: u64,
) -> anyhow::Result<()> {
    let mut workers = JoinSet::new();
    for id in 0..group.spec.concurrency {
        // Each worker draws from its own stream.
        let seed = Rng::new(shared.run_id.wrapping_add(first_worker + id as u64)).next_u64();
        let worker = Worker { shared: Arc::clone(&shared), target: Arc::clone(&target), rng: Rng::new(seed), id };
        workers.spawn(worker.work(Arc::clone(&group), window));
    }
    while let Some(done) = workers.join_next().await {
        done.context("a bench worker panicked")?;
    }
    Ok(())
}

struct Worker {
    shared: Arc<Shared>,
    /// The group's own client.
    target: Arc<Target>,
    rng: Rng,
    id: usize,
}

impl Worker {
    async fn work(mut self, group: Arc<Group>, window: Window) {
        loop {
            let scheduled = match group.spec.rate {
                Some(rate) => {
                    let slot = group.next_slot.fetch_add(1, Relaxed);
                    let due = window.start + Duration::from_secs_f64(slot as f64 / rate);
                    if due >= window.end {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    due
                }
                None => Instant::now(),
            };
            // A worker that fell behind stops at the end (an open-loop one a timer tick
            // later, so that a slot due just before the end is not lost to the tick); what
            // was due and not started is reported as missed.
            let grace = if group.spec.rate.is_some() { TIMER_GRACE } else { Duration::ZERO };
            if Instant::now() >= window.end + grace {
                break;
            }
            let entry = Arc::clone(group.pick(&mut self.rng));
            let measured = scheduled >= window.measure_from;
            if measured {
                group.started.fetch_add(1, Relaxed);
                if group.spec.rate.is_some() {
                    let lag = micros(scheduled.elapsed());
                    group.start_lag.lock().unwrap_or_else(PoisonError::into_inner).saturating_record(lag);
                }
            }
            let mut call = Call::new(measured.then_some(&entry.stats), scheduled);
            let result = match entry.kind {
                Kind::Pull => self.pull(&mut call).await,
                Kind::Push => self.push(&mut call).await,
                Kind::ApprStorm => self.appr_storm(&mut call).await,
            };
            if measured {
                let counters = &entry.stats.counters;
                match result {
                    Ok(()) => entry.stats.operation_done(scheduled.elapsed()),
                    Err(Stop::Shed) => {
                        counters.ops_shed.fetch_add(1, Relaxed);
                    }
                    Err(Stop::Failed { .. }) => {
                        counters.ops_failed.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    }

    async fn pull(&mut self, call: &mut Call<'_>) -> Result<(), Stop> {
        let shared = &self.shared;
        let repo = &shared.images[self.rng.below(shared.images.len())];
        self.target.pull_image(call, repo, "latest", shared.auth).await
    }

    /// A fresh image (new random layers, so every byte is really uploaded) under a new tag.
    async fn push(&mut self, call: &mut Call<'_>) -> Result<(), Stop> {
        let shared = &self.shared;
        let repo = format!("{}/bench-push-{}", shared.namespace, self.id % PUSH_REPOSITORIES);
        let tag = format!("run-{:016x}-{}", shared.run_id, shared.pushes.fetch_add(1, Relaxed));
        let image = random_image(&mut self.rng, shared.layers, shared.layer_size, &tag);
        self.target.push_image(call, &repo, &tag, &image, false).await
    }

    /// What OperatorHub does: list the namespace, show a package's default release, fetch
    /// the blob the answer names.
    async fn appr_storm(&mut self, call: &mut Call<'_>) -> Result<(), Stop> {
        let shared = &self.shared;
        let target = &self.target;
        let auth = if shared.auth { target.basic() } else { None };
        let get = |path: String| {
            let request = target.request(Method::GET, &path);
            match &auth {
                Some(value) => request.header(AUTHORIZATION, value),
                None => request,
            }
        };
        call.send("list", get(format!("/cnr/api/v1/packages?namespace={}", shared.namespace)), 0, false).await?;
        let package = &shared.packages[self.rng.below(shared.packages.len())];
        let path = format!("/cnr/api/v1/packages/{package}");
        let shown = call.send("show", get(format!("{path}/default/{PACKAGE_MEDIA_TYPE}")), 0, true).await?;
        let shown: serde_json::Value =
            serde_json::from_slice(&shown.body).map_err(|_| call.broken("show", "not JSON"))?;
        let Some(digest) = shown["content"]["digest"].as_str() else {
            return Err(call.broken("show", "no content.digest"));
        };
        call.send("blob", get(format!("{path}/blobs/sha256/{digest}")), 0, false).await?;
        Ok(())
    }
}
