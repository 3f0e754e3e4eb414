//! Running the service: restarts, health, reflection and shutdown.

use crate::helpers::{
    Inbound, WAIT, assert_health, count, eventually, expected_listing, list_services, spawn_intake,
    spawn_intake_with, submit_json, submit_request, test_config, ticket_id,
};
use plaint_testkit::{NatsServer, shared_nats_url};

const WHILE_DOWN: usize = 50;

#[tokio::test]
async fn messages_published_while_intake_is_down_are_processed_once_after_it_starts() {
    let nats = NatsServer::start();
    let config = test_config(&nats.url());
    // A first run provisions the streams and the durable consumer.
    let mut first = spawn_intake_with(config.clone()).await;
    first.stop().await;

    let inbound = Inbound::connect(&nats.url(), &config.log.prefix).await;
    let tickets: Vec<String> = (0..WHILE_DOWN).map(|i| format!("D-{i}")).collect();
    for t in &tickets {
        inbound.publish("zendesk", submit_json("zendesk", t)).await;
    }
    assert_eq!(
        first.helpdesk.inbound_pending().await.unwrap(),
        WHILE_DOWN as u64
    );
    assert_eq!(first.log.last_sequence().await.unwrap(), 0);

    let second = spawn_intake_with(config).await;
    let ids: Vec<_> = tickets.iter().map(|t| ticket_id("zendesk", t)).collect();
    eventually(&format!("{WHILE_DOWN} complaints"), async || {
        let mut stored = 0;
        for id in &ids {
            if !second.events(id).await.is_empty() {
                stored += 1;
            }
        }
        (stored == WHILE_DOWN).then_some(())
    })
    .await;
    second.wait_inbound_drained().await;

    for id in &ids {
        let events = second.events(id).await;
        assert_eq!(events.len(), 1, "{id}: {events:?}");
        assert_eq!(count(&events, "complaint_received"), 1);
    }
    // Nothing else reached the log, and nothing was refused.
    assert_eq!(second.log.last_sequence().await.unwrap(), WHILE_DOWN as u64);
    assert!(second.dead_letters().await.is_empty());
    second.finish().await;
}

#[tokio::test]
async fn health_and_reflection_tell_only_what_intake_serves() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let served = ["plaint.intake.v1.Intake", "plaint.intake.v1.IntakeAdmin"];
    let elsewhere = ["plaint.router.v1.Query", "plaint.router.v1.Admin"];
    assert_health(intake.channel.clone(), &served, &elsewhere).await;
    assert_eq!(
        list_services(intake.channel.clone()).await,
        expected_listing(&served)
    );
    intake.finish().await;
}

#[tokio::test]
async fn run_until_stopped_returns_promptly_after_the_shutdown_signal() {
    let mut intake = spawn_intake(&shared_nats_url()).await;
    // Work through both doors first, so there is a connection and a consumer to wind down.
    let mut client = intake.client.clone();
    client
        .submit_complaint(submit_request("crm", "S-1"))
        .await
        .unwrap();
    intake
        .inbound
        .publish("zendesk", submit_json("zendesk", "S-2"))
        .await;
    intake
        .wait_for_complaint(&ticket_id("zendesk", "S-2"))
        .await;

    // `stop` fails the test if `run_until_stopped` does not return Ok within 10 s.
    let took = intake.stop().await;
    assert!(took < WAIT, "stopping took {took:?}");
    assert!(
        tokio::net::TcpStream::connect(intake.addr).await.is_err(),
        "still listening after shutdown"
    );
    intake.finish().await;
}
