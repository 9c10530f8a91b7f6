//! PostgreSQL-only behaviour: schema versions, the writer lock, change notifications.

use std::time::Duration;

use berth_core::Error;
use berth_core::access::Principal;
use berth_core::ports::{Change, MetaStore};
use berth_oci::RepositoryName;
use sqlx::{Connection, Executor, PgConnection};

use super::{MIGRATOR, PostgresMetaStore, TestDatabase};
use crate::DatabaseLimits;
use crate::testsuite::entry;

async fn open(db: &TestDatabase) -> PostgresMetaStore {
    PostgresMetaStore::open(&db.url, &DatabaseLimits { readers: 2, writers: 2, ..Default::default() })
        .await
        .expect("open")
}

#[tokio::test]
async fn conformance() {
    let Some(db) = TestDatabase::create().await else { return };
    let store = open(&db).await;
    crate::testsuite::run(&store).await;
    store.close().await;
}

#[tokio::test]
async fn an_older_schema_is_refused_until_migrated_and_a_newer_one_always() {
    let Some(db) = TestDatabase::create().await else { return };
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    MIGRATOR.run_to(1, &mut conn).await.expect("the first migration only");
    let limits = DatabaseLimits::default();
    let refused = PostgresMetaStore::open(&db.url, &limits).await.err().expect("an old schema is refused");
    assert!(refused.to_string().contains("berth migrate"), "{refused}");
    let applied = PostgresMetaStore::migrate(&db.url).await.expect("migrate");
    assert_eq!(applied.len(), MIGRATOR.iter().count() - 1, "{applied:?}");
    assert!(PostgresMetaStore::migrate(&db.url).await.expect("again").is_empty(), "nothing left to do");
    PostgresMetaStore::open(&db.url, &limits).await.expect("migrated").close().await;

    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from the future', TRUE, '\\x00', 0)",
    )
    .await
    .expect("a future migration");
    let refused = PostgresMetaStore::open(&db.url, &limits).await.err().expect("refused");
    assert!(refused.to_string().contains("newer Berth"), "{refused}");
    let _ = conn.close().await;
}

#[tokio::test]
async fn a_write_waits_for_the_writer_lock_at_most_the_timeout() {
    let Some(db) = TestDatabase::create().await else { return };
    let limits = DatabaseLimits { statement_timeout: Duration::from_millis(500), ..Default::default() };
    let store = PostgresMetaStore::open(&db.url, &limits).await.expect("open");
    let name = RepositoryName::parse("a/b").expect("name");
    // Another instance's write transaction holds the writer lock.
    let mut elsewhere = PgConnection::connect(&db.url).await.expect("connect");
    elsewhere.execute(super::BEGIN_WRITE).await.expect("take the writer lock");
    let refused = store.ensure_repository(&name, &Principal::System, &entry("create_repository")).await;
    match refused {
        Err(Error::Unavailable { reason, .. }) => assert!(reason.contains("lock timeout"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(!store.repository_exists(&name).await.expect("reads go on"));
    elsewhere.execute("ROLLBACK").await.expect("release");
    assert!(store.ensure_repository(&name, &Principal::System, &entry("create_repository")).await.expect("free"));
    store.close().await;
}

#[tokio::test]
async fn changes_reach_every_other_subscriber_of_the_database() {
    let Some(db) = TestDatabase::create().await else { return };
    let (one, two) = (open(&db).await, open(&db).await);
    let mut heard_by_two = two.subscribe_changes().await.expect("subscribe").expect("PostgreSQL has a feed");
    let mut heard_by_one = one.subscribe_changes().await.expect("subscribe").expect("PostgreSQL has a feed");
    let change = Change::Repository("org/app".into());
    one.publish_change(&change).await.expect("publish");
    two.publish_change(&Change::Credentials).await.expect("publish");
    one.publish_change(&Change::Access).await.expect("publish");
    // Each hears the other's changes, in order, and not its own.
    assert_eq!(heard_by_two.recv().await, Some(change));
    assert_eq!(heard_by_two.recv().await, Some(Change::Access));
    assert_eq!(heard_by_one.recv().await, Some(Change::Credentials));
    // Published after one's own Access: one would have heard that first.
    let marker = Change::Package("org/marker".into());
    two.publish_change(&marker).await.expect("publish");
    assert_eq!(heard_by_one.recv().await, Some(marker), "one does not hear its own changes");
    one.close().await;
    two.close().await;
}
