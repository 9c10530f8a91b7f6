//! How the store takes connections: every statement or transaction holds a connection of the
//! request's class share (`berth_core::connection_share`) and one pool connection, each
//! statement is time-bounded, and the waits and durations are measured.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use berth_core::connection_share;
use berth_core::ports::PoolUsage;
use berth_core::{Error, Result};
use sqlx::error::DatabaseError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};
use tokio::sync::OwnedSemaphorePermit;

use super::db_error;

/// SQLite's primary result code for "database is locked"; extended codes keep it in the low byte.
const SQLITE_BUSY: i32 = 5;

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
            sqlx::Error::Database(d) if is_busy(d.as_ref()) => {
                self.unavailable("busy", format!("{} past the busy timeout", d.message()))
            }
            _ => db_error(e),
        }
    }

    fn unavailable(self, kind: &'static str, reason: String) -> Error {
        metrics::counter!("berth_db_timeouts_total", "pool" => self.pool, "kind" => kind).increment(1);
        Error::Unavailable { reason, retry_after_secs: 1 }
    }
}

fn is_busy(e: &dyn DatabaseError) -> bool {
    e.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// One of the store's two pools.
pub(super) struct Pool {
    connections: SqlitePool,
    pub(super) limit: Limit,
    /// How a transaction starts here. The writer takes the write lock up front (`BEGIN
    /// IMMEDIATE`), so a lock held by another process is waited for under the busy timeout
    /// instead of failing at the first write.
    begin: &'static str,
}

impl Pool {
    pub(super) fn new(name: &'static str, connections: SqlitePool, timeout: Duration, begin: &'static str) -> Pool {
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
    conn: PoolConnection<Sqlite>,
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
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
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
    pub(super) conn: Transaction<'c, Sqlite>,
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use berth_core::Error;
    use berth_core::access::Principal;
    use berth_core::connection_share::ConnectionShare;
    use berth_core::ports::MetaStore;
    use berth_oci::RepositoryName;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{Connection, SqliteConnection};

    use super::{Limit, Within};
    use crate::sqlite::{DatabaseLimits, SqliteMetaStore};
    use crate::testsuite::entry;

    async fn open(path: &Path, statement_timeout: Duration) -> SqliteMetaStore {
        SqliteMetaStore::open(path, &DatabaseLimits { readers: 2, statement_timeout }).await.expect("open")
    }

    fn repository() -> RepositoryName {
        RepositoryName::parse("a/b").expect("name")
    }

    async fn ensure(store: &SqliteMetaStore) -> berth_core::Result<bool> {
        store.ensure_repository(&repository(), &Principal::System, &entry("create_repository")).await
    }

    fn unavailable<T: std::fmt::Debug>(result: berth_core::Result<T>) -> String {
        match result {
            Err(Error::Unavailable { reason, retry_after_secs: 1 }) => reason,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_class_out_of_connections_is_refused_while_another_class_is_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("meta.db"), Duration::from_secs(5)).await;
        let busy = ConnectionShare::new("appr-read", 1, Duration::from_millis(20));
        let other = ConnectionShare::new("pull", 1, Duration::from_millis(20));

        let held = busy.scope(store.reader.lease()).await.expect("reader lease");
        unavailable(busy.scope(store.repository_exists(&repository())).await);
        assert!(!other.scope(store.repository_exists(&repository())).await.expect("the other class"));
        drop(held);
        assert!(!busy.scope(store.repository_exists(&repository())).await.expect("freed"));

        // A transaction holds its class's connection from begin to commit.
        let mut lease = busy.scope(store.writer.lease()).await.expect("writer lease");
        let tx = lease.begin().await.expect("begin");
        unavailable(busy.scope(ensure(&store)).await);
        tx.commit().await.expect("commit");
        drop(lease);
        assert!(busy.scope(ensure(&store)).await.expect("freed"));
        assert_eq!(busy.in_use(), 0);
    }

    #[tokio::test]
    async fn a_statement_over_its_time_is_unavailable_and_its_connection_is_not_handed_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("meta.db"), Duration::from_secs(5)).await;
        let limit = Limit { pool: "reader", timeout: Duration::from_millis(50) };
        let slow: berth_core::Result<i64> = sqlx::query_scalar(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000000) SELECT count(*) FROM c",
        )
        .fetch_one(&mut *store.reader.lease().await.expect("lease"))
        .within(limit)
        .await;
        let reason = unavailable(slow);
        assert!(reason.contains("statement ran over"), "{reason}");
        // The abandoned statement still runs on its connection; readers get another one.
        assert!(!store.repository_exists(&repository()).await.expect("another reader"));
    }

    #[tokio::test]
    async fn a_write_lock_held_elsewhere_fails_writes_after_the_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        // The busy timeout is 1.8 s of these 2 s, so the lock, not the statement timer, ends the wait.
        let store = open(&path, Duration::from_secs(2)).await;
        let mut elsewhere =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path)).await.expect("connect");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut elsewhere).await.expect("take the write lock");

        let reason = unavailable(ensure(&store).await);
        assert!(reason.contains("locked"), "{reason}");
        assert!(!store.repository_exists(&repository()).await.expect("reads go on"));

        sqlx::query("ROLLBACK").execute(&mut elsewhere).await.expect("release the write lock");
        assert!(ensure(&store).await.expect("the writer works again"));
    }

    #[tokio::test]
    async fn a_write_waits_for_the_writer_connection_at_most_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("meta.db"), Duration::from_millis(300)).await;
        let held = store.writer.lease().await.expect("writer lease");
        let reason = unavailable(ensure(&store).await);
        assert!(reason.contains("no writer database connection"), "{reason}");
        drop(held);
        assert!(ensure(&store).await.expect("the writer is free"));
    }
}
