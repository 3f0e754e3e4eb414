//! A complaint is stored once, whichever door and however often it arrives.

use std::time::Duration;

use plaint_bus::{AppendError, Expect};
use plaint_testkit::{NatsServer, shared_nats_url};

use crate::helpers::{
    count, eventually, follow_up, spawn_intake, spawn_intake_with, submit_json, submit_request,
    ticket_id, written_id,
};

#[tokio::test]
async fn a_ticket_submitted_twice_over_grpc_and_once_over_nats_is_stored_once() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut client = intake.client.clone();

    let first = client
        .submit_complaint(submit_request("zendesk", "T-100"))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .submit_complaint(submit_request("zendesk", "T-100"))
        .await
        .unwrap()
        .into_inner();
    intake
        .inbound
        .publish("zendesk", submit_json("zendesk", "T-100"))
        .await;
    intake.wait_inbound_drained().await;

    let id = ticket_id("zendesk", "T-100");
    assert_eq!(written_id(&first), id);
    assert_eq!(second.complaint_id, first.complaint_id);
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.sequence, first.sequence);
    assert_eq!(second.event_id, first.event_id);
    // The helpdesk copy was accepted as a duplicate, not refused.
    assert!(intake.dead_letters().await.is_empty());

    let events = intake.events(&id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(count(&events, "complaint_received"), 1);
    assert_eq!(events[0].sequence, first.sequence);
    assert_eq!(events[0].envelope.event_id.to_string(), first.event_id);
    intake.finish().await;
}

#[tokio::test]
async fn a_resubmission_after_the_dedup_window_still_stores_nothing() {
    let nats = NatsServer::start();
    let mut config = crate::helpers::test_config(&nats.url());
    config.log.duplicate_window_secs = 1;
    let intake = spawn_intake_with(config).await;
    let mut client = intake.client.clone();

    let first = client
        .submit_complaint(submit_request("zendesk", "T-200"))
        .await
        .unwrap()
        .into_inner();
    let id = written_id(&first);
    // Outlive the server's memory of the event id: from here on only the
    // expected-last-sequence condition keeps the complaint single. The probe
    // re-appends the stored event under the creation condition: while the
    // server remembers the id it answers "duplicate"; once it has forgotten,
    // the condition refuses it. Either way nothing new is stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = intake.events(&id).await.remove(0);
    let subject = intake
        .log
        .names()
        .subject_of(&stored.envelope)
        .expect("a complaint event");
    eventually("the server to forget the event id", async || {
        match intake
            .log
            .append(&subject, &stored.envelope, Expect::Empty, None)
            .await
        {
            Err(AppendError::WrongLastSequence) => Some(()),
            Ok(a) => {
                assert!(a.duplicate, "the probe stored an event: {a:?}");
                None
            }
            Err(e) => panic!("probe failed: {e}"),
        }
    })
    .await;
    let again = client
        .submit_complaint(submit_request("zendesk", "T-200"))
        .await
        .unwrap()
        .into_inner();

    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.complaint_id, first.complaint_id);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(again.event_id, first.event_id);
    let events = intake.events(&id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(count(&events, "complaint_received"), 1);
    intake.finish().await;
}

/// The JetStream features intake relies on (message-id deduplication, expected last
/// subject sequence, next-by-subject reads) on a server of the test's own, with no
/// stream provisioned before intake starts.
#[tokio::test]
async fn intake_appends_and_deduplicates_on_a_fresh_server() {
    let nats = NatsServer::start();
    let intake = spawn_intake(&nats.url()).await;
    let mut client = intake.client.clone();

    let first = client
        .submit_complaint(submit_request("compat", "C-1"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .submit_complaint(submit_request("compat", "C-1"))
        .await
        .unwrap()
        .into_inner();
    let id = written_id(&first);
    let followed = client
        .record_follow_up(follow_up(&id, "Any news?"))
        .await
        .unwrap()
        .into_inner();

    assert!(!first.duplicate);
    assert!(again.duplicate, "nats-server {}", nats.version());
    assert_eq!(again.sequence, first.sequence);
    assert!(followed.sequence > first.sequence);
    let events = intake.events(&id).await;
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        [first.sequence, followed.sequence],
        "nats-server {}",
        nats.version()
    );
    assert_eq!(count(&events, "complaint_received"), 1);
    assert_eq!(count(&events, "customer_followed_up"), 1);
    intake.finish().await;
}
