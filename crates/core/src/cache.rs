//! Read-through caches for the pull path, invalidated per repository.
//!
//! Every repository maps (by hash) to one of a fixed set of generation counters. A cached
//! value is keyed by the generation that was current *before* it was loaded, and any write
//! to a repository bumps the counter *after* it commits. So a value loaded concurrently with
//! a write can never be served once the write is done: its key names the old generation.
//! Entries of old generations are never hit again and age out under the size bound.
//! Concurrent misses for one key share a single load.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use moka::future::Cache;

use crate::{Error, Result};

const SLOTS: usize = 4096;

pub struct Generations {
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Default for Generations {
    fn default() -> Self {
        Generations { slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(), hasher: RandomState::new() }
    }
}

impl Generations {
    fn slot(&self, repository: &str) -> &AtomicU64 {
        // SLOTS is a power of two; the mask keeps the index in range.
        &self.slots[(self.hasher.hash_one(repository) as usize) & (SLOTS - 1)]
    }

    pub fn current(&self, repository: &str) -> u64 {
        self.slot(repository).load(Ordering::Acquire)
    }

    /// Invalidates everything cached for `repository` (and the few names sharing its slot).
    pub fn bump(&self, repository: &str) {
        self.slot(repository).fetch_add(1, Ordering::AcqRel);
    }

    /// Invalidates everything cached.
    pub fn bump_all(&self) {
        for slot in &self.slots {
            slot.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A size-bounded cache of per-repository lookups.
pub struct RepoCache<V> {
    entries: Cache<(String, String, u64), V>,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl<V: Clone + Send + Sync + 'static> RepoCache<V> {
    /// `weigh` estimates an entry's size in bytes; the cache holds at most `max_bytes`.
    /// `name` labels its hit and miss counts in the metrics.
    pub fn new(name: &'static str, max_bytes: u64, weigh: fn(&V) -> u32) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &(String, String, u64), v: &V| {
                weigh(v).saturating_add(u32::try_from(k.0.len() + k.1.len() + 64).unwrap_or(u32::MAX))
            })
            .build();
        let count =
            |result: &'static str| metrics::counter!("berth_cache_requests_total", "cache" => name, "result" => result);
        RepoCache { entries, hits: count("hit"), misses: count("miss") }
    }

    pub async fn get_or_load<F>(&self, generations: &Generations, repository: &str, key: &str, load: F) -> Result<V>
    where
        F: Future<Output = Result<V>>,
    {
        let generation = generations.current(repository);
        let key = (repository.to_owned(), key.to_owned(), generation);
        if let Some(value) = self.entries.get(&key).await {
            self.hits.increment(1);
            return Ok(value);
        }
        self.misses.increment(1);
        self.entries.try_get_with(key, load).await.map_err(|e: std::sync::Arc<Error>| (*e).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn bump_invalidates_and_misses_coalesce() {
        let generations = Generations::default();
        let cache: RepoCache<u64> = RepoCache::new("test", 1 << 20, |_| 8);
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |v: u64| {
            let loads = loads.clone();
            async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(v)
            }
        };
        let (a, b) = tokio::join!(
            cache.get_or_load(&generations, "r", "k", load(1)),
            cache.get_or_load(&generations, "r", "k", load(1))
        );
        assert_eq!((a.ok(), b.ok()), (Some(1), Some(1)));
        assert_eq!(loads.load(Ordering::SeqCst), 1, "concurrent misses share one load");
        assert_eq!(cache.get_or_load(&generations, "r", "k", load(2)).await.ok(), Some(1));
        generations.bump("r");
        assert_eq!(cache.get_or_load(&generations, "r", "k", load(2)).await.ok(), Some(2));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
