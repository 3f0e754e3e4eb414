//! Handles timers as they fire: a clock still running unmet past its due
//! time gets its one `sla_breached` event, raising the complaint's priority
//! where the policy of its decision says so.

use std::time::Duration;

use plaint_bus::{
    AppendError, BusError, Consume, ConsumerSettings, Deliveries, Delivery, EventLog, Expect,
    GaveUp, RetryPolicy, Timers, consume_until_stopped,
};
use plaint_domain::event::{ComplaintEvent, Envelope, EventPayload};
use plaint_domain::values::EventId;
use plaint_domain::{Command, DomainError, RoutingPolicy, SCHEMA_VERSION, decide};
use plaint_routing::company::CompanyView;
use tokio_util::sync::CancellationToken;

use super::ClockTimer;

/// Attempts at one breach when other writers keep changing the complaint.
const CONFLICT_ATTEMPTS: u32 = 5;
/// How often the timers not fired yet are counted.
const PENDING_INTERVAL: Duration = Duration::from_secs(5);

/// What became of one fired timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    /// The breach is recorded (now, or before: a redelivery).
    Breached,
    /// The clock was met, restarted or breached already: nothing to do.
    Moot,
    /// It fired before its due time (this host's clock is behind): later.
    Early(Duration),
}

/// The durable consumer of fired timers.
pub fn consumer_settings(timers: &Timers, log: &EventLog) -> ConsumerSettings {
    timers.fired_consumer(log.names().consumer("sla_timers"))
}

/// Handles fired timers until `stop` is cancelled; `Err` when NATS stays
/// unreachable past the retry budget.
pub async fn run(
    log: EventLog,
    timers: Timers,
    retry: RetryPolicy,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let mut handler = Breaches {
        settings: consumer_settings(&timers, &log),
        log,
        timers,
        company: CompanyView::default(),
    };
    consume_until_stopped("service-level timers", &mut handler, retry, &stop).await
}

/// Publishes `plaint_sla_timers_pending`, the timers armed and not fired
/// yet, until `stop` is cancelled.
pub async fn measure_pending(timers: Timers, stop: CancellationToken) {
    loop {
        match timers.pending().await {
            Ok(n) => metrics::gauge!("plaint_sla_timers_pending").set(n as f64),
            Err(e) => tracing::debug!(error = %e, "cannot count the service-level timers"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PENDING_INTERVAL) => {}
        }
    }
}

struct Breaches {
    log: EventLog,
    timers: Timers,
    settings: ConsumerSettings,
    company: CompanyView,
}

impl Consume for Breaches {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.timers.consume(&self.settings).await
    }

    async fn handle(&mut self, d: Delivery) {
        let timer: ClockTimer = match serde_json::from_slice(d.payload()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, subject = d.subject(), "dropping a timer that cannot be read");
                let _ = d.term().await;
                return;
            }
        };
        let fired_at = plaint_routing::now();
        let delay_ms = fired_at.as_millis() - timer.timer.due_at.as_millis();
        metrics::histogram!("plaint_sla_timer_delay_seconds").record(delay_ms as f64 / 1000.0);
        match self.fire(&timer).await {
            Ok(Fired::Early(wait)) => {
                let _ = d.nak(wait).await;
            }
            Ok(Fired::Breached | Fired::Moot) => {
                if let Err(e) = d.ack().await {
                    tracing::warn!(error = %e, "ack failed; the timer will be handled again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, complaint_id = %timer.complaint_id, "cannot handle a service-level timer; will retry");
                let _ = d.nak(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Breaches {
    async fn fire(&mut self, t: &ClockTimer) -> Result<Fired, BusError> {
        let id = t.complaint_id;
        let purpose = format!(
            "sla_breached.{}.{}",
            t.timer.target.token(),
            t.timer.since.as_millis()
        );
        let event_id = EventId::derived(id.as_uuid(), &purpose, 0);
        for _ in 0..CONFLICT_ATTEMPTS {
            let history = self.log.history(id).await?;
            let Some(state) = &history.state else {
                return Ok(Fired::Moot);
            };
            let policy = self.policy_of(state).await?;
            let now = plaint_routing::now();
            let command = Command::RecordSlaBreach {
                timer: t.timer,
                at: now,
                raise_priority: policy.sla.raise_priority_on_breach,
            };
            let event = match decide(Some(state), &command) {
                Ok(mut events) if !events.is_empty() => events.remove(0),
                Ok(_) => return Ok(Fired::Moot),
                Err(DomainError::SlaNotDue { due_at, .. }) => {
                    let wait = due_at.as_millis().saturating_sub(now.as_millis());
                    return Ok(Fired::Early(Duration::from_millis(
                        u64::try_from(wait).unwrap_or(0).max(1),
                    )));
                }
                Err(e) => {
                    tracing::debug!(complaint_id = %id, reason = %e, "a timer fired on a clock that no longer runs");
                    return Ok(Fired::Moot);
                }
            };
            let route = state.route().map_or("NONE", |r| r.name());
            let envelope = Envelope {
                event_id,
                complaint_id: Some(id),
                occurred_at: now,
                schema_version: SCHEMA_VERSION,
                causation_id: None,
                correlation_id: history
                    .events
                    .first()
                    .and_then(|e| e.envelope.correlation_id),
                payload: EventPayload::Complaint(event),
            };
            let subject = match &envelope.payload {
                EventPayload::Complaint(e) => self.log.names().complaint_event(&id, e),
                _ => return Ok(Fired::Moot),
            };
            match self
                .log
                .append(
                    &subject,
                    &envelope,
                    Expect::LastSubjectSequence(history.last_sequence),
                    None,
                )
                .await
            {
                Ok(appended) => {
                    if !appended.duplicate {
                        metrics::counter!("plaint_sla_breaches_total", "route" => route, "target" => t.timer.target.name())
                            .increment(1);
                        if let EventPayload::Complaint(ComplaintEvent::SlaBreached {
                            late_by_ms,
                            raised_priority,
                            ..
                        }) = &envelope.payload
                        {
                            tracing::info!(complaint_id = %id, target = t.timer.target.name(), late_by_ms, ?raised_priority, "service-level target breached");
                        }
                    }
                    return Ok(Fired::Breached);
                }
                Err(AppendError::WrongLastSequence) => continue,
                Err(AppendError::Bus(e)) => return Err(e),
            }
        }
        Err(BusError::Corrupt {
            sequence: 0,
            reason: format!(
                "complaint {id} kept changing through {CONFLICT_ATTEMPTS} attempts at recording a breach"
            ),
        })
    }

    /// The policy of the decision in force (the default before any).
    async fn policy_of(
        &mut self,
        state: &plaint_domain::Complaint,
    ) -> Result<RoutingPolicy, BusError> {
        self.company.refresh(&self.log).await?;
        let version = state.decision.as_ref().map(|d| d.policy_version);
        let published = self
            .company
            .policies
            .iter()
            .find(|p| Some(p.policy.version) == version)
            .map(|p| p.policy.clone());
        Ok(published.unwrap_or_else(|| self.company.policy()))
    }
}
