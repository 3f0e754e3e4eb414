//! The per-test PostgreSQL: start, crash, restart with committed data intact, cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use plaint_testkit::PgServer;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn a_crashed_server_restarts_on_its_port_with_its_committed_data() {
    let mut pg = PgServer::start();
    let dir = pg.data_dir();
    let port = pg.port();
    let first_pid = pg.pid().expect("running");
    assert!(dir.join("PG_VERSION").is_file());

    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    pg.crash();
    assert!(!pg.is_running());
    assert!(pg.pid().is_none());
    assert!(
        PgConnection::connect(&pg.url()).await.is_err(),
        "it is down"
    );

    pg.restart();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.starts(), 2);
    assert_ne!(pg.pid().expect("running again"), first_pid);
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2, "committed rows survive the crash");
    conn.close().await.unwrap();

    drop(pg);
    assert!(!dir.exists(), "the cluster's directory is removed");
}
