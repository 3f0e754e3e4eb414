//! A fresh PostgreSQL database per test.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The server [`TestDb`] uses when `PLAINT_TEST_DATABASE_URL` is unset.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The name prefix of every test database; `scripts/test.sh` drops stale ones by it.
pub const TEST_DB_PREFIX: &str = "plaint_test_";

/// A database of its own for one test, named `plaint_test_<uuid>`.
///
/// It is created through the server at `PLAINT_TEST_DATABASE_URL` (default
/// [`DEFAULT_TEST_DATABASE_URL`]), which needs the right to create databases. Nothing is in
/// it: the test runs the migrations it needs.
///
/// Cleanup: end the test with [`drop_db`](Self::drop_db). A `TestDb` dropped without it is
/// dropped from `Drop` (blocking, best effort) unless the test is panicking: then the database
/// is kept for inspection, its name is printed, and `scripts/test.sh` removes it on a later
/// run once it is an hour old.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    url: String,
    name: String,
    dropped: bool,
}

impl TestDb {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    ///
    /// When `PLAINT_TEST_DATABASE_URL` is not a URL or the server refuses.
    pub async fn create() -> Self {
        let admin_url = std::env::var("PLAINT_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned());
        let name = format!("{TEST_DB_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("PLAINT_TEST_DATABASE_URL {admin_url:?} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));

        let result = async {
            let mut conn = PgConnection::connect(&admin_url).await?;
            // The name is ours (prefix + hex), so it needs no escaping.
            sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            panic!("cannot create test database {name} via {admin_url}: {e}");
        }

        Self {
            admin_url,
            url: url.into(),
            name,
            dropped: false,
        }
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name, `plaint_test_<32 hex digits>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, terminating any connections still open to it.
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub async fn drop_db(mut self) {
        if let Err(e) = drop_database(&self.admin_url, &self.name).await {
            panic!("cannot drop test database {}: {e}", self.name);
        }
        self.dropped = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "plaint-testkit: keeping test database {} for inspection: {}",
                self.name, self.url
            );
            return;
        }
        // Drop cannot await, and blocking inside the test's runtime could stall it, so the
        // drop runs on a thread with a runtime of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_database(&admin_url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "plaint-testkit: cannot drop test database {}: {e}",
                self.name
            ),
            Err(_) => eprintln!(
                "plaint-testkit: dropping test database {} panicked",
                self.name
            ),
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    // WITH (FORCE) (PostgreSQL 13+) terminates the connections a test left open.
    sqlx::raw_sql(AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await
}
