//! The bench measures PostgreSQL on a table of its own, since it runs no
//! router code: that table must stay what the router's migrations make of
//! `complaints`, or the calibration measures other work than the projection.

use sqlx::{AssertSqlSafe, PgPool, Row};

/// Columns (name, type, nullability, generation, compression) and index
/// definitions of `table`, with its name replaced by `T`.
async fn shape(pool: &PgPool, table: &str) -> (Vec<String>, Vec<String>) {
    let columns = sqlx::query(
        "SELECT c.column_name, c.data_type, c.is_nullable, c.is_generated,
                coalesce(c.generation_expression, ''), coalesce(a.attcompression::text, '')
         FROM information_schema.columns c
         JOIN pg_attribute a
           ON a.attrelid = c.table_name::regclass AND a.attname = c.column_name
         WHERE c.table_schema = 'public' AND c.table_name = $1
         ORDER BY c.ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (0..6)
            .map(|i| r.get::<String, _>(i))
            .collect::<Vec<_>>()
            .join(" ")
    })
    .collect();
    let mut indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|d: String| d.replace(table, "T"))
    .collect();
    indexes.sort();
    (columns, indexes)
}

#[tokio::test]
async fn the_bench_calibrates_postgres_on_a_table_shaped_as_complaints() {
    let db = plaint_testkit::TestDb::create().await;
    let pool = PgPool::connect(db.url()).await.unwrap();
    plaint_projection::store::MIGRATOR.run(&pool).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(plaint_bench::complaints_table_sql(
        "bench_copy",
    )))
    .execute(&pool)
    .await
    .unwrap();

    let live = shape(&pool, "complaints").await;
    let copy = shape(&pool, "bench_copy").await;
    assert_eq!(live.0.len(), 22, "complaints has 22 columns: {:?}", live.0);
    assert_eq!(live.1.len(), 8, "complaints has 8 indexes: {:?}", live.1);
    assert_eq!(copy, live);

    pool.close().await;
    db.drop_db().await;
}
