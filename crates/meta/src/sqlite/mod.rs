//! The SQLite MetaStore: WAL mode, one writer connection (SQLite allows one writer at a time;
//! queueing in the pool is cheaper than lock retries) and a small pool of readers. One
//! process uses the database, so there is nobody to tell about changes.

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
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use berth_core::Result;
use berth_core::ports::{Change, ChangeFeed};
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{DatabaseLimits, db_error};
use lease::Pool;
pub use registry::SqlMetaStore as SqliteMetaStore;

type Db = sqlx::Sqlite;

/// The schema this build expects, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Names the migrations table if the database has one.
const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

/// SQLite's primary result code for "database is locked"; extended codes keep it in the low byte.
const SQLITE_BUSY: i32 = 5;

/// Whether the database gave up waiting for a lock (the busy timeout ran out).
fn gave_up_waiting(e: &dyn DatabaseError) -> bool {
    e.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// Nothing beyond the pools: a SQLite database has one process, so changes stay local.
struct Backend;

impl Backend {
    async fn publish_change(&self, _writer: &Pool, _change: &Change) -> Result<()> {
        Ok(())
    }

    async fn subscribe_changes(&self) -> Result<Option<ChangeFeed>> {
        Ok(None)
    }
}

fn connect_options(path: &Path, timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit that was acknowledged survives power loss, not just a crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(timeout - timeout / 10)
        .foreign_keys(true)
}

impl SqliteMetaStore {
    /// Opens (creating if needed) the database file. A new database gets the schema; an
    /// existing one must be at this build's schema (see [`SqliteMetaStore::migrate`]).
    pub async fn open(path: &Path, limits: &DatabaseLimits) -> Result<SqliteMetaStore> {
        let timeout = limits.statement_timeout;
        let options = connect_options(path, timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        schema::check_schema(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(limits.readers.max(1))
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(SqliteMetaStore {
            reader: Pool::new("reader", reader, timeout, "BEGIN"),
            // The write lock is taken up front, so a lock held by another process is waited
            // for under the busy timeout instead of failing at the first write.
            writer: Pool::new("writer", writer, timeout, "BEGIN IMMEDIATE"),
            backend: Backend,
        })
    }

    /// Applies the migrations the database at `path` lacks (creating it if needed); returns
    /// them as `version description`, oldest first.
    pub async fn migrate(path: &Path) -> Result<Vec<String>> {
        let options = connect_options(path, DatabaseLimits::default().statement_timeout);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_error)?;
        let applied = schema::apply_migrations(&pool).await;
        pool.close().await;
        applied
    }
}
