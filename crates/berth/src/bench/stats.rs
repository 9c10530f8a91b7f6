//! What the workers measure, per workload: live counters (read by the progress line) and HDR
//! histograms of latency in microseconds, split by outcome and by step.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies above an hour are recorded as an hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// How a request ended.
pub enum Outcome<'a> {
    Success,
    /// 429: the server refused it at once.
    Shed,
    /// Anything else, with its cause for the breakdown (`HTTP 500`, `timeout`, ...).
    Error(&'a str),
}

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub successes: AtomicU64,
    pub shed: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub ops_done: AtomicU64,
    pub ops_shed: AtomicU64,
    pub ops_failed: AtomicU64,
}

#[derive(Clone)]
pub struct Histograms {
    pub success: Histogram<u64>,
    pub shed: Histogram<u64>,
    /// Whole operations that succeeded, from their scheduled start.
    pub operation: Histogram<u64>,
    /// Successful requests by step.
    pub steps: BTreeMap<&'static str, Histogram<u64>>,
    /// Failed requests and operations by `step: cause`.
    pub errors: BTreeMap<String, u64>,
}

pub struct Stats {
    pub counters: Counters,
    histograms: Mutex<Histograms>,
}

pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_MICROS, 3)?)
}

pub fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS)
}

impl Stats {
    pub fn new(steps: &[&'static str]) -> anyhow::Result<Stats> {
        let steps = steps.iter().map(|s| Ok((*s, histogram()?))).collect::<anyhow::Result<_>>()?;
        let histograms = Histograms {
            success: histogram()?,
            shed: histogram()?,
            operation: histogram()?,
            steps,
            errors: BTreeMap::new(),
        };
        Ok(Stats { counters: Counters::default(), histograms: Mutex::new(histograms) })
    }

    /// A poisoned lock only means a worker panicked mid-record; the counts are still usable.
    fn locked(&self) -> MutexGuard<'_, Histograms> {
        self.histograms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record(&self, step: &'static str, outcome: Outcome<'_>, latency: Duration, bytes_in: u64, bytes_out: u64) {
        let c = &self.counters;
        c.requests.fetch_add(1, Relaxed);
        c.bytes_in.fetch_add(bytes_in, Relaxed);
        c.bytes_out.fetch_add(bytes_out, Relaxed);
        let us = micros(latency);
        let mut h = self.locked();
        match outcome {
            Outcome::Success => {
                c.successes.fetch_add(1, Relaxed);
                h.success.saturating_record(us);
                if let Some(step) = h.steps.get_mut(step) {
                    step.saturating_record(us);
                }
            }
            Outcome::Shed => {
                c.shed.fetch_add(1, Relaxed);
                h.shed.saturating_record(us);
            }
            Outcome::Error(cause) => {
                c.errors.fetch_add(1, Relaxed);
                *h.errors.entry(format!("{step}: {cause}")).or_default() += 1;
            }
        }
    }

    /// An operation that failed without a failed request (e.g. an unreadable manifest).
    pub fn broken(&self, step: &str, cause: &str) {
        *self.locked().errors.entry(format!("{step}: {cause}")).or_default() += 1;
    }

    pub fn operation_done(&self, latency: Duration) {
        self.counters.ops_done.fetch_add(1, Relaxed);
        self.locked().operation.saturating_record(micros(latency));
    }

    pub fn snapshot(&self) -> Histograms {
        self.locked().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_land_in_their_own_histograms() {
        let stats = Stats::new(&["manifest", "blob"]).expect("histograms");
        stats.record("manifest", Outcome::Success, Duration::from_millis(2), 10, 0);
        stats.record("blob", Outcome::Success, Duration::from_millis(4), 100, 0);
        stats.record("blob", Outcome::Shed, Duration::from_micros(300), 0, 0);
        stats.record("blob", Outcome::Error("HTTP 500"), Duration::from_millis(1), 0, 0);
        stats.broken("manifest", "not JSON");
        let h = stats.snapshot();
        assert_eq!((h.success.len(), h.shed.len(), h.steps["blob"].len(), h.steps["manifest"].len()), (2, 1, 1, 1));
        assert_eq!(h.errors.get("blob: HTTP 500"), Some(&1));
        assert_eq!(h.errors.get("manifest: not JSON"), Some(&1));
        assert_eq!(stats.counters.requests.load(Relaxed), 4);
        assert_eq!(stats.counters.bytes_in.load(Relaxed), 110);
    }
}
