//! Arms a timer for every clock a routing, re-routing or reopening starts.

use std::time::Duration;

use bytes::Bytes;
use plaint_bus::{
    BusError, Consume, ConsumerSettings, Deliveries, Delivery, EventLog, GaveUp, Names,
    RetryPolicy, Timers, consume_until_stopped,
};
use plaint_domain::event::{ComplaintEvent, EventPayload, subject_kind_of};
use plaint_domain::lifecycle::first_clocks;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ClockTimer;

/// The events that start a clock.
pub const CLOCK_STARTS: [&str; 3] = ["complaint_routed", "complaint_rerouted", "reopened"];

/// The consumer the clock starts are read through.
pub fn consumer_settings(names: &Names) -> ConsumerSettings {
    let filters = CLOCK_STARTS
        .iter()
        .map(|t| names.complaints_of_kind(subject_kind_of(t)))
        .collect();
    ConsumerSettings::filtered(names.consumer("sla_clocks"), filters)
}

/// Arms timers until `stop` is cancelled; `Err` when NATS stays unreachable
/// past the retry budget.
pub async fn run(
    log: EventLog,
    timers: Timers,
    retry: RetryPolicy,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let mut armer = Armer {
        settings: consumer_settings(log.names()),
        clocks: Clocks { log, timers },
        in_flight: JoinSet::new(),
    };
    let ran = consume_until_stopped("service-level clocks", &mut armer, retry, &stop).await;
    // What was taken is finished, so that none of it waits out the ack wait.
    while armer.in_flight.join_next().await.is_some() {}
    ran
}

/// Complaints whose timers are armed at the same time: arming is a durable
/// write each, so one at a time would fall behind routing.
const IN_FLIGHT: usize = 32;

struct Armer {
    clocks: Clocks,
    settings: ConsumerSettings,
    /// Complaints being armed; any order will do (arming is idempotent).
    in_flight: JoinSet<()>,
}

#[derive(Clone)]
struct Clocks {
    log: EventLog,
    timers: Timers,
}

impl Consume for Armer {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.clocks.log.consume(&self.settings).await
    }

    async fn handle(&mut self, d: Delivery) {
        while self.in_flight.len() >= IN_FLIGHT {
            self.in_flight.join_next().await;
        }
        let clocks = self.clocks.clone();
        self.in_flight.spawn(async move {
            match clocks.arm_for(&d).await {
                Ok(()) => {
                    if let Err(e) = d.ack().await {
                        tracing::warn!(error = %e, "ack failed; the clocks will be armed again");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, sequence = d.stream_sequence, "cannot arm service-level timers; will retry");
                    let _ = d.nak(Duration::from_secs(1)).await;
                }
            }
        });
    }
}

impl Clocks {
    /// Arms the timers of the clocks `d` started. A first decision's are
    /// known from the event itself; after a re-routing or a reopening, the
    /// clocks the complaint has running now are read from its history (a
    /// later event may also have met or restarted the one `d` started).
    /// A timer armed for a clock met meanwhile fires and finds it met.
    async fn arm_for(&self, d: &Delivery) -> Result<(), BusError> {
        let envelope = match self.log.decode_masked(d.payload()) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, sequence = d.stream_sequence, "skipping an event that cannot be decoded");
                return Ok(());
            }
        };
        let Some(id) = envelope.complaint_id else {
            return Ok(());
        };
        let clocks = match &envelope.payload {
            // Reading the history costs the server a search of the
            // complaint's subjects per event: most of what arming cost it.
            EventPayload::Complaint(ComplaintEvent::Routed(decision)) => {
                first_clocks(decision, envelope.occurred_at)
            }
            _ => match self.log.history(id).await?.state {
                Some(state) => state.sla,
                None => return Ok(()),
            },
        };
        let arms = clocks.timers().into_iter().map(|timer| {
            let timer = ClockTimer {
                complaint_id: id,
                timer,
            };
            let body = Bytes::from(serde_json::to_vec(&timer).unwrap_or_default());
            let key = timer.key();
            async move { self.timers.arm(&key, timer.timer.due_at, body).await }
        });
        let armed = futures::future::try_join_all(arms).await?;
        metrics::counter!("plaint_sla_timers_armed_total").increment(armed.len() as u64);
        Ok(())
    }
}
