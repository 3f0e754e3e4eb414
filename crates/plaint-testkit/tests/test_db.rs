//! The per-test PostgreSQL database: create, use, drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use plaint_testkit::{DEFAULT_TEST_DATABASE_URL, TEST_DB_PREFIX, TestDb};
use sqlx::{Connection, PgConnection};

async fn database_exists(name: &str) -> bool {
    let admin_url = std::env::var("PLAINT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let mut conn = PgConnection::connect(&admin_url).await.unwrap();
    let exists = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
    )
    .bind(name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    exists
}

#[tokio::test]
async fn a_test_db_can_be_created_queried_and_dropped() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    assert!(name.starts_with(TEST_DB_PREFIX));
    assert!(db.url().ends_with(&format!("/{name}")));

    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, name);
    assert!(database_exists(&name).await);

    // The connection is still open: drop_db must terminate it.
    db.drop_db().await;
    assert!(!database_exists(&name).await);
    drop(conn);
}

#[tokio::test]
async fn a_test_db_dropped_without_drop_db_is_removed_too() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_test_dbs_are_distinct() {
    let (a, b) = tokio::join!(TestDb::create(), TestDb::create());
    assert_ne!(a.name(), b.name());
    a.drop_db().await;
    b.drop_db().await;
}
