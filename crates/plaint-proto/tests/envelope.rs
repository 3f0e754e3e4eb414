//! The log's message format: round trips, and robustness against any bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use plaint_domain::event::{Envelope, EventPayload};
use plaint_domain::routing::{RoutingContext, RoutingFacts};
use plaint_domain::values::{
    ChurnRisk, CustomerId, EventId, ExternalTicketId, FreeText, Money, Reach, Segment, SourceSystem,
};
use plaint_domain::{
    Category, Channel, Climate, ComplaintEvent, ComplaintFacts, ComplaintId, Customer,
    CustomerTier, RoutingPolicy, SCHEMA_VERSION, StanceAlignment, Timestamp, Visibility,
    decide_route,
};
use plaint_proto::{decode_envelope, encode_envelope};
use proptest::prelude::*;

fn facts() -> ComplaintFacts {
    ComplaintFacts {
        source_system: SourceSystem::parse("zendesk-eu").unwrap(),
        external_ticket_id: ExternalTicketId::parse("T-1").unwrap(),
        customer: Customer {
            id: CustomerId::parse("c-1").unwrap(),
            reference: plaint_domain::values::CustomerRef::from_digest(&[7; 16]),
            segment: Segment::parse("consumer").unwrap(),
            tier: CustomerTier::Gold,
            lifetime_value: Money::parse(123_400).unwrap(),
            churn_risk: ChurnRisk::parse(40).unwrap(),
        },
        channel: Channel::PublicSocial,
        category: Category::ProductDefect,
        visibility: Visibility {
            audience_reach: Reach::parse(2_000_000).unwrap(),
            shares: Reach::parse(5_000).unwrap(),
            media_attention: true,
        },
        product_idea: false,
        item_sku: None,
        summary: FreeText::parse("the heel came off on day two").unwrap(),
    }
}

fn envelope(payload: ComplaintEvent) -> Envelope {
    let f = facts();
    Envelope {
        event_id: EventId::derived(uuid::Uuid::nil(), "test", 0),
        complaint_id: Some(ComplaintId::for_ticket(
            &f.source_system,
            &f.external_ticket_id,
        )),
        occurred_at: Timestamp::from_millis(1_700_000_000_000),
        schema_version: SCHEMA_VERSION,
        causation_id: None,
        correlation_id: Some(uuid::Uuid::from_u128(7)),
        payload: EventPayload::Complaint(payload),
    }
}

#[test]
fn a_received_event_survives_the_wire_unchanged() {
    let e = envelope(ComplaintEvent::Received(Box::new(facts())));
    assert_eq!(decode_envelope(&encode_envelope(&e)).unwrap(), e);
}

#[test]
fn a_routing_decision_survives_the_wire_with_its_whole_explanation() {
    let f = facts();
    let policy = RoutingPolicy::default();
    let ctx = RoutingContext {
        policy: &policy,
        climate: Climate::Bad,
        stance: StanceAlignment::Unknown,
        budget_used: 5,
        segment_used: 0,
        customer_last_ceo: None,
        now: Timestamp::from_millis(1_700_000_000_000),
    };
    let decision = decide_route(&RoutingFacts::of(&f, f.visibility), &ctx);
    let e = envelope(ComplaintEvent::Routed(Box::new(decision)));
    assert_eq!(decode_envelope(&encode_envelope(&e)).unwrap(), e);
}

#[test]
fn a_breach_survives_the_wire_unchanged_raised_or_not() {
    for raised_priority in [Some(plaint_domain::Priority::P2), None] {
        let e = envelope(ComplaintEvent::SlaBreached {
            target: plaint_domain::sla::SlaTarget::Resolve,
            since: Timestamp::from_millis(1_700_000_000_000),
            due_at: Timestamp::from_millis(1_700_003_600_000),
            late_by_ms: 412,
            raised_priority,
        });
        assert_eq!(decode_envelope(&encode_envelope(&e)).unwrap(), e);
    }
}

#[test]
fn an_envelope_without_an_event_is_refused() {
    let bytes = prost::Message::encode_to_vec(&plaint_proto::events::Envelope {
        event_id: uuid::Uuid::from_u128(1).to_string(),
        ..Default::default()
    });
    assert!(matches!(
        decode_envelope(&bytes),
        Err(plaint_proto::DecodeError::UnknownEvent)
    ));
}

#[test]
fn a_truncated_envelope_is_refused() {
    let bytes = encode_envelope(&envelope(ComplaintEvent::Received(Box::new(facts()))));
    for cut in 1..bytes.len() {
        // Some prefixes are themselves valid protobuf; none may panic, and
        // none may be taken for the full event.
        if let Ok(e) = decode_envelope(&bytes[..cut]) {
            assert_ne!(e, envelope(ComplaintEvent::Received(Box::new(facts()))));
        }
    }
}

proptest! {
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_envelope(&bytes);
    }

    #[test]
    fn decoding_mutated_valid_envelopes_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = encode_envelope(&envelope(ComplaintEvent::Received(Box::new(facts()))));
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        let _ = decode_envelope(&bytes);
    }
}

#[test]
fn a_gate_recorded_before_gates_said_so_reads_its_old_markers() {
    use plaint_proto::events as pb;
    let gate = |kind: pb::GateKind, observed, limit| pb::Gate {
        kind: kind as i32,
        observed,
        limit,
        passed: true,
        note: String::new(),
        applicability: 0,
    };
    let wire = pb::Decision {
        route: pb::Route::Frontline as i32,
        priority: pb::Priority::P3 as i32,
        climate: pb::Climate::Neutral as i32,
        stance: pb::StanceAlignment::Unknown as i32,
        gates: vec![
            gate(pb::GateKind::Stance, 0, 0),
            gate(pb::GateKind::Cooldown, -1, 90),
            gate(pb::GateKind::Budget, 2, 5),
        ],
        ..Default::default()
    };
    let d = plaint_proto::convert::decision_from_wire(Some(wire), "decision").unwrap();
    let applies: Vec<(bool, i64)> = d.gates.iter().map(|g| (g.applies, g.observed)).collect();
    assert_eq!(applies, [(false, 0), (false, 0), (true, 2)]);
}

#[test]
fn an_unknown_enum_number_is_refused_with_the_accepted_names() {
    use plaint_proto::FromWire;
    let e = Channel::from_wire(99, "channel").unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("channel is not one of CHANNEL_PUBLIC_SOCIAL (1), "),
        "{message}"
    );
    assert!(message.contains("CHANNEL_LETTER_TO_CEO (8)"), "{message}");
    assert!(!message.contains("::"), "{message}");
}

#[test]
fn key_and_audit_events_survive_the_wire_unchanged() {
    use plaint_domain::access::{AccessEvent, AuditEntry, KeyId, KeyRecord, Scope};
    use plaint_domain::values::Label;
    let key_id = KeyId::parse("abcdefgh12345678").unwrap();
    let events = [
        AccessEvent::KeyCreated(Box::new(KeyRecord {
            key_id: key_id.clone(),
            name: Label::parse("billing").unwrap(),
            scopes: Scope::parse_set(["complaints:read", "complaints:write"]).unwrap(),
            secret_sha256: [7; 32],
            expires_at: Some(Timestamp::from_millis(1_800_000_000_000)),
            created_by: Label::parse("bootstrap:zz").unwrap(),
        })),
        AccessEvent::KeyExpirySet {
            key_id: key_id.clone(),
            expires_at: Timestamp::from_millis(1_800_000_000_001),
            set_by: Label::parse("key:a").unwrap(),
        },
        AccessEvent::KeyRevoked {
            key_id,
            revoked_by: Label::parse("token:ops").unwrap(),
        },
        AccessEvent::Audited(Box::new(AuditEntry {
            actor: Label::parse("key:a").unwrap(),
            action: Label::parse("SetClimate").unwrap(),
            target: FreeText::default(),
            before: FreeText::parse("\"good\"").unwrap(),
            after: FreeText::parse("\"bad\"").unwrap(),
        })),
    ];
    for event in events {
        let mut e = envelope(ComplaintEvent::ItemReceived);
        e.complaint_id = None;
        e.payload = EventPayload::Access(event);
        assert_eq!(decode_envelope(&encode_envelope(&e)).unwrap(), e);
    }
}
