//! The projector: follows the log from the projections' checkpoint and applies
//! it in batches, each batch and its checkpoint in one transaction.
//!
//! The position lives in PostgreSQL, not in a consumer, so after any failure
//! (NATS or PostgreSQL restarting, a broken tail) the projector simply reopens
//! the tail at the checkpoint; batches already applied are skipped by the store.

use std::time::{Duration, Instant, SystemTime};

use plaint_bus::{Backoff, BusError, EventLog, RetryPolicy};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::pairing::{Pending, Ready};
use crate::store::{Changes, ComplaintChange, Span, Store, StoreError};

/// How long a batch waits for more events after its first. Short, because
/// at low load every complaint waits it out before it is visible; under load
/// batches fill anyway from what arrives while the previous one is written.
pub const LINGER: Duration = Duration::from_millis(1);
/// Events the projector reads ahead while first events are held, in
/// batches: enough for the router's queue at full load, when a decision
/// comes a few thousand events after its complaint.
pub const HELD_BATCHES: usize = 8;
/// How soon a query waiting for a held event has it released.
pub const WANTED_CHECK: Duration = Duration::from_millis(10);
/// How long the tail may stay silent before the projector checks whether the
/// log has moved on without it.
pub const STALL_CHECK: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the tail ended")]
    TailEnded,
    #[error("the tail is silent while the log has reached sequence {0}")]
    Stalled(u64),
    #[error(
        "the projections are at log sequence {projected} but the log ends at {last}: they \
         were made from another log (a stream deleted and made again, or another \
         PLAINT_STREAM). Give the router an empty database, or drop this one, and it \
         projects this log from the start"
    )]
    AheadOfLog { projected: u64, last: u64 },
}

/// Projects the log into `store` until `stop` is cancelled, broadcasting an
/// update for every complaint event applied (to the watchers subscribed when
/// its batch began). A batch being written when `stop` comes is committed
/// before returning; events read but not yet written, held ones included,
/// are read again from the checkpoint by the next start. Resumes from the
/// checkpoint after each interruption, pausing by `retry`; `Err` once
/// interruptions have followed one another for longer than its budget.
pub async fn run(
    log: EventLog,
    store: Store,
    batch: usize,
    hold: Duration,
    retry: RetryPolicy,
    updates: broadcast::Sender<ComplaintChange>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let batch = batch.max(1);
    let mut backoff = Backoff::new(retry);
    while !stop.is_cancelled() {
        let e = match follow(&log, &store, batch, hold, &mut backoff, &updates, &stop).await {
            Ok(()) => break,
            // Resuming cannot help: the projections belong to another log.
            Err(e @ Interrupted::AheadOfLog { .. }) => return Err(e.into()),
            Err(e) => e,
        };
        let pause = match backoff.failed() {
            Ok(pause) => pause,
            Err(spent) => {
                return Err(
                    anyhow::Error::new(e).context(format!("the projector gave up: {spent}"))
                );
            }
        };
        tracing::warn!(error = %e, ?pause, "projection interrupted; resuming from the checkpoint");
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("projector stopped");
    Ok(())
}

/// Follows the log from the checkpoint; `Ok` only when stopped.
async fn follow(
    log: &EventLog,
    store: &Store,
    batch: usize,
    hold: Duration,
    backoff: &mut Backoff,
    updates: &broadcast::Sender<ComplaintChange>,
    stop: &CancellationToken,
) -> Result<(), Interrupted> {
    let projected = store.projected_sequence().await?;
    // The log only grows: a checkpoint beyond its end was made from another
    // log, and following this one from there would skip its first events.
    let last = log.last_sequence().await?;
    if projected > last {
        return Err(Interrupted::AheadOfLog { projected, last });
    }
    let from = projected + 1;
    let mut tail = tokio::select! {
        () = stop.cancelled() => return Ok(()),
        tail = log.tail(from) => tail?,
    };
    tracing::info!(from, "projecting the log");
    backoff.succeeded();
    let mut first = true;
    let mut pending = Pending::new(hold);
    let room_for = batch.saturating_mul(HELD_BATCHES);
    loop {
        // While events are held, look now and then whether a query came to
        // wait for one of them.
        let wait = pending
            .hold_left(Instant::now(), now())
            .map_or(STALL_CHECK, |left| left.min(WANTED_CHECK));
        let room = room_for.saturating_sub(pending.len()).clamp(1, batch);
        // Cancelling here drops only messages not yet applied; the checkpoint
        // has not moved past them, so the next start reads them again.
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            next = tail.next_batch_within(room, LINGER, wait) => next,
        };
        let items = next.ok_or(Interrupted::TailEnded)??;
        pending.release_through(store.wanted_sequence());
        if items.is_empty() && pending.is_empty() {
            // Silence is fine while the log has nothing new. When it has, the
            // tail is stuck: its server-side consumer was lost (a NATS
            // restart), which the client would notice only after missed
            // heartbeats, up to a minute. Reopen it at the checkpoint.
            let last = log.last_sequence().await?;
            if last > store.projected_sequence().await? {
                return Err(Interrupted::Stalled(last));
            }
            continue;
        }
        pending.push(items, Instant::now());
        loop {
            let full = pending.len() >= room_for;
            let Some(ready) = pending.take_ready(Instant::now(), now(), full, batch) else {
                break;
            };
            apply(store, &ready, first, updates).await?;
            first = false;
        }
    }
}

/// Applies one batch and tells the watchers.
async fn apply(
    store: &Store,
    ready: &Ready,
    first: bool,
    updates: &broadcast::Sender<ComplaintChange>,
) -> Result<(), Interrupted> {
    let started = Instant::now();
    let items = &ready.items;
    let changes = if updates.receiver_count() > 0 {
        Changes::Collect
    } else {
        Changes::Skip
    };
    let span = Span {
        items,
        stretch: ready.stretch,
    };
    let applied = store.apply_span(span, first, changes).await?;
    if plaint_runtime::telemetry::traces_enabled() {
        // One span per event, in the event's own trace, so a trace ends
        // where the complaint became visible to queries.
        for item in items {
            if let Ok(Some(tp)) = item.event.as_ref().map(|e| e.traceparent.as_deref()) {
                let span = tracing::info_span!("projected", sequence = item.sequence);
                plaint_runtime::telemetry::set_parent(&span, tp);
            }
        }
    }
    metrics::histogram!("plaint_projection_batch_size").record(items.len() as f64);
    metrics::histogram!("plaint_projection_apply_seconds").record(started.elapsed().as_secs_f64());
    metrics::gauge!("plaint_projection_checkpoint").set(applied.checkpoint as f64);
    tracing::debug!(
        checkpoint = applied.checkpoint,
        applied = applied.applied,
        skipped = applied.skipped,
        "batch projected"
    );
    // Empty unless someone was watching when the batch began.
    for change in applied.changes {
        // An error only means nobody is watching right now.
        let _ = updates.send(change);
    }
    Ok(())
}

/// How often the projection lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// Publishes `plaint_log_last_sequence` and `plaint_projection_lag_events`
/// (log events not yet in the projections) until `stop` is cancelled.
pub async fn measure_lag(
    log: EventLog,
    store: Store,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        if let (Ok(last), Ok(projected)) =
            (log.last_sequence().await, store.projected_sequence().await)
        {
            metrics::gauge!("plaint_log_last_sequence").set(last as f64);
            metrics::gauge!("plaint_projection_lag_events")
                .set(last.saturating_sub(projected) as f64);
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(LAG_INTERVAL) => {}
        }
    }
}

fn now() -> plaint_domain::Timestamp {
    plaint_domain::Timestamp::from_system_time(SystemTime::now())
}
