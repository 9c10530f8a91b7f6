//! Throwaway PostgreSQL databases for tests: one per test, dropped when it ends.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

/// The server tests use unless `BERTH_TEST_POSTGRES` names another (a URL of a database
/// the test user may connect to and create databases from).
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database created for one test on the test server; dropped (with its connections) when
/// this is dropped.
pub struct TestDatabase {
    /// The database's URL, for the store or a `berth serve` under test.
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database. `None`, after saying why, when no PostgreSQL answers and the
    /// tests are not running in CI; in CI (`CI=true`) a missing server fails the test.
    pub async fn create() -> Option<TestDatabase> {
        let server = std::env::var("BERTH_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let mut admin = match PgConnection::connect(&server).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipping: no PostgreSQL at {server} ({e}); set BERTH_TEST_POSTGRES or run with CI=true");
                return None;
            }
            Err(e) => panic!("PostgreSQL at {server} is needed in CI: {e}"),
        };
        drop_abandoned(&mut admin).await;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("berth_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create a test database");
        let _ = admin.close().await;
        let base = server.split('?').next().unwrap_or(&server);
        let url = match base.rfind('/') {
            Some(slash) if slash > base.find("//").map_or(0, |i| i + 1) => format!("{}/{name}", &base[..slash]),
            _ => format!("{base}/{name}"),
        };
        Some(TestDatabase { url, server, name })
    }
}

/// Drops the test databases of test processes that are gone: a database a process kept for
/// its whole life (or one whose test crashed) is never dropped by its owner.
async fn drop_abandoned(admin: &mut PgConnection) {
    let Ok(names) =
        sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database WHERE datname LIKE 'berth\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
    else {
        return;
    };
    for name in names {
        let owner = name.trim_start_matches("berth_test_").split('_').next().and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any async context the test may have had: use a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await.ok()?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
