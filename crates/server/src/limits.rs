//! Traffic classes: every request belongs to one, and each class has its own concurrency
//! budget, a short queue in front of it, its own share of database connections, and optional
//! per-client rate limits. A request the class cannot take within its queue timeout is
//! refused (429 with `Retry-After`), so one busy feature cannot starve the others.

mod rate;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_core::Error;
use berth_core::access::Principal;
use berth_core::connection_share::ConnectionShare;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use rate::Rate;
use rate::RateLimiter;

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

/// One class's limits.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassLimits {
    /// Requests served at once.
    pub concurrency: u32,
    /// Requests allowed to wait for a slot when all are taken; beyond that, shed at once.
    pub queue: u32,
    /// How long a queued request waits for a slot before it is shed.
    pub queue_timeout: Duration,
    /// Database connections the class may hold at once.
    pub db_connections: u32,
    /// Requests per second the whole class may start; `None` is unlimited. A concurrency
    /// budget does not bound fast, cached requests (they finish before the budget fills),
    /// so this is what caps the CPU a storm of them can take from the other classes.
    pub rate: Option<Rate>,
    /// Requests per second from one client address; `None` is unlimited.
    pub per_address: Option<Rate>,
    /// Requests per second from one account or robot; `None` is unlimited.
    pub per_principal: Option<Rate>,
}

impl ClassLimits {
    fn new(concurrency: u32, db_connections: u32) -> ClassLimits {
        ClassLimits {
            concurrency,
            queue: concurrency / 2,
            queue_timeout: Duration::from_millis(20),
            db_connections,
            rate: None,
            per_address: None,
            per_principal: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub pull: ClassLimits,
    pub push: ClassLimits,
    pub app_read: ClassLimits,
    pub app_write: ClassLimits,
    pub api: ClassLimits,
    pub auth: ClassLimits,
    /// How long a request waits for one of its class's database connections.
    pub db_wait: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // Database shares are caps, not reservations: pulls may use every reader, the App
        // Registry only half of the default four, so a storm there leaves pulls connections.
        // Rate limits are off except for logins: bulk scripts against the API and many
        // clients behind one NAT address are normal, and operators know their own peaks.
        LimitsConfig {
            pull: ClassLimits::new(2048, 4),
            push: ClassLimits::new(256, 2),
            app_read: ClassLimits::new(512, 2),
            app_write: ClassLimits::new(32, 1),
            api: ClassLimits::new(128, 2),
            auth: ClassLimits { per_address: Some(Rate { per_second: 100.0, burst: 500 }), ..ClassLimits::new(64, 1) },
            db_wait: Duration::from_secs(5),
        }
    }
}

impl LimitsConfig {
    pub fn class_mut(&mut self, class: TrafficClass) -> &mut ClassLimits {
        match class {
            TrafficClass::Pull => &mut self.pull,
            TrafficClass::Push => &mut self.push,
            TrafficClass::AppRead => &mut self.app_read,
            TrafficClass::AppWrite => &mut self.app_write,
            TrafficClass::Api => &mut self.api,
            TrafficClass::Auth => &mut self.auth,
        }
    }
}

/// Refuses a request whose client address, or whose class as a whole, is over its rate.
fn within_rates(c: &Class, client: Option<IpAddr>) -> Result<(), Error> {
    if let (Some(limiter), Some(address)) = (&c.per_address, client)
        && let Err(retry_after_secs) = limiter.check(&address, Instant::now())
    {
        return Err(c.shed("client-rate", retry_after_secs));
    }
    if let Some(limiter) = &c.rate
        && let Err(retry_after_secs) = limiter.check(&(), Instant::now())
    {
        return Err(c.shed("class-rate", retry_after_secs));
    }
    Ok(())
}

/// One class's live state.
struct Class {
    name: &'static str,
    slots: Arc<Semaphore>,
    capacity: usize,
    queue_limit: usize,
    queued: AtomicUsize,
    queue_timeout: Duration,
    share: Arc<ConnectionShare>,
    rate: Option<RateLimiter<()>>,
    per_address: Option<RateLimiter<IpAddr>>,
    per_principal: Option<RateLimiter<String>>,
}

impl Class {
    fn new(class: TrafficClass, limits: &ClassLimits, db_wait: Duration) -> Class {
        let name = class.as_str();
        Class {
            name,
            slots: Arc::new(Semaphore::new(limits.concurrency as usize)),
            capacity: limits.concurrency as usize,
            queue_limit: limits.queue as usize,
            queued: AtomicUsize::new(0),
            queue_timeout: limits.queue_timeout,
            share: ConnectionShare::new(name, limits.db_connections, db_wait),
            rate: limits.rate.map(RateLimiter::new),
            per_address: limits.per_address.map(RateLimiter::new),
            per_principal: limits.per_principal.map(RateLimiter::new),
        }
    }

    fn shed(&self, reason: &'static str, retry_after_secs: u64) -> Error {
        metrics::counter!("berth_requests_shed_total", "class" => self.name, "reason" => reason).increment(1);
        Error::TooManyRequests { retry_after_secs }
    }
}

pub struct Limits {
    classes: [Class; 6],
}

/// A request's place in its class: a concurrency slot, held until the response is done, and
/// the class's database share, which the handler runs under.
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    share: Arc<ConnectionShare>,
}

impl Admission {
    /// Runs the request's work with its database access counted against its class.
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        self.share.scope(work).await
    }
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        let mut config = config.clone();
        let db_wait = config.db_wait;
        Limits { classes: TrafficClass::ALL.map(|class| Class::new(class, config.class_mut(class), db_wait)) }
    }

    fn class(&self, class: TrafficClass) -> &Class {
        // `ALL` lists the classes in declaration order.
        &self.classes[class as usize]
    }

    /// Admits a request of `class` from `client`: at once when a slot is free, after a short
    /// wait in the queue otherwise, or not at all (`TooManyRequests`, counted as shed) when
    /// the client is over its rate, the queue is full or the wait times out.
    pub async fn admit(&self, class: TrafficClass, client: Option<IpAddr>) -> Result<Admission, Error> {
        let c = self.class(class);
        within_rates(c, client)?;
        let admitted = |slot| Admission { _slot: slot, share: c.share.clone() };
        if let Ok(slot) = c.slots.clone().try_acquire_owned() {
            return Ok(admitted(slot));
        }
        if c.queued.fetch_add(1, Ordering::AcqRel) >= c.queue_limit {
            c.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(c.shed("busy", 1));
        }
        let started = Instant::now();
        let waited = tokio::time::timeout(c.queue_timeout, c.slots.clone().acquire_owned()).await;
        c.queued.fetch_sub(1, Ordering::AcqRel);
        metrics::histogram!("berth_queue_wait_seconds", "class" => c.name).record(started.elapsed());
        match waited {
            Ok(Ok(slot)) => Ok(admitted(slot)),
            // Nothing closes the semaphores; a closed one is treated as a timeout.
            Ok(Err(_)) | Err(_) => Err(c.shed("queue-timeout", 1)),
        }
    }

    /// Admits a request that starts new work (a new upload session) only while half of the
    /// class's slots are free and nobody waits for one; it never queues. Work already under
    /// way (the chunks and manifests of pushes in progress) then keeps its slots when a flood
    /// of new pushes arrives, instead of every push slowing down until none finishes.
    pub async fn admit_new_work(&self, class: TrafficClass, client: Option<IpAddr>) -> Result<Admission, Error> {
        let c = self.class(class);
        within_rates(c, client)?;
        let busy = c.queued.load(Ordering::Acquire) > 0 || self.in_flight(class) * 2 >= c.capacity;
        match c.slots.clone().try_acquire_owned() {
            Ok(slot) if !busy => Ok(Admission { _slot: slot, share: c.share.clone() }),
            _ => Err(c.shed("new-work", 1)),
        }
    }

    /// Refuses a named caller over its class's per-account rate. Anonymous callers are
    /// limited by address in [`Limits::admit`].
    pub fn check_principal(&self, class: TrafficClass, principal: &Principal) -> Result<(), Error> {
        let c = self.class(class);
        let Some(limiter) = &c.per_principal else { return Ok(()) };
        let name = match principal {
            Principal::User { name, .. } | Principal::Robot { name, .. } => name,
            Principal::Anonymous | Principal::System => return Ok(()),
        };
        limiter.check(name, Instant::now()).map_err(|retry_after_secs| c.shed("principal-rate", retry_after_secs))
    }

    /// Requests of `class` being served now.
    pub fn in_flight(&self, class: TrafficClass) -> usize {
        let c = self.class(class);
        c.capacity.saturating_sub(c.slots.available_permits())
    }

    /// Requests of `class` waiting in its queue now.
    pub fn queued(&self, class: TrafficClass) -> usize {
        self.class(class).queued.load(Ordering::Acquire)
    }

    /// Database connections `class` holds now.
    pub fn db_connections_in_use(&self, class: TrafficClass) -> usize {
        self.class(class).share.in_use()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(adjust: impl FnOnce(&mut ClassLimits)) -> Limits {
        let mut config = LimitsConfig::default();
        adjust(&mut config.app_read);
        Limits::new(&config)
    }

    #[tokio::test]
    async fn a_full_class_queues_briefly_then_sheds_while_other_classes_pass() {
        let limits = limits(|c| {
            c.concurrency = 1;
            c.queue = 1;
            c.queue_timeout = Duration::from_millis(10);
        });
        let _held = limits.admit(TrafficClass::AppRead, None).await.expect("first");
        assert_eq!(limits.in_flight(TrafficClass::AppRead), 1);
        // The queued request times out; pulls are untouched.
        assert!(matches!(limits.admit(TrafficClass::AppRead, None).await, Err(Error::TooManyRequests { .. })));
        assert!(limits.admit(TrafficClass::Pull, None).await.is_ok());
    }

    #[tokio::test]
    async fn a_slot_freed_while_a_request_waits_goes_to_it() {
        let limits = limits(|c| {
            c.concurrency = 1;
            c.queue = 1;
            c.queue_timeout = Duration::from_secs(3600);
        });
        let held = limits.admit(TrafficClass::AppRead, None).await.expect("first");
        let release = async {
            // Let the second request reach the queue before the slot is freed.
            while limits.queued(TrafficClass::AppRead) == 0 {
                tokio::task::yield_now().await;
            }
            drop(held);
        };
        let (admitted, ()) = tokio::join!(limits.admit(TrafficClass::AppRead, None), release);
        assert!(admitted.is_ok());
        assert_eq!(limits.queued(TrafficClass::AppRead), 0);
    }

    #[tokio::test]
    async fn a_full_queue_sheds_at_once() {
        let limits = limits(|c| {
            c.concurrency = 1;
            c.queue = 0;
            c.queue_timeout = Duration::from_secs(3600);
        });
        let _held = limits.admit(TrafficClass::AppRead, None).await.expect("first");
        // With no queue there is no wait, so this returns long before the hour.
        assert!(limits.admit(TrafficClass::AppRead, None).await.is_err());
        assert_eq!(limits.queued(TrafficClass::AppRead), 0);
    }

    #[tokio::test]
    async fn new_work_gets_only_the_first_half_of_the_slots_and_never_queues() {
        let mut config = LimitsConfig::default();
        config.push.concurrency = 4;
        config.push.queue = 4;
        config.push.queue_timeout = Duration::from_secs(3600);
        let limits = Limits::new(&config);
        let first = limits.admit_new_work(TrafficClass::Push, None).await.expect("new work, 0 of 4 busy");
        let _second = limits.admit_new_work(TrafficClass::Push, None).await.expect("new work, 1 of 4 busy");
        assert!(limits.admit_new_work(TrafficClass::Push, None).await.is_err(), "2 of 4 busy: no new work");
        // Work under way still gets the other half.
        let _third = limits.admit(TrafficClass::Push, None).await.expect("continuing work");
        let _fourth = limits.admit(TrafficClass::Push, None).await.expect("continuing work");
        drop(first);
        assert!(limits.admit_new_work(TrafficClass::Push, None).await.is_err(), "3 of 4 busy");
        assert_eq!(limits.queued(TrafficClass::Push), 0);
    }

    #[tokio::test]
    async fn a_class_rate_caps_every_client_together() {
        let limits = limits(|c| c.rate = Some(Rate { per_second: 0.001, burst: 2 }));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limits.admit(TrafficClass::AppRead, Some(a)).await.is_ok());
        assert!(limits.admit(TrafficClass::AppRead, Some(b)).await.is_ok());
        assert!(limits.admit(TrafficClass::AppRead, None).await.is_err());
        assert!(limits.admit(TrafficClass::Pull, Some(a)).await.is_ok());
    }

    #[tokio::test]
    async fn rates_are_per_address_and_per_principal() {
        let limits = limits(|c| {
            c.per_address = Some(Rate { per_second: 0.001, burst: 2 });
            c.per_principal = Some(Rate { per_second: 0.001, burst: 1 });
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limits.admit(TrafficClass::AppRead, Some(a)).await.is_ok());
        assert!(limits.admit(TrafficClass::AppRead, Some(a)).await.is_ok());
        let refused = limits.admit(TrafficClass::AppRead, Some(a)).await;
        assert_eq!(limits.in_flight(TrafficClass::AppRead), 0, "a refused request takes no slot");
        assert!(matches!(refused, Err(Error::TooManyRequests { retry_after_secs }) if retry_after_secs >= 1));
        assert!(limits.admit(TrafficClass::AppRead, Some(b)).await.is_ok());
        assert!(limits.admit(TrafficClass::Pull, Some(a)).await.is_ok(), "pulls are not rate limited");

        let alice = Principal::User { id: 1, name: "alice".into(), superuser: false };
        let bob = Principal::Robot { id: 2, name: "org+bot".into() };
        assert!(limits.check_principal(TrafficClass::AppRead, &alice).is_ok());
        assert!(limits.check_principal(TrafficClass::AppRead, &alice).is_err());
        assert!(limits.check_principal(TrafficClass::AppRead, &bob).is_ok());
        assert!(limits.check_principal(TrafficClass::AppRead, &Principal::Anonymous).is_ok());
    }
}
