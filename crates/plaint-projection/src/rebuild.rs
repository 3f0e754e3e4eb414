//! Rebuilding the projections from sequence 1 while queries keep being served.
//!
//! The rebuild fills a copy of every projection table in a schema of its own,
//! then, holding the live checkpoint row so no live batch commits meanwhile,
//! catches the copy up to the live checkpoint and moves the tables: the copy
//! into the live schema, the old tables out (and dropped). A live projector
//! whose batch was waiting on the lock commits into the old tables and then
//! meets a checkpoint that does not continue its batch: it reopens its tail
//! at the new checkpoint and applies those events again, into the new tables.

use std::time::{Duration, Instant};

use plaint_bus::{BusError, EventLog, Tail, TailItem};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor, PgPool};
use tokio::sync::mpsc;

use crate::store::{Changes, PROJECTION_TABLES, Store, StoreError};

/// Events per shadow transaction.
const BATCH: usize = 500;
/// How long the tail waits for more events after the first of a batch.
const LINGER: Duration = Duration::from_millis(5);

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The log is unreachable.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database refused a schema change.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The log ended before the rebuild reached the live checkpoint.
    #[error("the log tail ended at {0} before the rebuild caught up")]
    TailEnded(u64),
}

/// Where a rebuild stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Last sequence applied to the copy.
    pub applied: u64,
    /// The log's last sequence when the rebuild started.
    pub target: u64,
    /// Applied events per second so far.
    pub events_per_second: f64,
    /// The tables were swapped in.
    pub done: bool,
}

/// Rebuilds every projection from sequence 1 and swaps the result in;
/// `report` sees progress after every batch. Returns the final progress.
pub async fn rebuild(
    log: &EventLog,
    live: &Store,
    mut report: impl FnMut(Progress),
) -> Result<Progress, RebuildError> {
    let started = Instant::now();
    let live_schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(live.pool())
        .await?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let shadow_schema = format!("plaint_rebuild_{}", &token[..12]);
    let old_schema = format!("plaint_retired_{}", &token[..12]);
    let result = copy_fill_and_swap(
        log,
        live,
        &live_schema,
        &shadow_schema,
        &old_schema,
        started,
        &mut report,
    )
    .await;
    // Whatever happened, leave no copy behind.
    for schema in [&shadow_schema, &old_schema] {
        if let Err(e) = ddl(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(live.pool())
            .await
        {
            tracing::warn!(error = %e, schema, "cannot drop a rebuild schema");
        }
    }
    let progress = result?;
    report(progress);
    Ok(progress)
}

/// Creates the copy's tables, without their secondary indexes: filling
/// tables and then indexing them once is cheaper than keeping every index up
/// to date row by row. Returns the statements that create those indexes.
/// The unique indexes stay, since the upserts need them.
async fn create_copy(pool: &PgPool, live: &str, shadow: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    ddl(format!("CREATE SCHEMA {shadow}"))
        .execute(&mut *tx)
        .await?;
    for table in PROJECTION_TABLES {
        ddl(format!(
            "CREATE TABLE {shadow}.{table} (LIKE {live}.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    let secondary: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(i.relname), pg_get_indexdef(x.indexrelid) \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND NOT x.indisunique AND NOT x.indisprimary",
    )
    .bind(shadow)
    .fetch_all(&mut *tx)
    .await?;
    for (name, _) in &secondary {
        ddl(format!("DROP INDEX {shadow}.{name}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(secondary.into_iter().map(|(_, create)| create).collect())
}

async fn shadow_store(live: &Store, schema: &str) -> Result<Store, sqlx::Error> {
    let options = live.pool().connect_options().as_ref().clone();
    let schema = schema.to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _| {
            let set = ddl(format!("SET search_path TO {schema}"));
            Box::pin(async move {
                conn.execute(set).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(Store::without_migrations(pool))
}

async fn copy_fill_and_swap(
    log: &EventLog,
    live: &Store,
    live_schema: &str,
    shadow_schema: &str,
    old_schema: &str,
    started: Instant,
    report: &mut impl FnMut(Progress),
) -> Result<Progress, RebuildError> {
    let indexes = create_copy(live.pool(), live_schema, shadow_schema).await?;
    let shadow = shadow_store(live, shadow_schema).await?;
    let target = log.last_sequence().await?;
    let mut progress = Progress {
        target,
        ..Progress::default()
    };
    let mut fill = Fill {
        shadow: &shadow,
        batches: ReadAhead::start(log.tail(1).await?),
        first: true,
        started,
    };
    fill.until(target, &mut progress, report).await?;
    for create in indexes {
        // Generated by the server from the copy's own indexes.
        ddl(create).execute(live.pool()).await?;
    }

    // Hold the live checkpoint: no live batch commits until the swap is done.
    let mut tx = live.pool().begin().await?;
    let live_checkpoint = crate::store::lock_checkpoint(&mut tx).await?;
    fill.until(live_checkpoint, &mut progress, report).await?;
    ddl(format!("CREATE SCHEMA {old_schema}"))
        .execute(&mut *tx)
        .await?;
    for table in PROJECTION_TABLES {
        ddl(format!(
            "ALTER TABLE {live_schema}.{table} SET SCHEMA {old_schema}"
        ))
        .execute(&mut *tx)
        .await?;
        ddl(format!(
            "ALTER TABLE {shadow_schema}.{table} SET SCHEMA {live_schema}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    shadow.pool().close().await;
    progress.done = true;
    tracing::info!(
        applied = progress.applied,
        events_per_second = progress.events_per_second,
        "projections rebuilt and swapped in"
    );
    Ok(progress)
}

/// DDL built from names this module makes (generated schema names and the
/// fixed table list), never from input.
fn ddl(sql: String) -> sqlx::RawSql {
    sqlx::raw_sql(AssertSqlSafe(sql))
}

/// Batches read and decoded by a task of their own, up to [`READ_AHEAD`]
/// ahead of the one being applied, so that reading the log overlaps
/// writing the copy.
struct ReadAhead {
    batches: mpsc::Receiver<Result<Vec<TailItem>, BusError>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Batches waiting to be applied.
const READ_AHEAD: usize = 2;

impl ReadAhead {
    fn start(mut tail: Tail) -> Self {
        let (tx, batches) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(async move {
            while let Some(batch) = tail.next_batch(BATCH, LINGER).await {
                let broken = batch.is_err();
                if tx.send(batch).await.is_err() || broken {
                    return;
                }
            }
        });
        Self { batches, reader }
    }

    /// The next batch; `None` when the tail ended.
    async fn next(&mut self) -> Option<Result<Vec<TailItem>, BusError>> {
        self.batches.recv().await
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Applies the tail to the copy.
struct Fill<'a> {
    shadow: &'a Store,
    batches: ReadAhead,
    first: bool,
    started: Instant,
}

impl Fill<'_> {
    /// Applies until the copy's checkpoint reaches `until`.
    async fn until(
        &mut self,
        until: u64,
        progress: &mut Progress,
        report: &mut impl FnMut(Progress),
    ) -> Result<(), RebuildError> {
        while progress.applied < until {
            let items = self
                .batches
                .next()
                .await
                .ok_or(RebuildError::TailEnded(progress.applied))??;
            let applied = self
                .shadow
                .apply_batch_after(&items, self.first, Changes::Skip)
                .await?;
            self.first = false;
            progress.applied = applied.checkpoint;
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            progress.events_per_second = progress.applied as f64 / secs;
            report(*progress);
        }
        Ok(())
    }
}
