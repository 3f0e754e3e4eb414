//! The log's message format: a domain [`Envelope`] as protobuf bytes.
//!
//! Decoding parses every field again, so a message that reaches a consumer is
//! as valid as one that came through the front door, and any bytes at all
//! yield either an envelope or a [`DecodeError`], never a panic.

use std::collections::BTreeMap;

use plaint_domain::event::{CeoSlot, CompanyEvent, ComplaintEvent, Envelope, EventPayload};
use plaint_domain::values::{
    AtField, ComplaintId, CustomerRef, EventId, Problem, Satisfaction, Segment, ValidationError,
};
use plaint_domain::{Climate, Route, RoutingPolicy, StanceAlignment, Timestamp};
use prost::Message;

use crate::convert::{
    FromWire, ToWire, access_event_from_wire, access_event_to_wire, decision_from_wire,
    decision_to_wire, facts_from_wire, facts_to_wire, label, optional_enum, text,
    visibility_from_wire, visibility_to_wire,
};
use crate::events as pb;
use pb::envelope::Event as E;

/// Why bytes are not a valid envelope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not protobuf of the envelope's shape.
    #[error("not a protobuf envelope: {0}")]
    Protobuf(String),
    /// The envelope carries no event, or one this version does not know.
    #[error("the envelope carries no event this version understands")]
    UnknownEvent,
    /// A field breaks a domain rule.
    #[error("invalid envelope: {0}")]
    Invalid(#[from] ValidationError),
    /// The personal fields are still sealed: open them first.
    #[error("the envelope's personal fields are still sealed")]
    Sealed,
    /// The stored policy is not valid.
    #[error("invalid stored policy: {0}")]
    Policy(String),
}

/// Encodes an envelope as protobuf bytes.
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    envelope_to_wire(envelope).encode_to_vec()
}

/// The wire form of an envelope.
pub fn envelope_to_wire(e: &Envelope) -> pb::Envelope {
    pb::Envelope {
        event_id: e.event_id.to_string(),
        complaint_id: e.complaint_id.map(|c| c.to_string()).unwrap_or_default(),
        occurred_at_ms: e.occurred_at.as_millis(),
        schema_version: e.schema_version,
        causation_id: e.causation_id.map(|u| u.to_string()).unwrap_or_default(),
        correlation_id: e.correlation_id.map(|u| u.to_string()).unwrap_or_default(),
        sealed: None,
        event: Some(match &e.payload {
            EventPayload::Complaint(c) => complaint_event_to_wire(c),
            EventPayload::Company(c) => company_event_to_wire(c),
            EventPayload::Access(a) => access_event_to_wire(a),
        }),
    }
}

/// The wire form of a complaint event.
pub fn complaint_event_to_wire(event: &ComplaintEvent) -> E {
    match event {
        ComplaintEvent::Received(f) => E::ComplaintReceived(facts_to_wire(f)),
        ComplaintEvent::Routed(d) => E::ComplaintRouted(pb::ComplaintRouted {
            decision: Some(decision_to_wire(d)),
        }),
        ComplaintEvent::Rerouted { decision, previous } => {
            E::ComplaintRerouted(pb::ComplaintRerouted {
                decision: Some(decision_to_wire(decision)),
                previous_route: previous.to_wire(),
            })
        }
        ComplaintEvent::VisibilityChanged(v) => E::VisibilityChanged(pb::VisibilityChanged {
            visibility: Some(visibility_to_wire(v)),
        }),
        ComplaintEvent::Acknowledged { by } => {
            E::Acknowledged(pb::Acknowledged { by: by.to_string() })
        }
        ComplaintEvent::Assigned { assignee } => E::Assigned(pb::Assigned {
            assignee: assignee.to_string(),
        }),
        ComplaintEvent::CustomerFollowedUp { text } => {
            E::CustomerFollowedUp(pb::CustomerFollowedUp {
                text: text.as_str().to_owned(),
            })
        }
        ComplaintEvent::ReturnAuthorized { rma } => E::ReturnAuthorized(pb::ReturnAuthorized {
            rma: rma.to_string(),
        }),
        ComplaintEvent::ItemReceived => E::ItemReceived(pb::ItemReceived {}),
        ComplaintEvent::ItemProcessed { outcome } => E::ItemProcessed(pb::ItemProcessed {
            outcome: outcome.to_wire(),
        }),
        ComplaintEvent::ItemShippedBack { tracking } => E::ItemShippedBack(pb::ItemShippedBack {
            tracking: tracking.to_string(),
        }),
        ComplaintEvent::Resolved { satisfaction, note } => E::Resolved(pb::Resolved {
            satisfaction: satisfaction.get(),
            note: note.as_str().to_owned(),
        }),
        ComplaintEvent::Reopened { reason } => E::Reopened(pb::Reopened {
            reason: reason.as_str().to_owned(),
        }),
        ComplaintEvent::Withdrawn { reason } => E::Withdrawn(pb::Withdrawn {
            reason: reason.as_str().to_owned(),
        }),
        ComplaintEvent::Reevaluated { decision, held_by } => {
            E::ComplaintReevaluated(pb::ComplaintReevaluated {
                decision: Some(decision_to_wire(decision)),
                held_by: held_by.map_or(0, |g| g.to_wire()),
            })
        }
        ComplaintEvent::SlaBreached {
            target,
            since,
            due_at,
            late_by_ms,
            raised_priority,
        } => E::SlaBreached(pb::SlaBreached {
            target: target.to_wire(),
            since_ms: since.as_millis(),
            due_at_ms: due_at.as_millis(),
            late_by_ms: *late_by_ms,
            raised_priority: raised_priority.map_or(0, |p| p.to_wire()),
        }),
    }
}

fn company_event_to_wire(event: &CompanyEvent) -> E {
    match event {
        CompanyEvent::PolicyPublished {
            policy,
            published_by,
        } => E::PolicyPublished(pb::PolicyPublished {
            version: policy.version,
            policy_json: policy.to_json(),
            published_by: published_by.to_string(),
        }),
        CompanyEvent::ClimateSet { climate, set_by } => E::ClimateSet(pb::ClimateSet {
            climate: climate.to_wire(),
            set_by: set_by.to_string(),
        }),
        CompanyEvent::StanceAlignmentSet { alignment, set_by } => {
            E::StanceAlignmentSet(pb::StanceAlignmentSet {
                alignment: alignment.to_wire(),
                set_by: set_by.to_string(),
            })
        }
        CompanyEvent::CeoSlotReserved(slot) => E::CeoSlotReserved(pb::CeoSlotReserved {
            window_start_ms: slot.window_start.as_millis(),
            complaint_id: slot.complaint_id.to_string(),
            customer_id: String::new(),
            customer_ref: slot.customer.to_string(),
            segment: slot.segment.to_string(),
            used: slot.used,
            segment_used: slot.segment_used.clone().into_iter().collect(),
        }),
        CompanyEvent::CustomerErased {
            customer,
            erased_by,
        } => E::CustomerErased(pb::CustomerErased {
            customer_ref: customer.to_string(),
            erased_by: erased_by.to_string(),
        }),
    }
}

/// Decodes and validates an envelope from protobuf bytes.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let wire = pb::Envelope::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    envelope_from_wire(wire)
}

/// Parses a wire envelope.
pub fn envelope_from_wire(w: pb::Envelope) -> Result<Envelope, DecodeError> {
    if w.sealed.is_some() {
        return Err(DecodeError::Sealed);
    }
    let event_id = EventId::parse(&w.event_id).at("event_id")?;
    let complaint_id = optional_uuid(&w.complaint_id, "complaint_id")?.map(ComplaintId::from_uuid);
    let causation_id = optional_uuid(&w.causation_id, "causation_id")?;
    let correlation_id = optional_uuid(&w.correlation_id, "correlation_id")?;
    let event = w.event.ok_or(DecodeError::UnknownEvent)?;
    let payload = match complaint_event_from_wire(event)? {
        Ok(c) => {
            if complaint_id.is_none() {
                return Err(ValidationError::new("complaint_id", Problem::Missing).into());
            }
            EventPayload::Complaint(c)
        }
        Err(other) => match access_event_from_wire(other)? {
            Ok(access) => EventPayload::Access(access),
            Err(company) => EventPayload::Company(company_event_from_wire(company)?),
        },
    };
    Ok(Envelope {
        event_id,
        complaint_id,
        occurred_at: Timestamp::from_millis(w.occurred_at_ms),
        schema_version: w.schema_version,
        causation_id,
        correlation_id,
        payload,
    })
}

fn optional_uuid(raw: &str, field: &str) -> Result<Option<uuid::Uuid>, ValidationError> {
    if raw.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::try_parse(raw)
        .map(Some)
        .map_err(|_| ValidationError::new(field, Problem::Malformed { expected: "a UUID" }))
}

/// A complaint event, or the wire event back when it is a company event.
fn complaint_event_from_wire(event: E) -> Result<Result<ComplaintEvent, E>, DecodeError> {
    Ok(Ok(match event {
        E::ComplaintReceived(r) => ComplaintEvent::Received(Box::new(facts_from_wire(r)?)),
        E::ComplaintRouted(r) => {
            ComplaintEvent::Routed(Box::new(decision_from_wire(r.decision, "decision")?))
        }
        E::ComplaintRerouted(r) => ComplaintEvent::Rerouted {
            decision: Box::new(decision_from_wire(r.decision, "decision")?),
            previous: Route::from_wire(r.previous_route, "previous_route")?,
        },
        E::VisibilityChanged(v) => {
            ComplaintEvent::VisibilityChanged(visibility_from_wire(v.visibility, "visibility")?)
        }
        E::Acknowledged(a) => ComplaintEvent::Acknowledged {
            by: label(&a.by, "by")?,
        },
        E::Assigned(a) => ComplaintEvent::Assigned {
            assignee: label(&a.assignee, "assignee")?,
        },
        E::CustomerFollowedUp(f) => ComplaintEvent::CustomerFollowedUp {
            text: text(&f.text, "text")?,
        },
        E::ReturnAuthorized(r) => ComplaintEvent::ReturnAuthorized {
            rma: label(&r.rma, "rma")?,
        },
        E::ItemReceived(_) => ComplaintEvent::ItemReceived,
        E::ItemProcessed(p) => ComplaintEvent::ItemProcessed {
            outcome: FromWire::from_wire(p.outcome, "outcome")?,
        },
        E::ItemShippedBack(s) => ComplaintEvent::ItemShippedBack {
            tracking: label(&s.tracking, "tracking")?,
        },
        E::Resolved(r) => ComplaintEvent::Resolved {
            satisfaction: Satisfaction::parse(r.satisfaction).at("satisfaction")?,
            note: text(&r.note, "note")?,
        },
        E::Reopened(r) => ComplaintEvent::Reopened {
            reason: text(&r.reason, "reason")?,
        },
        E::Withdrawn(w) => ComplaintEvent::Withdrawn {
            reason: text(&w.reason, "reason")?,
        },
        E::ComplaintReevaluated(r) => ComplaintEvent::Reevaluated {
            decision: Box::new(decision_from_wire(r.decision, "decision")?),
            held_by: optional_enum(r.held_by, "held_by")?,
        },
        E::SlaBreached(b) => ComplaintEvent::SlaBreached {
            target: FromWire::from_wire(b.target, "target")?,
            since: Timestamp::from_millis(b.since_ms),
            due_at: Timestamp::from_millis(b.due_at_ms),
            late_by_ms: b.late_by_ms,
            raised_priority: optional_enum(b.raised_priority, "raised_priority")?,
        },
        other => return Ok(Err(other)),
    }))
}

fn company_event_from_wire(event: E) -> Result<CompanyEvent, DecodeError> {
    Ok(match event {
        E::PolicyPublished(p) => {
            let policy = RoutingPolicy::from_json(&p.policy_json)
                .map_err(|e| DecodeError::Policy(e.to_string()))?;
            CompanyEvent::PolicyPublished {
                policy: Box::new(policy),
                published_by: label(&p.published_by, "published_by")?,
            }
        }
        E::ClimateSet(c) => CompanyEvent::ClimateSet {
            climate: Climate::from_wire(c.climate, "climate")?,
            set_by: label(&c.set_by, "set_by")?,
        },
        E::StanceAlignmentSet(s) => CompanyEvent::StanceAlignmentSet {
            alignment: StanceAlignment::from_wire(s.alignment, "alignment")?,
            set_by: label(&s.set_by, "set_by")?,
        },
        E::CeoSlotReserved(s) => CompanyEvent::CeoSlotReserved(CeoSlot {
            window_start: Timestamp::from_millis(s.window_start_ms),
            complaint_id: ComplaintId::parse(&s.complaint_id).at("complaint_id")?,
            customer: CustomerRef::parse(&s.customer_ref).at("customer_ref")?,
            segment: Segment::parse(&s.segment).at("segment")?,
            used: s.used,
            segment_used: s.segment_used.into_iter().collect::<BTreeMap<_, _>>(),
        }),
        E::CustomerErased(e) => CompanyEvent::CustomerErased {
            customer: CustomerRef::parse(&e.customer_ref).at("customer_ref")?,
            erased_by: label(&e.erased_by, "erased_by")?,
        },
        _ => return Err(DecodeError::UnknownEvent),
    })
}
