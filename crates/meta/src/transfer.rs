//! Moving a single-machine registry's metadata from SQLite into an empty PostgreSQL database,
//! row for row: ids, digests, tags with their history, tenancy, App Registry, signing keys and
//! the audit log. Upload sessions stay behind: their state belongs to the old blob store.
//!
//! The copy is one PostgreSQL transaction, so a failure leaves the target empty and the move
//! can simply be run again.

use std::collections::HashMap;
use std::path::Path;

use berth_core::ports::MetaStore;
use berth_core::{Error, Result};
use sqlx::postgres::{PgConnection, PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, QueryBuilder, Row};

use crate::postgres::connect_options;
use crate::{PostgresMetaStore, db_error};

/// Every table that moves, parents before children.
const TABLES: &[&str] = &[
    "namespaces",
    "users",
    "teams",
    "robots",
    "team_members",
    "repositories",
    "blobs",
    "repository_blobs",
    "manifests",
    "manifest_blobs",
    "manifest_children",
    "tags",
    "permissions",
    "default_permissions",
    "api_tokens",
    "audit_log",
    "app_blobs",
    "app_releases",
    "app_channels",
    "app_channel_releases",
    "signing_keys",
];

/// Tables that do not move: upload sessions, and the target's own migration records.
const LEFT_BEHIND: &[&str] = &["uploads", "_sqlx_migrations"];

/// Rows per `INSERT`, well under PostgreSQL's 65535 parameters for the widest table.
const ROWS_PER_INSERT: i64 = 500;

/// The SQLite database being moved, opened read-only.
pub struct SqliteSource {
    pool: SqlitePool,
}

/// A blob as the source records it.
pub struct SourceBlob {
    pub digest: String,
    pub size: i64,
    pub storage_key: String,
}

impl SqliteSource {
    /// Opens the database at `path`, which must be at this build's schema and hold only
    /// tables this build knows how to move.
    pub async fn open(path: &Path) -> Result<SqliteSource> {
        if !path.is_file() {
            return Err(Error::InvalidInput(format!("no database at {}", path.display())));
        }
        // Checks the schema version (and refuses an old or newer one) the way serving does.
        crate::SqliteMetaStore::open(path, &crate::DatabaseLimits::default()).await?.close().await;
        let options = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_error)?;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .fetch_all(&pool)
                .await
                .map_err(db_error)?;
        if let Some(unknown) =
            tables.iter().find(|t| !TABLES.contains(&t.as_str()) && !LEFT_BEHIND.contains(&t.as_str()))
        {
            return Err(Error::Unsupported(format!("table {unknown} has no place in the move")));
        }
        Ok(SqliteSource { pool })
    }

    /// Every blob the source records.
    pub async fn blobs(&self) -> Result<Vec<SourceBlob>> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT digest, size, storage_key FROM blobs ORDER BY digest")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(rows.into_iter().map(|(digest, size, storage_key)| SourceBlob { digest, size, storage_key }).collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An empty PostgreSQL database at this build's schema, ready to receive a move.
pub struct PostgresTarget {
    url: String,
}

impl PostgresTarget {
    /// Brings the database at `url` to this build's schema and checks it holds nothing yet.
    pub async fn prepare(url: &str) -> Result<PostgresTarget> {
        PostgresMetaStore::migrate(url).await?;
        let mut conn = PgConnection::connect_with(&connect_options(url, None)?).await.map_err(db_error)?;
        for table in TABLES {
            let any: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!("SELECT 1 FROM {table} LIMIT 1")))
                .fetch_optional(&mut conn)
                .await
                .map_err(db_error)?;
            if any.is_some() {
                return Err(Error::Conflict(format!(
                    "the target database is not empty (table {table} has rows): a move needs an empty database"
                )));
            }
        }
        let _ = conn.close().await;
        Ok(PostgresTarget { url: url.to_owned() })
    }

    /// Copies every row of `source`, with each blob's storage key replaced by its key in the
    /// new blob store (`new_keys`, old key to new); returns the rows copied per table.
    pub async fn copy_from(
        &self,
        source: &SqliteSource,
        new_keys: &HashMap<String, String>,
    ) -> Result<Vec<(&'static str, u64)>> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(connect_options(&self.url, None)?)
            .await
            .map_err(db_error)?;
        let mut tx = pool.begin().await.map_err(db_error)?;
        let mut copied = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(*table)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            let select = format!(
                "SELECT rowid AS berth_rowid, {} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT $2",
                names.join(", ")
            );
            let mut after = 0i64;
            let mut rows_copied = 0u64;
            loop {
                let rows: Vec<SqliteRow> = sqlx::query(AssertSqlSafe(select.clone()))
                    .bind(after)
                    .bind(ROWS_PER_INSERT)
                    .fetch_all(&source.pool)
                    .await
                    .map_err(db_error)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("berth_rowid").map_err(db_error)?;
                let mut insert = QueryBuilder::<Postgres>::new(format!("INSERT INTO {table} ({}) ", names.join(", ")));
                let mut failed = None;
                insert.push_values(&rows, |mut values, row| {
                    for (name, data_type) in &columns {
                        let bound = bind_column(&mut values, row, table, name, data_type, new_keys);
                        if let Err(e) = bound {
                            failed.get_or_insert(e);
                        }
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                insert.build().execute(&mut *tx).await.map_err(db_error)?;
                rows_copied += rows.len() as u64;
            }
            if columns.iter().any(|(name, data_type)| name == "id" && data_type == "bigint") {
                // Identity columns continue after the copied ids.
                let resync = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                );
                sqlx::query(AssertSqlSafe(resync)).execute(&mut *tx).await.map_err(db_error)?;
            }
            copied.push((*table, rows_copied));
        }
        tx.commit().await.map_err(db_error)?;
        pool.close().await;
        Ok(copied)
    }
}

/// Binds one source column as the target column's type.
fn bind_column(
    values: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>,
    row: &SqliteRow,
    table: &str,
    name: &str,
    data_type: &str,
    new_keys: &HashMap<String, String>,
) -> Result<()> {
    let decode = |e: sqlx::Error| Error::Backend(format!("reading {table}.{name}: {e}"));
    match data_type {
        "bigint" => {
            values.push_bind(row.try_get::<Option<i64>, _>(name).map_err(decode)?);
        }
        "boolean" => {
            values.push_bind(row.try_get::<Option<bool>, _>(name).map_err(decode)?);
        }
        "bytea" => {
            values.push_bind(row.try_get::<Option<Vec<u8>>, _>(name).map_err(decode)?);
        }
        "text" if table == "blobs" && name == "storage_key" => {
            let old: String = row.try_get(name).map_err(decode)?;
            let new = new_keys
                .get(&old)
                .ok_or_else(|| Error::Backend(format!("blob object {old} was not copied to the new store")))?;
            values.push_bind(new.clone());
        }
        "text" => {
            values.push_bind(row.try_get::<Option<String>, _>(name).map_err(decode)?);
        }
        other => return Err(Error::Unsupported(format!("column {table}.{name} has type {other}"))),
    }
    Ok(())
}
