//! The raw write limits of PostgreSQL for a projection-sized row, so that
//! the router's figures can be read as ratios to them.
//!
//! The upserts go to a table of the bench's own, created and dropped around
//! each measurement. The bench does not use the router's code, so it cannot
//! run the router's migrations; it creates the table as those migrations
//! leave `complaints` instead: the same columns and types (the state
//! document as text, compressed with lz4 where the server has it), the same
//! primary key and indexes, and the same `UNNEST` upsert the projector
//! sends. What PostgreSQL does per row (parse, compress, write the heap and
//! six indexes, commit) is then what it does for the projection, which is
//! what makes the ratio fair. A change to the `complaints` table or to the
//! projector's upsert belongs here too.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use uuid::Uuid;

/// Creates `table` shaped as the router's `complaints`. Public so that the
/// workspace's tests can hold it to the router's migrations.
pub fn complaints_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (
             complaint_id       uuid    PRIMARY KEY,
             source_system      text    NOT NULL,
             external_ticket_id text    NOT NULL,
             customer_id        text    NOT NULL,
             segment            text    NOT NULL,
             channel            text    NOT NULL,
             category           text    NOT NULL,
             status             text    NOT NULL,
             route              text,
             fulfilment         text,
             fulfilment_step    text,
             priority           text,
             assignee           text,
             satisfaction       integer,
             received_at        bigint  NOT NULL,
             routed_at          bigint,
             resolved_at        bigint,
             ceo_engaged_at     bigint,
             ceo_engaged        boolean GENERATED ALWAYS AS (ceo_engaged_at IS NOT NULL) STORED,
             last_sequence      bigint  NOT NULL,
             state              text    NOT NULL,
             customer_ref       text    NOT NULL
         );
         CREATE INDEX {table}_received ON {table} (received_at DESC, complaint_id DESC);
         CREATE INDEX {table}_route ON {table} (route, received_at DESC, complaint_id DESC);
         CREATE INDEX {table}_status ON {table} (status, received_at DESC, complaint_id DESC);
         CREATE INDEX {table}_channel ON {table} (channel, received_at DESC, complaint_id DESC);
         CREATE INDEX {table}_customer ON {table} (customer_ref, received_at DESC, complaint_id DESC);
         CREATE INDEX {table}_resolved ON {table} (resolved_at) WHERE status = 'RESOLVED';
         CREATE INDEX {table}_ceo_engaged ON {table} (ceo_engaged_at) WHERE ceo_engaged_at IS NOT NULL;
         DO $$
         BEGIN
             ALTER TABLE {table} ALTER COLUMN state SET COMPRESSION lz4;
         EXCEPTION WHEN feature_not_supported THEN
             NULL;
         END
         $$;"
    )
}

/// The projector's upsert of a batch of complaint rows, into `table`.
fn upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (complaint_id, source_system, external_ticket_id, customer_id, \
             segment, channel, category, status, route, fulfilment, fulfilment_step, priority, \
             assignee, satisfaction, received_at, routed_at, resolved_at, ceo_engaged_at, \
             last_sequence, state, customer_ref) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::int[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], \
             $19::bigint[], $20::text[], $21::text[]) \
         ON CONFLICT (complaint_id) DO UPDATE SET \
             status = EXCLUDED.status, route = EXCLUDED.route, fulfilment = EXCLUDED.fulfilment, \
             fulfilment_step = EXCLUDED.fulfilment_step, priority = EXCLUDED.priority, \
             assignee = EXCLUDED.assignee, satisfaction = EXCLUDED.satisfaction, \
             routed_at = EXCLUDED.routed_at, resolved_at = EXCLUDED.resolved_at, \
             ceo_engaged_at = EXCLUDED.ceo_engaged_at, last_sequence = EXCLUDED.last_sequence, \
             state = EXCLUDED.state \
         WHERE {table}.last_sequence < EXCLUDED.last_sequence"
    )
}

/// Rows upserted in how long.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Upserts {
    /// Rows written.
    pub(crate) rows: u64,
    /// Wall time, first statement to last commit.
    pub(crate) elapsed: Duration,
}

impl Upserts {
    /// Rows per second.
    pub(crate) fn rate(&self) -> f64 {
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
        .bind(&c.text)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Upserts projection-sized complaint rows over one connection, `batch` rows
/// per transaction (1 = one row per transaction), until `duration` has passed
/// or `max` rows were written, into a fresh table shaped as `complaints` in
/// the database at `url`, dropped afterwards. Building the rows is not timed.
pub(crate) async fn upsert_complaints(
    url: &str,
    batch: u64,
    duration: Duration,
    max: u64,
) -> Result<Upserts, sqlx::Error> {
    let pool: PgPool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let table = format!("calib_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(complaints_table_sql(&table)))
        .execute(&pool)
        .await?;
    let result = async {
        let mut conn = pool.acquire().await?;
        let sql = upsert_sql(&table);
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
        Ok::<Upserts, sqlx::Error>(Upserts { rows, elapsed })
    }
    .await;
    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&pool)
        .await;
    pool.close().await;
    result
}
