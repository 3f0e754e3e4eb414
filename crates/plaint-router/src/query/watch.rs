//! `WatchComplaints`: the projector's updates, filtered, to one watcher.
//!
//! Each watcher reads the broadcast through a small bounded channel. A slow
//! watcher does not slow the projector or anyone else: its broadcast receiver
//! falls behind and skips, and the next update it gets says how many it missed.

use std::pin::Pin;

use plaint_domain::{ComplaintId, Route};
use plaint_projection::store::ComplaintChange;
use plaint_proto::convert::optional_enum;
use plaint_proto::router as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::{QueryError, customer_id, wire};

/// Updates buffered between the broadcast and one watcher's connection.
pub(crate) const WATCH_CHANNEL_CAPACITY: usize = 64;

/// The stream a watcher reads.
pub(crate) type WatchStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::ComplaintUpdate, Status>> + Send + 'static>>;

/// Which updates a watcher wants; `None` means any.
#[derive(Debug, Clone, Default)]
pub(super) struct Filter {
    route: Option<Route>,
    customer_id: Option<String>,
    complaint_id: Option<String>,
}

impl Filter {
    pub(super) fn parse(req: &pb::WatchComplaintsRequest) -> Result<Filter, QueryError> {
        Ok(Filter {
            route: optional_enum::<Route>(req.route, "route")?,
            customer_id: match req.customer_id.trim() {
                "" => None,
                raw => Some(customer_id(raw)?.to_string()),
            },
            complaint_id: match req.complaint_id.trim() {
                "" => None,
                raw => Some(
                    wire::complaint_id(raw, "complaint_id")
                        .map(|id: ComplaintId| id.to_string())?,
                ),
            },
        })
    }

    fn matches(&self, update: &pb::ComplaintUpdate) -> bool {
        let Some(c) = &update.complaint else {
            return false;
        };
        self.route.is_none_or(|r| {
            use plaint_proto::ToWire;
            c.route == r.to_wire()
        }) && self
            .customer_id
            .as_ref()
            .is_none_or(|id| *id == c.customer_id)
            && self
                .complaint_id
                .as_ref()
                .is_none_or(|id| *id == c.complaint_id)
    }
}

/// Forwards matching updates from `updates` to a new stream until the
/// watcher goes away, the broadcast closes or `stop` is cancelled.
pub(super) fn spawn(
    mut updates: broadcast::Receiver<ComplaintChange>,
    filter: Filter,
    stop: CancellationToken,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
    tokio::spawn(async move {
        let mut missed: u64 = 0;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                () = tx.closed() => break,
                next = updates.recv() => next,
            };
            match next {
                Ok(change) => {
                    let mut update = wire::complaint_update(&change);
                    if !filter.matches(&update) {
                        continue;
                    }
                    update.missed = std::mem::take(&mut missed);
                    let sent = tokio::select! {
                        () = stop.cancelled() => break,
                        sent = tx.send(Ok(update)) => sent,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => missed = missed.saturating_add(n),
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}
