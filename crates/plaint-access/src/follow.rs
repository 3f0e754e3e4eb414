//! Keeping a [`KeyRing`] up to date from the log: read whole at start-up,
//! then polled, so that a key created or revoked through any replica works or
//! stops working everywhere within [`POLL`].

use std::sync::PoisonError;
use std::time::Duration;

use plaint_bus::{Backoff, BusError, EventLog, RetryPolicy, TailItem};
use plaint_domain::EventPayload;
use tokio_util::sync::CancellationToken;

use crate::gate::SharedRing;
use crate::ring::KeyRing;

/// How often the log is asked for new key events.
pub const POLL: Duration = Duration::from_millis(250);
/// Key events read in one request at most.
const PAGE: usize = 256;

/// Folds every key event the log holds beyond what `ring` has seen.
pub async fn catch_up(log: &EventLog, ring: &SharedRing) -> Result<(), BusError> {
    let subject = log.names().keys();
    loop {
        let after = ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .sequence();
        let items = log.read_matching_after(&subject, after, PAGE).await?;
        let full = items.len() == PAGE;
        let mut ring = ring.write().unwrap_or_else(PoisonError::into_inner);
        for item in &items {
            fold(&mut ring, item);
        }
        if !full {
            return Ok(());
        }
    }
}

fn fold(ring: &mut KeyRing, item: &TailItem) {
    match &item.event {
        Ok(stored) => match &stored.envelope.payload {
            EventPayload::Access(event) => {
                ring.apply(item.sequence, stored.envelope.occurred_at, event);
            }
            _ => ring.pass(item.sequence),
        },
        Err(e) => {
            tracing::warn!(sequence = item.sequence, error = %e, "skipping a key event that cannot be decoded");
            ring.pass(item.sequence);
        }
    }
}

/// Catches up every [`POLL`] until `stop`; gives up (and so fails the
/// process) when the log stays unreachable beyond `retry`'s budget, rather
/// than go on honouring keys revoked meanwhile.
pub async fn follow(
    log: EventLog,
    ring: SharedRing,
    retry: RetryPolicy,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(retry);
    loop {
        let pause = match catch_up(&log, &ring).await {
            Ok(()) => {
                backoff.succeeded();
                POLL
            }
            Err(e) => {
                let pause = backoff.failed()?;
                tracing::warn!(error = %e, "cannot read the key events; retrying");
                pause
            }
        };
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
    }
}
