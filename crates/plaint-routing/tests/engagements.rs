//! The engagements a router keeps for the cooldown, against a real NATS:
//! nothing is used before a first full read, a later engagement replaces an
//! earlier one, and a customer whose last message cannot be decoded is read
//! from the subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../plaint-projection/tests/support/mod.rs"]
mod support;

use plaint_bus::{EventLog, Expect, Names, StreamSettings};
use plaint_domain::event::{CeoSlot, CompanyEvent};
use plaint_domain::values::Segment;
use plaint_domain::{ComplaintId, Timestamp};
use plaint_routing::engagements::{Engagement, Engagements, Known};
use plaint_testkit::NatsServer;
use support::{Log, T0};

/// Appends an engagement of `customer` for `complaint` at `at`.
async fn engage(log: &EventLog, customer: &str, complaint: ComplaintId, at: i64) {
    let slot = CeoSlot {
        window_start: Timestamp::from_millis(T0),
        complaint_id: complaint,
        customer: support::pseudonyms().of_raw(customer),
        segment: Segment::parse("retail").unwrap(),
        used: 0,
        segment_used: Default::default(),
    };
    let item = Log::default().company(at, CompanyEvent::CeoSlotReserved(slot));
    let mut envelope = item.event.unwrap().envelope;
    envelope.complaint_id = Some(complaint);
    log.append(
        &log.names()
            .ceo_customer(support::pseudonyms().of_raw(customer).as_str()),
        &envelope,
        Expect::Any,
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn kept_engagements_follow_the_log_and_fall_back_to_the_subject() {
    let nats = NatsServer::start();
    let client = plaint_bus::connect(&nats.url(), "engagements-test")
        .await
        .unwrap();
    let names = Names::new(&plaint_testkit::unique_prefix(), "ENG_TEST").unwrap();
    let personal = plaint_bus::PersonalDataSettings::for_tests(names.prefix()).unwrap();
    let log = EventLog::open(client.clone(), names, &StreamSettings::default(), &personal)
        .await
        .unwrap();
    let first = ComplaintId::from_uuid(uuid::Uuid::new_v4());
    let second = ComplaintId::from_uuid(uuid::Uuid::new_v4());
    engage(&log, "alice", first, T0).await;
    let alice = log
        .names()
        .ceo_customer(support::pseudonyms().of_raw("alice").as_str());
    let bob = log
        .names()
        .ceo_customer(support::pseudonyms().of_raw("bob").as_str());
    let carol = log
        .names()
        .ceo_customer(support::pseudonyms().of_raw("carol").as_str());

    let mut kept = Engagements::default();
    assert_eq!(kept.of(&alice), Known::ReadTheSubject, "nothing read yet");

    kept.refresh(&log, 0).await.unwrap();
    let at = |ms| {
        Known::Last(Some(Engagement {
            complaint_id: Some(first),
            at: Timestamp::from_millis(ms),
        }))
    };
    assert_eq!(kept.of(&alice), at(T0));
    assert_eq!(kept.of(&carol), Known::Last(None), "never engaged");

    // Something that is not an event on bob's subject, then a later
    // engagement of alice.
    client
        .publish(bob.clone(), "not protobuf".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    engage(&log, "alice", second, T0 + 1_000).await;
    kept.refresh(&log, 0).await.unwrap();
    assert_eq!(kept.of(&bob), Known::ReadTheSubject);
    assert_eq!(
        kept.of(&alice),
        Known::Last(Some(Engagement {
            complaint_id: Some(second),
            at: Timestamp::from_millis(T0 + 1_000),
        }))
    );

    // A good message after the bad one makes bob's last engagement known.
    engage(&log, "bob", first, T0 + 2_000).await;
    kept.refresh(&log, 0).await.unwrap();
    assert!(matches!(kept.of(&bob), Known::Last(Some(_))));
}
