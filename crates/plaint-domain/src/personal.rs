//! Erasure: what stands in a complaint, its events and its state once the
//! customer's personal data is gone.
//!
//! Which fields are personal is decided once, for the log's wire format
//! (`plaint_proto::personal`); these functions follow that decision for the
//! domain's own values. Routing facts, decisions and figures stay.

use crate::event::ComplaintEvent;
use crate::facts::ComplaintFacts;
use crate::lifecycle::Complaint;
use crate::values::{CustomerId, ExternalTicketId, FreeText, Label};

/// What stands where an erased value was, in every read model.
pub const ERASED: &str = "[erased]";

impl ComplaintFacts {
    /// Replaces who complained and what they said with the erased marker.
    pub fn erase_personal(&mut self) {
        self.external_ticket_id = ExternalTicketId::erased();
        self.customer.id = CustomerId::erased();
        self.summary = FreeText::erased();
    }
}

impl ComplaintEvent {
    /// Replaces the event's personal fields with the erased marker.
    pub fn erase_personal(&mut self) {
        match self {
            ComplaintEvent::Received(facts) => facts.erase_personal(),
            ComplaintEvent::Acknowledged { by } => *by = Label::erased(),
            ComplaintEvent::Assigned { assignee } => *assignee = Label::erased(),
            ComplaintEvent::CustomerFollowedUp { text } => *text = FreeText::erased(),
            ComplaintEvent::ReturnAuthorized { rma } => *rma = Label::erased(),
            ComplaintEvent::ItemShippedBack { tracking } => *tracking = Label::erased(),
            ComplaintEvent::Resolved { note, .. } => *note = FreeText::erased(),
            ComplaintEvent::Reopened { reason } | ComplaintEvent::Withdrawn { reason } => {
                *reason = FreeText::erased();
            }
            ComplaintEvent::Routed(_)
            | ComplaintEvent::Rerouted { .. }
            | ComplaintEvent::VisibilityChanged(_)
            | ComplaintEvent::ItemReceived
            | ComplaintEvent::ItemProcessed { .. }
            | ComplaintEvent::SlaBreached { .. }
            | ComplaintEvent::Reevaluated { .. } => {}
        }
    }
}

impl Complaint {
    /// Replaces the complaint's personal fields with the erased marker; its
    /// route, lifecycle and figures stay.
    pub fn erase_personal(&mut self) {
        self.facts.erase_personal();
        if self.assignee.is_some() {
            self.assignee = Some(Label::erased());
        }
    }
}
