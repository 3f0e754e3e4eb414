//! The helpdesk door on NATS: what cannot be accepted is dead-lettered with
//! its original bytes, subject and the reason, and nothing blocks what follows.

use std::collections::HashMap;

use plaint_proto::intake as pb;
use plaint_testkit::shared_nats_url;

use crate::helpers::{count, eventually, spawn_intake, submit_json, submit_request, ticket_id};

/// One refused message: where it was published, its bytes, and a word its
/// dead-letter reason must contain.
struct Refused {
    kind: &'static str,
    payload: Vec<u8>,
    reason_names: &'static str,
}

#[tokio::test]
async fn bad_helpdesk_messages_are_dead_lettered_with_their_bytes_and_reason() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let a = ticket_id("zendesk", "H-A");
    let b = ticket_id("zendesk", "H-B");

    let mut oversize = submit_json("zendesk", "H-BIG").into_bytes();
    oversize.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let refused = [
        Refused {
            kind: "bad-json",
            payload: br#"{"type": "submit", oops}"#.to_vec(),
            reason_names: "JSON",
        },
        Refused {
            kind: "bad-utf8",
            payload: b"{\"type\":\"submit\",\"summary\":\"\xff\xfe\"}".to_vec(),
            reason_names: "UTF-8",
        },
        Refused {
            kind: "bad-enum",
            payload: submit_json("zendesk", "H-ENUM")
                .replace("\"EMAIL\"", "\"TELEPATHY\"")
                .into_bytes(),
            reason_names: "channel",
        },
        Refused {
            kind: "no-customer",
            payload: br#"{"type":"submit","source_system":"zendesk","external_ticket_id":"H-NC","channel":"EMAIL","category":"BILLING","summary":"Charged twice."}"#.to_vec(),
            reason_names: "customer",
        },
        Refused {
            kind: "oversize",
            payload: oversize,
            reason_names: "65536",
        },
        Refused {
            // Its own complaint, but not routed yet.
            kind: "zendesk",
            payload: br#"{"type":"acknowledge","source_system":"zendesk","external_ticket_id":"H-A","by":"agent-7"}"#.to_vec(),
            reason_names: "acknowledge",
        },
        Refused {
            // Another integration speaking for zendesk's complaint: the
            // subject says who it is, whatever the payload says.
            kind: "globex",
            payload: br#"{"type":"follow_up","source_system":"zendesk","external_ticket_id":"H-A","text":"It is me, zendesk."}"#.to_vec(),
            reason_names: "integration globex speaks only for complaints of source system globex",
        },
        Refused {
            kind: "initech",
            payload: submit_json("zendesk", "H-IMPOSTOR").into_bytes(),
            reason_names: "this one is zendesk's",
        },
        Refused {
            // Field 1, length-delimited, claiming 255 bytes that never come.
            kind: "bad-protobuf",
            payload: vec![0x0a, 0xff, 0x01, 0x12],
            reason_names: "protobuf",
        },
    ];

    intake
        .inbound
        .publish("zendesk", submit_json("zendesk", "H-A"))
        .await;
    for r in &refused {
        if r.kind == "bad-protobuf" {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", "application/protobuf");
            intake
                .inbound
                .publish_with_headers(r.kind, headers, r.payload.clone())
                .await;
        } else {
            intake.inbound.publish(r.kind, r.payload.clone()).await;
        }
    }
    intake
        .inbound
        .publish("zendesk", submit_json("zendesk", "H-B"))
        .await;

    let letters = intake.wait_for_dead_letters(refused.len()).await;
    assert_eq!(letters.len(), refused.len(), "{letters:#?}");
    let by_subject: HashMap<&str, &pb::DeadLetter> = letters
        .iter()
        .map(|l| (l.original_subject.as_str(), l))
        .collect();
    for r in &refused {
        let subject = intake.inbound.subject(r.kind);
        assert!(subject.starts_with(&format!("{}.helpdesk.inbound.", intake.prefix)));
        let letter = by_subject
            .get(subject.as_str())
            .unwrap_or_else(|| panic!("no dead letter from {subject}"));
        assert_eq!(letter.payload, r.payload, "{} payload", r.kind);
        assert!(
            letter.reason.contains(r.reason_names),
            "{}: reason {:?} does not name {:?}",
            r.kind,
            letter.reason,
            r.reason_names
        );
    }
    let protobuf = by_subject[intake.inbound.subject("bad-protobuf").as_str()];
    assert!(
        protobuf
            .headers
            .values()
            .any(|v| v == "application/protobuf"),
        "original headers kept: {:?}",
        protobuf.headers
    );

    // The good messages on either side went through, once, and nothing
    // followed the refused acknowledgement or the impostor's follow-up.
    for id in [a, b] {
        let events = intake.wait_for_complaint(&id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(count(&events, "complaint_received"), 1);
    }
    for ticket in ["H-ENUM", "H-NC", "H-BIG", "H-IMPOSTOR"] {
        assert!(
            intake
                .events(&ticket_id("zendesk", ticket))
                .await
                .is_empty()
        );
    }

    // Requeued, a still-invalid letter comes back as a new dead letter with
    // the same bytes and subject.
    let enum_letter = by_subject[intake.inbound.subject("bad-enum").as_str()];
    let mut admin = intake.admin.clone();
    admin
        .requeue_dead_letter(pb::RequeueDeadLetterRequest {
            sequence: enum_letter.sequence,
        })
        .await
        .unwrap();
    let after = intake.wait_for_dead_letters(refused.len() + 1).await;
    assert_eq!(after.len(), refused.len() + 1);
    let again = after.last().unwrap();
    assert!(again.sequence > enum_letter.sequence);
    assert_eq!(again.original_subject, enum_letter.original_subject);
    assert_eq!(again.payload, enum_letter.payload);
    assert!(again.reason.contains("channel"), "{again:?}");
    intake.finish().await;
}

#[tokio::test]
async fn a_dead_letter_requeued_once_its_complaint_exists_is_stored() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let follow_up = br#"{"type":"follow_up","source_system":"zendesk","external_ticket_id":"H-LATE","text":"Any news?"}"#;
    intake.inbound.publish("zendesk", follow_up.to_vec()).await;
    let letters = intake.wait_for_dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("not found"), "{letters:?}");

    let mut client = intake.client.clone();
    client
        .submit_complaint(submit_request("zendesk", "H-LATE"))
        .await
        .unwrap();
    let mut admin = intake.admin.clone();
    admin
        .requeue_dead_letter(pb::RequeueDeadLetterRequest {
            sequence: letters[0].sequence,
        })
        .await
        .unwrap();

    let id = ticket_id("zendesk", "H-LATE");
    let events = eventually("the requeued follow-up to be stored", async || {
        Some(intake.events(&id).await).filter(|e| e.len() >= 2)
    })
    .await;
    intake.wait_inbound_drained().await;
    assert_eq!(count(&events, "complaint_received"), 1);
    assert_eq!(count(&events, "customer_followed_up"), 1);
    assert_eq!(intake.events(&id).await.len(), 2);
    assert_eq!(intake.dead_letters().await.len(), 1);
    intake.finish().await;
}

#[tokio::test]
async fn an_inbound_stream_made_before_the_limit_gets_it_when_intake_starts() {
    let nats = plaint_testkit::NatsServer::start();
    let mut config = crate::helpers::test_config(&nats.url());
    let names = plaint_bus::Names::new(&config.log.prefix, &config.log.stream).unwrap();
    // As earlier versions made it: no limit per subject, old messages dropped.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: names.inbound_stream(),
        subjects: vec![names.inbound_subjects()],
        retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .unwrap();

    config.helpdesk_max_pending = 3;
    let intake = crate::helpers::spawn_intake_with(config).await;
    let mut stream = js.get_stream(names.inbound_stream()).await.unwrap();
    let limits = stream.info().await.unwrap().config.clone();
    assert_eq!(limits.max_messages_per_subject, 3);
    assert!(limits.discard_new_per_subject);
    assert_eq!(
        limits.discard,
        async_nats::jetstream::stream::DiscardPolicy::New
    );
    intake.finish().await;
}
