//! The complaint's state and `apply`.

use serde::{Deserialize, Serialize};

use crate::event::{ComplaintEvent, ItemOutcome};
use crate::facts::{ComplaintFacts, Visibility};
use crate::routing::{Decision, FulfilmentKind, Priority, Route};
use crate::sla::{Clock, Missed, SlaClocks, SlaTarget};
use crate::time::Timestamp;
use crate::values::{ComplaintId, Label, Satisfaction};

/// Where a complaint is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Stored, waiting for the router.
    Received,
    /// The router decided who handles it.
    Routed,
    /// The handler confirmed receipt.
    Acknowledged,
    /// Someone owns it.
    Assigned,
    /// Resolved, with a satisfaction score.
    Resolved,
    /// Opened again after resolution.
    Reopened,
    /// Withdrawn. Terminal.
    Withdrawn,
}

impl Status {
    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Received => "RECEIVED",
            Status::Routed => "ROUTED",
            Status::Acknowledged => "ACKNOWLEDGED",
            Status::Assigned => "ASSIGNED",
            Status::Resolved => "RESOLVED",
            Status::Reopened => "REOPENED",
            Status::Withdrawn => "WITHDRAWN",
        }
    }

    /// Routed and not yet resolved or withdrawn: work can be done on it.
    pub const fn is_open_for_work(self) -> bool {
        matches!(
            self,
            Status::Routed | Status::Acknowledged | Status::Assigned | Status::Reopened
        )
    }
}

/// The reverse-logistics steps, in the only order they may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfilmentStep {
    /// Decided, nothing done yet.
    Pending,
    /// Return merchandise authorization issued.
    Authorized,
    /// The item arrived.
    ItemReceived,
    /// Repaired or replaced; it must still go back.
    Processed,
    /// Refunded; nothing goes back.
    Refunded,
    /// Back with the customer.
    ShippedBack,
}

impl FulfilmentStep {
    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            FulfilmentStep::Pending => "PENDING",
            FulfilmentStep::Authorized => "AUTHORIZED",
            FulfilmentStep::ItemReceived => "ITEM_RECEIVED",
            FulfilmentStep::Processed => "PROCESSED",
            FulfilmentStep::Refunded => "REFUNDED",
            FulfilmentStep::ShippedBack => "SHIPPED_BACK",
        }
    }
}

/// The item handling a complaint needs, and how far it has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentProgress {
    /// What the decision asked for.
    pub kind: FulfilmentKind,
    /// The last step done.
    pub step: FulfilmentStep,
    /// What the processing step did, once done.
    pub outcome: Option<ItemOutcome>,
}

impl FulfilmentProgress {
    /// Nothing more to do with the item.
    pub const fn is_complete(&self) -> bool {
        matches!(
            self.step,
            FulfilmentStep::ShippedBack | FulfilmentStep::Refunded
        )
    }
}

/// A complaint, as its events have made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    /// Derived from its source system and ticket id.
    pub id: ComplaintId,
    /// What it said when received.
    pub facts: ComplaintFacts,
    /// How visible it is now.
    pub visibility: Visibility,
    /// Where it is in its life.
    pub status: Status,
    /// The decision in force.
    pub decision: Option<Decision>,
    /// Item handling, if a decision asked for it.
    pub fulfilment: Option<FulfilmentProgress>,
    /// Who owns it.
    pub assignee: Option<Label>,
    /// The last satisfaction score.
    pub satisfaction: Option<Satisfaction>,
    /// When it was received.
    pub received_at: Timestamp,
    /// When it was first routed.
    pub routed_at: Option<Timestamp>,
    /// When it was last resolved.
    pub resolved_at: Option<Timestamp>,
    /// When it was first acknowledged or assigned (`None` in states stored
    /// before this was kept).
    #[serde(default)]
    pub acknowledged_at: Option<Timestamp>,
    /// When it was first resolved or withdrawn (likewise).
    #[serde(default)]
    pub closed_at: Option<Timestamp>,
    /// The priority a service-level breach raised it to, above its
    /// decision's (a new decision starts again from its own).
    #[serde(default)]
    pub raised_priority: Option<Priority>,
    /// The targets it ever missed.
    #[serde(default)]
    pub missed: Missed,
    /// Its service-level clocks (none in states stored before they existed).
    #[serde(default)]
    pub sla: SlaClocks,
    /// How many events made it.
    pub version: u64,
}

impl Complaint {
    /// The route in force, once routed.
    pub fn route(&self) -> Option<Route> {
        self.decision.as_ref().map(|d| d.route)
    }

    /// The queue priority now: the decision's, or what a breach raised it to.
    pub fn priority(&self) -> Option<Priority> {
        self.raised_priority
            .or_else(|| self.decision.as_ref().map(|d| d.priority))
    }
}

/// An event that cannot follow the state it was applied to: the history is not
/// one `decide` could have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} cannot follow {state}")]
pub struct InvalidHistory {
    /// The event's type name.
    pub event: &'static str,
    /// The state it met, described.
    pub state: String,
}

/// Folds one event into a complaint's state.
///
/// `state` is `None` before the first event. Only `Received` may start a
/// history; everything else needs an existing complaint.
pub fn apply(
    state: Option<Complaint>,
    id: ComplaintId,
    event: &ComplaintEvent,
    at: Timestamp,
) -> Result<Complaint, InvalidHistory> {
    let mut c = match (state, event) {
        (None, ComplaintEvent::Received(facts)) => {
            return Ok(Complaint {
                id,
                facts: (**facts).clone(),
                visibility: facts.visibility,
                status: Status::Received,
                decision: None,
                fulfilment: None,
                assignee: None,
                satisfaction: None,
                received_at: at,
                routed_at: None,
                resolved_at: None,
                acknowledged_at: None,
                closed_at: None,
                raised_priority: None,
                missed: Missed::default(),
                sla: SlaClocks::default(),
                version: 1,
            });
        }
        (None, e) => {
            return Err(InvalidHistory {
                event: e.type_name(),
                state: "no complaint".to_owned(),
            });
        }
        (Some(_), ComplaintEvent::Received(_)) => {
            return Err(InvalidHistory {
                event: event.type_name(),
                state: "an existing complaint".to_owned(),
            });
        }
        (Some(c), _) => c,
    };
    match event {
        ComplaintEvent::Received(_) => {}
        ComplaintEvent::Routed(decision) | ComplaintEvent::Rerouted { decision, .. } => {
            start_clocks(&mut c, decision, at);
            c.raised_priority = None;
            if c.status == Status::Received {
                c.status = Status::Routed;
                c.routed_at = Some(at);
            }
            if c.fulfilment.is_none() {
                c.fulfilment = decision.fulfilment.map(|kind| FulfilmentProgress {
                    kind,
                    step: FulfilmentStep::Pending,
                    outcome: None,
                });
            }
            c.decision = Some((**decision).clone());
        }
        ComplaintEvent::VisibilityChanged(v) => c.visibility = *v,
        ComplaintEvent::Acknowledged { .. } => {
            c.status = Status::Acknowledged;
            c.sla.acknowledge = None;
            c.acknowledged_at.get_or_insert(at);
        }
        ComplaintEvent::Assigned { assignee } => {
            c.status = Status::Assigned;
            c.sla.acknowledge = None;
            c.acknowledged_at.get_or_insert(at);
            c.assignee = Some(assignee.clone());
        }
        ComplaintEvent::CustomerFollowedUp { .. } => {}
        ComplaintEvent::ReturnAuthorized { .. } => set_step(&mut c, FulfilmentStep::Authorized),
        ComplaintEvent::ItemReceived => set_step(&mut c, FulfilmentStep::ItemReceived),
        ComplaintEvent::ItemProcessed { outcome } => {
            let step = if *outcome == ItemOutcome::Refunded {
                FulfilmentStep::Refunded
            } else {
                FulfilmentStep::Processed
            };
            set_step(&mut c, step);
            if let Some(f) = c.fulfilment.as_mut() {
                f.outcome = Some(*outcome);
            }
        }
        ComplaintEvent::ItemShippedBack { .. } => set_step(&mut c, FulfilmentStep::ShippedBack),
        ComplaintEvent::Resolved { satisfaction, .. } => {
            c.status = Status::Resolved;
            c.satisfaction = Some(*satisfaction);
            c.resolved_at = Some(at);
            c.closed_at.get_or_insert(at);
            c.sla = SlaClocks::default();
        }
        ComplaintEvent::Reopened { .. } => {
            c.status = Status::Reopened;
            c.sla.resolve = clock(c.decision.as_ref(), SlaTarget::Resolve, at);
        }
        ComplaintEvent::Withdrawn { .. } => {
            c.status = Status::Withdrawn;
            c.closed_at.get_or_insert(at);
            c.sla = SlaClocks::default();
        }
        // A record of the decision made again; the decision in force stays.
        ComplaintEvent::Reevaluated { .. } => {}
        ComplaintEvent::SlaBreached {
            target,
            since,
            raised_priority,
            ..
        } => {
            if let Some(clock) = c.sla.slot(*target).as_mut().filter(|k| k.since == *since) {
                clock.breached = true;
            }
            match target {
                SlaTarget::Acknowledge => c.missed.acknowledge = true,
                SlaTarget::Resolve => c.missed.resolve = true,
            }
            if raised_priority.is_some() {
                c.raised_priority = *raised_priority;
            }
        }
    }
    c.version += 1;
    Ok(c)
}

/// A new decision's handler gets their own time: the resolve clock restarts,
/// and so does the acknowledge clock where nobody has acknowledged it yet.
fn start_clocks(c: &mut Complaint, decision: &Decision, at: Timestamp) {
    if c.status == Status::Received {
        c.sla = first_clocks(decision, at);
        return;
    }
    if c.sla.acknowledge.is_some() {
        c.sla.acknowledge = clock(Some(decision), SlaTarget::Acknowledge, at);
    }
    c.sla.resolve = clock(Some(decision), SlaTarget::Resolve, at);
}

/// The clocks a complaint's first decision (`complaint_routed`) starts at
/// `at`: both targets, whatever came before (nothing meets a target before
/// there is a handler). Known from that event alone.
pub fn first_clocks(decision: &Decision, at: Timestamp) -> SlaClocks {
    SlaClocks {
        acknowledge: clock(Some(decision), SlaTarget::Acknowledge, at),
        resolve: clock(Some(decision), SlaTarget::Resolve, at),
    }
}

/// A clock for `target` starting at `at`, under the decision's targets.
fn clock(decision: Option<&Decision>, target: SlaTarget, at: Timestamp) -> Option<Clock> {
    let targets = decision?.sla?;
    Some(Clock {
        since: at,
        allowed_secs: targets.secs(target),
        breached: false,
    })
}

fn set_step(c: &mut Complaint, step: FulfilmentStep) {
    if let Some(f) = c.fulfilment.as_mut() {
        f.step = step;
    }
}

/// Folds a whole history, oldest first, into the complaint it made (`None`
/// for an empty history).
pub fn replay<'a>(
    id: ComplaintId,
    events: impl IntoIterator<Item = (&'a ComplaintEvent, Timestamp)>,
) -> Result<Option<Complaint>, InvalidHistory> {
    let mut state = None;
    for (event, at) in events {
        state = Some(apply(state, id, event, at)?);
    }
    Ok(state)
}
