//! Holding a new complaint's first event back until its decision follows.
//!
//! A live complaint's `complaint_received` and `complaint_routed` reach the
//! projector a few milliseconds apart. Applied in separate batches they make
//! two versions of the complaint's row, each with an entry in every index,
//! and the state is serialized and compressed twice. So the projector holds
//! a fresh `complaint_received` back while nothing else of its complaint has
//! come, for at most [`HOLD`], and both usually land in one row version.
//! The checkpoint is a position in the log, so the events after a held one
//! wait with it. Events older than [`HOLD`] (a backlog, a rebuild, a replay)
//! are never held: their decisions are not about to come.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use plaint_bus::TailItem;
use plaint_domain::Timestamp;
use plaint_domain::event::{ComplaintEvent, EventPayload};
use uuid::Uuid;

/// Longest a complaint's first event is held back.
pub const HOLD: Duration = Duration::from_millis(25);

/// Events read from the tail and not applied yet, in log order.
#[derive(Debug, Default)]
pub struct Pending {
    items: VecDeque<(Instant, TailItem)>,
}

impl Pending {
    /// Events waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds events that arrived at `arrived`.
    pub fn push(&mut self, items: Vec<TailItem>, arrived: Instant) {
        self.items.extend(items.into_iter().map(|i| (arrived, i)));
    }

    /// Takes the events that can be applied now: every event before the
    /// first one held, or all of them when `all`.
    pub fn take_ready(&mut self, now: Instant, wall: Timestamp, all: bool) -> Vec<TailItem> {
        let ready = if all {
            self.items.len()
        } else {
            self.first_held(now, wall).unwrap_or(self.items.len())
        };
        self.items.drain(..ready).map(|(_, item)| item).collect()
    }

    /// How long the first event may still be held; `None` when nothing waits.
    pub fn hold_left(&self, now: Instant, wall: Timestamp) -> Option<Duration> {
        let (arrived, item) = self.items.front()?;
        Some(remaining(*arrived, item, now, wall))
    }

    fn first_held(&self, now: Instant, wall: Timestamp) -> Option<usize> {
        let mut events_of: HashMap<Uuid, u32> = HashMap::new();
        for (_, item) in &self.items {
            if let Some(id) = complaint_of(item) {
                *events_of.entry(id).or_default() += 1;
            }
        }
        self.items.iter().position(|(arrived, item)| {
            let alone = complaint_of(item).is_some_and(|id| events_of.get(&id) == Some(&1));
            alone && is_received(item) && !remaining(*arrived, item, now, wall).is_zero()
        })
    }
}

/// How much longer `item` may be held: [`HOLD`] from when it arrived and
/// from when it happened, whichever ends first (a clock ahead of this one
/// cannot hold it longer, one behind makes it old).
fn remaining(arrived: Instant, item: &TailItem, now: Instant, wall: Timestamp) -> Duration {
    let since_arrival = now.saturating_duration_since(arrived);
    let since_event = item.event.as_ref().map_or(HOLD, |e| {
        let ms = wall
            .as_millis()
            .saturating_sub(e.envelope.occurred_at.as_millis());
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    });
    HOLD.saturating_sub(since_arrival.max(since_event))
}

fn complaint_of(item: &TailItem) -> Option<Uuid> {
    let stored = item.event.as_ref().ok()?;
    stored.envelope.complaint_id.map(|id| id.as_uuid())
}

fn is_received(item: &TailItem) -> bool {
    item.event.as_ref().is_ok_and(|e| {
        matches!(
            e.envelope.payload,
            EventPayload::Complaint(ComplaintEvent::Received(_))
        )
    })
}
