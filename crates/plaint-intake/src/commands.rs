//! Wire requests to domain commands, once, for both doors.

use plaint_domain::values::{
    AtField, ComplaintId, CustomerRef, Problem, Satisfaction, ValidationError,
};
use plaint_domain::{Command, ComplaintFacts};
use plaint_proto::convert::{FromWire, facts_from_wire, label, text, visibility_from_wire};
use plaint_proto::{events as epb, intake as pb};
use uuid::Uuid;

/// A parsed request, ready for the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A new complaint.
    Submit {
        /// What it states.
        facts: Box<ComplaintFacts>,
        /// When it happened (0 = now).
        occurred_at_ms: i64,
    },
    /// A fact about an existing complaint.
    Command {
        /// Which complaint.
        complaint_id: ComplaintId,
        /// The caller's idempotency key.
        request_id: Option<Uuid>,
        /// What to do.
        command: Command,
    },
}

/// Parses a submission.
pub(crate) fn submit(r: pb::SubmitComplaintRequest) -> Result<Parsed, ValidationError> {
    let occurred_at_ms = r.occurred_at_ms;
    // The pseudonym is the service's to compute (`Intake::submit`), never the
    // caller's: whatever came is replaced by a placeholder until then.
    let customer = r.customer.map(|c| epb::Customer {
        customer_ref: CustomerRef::from_digest(&[0; 16]).to_string(),
        ..c
    });
    let facts = facts_from_wire(epb::ComplaintReceived {
        source_system: r.source_system,
        external_ticket_id: r.external_ticket_id,
        customer,
        channel: r.channel,
        category: r.category,
        visibility: r.visibility,
        product_idea: r.product_idea,
        item_sku: r.item_sku,
        summary: r.summary,
    })?;
    Ok(Parsed::Submit {
        facts: Box::new(facts),
        occurred_at_ms,
    })
}

fn with_header(
    header: Option<pb::CommandHeader>,
    command: impl FnOnce() -> Result<Command, ValidationError>,
) -> Result<Parsed, ValidationError> {
    let h = header.ok_or_else(|| ValidationError::new("header", Problem::Missing))?;
    let complaint_id = ComplaintId::parse(&h.complaint_id).at("header.complaint_id")?;
    let request_id = if h.request_id.is_empty() {
        None
    } else {
        Some(Uuid::try_parse(&h.request_id).map_err(|_| {
            ValidationError::new(
                "header.request_id",
                Problem::Malformed { expected: "a UUID" },
            )
        })?)
    };
    Ok(Parsed::Command {
        complaint_id,
        request_id,
        command: command()?,
    })
}

/// Parses a follow-up.
pub(crate) fn follow_up(r: pb::RecordFollowUpRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::RecordFollowUp {
            text: text(&r.text, "text")?,
        })
    })
}

/// Parses a visibility change.
pub(crate) fn change_visibility(r: pb::ChangeVisibilityRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        if r.visibility.is_none() {
            return Err(ValidationError::new("visibility", Problem::Missing));
        }
        Ok(Command::ChangeVisibility(visibility_from_wire(
            r.visibility,
            "visibility",
        )?))
    })
}

/// Parses an acknowledgement.
pub(crate) fn acknowledge(r: pb::AcknowledgeRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::Acknowledge {
            by: label(&r.by, "by")?,
        })
    })
}

/// Parses an assignment.
pub(crate) fn assign(r: pb::AssignRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::Assign {
            assignee: label(&r.assignee, "assignee")?,
        })
    })
}

/// Parses a return authorization.
pub(crate) fn authorize_return(r: pb::AuthorizeReturnRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::AuthorizeReturn {
            rma: label(&r.rma, "rma")?,
        })
    })
}

/// Parses an item receipt.
pub(crate) fn receive_item(r: pb::ReceiveItemRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || Ok(Command::ReceiveItem))
}

/// Parses an item outcome.
pub(crate) fn process_item(r: pb::ProcessItemRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::ProcessItem {
            outcome: FromWire::from_wire(r.outcome, "outcome")?,
        })
    })
}

/// Parses a ship-back.
pub(crate) fn ship_back(r: pb::ShipBackRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::ShipBack {
            tracking: label(&r.tracking, "tracking")?,
        })
    })
}

/// Parses a resolution.
pub(crate) fn resolve(r: pb::ResolveRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::Resolve {
            satisfaction: Satisfaction::parse(r.satisfaction).at("satisfaction")?,
            note: text(&r.note, "note")?,
        })
    })
}

/// Parses a reopening.
pub(crate) fn reopen(r: pb::ReopenRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::Reopen {
            reason: text(&r.reason, "reason")?,
        })
    })
}

/// Parses a withdrawal.
pub(crate) fn withdraw(r: pb::WithdrawRequest) -> Result<Parsed, ValidationError> {
    with_header(r.header, || {
        Ok(Command::Withdraw {
            reason: text(&r.reason, "reason")?,
        })
    })
}

/// Parses a helpdesk message (protobuf form).
pub(crate) fn helpdesk(m: pb::HelpdeskMessage) -> Result<Parsed, ValidationError> {
    use pb::helpdesk_message::Command as C;
    match m
        .command
        .ok_or_else(|| ValidationError::new("command", Problem::Missing))?
    {
        C::Submit(r) => submit(r),
        C::FollowUp(r) => follow_up(r),
        C::ChangeVisibility(r) => change_visibility(r),
        C::Acknowledge(r) => acknowledge(r),
        C::Assign(r) => assign(r),
        C::AuthorizeReturn(r) => authorize_return(r),
        C::ReceiveItem(r) => receive_item(r),
        C::ProcessItem(r) => process_item(r),
        C::ShipBack(r) => ship_back(r),
        C::Resolve(r) => resolve(r),
        C::Reopen(r) => reopen(r),
        C::Withdraw(r) => withdraw(r),
    }
}
