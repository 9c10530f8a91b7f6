//! SQLite-only behaviour: schema versions on a file, the single writer and its lock.

use super::SqliteMetaStore;
use super::lease::{Limit, Within};
use crate::DatabaseLimits;
use crate::testsuite::entry;
use berth_core::Error;
use berth_core::access::Principal;
use berth_core::connection_share::ConnectionShare;
use berth_core::ports::MetaStore;
use berth_oci::RepositoryName;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteMetaStore::open(&dir.path().join("meta.db"), &DatabaseLimits { readers: 2, ..Default::default() })
            .await
            .expect("open");
    crate::testsuite::run(&store).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let name = berth_oci::RepositoryName::parse("a/b").expect("name");
    {
        let store =
            SqliteMetaStore::open(&path, &DatabaseLimits { readers: 1, ..Default::default() }).await.expect("open");
        berth_core::ports::MetaStore::ensure_repository(
            &store,
            &name,
            &berth_core::access::Principal::System,
            &crate::testsuite::entry("create_repository"),
        )
        .await
        .expect("ensure");
        store.close().await;
    }
    let store =
        SqliteMetaStore::open(&path, &DatabaseLimits { readers: 1, ..Default::default() }).await.expect("reopen");
    assert!(berth_core::ports::MetaStore::repository_exists(&store, &name).await.expect("exists"));
    store.close().await;
    assert!(SqliteMetaStore::migrate(&path).await.expect("migrate").is_empty(), "nothing to do");
}

/// A pool on `path` with no schema checks, to set a database up by hand.
async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(super::connect_options(path, std::time::Duration::from_secs(5)))
        .await
        .expect("connect")
}

#[tokio::test]
async fn an_older_schema_is_refused_until_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let pool = raw(&path).await;
    super::MIGRATOR.run_to(1, &pool).await.expect("the first migration only");
    pool.close().await;
    let limits = DatabaseLimits::default();
    let refused = SqliteMetaStore::open(&path, &limits).await.err().expect("an old schema is refused");
    assert!(refused.to_string().contains("berth migrate"), "{refused}");
    let applied = SqliteMetaStore::migrate(&path).await.expect("migrate");
    let expected: Vec<i64> = super::MIGRATOR.iter().map(|m| m.version).filter(|v| *v > 1).collect();
    assert_eq!(applied.len(), expected.len(), "{applied:?}");
    assert!(applied[0].starts_with(&format!("{} ", expected[0])), "{applied:?}");
    SqliteMetaStore::open(&path, &limits).await.expect("migrated").close().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_berth_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let limits = DatabaseLimits::default();
    SqliteMetaStore::open(&path, &limits).await.expect("new").close().await;
    let pool = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&pool)
    .await
    .expect("a future migration");
    pool.close().await;
    let refused = SqliteMetaStore::open(&path, &limits).await.err().expect("refused");
    assert!(refused.to_string().contains("newer Berth"), "{refused}");
}

// How the store takes connections.

async fn open(path: &Path, statement_timeout: Duration) -> SqliteMetaStore {
    SqliteMetaStore::open(path, &DatabaseLimits { readers: 2, statement_timeout, ..Default::default() })
        .await
        .expect("open")
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
