//! The facts stored in the log. Events are immutable: they say what happened,
//! never what should happen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::access::AccessEvent;
use crate::facts::{ComplaintFacts, Visibility};
use crate::routing::{
    Climate, Decision, GateKind, Priority, Route, RoutingPolicy, StanceAlignment,
};
use crate::sla::SlaTarget;
use crate::time::Timestamp;
use crate::values::{ComplaintId, CustomerRef, EventId, FreeText, Label, Satisfaction, Segment};

/// Version of the payload schema this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of the repair / replace / refund step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemOutcome {
    /// The item was repaired.
    Repaired,
    /// The item was replaced.
    Replaced,
    /// The customer was refunded; nothing goes back.
    Refunded,
}

/// A fact about one complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ComplaintEvent {
    /// The complaint entered the system.
    Received(Box<ComplaintFacts>),
    /// The router's first decision.
    Routed(Box<Decision>),
    /// A later decision after the complaint's visibility changed.
    Rerouted {
        /// The new decision.
        decision: Box<Decision>,
        /// The route it replaces.
        previous: Route,
    },
    /// The complaint became more (or less) visible.
    VisibilityChanged(Visibility),
    /// The handler confirmed receipt.
    Acknowledged {
        /// Who acknowledged it.
        by: Label,
    },
    /// Someone owns it now.
    Assigned {
        /// The new owner.
        assignee: Label,
    },
    /// The customer added something.
    CustomerFollowedUp {
        /// What they said.
        text: FreeText,
    },
    /// A return merchandise authorization was issued.
    ReturnAuthorized {
        /// The RMA number.
        rma: Label,
    },
    /// The item arrived.
    ItemReceived,
    /// The item was repaired, replaced or refunded.
    ItemProcessed {
        /// Which.
        outcome: ItemOutcome,
    },
    /// The item went back to the customer.
    ItemShippedBack {
        /// Carrier tracking number.
        tracking: Label,
    },
    /// Resolved, with the customer's rating.
    Resolved {
        /// 1..=10.
        satisfaction: Satisfaction,
        /// Handler's note.
        note: FreeText,
    },
    /// Opened again after resolution.
    Reopened {
        /// Why.
        reason: FreeText,
    },
    /// Withdrawn by the customer or the source system. Terminal.
    Withdrawn {
        /// Why.
        reason: FreeText,
    },
    /// A visibility change had the complaint decided again and the route in
    /// force held: the new decision says why (the gate that held it).
    Reevaluated {
        /// The decision made again; not in force.
        decision: Box<Decision>,
        /// The first gate that failed, if one did.
        held_by: Option<GateKind>,
    },
    /// A service-level target passed without the event that meets it.
    SlaBreached {
        /// Which target.
        target: SlaTarget,
        /// When its clock started.
        since: Timestamp,
        /// When it was due.
        due_at: Timestamp,
        /// How late it was when the breach was recorded, in milliseconds.
        late_by_ms: i64,
        /// The priority it was raised to, where the policy raises it.
        raised_priority: Option<Priority>,
    },
}

impl ComplaintEvent {
    /// The last token of the event's subject in the log (see
    /// [`subject_kind_of`]).
    pub fn subject_kind(&self) -> &'static str {
        subject_kind_of(self.type_name())
    }

    /// The stable event-type name carried in message headers and projections.
    pub const fn type_name(&self) -> &'static str {
        match self {
            ComplaintEvent::Received(_) => "complaint_received",
            ComplaintEvent::Routed(_) => "complaint_routed",
            ComplaintEvent::Rerouted { .. } => "complaint_rerouted",
            ComplaintEvent::VisibilityChanged(_) => "visibility_changed",
            ComplaintEvent::Acknowledged { .. } => "acknowledged",
            ComplaintEvent::Assigned { .. } => "assigned",
            ComplaintEvent::CustomerFollowedUp { .. } => "customer_followed_up",
            ComplaintEvent::ReturnAuthorized { .. } => "return_authorized",
            ComplaintEvent::ItemReceived => "item_received",
            ComplaintEvent::ItemProcessed { .. } => "item_processed",
            ComplaintEvent::ItemShippedBack { .. } => "item_shipped_back",
            ComplaintEvent::Resolved { .. } => "resolved",
            ComplaintEvent::Reopened { .. } => "reopened",
            ComplaintEvent::Withdrawn { .. } => "withdrawn",
            ComplaintEvent::SlaBreached { .. } => "sla_breached",
            ComplaintEvent::Reevaluated { .. } => "complaint_reevaluated",
        }
    }
}

/// The subject kind of the event type named `type_name`: the name without
/// the `complaint_` that the subject already says.
pub fn subject_kind_of(type_name: &str) -> &str {
    type_name.strip_prefix("complaint_").unwrap_or(type_name)
}

/// One CEO engagement taken from a budget window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeoSlot {
    /// Start of the window.
    pub window_start: Timestamp,
    /// The complaint the CEO engages with.
    pub complaint_id: ComplaintId,
    /// Its customer, by pseudonym.
    pub customer: CustomerRef,
    /// Its customer's segment.
    pub segment: Segment,
    /// Slots taken in the window, this one included.
    pub used: u32,
    /// Slots taken per segment in the window, this one included.
    pub segment_used: BTreeMap<String, u32>,
}

/// A fact about the company as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CompanyEvent {
    /// A routing policy version is in force from here on.
    PolicyPublished {
        /// The policy, its version included.
        policy: Box<RoutingPolicy>,
        /// Who published it.
        published_by: Label,
    },
    /// The operator set the economic climate.
    ClimateSet {
        /// The economic climate from now on.
        climate: Climate,
        /// Who set it.
        set_by: Label,
    },
    /// The operator set whether the company's stance matches its customers.
    StanceAlignmentSet {
        /// Whether the company's stance agrees with the cause, from now on.
        alignment: StanceAlignment,
        /// Who set it.
        set_by: Label,
    },
    /// A CEO engagement was reserved from a budget window.
    CeoSlotReserved(CeoSlot),
    /// A customer's personal data was erased: their data key is gone.
    CustomerErased {
        /// The customer, by pseudonym.
        customer: CustomerRef,
        /// Who erased it.
        erased_by: Label,
    },
}

impl CompanyEvent {
    /// The stable event-type name.
    pub const fn type_name(&self) -> &'static str {
        match self {
            CompanyEvent::PolicyPublished { .. } => "policy_published",
            CompanyEvent::ClimateSet { .. } => "climate_set",
            CompanyEvent::StanceAlignmentSet { .. } => "stance_alignment_set",
            CompanyEvent::CeoSlotReserved(_) => "ceo_slot_reserved",
            CompanyEvent::CustomerErased { .. } => "customer_erased",
        }
    }
}

/// Either kind of event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventPayload {
    /// About one complaint.
    Complaint(ComplaintEvent),
    /// About the company.
    Company(CompanyEvent),
    /// About who may call the services, or what an operator changed.
    Access(AccessEvent),
}

impl EventPayload {
    /// The stable event-type name.
    pub const fn type_name(&self) -> &'static str {
        match self {
            EventPayload::Complaint(e) => e.type_name(),
            EventPayload::Company(e) => e.type_name(),
            EventPayload::Access(e) => e.type_name(),
        }
    }
}

/// An event with the metadata that lets it be deduplicated, ordered and traced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id; the log's deduplication key.
    pub event_id: EventId,
    /// The complaint it belongs to; `None` for company events.
    pub complaint_id: Option<ComplaintId>,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Payload schema version.
    pub schema_version: u32,
    /// The event or request that caused it.
    pub causation_id: Option<uuid::Uuid>,
    /// The original request this stems from.
    pub correlation_id: Option<uuid::Uuid>,
    /// The fact itself.
    pub payload: EventPayload,
}
