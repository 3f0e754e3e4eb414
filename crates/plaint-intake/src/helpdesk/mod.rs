//! The helpdesk door: integrations publish JSON or protobuf onto
//! `<prefix>.helpdesk.inbound.<integration>`; a durable stream keeps it while
//! intake is down. The subject names the integration (NATS permissions give
//! each its own), and an integration speaks only for its own source system. Each message is parsed, run through the core like a gRPC
//! call, and acked only after the append is stored. What cannot be accepted is
//! dead-lettered with its original bytes and the reason, then acked.

pub mod json;
pub mod key;
mod owner;
mod receipt;

use std::time::Duration;

use plaint_bus::{
    BusError, Consume, ConsumerSettings, Deliveries, Delivery, GaveUp, Helpdesk, Outbound,
    OutboundMessage, RetryPolicy, consume_until_stopped,
};
use plaint_domain::values::{AtField, Problem, SourceSystem, ValidationError};
use prost::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::commands::{self, Parsed};
use crate::error::Error;
use crate::grpc::handle;
use crate::service::{Intake, Origin, Written};

/// Header integrations may set to say how the payload is encoded.
pub const CONTENT_TYPE: &str = "Content-Type";

/// How the helpdesk consumer runs.
#[derive(Debug, Clone)]
pub struct HelpdeskSettings {
    /// The durable consumer.
    pub consumer: ConsumerSettings,
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// How the consumer retries while NATS is unreachable.
    pub retry: RetryPolicy,
}

/// Decodes a payload by its content type, or by its first byte when none is given.
pub fn parse_payload(
    bytes: &[u8],
    content_type: Option<&str>,
    max_bytes: usize,
) -> Result<Parsed, ValidationError> {
    if bytes.len() > max_bytes {
        return Err(ValidationError::new(
            "payload",
            Problem::TooLong {
                max: max_bytes,
                actual: bytes.len(),
            },
        ));
    }
    let protobuf = match content_type {
        Some(ct) => ct.contains("protobuf"),
        None => bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{'),
    };
    if protobuf {
        let m = plaint_proto::intake::HelpdeskMessage::decode(bytes).map_err(|_| {
            ValidationError::new(
                "payload",
                Problem::Malformed {
                    expected: "a protobuf HelpdeskMessage",
                },
            )
        })?;
        commands::helpdesk(m)
    } else {
        json::parse(bytes)
    }
}

/// Consumes helpdesk messages until `stop` is cancelled; finishes the message
/// in hand first. Reopens the consumer by itself when its flow breaks; `Err`
/// when NATS stays unreachable past the retry budget.
pub async fn run(
    core: Intake,
    helpdesk: Helpdesk,
    outbound: Outbound,
    settings: HelpdeskSettings,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let retry = settings.retry;
    let mut door = Door {
        core,
        helpdesk,
        outbound,
        settings,
    };
    consume_until_stopped("helpdesk consumer", &mut door, retry, &stop).await
}

struct Door {
    core: Intake,
    helpdesk: Helpdesk,
    outbound: Outbound,
    settings: HelpdeskSettings,
}

impl Consume for Door {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.helpdesk.consume(&self.settings.consumer).await
    }

    async fn handle(&mut self, delivery: Delivery) {
        process(self, delivery).await;
    }
}

/// What a stored inbound message became.
#[derive(Debug)]
pub struct Stored {
    /// What the core wrote (or had written).
    pub written: Written,
    /// The request id it was stored under: its own `request_id`, or the one
    /// derived from the message.
    pub request_id: Uuid,
}

/// The request id derived from an inbound message, the same on every
/// delivery: from its `Nats-Msg-Id`, else its inbound stream sequence.
pub fn derived_request_id(d: &Delivery) -> Uuid {
    match d.message_id() {
        Some(message_id) => key::Inbound::Named {
            subject: d.subject(),
            message_id,
        },
        None => key::Inbound::Stored {
            stream: d.stream(),
            sequence: d.stream_sequence,
        },
    }
    .request_id()
}

/// Parses a delivery and runs it through the core; acks nothing. A message
/// that names no `request_id` is stored under one derived from the message
/// itself, so its redelivery stores nothing new.
pub async fn store(core: &Intake, d: &Delivery, max_payload_bytes: usize) -> Result<Stored, Error> {
    let headers = d.headers();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE))
        .map(|(_, v)| v.as_str());
    let integration = integration(core, d)?;
    let parsed = parse_payload(d.payload(), content_type, max_payload_bytes)?;
    let derived = derived_request_id(d);
    let request_id = match &parsed {
        Parsed::Command {
            request_id: Some(own),
            ..
        } => *own,
        Parsed::Command { .. } | Parsed::Submit { .. } => derived,
    };
    let origin = Origin {
        request_id: Some(derived),
        traceparent: d.traceparent(),
        integration: Some(integration),
    };
    let written = handle(core, parsed, origin).await?;
    Ok(Stored {
        written,
        request_id,
    })
}

/// The integration that published `d`: its subject's, never its payload's.
fn integration(core: &Intake, d: &Delivery) -> Result<SourceSystem, ValidationError> {
    let name = core
        .log()
        .names()
        .integration_of(d.subject())
        .ok_or_else(|| {
            ValidationError::new(
                "subject",
                Problem::Malformed {
                    expected: "<prefix>.helpdesk.inbound.<integration>",
                },
            )
        })?;
    SourceSystem::parse(name).at("subject")
}

#[tracing::instrument(skip_all, fields(inbound_sequence = d.stream_sequence, delivered = d.delivered))]
async fn process(door: &Door, d: Delivery) {
    let core = &door.core;
    let integration = core
        .log()
        .names()
        .integration_of(d.subject())
        .map(str::to_owned);
    // Before anything is stored: the router sends the decision of a new
    // complaint to an integration whose consumer exists, milliseconds later.
    if let Some(name) = &integration
        && let Err(e) = door.outbound.provision(name).await
    {
        helpdesk_outcome("retried");
        tracing::warn!(error = %e, "cannot provision the integration's outbound consumer; will retry");
        let _ = d.nak(Duration::from_secs(1)).await;
        return;
    }
    let max_deliver = door.settings.consumer.max_deliver;
    let answer = match store(core, &d, door.settings.max_payload_bytes).await {
        Ok(stored) => {
            helpdesk_outcome("stored");
            let w = &stored.written;
            tracing::debug!(complaint_id = %w.complaint_id, sequence = w.sequence, duplicate = w.duplicate, "helpdesk message stored");
            receipt::stored(&d, stored.request_id, w)
        }
        Err(
            e @ (Error::Validation(_)
            | Error::NotFound(_)
            | Error::Rejected(_)
            | Error::NotItsOwn { .. }),
        ) => {
            let reason = e.to_string();
            if !dead_letter(door, &d, &reason).await {
                return;
            }
            receipt::refused(&d, own_or_derived(&d, door), &reason, Some(&e))
        }
        Err(e) if d.delivered >= max_deliver => {
            let reason = format!("gave up after {} deliveries: {e}", d.delivered);
            if !dead_letter(door, &d, &reason).await {
                return;
            }
            receipt::refused(&d, own_or_derived(&d, door), &reason, None)
        }
        Err(e) => {
            helpdesk_outcome("retried");
            tracing::warn!(error = %e, "helpdesk message not stored yet; will retry");
            let delay = Duration::from_millis(250 * u64::try_from(d.delivered.max(1)).unwrap_or(1));
            if let Err(e) = d.nak(delay).await {
                tracing::warn!(error = %e, "nak failed; redelivery follows the ack wait");
            }
            return;
        }
    };
    if let Some(name) = &integration
        && !send_receipt(door, name, &answer).await
    {
        // Stored, the receipt not: the redelivery finds it stored (or
        // dead-lettered) again and sends the receipt then.
        let _ = d.nak(Duration::from_secs(1)).await;
        return;
    }
    if let Err(e) = d.ack().await {
        tracing::warn!(error = %e, "ack failed; the message will be redelivered and deduplicated");
    }
}

/// The request id a refused message is answered under: its own, when its
/// payload could be read far enough to name one.
fn own_or_derived(d: &Delivery, door: &Door) -> Uuid {
    let content_type = d
        .headers()
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE))
        .map(|(_, v)| v);
    match parse_payload(
        d.payload(),
        content_type.as_deref(),
        door.settings.max_payload_bytes,
    ) {
        Ok(Parsed::Command {
            request_id: Some(own),
            ..
        }) => own,
        _ => derived_request_id(d),
    }
}

async fn send_receipt(door: &Door, integration: &str, receipt: &OutboundMessage) -> bool {
    match door.outbound.send(integration, receipt).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot send the receipt; will retry");
            false
        }
    }
}

/// Stores the dead letter; `false` (and the message left for redelivery)
/// when it could not be stored.
async fn dead_letter(door: &Door, d: &Delivery, reason: &str) -> bool {
    tracing::info!(reason, "helpdesk message dead-lettered");
    // A letter that names a customer is sealed with their key.
    let owner = owner::owner_of(&door.core, d.payload()).await;
    match door.helpdesk.dead_letter(d, reason, owner.as_ref()).await {
        Ok(_) => {
            helpdesk_outcome("dead_lettered");
            true
        }
        Err(e) => {
            // Not stored anywhere yet: leave it to be redelivered.
            tracing::error!(error = %e, "cannot store dead letter; will retry");
            let _ = d.nak(Duration::from_secs(1)).await;
            false
        }
    }
}

fn helpdesk_outcome(outcome: &'static str) {
    metrics::counter!("plaint_helpdesk_messages_total", "outcome" => outcome).increment(1);
}
