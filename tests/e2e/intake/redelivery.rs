//! A helpdesk message whose command was stored but not acked (the process
//! died in between) comes back to the next process: it stores nothing new,
//! whether or not the message names a `request_id`.

use std::time::Duration;

use plaint_bus::{ConsumerSettings, EventLog, Helpdesk, StreamSettings};
use plaint_intake::Intake;
use plaint_intake::helpdesk;
use plaint_testkit::shared_nats_url;

use crate::helpers::{
    Inbound, count, eventually, spawn_intake_with, submit_json, test_config, ticket_id, within,
};

/// A fresh log and helpdesk streams under a prefix of their own, and an
/// integration publishing to them.
struct Door {
    config: plaint_intake::Config,
    log: EventLog,
    streams: Helpdesk,
    inbound: Inbound,
}

impl Door {
    async fn open() -> Self {
        let nats_url = shared_nats_url();
        let config = test_config(&nats_url);
        let (_, log) = plaint_bus::open(&config.log, "plaint-tests")
            .await
            .expect("open the event log");
        let streams = Helpdesk::open(log.clone(), &StreamSettings::default())
            .await
            .expect("open the helpdesk streams");
        let inbound = Inbound::connect(&nats_url, &config.log.prefix).await;
        Self {
            config,
            log,
            streams,
            inbound,
        }
    }
}

#[tokio::test]
async fn a_follow_up_redelivered_after_a_crash_is_stored_once_without_a_request_id() {
    let Door {
        config,
        log,
        streams,
        inbound,
    } = Door::open().await;
    let id = ticket_id("zendesk", "R-1");
    inbound
        .publish("zendesk", submit_json("zendesk", "R-1"))
        .await;
    let follow_up = format!(r#"{{"type":"follow_up","complaint_id":"{id}","text":"Any news?"}}"#);
    inbound.publish("zendesk", follow_up.clone()).await;
    let mut named = async_nats::HeaderMap::new();
    named.insert("Nats-Msg-Id", "zendesk-42");
    let named_follow_up =
        format!(r#"{{"type":"follow_up","complaint_id":"{id}","text":"Still waiting."}}"#);
    inbound
        .publish_with_headers("zendesk", named, named_follow_up)
        .await;

    // The first process: intake's own durable consumer, a short ack wait so
    // the successor gets what this one leaves unacked.
    let mut consumer = ConsumerSettings::new(
        format!("{}_helpdesk", config.log.stream),
        format!("{}.helpdesk.inbound.>", config.log.prefix),
    );
    consumer.ack_wait = Duration::from_secs(1);
    let mut deliveries = streams.consume(&consumer).await.expect("open the consumer");
    let core = Intake::new(log.clone(), config.conflict_retries);
    for k in 0..3 {
        let d = within("a delivery", deliveries.next())
            .await
            .expect("a delivery")
            .expect("a delivery");
        assert_eq!(d.delivered, 1);
        helpdesk::store(&core, &d, config.max_inbound_bytes)
            .await
            .expect("stored");
        // It dies after storing the follow-ups, before acking them.
        if k == 0 {
            d.ack_confirmed().await.expect("ack");
        }
    }
    drop(deliveries);
    assert_eq!(
        count(&log_events(&log, &id).await, "customer_followed_up"),
        2
    );

    // Its successor is given both follow-ups again, and acks them.
    let intake = spawn_intake_with(config).await;
    eventually("the redelivered messages to be acked", async || {
        let pending = intake
            .helpdesk
            .inbound_pending()
            .await
            .expect("inbound info");
        (pending == 0).then_some(())
    })
    .await;
    assert!(intake.dead_letters().await.is_empty());
    let events = intake.events(&id).await;
    assert_eq!(count(&events, "complaint_received"), 1);
    assert_eq!(count(&events, "customer_followed_up"), 2, "{events:#?}");
    intake.finish().await;
}

async fn log_events(
    log: &EventLog,
    id: &plaint_domain::ComplaintId,
) -> Vec<plaint_bus::StoredEvent> {
    log.read_subject(&log.names().complaint(id))
        .await
        .expect("read the complaint's subject")
}

/// Messages of one pull that wait in this process behind slow work are kept
/// by progress acks like the one being handled, and are handled even when
/// working through them outlasts the pull (the client ends a pull 5 s after
/// its 1 s expiry, dropping what it still buffers): none is redelivered.
#[tokio::test]
async fn a_pull_worked_through_slowly_is_not_redelivered_while_it_waits() {
    let Door {
        config,
        streams,
        inbound,
        ..
    } = Door::open().await;
    const MESSAGES: usize = 5;
    for i in 0..MESSAGES {
        inbound
            .publish("zendesk", submit_json("zendesk", &format!("S-{i}")))
            .await;
    }

    let mut consumer = ConsumerSettings::new(
        format!("{}_slow", config.log.stream),
        format!("{}.helpdesk.inbound.>", config.log.prefix),
    );
    consumer.ack_wait = Duration::from_secs(1);
    consumer.batch = 64;
    let mut deliveries = streams.consume(&consumer).await.expect("open the consumer");
    // Each takes 1.6 s: the last of the pull is asked for 6.4 s after it
    // came, past the ack wait and past the end of the pull.
    let mut seen = Vec::new();
    while seen.len() < MESSAGES {
        let d = within("a delivery", deliveries.next())
            .await
            .expect("a delivery")
            .expect("a delivery");
        assert_eq!(
            d.delivered, 1,
            "message at {} delivered again while it waited",
            d.stream_sequence
        );
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        d.ack_confirmed().await.expect("ack");
        seen.push(d.stream_sequence);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), MESSAGES, "each message once: {seen:?}");
    // Nothing comes again after the ack wait.
    let again = tokio::time::timeout(Duration::from_millis(1_500), deliveries.next()).await;
    assert!(again.is_err(), "a message came again: {again:?}");
}
