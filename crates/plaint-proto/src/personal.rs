//! Which fields of the event log hold personal data: the one place that says
//! so. A field of a `plaint.events.v1` message missing here fails the
//! classification test (`tests/personal.rs`), so no field reaches the log
//! without a decision about it.
//!
//! Routing facts (channel, category, reach, tier, segment, value and risk
//! figures, the decision and its reasons) are not personal: the router
//! needs them, and none of them names or describes a person. Identifiers
//! that lead back to a person (the customer's id in the source system, the
//! ticket id, a return authorisation, a parcel's tracking number, the
//! employee a complaint is assigned to) and free text written by or about
//! a customer are.

/// Whether a field holds personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// It names or describes a customer (or an employee handling their
    /// complaint): it is to be encrypted with the customer's data key.
    Personal,
    /// A routing fact, a system identifier or a figure: stored in clear.
    NotPersonal,
    /// The identity of an operator or a credential (`key:<id>`,
    /// `jwt:<subject>`) in the audit trail: not a customer's, kept in clear
    /// for accountability.
    Operator,
    /// A message-typed field: its own fields are classified.
    Nested,
}

use Class::{Nested, NotPersonal, Operator, Personal};

use crate::events::envelope::Event as E;

/// Every field of every message of `plaint.events.v1`, by full name.
pub const EVENT_FIELDS: &[(&str, Class)] = &[
    // The envelope: ids made by the system (the complaint id is a hash of
    // the source system and ticket id, not reversible without them).
    ("Envelope.event_id", NotPersonal),
    ("Envelope.complaint_id", NotPersonal),
    ("Envelope.occurred_at_ms", NotPersonal),
    ("Envelope.schema_version", NotPersonal),
    ("Envelope.causation_id", NotPersonal),
    ("Envelope.correlation_id", NotPersonal),
    ("Envelope.complaint_received", Nested),
    ("Envelope.complaint_routed", Nested),
    ("Envelope.complaint_rerouted", Nested),
    ("Envelope.visibility_changed", Nested),
    ("Envelope.acknowledged", Nested),
    ("Envelope.assigned", Nested),
    ("Envelope.customer_followed_up", Nested),
    ("Envelope.return_authorized", Nested),
    ("Envelope.item_received", Nested),
    ("Envelope.item_processed", Nested),
    ("Envelope.item_shipped_back", Nested),
    ("Envelope.resolved", Nested),
    ("Envelope.reopened", Nested),
    ("Envelope.withdrawn", Nested),
    ("Envelope.sla_breached", Nested),
    ("Envelope.complaint_reevaluated", Nested),
    ("ComplaintReevaluated.decision", Nested),
    ("ComplaintReevaluated.held_by", NotPersonal),
    ("Envelope.policy_published", Nested),
    ("Envelope.climate_set", Nested),
    ("Envelope.stance_alignment_set", Nested),
    ("Envelope.ceo_slot_reserved", Nested),
    ("Envelope.key_created", Nested),
    ("Envelope.key_expiry_set", Nested),
    ("Envelope.key_revoked", Nested),
    ("Envelope.audited", Nested),
    ("Envelope.customer_erased", Nested),
    ("Envelope.sealed", Nested),
    // The sealed block: ciphertext, and which customer's key opens it.
    ("Sealed.customer_ref", NotPersonal),
    ("Sealed.key_id", NotPersonal),
    ("Sealed.nonce", NotPersonal),
    ("Sealed.ciphertext", NotPersonal),
    ("PersonalValues.values", Personal),
    ("CustomerErased.customer_ref", NotPersonal),
    ("CustomerErased.erased_by", Operator),
    // The customer: who it is is personal; what routing weighs is not.
    ("Customer.customer_id", Personal),
    ("Customer.segment", NotPersonal),
    ("Customer.tier", NotPersonal),
    ("Customer.lifetime_value_cents", NotPersonal),
    ("Customer.churn_risk_pct", NotPersonal),
    // A keyed pseudonym: without the deployment's secret it leads nowhere,
    // and routing needs it to recognise a customer across complaints.
    ("Customer.customer_ref", NotPersonal),
    ("Visibility.audience_reach", NotPersonal),
    ("Visibility.shares", NotPersonal),
    ("Visibility.media_attention", NotPersonal),
    ("ComplaintReceived.source_system", NotPersonal),
    ("ComplaintReceived.external_ticket_id", Personal),
    ("ComplaintReceived.customer", Nested),
    ("ComplaintReceived.channel", NotPersonal),
    ("ComplaintReceived.category", NotPersonal),
    ("ComplaintReceived.visibility", Nested),
    ("ComplaintReceived.product_idea", NotPersonal),
    ("ComplaintReceived.item_sku", NotPersonal),
    ("ComplaintReceived.summary", Personal),
    // A decision and its reasons: made by the router from routing facts.
    ("Contribution.factor", NotPersonal),
    ("Contribution.observed", NotPersonal),
    ("Contribution.points", NotPersonal),
    ("Gate.kind", NotPersonal),
    ("Gate.observed", NotPersonal),
    ("Gate.limit", NotPersonal),
    ("Gate.passed", NotPersonal),
    ("Gate.note", NotPersonal),
    ("Gate.applicability", NotPersonal),
    ("WhyNot.route", NotPersonal),
    ("WhyNot.reason", NotPersonal),
    ("Decision.route", NotPersonal),
    ("Decision.fulfilment", NotPersonal),
    ("Decision.priority", NotPersonal),
    ("Decision.score", NotPersonal),
    ("Decision.ceo_threshold", NotPersonal),
    ("Decision.contributions", Nested),
    ("Decision.gates", Nested),
    ("Decision.why_not", Nested),
    ("Decision.policy_version", NotPersonal),
    ("Decision.climate", NotPersonal),
    ("Decision.stance", NotPersonal),
    ("Decision.decided_at_ms", NotPersonal),
    ("Decision.budget_window_start_ms", NotPersonal),
    ("Decision.sla", Nested),
    ("SlaTargets.acknowledge_secs", NotPersonal),
    ("SlaTargets.resolve_secs", NotPersonal),
    ("ComplaintRouted.decision", Nested),
    ("ComplaintRerouted.decision", Nested),
    ("ComplaintRerouted.previous_route", NotPersonal),
    ("VisibilityChanged.visibility", Nested),
    // The lifecycle: who handled it, and every text and reference that
    // leads to the customer.
    ("Acknowledged.by", Personal),
    ("Assigned.assignee", Personal),
    ("CustomerFollowedUp.text", Personal),
    ("ReturnAuthorized.rma", Personal),
    ("ItemProcessed.outcome", NotPersonal),
    ("ItemShippedBack.tracking", Personal),
    ("Resolved.satisfaction", NotPersonal),
    ("Resolved.note", Personal),
    ("Reopened.reason", Personal),
    ("Withdrawn.reason", Personal),
    ("SlaBreached.target", NotPersonal),
    ("SlaBreached.since_ms", NotPersonal),
    ("SlaBreached.due_at_ms", NotPersonal),
    ("SlaBreached.late_by_ms", NotPersonal),
    ("SlaBreached.raised_priority", NotPersonal),
    // Company settings and access: operators, not customers.
    ("PolicyPublished.version", NotPersonal),
    ("PolicyPublished.policy_json", NotPersonal),
    ("PolicyPublished.published_by", Operator),
    ("ClimateSet.climate", NotPersonal),
    ("ClimateSet.set_by", Operator),
    ("StanceAlignmentSet.alignment", NotPersonal),
    ("StanceAlignmentSet.set_by", Operator),
    ("CeoSlotReserved.window_start_ms", NotPersonal),
    ("CeoSlotReserved.complaint_id", NotPersonal),
    ("CeoSlotReserved.customer_id", Personal),
    ("CeoSlotReserved.customer_ref", NotPersonal),
    ("CeoSlotReserved.segment", NotPersonal),
    ("CeoSlotReserved.used", NotPersonal),
    ("CeoSlotReserved.segment_used", NotPersonal),
    ("KeyCreated.key_id", NotPersonal),
    ("KeyCreated.name", NotPersonal),
    ("KeyCreated.scopes", NotPersonal),
    ("KeyCreated.secret_sha256", NotPersonal),
    ("KeyCreated.expires_at_ms", NotPersonal),
    ("KeyCreated.created_by", Operator),
    ("KeyExpirySet.key_id", NotPersonal),
    ("KeyExpirySet.expires_at_ms", NotPersonal),
    ("KeyExpirySet.set_by", Operator),
    ("KeyRevoked.key_id", NotPersonal),
    ("KeyRevoked.revoked_by", Operator),
    // An audit entry records administrative changes, never a customer's
    // data: its target is a setting, a key id or a log sequence.
    ("Audited.actor", Operator),
    ("Audited.action", NotPersonal),
    ("Audited.target", NotPersonal),
    ("Audited.before", NotPersonal),
    ("Audited.after", NotPersonal),
];

/// The class of `field` (`Message.field` within `plaint.events.v1`), if it
/// is classified.
pub fn class_of(field: &str) -> Option<Class> {
    EVENT_FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, class)| *class)
}

/// The personal fields, by full name.
pub fn personal_fields() -> impl Iterator<Item = &'static str> {
    EVENT_FIELDS
        .iter()
        .filter(|(_, class)| *class == Personal)
        .map(|(name, _)| *name)
}

/// Visits every personal text field of an event, in an order that is part of
/// the log's format: a [`crate::events::Sealed`] block holds their values in
/// this order, so a field is only ever added at the end of its event's list.
/// Every event with personal fields visits all of them, empty or not.
pub fn for_each_personal(event: &mut E, visit: &mut dyn FnMut(&mut String)) {
    match event {
        E::ComplaintReceived(r) => {
            visit(&mut r.external_ticket_id);
            visit(&mut r.customer.get_or_insert_with(Default::default).customer_id);
            visit(&mut r.summary);
        }
        E::Acknowledged(a) => visit(&mut a.by),
        E::Assigned(a) => visit(&mut a.assignee),
        E::CustomerFollowedUp(f) => visit(&mut f.text),
        E::ReturnAuthorized(r) => visit(&mut r.rma),
        E::ItemShippedBack(s) => visit(&mut s.tracking),
        E::Resolved(r) => visit(&mut r.note),
        E::Reopened(r) => visit(&mut r.reason),
        E::Withdrawn(w) => visit(&mut w.reason),
        E::CeoSlotReserved(s) => visit(&mut s.customer_id),
        E::ComplaintRouted(_)
        | E::ComplaintRerouted(_)
        | E::VisibilityChanged(_)
        | E::ItemReceived(_)
        | E::ItemProcessed(_)
        | E::SlaBreached(_)
        | E::ComplaintReevaluated(_)
        | E::PolicyPublished(_)
        | E::ClimateSet(_)
        | E::StanceAlignmentSet(_)
        | E::CustomerErased(_)
        | E::KeyCreated(_)
        | E::KeyExpirySet(_)
        | E::KeyRevoked(_)
        | E::Audited(_) => {}
    }
}

/// Takes the personal values out of an event, leaving its fields empty;
/// `None` when it holds none (all empty, or an event without such fields).
pub fn take_personal(event: &mut E) -> Option<Vec<String>> {
    let mut values = Vec::new();
    for_each_personal(event, &mut |field| values.push(std::mem::take(field)));
    values.iter().any(|v| !v.is_empty()).then_some(values)
}

/// Puts values taken by [`take_personal`] back; `false` when their number
/// does not match the event's personal fields.
pub fn restore_personal(event: &mut E, values: Vec<String>) -> bool {
    let mut count = 0;
    for_each_personal(event, &mut |_| count += 1);
    if count != values.len() {
        return false;
    }
    let mut values = values.into_iter();
    for_each_personal(event, &mut |field| {
        *field = values.next().unwrap_or_default()
    });
    true
}

/// Writes `marker` into every personal field of an event.
pub fn mark_personal(event: &mut E, marker: &str) {
    for_each_personal(event, &mut |field| *field = marker.to_owned());
}
