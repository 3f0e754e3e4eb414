//! Projection rows as wire messages.

use plaint_domain::lifecycle::Status;
use plaint_domain::values::{AtField, Problem, ValidationError};
use plaint_domain::{ComplaintId, Timestamp};
use plaint_proto::ToWire;
use plaint_proto::router as pb;

use plaint_projection::store::{ComplaintChange, ComplaintRow, TimelineRow, name_of};

/// The wire summary of a complaint row.
pub(crate) fn summary(row: &ComplaintRow) -> pb::ComplaintSummary {
    pb::ComplaintSummary {
        complaint_id: row.complaint_id.to_string(),
        source_system: row.source_system.clone(),
        external_ticket_id: row.external_ticket_id.clone(),
        customer_id: row.customer_id.clone(),
        segment: row.segment.clone(),
        channel: row.channel.to_wire(),
        category: row.category.to_wire(),
        status: ToWire::<i32>::to_wire(&row.status),
        route: row.route.map_or(0, |r| r.to_wire()),
        fulfilment: row.fulfilment.map_or(0, |f| f.to_wire()),
        priority: row.priority.map_or(0, |p| p.to_wire()),
        received_at_ms: row.received_at.as_millis(),
        routed_at_ms: millis(row.routed_at),
        resolved_at_ms: millis(row.resolved_at),
        satisfaction: row.satisfaction.unwrap_or(0),
        assignee: row.assignee.clone().unwrap_or_default(),
        last_sequence: row.last_sequence,
        fulfilment_step: row.fulfilment_step.map(|s| name_of(&s)).unwrap_or_default(),
    }
}

/// The watch message of an applied complaint event.
pub(crate) fn complaint_update(change: &ComplaintChange) -> pb::ComplaintUpdate {
    pb::ComplaintUpdate {
        complaint: Some(summary(&change.complaint)),
        event_type: change.event_type.to_string(),
        sequence: change.sequence,
        missed: 0,
    }
}

/// A timeline entry on the wire.
pub(crate) fn timeline_entry(t: TimelineRow) -> pb::TimelineEntry {
    pb::TimelineEntry {
        sequence: t.sequence,
        event_id: t.event_id.to_string(),
        event_type: t.event_type,
        occurred_at_ms: t.occurred_at.as_millis(),
        detail_json: t.detail_json,
    }
}

/// 0 for "never".
fn millis(t: Option<Timestamp>) -> i64 {
    t.map_or(0, Timestamp::as_millis)
}

/// An instant filter: 0 means "no bound".
pub(crate) fn bound(ms: i64) -> Option<Timestamp> {
    (ms != 0).then(|| Timestamp::from_millis(ms))
}

/// A required complaint id.
pub(crate) fn complaint_id(raw: &str, field: &str) -> Result<ComplaintId, ValidationError> {
    ComplaintId::parse(raw.trim()).at(field)
}

/// An optional status filter; `UNSPECIFIED` means any.
pub(crate) fn status_filter(raw: i32) -> Result<Option<Status>, ValidationError> {
    plaint_proto::convert::optional_enum(raw, "status")
}

/// A malformed value of `field`.
pub(crate) fn malformed(field: &str, expected: &'static str) -> ValidationError {
    ValidationError::new(field, Problem::Malformed { expected })
}
