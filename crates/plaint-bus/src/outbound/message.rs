//! What an integration reads on its outbound subjects, and its two encodings:
//! one flat JSON object, or the protobuf `HelpdeskOutbound`.

use plaint_domain::sla::SlaTarget;
use plaint_domain::{FulfilmentKind, Priority, Route};
use plaint_proto::convert::ToWire;
use plaint_proto::intake as pb;
use prost::Message;
use serde::Serialize;

/// One message to an integration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundMessage {
    /// What became of one inbound message.
    Receipt(Receipt),
    /// A change of one of its complaints.
    Update(Update),
}

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    /// The inbound message's request id (given, or derived from the message).
    pub request_id: String,
    /// Its sequence in the inbound stream.
    pub inbound_sequence: u64,
    /// Its `Nats-Msg-Id`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Stored, duplicate or refused.
    #[serde(flatten)]
    pub outcome: ReceiptOutcome,
}

/// Stored, duplicate or refused, with what the integration needs to match it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReceiptOutcome {
    /// Stored, now or by an earlier delivery of the same message.
    Stored {
        /// The complaint.
        complaint_id: String,
        /// The stored event's log sequence.
        sequence: u64,
        /// The stored event's id.
        event_id: String,
    },
    /// The complaint had been submitted by another message; nothing stored.
    Duplicate {
        /// The complaint.
        complaint_id: String,
        /// The original submission's log sequence.
        original_sequence: u64,
        /// The original submission's request id, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        original_request_id: Option<String>,
    },
    /// Refused and dead-lettered.
    Refused {
        /// Why, in words.
        reason: String,
        /// The field at fault, when one was.
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// The limit it broke, when it broke one.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<String>,
    },
}

/// A change of one of the integration's complaints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    /// The event's id: the idempotency key.
    pub event_id: String,
    /// The complaint.
    pub complaint_id: String,
    /// The integration's own ticket id.
    pub external_ticket_id: String,
    /// The event's log sequence; later is higher.
    pub sequence: u64,
    /// The event type, e.g. `complaint_routed`.
    pub event_type: String,
    /// When it happened, ms since the epoch.
    pub occurred_at_ms: i64,
    /// The complaint's status after it, e.g. `ROUTED`.
    pub status: String,
    /// For a routing or re-routing: who handles it and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionInBrief>,
    /// For a service-level breach: which target, how late, the priority now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<BreachInBrief>,
}

/// A missed service-level target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreachInBrief {
    /// The target.
    pub target: SlaTarget,
    /// When it was due, ms since the epoch.
    pub due_at_ms: i64,
    /// How late it was when recorded.
    pub late_by_ms: i64,
    /// The complaint's priority after the breach.
    pub priority: Priority,
}

/// Who handles a complaint, and why in one sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionInBrief {
    /// The route.
    pub route: Route,
    /// What reverse logistics does with the item, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfilment: Option<FulfilmentKind>,
    /// Queue order.
    pub priority: Priority,
    /// The decision in brief.
    pub explanation: String,
    /// The routing policy's version.
    pub policy_version: u32,
    /// The route before a re-routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_route: Option<Route>,
}

/// How an integration reads its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One flat JSON object per message.
    Json,
    /// A protobuf `HelpdeskOutbound`.
    Protobuf,
}

impl Format {
    /// The `Content-Type` header of a message in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/protobuf",
        }
    }
}

impl OutboundMessage {
    /// The idempotency key: the same key is the same message again.
    pub fn key(&self) -> String {
        match self {
            OutboundMessage::Receipt(r) => format!("receipt-{}", r.request_id),
            OutboundMessage::Update(u) => u.event_id.clone(),
        }
    }

    /// The last token of its subject.
    pub const fn kind(&self) -> &'static str {
        match self {
            OutboundMessage::Receipt(_) => "receipt",
            OutboundMessage::Update(_) => "update",
        }
    }

    /// The message's bytes in `format`.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Json => {
                let mut object = serde_json::to_value(self).unwrap_or_default();
                if let Some(map) = object.as_object_mut() {
                    map.insert("key".to_owned(), self.key().into());
                }
                object.to_string().into_bytes()
            }
            Format::Protobuf => self.to_wire().encode_to_vec(),
        }
    }

    fn to_wire(&self) -> pb::HelpdeskOutbound {
        let message = match self {
            OutboundMessage::Receipt(r) => {
                pb::helpdesk_outbound::Message::Receipt(pb::HelpdeskReceipt {
                    request_id: r.request_id.clone(),
                    inbound_sequence: r.inbound_sequence,
                    message_id: r.message_id.clone().unwrap_or_default(),
                    outcome: Some(outcome_to_wire(&r.outcome)),
                })
            }
            OutboundMessage::Update(u) => {
                pb::helpdesk_outbound::Message::Update(pb::HelpdeskUpdate {
                    complaint_id: u.complaint_id.clone(),
                    external_ticket_id: u.external_ticket_id.clone(),
                    sequence: u.sequence,
                    event_type: u.event_type.clone(),
                    occurred_at_ms: u.occurred_at_ms,
                    status: u.status.clone(),
                    decision: u.decision.as_ref().map(|d| pb::HelpdeskDecision {
                        route: d.route.to_wire(),
                        fulfilment: d.fulfilment.map_or(0, |f| f.to_wire()),
                        priority: d.priority.to_wire(),
                        explanation: d.explanation.clone(),
                        policy_version: d.policy_version,
                        previous_route: d.previous_route.map_or(0, |r| r.to_wire()),
                    }),
                    breach: u.breach.as_ref().map(|b| pb::HelpdeskBreach {
                        target: b.target.to_wire(),
                        due_at_ms: b.due_at_ms,
                        late_by_ms: b.late_by_ms,
                        priority: b.priority.to_wire(),
                    }),
                })
            }
        };
        pb::HelpdeskOutbound {
            key: self.key(),
            message: Some(message),
        }
    }
}

fn outcome_to_wire(o: &ReceiptOutcome) -> pb::helpdesk_receipt::Outcome {
    use pb::helpdesk_receipt::Outcome;
    match o {
        ReceiptOutcome::Stored {
            complaint_id,
            sequence,
            event_id,
        } => Outcome::Stored(pb::ReceiptStored {
            complaint_id: complaint_id.clone(),
            sequence: *sequence,
            event_id: event_id.clone(),
        }),
        ReceiptOutcome::Duplicate {
            complaint_id,
            original_sequence,
            original_request_id,
        } => Outcome::Duplicate(pb::ReceiptDuplicate {
            complaint_id: complaint_id.clone(),
            original_sequence: *original_sequence,
            original_request_id: original_request_id.clone().unwrap_or_default(),
        }),
        ReceiptOutcome::Refused {
            reason,
            field,
            limit,
        } => Outcome::Refused(pb::ReceiptRefused {
            reason: reason.clone(),
            field: field.clone().unwrap_or_default(),
            limit: limit.clone().unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused() -> OutboundMessage {
        OutboundMessage::Receipt(Receipt {
            request_id: "7f1c".into(),
            inbound_sequence: 12,
            message_id: None,
            outcome: ReceiptOutcome::Refused {
                reason: "summary is 5000 bytes, the limit is 2048".into(),
                field: Some("summary".into()),
                limit: Some("2048".into()),
            },
        })
    }

    #[test]
    fn a_receipt_in_json_is_one_flat_object_with_its_key() {
        let json: serde_json::Value =
            serde_json::from_slice(&refused().encode(Format::Json)).unwrap();
        assert_eq!(json["type"], "receipt");
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["field"], "summary");
        assert_eq!(json["limit"], "2048");
        assert_eq!(json["inbound_sequence"], 12);
        assert_eq!(json["key"], "receipt-7f1c");
    }

    #[test]
    fn an_update_in_protobuf_carries_its_decision() {
        let update = OutboundMessage::Update(Update {
            event_id: "e1".into(),
            complaint_id: "c1".into(),
            external_ticket_id: "T-1".into(),
            sequence: 40,
            event_type: "complaint_rerouted".into(),
            occurred_at_ms: 1,
            status: "ROUTED".into(),
            decision: Some(DecisionInBrief {
                route: Route::Ceo,
                fulfilment: Some(FulfilmentKind::Repair),
                priority: Priority::P1,
                explanation: "CEO P1".into(),
                policy_version: 3,
                previous_route: Some(Route::Frontline),
            }),
            breach: None,
        });
        let wire =
            pb::HelpdeskOutbound::decode(update.encode(Format::Protobuf).as_slice()).unwrap();
        assert_eq!(wire.key, "e1");
        let Some(pb::helpdesk_outbound::Message::Update(u)) = wire.message else {
            panic!("not an update: {wire:?}");
        };
        let d = u.decision.unwrap();
        assert_eq!(d.route, Route::Ceo.to_wire());
        assert_eq!(d.previous_route, Route::Frontline.to_wire());
        assert_eq!(d.policy_version, 3);
        let json: serde_json::Value = serde_json::from_slice(&update.encode(Format::Json)).unwrap();
        assert_eq!(json["decision"]["route"], "CEO");
        assert_eq!(json["decision"]["previous_route"], "FRONTLINE");
        assert_eq!(json["decision"]["priority"], "P1");
        assert_eq!(json["key"], "e1");
    }
}
