//! Holding a new complaint's first event back until its decision follows.
//!
//! A live complaint's `complaint_received` and `complaint_routed` reach the
//! projector apart: a few milliseconds at low load, hundreds when the router
//! works through a queue. Applied in separate batches they make two versions
//! of the complaint's row, each with an entry in every index, and the state
//! is serialized and compressed twice: at full load that second version was
//! a third of PostgreSQL's work. So the projector holds a fresh
//! `complaint_received` back while nothing else of its complaint has come,
//! for at most the hold (see [`HOLD`]), and both usually land in one row
//! version. The checkpoint is a position in the log, so the events after a
//! held one wait with it, up to the projector's room for them. Events older
//! than the hold (a backlog, a rebuild, a replay) are never held: their
//! decisions are not about to come. Nor are events a query waits for (its
//! `min_sequence`): reading one's own writes does not wait for the router.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use plaint_bus::TailItem;
use plaint_domain::Timestamp;
use plaint_domain::event::{ComplaintEvent, EventPayload};
use uuid::Uuid;

/// Longest a complaint's first event is held back: longer than the router
/// takes at full load, when its queue is a few thousand events deep.
pub const HOLD: Duration = Duration::from_secs(1);

/// Events read from the tail and not applied yet, in log order.
#[derive(Debug)]
pub struct Pending {
    slots: VecDeque<Slot>,
    /// How many events each complaint has in `slots`.
    events_of: HashMap<Uuid, u32>,
    rule: HoldRule,
}

/// Which events are held, and for how long.
#[derive(Debug)]
struct HoldRule {
    hold: Duration,
    /// Events up to this sequence are not held: a query waits for them.
    released_through: u64,
}

/// One position of the log: its event, or nothing once a batch took the
/// event ahead (the position still bounds the checkpoint).
#[derive(Debug)]
struct Slot {
    arrived: Instant,
    sequence: u64,
    item: Option<TailItem>,
}

/// Events to apply together, and the stretch of the log they complete.
#[derive(Debug)]
pub struct Ready {
    /// The stretch's events in log order, then events taken from beyond it
    /// (see [`Pending::take_ready`]), in log order too.
    pub items: Vec<TailItem>,
    /// The stretch's first and last sequences (the checkpoint once
    /// applied); `None` when only events beyond it go.
    pub stretch: Option<(u64, u64)>,
}

impl Default for Pending {
    fn default() -> Self {
        Self::new(HOLD)
    }
}

impl Pending {
    /// Nothing pending; first events are held for at most `hold` (zero holds
    /// nothing, for a projector whose process does not route).
    pub fn new(hold: Duration) -> Self {
        Self {
            slots: VecDeque::new(),
            events_of: HashMap::new(),
            rule: HoldRule {
                hold,
                released_through: 0,
            },
        }
    }

    /// Positions waiting (events, and those taken ahead).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Holds no event up to `sequence` (someone waits to read it; 0 for
    /// nobody).
    pub fn release_through(&mut self, sequence: u64) {
        self.rule.released_through = sequence;
    }

    /// Adds events that arrived at `arrived`.
    pub fn push(&mut self, items: Vec<TailItem>, arrived: Instant) {
        for item in items {
            if let Some(id) = complaint_of(&item) {
                *self.events_of.entry(id).or_default() += 1;
            }
            self.slots.push_back(Slot {
                arrived,
                sequence: item.sequence,
                item: Some(item),
            });
        }
    }

    /// Takes what can be applied now. The stretch: at most `max` positions
    /// from the first, up to the first event held (whatever they are when
    /// `force`). With it, the later events of its complaints, and, up to
    /// `max` events in all, the events of other complaints with nothing
    /// held, so that one slow decision holds up no one else's. `None` when
    /// there is nothing.
    pub fn take_ready(
        &mut self,
        now: Instant,
        wall: Timestamp,
        force: bool,
        max: usize,
    ) -> Option<Ready> {
        let ready = if force {
            self.slots.len()
        } else {
            self.first_held(now, wall).unwrap_or(self.slots.len())
        };
        let n = ready.min(max);
        let stretch = match (self.slots.front(), n.checked_sub(1)) {
            (Some(front), Some(end)) => Some((front.sequence, self.slots.get(end)?.sequence)),
            _ => None,
        };
        let events_of = &mut self.events_of;
        let mut items: Vec<TailItem> = self
            .slots
            .drain(..n)
            .filter_map(|slot| slot.item)
            .inspect(|item| forget(events_of, item))
            .collect();
        // The complaints of the stretch with events still waiting: those go
        // now, whatever the limit, so that each makes one row version.
        let mut carried: HashMap<Uuid, u32> = items
            .iter()
            .filter_map(complaint_of)
            .filter_map(|id| events_of.get(&id).map(|n| (id, *n)))
            .collect();
        let mut left: u32 = carried.values().sum();
        let rule = &self.rule;
        for slot in &mut self.slots {
            if left == 0 && items.len() >= max {
                break;
            }
            let Some(item) = slot.item.as_ref() else {
                continue;
            };
            let Some(id) = complaint_of(item) else {
                continue;
            };
            let take = match carried.get_mut(&id).filter(|n| **n > 0) {
                Some(n) => {
                    *n -= 1;
                    left -= 1;
                    true
                }
                None => items.len() < max && !rule.holds(events_of, slot.arrived, item, now, wall),
            };
            if take && let Some(item) = slot.item.take() {
                forget(events_of, &item);
                items.push(item);
            }
        }
        if stretch.is_none() && items.is_empty() {
            return None;
        }
        Some(Ready { items, stretch })
    }

    /// How long the first event may still be held; `None` when nothing waits.
    pub fn hold_left(&self, now: Instant, wall: Timestamp) -> Option<Duration> {
        let slot = self.slots.front()?;
        Some(slot.item.as_ref().map_or(Duration::ZERO, |item| {
            self.rule.remaining(slot.arrived, item, now, wall)
        }))
    }

    fn first_held(&self, now: Instant, wall: Timestamp) -> Option<usize> {
        self.slots.iter().position(|slot| {
            slot.item.as_ref().is_some_and(|item| {
                self.rule
                    .holds(&self.events_of, slot.arrived, item, now, wall)
            })
        })
    }
}

impl HoldRule {
    /// Whether `item` is held: a complaint's first event, alone so far,
    /// with hold left.
    fn holds(
        &self,
        events_of: &HashMap<Uuid, u32>,
        arrived: Instant,
        item: &TailItem,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        // Cheapest test first: most positions are not first events.
        is_received(item)
            && complaint_of(item).is_some_and(|id| events_of.get(&id) == Some(&1))
            && !self.remaining(arrived, item, now, wall).is_zero()
    }

    /// How much longer `item` may be held: the hold from when it arrived and
    /// from when it happened, whichever ends first (a clock ahead of this one
    /// cannot hold it longer, one behind makes it old).
    fn remaining(
        &self,
        arrived: Instant,
        item: &TailItem,
        now: Instant,
        wall: Timestamp,
    ) -> Duration {
        if item.sequence <= self.released_through {
            return Duration::ZERO;
        }
        let since_arrival = now.saturating_duration_since(arrived);
        let since_event = item.event.as_ref().map_or(self.hold, |e| {
            let ms = wall
                .as_millis()
                .saturating_sub(e.envelope.occurred_at.as_millis());
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        });
        self.hold.saturating_sub(since_arrival.max(since_event))
    }
}

/// Counts `item` out of the events waiting.
fn forget(events_of: &mut HashMap<Uuid, u32>, item: &TailItem) {
    if let Some(id) = complaint_of(item)
        && let Some(n) = events_of.get_mut(&id)
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            events_of.remove(&id);
        }
    }
}

/// The complaint of a complaint event. Company events that name one (a CEO
/// engagement) keep their place in the log: they are not complaint rows.
fn complaint_of(item: &TailItem) -> Option<Uuid> {
    let envelope = &item.event.as_ref().ok()?.envelope;
    match envelope.payload {
        EventPayload::Complaint(_) => envelope.complaint_id.map(|id| id.as_uuid()),
        EventPayload::Company(_) | EventPayload::Access(_) => None,
    }
}

fn is_received(item: &TailItem) -> bool {
    item.event.as_ref().is_ok_and(|e| {
        matches!(
            e.envelope.payload,
            EventPayload::Complaint(ComplaintEvent::Received(_))
        )
    })
}
