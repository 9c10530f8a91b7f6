//! Implementations of the [`berth_core::ports::MetaStore`] port on sqlx: SQLite, the
//! embedded default for one machine, and PostgreSQL, shared by many instances.
//!
//! Both backends compile the same SQL (`src/sql/`, written in the dialect both accept, with
//! `$n` parameters) against their own driver: each backend module includes those files as its
//! own submodules, so every statement is checked against both type systems and the backends
//! cannot drift apart. What differs (connecting, locking, schema look-ups, change
//! notifications) lives in `sqlite/` and `postgres/`. Each backend runs its own embedded
//! migrations (`migrations/<backend>`, version for version the same schema) and passes
//! [`testsuite`].

// Both backend modules load the files in `sql/`: that is the point (see above).
#[allow(clippy::duplicate_mod)]
pub(crate) mod postgres;
mod rows;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testsuite;
#[cfg(any(test, feature = "testing"))]
mod testsuite_appregistry;
#[cfg(any(test, feature = "testing"))]
mod testsuite_tenancy;
pub mod transfer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_core::ports::MetaStore;
use berth_core::{Error, Result};

pub use postgres::PostgresMetaStore;
#[cfg(any(test, feature = "testing"))]
pub use postgres::TestDatabase;
pub use sqlite::SqliteMetaStore;

/// Sizes and time limits of the database connections.
#[derive(Debug, Clone)]
pub struct DatabaseLimits {
    /// Reader connections (at least 1).
    pub readers: u32,
    /// Writer connections on PostgreSQL (at least 1); SQLite always has exactly one.
    pub writers: u32,
    /// The longest a statement may run, and a request wait for a pool connection, before it
    /// fails with `Unavailable`. The database's own wait for a lock gives up at nine tenths
    /// of it, so a locked database is reported as such rather than as a slow statement.
    pub statement_timeout: Duration,
}

impl Default for DatabaseLimits {
    fn default() -> Self {
        DatabaseLimits { readers: 4, writers: 4, statement_timeout: Duration::from_secs(5) }
    }
}

/// Where the metadata lives, as named by a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`): a file, created when missing.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to the driver as it is.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(path) if !path.is_empty() => Ok(DatabaseUrl::Sqlite(PathBuf::from(path))),
            _ => Err(Error::InvalidInput(format!(
                "database URL {:?} is neither sqlite://PATH nor postgres://...",
                redacted(url)
            ))),
        }
    }
}

/// A URL with any password replaced, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Opens the metadata database `url` names (see [`SqliteMetaStore::open`] and
/// [`PostgresMetaStore::open`]).
pub async fn open(url: &DatabaseUrl, limits: &DatabaseLimits) -> Result<Arc<dyn MetaStore>> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteMetaStore::open(path, limits).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PostgresMetaStore::open(url, limits).await?),
    })
}

/// Applies the schema migrations the database lacks; returns them as `version description`.
pub async fn migrate(url: &DatabaseUrl) -> Result<Vec<String>> {
    match url {
        DatabaseUrl::Sqlite(path) => SqliteMetaStore::migrate(path).await,
        DatabaseUrl::Postgres(url) => PostgresMetaStore::migrate(url).await,
    }
}

fn db_error(e: sqlx::Error) -> Error {
    Error::Backend(format!("database: {e}"))
}

fn size_to_db(size: u64) -> Result<i64> {
    i64::try_from(size).map_err(|_| Error::Backend(format!("size {size} does not fit the database")))
}

#[cfg(test)]
mod tests {
    use super::{DatabaseUrl, redacted};

    #[test]
    fn urls_name_a_backend() {
        assert_eq!(DatabaseUrl::parse("sqlite://data/meta.db").ok(), Some(DatabaseUrl::Sqlite("data/meta.db".into())));
        assert_eq!(DatabaseUrl::parse("sqlite:/abs/meta.db").ok(), Some(DatabaseUrl::Sqlite("/abs/meta.db".into())));
        assert!(matches!(DatabaseUrl::parse("postgres://u@h/db"), Ok(DatabaseUrl::Postgres(_))));
        assert!(matches!(DatabaseUrl::parse("postgresql://u@h/db"), Ok(DatabaseUrl::Postgres(_))));
        for bad in ["", "sqlite://", "mysql://h/db", "meta.db"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(redacted("postgres://berth:s3cret@db:5432/berth"), "postgres://berth:***@db:5432/berth");
        assert_eq!(redacted("postgres://berth@db/berth"), "postgres://berth@db/berth");
    }
}
