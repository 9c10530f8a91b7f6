//! Each traffic class's share of database connections.
//!
//! The server runs every request inside [`ConnectionShare::scope`] for its class; a store
//! calls [`claim`] before it takes a connection. A class that has all its connections in use
//! waits a bounded time and then fails with [`Error::Unavailable`], so a storm in one class
//! cannot hold every connection while another class's requests wait behind it (quay.io's
//! 2020 outage: App Registry queries starved the whole database).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, Result};

pub struct ConnectionShare {
    class: &'static str,
    connections: Arc<Semaphore>,
    capacity: usize,
    wait_limit: Duration,
}

tokio::task_local! {
    static CURRENT: Arc<ConnectionShare>;
}

impl ConnectionShare {
    /// `connections` at once for `class`, waiting at most `wait_limit` for one to come free.
    pub fn new(class: &'static str, connections: u32, wait_limit: Duration) -> Arc<ConnectionShare> {
        let capacity = connections as usize;
        Arc::new(ConnectionShare { class, connections: Arc::new(Semaphore::new(capacity)), capacity, wait_limit })
    }

    /// Runs `work` with database access counted against this share.
    pub async fn scope<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        CURRENT.scope(self.clone(), work).await
    }

    /// Connections of this share in use now.
    pub fn in_use(&self) -> usize {
        self.capacity.saturating_sub(self.connections.available_permits())
    }

    pub fn class(&self) -> &'static str {
        self.class
    }
}

/// A connection slot of the current request's class, to hold while using one connection.
/// `None` outside any class (background jobs, the offline admin CLI), which are not limited.
pub async fn claim() -> Result<Option<OwnedSemaphorePermit>> {
    let Ok(share) = CURRENT.try_with(Arc::clone) else {
        return Ok(None);
    };
    if let Ok(permit) = share.connections.clone().try_acquire_owned() {
        return Ok(Some(permit));
    }
    let started = Instant::now();
    let waited = tokio::time::timeout(share.wait_limit, share.connections.clone().acquire_owned()).await;
    metrics::histogram!("berth_db_share_wait_seconds", "class" => share.class).record(started.elapsed());
    match waited {
        Ok(Ok(permit)) => Ok(Some(permit)),
        // A closed semaphore never happens (nothing closes it); treat it like a timeout.
        Ok(Err(_)) | Err(_) => {
            metrics::counter!("berth_db_share_timeouts_total", "class" => share.class).increment(1);
            Err(Error::Unavailable {
                reason: format!("the {} class has all its database connections in use", share.class),
                retry_after_secs: 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outside_a_scope_nothing_is_limited() {
        assert!(claim().await.expect("no share").is_none());
    }

    #[tokio::test]
    async fn a_full_share_times_out_while_another_class_gets_its_connection() {
        let busy = ConnectionShare::new("appr-read", 1, Duration::from_millis(20));
        let other = ConnectionShare::new("pull", 1, Duration::from_millis(20));
        let held = busy.scope(claim()).await.expect("first claim").expect("a permit");
        assert_eq!(busy.in_use(), 1);
        let refused = busy.scope(claim()).await;
        assert!(matches!(refused, Err(Error::Unavailable { .. })), "{refused:?}");
        assert!(other.scope(claim()).await.expect("other class").is_some());
        drop(held);
        assert!(busy.scope(claim()).await.expect("freed").is_some());
        assert_eq!(busy.in_use(), 0);
    }
}
