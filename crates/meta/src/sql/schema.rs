//! Schema versions, shared by both backends (compiled inside each against its `Db`): a new
//! database gets the whole schema, an existing one must match this build's.

use berth_core::{Error, Result};

use super::{Db, MIGRATIONS_TABLE_EXISTS, MIGRATOR};
use crate::db_error;

type DbPool = sqlx::Pool<Db>;

/// Versions of the migrations applied to the database, oldest first.
async fn applied_migrations(pool: &DbPool) -> Result<Vec<i64>> {
    let table: Option<String> =
        sqlx::query_scalar(MIGRATIONS_TABLE_EXISTS).fetch_optional(pool).await.map_err(db_error)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(db_error)
}

/// Applies every embedded migration the database lacks; returns the ones applied.
pub(super) async fn apply_migrations(pool: &DbPool) -> Result<Vec<String>> {
    let before = applied_migrations(pool).await?;
    MIGRATOR.run(pool).await.map_err(|e| Error::Backend(format!("migrating the database: {e}")))?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !before.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect())
}

/// A new database gets the whole schema (so one command starts a registry); an existing one
/// must already be at this build's schema: upgrades are `berth migrate`, run on purpose, and
/// a database a newer Berth migrated is refused rather than misread.
pub(super) async fn check_schema(pool: &DbPool) -> Result<()> {
    let applied = applied_migrations(pool).await?;
    if applied.is_empty() {
        apply_migrations(pool).await?;
        return Ok(());
    }
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(unknown) = applied.iter().find(|v| !MIGRATOR.version_exists(**v)) {
        return Err(Error::Unsupported(format!(
            "the database has schema migration {unknown}, which this Berth (schema {latest}) does not know: \
             it was migrated by a newer Berth"
        )));
    }
    let missing: Vec<i64> = MIGRATOR.iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect();
    if !missing.is_empty() {
        let at = applied.iter().max().copied().unwrap_or(0);
        return Err(Error::Unsupported(format!(
            "the database schema is at version {at} and this Berth needs {latest}: stop Berth and run `berth migrate`"
        )));
    }
    Ok(())
}
