//! The helpdesk round trip: an integration publishes onto its inbound subject
//! and reads, through its own durable consumer on the outbound stream, a
//! receipt for every message (stored, duplicate, refused) and the decision
//! and later changes of its complaints; one that never reads loses only its
//! oldest messages, counted.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use plaint_proto::intake as pb;
use prost::Message;
use serde_json::Value;

use crate::helpers::{eventually, spawn_intake_with, submit_json, test_config, ticket_id};
use crate::router::spawn_router;
use crate::scrape::scrape;

/// An integration reading its outbound messages as a helpdesk would.
pub(crate) struct Reader {
    consumer: PullConsumer,
}

/// One outbound message as read.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    subject: String,
    content_type: String,
    payload: bytes::Bytes,
}

impl Read {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("a JSON outbound message")
    }
}

impl Reader {
    pub(crate) async fn connect(nats_url: &str, stream: &str, integration: &str) -> Self {
        let client = async_nats::connect(nats_url).await.expect("connect");
        let js = jetstream::new(client);
        // Intake makes it when the integration's first message comes in.
        let consumer = eventually("the integration's consumer", async || {
            js.get_consumer_from_stream(integration, stream).await.ok()
        })
        .await;
        Self { consumer }
    }

    /// Up to `max` messages, waiting at most a second; acked when `ack`.
    async fn fetch(&self, max: usize, ack: bool) -> Vec<Read> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetch");
        let mut read = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.expect("a message");
            let content_type = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Content-Type"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            if ack {
                m.double_ack().await.expect("ack");
            }
            read.push(Read {
                subject: m.subject.to_string(),
                content_type,
                payload: m.payload.clone(),
            });
        }
        read
    }

    /// Reads and acks until `n` messages came (within the test's wait).
    pub(crate) async fn read_all(&self, n: usize) -> Vec<Read> {
        let mut all = Vec::new();
        eventually("the integration's outbound messages", async || {
            all.extend(self.fetch(n.saturating_sub(all.len()).max(1), true).await);
            (all.len() >= n).then_some(())
        })
        .await;
        all
    }
}

#[tokio::test]
async fn an_integration_hears_receipts_decisions_and_changes_of_its_complaints() {
    let db = plaint_testkit::TestDb::create().await;
    let mut config = test_config(&plaint_testkit::shared_nats_url());
    // What a reader that died held comes again this soon.
    config.log.outbound_ack_wait_secs = 2;
    let intake = spawn_intake_with(config).await;
    let router = spawn_router(&intake, db.url()).await;
    let outbound = intake.log.names().outbound_stream();
    let acme = "acme";
    let id = ticket_id(acme, "A-1");

    // Its first message: a submission, named by the integration.
    let mut named = async_nats::HeaderMap::new();
    named.insert("Nats-Msg-Id", "acme-msg-1");
    intake
        .inbound
        .publish_with_headers(acme, named, submit_json(acme, "A-1"))
        .await;
    let reader = Reader::connect(&plaint_testkit::shared_nats_url(), &outbound, acme).await;
    let first = reader.read_all(2).await;
    let receipt = first
        .iter()
        .map(Read::json)
        .find(|m| m["type"] == "receipt")
        .expect("a receipt");
    assert_eq!(receipt["outcome"], "stored", "{receipt}");
    assert_eq!(receipt["complaint_id"], id.to_string());
    assert_eq!(receipt["message_id"], "acme-msg-1");
    assert!(receipt["sequence"].as_u64().unwrap_or(0) > 0, "{receipt}");
    assert!(first.iter().all(|r| r.content_type == "application/json"));
    let routed = first
        .iter()
        .map(Read::json)
        .find(|m| m["type"] == "update")
        .expect("the decision");
    assert_eq!(routed["event_type"], "complaint_routed", "{routed}");
    assert_eq!(routed["external_ticket_id"], "A-1");
    assert_eq!(routed["status"], "ROUTED");
    assert_eq!(routed["key"], routed["event_id"]);
    let decision = &routed["decision"];
    assert!(decision["route"].is_string() && decision["priority"].is_string());
    assert!(decision["policy_version"].as_u64().is_some(), "{decision}");
    assert!(
        decision["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("(policy v")),
        "{decision}"
    );
    assert!(
        first.iter().any(|r| r.subject.ends_with(".acme.receipt"))
            && first.iter().any(|r| r.subject.ends_with(".acme.update"))
    );

    // The same ticket again from another message, a refused message, and
    // an acknowledgement of the complaint.
    intake.inbound.publish(acme, submit_json(acme, "A-1")).await;
    intake
        .inbound
        .publish(
            acme,
            submit_json(acme, "A-2").replace("\"EMAIL\"", "\"TELEPATHY\""),
        )
        .await;
    intake
        .inbound
        .publish(
            acme,
            format!(
                r#"{{"type":"acknowledge","source_system":"acme","external_ticket_id":"A-1","by":"agent-7","request_id":"{}"}}"#,
                uuid::Uuid::new_v4()
            ),
        )
        .await;

    // The integration's reader dies holding what it fetched, unacked; its
    // successor is given all of it again, and nothing is missing.
    let held = eventually("messages for the reader to hold", async || {
        let held = reader.fetch(2, false).await;
        (!held.is_empty()).then_some(held)
    })
    .await;
    drop(reader);
    let successor = Reader::connect(&plaint_testkit::shared_nats_url(), &outbound, acme).await;
    let rest = successor.read_all(4).await;
    for h in &held {
        assert!(
            rest.iter().any(|r| r.payload == h.payload),
            "a message the dead reader held came again: {}",
            h.json()
        );
    }
    let by_kind: BTreeMap<String, Value> = rest
        .iter()
        .map(Read::json)
        .map(|m| {
            let kind = match m["type"].as_str() {
                Some("receipt") => format!("receipt-{}", m["outcome"].as_str().unwrap_or("")),
                _ => m["event_type"].as_str().unwrap_or("").to_owned(),
            };
            (kind, m)
        })
        .collect();
    let duplicate = &by_kind["receipt-duplicate"];
    assert_eq!(duplicate["complaint_id"], id.to_string());
    assert_eq!(duplicate["original_sequence"], receipt["sequence"]);
    let refused = &by_kind["receipt-refused"];
    assert_eq!(refused["field"], "channel", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("channel"))
    );
    let acked = by_kind
        .get("acknowledged")
        .unwrap_or_else(|| panic!("the acknowledgement went out: {by_kind:#?}"));
    assert_eq!(acked["status"], "ACKNOWLEDGED");
    assert!(
        acked["sequence"].as_u64() > routed["sequence"].as_u64(),
        "later changes have higher sequences"
    );
    assert!(
        by_kind.contains_key("receipt-stored"),
        "the acknowledgement's receipt"
    );
    router.stop().await;
}

#[tokio::test]
async fn an_integration_that_never_reads_loses_only_its_oldest_messages_counted() {
    let mut config = test_config(&plaint_testkit::shared_nats_url());
    config.log.outbound_kept = 3;
    config.log.outbound_protobuf = "slowco".to_owned();
    let intake = spawn_intake_with(config).await;
    let outbound = intake.log.names().outbound_stream();

    for ticket in 0..6 {
        let refused = submit_json("slowco", &format!("S-{ticket}")).replace("\"EMAIL\"", "\"FAX\"");
        intake.inbound.publish("slowco", refused).await;
    }
    intake.wait_for_dead_letters(6).await;
    eventually("six receipts sent, three discarded", async || {
        let body = scrape(intake.metrics_addr).await;
        body.lines()
            .any(|l| {
                l.starts_with("plaint_outbound_discarded_total{integration=\"slowco\"}")
                    && l.ends_with(" 3")
            })
            .then_some(())
    })
    .await;

    // What is left is the newest three, in protobuf.
    let reader = Reader::connect(&plaint_testkit::shared_nats_url(), &outbound, "slowco").await;
    let left = reader.read_all(3).await;
    assert!(
        reader.fetch(10, true).await.is_empty(),
        "no more than three kept"
    );
    let mut sequences = Vec::new();
    for r in &left {
        assert_eq!(r.content_type, "application/protobuf");
        let m = pb::HelpdeskOutbound::decode(r.payload.clone()).expect("protobuf");
        let Some(pb::helpdesk_outbound::Message::Receipt(receipt)) = m.message else {
            panic!("not a receipt: {m:?}");
        };
        let Some(pb::helpdesk_receipt::Outcome::Refused(why)) = receipt.outcome else {
            panic!("not a refusal: {receipt:?}");
        };
        assert_eq!(why.field, "channel");
        sequences.push(receipt.inbound_sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, vec![4, 5, 6], "the oldest went first");
}
