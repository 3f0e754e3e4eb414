//! Calibration primitives for `plaint-ctl bench`: a database of the bench's
//! own, and the raw write limits of PostgreSQL for a projection-sized row, so
//! that the router's figures can be read as ratios to them.
//!
//! The upserts go to a copy of the `complaints` table (same columns, same
//! indexes, same `UNNEST` upsert as the projector's), created and dropped
//! around each measurement.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// A database created for one bench run, dropped by [`BenchDatabase::drop_db`].
#[derive(Debug, Clone)]
pub struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> Result<String, StoreError> {
    let bad = || StoreError::Corrupt {
        what: "database URL",
        reason: format!("{url:?} is not a postgres://host/database URL"),
    };
    let after_scheme = url.find("://").ok_or_else(bad)? + 3;
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |q| &tail[q..]);
    Ok(format!("{}{authority}/{name}{query}", &url[..after_scheme]))
}

impl BenchDatabase {
    /// Creates an empty database `<prefix>_<hex>` through the server at
    /// `admin_url` (a URL of any existing database there, e.g. `postgres`).
    pub async fn create(admin_url: &str, prefix: &str) -> Result<Self, StoreError> {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Corrupt {
                what: "database name",
                reason: format!("{name:?} must be lower-case letters, digits and '_'"),
            });
        }
        let url = with_database(admin_url, &name)?;
        let mut conn = PgConnection::connect(admin_url).await?;
        // The name was checked above: it needs no quoting beyond this.
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops it, terminating connections still open to it.
    pub async fn drop_db(self) -> Result<(), StoreError> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

/// Rows upserted in how long.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Upserts {
    /// Rows written.
    pub rows: u64,
    /// Wall time, first statement to last commit.
    pub elapsed: Duration,
}

impl Upserts {
    /// Rows per second.
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A complaint row's `state` document, about the size the projector stores
/// for a routed complaint (facts, visibility and a decision with its
/// contributions and gates).
fn state_json(i: u64) -> serde_json::Value {
    let gates: Vec<serde_json::Value> =
        ["CLIMATE", "STANCE", "COOLDOWN", "SEGMENT_SHARE", "BUDGET"]
            .iter()
            .map(|g| {
                serde_json::json!({"gate": g, "observed": i % 97, "limit": 80, "passed": i.is_multiple_of(2),
                "sentence": "the score 35 is below the climate threshold 80 (neutral)"})
            })
            .collect();
    let contributions: Vec<serde_json::Value> =
        ["channel", "audience_reach", "shares", "customer_value"]
            .iter()
            .map(|f| serde_json::json!({"factor": f, "observed": "email, reach 3", "points": 5}))
            .collect();
    serde_json::json!({
        "facts": {
            "source_system": "bench", "external_ticket_id": format!("B-{i:08}"),
            "customer": {"id": format!("bench-c{:05}", i % 5000), "segment": "consumer",
                "tier": "SILVER", "lifetime_value_cents": 125_000 + i, "churn_risk_pct": 30},
            "channel": "EMAIL", "category": "PRODUCT_DEFECT", "product_idea": false,
            "item_sku": "SHOE-39-RED", "summary": "The heel came off my new shoes on day two."
        },
        "visibility": {"audience_reach": 3, "shares": 0, "media_attention": false},
        "status": "ROUTED",
        "decision": {"route": "REVERSE_LOGISTICS", "fulfilment": "REPAIR", "priority": "P3",
            "score": 35, "ceo_threshold": 80, "policy_version": 1, "climate": "NEUTRAL",
            "stance": "NEUTRAL", "contributions": contributions, "gates": gates,
            "why_not": [{"route": "CEO", "reason": "the climate gate failed"}]}
    })
}

/// One batch of complaint rows as the projector writes them, column by column.
#[derive(Debug, Default)]
struct Columns {
    id: Vec<Uuid>,
    text: Vec<String>,
    opt: Vec<Option<String>>,
    int: Vec<Option<i32>>,
    at: Vec<i64>,
    opt_at: Vec<Option<i64>>,
    /// JSON text, bound as the projector binds it.
    state: Vec<String>,
}

impl Columns {
    fn of(first: u64, n: u64) -> Self {
        let mut c = Columns::default();
        for i in first..first + n {
            c.id.push(Uuid::new_v4());
            c.text.push(format!("bench-{i}"));
            c.opt.push(Some("REVERSE_LOGISTICS".to_owned()));
            c.int.push(None);
            c.at.push(1_700_000_000_000 + i64::try_from(i).unwrap_or(0));
            c.opt_at.push(None);
            c.state.push(state_json(i).to_string());
        }
        c
    }
}

async fn upsert(conn: &mut PgConnection, sql: &str, c: &Columns) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .bind(&c.id)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.text)
        .bind(&c.opt)
        .bind(&c.opt)
        .bind(&c.opt)
        .bind(&c.opt)
        .bind(&c.opt)
        .bind(&c.int)
        .bind(&c.at)
        .bind(&c.opt_at)
        .bind(&c.opt_at)
        .bind(&c.opt_at)
        .bind(&c.at)
        .bind(&c.state)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Upserts projection-sized complaint rows over one connection, `batch` rows
/// per transaction (1 = one row per transaction), until `duration` has passed
/// or `max` rows were written, into a fresh copy of `complaints` in the
/// database at `url` (migrated first when needed), dropped afterwards.
/// Building the rows is not timed.
pub async fn upsert_complaints(
    url: &str,
    batch: u64,
    duration: Duration,
    max: u64,
) -> Result<Upserts, StoreError> {
    let pool: PgPool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    Store::with_pool(pool.clone()).await?;
    let table = format!("calib_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE {table} (LIKE complaints INCLUDING ALL)"
    )))
    .execute(&pool)
    .await?;
    let result = async {
        let mut conn = pool.acquire().await?;
        let sql = crate::store::complaint_upsert_sql(&table);
        let batch = batch.max(1);
        // Rows are built ahead, a second's worth at a time, outside the timing.
        let mut rows = 0u64;
        let mut elapsed = Duration::ZERO;
        while rows < max && elapsed < duration {
            let chunk: Vec<Columns> = (0..(2000 / batch).max(1))
                .map(|k| Columns::of(rows + k * batch, batch))
                .collect();
            for c in &chunk {
                if rows >= max || elapsed >= duration {
                    break;
                }
                let t = Instant::now();
                upsert(&mut conn, &sql, c).await?;
                elapsed += t.elapsed();
                rows += batch;
            }
        }
        Ok::<Upserts, StoreError>(Upserts { rows, elapsed })
    }
    .await;
    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&pool)
        .await;
    pool.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/b1",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/b1?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/b1"),
        ];
        for (from, to) in cases {
            assert_eq!(with_database(from, "b1").ok().as_deref(), Some(to));
        }
        assert!(with_database("nonsense", "b1").is_err());
    }
}
