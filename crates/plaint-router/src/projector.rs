//! The projector: follows the log from the projections' checkpoint and applies
//! it in batches, each batch and its checkpoint in one transaction.
//!
//! The position lives in PostgreSQL, not in a consumer, so after any failure
//! (NATS or PostgreSQL restarting, a broken tail) the projector simply reopens
//! the tail at the checkpoint; batches already applied are skipped by the store.

use std::time::Duration;

use plaint_bus::{BusError, EventLog};
use plaint_proto::router::ComplaintUpdate;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::query::complaint_update;
use crate::store::{Store, StoreError};

/// How long a batch waits for more events after its first.
pub const LINGER: Duration = Duration::from_millis(5);
/// Pause before resuming after a failure.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the tail ended")]
    TailEnded,
}

/// Projects the log into `store` until `stop` is cancelled, broadcasting an
/// update for every complaint event applied. A batch in hand when `stop` comes
/// is committed before returning.
pub async fn run(
    log: EventLog,
    store: Store,
    batch: usize,
    updates: broadcast::Sender<ComplaintUpdate>,
    stop: CancellationToken,
) {
    let batch = batch.max(1);
    while !stop.is_cancelled() {
        match follow(&log, &store, batch, &updates, &stop).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "projection interrupted; resuming from the checkpoint")
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
    tracing::info!("projector stopped");
}

/// Follows the log from the checkpoint; `Ok` only when stopped.
async fn follow(
    log: &EventLog,
    store: &Store,
    batch: usize,
    updates: &broadcast::Sender<ComplaintUpdate>,
    stop: &CancellationToken,
) -> Result<(), Interrupted> {
    let from = store.projected_sequence().await? + 1;
    let mut tail = tokio::select! {
        () = stop.cancelled() => return Ok(()),
        tail = log.tail(from) => tail?,
    };
    tracing::info!(from, "projecting the log");
    let mut first = true;
    loop {
        // Cancelling here drops only messages not yet applied; the checkpoint
        // has not moved past them, so the next start reads them again.
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            next = tail.next_batch(batch, LINGER) => next,
        };
        let items = next.ok_or(Interrupted::TailEnded)??;
        let applied = store.apply_batch_after(&items, first).await?;
        first = false;
        tracing::debug!(
            checkpoint = applied.checkpoint,
            applied = applied.applied,
            skipped = applied.skipped,
            "batch projected"
        );
        if updates.receiver_count() > 0 {
            for change in &applied.changes {
                // An error only means nobody is watching right now.
                let _ = updates.send(complaint_update(change));
            }
        }
    }
}
