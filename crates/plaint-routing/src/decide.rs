//! Deciding one complaint's route: one explained decision per complaint.
//!
//! Exactly-once comes from the log, not from this process: the decision is
//! appended expecting the complaint's subject unchanged since it was read, so
//! a redelivery, a crash between append and ack, or another replica finds the
//! decision already there and does nothing. The CEO budget is a compare-and-set
//! append on the window's budget subject, so it holds across replicas.

use std::time::SystemTime;

use plaint_bus::{AppendError, BusError, EventLog, Expect, History, trace};
use plaint_domain::event::{CeoSlot, CompanyEvent, ComplaintEvent, Envelope, EventPayload};
use plaint_domain::lifecycle::apply;
use plaint_domain::routing::RoutingContext;
use plaint_domain::{
    Command, Complaint, ComplaintId, Decision, DomainError, EventId, Route, RoutingFacts,
    SCHEMA_VERSION, Timestamp, decide, decide_route,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::engagements::Known;
use crate::shared_inputs::{BudgetState, SharedInputs};

/// Attempts to route one complaint when other writers keep moving its subject
/// or the budget subject.
const ROUTE_ATTEMPTS: u32 = 8;

/// The wall clock, read once per decision and passed into the domain.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// Where a decision takes the customer's last CEO engagement from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cooldown {
    /// The engagements this process keeps, up to 200 ms old: enough for a
    /// decision that does not engage the CEO, since a cooldown can only
    /// close the CEO route.
    Kept,
    /// The customer's engagement subject, read now.
    ReadTheSubject,
}

/// What handling one delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A decision was appended.
    Routed(Route),
    /// Nothing to do (already routed, not a routing trigger, unchanged route).
    Skipped,
    /// Decided again after a visibility change; the route held, and the
    /// decision made again was recorded with the gate that held it.
    Reevaluated,
}

/// Why a delivery could not be handled now.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The log is unreachable or refused a request; retry later.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Other writers kept moving the subjects.
    #[error("gave up after {0} conflicting attempts")]
    Contended(u32),
    /// The lifecycle refused the decision for a reason routing does not
    /// expect: retrying cannot change it.
    #[error("the lifecycle refused the decision: {0}")]
    Refused(#[source] DomainError),
}

impl RoutingError {
    /// Whether another delivery could succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, RoutingError::Refused(_))
    }
}

impl From<AppendError> for RoutingError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::WrongLastSequence => RoutingError::Contended(1),
            AppendError::Bus(b) => RoutingError::Bus(b),
        }
    }
}

/// The router's decision maker.
#[derive(Debug)]
pub struct Router {
    log: EventLog,
    /// The company's settings and the CEO budget, read once for all the
    /// routers of this process that ask at the same time.
    inputs: SharedInputs,
    /// Held from the re-check of a CEO decision's inputs to its engagement
    /// record, so routers of one process engage the CEO one at a time (the
    /// budget's compare-and-set covers other processes).
    ceo: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Router {
    /// The log it reads and appends to.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// A router over `log`.
    pub fn new(log: EventLog) -> Self {
        Self {
            inputs: SharedInputs::new(log.clone()),
            log,
            ceo: std::sync::Arc::default(),
        }
    }

    /// Another router over the same log that shares this one's reads of the
    /// company inputs and engages the CEO in turn with it.
    pub fn sibling(&self) -> Self {
        Self {
            log: self.log.clone(),
            inputs: self.inputs.clone(),
            ceo: std::sync::Arc::clone(&self.ceo),
        }
    }

    /// Handles one event of the log: a new complaint or a visibility change
    /// leads to a decision; anything else is skipped.
    pub async fn handle(
        &mut self,
        envelope: &Envelope,
        sequence: u64,
        traceparent: Option<&str>,
    ) -> Result<Outcome, RoutingError> {
        // A span per decision is worth its cost (about a tenth of the
        // router's CPU, its fields formatted for the logs) only when traces
        // are exported.
        let span = if plaint_runtime::telemetry::traces_enabled() {
            tracing::info_span!("handle", complaint_id = tracing::field::Empty, sequence)
        } else {
            tracing::Span::none()
        };
        self.handle_event(envelope, sequence, traceparent)
            .instrument(span)
            .await
    }

    async fn handle_event(
        &mut self,
        envelope: &Envelope,
        sequence: u64,
        traceparent: Option<&str>,
    ) -> Result<Outcome, RoutingError> {
        let (Some(id), EventPayload::Complaint(event)) = (envelope.complaint_id, &envelope.payload)
        else {
            return Ok(Outcome::Skipped);
        };
        self.inputs.saw(sequence);
        let span = tracing::Span::current();
        span.record("complaint_id", tracing::field::display(id));
        if let Some(parent) = traceparent {
            // The decision continues the trace that submitted the complaint.
            plaint_runtime::telemetry::set_parent(&span, parent);
        }
        // A complaint's first event is its whole history as of its own
        // sequence: decide from it without reading the subject, and append
        // expecting the subject unchanged since. If anything came after it
        // (a redelivery of a routed complaint, another replica, a later
        // event), the append fails and the next attempt reads the history.
        let (escalation, mut known) = match event {
            ComplaintEvent::Received(_) => (
                false,
                apply(None, id, event, envelope.occurred_at)
                    .ok()
                    .map(|c| (c, sequence)),
            ),
            ComplaintEvent::VisibilityChanged(_) => (true, None),
            _ => return Ok(Outcome::Skipped),
        };
        for attempt in 0..ROUTE_ATTEMPTS {
            // A retry (a conflict, and so every CEO route) reads the
            // customer's engagement subject itself.
            let cooldown = if attempt == 0 {
                Cooldown::Kept
            } else {
                Cooldown::ReadTheSubject
            };
            match self
                .try_route(
                    id,
                    known.take(),
                    envelope,
                    escalation,
                    cooldown,
                    traceparent,
                )
                .await
            {
                Err(RoutingError::Contended(_)) => {
                    tracing::debug!("conflict while routing, retrying");
                }
                other => return other,
            }
        }
        Err(RoutingError::Contended(ROUTE_ATTEMPTS))
    }

    /// One attempt: from `known` (the complaint and its subject's last
    /// sequence) when given, else from the history read now.
    async fn try_route(
        &mut self,
        id: ComplaintId,
        known: Option<(Complaint, u64)>,
        cause: &Envelope,
        escalation: bool,
        cooldown: Cooldown,
        traceparent: Option<&str>,
    ) -> Result<Outcome, RoutingError> {
        let began = std::time::Instant::now();
        let from_delivery = known.is_some();
        // Whether the log holds something this event already caused (a
        // redelivery, another replica): then there is nothing left to record.
        let (complaint, last_sequence, answered) = match known {
            Some((complaint, last)) => (complaint, last, false),
            None => {
                let History {
                    state,
                    last_sequence,
                    events,
                } = self.log.history(id).await?;
                let Some(complaint) = state else {
                    return Ok(Outcome::Skipped);
                };
                let cause_id = Some(cause.event_id.as_uuid());
                let answered = events.iter().any(|e| e.envelope.causation_id == cause_id);
                (complaint, last_sequence, answered)
            }
        };
        let already_routed = complaint.decision.is_some();
        // A new complaint is decided once; a visibility change only matters
        // for a routed, open complaint (an unrouted one is decided with its
        // latest visibility when its own event comes through).
        if already_routed != escalation
            || (escalation && !complaint.status.is_open_for_work())
            || (escalation && (answered || complaint.route() == Some(Route::Ceo)))
        {
            return Ok(Outcome::Skipped);
        }
        let customer = &complaint.facts.customer;
        let inputs = self.inputs.read_after(began, now).await?;
        let engagement_subject = self.log.names().ceo_customer(customer.reference.as_str());
        let kept = match cooldown {
            Cooldown::Kept => inputs.engagements.of(&engagement_subject),
            Cooldown::ReadTheSubject => Known::ReadTheSubject,
        };
        let customer_last_ceo = match kept {
            Known::Last(last) => last.filter(|e| e.complaint_id != Some(id)).map(|e| e.at),
            Known::ReadTheSubject => self.last_ceo_engagement(&engagement_subject, id).await?,
        };
        let policy = &inputs.policy;
        let now = now();
        if now.window_start(policy.window_ms()) != inputs.window_start {
            // The budget window turned since the read: read the new one.
            return Err(RoutingError::Contended(1));
        }
        let budget = &inputs.budget;
        let own_slot = budget.slots.iter().find(|s| s.complaint_id == id).cloned();
        // The complaint's own reservation (left by a crash between reserving
        // and deciding) must not count against it.
        let others: Vec<&CeoSlot> = budget
            .slots
            .iter()
            .filter(|s| s.complaint_id != id)
            .collect();
        let segment_used = others
            .iter()
            .filter(|s| s.segment == customer.segment)
            .count();
        let ctx = RoutingContext {
            policy,
            climate: inputs.company.climate,
            stance: inputs.company.stance,
            budget_used: u32::try_from(others.len()).unwrap_or(u32::MAX),
            segment_used: u32::try_from(segment_used).unwrap_or(u32::MAX),
            customer_last_ceo,
            now,
        };
        let decision = decide_route(
            &RoutingFacts::of(&complaint.facts, complaint.visibility),
            &ctx,
        );
        // Re-routing only escalates: a complaint that went viral may reach the
        // CEO; a CEO engagement is never taken back. A visibility change that
        // does not reach the CEO leaves the decision made again on record,
        // with the gate that held it (the budget used up, the cooldown …).
        if escalation && decision.route != Route::Ceo {
            let events = match decide(
                Some(&complaint),
                &Command::RecordReevaluation(Box::new(decision)),
            ) {
                Ok(events) => events,
                Err(e) => return refusal(e),
            };
            self.append_decision(&complaint, events, last_sequence, cause, traceparent)
                .await?;
            return Ok(Outcome::Reevaluated);
        }
        if from_delivery && decision.route == Route::Ceo {
            // A budget slot must not be taken for a complaint that may be
            // routed already: decide the CEO route from the history.
            return Err(RoutingError::Contended(1));
        }
        let events = match decide(
            Some(&complaint),
            &Command::RecordDecision(Box::new(decision.clone())),
        ) {
            Ok(events) => events,
            Err(e) => return refusal(e),
        };
        // A sibling may have engaged the CEO for this customer since the
        // cooldown was read: decide again if so (the budget's own
        // compare-and-set catches any other slot taken meanwhile).
        let _engaging = if decision.route == Route::Ceo {
            let guard = std::sync::Arc::clone(&self.ceo).lock_owned().await;
            if self.last_ceo_engagement(&engagement_subject, id).await? != customer_last_ceo {
                return Err(RoutingError::Contended(1));
            }
            Some(guard)
        } else {
            None
        };
        if decision.route == Route::Ceo && own_slot.is_none() {
            self.reserve(&complaint, &decision, budget, cause).await?;
        }
        let duplicate = self
            .append_decision(&complaint, events, last_sequence, cause, traceparent)
            .await?;
        if from_delivery && duplicate {
            // The log had this very decision already (a redelivery, another
            // replica), which the expected sequence cannot tell while the
            // server still remembers the event id: check the history.
            return Err(RoutingError::Contended(1));
        }
        if decision.route == Route::Ceo {
            self.record_engagement(&complaint, &decision, cause).await?;
        }
        // Debug, not info: at thousands of decisions a second, a line each
        // cost a twentieth of the router's CPU; decisions are in the log,
        // the queries and the metrics.
        tracing::debug!(
            complaint_id = %id,
            route = decision.route.name(),
            score = decision.score,
            "complaint routed"
        );
        Ok(Outcome::Routed(decision.route))
    }

    /// The last CEO engagement on a customer's engagement `subject`, unless
    /// it is this complaint's own.
    async fn last_ceo_engagement(
        &self,
        subject: &str,
        this: ComplaintId,
    ) -> Result<Option<Timestamp>, BusError> {
        let last = self.log.last_on_subject(subject).await?;
        Ok(last
            .filter(|e| e.envelope.complaint_id != Some(this))
            .map(|e| e.envelope.occurred_at))
    }

    /// Takes one slot of the window's budget by compare-and-set: appended
    /// only if nobody took a slot since the budget was read.
    async fn reserve(
        &self,
        complaint: &Complaint,
        decision: &Decision,
        budget: &BudgetState,
        cause: &Envelope,
    ) -> Result<(), RoutingError> {
        let customer = &complaint.facts.customer;
        let mut segment_used = std::collections::BTreeMap::new();
        for s in &budget.slots {
            *segment_used.entry(s.segment.to_string()).or_insert(0u32) += 1;
        }
        *segment_used
            .entry(customer.segment.to_string())
            .or_insert(0) += 1;
        let slot = CeoSlot {
            window_start: decision.budget_window_start,
            complaint_id: complaint.id,
            customer: customer.reference.clone(),
            segment: customer.segment.clone(),
            used: u32::try_from(budget.slots.len() + 1).unwrap_or(u32::MAX),
            segment_used,
        };
        let envelope = company_envelope(
            EventId::derived(complaint.id.as_uuid(), "ceo-slot", 0),
            decision.decided_at,
            cause,
            CompanyEvent::CeoSlotReserved(slot),
        );
        let expect = if budget.last_sequence == 0 {
            Expect::Empty
        } else {
            Expect::LastSubjectSequence(budget.last_sequence)
        };
        let subject = self.log.names().budget(decision.budget_window_start);
        self.log.append(&subject, &envelope, expect, None).await?;
        Ok(())
    }

    /// Appends the decision's events; `true` when the server already had the
    /// first of them (same event id), so nothing new was stored.
    async fn append_decision(
        &self,
        complaint: &Complaint,
        events: Vec<ComplaintEvent>,
        last_sequence: u64,
        cause: &Envelope,
        traceparent: Option<&str>,
    ) -> Result<bool, RoutingError> {
        let tp = plaint_runtime::telemetry::traceparent_of(&tracing::Span::current())
            .unwrap_or_else(|| trace::child_of(traceparent, span_id(), Uuid::new_v4().as_u128()));
        let mut expected = last_sequence;
        let mut duplicate = false;
        for (i, event) in events.into_iter().enumerate() {
            // Derived from the position it was decided at: replicas deciding
            // the same thing at the same point collapse into one message.
            let purpose = format!("{}@{last_sequence}", event.type_name());
            let subject = self.log.names().complaint_event(&complaint.id, &event);
            let envelope = Envelope {
                event_id: EventId::derived(
                    complaint.id.as_uuid(),
                    &purpose,
                    u32::try_from(i).unwrap_or(0),
                ),
                complaint_id: Some(complaint.id),
                occurred_at: now(),
                schema_version: SCHEMA_VERSION,
                causation_id: Some(cause.event_id.as_uuid()),
                correlation_id: cause.correlation_id,
                payload: EventPayload::Complaint(event),
            };
            let appended = self
                .log
                .append(
                    &subject,
                    &envelope,
                    Expect::LastSubjectSequence(expected),
                    Some(&tp),
                )
                .await?;
            expected = appended.sequence;
            duplicate |= i == 0 && appended.duplicate;
        }
        Ok(duplicate)
    }

    /// Marks the customer's engagement for the cooldown of later decisions.
    async fn record_engagement(
        &self,
        complaint: &Complaint,
        decision: &Decision,
        cause: &Envelope,
    ) -> Result<(), RoutingError> {
        let customer = &complaint.facts.customer;
        let slot = CeoSlot {
            window_start: decision.budget_window_start,
            complaint_id: complaint.id,
            customer: customer.reference.clone(),
            segment: customer.segment.clone(),
            used: 0,
            segment_used: Default::default(),
        };
        let mut envelope = company_envelope(
            EventId::derived(complaint.id.as_uuid(), "ceo-engagement", 0),
            decision.decided_at,
            cause,
            CompanyEvent::CeoSlotReserved(slot),
        );
        envelope.complaint_id = Some(complaint.id);
        let subject = self.log.names().ceo_customer(customer.reference.as_str());
        self.log
            .append(&subject, &envelope, Expect::Any, None)
            .await?;
        Ok(())
    }
}

/// What a refusal of the decision by the lifecycle comes to: nothing to do
/// for the refusals a decision meets in normal operation (the route did not
/// change, the complaint was closed meanwhile), an error for any other, so
/// that the event is dead-lettered with its reason instead of acked.
fn refusal(e: DomainError) -> Result<Outcome, RoutingError> {
    match e {
        DomainError::RouteUnchanged { .. }
        | DomainError::AlreadyResolved { .. }
        | DomainError::Withdrawn { .. } => Ok(Outcome::Skipped),
        other => Err(RoutingError::Refused(other)),
    }
}

fn span_id() -> u64 {
    (Uuid::new_v4().as_u128() as u64) | 1
}

fn company_envelope(
    event_id: EventId,
    at: Timestamp,
    cause: &Envelope,
    event: CompanyEvent,
) -> Envelope {
    Envelope {
        event_id,
        complaint_id: None,
        occurred_at: at,
        schema_version: SCHEMA_VERSION,
        causation_id: Some(cause.event_id.as_uuid()),
        correlation_id: cause.correlation_id,
        payload: EventPayload::Company(event),
    }
}

#[cfg(test)]
mod tests {
    use plaint_domain::lifecycle::Status;

    use super::*;

    #[test]
    fn refusals_of_normal_operation_are_skipped() {
        for e in [
            DomainError::AlreadyResolved {
                command: "record_decision",
            },
            DomainError::Withdrawn {
                command: "record_decision",
            },
        ] {
            assert!(matches!(refusal(e), Ok(Outcome::Skipped)));
        }
    }

    #[test]
    fn an_unexpected_refusal_is_an_error_no_retry_can_mend() {
        let e = DomainError::InvalidTransition {
            command: "record_decision",
            status: Status::Received,
        };
        let outcome = refusal(e);
        assert!(
            matches!(&outcome, Err(RoutingError::Refused(_))),
            "{outcome:?}"
        );
        if let Err(e) = outcome {
            assert!(!e.is_retryable());
            assert!(e.to_string().contains("refused the decision"), "{e}");
        }
    }

    #[test]
    fn infrastructure_errors_are_retried() {
        assert!(RoutingError::Contended(3).is_retryable());
        assert!(RoutingError::Bus(BusError::Unavailable("down".into())).is_retryable());
    }
}
