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
    /// App Registry reads (listings, shows, pulls): the OperatorHub storm lands here, and
    /// must not take image pulls down with it.
    AppRead,
    /// App Registry writes (pushes, deletes, channel changes).
    AppWrite,
}

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub pull_concurrency: u32,
    pub push_concurrency: u32,
    pub app_read_concurrency: u32,
    pub app_write_concurrency: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            pull_concurrency: 2048,
            push_concurrency: 256,
            app_read_concurrency: 512,
            app_write_concurrency: 32,
        }
    }
}

pub struct Limits {
    pull: Arc<Semaphore>,
    push: Arc<Semaphore>,
    app_read: Arc<Semaphore>,
    app_write: Arc<Semaphore>,
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            pull: Arc::new(Semaphore::new(config.pull_concurrency as usize)),
            push: Arc::new(Semaphore::new(config.push_concurrency as usize)),
            app_read: Arc::new(Semaphore::new(config.app_read_concurrency as usize)),
            app_write: Arc::new(Semaphore::new(config.app_write_concurrency as usize)),
        }
    }

    /// A slot in `class`, held until the response body is done; `None` when it is full.
    pub fn admit(&self, class: TrafficClass) -> Option<OwnedSemaphorePermit> {
        let budget = match class {
            TrafficClass::Pull => &self.pull,
            TrafficClass::Push => &self.push,
            TrafficClass::AppRead => &self.app_read,
            TrafficClass::AppWrite => &self.app_write,
        };
        budget.clone().try_acquire_owned().ok()
    }
}
