//! The helpdesk door: integrations publish JSON or protobuf onto
//! `<prefix>.helpdesk.inbound.<integration>`; a durable stream keeps it while
//! intake is down. The subject names the integration (NATS permissions give
//! each its own), and an integration speaks only for its own source system. Each message is parsed, run through the core like a gRPC
//! call, and acked only after the append is stored. What cannot be accepted is
//! dead-lettered with its original bytes and the reason, then acked.

pub mod json;
pub mod key;
mod owner;

use std::time::Duration;

use plaint_bus::{
    BusError, Consume, ConsumerSettings, Deliveries, Delivery, GaveUp, Helpdesk, RetryPolicy,
    consume_until_stopped,
};
use plaint_domain::values::{AtField, Problem, SourceSystem, ValidationError};
use prost::Message;
use tokio_util::sync::CancellationToken;

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
    settings: HelpdeskSettings,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let retry = settings.retry;
    let mut door = Door {
        core,
        helpdesk,
        settings,
    };
    consume_until_stopped("helpdesk consumer", &mut door, retry, &stop).await
}

struct Door {
    core: Intake,
    helpdesk: Helpdesk,
    settings: HelpdeskSettings,
}

impl Consume for Door {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.helpdesk.consume(&self.settings.consumer).await
    }

    async fn handle(&mut self, delivery: Delivery) {
        process(&self.core, &self.helpdesk, &self.settings, delivery).await;
    }
}

/// Parses a delivery and runs it through the core; acks nothing. A message
/// that names no `request_id` is stored under one derived from the message
/// itself, so its redelivery stores nothing new.
pub async fn store(
    core: &Intake,
    d: &Delivery,
    max_payload_bytes: usize,
) -> Result<Written, Error> {
    let headers = d.headers();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE))
        .map(|(_, v)| v.as_str());
    let integration = integration(core, d)?;
    let parsed = parse_payload(d.payload(), content_type, max_payload_bytes)?;
    let inbound = match d.message_id() {
        Some(message_id) => key::Inbound::Named {
            subject: d.subject(),
            message_id,
        },
        None => key::Inbound::Stored {
            stream: d.stream(),
            sequence: d.stream_sequence,
        },
    };
    let origin = Origin {
        request_id: Some(inbound.request_id()),
        traceparent: d.traceparent(),
        integration: Some(integration),
    };
    handle(core, parsed, origin).await
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
async fn process(core: &Intake, helpdesk: &Helpdesk, settings: &HelpdeskSettings, d: Delivery) {
    match store(core, &d, settings.max_payload_bytes).await {
        Ok(w) => {
            helpdesk_outcome("stored");
            tracing::debug!(complaint_id = %w.complaint_id, sequence = w.sequence, duplicate = w.duplicate, "helpdesk message stored");
            if let Err(e) = d.ack().await {
                tracing::warn!(error = %e, "ack failed; the message will be redelivered and deduplicated");
            }
        }
        Err(
            e @ (Error::Validation(_)
            | Error::NotFound(_)
            | Error::Rejected(_)
            | Error::NotItsOwn { .. }),
        ) => {
            dead_letter(core, helpdesk, &d, &e.to_string()).await;
        }
        Err(e) if d.delivered >= settings.consumer.max_deliver => {
            dead_letter(
                core,
                helpdesk,
                &d,
                &format!("gave up after {} deliveries: {e}", d.delivered),
            )
            .await;
        }
        Err(e) => {
            helpdesk_outcome("retried");
            tracing::warn!(error = %e, "helpdesk message not stored yet; will retry");
            let delay = Duration::from_millis(250 * u64::try_from(d.delivered.max(1)).unwrap_or(1));
            if let Err(e) = d.nak(delay).await {
                tracing::warn!(error = %e, "nak failed; redelivery follows the ack wait");
            }
        }
    }
}

async fn dead_letter(core: &Intake, helpdesk: &Helpdesk, d: &Delivery, reason: &str) {
    tracing::info!(reason, "helpdesk message dead-lettered");
    // A letter that names a customer is sealed with their key.
    let owner = owner::owner_of(core, d.payload()).await;
    match helpdesk.dead_letter(d, reason, owner.as_ref()).await {
        Ok(_) => {
            helpdesk_outcome("dead_lettered");
            if let Err(e) = d.ack().await {
                tracing::warn!(error = %e, "ack of a dead-lettered message failed");
            }
        }
        Err(e) => {
            // Not stored anywhere yet: leave it to be redelivered.
            tracing::error!(error = %e, "cannot store dead letter; will retry");
            let _ = d.nak(Duration::from_secs(1)).await;
        }
    }
}

fn helpdesk_outcome(outcome: &'static str) {
    metrics::counter!("plaint_helpdesk_messages_total", "outcome" => outcome).increment(1);
}
