//! Valid inputs to start from: one envelope of every event type, and helpdesk
//! messages of every type in both formats (the JSON ones are the README's examples).
//! Mutating valid inputs reaches the decoders' deep paths (field validation, policy
//! JSON inside protobuf) that random bytes almost never do.
//!
//! Panics on a broken seed: they are constants, so that is a bug in this file.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use plaint_domain::event::{CeoSlot, ItemOutcome};
use plaint_domain::routing::{RoutingContext, RoutingFacts};
use plaint_domain::values::{
    ChurnRisk, CustomerId, EventId, ExternalTicketId, FreeText, Label, Money, Reach, Satisfaction,
    Segment, SourceSystem,
};
use plaint_domain::{
    Category, Channel, Climate, CompanyEvent, ComplaintEvent, ComplaintFacts, ComplaintId,
    Customer, CustomerTier, Envelope, EventPayload, Route, RoutingPolicy, SCHEMA_VERSION,
    StanceAlignment, Timestamp, Visibility, decide_route,
};
use plaint_proto::events as epb;
use plaint_proto::intake as ipb;
use plaint_proto::intake::helpdesk_message::Command;
use prost::Message;

fn facts() -> ComplaintFacts {
    ComplaintFacts {
        source_system: SourceSystem::parse("zendesk-eu").unwrap(),
        external_ticket_id: ExternalTicketId::parse("Z-1001").unwrap(),
        customer: Customer {
            id: CustomerId::parse("c-42").unwrap(),
            reference: plaint_domain::values::CustomerRef::from_digest(&[42; 16]),
            segment: Segment::parse("consumer").unwrap(),
            tier: CustomerTier::Gold,
            lifetime_value: Money::parse(1_250_000).unwrap(),
            churn_risk: ChurnRisk::parse(60).unwrap(),
        },
        channel: Channel::PublicSocial,
        category: Category::ProductDefect,
        visibility: Visibility {
            audience_reach: Reach::parse(1_200_000).unwrap(),
            shares: Reach::parse(4_000).unwrap(),
            media_attention: false,
        },
        product_idea: false,
        item_sku: Some(Label::parse("SHOE-39-RED").unwrap()),
        summary: FreeText::parse("The heel came off on day two.").unwrap(),
    }
}

fn label(s: &str) -> Label {
    Label::parse(s).unwrap()
}

fn text(s: &str) -> FreeText {
    FreeText::parse(s).unwrap()
}

fn envelope(n: u32, complaint: Option<ComplaintId>, payload: EventPayload) -> Envelope {
    Envelope {
        event_id: EventId::derived(uuid::Uuid::from_u128(42), "seed", n),
        complaint_id: complaint,
        occurred_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(n)),
        schema_version: SCHEMA_VERSION,
        causation_id: Some(uuid::Uuid::from_u128(7)),
        correlation_id: n.is_multiple_of(2).then(|| uuid::Uuid::from_u128(9)),
        payload,
    }
}

/// One encoded envelope of every event type.
pub fn envelopes() -> Vec<Vec<u8>> {
    let f = facts();
    let id = ComplaintId::for_ticket(&f.source_system, &f.external_ticket_id);
    let policy = RoutingPolicy::default();
    let decision = |climate, budget_used| {
        let ctx = RoutingContext {
            policy: &policy,
            climate,
            stance: StanceAlignment::Aligned,
            budget_used,
            segment_used: 0,
            customer_last_ceo: None,
            now: Timestamp::from_millis(1_700_000_000_000),
        };
        Box::new(decide_route(&RoutingFacts::of(&f, f.visibility), &ctx))
    };
    let complaint = [
        ComplaintEvent::Received(Box::new(f.clone())),
        ComplaintEvent::Routed(decision(Climate::Good, 0)),
        ComplaintEvent::Rerouted {
            decision: decision(Climate::Bad, 5),
            previous: Route::Frontline,
        },
        ComplaintEvent::VisibilityChanged(Visibility {
            audience_reach: Reach::parse(5).unwrap(),
            shares: Reach::parse(90_000).unwrap(),
            media_attention: true,
        }),
        ComplaintEvent::Acknowledged {
            by: label("agent-7"),
        },
        ComplaintEvent::Assigned {
            assignee: label("repairs-milan"),
        },
        ComplaintEvent::CustomerFollowedUp {
            text: text("Any news?"),
        },
        ComplaintEvent::ReturnAuthorized {
            rma: label("RMA-123"),
        },
        ComplaintEvent::ItemReceived,
        ComplaintEvent::ItemProcessed {
            outcome: ItemOutcome::Repaired,
        },
        ComplaintEvent::ItemShippedBack {
            tracking: label("1Z999"),
        },
        ComplaintEvent::Resolved {
            satisfaction: Satisfaction::parse(10).unwrap(),
            note: text("back in 36 hours"),
        },
        ComplaintEvent::Reopened {
            reason: text("broke again"),
        },
        ComplaintEvent::Withdrawn {
            reason: text("customer cancelled"),
        },
    ];
    let company = [
        CompanyEvent::PolicyPublished {
            policy: Box::new(RoutingPolicy::default().with_version(2)),
            published_by: label("ops"),
        },
        CompanyEvent::ClimateSet {
            climate: Climate::Bad,
            set_by: label("cfo"),
        },
        CompanyEvent::StanceAlignmentSet {
            alignment: StanceAlignment::Misaligned,
            set_by: label("comms"),
        },
        CompanyEvent::CeoSlotReserved(CeoSlot {
            window_start: Timestamp::from_millis(1_699_920_000_000),
            complaint_id: id,
            customer: f.customer.reference.clone(),
            segment: f.customer.segment.clone(),
            used: 3,
            segment_used: BTreeMap::from([("consumer".to_owned(), 2), ("b2b".to_owned(), 1)]),
        }),
    ];
    let mut n = 0;
    let mut out = Vec::new();
    for event in complaint {
        n += 1;
        out.push(plaint_proto::encode_envelope(&envelope(
            n,
            Some(id),
            EventPayload::Complaint(event),
        )));
    }
    for event in company {
        n += 1;
        out.push(plaint_proto::encode_envelope(&envelope(
            n,
            None,
            EventPayload::Company(event),
        )));
    }
    out
}

/// The README's helpdesk examples (JSON), one of every message type.
pub const HELPDESK_JSON: [&str; 12] = [
    r#"{"type": "submit", "source_system": "zendesk-eu", "external_ticket_id": "Z-1001",
 "customer": {"customer_id": "c-42", "segment": "consumer", "tier": "GOLD",
              "lifetime_value_cents": 1250000, "churn_risk_pct": 60},
 "channel": "PUBLIC_SOCIAL", "category": "PRODUCT_DEFECT",
 "visibility": {"audience_reach": 1200000, "shares": 4000, "media_attention": false},
 "product_idea": false, "item_sku": "SHOE-39-RED", "summary": "The heel came off.",
 "occurred_at_ms": 0}"#,
    r#"{"type": "change_visibility", "source_system": "zendesk-eu", "external_ticket_id": "Z-1001",
 "visibility": {"audience_reach": 1200000, "shares": 90000, "media_attention": true}}"#,
    r#"{"type": "acknowledge", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "by": "agent-7"}"#,
    r#"{"type": "assign", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "assignee": "repairs-milan"}"#,
    r#"{"type": "authorize_return", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "rma": "RMA-123"}"#,
    r#"{"type": "receive_item", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40"}"#,
    r#"{"type": "process_item", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "outcome": "REPAIRED"}"#,
    r#"{"type": "ship_back", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "tracking": "1Z999"}"#,
    r#"{"type": "resolve", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "satisfaction": 10, "note": "back in 36 hours"}"#,
    r#"{"type": "follow_up", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "text": "Any news?", "request_id": "6c1b6f0e-2a51-4c55-9d0e-0f5b3b1f7a21"}"#,
    r#"{"type": "reopen", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "reason": "broke again"}"#,
    r#"{"type": "withdraw", "complaint_id": "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40", "reason": "customer cancelled"}"#,
];

fn header() -> Option<ipb::CommandHeader> {
    Some(ipb::CommandHeader {
        complaint_id: "1f0e7c1a-4b8e-5d0a-9c53-2a1d6e2f8b40".to_owned(),
        request_id: "6c1b6f0e-2a51-4c55-9d0e-0f5b3b1f7a21".to_owned(),
    })
}

/// Helpdesk messages in both formats: the JSON examples, and protobuf
/// `HelpdeskMessage`s of several types.
pub fn helpdesk() -> Vec<Vec<u8>> {
    let submit = ipb::SubmitComplaintRequest {
        source_system: "zendesk-eu".to_owned(),
        external_ticket_id: "Z-1001".to_owned(),
        customer: Some(epb::Customer {
            customer_id: "c-42".to_owned(),
            segment: "consumer".to_owned(),
            tier: epb::CustomerTier::Gold as i32,
            lifetime_value_cents: 1_250_000,
            churn_risk_pct: 60,
            customer_ref: String::new(),
        }),
        channel: epb::Channel::PublicSocial as i32,
        category: epb::Category::ProductDefect as i32,
        visibility: Some(epb::Visibility {
            audience_reach: 1_200_000,
            shares: 4_000,
            media_attention: false,
        }),
        product_idea: false,
        item_sku: "SHOE-39-RED".to_owned(),
        summary: "The heel came off.".to_owned(),
        occurred_at_ms: 0,
    };
    let commands = [
        Command::Submit(submit),
        Command::FollowUp(ipb::RecordFollowUpRequest {
            header: header(),
            text: "Any news?".to_owned(),
        }),
        Command::ChangeVisibility(ipb::ChangeVisibilityRequest {
            header: header(),
            visibility: Some(epb::Visibility {
                audience_reach: 2_000_000,
                shares: 90_000,
                media_attention: true,
            }),
        }),
        Command::Resolve(ipb::ResolveRequest {
            header: header(),
            satisfaction: 9,
            note: "done".to_owned(),
        }),
        Command::Withdraw(ipb::WithdrawRequest {
            header: header(),
            reason: "cancelled".to_owned(),
        }),
    ];
    let mut out: Vec<Vec<u8>> = HELPDESK_JSON
        .iter()
        .map(|j| j.as_bytes().to_vec())
        .collect();
    for command in commands {
        out.push(
            ipb::HelpdeskMessage {
                command: Some(command),
            }
            .encode_to_vec(),
        );
    }
    out
}

/// Inputs that stress limits rather than shapes: deep nesting, huge lengths and
/// numbers, the size limit and one byte over.
pub fn bombs() -> Vec<Vec<u8>> {
    let mut out = vec![
        Vec::new(),
        b"{".to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!("{{\"type\":{}", "[".repeat(50_000)).into_bytes(),
        format!(
            "{{\"type\":\"submit\",\"customer\":{}}}",
            "{\"a\":".repeat(10_000)
        )
        .into_bytes(),
        br#"{"type":"submit","occurred_at_ms":1e999}"#.to_vec(),
        br#"{"type":"resolve","satisfaction":18446744073709551616}"#.to_vec(),
        br#"{"type":"follow_up","text":"\ud800\udc00\ud800"}"#.to_vec(),
        // A length prefix claiming far more than follows, at several depths.
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![
            0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        // A varint that never ends.
        std::iter::once(0x08)
            .chain(std::iter::repeat_n(0xff, 64))
            .collect(),
    ];
    // Protobuf nested 200 deep: field 1, length-delimited, around itself.
    let mut nested: Vec<u8> = Vec::new();
    for _ in 0..200 {
        let mut outer = vec![0x0a];
        let mut len = nested.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                outer.push(byte);
                break;
            }
            outer.push(byte | 0x80);
        }
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    out.push(nested);
    // The helpdesk size limit, exactly and one byte over.
    let mut limit = HELPDESK_JSON[2].as_bytes().to_vec();
    limit.resize(crate::MAX_HELPDESK_BYTES, b' ');
    out.push(limit.clone());
    limit.push(b' ');
    out.push(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_are_valid() {
        for (i, bytes) in envelopes().iter().enumerate() {
            plaint_proto::decode_envelope(bytes)
                .unwrap_or_else(|e| panic!("envelope seed {i}: {e}"));
        }
        for (i, bytes) in helpdesk().iter().enumerate() {
            plaint_intake::helpdesk::parse_payload(bytes, None, crate::MAX_HELPDESK_BYTES)
                .unwrap_or_else(|e| panic!("helpdesk seed {i}: {e}"));
        }
    }
}
