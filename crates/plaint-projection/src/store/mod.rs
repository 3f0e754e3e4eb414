//! The PostgreSQL projections: the only SQL of the router.
//!
//! - [`apply_batch`](Store::apply_batch): folds a batch of log events into the
//!   read models and advances the checkpoint in the same transaction;
//! - the read side: complaints, lists and histories and the range a policy
//!   simulation replays; queue statistics, CEO budget use and goodwill;
//!   published policies and company settings.
//!
//! Rows carry domain types; turning them into wire messages is the query
//! service's job.

mod apply;
mod company;
mod complaints;
mod erasure;
mod reports;
mod rows;
mod states;
mod summaries;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use plaint_domain::lifecycle::{Complaint, FulfilmentStep, Status};
use plaint_domain::{Category, Channel, ComplaintId, FulfilmentKind, Priority, Route, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;

pub use apply::{AppliedBatch, Changes, ComplaintChange, Span};
pub use company::{CompanySettings, PolicyRow};
pub use complaints::{
    ComplaintDetail, Cursor, CustomerData, CustomerHistory, DecisionRow, ListFilter, ListPage,
    MAX_EXPORT_COMPLAINTS, TimelineRow,
};
pub use reports::{CeoBudgetUse, GoodwillGroup, QueueGroup, QueueStats, SlaAttainment};

/// The embedded migrations (`crates/plaint-router/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The checkpoint row of the projections.
pub const CHECKPOINT: &str = "projections";
/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a list returns.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Most complaints a customer history lists (newest first).
pub const MAX_HISTORY: u32 = 500;

/// How long to wait for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest pause between polls of the checkpoint while waiting for a sequence.
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(50);

/// Why a projection read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not run.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse as the domain type it was written from.
    #[error("stored {what} cannot be read: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The batch does not continue from the checkpoint: events in between
    /// were never applied here (the tables were swapped by a rebuild, or the
    /// reader skipped ahead). Reopen the tail at the checkpoint.
    #[error("batch starts at sequence {got}, the checkpoint is {checkpoint}")]
    Gap {
        /// The last sequence applied to the tables.
        checkpoint: u64,
        /// The first sequence of the batch beyond it.
        got: u64,
    },
    /// A rebuild swapped new tables in since this store's last batch: events
    /// that batch carried ahead of its checkpoint are not in them. Reopen the
    /// tail at the checkpoint.
    #[error("the projection tables were swapped by a rebuild")]
    Swapped,
}

impl StoreError {
    /// A unique or primary-key constraint refused the write (SQLSTATE 23505).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(e) if is_unique_violation(e))
    }

    fn corrupt(what: &'static str, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Whether a database error is a unique or primary-key violation (SQLSTATE 23505).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "23505")
}

/// The projections database: a connection pool, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    /// The highest checkpoint this process has seen, so local waiters wake at once.
    progress: Arc<watch::Sender<u64>>,
    /// The sequence a query of this process waits for, 0 when none: the
    /// projector holds no event up to it (see `pairing`).
    wanted: Arc<AtomicU64>,
    /// The `complaints` table this store last applied a batch to, 0 before
    /// the first: a rebuild swapping the tables in is noticed by the next.
    applied_table: Arc<AtomicI64>,
    /// Complaint states this process wrote last.
    states: Arc<states::StateCache>,
    /// The last batch's buffers, kept for the next (batches are applied
    /// one at a time; a second one at once builds its own).
    spare: Arc<std::sync::Mutex<Option<rows::Writes>>>,
}

impl Store {
    /// Connects and runs the migrations (under sqlx's advisory lock, so
    /// replicas starting together do not race), committing asynchronously
    /// (see [`Store::connect_with`]).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::connect_with(url, max_connections, true).await
    }

    /// Like [`Store::connect`]; `async_commit` sets `synchronous_commit=off`
    /// on every connection.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        async_commit: bool,
    ) -> Result<Store, StoreError> {
        let mut options: PgConnectOptions = url.parse()?;
        if async_commit {
            // Everything this pool writes is derived from the log, with the
            // checkpoint in the same transaction. A server crash may lose the
            // last commits, but only whole ones, checkpoint included, and the
            // projector applies those events again. So commits need not wait
            // for the WAL flush.
            options = options.options([("synchronous_commit", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Store::with_pool(pool).await
    }

    /// Wraps an existing pool and runs the migrations.
    pub async fn with_pool(pool: PgPool) -> Result<Store, StoreError> {
        MIGRATOR.run(&pool).await?;
        Ok(Store::without_migrations(pool))
    }

    /// Wraps a pool whose tables exist already (a rebuild's copy).
    pub fn without_migrations(pool: PgPool) -> Store {
        Store {
            pool,
            progress: Arc::new(watch::Sender::new(0)),
            wanted: Arc::default(),
            applied_table: Arc::default(),
            states: Arc::default(),
            spare: Arc::default(),
        }
    }

    /// The buffers of a batch: the last one's, if nobody holds them.
    fn spare_writes(&self) -> rows::Writes {
        self.spare
            .try_lock()
            .ok()
            .and_then(|mut spare| spare.take())
            .unwrap_or_default()
    }

    /// Keeps a batch's buffers for the next, unless an outsized batch (long
    /// histories) grew them past what a usual one needs.
    fn keep_writes(&self, mut writes: rows::Writes) {
        /// A batch of 500 fresh complaints takes about 1.5 MiB.
        const MAX_KEPT: usize = 8 << 20;
        if writes.capacity() > MAX_KEPT {
            return;
        }
        // Kept empty: nothing of this batch can reach the next.
        writes.clear();
        if let Ok(mut spare) = self.spare.try_lock() {
            *spare = Some(writes);
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The last log sequence the projections have applied (0 before any).
    pub async fn projected_sequence(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_sequence FROM checkpoint WHERE name = $1")
                .bind(CHECKPOINT)
                .fetch_optional(&self.pool)
                .await?;
        let seq = seq.map_or(0, from_db_seq);
        self.observe(seq);
        Ok(seq)
    }

    /// Waits until the projections have applied `sequence`, at most `timeout`.
    /// `true` when reached. Another replica's projector may be the one
    /// applying, so the checkpoint row is polled as well as local progress.
    pub async fn wait_for_sequence(
        &self,
        sequence: u64,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.wanted.fetch_max(sequence, Ordering::Relaxed);
        let reached = self.wait_for(sequence, deadline).await;
        // Another waiter's wish may have replaced this one; only ours goes.
        let _ = self
            .wanted
            .compare_exchange(sequence, 0, Ordering::Relaxed, Ordering::Relaxed);
        reached
    }

    async fn wait_for(
        &self,
        sequence: u64,
        deadline: tokio::time::Instant,
    ) -> Result<bool, StoreError> {
        let mut local = self.progress.subscribe();
        let mut pause = POLL_MIN;
        loop {
            if *local.borrow_and_update() >= sequence
                || self.projected_sequence().await? >= sequence
            {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let nap = pause.min(deadline - now);
            tokio::select! {
                _ = local.changed() => {}
                () = tokio::time::sleep(nap) => {}
            }
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// The sequence a query of this process waits for, 0 when none.
    pub fn wanted_sequence(&self) -> u64 {
        self.wanted.load(Ordering::Relaxed)
    }

    /// A read-only transaction over one snapshot.
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Records a checkpoint seen or written by this process.
    fn observe(&self, sequence: u64) {
        self.progress.send_if_modified(|seen| {
            let newer = sequence > *seen;
            if newer {
                *seen = sequence;
            }
            newer
        });
    }
}

/// Every projection table, in creation order.
pub const PROJECTION_TABLES: [&str; 10] = [
    "checkpoint",
    "complaints",
    "timeline",
    "ceo_slots",
    "policies",
    "company",
    "queue_counts",
    "complaint_durations",
    "goodwill_days",
    "sla_attainment",
];

/// Locks the checkpoint row for the rest of `tx` (creating it when missing)
/// and returns it: live batches wait until `tx` ends.
pub async fn lock_checkpoint(tx: &mut Transaction<'static, Postgres>) -> Result<u64, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO checkpoint (name, last_sequence) VALUES ($1, 0) \
         ON CONFLICT (name) DO UPDATE SET last_sequence = checkpoint.last_sequence \
         RETURNING last_sequence",
    )
    .bind(CHECKPOINT)
    .fetch_one(&mut **tx)
    .await?;
    Ok(from_db_seq(seq))
}

/// The checkpoint as a transaction sees it.
async fn checkpoint_in(tx: &mut Transaction<'static, Postgres>) -> Result<u64, StoreError> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT last_sequence FROM checkpoint WHERE name = $1")
            .bind(CHECKPOINT)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(seq.map_or(0, from_db_seq))
}

/// A complaint as the list and detail views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    /// Its id.
    pub complaint_id: ComplaintId,
    /// The system it came from.
    pub source_system: String,
    /// That system's ticket id.
    pub external_ticket_id: String,
    /// The customer.
    pub customer_id: String,
    /// The customer's segment.
    pub segment: String,
    /// Where they complained.
    pub channel: Channel,
    /// What about.
    pub category: Category,
    /// Where it is in its life.
    pub status: Status,
    /// The route in force.
    pub route: Option<Route>,
    /// The item handling the decision asked for.
    pub fulfilment: Option<FulfilmentKind>,
    /// The item-handling step reached.
    pub fulfilment_step: Option<FulfilmentStep>,
    /// Queue order of the decision in force.
    pub priority: Option<Priority>,
    /// Who owns it.
    pub assignee: Option<String>,
    /// The last satisfaction score.
    pub satisfaction: Option<u32>,
    /// When it was received.
    pub received_at: Timestamp,
    /// When it was first routed.
    pub routed_at: Option<Timestamp>,
    /// When it was last resolved.
    pub resolved_at: Option<Timestamp>,
    /// When a decision first sent it to the CEO.
    pub ceo_engaged_at: Option<Timestamp>,
    /// The last log sequence applied to it.
    pub last_sequence: u64,
}

/// Reads a complaint's stored `state` document.
pub(crate) fn parse_state(raw: &str) -> Result<Complaint, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::corrupt("complaint state", e))
}

impl ComplaintRow {
    /// The row of a complaint state.
    pub fn of(c: &Complaint, ceo_engaged_at: Option<Timestamp>, last_sequence: u64) -> Self {
        let f = &c.facts;
        ComplaintRow {
            complaint_id: c.id,
            source_system: f.source_system.to_string(),
            external_ticket_id: f.external_ticket_id.to_string(),
            customer_id: f.customer.id.to_string(),
            segment: f.customer.segment.to_string(),
            channel: f.channel,
            category: f.category,
            status: c.status,
            route: c.route(),
            fulfilment: c.fulfilment.map(|p| p.kind),
            fulfilment_step: c.fulfilment.map(|p| p.step),
            priority: c.priority(),
            assignee: c.assignee.as_ref().map(ToString::to_string),
            satisfaction: c.satisfaction.map(|s| s.get()),
            received_at: c.received_at,
            routed_at: c.routed_at,
            resolved_at: c.resolved_at,
            ceo_engaged_at,
            last_sequence,
        }
    }

    /// Whether the CEO ever engaged with it.
    pub fn ceo_engaged(&self) -> bool {
        self.ceo_engaged_at.is_some()
    }
}

/// The stable name of a domain enum, as stored in text columns (its serde name,
/// which is also its wire name).
pub fn name_of<T: Serialize>(value: &T) -> String {
    // Straight to text (no `Value` in between): this runs for six columns
    // of every row the projector writes.
    match serde_json::to_string(value) {
        Ok(mut s) if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => {
            s.pop();
            s.remove(0);
            s
        }
        Ok(other) => other,
        Err(_) => String::new(),
    }
}

/// Parses a name written by [`name_of`].
pub(crate) fn parse_name<T: DeserializeOwned>(
    what: &'static str,
    raw: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|e| StoreError::corrupt(what, e))
}

/// A log sequence as a `bigint`; sequences never come near `i64::MAX`.
pub(crate) fn to_db_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A `bigint` column back to a log sequence.
pub(crate) fn from_db_seq(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}
