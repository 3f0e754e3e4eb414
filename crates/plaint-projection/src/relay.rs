//! Watchers on a replica that does not project: the projecting replica's
//! work, read back from the tables it writes, so `WatchComplaints` hears
//! every update whichever replica it is connected to.
//!
//! Each update carries the complaint's row as it stands when it is read,
//! which may already show a later event (the projecting replica sends the
//! row each event left). When this replica takes the projection over, its
//! own projector tells the watchers from then on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::{ComplaintChange, Store};

/// How often the projections' checkpoint is looked at.
const POLL: Duration = Duration::from_millis(100);
/// Updates read at a time.
const PAGE: u32 = 500;
/// Pages read before the next look at the checkpoint, so one poll is bounded.
const PAGES_PER_POLL: usize = 20;

/// Until `stop`, while `projecting` is false and somebody watches, sends
/// `updates` for every complaint event the projections gain after
/// `checkpoint` (read before anyone could watch, so a watcher who comes
/// before the first poll hears from its subscription on).
pub async fn relay(
    store: Store,
    updates: broadcast::Sender<ComplaintChange>,
    projecting: Arc<AtomicBool>,
    checkpoint: Option<u64>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // The last sequence told, or passed over while this replica projected
    // (its projector told those) or nobody watched.
    let mut told = checkpoint;
    let mut failing = false;
    let quiet = || projecting.load(Ordering::Relaxed) || updates.receiver_count() == 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        if quiet() {
            // Keep up with the checkpoint. Read before looking again: a
            // watcher who came meanwhile is told from the older one.
            if let Ok(checkpoint) = store.projected_sequence().await
                && quiet()
            {
                told = Some(checkpoint);
            }
            continue;
        }
        match catch_up(&store, &updates, &mut told).await {
            Ok(()) => failing = false,
            // Queries report the database's state; this just tries again.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot read the projections for watchers; retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Sends what was applied since `told` (from the checkpoint, the first time).
async fn catch_up(
    store: &Store,
    updates: &broadcast::Sender<ComplaintChange>,
    told: &mut Option<u64>,
) -> Result<(), crate::store::StoreError> {
    let checkpoint = store.projected_sequence().await?;
    let mut after = *told.get_or_insert(checkpoint);
    for _ in 0..PAGES_PER_POLL {
        if after >= checkpoint {
            break;
        }
        let changes = store.changes_between(after, checkpoint, PAGE).await?;
        let full = changes.len() >= PAGE as usize;
        after = match changes.last() {
            Some(last) if full => last.sequence,
            _ => checkpoint,
        };
        for change in changes {
            // An error only means nobody is watching right now.
            let _ = updates.send(change);
        }
    }
    *told = Some(after);
    Ok(())
}
