//! The one path every command takes, whichever door it came through: parse,
//! check against the complaint's history, append with optimistic concurrency.

use std::time::SystemTime;

use plaint_bus::{AppendError, EventLog, Expect, trace};
use plaint_domain::event::{Envelope, EventPayload};
use plaint_domain::values::{AtField, SourceSystem, parse_occurred_at};
use plaint_domain::{
    Command, ComplaintEvent, ComplaintFacts, ComplaintId, EventId, SCHEMA_VERSION, Timestamp,
    decide,
};
use uuid::Uuid;

use crate::error::{Error, Result};

/// What a write produced: the consistency token for read-your-writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The complaint.
    pub complaint_id: ComplaintId,
    /// The stream sequence of the (first) stored event.
    pub sequence: u64,
    /// Nothing new was stored: the write had been made before.
    pub duplicate: bool,
    /// The event's id.
    pub event_id: EventId,
    /// For a duplicate submission: the request id the complaint was first
    /// submitted under, when it had one. Equal to the caller's own when this
    /// is the same request again (a retry, a redelivery).
    pub original_request_id: Option<Uuid>,
}

impl Written {
    /// Nothing new was stored because another request had stored it: a
    /// resubmission of the complaint, not a retry of the same request.
    pub fn duplicate_of_another(&self, request_id: Option<Uuid>) -> bool {
        self.duplicate
            && self
                .original_request_id
                .is_some_and(|o| Some(o) != request_id)
    }
}

/// Where a command came from, for tracing and causation.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The caller's idempotency key, if any.
    pub request_id: Option<Uuid>,
    /// The caller's W3C trace context, if any.
    pub traceparent: Option<String>,
    /// The helpdesk integration that sent the command, which may act only on
    /// complaints of its own source system; `None` for the gRPC door, whose
    /// callers the access gate vouches for.
    pub integration: Option<SourceSystem>,
}

/// The intake's core, shared by both doors.
#[derive(Debug, Clone)]
pub struct Intake {
    log: EventLog,
    conflict_retries: u32,
}

/// The wall clock, read once per command and passed into the domain.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// The trace context the stored event carries: the current span's when
/// traces are recorded (made a child of the caller's), else a child of the
/// caller's context, else a new trace.
fn traceparent(origin: &Origin) -> String {
    let span = tracing::Span::current();
    if let Some(parent) = &origin.traceparent {
        plaint_runtime::telemetry::set_parent(&span, parent);
    }
    plaint_runtime::telemetry::traceparent_of(&span).unwrap_or_else(|| {
        trace::child_of(
            origin.traceparent.as_deref(),
            rand_u64(),
            Uuid::new_v4().as_u128(),
        )
    })
}

fn rand_u64() -> u64 {
    (Uuid::new_v4().as_u128() & u128::from(u64::MAX)) as u64 | 1
}

impl Intake {
    /// The core over `log`.
    pub fn new(log: EventLog, conflict_retries: u32) -> Self {
        Self {
            log,
            conflict_retries: conflict_retries.max(1),
        }
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Registers a complaint. Idempotent on (source system, external ticket id):
    /// the complaint id derives from them, and creation expects an empty subject,
    /// so a resubmission, even long after the deduplication window, stores nothing.
    #[tracing::instrument(skip_all, fields(complaint_id = tracing::field::Empty, sequence = tracing::field::Empty), err)]
    pub async fn submit(
        &self,
        mut facts: ComplaintFacts,
        occurred_at_ms: i64,
        origin: &Origin,
    ) -> Result<Written> {
        check_own(origin, &facts.source_system)?;
        facts.customer.reference = self.log.data_keys().pseudonyms().of(&facts.customer.id);
        let now = now();
        let occurred_at = if occurred_at_ms == 0 {
            now
        } else {
            parse_occurred_at(occurred_at_ms, now).at("occurred_at_ms")?
        };
        let id = ComplaintId::for_ticket(&facts.source_system, &facts.external_ticket_id);
        tracing::Span::current().record("complaint_id", tracing::field::display(id));
        let event_id = EventId::derived(id.as_uuid(), "received", 0);
        let received = ComplaintEvent::Received(Box::new(facts));
        let subject = self.log.names().complaint_event(&id, &received);
        let envelope = Envelope {
            event_id,
            complaint_id: Some(id),
            occurred_at,
            schema_version: SCHEMA_VERSION,
            causation_id: origin.request_id,
            correlation_id: origin.request_id.or(Some(event_id.as_uuid())),
            payload: EventPayload::Complaint(received),
        };
        let tp = traceparent(origin);
        let written = match self
            .log
            .append(&subject, &envelope, Expect::Empty, Some(&tp))
            .await
        {
            Ok(a) if !a.duplicate => Written {
                complaint_id: id,
                sequence: a.sequence,
                duplicate: false,
                event_id,
                original_request_id: origin.request_id,
            },
            // Stored before: by this request (a retry) or by another.
            Ok(_) | Err(AppendError::WrongLastSequence) => {
                let first = self
                    .log
                    .first_on_subject(&self.log.names().complaint(&id))
                    .await?;
                let (sequence, event_id, original_request_id) = first
                    .map(|e| (e.sequence, e.envelope.event_id, e.envelope.causation_id))
                    .unwrap_or((0, event_id, None));
                Written {
                    complaint_id: id,
                    sequence,
                    duplicate: true,
                    event_id,
                    original_request_id,
                }
            }
            Err(e) => return Err(e.into()),
        };
        tracing::Span::current().record("sequence", written.sequence);
        count_write("submit", written.duplicate);
        Ok(written)
    }

    /// Runs a command on an existing complaint: rehydrates it, decides, appends
    /// expecting the subject unchanged, and retries a bounded number of times
    /// when another writer got there first.
    #[tracing::instrument(skip_all, fields(%complaint_id, command = command.name(), sequence = tracing::field::Empty), err)]
    pub async fn execute(
        &self,
        complaint_id: ComplaintId,
        command: Command,
        origin: &Origin,
    ) -> Result<Written> {
        let tp = traceparent(origin);
        for attempt in 0..self.conflict_retries {
            let plaint_bus::History {
                events: history,
                state,
                last_sequence: last,
            } = self.log.history(complaint_id).await?;
            if history.is_empty() {
                return Err(Error::NotFound(complaint_id.to_string()));
            }
            if let Some(complaint) = &state {
                check_own(origin, &complaint.facts.source_system)?;
            }
            let event_id = |i: u32| match origin.request_id {
                Some(r) => EventId::derived(r, command.name(), i),
                None => EventId::from_uuid(Uuid::new_v4()),
            };
            if origin.request_id.is_some() {
                let first = event_id(0);
                if let Some(done) = history.iter().find(|e| e.envelope.event_id == first) {
                    return Ok(Written {
                        complaint_id,
                        sequence: done.sequence,
                        duplicate: true,
                        event_id: first,
                        original_request_id: origin.request_id,
                    });
                }
            }
            let events = decide(state.as_ref(), &command)?;
            // The complaint's customer owns whatever personal data the new
            // events carry: it is sealed with their data key.
            let owner = state.as_ref().map(|c| &c.facts.customer.reference);
            let now = now();
            let mut expected = last;
            let mut first_written = None;
            for (i, event) in events.into_iter().enumerate() {
                let id = event_id(u32::try_from(i).unwrap_or(u32::MAX));
                let subject = self.log.names().complaint_event(&complaint_id, &event);
                let envelope = Envelope {
                    event_id: id,
                    complaint_id: Some(complaint_id),
                    occurred_at: now,
                    schema_version: SCHEMA_VERSION,
                    causation_id: origin.request_id,
                    correlation_id: history.first().and_then(|e| e.envelope.correlation_id),
                    payload: EventPayload::Complaint(event),
                };
                match self
                    .log
                    .append_for(
                        &subject,
                        &envelope,
                        owner,
                        Expect::LastSubjectSequence(expected),
                        Some(&tp),
                    )
                    .await
                {
                    Ok(a) => {
                        expected = a.sequence;
                        first_written.get_or_insert(Written {
                            complaint_id,
                            sequence: a.sequence,
                            duplicate: a.duplicate,
                            event_id: id,
                            original_request_id: origin.request_id,
                        });
                    }
                    Err(AppendError::WrongLastSequence) if first_written.is_none() => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(w) = first_written {
                tracing::Span::current().record("sequence", w.sequence);
                count_write(command.name(), w.duplicate);
                return Ok(w);
            }
            metrics::counter!("plaint_intake_conflicts_total").increment(1);
            tracing::debug!(attempt, "conflict, retrying");
        }
        Err(Error::Conflict {
            attempts: self.conflict_retries,
        })
    }
}

/// Refuses a helpdesk integration speaking for another source system.
fn check_own(origin: &Origin, source: &SourceSystem) -> Result<()> {
    match &origin.integration {
        Some(integration) if integration != source => Err(Error::NotItsOwn {
            integration: integration.as_str().to_owned(),
            source_system: source.as_str().to_owned(),
        }),
        _ => Ok(()),
    }
}

fn count_write(command: &'static str, duplicate: bool) {
    let outcome = if duplicate { "duplicate" } else { "stored" };
    metrics::counter!("plaint_intake_writes_total", "command" => command, "outcome" => outcome)
        .increment(1);
}
