//! The PostgreSQL MetaStore, for many instances sharing one database: a pool of readers
//! (each read transaction one consistent snapshot) and a pool of writers, and change
//! notifications through `LISTEN`/`NOTIFY` so every instance drops what it cached about a
//! change another one committed.
//!
//! Write transactions are serialized cluster-wide by one transaction-scoped advisory lock.
//! That gives them exactly SQLite's semantics (one writer at a time), which the shared SQL
//! and its check-then-write steps were written for; reads, which are nearly all the
//! traffic, never take it.

#[path = "../sql/appregistry.rs"]
mod appregistry;
#[path = "../sql/lease.rs"]
mod lease;
#[path = "../sql/registry.rs"]
mod registry;
#[path = "../sql/schema.rs"]
mod schema;
#[path = "../sql/shared.rs"]
mod shared;
#[path = "../sql/tenancy.rs"]
mod tenancy;
#[cfg(any(test, feature = "testing"))]
mod test_database;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::time::Duration;

use berth_core::ports::{Change, ChangeFeed};
use berth_core::{Error, Result};
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;

use crate::{DatabaseLimits, db_error, redacted};
use lease::{Pool, Within};
pub use registry::SqlMetaStore as PostgresMetaStore;
#[cfg(any(test, feature = "testing"))]
pub use test_database::TestDatabase;

type Db = sqlx::Postgres;

/// The schema this build expects, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Names the migrations table if the current schema has one.
const MIGRATIONS_TABLE_EXISTS: &str = "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'";

/// A read transaction sees one snapshot, as a SQLite read transaction does.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// A write transaction first takes the cluster-wide writer lock (see the module comment).
const BEGIN_WRITE: &str = "BEGIN; SELECT pg_advisory_xact_lock(7306090101294278656)";

/// The notification channel changes travel on.
const CHANGES_CHANNEL: &str = "berth_changes";

/// SQLSTATEs of a statement the server stopped: `lock_timeout` (55P03) or
/// `statement_timeout` (57014).
fn gave_up_waiting(e: &dyn DatabaseError) -> bool {
    matches!(e.code().as_deref(), Some("55P03" | "57014"))
}

/// What the PostgreSQL store needs beyond its pools: where to listen for changes, and whose
/// changes are its own.
struct Backend {
    url: String,
    /// Random, per store: prefixed to every change it announces, so that its own feed skips
    /// them (it applied them already, and a second invalidation would only cost cache misses).
    instance: String,
}

impl Backend {
    async fn publish_change(&self, writer: &Pool, change: &Change) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(format!("{} {}", self.instance, change.encode()))
            .execute(&mut *writer.lease().await?)
            .within(writer.limit)
            .await?;
        Ok(())
    }

    /// A connection of its own that listens, and a task forwarding what it hears until the
    /// feed's receiver is dropped.
    async fn subscribe_changes(&self) -> Result<Option<ChangeFeed>> {
        let mut listener = PgListener::connect(&self.url).await.map_err(db_error)?;
        listener.listen(CHANGES_CHANNEL).await.map_err(db_error)?;
        let (feed, changes) = mpsc::channel(1024);
        tokio::spawn(forward_changes(listener, feed, self.instance.clone()));
        Ok(Some(changes))
    }
}

async fn forward_changes(mut listener: PgListener, feed: mpsc::Sender<Change>, instance: String) {
    loop {
        let heard = tokio::select! {
            () = feed.closed() => return,
            heard = listener.try_recv() => heard,
        };
        let change = match heard {
            Ok(Some(notification)) => match notification.payload().split_once(' ') {
                Some((sender, _)) if sender == instance => continue,
                Some((_, change)) => Change::decode(change),
                None => Change::Everything,
            },
            // The connection dropped and was made again: whatever was sent meanwhile is lost.
            Ok(None) => Change::Everything,
            Err(e) => {
                tracing::warn!(error = %e, "listening for changes failed; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Change::Everything
            }
        };
        if feed.send(change).await.is_err() {
            return;
        }
    }
}

/// A random id for one store (the standard library's randomly keyed hasher as the source).
fn instance_id() -> String {
    use std::hash::BuildHasher;
    format!("{:016x}", std::collections::hash_map::RandomState::new().hash_one(std::process::id()))
}

/// The driver's options for `url`; with a `timeout`, the server stops a statement, or a wait
/// for a lock, a little before the client's own timer fires, so the connection comes back
/// clean and the error names the cause.
pub(crate) fn connect_options(url: &str, timeout: Option<Duration>) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::InvalidInput(format!("database URL {}: {e}", redacted(url))))?
        .application_name("berth");
    let Some(timeout) = timeout else { return Ok(options) };
    // The lock wait ends first, so a statement stuck behind a lock is reported as such.
    let statement = (timeout - timeout / 10).as_millis().max(1).to_string();
    let lock = (timeout - timeout / 5).as_millis().max(1).to_string();
    Ok(options.options([("statement_timeout", statement.as_str()), ("lock_timeout", lock.as_str())]))
}

impl PostgresMetaStore {
    /// Connects to the database `url` names. A database without Berth's tables gets the
    /// schema; one with them must be at this build's schema (see [`PostgresMetaStore::migrate`]).
    pub async fn open(url: &str, limits: &DatabaseLimits) -> Result<PostgresMetaStore> {
        let timeout = limits.statement_timeout;
        let options = connect_options(url, Some(timeout))?;
        let writer = PgPoolOptions::new()
            .max_connections(limits.writers.max(1))
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        schema::check_schema(&writer).await?;
        let reader = PgPoolOptions::new()
            .max_connections(limits.readers.max(1))
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(PostgresMetaStore {
            reader: Pool::new("reader", reader, timeout, BEGIN_READ),
            writer: Pool::new("writer", writer, timeout, BEGIN_WRITE),
            backend: Backend { url: url.to_owned(), instance: instance_id() },
        })
    }

    /// Applies the migrations the database lacks; returns them as `version description`,
    /// oldest first. Instances starting at once are safe: the migrator locks the database.
    /// Migrations may take long on a big database, so no statement timeout applies.
    pub async fn migrate(url: &str) -> Result<Vec<String>> {
        let options = connect_options(url, None)?;
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_error)?;
        let applied = schema::apply_migrations(&pool).await;
        pool.close().await;
        applied
    }
}
