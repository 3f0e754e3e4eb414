//! Tells each helpdesk integration what became of the complaints of its
//! source system: the decision, each re-routing and every later change, on
//! `<prefix>.helpdesk.outbound.<integration>.update`.
//!
//! One replica at a time does it (a lease), reading the log through its own
//! durable consumer in log order, so an integration hears a complaint's
//! changes in the order they happened. At least once: a message sent again
//! carries the same key (the event id), which the outbound stream also
//! deduplicates within its window.

use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use plaint_bus::outbound::{BreachInBrief, DecisionInBrief, Update};
use plaint_bus::{
    BusError, Consume, ConsumerSettings, Deliveries, Delivery, EventLog, GaveUp, Names, Outbound,
    OutboundMessage, RetryPolicy, consume_until_stopped,
};
use plaint_domain::event::{ComplaintEvent, EventPayload, subject_kind_of};
use plaint_domain::{Complaint, ComplaintId, Decision, Route};
use tokio_util::sync::CancellationToken;

/// The lease whose holder sends the updates.
pub const HELPDESK_UPDATES_LEASE: &str = "helpdesk-updates";
/// The event types an integration hears of: all but the submission itself,
/// which its receipt answers.
pub const UPDATE_TYPES: [&str; 14] = [
    "complaint_routed",
    "complaint_rerouted",
    "visibility_changed",
    "acknowledged",
    "assigned",
    "customer_followed_up",
    "return_authorized",
    "item_received",
    "item_processed",
    "item_shipped_back",
    "resolved",
    "reopened",
    "withdrawn",
    "sla_breached",
];
/// Complaints whose integration (or lack of one) is remembered.
const REMEMBERED: NonZeroUsize = match NonZeroUsize::new(100_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// Attempts at sending one update before it is left for redelivery.
const SEND_ATTEMPTS: u32 = 5;

/// The consumer the updates are read through.
pub fn consumer_settings(names: &Names) -> ConsumerSettings {
    let filters = UPDATE_TYPES
        .iter()
        .map(|t| names.complaints_of_kind(subject_kind_of(t)))
        .collect();
    ConsumerSettings::filtered(names.consumer("helpdesk_updates"), filters)
}

/// Sends updates until `stop` is cancelled; `Err` when NATS stays
/// unreachable past the retry budget.
pub async fn run(
    log: EventLog,
    outbound: Outbound,
    retry: RetryPolicy,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let mut relay = Relay {
        settings: consumer_settings(log.names()),
        log,
        outbound,
        sources: LruCache::new(REMEMBERED),
    };
    consume_until_stopped("helpdesk updates", &mut relay, retry, &stop).await
}

/// How often what integrations have not read yet is measured.
const PENDING_INTERVAL: Duration = Duration::from_secs(5);

/// Publishes `plaint_outbound_pending{integration}`, the messages each
/// integration has not read or acknowledged yet, until `stop` is cancelled.
pub async fn measure_pending(outbound: Outbound, stop: CancellationToken) {
    loop {
        match outbound.backlogs().await {
            Ok(backlogs) => {
                for (integration, pending) in backlogs {
                    metrics::gauge!("plaint_outbound_pending", "integration" => integration)
                        .set(pending as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot measure what integrations have not read"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PENDING_INTERVAL) => {}
        }
    }
}

/// Whose a complaint is: the integration that reads its updates and its
/// ticket id there, or `None` when its source system reads none.
type Source = Option<(String, String)>;

struct Relay {
    log: EventLog,
    outbound: Outbound,
    settings: ConsumerSettings,
    sources: LruCache<ComplaintId, Source>,
}

impl Consume for Relay {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.log.consume(&self.settings).await
    }

    async fn handle(&mut self, d: Delivery) {
        match self.update_for(&d).await {
            Ok(None) => {}
            Ok(Some((integration, update))) => {
                if !self.send(&integration, &update).await {
                    let _ = d.nak(Duration::from_secs(1)).await;
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, sequence = d.stream_sequence, "cannot build a helpdesk update; will retry");
                let _ = d.nak(Duration::from_secs(1)).await;
                return;
            }
        }
        if let Err(e) = d.ack().await {
            tracing::warn!(error = %e, "ack failed; the update will be sent again");
        }
    }
}

impl Relay {
    /// The update `d` makes, and for whom; `None` when no integration
    /// reads about its complaint (or it is no complaint event).
    async fn update_for(
        &mut self,
        d: &Delivery,
    ) -> Result<Option<(String, OutboundMessage)>, BusError> {
        let envelope = match self.log.decode_masked(d.payload()) {
            Ok(e) => e,
            Err(e) => {
                // The routing consumer dead-letters what cannot be decoded.
                tracing::warn!(error = %e, sequence = d.stream_sequence, "skipping an event that cannot be decoded");
                return Ok(None);
            }
        };
        let (Some(id), EventPayload::Complaint(event)) = (envelope.complaint_id, &envelope.payload)
        else {
            return Ok(None);
        };
        let Some((integration, ticket)) = self.source_of(id).await? else {
            return Ok(None);
        };
        let history = self.log.history(id).await?;
        let Some(state) = history.state_at(d.stream_sequence)? else {
            return Ok(None);
        };
        let update = Update {
            event_id: envelope.event_id.to_string(),
            complaint_id: id.to_string(),
            external_ticket_id: ticket,
            sequence: d.stream_sequence,
            event_type: event.type_name().to_owned(),
            occurred_at_ms: envelope.occurred_at.as_millis(),
            status: state.status.name().to_owned(),
            decision: in_brief(event),
            breach: breach_in_brief(event, &state),
        };
        Ok(Some((integration, OutboundMessage::Update(update))))
    }

    /// The integration reading complaint `id`'s updates, remembered.
    async fn source_of(&mut self, id: ComplaintId) -> Result<Source, BusError> {
        if let Some(known) = self.sources.get(&id) {
            return Ok(known.clone());
        }
        let received = self
            .log
            .first_on_subject(&self.log.names().complaint_of_kind(&id, "received"))
            .await?;
        let source = match received.map(|e| e.envelope.payload) {
            Some(EventPayload::Complaint(ComplaintEvent::Received(facts))) => {
                let name = facts.source_system.as_str().to_owned();
                self.outbound
                    .serves(&name)
                    .await?
                    .then(|| (name, facts.external_ticket_id.as_str().to_owned()))
            }
            _ => None,
        };
        // Only a served source is remembered for good: an integration that
        // speaks for the first time later must still hear of it.
        if source.is_some() {
            self.sources.put(id, source.clone());
        }
        Ok(source)
    }

    async fn send(&self, integration: &str, update: &OutboundMessage) -> bool {
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=SEND_ATTEMPTS {
            match self.outbound.send(integration, update).await {
                Ok(_) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot send a helpdesk update; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
        false
    }
}

/// The breach a service-level event records, with the priority it left.
fn breach_in_brief(event: &ComplaintEvent, state: &Complaint) -> Option<BreachInBrief> {
    let ComplaintEvent::SlaBreached {
        target,
        due_at,
        late_by_ms,
        ..
    } = event
    else {
        return None;
    };
    Some(BreachInBrief {
        target: *target,
        due_at_ms: due_at.as_millis(),
        late_by_ms: *late_by_ms,
        priority: state.priority()?,
    })
}

/// The decision a routing or re-routing event carries, in brief.
fn in_brief(event: &ComplaintEvent) -> Option<DecisionInBrief> {
    let brief = |d: &Decision, previous: Option<Route>| DecisionInBrief {
        route: d.route,
        fulfilment: d.fulfilment,
        priority: d.priority,
        explanation: d.in_brief(),
        policy_version: d.policy_version,
        previous_route: previous,
    };
    match event {
        ComplaintEvent::Routed(d) => Some(brief(d, None)),
        ComplaintEvent::Rerouted { decision, previous } => Some(brief(decision, Some(*previous))),
        _ => None,
    }
}
