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
    /// The management API.
    Api,
    /// The token service (`/v2/auth`), where passwords are hashed.
    Auth,
}

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub pull_concurrency: u32,
    pub push_concurrency: u32,
    pub app_read_concurrency: u32,
    pub app_write_concurrency: u32,
    pub api_concurrency: u32,
    pub auth_concurrency: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            pull_concurrency: 2048,
            push_concurrency: 256,
            app_read_concurrency: 512,
            app_write_concurrency: 32,
            api_concurrency: 128,
            auth_concurrency: 64,
        }
    }
}

/// One class's budget: its slots and how many it has.
struct Budget {
    slots: Arc<Semaphore>,
    capacity: usize,
}

impl Budget {
    fn new(capacity: u32) -> Budget {
        Budget { slots: Arc::new(Semaphore::new(capacity as usize)), capacity: capacity as usize }
    }
}

pub struct Limits {
    pull: Budget,
    push: Budget,
    app_read: Budget,
    app_write: Budget,
    api: Budget,
    auth: Budget,
}

impl TrafficClass {
    pub const ALL: [TrafficClass; 6] = [
        TrafficClass::Pull,
        TrafficClass::Push,
        TrafficClass::AppRead,
        TrafficClass::AppWrite,
        TrafficClass::Api,
        TrafficClass::Auth,
    ];

    /// The class's name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficClass::Pull => "pull",
            TrafficClass::Push => "push",
            TrafficClass::AppRead => "appr-read",
            TrafficClass::AppWrite => "appr-write",
            TrafficClass::Api => "api",
            TrafficClass::Auth => "auth",
        }
    }
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            pull: Budget::new(config.pull_concurrency),
            push: Budget::new(config.push_concurrency),
            app_read: Budget::new(config.app_read_concurrency),
            app_write: Budget::new(config.app_write_concurrency),
            api: Budget::new(config.api_concurrency),
            auth: Budget::new(config.auth_concurrency),
        }
    }

    fn budget(&self, class: TrafficClass) -> &Budget {
        match class {
            TrafficClass::Pull => &self.pull,
            TrafficClass::Push => &self.push,
            TrafficClass::AppRead => &self.app_read,
            TrafficClass::AppWrite => &self.app_write,
            TrafficClass::Api => &self.api,
            TrafficClass::Auth => &self.auth,
        }
    }

    /// A slot in `class`, held until the response body is done; `None` (counted as shed)
    /// when it is full.
    pub fn admit(&self, class: TrafficClass) -> Option<OwnedSemaphorePermit> {
        let permit = self.budget(class).slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            metrics::counter!("berth_requests_shed_total", "class" => class.as_str()).increment(1);
        }
        permit
    }

    /// Requests of `class` being served now.
    pub fn in_flight(&self, class: TrafficClass) -> usize {
        let budget = self.budget(class);
        budget.capacity.saturating_sub(budget.slots.available_permits())
    }
}
