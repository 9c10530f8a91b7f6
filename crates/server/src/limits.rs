//! Traffic classes: every request belongs to one, and each class has its own concurrency
//! budget. A request over its class's budget is refused at once (429 with `Retry-After`)
//! instead of queueing, so one busy feature cannot starve the others.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficClass {
    /// Reads of images: manifests, blobs, listings, referrers.
    Pull,
    /// Writes: uploads, manifest pushes, deletes.
    Push,
}

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub pull_concurrency: u32,
    pub push_concurrency: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { pull_concurrency: 2048, push_concurrency: 256 }
    }
}

pub struct Limits {
    pull: Arc<Semaphore>,
    push: Arc<Semaphore>,
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            pull: Arc::new(Semaphore::new(config.pull_concurrency as usize)),
            push: Arc::new(Semaphore::new(config.push_concurrency as usize)),
        }
    }

    /// A slot in `class`, held until the response body is done; `None` when it is full.
    pub fn admit(&self, class: TrafficClass) -> Option<OwnedSemaphorePermit> {
        let budget = match class {
            TrafficClass::Pull => &self.pull,
            TrafficClass::Push => &self.push,
        };
        budget.clone().try_acquire_owned().ok()
    }
}
