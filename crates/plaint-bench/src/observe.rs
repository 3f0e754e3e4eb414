//! What the bench reads from the event log: a cheap probe of where the log
//! and the router's consumer stand, sampled while a phase runs, and an audit
//! of the whole log for the correctness gate.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use plaint_bus::{BusError, EventLog};
use plaint_domain::event::{ComplaintEvent, EventPayload};
use plaint_proto::encode_envelope;
use uuid::Uuid;

fn unavailable(e: impl Into<plaint_bus::Cause>) -> BusError {
    BusError::Unavailable(e.into())
}

/// Where the log and one of its durable consumers stand, sampled cheaply
/// and often while a bench phase runs.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    stream: Stream,
    durable: String,
}

/// One sample of a [`Probe`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProbeSample {
    /// The log's last sequence.
    pub(crate) last_sequence: u64,
    /// Messages the consumer has not been delivered yet, plus those
    /// delivered and not acked; 0 when the consumer does not exist yet.
    pub(crate) consumer_backlog: u64,
}

impl Probe {
    /// A probe of the log's stream `stream` and its durable consumer named
    /// `durable`.
    pub(crate) async fn new(
        client: &plaint_bus::Client,
        stream: &str,
        durable: &str,
    ) -> Result<Self, BusError> {
        let stream = jetstream::new(client.clone())
            .get_stream(stream)
            .await
            .map_err(|e| BusError::JetStream(e.into()))?;
        Ok(Self {
            stream,
            durable: durable.to_owned(),
        })
    }

    /// Deliveries the consumer has made so far, redeliveries included.
    pub(crate) async fn deliveries(&self) -> Result<u64, BusError> {
        let info = self
            .stream
            .consumer_info(&self.durable)
            .await
            .map_err(unavailable)?;
        Ok(info.delivered.consumer_sequence)
    }

    /// Samples both.
    pub(crate) async fn sample(&self) -> Result<ProbeSample, BusError> {
        let info = self.stream.get_info().await.map_err(unavailable)?;
        let consumer_backlog = match self.stream.consumer_info(&self.durable).await {
            Ok(c) => c.num_pending + c.num_ack_pending as u64,
            Err(_) => info.state.last_sequence,
        };
        Ok(ProbeSample {
            last_sequence: info.state.last_sequence,
            consumer_backlog,
        })
    }
}

/// What the event log holds about one complaint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ComplaintEvents {
    /// `complaint_received` events.
    pub(crate) received: u32,
    /// `complaint_routed` events (first decisions).
    pub(crate) routed: u32,
    /// `complaint_rerouted` events.
    pub(crate) rerouted: u32,
    /// Every other event.
    pub(crate) other: u32,
}

/// The event log read from sequence 1, counted per complaint.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogAudit {
    /// The stream's last sequence when the audit started.
    pub(crate) last_sequence: u64,
    /// Messages read.
    pub(crate) messages: u64,
    /// Messages that could not be decoded.
    pub(crate) undecodable: u64,
    /// Encoded payload bytes of complaint events, re-encoded.
    pub(crate) complaint_event_bytes: u64,
    /// Complaint events read.
    pub(crate) complaint_events: u64,
    /// Company events read (settings, CEO slots and engagements).
    pub(crate) company_events: u64,
    /// Events of the kinds the routing consumer decides on (received,
    /// visibility changed): what it should be delivered, once each.
    pub(crate) decision_triggers: u64,
    /// Per complaint.
    pub(crate) by_complaint: HashMap<Uuid, ComplaintEvents>,
}

/// Reads the whole log up to its current last sequence and counts the
/// events of every complaint.
pub(crate) async fn audit(log: &EventLog) -> Result<LogAudit, BusError> {
    let last_sequence = log.last_sequence().await?;
    let mut out = LogAudit {
        last_sequence,
        ..LogAudit::default()
    };
    if last_sequence == 0 {
        return Ok(out);
    }
    let mut tail = log.tail(1).await?;
    let mut seen = 0u64;
    while seen < last_sequence {
        let batch = tokio::time::timeout(
            Duration::from_secs(10),
            tail.next_batch(1000, Duration::from_millis(5)),
        )
        .await
        .map_err(|_| unavailable("the log tail stalled during the audit"))?
        .ok_or_else(|| unavailable("the log tail ended during the audit"))??;
        for item in batch {
            seen = seen.max(item.sequence);
            if item.sequence > last_sequence {
                continue;
            }
            out.messages += 1;
            let Ok(stored) = item.event else {
                out.undecodable += 1;
                continue;
            };
            let envelope = &stored.envelope;
            match (&envelope.payload, envelope.complaint_id) {
                (EventPayload::Complaint(event), Some(id)) => {
                    out.complaint_events += 1;
                    out.complaint_event_bytes += encode_envelope(envelope).len() as u64;
                    let entry = out.by_complaint.entry(id.as_uuid()).or_default();
                    if matches!(
                        event,
                        ComplaintEvent::Received(_) | ComplaintEvent::VisibilityChanged(_)
                    ) {
                        out.decision_triggers += 1;
                    }
                    match event {
                        ComplaintEvent::Received(_) => entry.received += 1,
                        ComplaintEvent::Routed(_) => entry.routed += 1,
                        ComplaintEvent::Rerouted { .. } => entry.rerouted += 1,
                        _ => entry.other += 1,
                    }
                }
                _ => out.company_events += 1,
            }
        }
    }
    Ok(out)
}
