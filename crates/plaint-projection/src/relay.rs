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
/// `updates` for every complaint event the projections gain.
pub async fn relay(
    store: Store,
    updates: broadcast::Sender<ComplaintChange>,
    projecting: Arc<AtomicBool>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // The last sequence told (or, with nobody watching, passed over);
    // `None` while this replica projects.
    let mut told: Option<u64> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        if projecting.load(Ordering::Relaxed) {
            told = None;
            continue;
        }
        if updates.receiver_count() == 0 {
            // Keep up with the checkpoint, so a watcher that subscribes
            // hears what is applied from then on, not from a poll later.
            if let Ok(checkpoint) = store.projected_sequence().await {
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
