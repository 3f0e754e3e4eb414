//! Duplicates inside and beyond the deduplication window (set to 3 s here):
//! resubmitted complaints, follow-ups retried with their request id, helpdesk
//! messages published twice with the same `Nats-Msg-Id`, events re-appended
//! to the log as a retrying writer would, and routing triggers handled again.
//! Inside the window the server's message-id deduplication answers; beyond
//! it, the subject conditions (creation expects an empty subject, a command
//! its request id absent, a decision an unrouted complaint) do. Either way
//! the log and the projections are unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use plaint_bus::{AppendError, Expect};
use plaint_proto::intake as ipb;
use plaint_routing::{Outcome, Router};
use uuid::Uuid;

use crate::checker::{
    Door, History, figures, first_difference, observe, projection_dump, wait_converged,
};
use crate::harness::{
    Options, System, complaint, follow_up_event_id, helpdesk_follow_up_json, helpdesk_json,
    ticket_id,
};

const WINDOW: Duration = Duration::from_secs(3);
const GRPC: u64 = 100;
const FOLLOW_UPS: u64 = 50;
const HELPDESK: u64 = 50;
const HELPDESK_FOLLOW_UPS: u64 = 20;
const RAW: u64 = 20;

fn follow_up(ticket: &str, id: &plaint_domain::ComplaintId) -> (Uuid, ipb::RecordFollowUpRequest) {
    let request_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("dup {ticket}").as_bytes());
    let request = ipb::RecordFollowUpRequest {
        header: Some(ipb::CommandHeader {
            complaint_id: id.to_string(),
            request_id: request_id.to_string(),
        }),
        text: format!("Still waiting on {ticket}."),
    };
    (request_id, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_inside_and_beyond_the_window_change_nothing() {
    let sys = System::start(Options {
        duplicate_window_secs: WINDOW.as_secs(),
        ..Options::default()
    })
    .await;
    let history = Arc::new(History::default());
    let mut client = sys.intake_client();
    let js = sys.js();
    // Each integration on its own subject, speaking for its own source system.
    let publish = async |integration: &str, id: &str, payload: String| {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        js.publish_with_headers(
            sys.inbound_subject(integration),
            headers,
            Bytes::from(payload),
        )
        .await
        .expect("publish")
        .await
        .expect("PubAck")
    };

    // Originals, each followed at once by its duplicate (inside the window).
    let mut written = Vec::new();
    let mut inside = 0;
    for i in 0..GRPC {
        let ticket = format!("D-{i}");
        let id = ticket_id("dup", &ticket);
        history.attempt_submit(id, Door::Grpc);
        let first = client
            .submit_complaint(complaint("dup", &ticket, i))
            .await
            .expect("submit")
            .into_inner();
        history.ack_submit(id, first.sequence);
        assert!(!first.duplicate);
        let again = client
            .submit_complaint(complaint("dup", &ticket, i))
            .await
            .expect("resubmit")
            .into_inner();
        assert!(again.duplicate, "a resubmission is a duplicate");
        assert_eq!(again.sequence, first.sequence);
        inside += 1;
        if i < RAW {
            // A writer retrying an append after a lost acknowledgement.
            let stored = sys
                .log
                .first_on_subject(&sys.names.complaint(&id))
                .await
                .expect("read")
                .expect("stored");
            let re = sys
                .log
                .append(
                    &sys.names
                        .subject_of(&stored.envelope)
                        .expect("a complaint event"),
                    &stored.envelope,
                    Expect::Any,
                    None,
                )
                .await
                .expect("a re-append inside the window is answered");
            assert!(re.duplicate, "the server deduplicates by message id");
            assert_eq!(re.sequence, stored.sequence);
            inside += 1;
        }
        written.push((ticket, id, first.sequence));
    }
    for (ticket, id, _) in written.iter().take(FOLLOW_UPS as usize) {
        let (request_id, request) = follow_up(ticket, id);
        history.attempt_command(follow_up_event_id(request_id), *id);
        let first = client
            .record_follow_up(request.clone())
            .await
            .expect("follow-up")
            .into_inner();
        history.ack_command(follow_up_event_id(request_id));
        assert!(!first.duplicate);
        let again = client
            .record_follow_up(request)
            .await
            .expect("retried follow-up")
            .into_inner();
        assert!(again.duplicate);
        assert_eq!(again.sequence, first.sequence);
        inside += 1;
    }
    let mut helpdesk = Vec::new();
    for i in 0..HELPDESK {
        let ticket = format!("DH-{i}");
        let id = ticket_id("dup-hd", &ticket);
        history.attempt_submit(id, Door::Helpdesk);
        let payload = helpdesk_json("dup-hd", &ticket, i);
        let first = publish("dup-hd", &format!("dh-{i}"), payload.clone()).await;
        history.ack_submit(id, 0);
        assert!(!first.duplicate);
        let again = publish("dup-hd", &format!("dh-{i}"), payload.clone()).await;
        assert!(
            again.duplicate,
            "the inbound stream deduplicates by message id"
        );
        inside += 1;
        helpdesk.push(("dup-hd", format!("dh-{i}"), payload));
    }
    for (k, (ticket, id, _)) in written
        .iter()
        .skip(FOLLOW_UPS as usize)
        .take(HELPDESK_FOLLOW_UPS as usize)
        .enumerate()
    {
        let request_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("dup-hd {ticket}").as_bytes());
        history.attempt_command(follow_up_event_id(request_id), *id);
        let payload = helpdesk_follow_up_json(id, request_id, "any news?");
        publish("dup", &format!("dhf-{k}"), payload.clone()).await;
        history.ack_command(follow_up_event_id(request_id));
        let again = publish("dup", &format!("dhf-{k}"), payload.clone()).await;
        assert!(again.duplicate);
        inside += 1;
        helpdesk.push(("dup", format!("dhf-{k}"), payload));
    }
    let originals_done = Instant::now();

    wait_converged(&sys, &history, Duration::from_secs(60)).await;
    let log_before = sys.log.last_sequence().await.expect("last sequence");
    let tables_before = projection_dump(&sys.pg.url()).await;
    let report_before = observe(&sys, &history).await;
    report_before.assert_safe();
    assert_eq!(
        report_before.commands_acknowledged as u64,
        FOLLOW_UPS + HELPDESK_FOLLOW_UPS
    );

    // Beyond the window: the server no longer remembers the message ids.
    let beyond_from = WINDOW + Duration::from_secs(2);
    tokio::time::sleep(beyond_from.saturating_sub(originals_done.elapsed())).await;
    let mut beyond = 0;
    let mut router = Router::new(sys.log.clone());
    for (i, (ticket, id, sequence)) in written.iter().enumerate() {
        let again = client
            .submit_complaint(complaint("dup", ticket, i as u64))
            .await
            .expect("resubmit")
            .into_inner();
        assert!(again.duplicate, "beyond the window, still a duplicate");
        assert_eq!(again.sequence, *sequence);
        beyond += 1;
        let received = sys
            .log
            .first_on_subject(&sys.names.complaint(id))
            .await
            .expect("read")
            .expect("stored");
        if (i as u64) < RAW {
            // The same append, with the same condition, after the window.
            let re = sys
                .log
                .append(
                    &sys.names
                        .subject_of(&received.envelope)
                        .expect("a complaint event"),
                    &received.envelope,
                    Expect::Empty,
                    None,
                )
                .await;
            assert!(
                matches!(re, Err(AppendError::WrongLastSequence)),
                "beyond the window the creation condition refuses it: {re:?}"
            );
            beyond += 1;
        }
        // The routing trigger delivered once more.
        let outcome = router
            .handle(&received.envelope, received.sequence, None)
            .await
            .expect("handled");
        assert_eq!(outcome, Outcome::Skipped, "no second decision");
        beyond += 1;
    }
    for (ticket, id, _) in written.iter().take(FOLLOW_UPS as usize) {
        let (_, request) = follow_up(ticket, id);
        let again = client
            .record_follow_up(request)
            .await
            .expect("follow-up retried late")
            .into_inner();
        assert!(
            again.duplicate,
            "the request id is found in the complaint's history"
        );
        beyond += 1;
    }
    for (integration, msg_id, payload) in &helpdesk {
        let again = publish(integration, msg_id, payload.clone()).await;
        assert!(
            !again.duplicate,
            "beyond the window the inbound stream takes it again"
        );
        beyond += 1;
    }

    // Intake works the republished helpdesk messages off; nothing changes.
    wait_converged(&sys, &history, Duration::from_secs(60)).await;
    let log_after = sys.log.last_sequence().await.expect("last sequence");
    let tables_after = projection_dump(&sys.pg.url()).await;
    assert_eq!(log_after, log_before, "the log is unchanged");
    assert!(
        tables_before == tables_after,
        "the projections are unchanged; {}",
        first_difference(&tables_before, &tables_after)
    );
    let report = observe(&sys, &history).await;
    report.assert_safe();
    let dead = crate::checker::stream_last_sequence(&js, &sys.names.dead_letter_stream()).await;
    assert_eq!(dead, 0, "no duplicate was dead-lettered");
    sys.intake.assert_no_panic();
    sys.router.assert_no_panic();

    figures(
        "duplicates",
        &[
            format!(
                "window {} s; {inside} duplicates inside it, {beyond} beyond it; log stays at \
                 sequence {log_before}, {} projection rows unchanged",
                WINDOW.as_secs(),
                tables_before.len()
            ),
            report.to_string(),
        ],
    );
}
