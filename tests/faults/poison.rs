//! Poison messages at both doors.
//!
//! - The helpdesk door: garbage is dead-lettered at once; a command that keeps
//!   failing for a reason that looks transient (its complaint's history cannot
//!   be read, so every attempt ends in an internal error) is retried and
//!   dead-lettered at its `max_deliver`-th delivery. Healthy messages published
//!   behind them are stored meanwhile, and the inbound stream drains.
//! - The event log itself: garbage published straight onto complaint subjects
//!   is dead-lettered by the routing consumer and terminated at once; a valid
//!   event whose complaint cannot be routed (a corrupt event on its subject) is
//!   retried and dead-lettered at `max_deliver`; the projector skips what it
//!   cannot decode and its checkpoint reaches the end of the log; healthy
//!   complaints are routed meanwhile and no consumer is left with a backlog.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use plaint_bus::{DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT, Helpdesk, RawMessage, StreamSettings};
use plaint_domain::ComplaintId;
use plaint_domain::values::{ExternalTicketId, SourceSystem};
use plaint_proto::intake::{self as ipb, intake_admin_client::IntakeAdminClient};
use plaint_proto::router as rpb;

use crate::harness::eventually;
use crate::racing::{
    Decisions, consumer_backlog, delete_streams, open_log, quiet, spawn_intake, spawn_router,
};

/// The id intake gives the complaint `source` knows as `ticket`.
fn ticket_id(source: &str, ticket: &str) -> ComplaintId {
    ComplaintId::for_ticket(
        &SourceSystem::parse(source).expect("source"),
        &ExternalTicketId::parse(ticket).expect("ticket"),
    )
}

/// A helpdesk submission in the JSON format.
fn submit_json(source: &str, ticket: &str) -> String {
    format!(
        r#"{{"type":"submit","source_system":"{source}","external_ticket_id":"{ticket}",
            "customer":{{"customer_id":"c-{ticket}","segment":"consumer","tier":"GOLD"}},
            "channel":"EMAIL","category":"BILLING","summary":"Charged twice."}}"#
    )
}

/// The value of a header of a stored message.
fn header<'a>(m: &'a RawMessage, name: &str) -> &'a str {
    m.headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Publishes `payload` onto `subject` of some stream and waits for the stream's ack.
async fn publish(js: &jetstream::Context, subject: String, payload: impl Into<Bytes>) -> u64 {
    js.publish(subject, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
}

/// Healthy messages published behind the poison, at each door.
const HEALTHY: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_at_the_helpdesk_door_is_dead_lettered_and_healthy_messages_flow_past_it() {
    let started = Instant::now();
    let nats = plaint_testkit::shared_nats_url();
    let prefix = plaint_testkit::unique_prefix();
    let config = plaint_intake::Config::for_tests(&nats, &prefix);
    let max_deliver = config.helpdesk_max_deliver;
    let mut intake = spawn_intake(config.clone(), Duration::from_secs(10)).await;
    let log = open_log(&nats, &prefix, &config.log.stream).await;
    let names = log.names().clone();
    let helpdesk = Helpdesk::open(log.clone(), &StreamSettings::default())
        .await
        .expect("helpdesk streams");
    let js = jetstream::new(async_nats::connect(&nats).await.expect("connect"));
    let inbound = |kind: &str| format!("{prefix}.helpdesk.inbound.{kind}");

    // A complaint whose subject holds an event nobody can decode: every command
    // on it fails to read its history, which intake treats as retryable.
    let corrupt = ComplaintId::from_uuid(uuid::Uuid::new_v4());
    publish(
        &js,
        names.complaint_of_kind(&corrupt, "received"),
        &b"\x00\x01 not an envelope"[..],
    )
    .await;
    let keeps_failing =
        format!(r#"{{"type":"follow_up","complaint_id":"{corrupt}","text":"Any news?"}}"#);
    let poison_published = Instant::now();
    publish(&js, inbound("stuck"), keeps_failing.clone()).await;

    // Garbage of every kind: dead-lettered on the first delivery.
    let mut oversize = submit_json("poison", "BIG").into_bytes();
    oversize.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("bytes", vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        ("json", br#"{"type": "submit", oops"#.to_vec()),
        (
            "shape",
            br#"{"type": "teleport", "complaint_id": "nope"}"#.to_vec(),
        ),
        (
            "utf8",
            b"{\"type\":\"submit\",\"summary\":\"\xff\xfe\"}".to_vec(),
        ),
        ("oversize", oversize),
    ];
    for (kind, payload) in &garbage {
        publish(&js, inbound(&format!("garbage-{kind}")), payload.clone()).await;
    }

    // Healthy traffic behind them.
    for i in 0..HEALTHY {
        publish(
            &js,
            inbound("poison"),
            submit_json("poison", &format!("H-{i}")),
        )
        .await;
    }
    let healthy_ids: Vec<ComplaintId> = (0..HEALTHY)
        .map(|i| ticket_id("poison", &format!("H-{i}")))
        .collect();
    let log_ref = &log;
    let ids_ref = &healthy_ids;
    eventually(
        "every healthy message stored",
        Duration::from_secs(15),
        async || {
            for id in ids_ref {
                if log_ref
                    .read_subject(&log_ref.names().complaint(id))
                    .await
                    .ok()?
                    .is_empty()
                {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let healthy_done = poison_published.elapsed();
    let garbage_letters = eventually(
        "the garbage dead-lettered",
        Duration::from_secs(10),
        async || {
            let letters = helpdesk
                .dead_letter_page(0, 100, usize::MAX)
                .await
                .ok()?
                .letters;
            (letters.len() >= garbage.len()).then_some(letters)
        },
    )
    .await;
    let garbage_done = poison_published.elapsed();
    let letters = eventually(
        "the stuck command dead-lettered",
        Duration::from_secs(60),
        async || {
            let letters = helpdesk
                .dead_letter_page(0, 100, usize::MAX)
                .await
                .ok()?
                .letters;
            (letters.len() > garbage.len()).then_some(letters)
        },
    )
    .await;
    let poison_done = poison_published.elapsed();

    // Garbage: at once, each with its bytes, subject and a parse error as the reason.
    assert_eq!(
        garbage_letters.len(),
        garbage.len(),
        "only the garbage is dead-lettered at once: {garbage_letters:#?}"
    );
    for (kind, payload) in &garbage {
        let subject = inbound(&format!("garbage-{kind}"));
        let letter = letters
            .iter()
            .find(|l| header(l, DEAD_LETTER_SUBJECT) == subject)
            .unwrap_or_else(|| panic!("no dead letter from {subject}"));
        // A letter that names its customer is sealed with their key: its
        // bytes are the original once opened.
        let bytes = helpdesk
            .letter_bytes(&letter.headers, letter.payload.clone())
            .await
            .expect("the letter opens")
            .expect("its customer is not erased");
        assert_eq!(bytes.as_ref(), payload.as_slice(), "{kind}");
        assert!(
            !header(letter, DEAD_LETTER_REASON).contains("gave up"),
            "{kind}: dead-lettered on its first delivery, not after retries: {:?}",
            header(letter, DEAD_LETTER_REASON)
        );
    }
    // The stuck command: after exactly max_deliver deliveries.
    assert_eq!(letters.len(), garbage.len() + 1, "{letters:#?}");
    let stuck = letters
        .iter()
        .find(|l| header(l, DEAD_LETTER_SUBJECT) == inbound("stuck"))
        .expect("the stuck command's dead letter");
    let stuck_bytes = helpdesk
        .letter_bytes(&stuck.headers, stuck.payload.clone())
        .await
        .expect("the letter opens")
        .expect("its customer is not erased");
    assert_eq!(stuck_bytes.as_ref(), keeps_failing.as_bytes());
    let reason = header(stuck, DEAD_LETTER_REASON);
    assert!(
        reason.contains(&format!("gave up after {max_deliver} deliveries")),
        "{reason:?}"
    );
    // Healthy messages did not wait for the poison's retries to end.
    assert!(
        healthy_done < poison_done,
        "healthy traffic stored after {healthy_done:?}, poison given up after {poison_done:?}"
    );
    for id in &healthy_ids {
        let events = log.read_subject(&names.complaint(id)).await.expect("read");
        assert_eq!(events.len(), 1, "{id} stored once");
    }
    // Nothing left behind: the work queue is empty and the consumer has no backlog.
    assert_eq!(helpdesk.inbound_pending().await.expect("inbound"), 0);
    let (pending, unacked) = consumer_backlog(
        &nats,
        &names.inbound_stream(),
        &format!("{}_helpdesk", names.stream()),
    )
    .await;
    assert_eq!(
        (pending, unacked),
        (0, 0),
        "the helpdesk consumer is drained"
    );

    println!(
        "poison at the helpdesk door: {} garbage messages dead-lettered after {garbage_done:.1?}; \
         {HEALTHY} healthy messages behind them stored after {healthy_done:.1?}; the stuck \
         command dead-lettered after {max_deliver} deliveries, {poison_done:.1?}; test took {:.1?}",
        garbage.len(),
        started.elapsed()
    );
    intake.stop().await;
    delete_streams(&nats, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_in_the_event_log_is_dead_lettered_by_the_router_and_skipped_by_the_projector() {
    let started = Instant::now();
    let nats = plaint_testkit::shared_nats_url();
    let prefix = plaint_testkit::unique_prefix();
    let db = plaint_testkit::TestDb::create().await;
    let intake_config = plaint_intake::Config::for_tests(&nats, &prefix);
    let mut intake = spawn_intake(intake_config.clone(), Duration::from_secs(10)).await;
    let log = open_log(&nats, &prefix, &intake_config.log.stream).await;
    let names = log.names().clone();
    let js = jetstream::new(async_nats::connect(&nats).await.expect("connect"));
    let mut client = intake.intake();

    // Before the router starts: a healthy complaint, a complaint that will not
    // be routable (a corrupt event lands on its subject right after it), and
    // garbage on complaint subjects of its own.
    let before = client
        .submit_complaint(quiet("poison", "L-before", "c-before"))
        .await
        .expect("submitted")
        .into_inner();
    let unroutable = client
        .submit_complaint(quiet("poison", "L-unroutable", "c-unroutable"))
        .await
        .expect("submitted")
        .into_inner();
    let unroutable_id = ComplaintId::parse(&unroutable.complaint_id).expect("id");
    let corrupting = &b"\x0a\x03abc trailing garbage"[..];
    // On a subject the routing consumer is delivered.
    let corrupt_subject = names.complaint_of_kind(&unroutable_id, "visibility_changed");
    let corrupt_seq = publish(&js, corrupt_subject.clone(), corrupting).await;
    // An envelope of a newer schema (an event this version does not know) and
    // plain garbage, each on a subject of its own.
    let unknown_event = prost::Message::encode_to_vec(&plaint_proto::events::Envelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        complaint_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    });
    let mut garbage = vec![(corrupt_seq, corrupt_subject, corrupting.to_vec())];
    for payload in [unknown_event, b"{\"json\": \"is not protobuf\"}".to_vec()] {
        let subject =
            names.complaint_of_kind(&ComplaintId::from_uuid(uuid::Uuid::new_v4()), "received");
        let seq = publish(&js, subject.clone(), payload.clone()).await;
        garbage.push((seq, subject, payload));
    }

    let router_config = plaint_router::Config::for_tests(&nats, &prefix, db.url());
    let max_deliver = plaint_bus::ConsumerSettings::new("", "").max_deliver;
    let router_started = Instant::now();
    let mut router = spawn_router(router_config, Duration::from_secs(10)).await;

    // Healthy traffic while the unroutable complaint is being retried.
    let mut healthy = vec![ComplaintId::parse(&before.complaint_id).expect("id")];
    for i in 0..HEALTHY {
        let w = client
            .submit_complaint(quiet("poison", &format!("L-{i}"), &format!("c-{i}")))
            .await
            .expect("submitted")
            .into_inner();
        healthy.push(ComplaintId::parse(&w.complaint_id).expect("id"));
    }
    let log_ref = &log;
    let healthy_ref = &healthy;
    eventually(
        "the healthy complaints routed",
        Duration::from_secs(15),
        async || {
            Decisions::read(log_ref, healthy_ref)
                .await
                .all_routed(healthy_ref)
                .then_some(())
        },
    )
    .await;
    let healthy_done = router_started.elapsed();

    // The router's dead letters: the garbage at once, the unroutable event at max_deliver.
    let helpdesk = Helpdesk::open(log.clone(), &StreamSettings::default())
        .await
        .expect("dead-letter stream");
    let from_log = |letters: &[RawMessage]| -> Vec<RawMessage> {
        letters
            .iter()
            .filter(|l| header(l, DEAD_LETTER_SUBJECT).starts_with(&format!("{prefix}.complaint.")))
            .cloned()
            .collect()
    };
    let helpdesk_ref = &helpdesk;
    let garbage_letters = eventually(
        "the garbage dead-lettered",
        Duration::from_secs(10),
        async || {
            let letters = from_log(
                &helpdesk_ref
                    .dead_letter_page(0, 100, usize::MAX)
                    .await
                    .ok()?
                    .letters,
            );
            (letters.len() >= garbage.len()).then_some(letters)
        },
    )
    .await;
    let garbage_done = router_started.elapsed();
    let letters = eventually(
        "the unroutable complaint dead-lettered",
        Duration::from_secs(90),
        async || {
            let letters = from_log(
                &helpdesk_ref
                    .dead_letter_page(0, 100, usize::MAX)
                    .await
                    .ok()?
                    .letters,
            );
            (letters.len() > garbage.len()).then_some(letters)
        },
    )
    .await;
    let unroutable_done = router_started.elapsed();

    assert_eq!(garbage_letters.len(), garbage.len(), "{garbage_letters:#?}");
    for (seq, subject, payload) in &garbage {
        let letter = letters
            .iter()
            .find(|l| {
                header(l, DEAD_LETTER_SUBJECT) == subject
                    && header(l, DEAD_LETTER_REASON).starts_with("undecodable")
                    && l.payload.as_ref() == payload.as_slice()
            })
            .unwrap_or_else(|| panic!("no dead letter for the garbage at {seq}: {letters:#?}"));
        assert!(!header(letter, DEAD_LETTER_REASON).contains("gave up"));
    }
    assert_eq!(letters.len(), garbage.len() + 1, "{letters:#?}");
    let stuck = letters
        .iter()
        .find(|l| header(l, DEAD_LETTER_REASON).contains("gave up"))
        .expect("the unroutable complaint's letter");
    assert_eq!(
        header(stuck, DEAD_LETTER_SUBJECT),
        names.complaint_of_kind(&unroutable_id, "received")
    );
    assert!(
        header(stuck, DEAD_LETTER_REASON)
            .contains(&format!("gave up after {max_deliver} deliveries")),
        "{:?}",
        header(stuck, DEAD_LETTER_REASON)
    );
    assert!(
        healthy_done < unroutable_done,
        "healthy complaints routed after {healthy_done:?}, the poison given up after {unroutable_done:?}"
    );

    // A letter from the log cannot be requeued onto the log.
    let refused = IntakeAdminClient::new(intake.channel.clone())
        .requeue_dead_letter(ipb::RequeueDeadLetterRequest {
            sequence: stuck.sequence,
        })
        .await
        .expect_err("requeueing a letter from the log is refused");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );

    // Exactly one decision per healthy complaint; none for the unroutable one.
    let decisions = Decisions::read(&log, &healthy).await;
    for id in &healthy {
        assert_eq!(decisions.count(id, "complaint_routed"), 1, "{id}");
    }
    // No backlog: everything delivered and acked or terminated.
    let durable = names.consumer("router");
    let nats_ref = &nats;
    let names_ref = &names;
    eventually(
        "the routing consumer drained",
        Duration::from_secs(10),
        async || {
            let (pending, unacked) = consumer_backlog(nats_ref, names_ref.stream(), &durable).await;
            (pending == 0 && unacked == 0).then_some(())
        },
    )
    .await;
    // The projector skipped the garbage and reached the end of the log.
    let last = log.last_sequence().await.expect("last");
    let mut query = router.query();
    let r = query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: healthy[0].to_string(),
            consistency: Some(rpb::Consistency {
                min_sequence: last,
                timeout_ms: 10_000,
            }),
            ..Default::default()
        })
        .await
        .expect("the projection reached the end of the log")
        .into_inner();
    assert!(r.projected_sequence >= last);
    assert_eq!(r.decisions.len(), 1);
    let shown = query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: unroutable_id.to_string(),
            consistency: None,
            ..Default::default()
        })
        .await
        .expect("the unroutable complaint is still shown")
        .into_inner();
    assert!(shown.decisions.is_empty(), "{shown:?}");

    println!(
        "poison in the event log: {} undecodable events dead-lettered and terminated after \
         {garbage_done:.1?}; {} healthy complaints routed after {healthy_done:.1?}; the \
         unroutable complaint dead-lettered after {max_deliver} deliveries, {unroutable_done:.1?}; \
         projection at {} of {last}; test took {:.1?}",
        garbage.len(),
        healthy.len(),
        r.projected_sequence,
        started.elapsed()
    );
    router.stop().await;
    intake.stop().await;
    delete_streams(&nats, &names).await;
    db.drop_db().await;
}
