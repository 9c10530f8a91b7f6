//! Per-client token buckets, in a bounded sharded map so that no number of distinct clients
//! can grow memory without limit.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::Instant;

/// A sustained rate with room for a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    /// Requests a quiet client may send at once.
    pub burst: u32,
}

const SHARDS: usize = 16;
/// Clients tracked per shard; past this, clients whose buckets have refilled are forgotten
/// (they are indistinguishable from new ones), and if none have, the shard starts over.
const CLIENTS_PER_SHARD: usize = 4096;

pub struct RateLimiter<K> {
    rate: Rate,
    hasher: RandomState,
    shards: [Mutex<HashMap<K, Bucket>>; SHARDS],
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> RateLimiter<K> {
        RateLimiter { rate, hasher: RandomState::new(), shards: std::array::from_fn(|_| Mutex::default()) }
    }

    /// Takes one token for `key`, or says in how many seconds one will be there.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), u64> {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = self.rate.per_second.max(f64::MIN_POSITIVE);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut buckets = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let refill =
            |b: &Bucket| (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(burst);
        if buckets.len() >= CLIENTS_PER_SHARD && !buckets.contains_key(key) {
            buckets.retain(|_, b| refill(b) < burst);
            if buckets.len() >= CLIENTS_PER_SHARD {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = refill(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(Rate { per_second: 2.0, burst: 3 });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(&"a", start).is_ok());
        }
        assert_eq!(limiter.check(&"a", start), Err(1));
        assert!(limiter.check(&"b", start).is_ok(), "clients have their own buckets");
        // Half a second at 2/s brings one token back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.check(&"a", later).is_ok());
        assert!(limiter.check(&"a", later).is_err());
    }

    #[test]
    fn slow_rates_tell_how_long_to_wait() {
        let limiter = RateLimiter::new(Rate { per_second: 0.1, burst: 1 });
        let now = Instant::now();
        assert!(limiter.check(&1, now).is_ok());
        assert_eq!(limiter.check(&1, now), Err(10));
    }

    #[test]
    fn many_clients_do_not_grow_memory_without_bound() {
        let limiter = RateLimiter::new(Rate { per_second: 1.0, burst: 1 });
        let now = Instant::now();
        for client in 0..(SHARDS * CLIENTS_PER_SHARD * 3) as u64 {
            let _ = limiter.check(&client, now);
        }
        let tracked: usize = limiter.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum();
        assert!(tracked <= SHARDS * CLIENTS_PER_SHARD, "{tracked}");
    }
}
