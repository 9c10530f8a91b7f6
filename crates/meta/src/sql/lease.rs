//! How the store takes connections: every statement or transaction holds a connection of the
//! request's class share (`berth_core::connection_share`) and one pool connection, each
//! statement is time-bounded, and the waits and durations are measured.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use berth_core::connection_share;
use berth_core::ports::PoolUsage;
use berth_core::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Transaction};
use tokio::sync::OwnedSemaphorePermit;

use super::{Db, gave_up_waiting};
use crate::db_error;

type DbConnection = <Db as Database>::Connection;

/// The pool a statement runs on (its metrics label) and how long the statement may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    pub(super) pool: &'static str,
    pub(super) timeout: Duration,
}

impl Limit {
    /// A database error as callers see it: out of connections or out of lock time is
    /// `Unavailable` (503, retry), anything else a backend error.
    fn error(self, e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::PoolTimedOut => self.unavailable(
                "acquire",
                format!("no {} database connection came free within {:?}", self.pool, self.timeout),
            ),
            sqlx::Error::Database(d) if gave_up_waiting(d.as_ref()) => {
                self.unavailable("busy", format!("the database gave up waiting for a lock: {}", d.message()))
            }
            _ => db_error(e),
        }
    }

    fn unavailable(self, kind: &'static str, reason: String) -> Error {
        metrics::counter!("berth_db_timeouts_total", "pool" => self.pool, "kind" => kind).increment(1);
        Error::Unavailable { reason, retry_after_secs: 1 }
    }
}

/// One of the store's two pools.
pub(super) struct Pool {
    connections: sqlx::Pool<Db>,
    pub(super) limit: Limit,
    /// How a transaction starts here: each backend's writer takes its write lock up front
    /// (see the backend modules), so a lock held elsewhere is waited for under the lock
    /// timeout instead of failing at the first write.
    begin: &'static str,
}

impl Pool {
    pub(super) fn new(name: &'static str, connections: sqlx::Pool<Db>, timeout: Duration, begin: &'static str) -> Pool {
        Pool { connections, limit: Limit { pool: name, timeout }, begin }
    }

    /// A connection for one statement or one transaction: first the class share's, then the
    /// pool's (each waits a bounded time, then fails with `Unavailable`).
    pub(super) async fn lease(&self) -> Result<Lease> {
        let share = connection_share::claim().await?;
        // A wait is counted when no connection was idle just before acquiring (cheap, and off
        // by at most a racing release): then it waits for one to be released or opened.
        if self.connections.num_idle() == 0 {
            metrics::counter!("berth_db_acquire_waits_total", "pool" => self.limit.pool).increment(1);
        }
        let started = Instant::now();
        let acquired = self.connections.acquire().await;
        metrics::histogram!("berth_db_acquire_wait_seconds", "pool" => self.limit.pool).record(started.elapsed());
        Ok(Lease {
            conn: acquired.map_err(|e| self.limit.error(e))?,
            limit: self.limit,
            begin: self.begin,
            started: Instant::now(),
            _share: share,
        })
    }

    pub(super) fn usage(&self) -> PoolUsage {
        let open = self.connections.size();
        let idle = u32::try_from(self.connections.num_idle()).unwrap_or(u32::MAX).min(open);
        PoolUsage {
            pool: self.limit.pool,
            in_use: open - idle,
            idle,
            max: self.connections.options().get_max_connections(),
        }
    }

    pub(super) async fn close(&self) {
        self.connections.close().await;
    }
}

/// A pool connection and the class share's permit for it, held together until dropped.
pub(super) struct Lease {
    conn: PoolConnection<Db>,
    limit: Limit,
    begin: &'static str,
    started: Instant,
    _share: Option<OwnedSemaphorePermit>,
}

impl Lease {
    /// Begins a transaction on this connection; it ends with [`Tx::commit`] or, dropped,
    /// rolls back. The lease's permit covers it all: nothing inside claims another.
    pub(super) async fn begin(&mut self) -> Result<Tx<'_>> {
        let limit = self.limit;
        let conn = self.conn.begin_with(self.begin).within(limit).await?;
        Ok(Tx { conn, limit })
    }
}

impl Deref for Lease {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl Drop for Lease {
    /// The statement's or transaction's duration, from holding its connection to letting go.
    fn drop(&mut self) {
        metrics::histogram!("berth_db_query_duration_seconds", "pool" => self.limit.pool)
            .record(self.started.elapsed());
    }
}

/// An open transaction: statements run on `&mut *tx.conn` and are bounded by `tx.limit`.
pub(super) struct Tx<'c> {
    pub(super) conn: Transaction<'c, Db>,
    pub(super) limit: Limit,
}

impl Tx<'_> {
    pub(super) async fn commit(self) -> Result<()> {
        self.conn.commit().within(self.limit).await
    }
}

/// Bounds a statement's future by its pool's statement timeout and maps its error.
pub(super) trait Within<T> {
    fn within(self, limit: Limit) -> impl Future<Output = Result<T>> + Send;

    /// As [`Within::within`], with `special` first in line to translate a database error
    /// (e.g. a unique violation into a conflict).
    fn within_or(
        self,
        limit: Limit,
        special: impl FnOnce(&sqlx::Error) -> Option<Error> + Send,
    ) -> impl Future<Output = Result<T>> + Send;
}

impl<T: Send, F: Future<Output = std::result::Result<T, sqlx::Error>> + Send> Within<T> for F {
    fn within(self, limit: Limit) -> impl Future<Output = Result<T>> + Send {
        self.within_or(limit, |_| None)
    }

    async fn within_or(self, limit: Limit, special: impl FnOnce(&sqlx::Error) -> Option<Error> + Send) -> Result<T> {
        match tokio::time::timeout(limit.timeout, self).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(special(&e).unwrap_or_else(|| limit.error(e))),
            // The abandoned statement runs to its end on the connection's worker; sqlx tests
            // the connection before pooling it again, so nobody is handed it busy.
            Err(_) => Err(limit
                .unavailable("statement", format!("a {} database statement ran over {:?}", limit.pool, limit.timeout))),
        }
    }
}
