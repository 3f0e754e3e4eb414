//! Intake killed with SIGKILL three times under load while clients retry with
//! the same ids (the ticket for a submit, the request id for a follow-up):
//! every acknowledged complaint and follow-up is stored exactly once; the
//! helpdesk messages intake had in hand are redelivered to the new process,
//! and a follow-up published there without a request id still makes exactly
//! one event per inbound message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{GRPC_SOURCE, Load, LoadSpec, Options, System, ticket_id};

/// Follow-ups without a request id published at once before each kill, so
/// that the kill lands while intake works through them: some stored, their
/// acks not yet sent, redelivered to the next process.
const BURST: usize = 100;

/// Publishes [`BURST`] follow-ups without a request id on complaints already
/// acknowledged, then waits until intake is partway through them. Returns
/// how many the inbound stream acknowledged.
async fn follow_up_burst(sys: &System, history: &History, round: u32) -> usize {
    let js = sys.js();
    let inbound = sys.inbound_subject(GRPC_SOURCE);
    let targets: Vec<_> = (0..1_200)
        .map(|j| ticket_id(GRPC_SOURCE, &format!("I-{j}")))
        .filter(|id| history.is_acked(id))
        .take(BURST)
        .collect();
    // Sent together, acknowledged after: intake gets them in one pull.
    let mut pending = Vec::with_capacity(targets.len());
    for (j, id) in targets.iter().enumerate() {
        let text = format!("Burst {round} follow-up {j}.");
        let named = j.is_multiple_of(2);
        let mut headers = async_nats::HeaderMap::new();
        if named {
            headers.insert("Nats-Msg-Id", format!("burst-{round}-{j}").as_str());
        }
        let payload = format!(r#"{{"type":"follow_up","complaint_id":"{id}","text":"{text}"}}"#);
        history.publish_helpdesk_command(&text, *id, named);
        let ack = js
            .publish_with_headers(inbound.clone(), headers, payload.into())
            .await
            .expect("publish a burst follow-up");
        pending.push((text, ack));
    }
    let mut acked = 0;
    for (text, ack) in pending {
        if ack.await.is_ok() {
            history.ack_helpdesk_command(&text);
            acked += 1;
        }
    }
    // Partway: a quarter of them taken off the work queue (stored and acked).
    let stream = sys.names.inbound_stream();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let left = crate::checker::stream_messages(&js, &stream).await;
        if left.is_some_and(|n| n <= (BURST * 3 / 4) as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_killed_under_load_stores_every_acknowledged_write_exactly_once() {
    let mut sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 1_200,
        follow_ups: 400,
        helpdesk: 300,
        helpdesk_follow_ups: 200,
        rate_per_sec: 100,
        workers: 8,
        tag: "I".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());

    let mut lines = Vec::new();
    let mut burst_acked = 0;
    for k in 0..3 {
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        burst_acked += follow_up_burst(&sys, &history, k).await;
        let pid = sys.intake.pid();
        let acked_before = history.acked_count();
        sys.intake.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let serving = sys.intake.start().await;
        let routed = sys
            .probe(
                &history,
                &format!("intake-kill-{k}"),
                Duration::from_secs(60),
            )
            .await;
        lines.push(format!(
            "kill {} (pid {pid:?}, {acked_before} acknowledged so far): serving again {:.2} s \
             after restart, a new complaint accepted, routed and projected {:.2} s after restart",
            k + 1,
            serving.as_secs_f64(),
            (serving + routed).as_secs_f64()
        ));
    }

    let stats = load.finish(Duration::from_secs(150)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0, "every write was answered in the end");
    assert_eq!(report.commands_lost, 0);
    assert_eq!(report.commands_duplicated, 0);
    assert_eq!(report.commands_acknowledged, 400);
    assert_eq!(report.helpdesk_commands_acknowledged, 200 + burst_acked);
    assert_eq!(burst_acked, 3 * BURST);
    assert_eq!(sys.intake.kills, 3);
    sys.router.assert_no_panic();

    lines.push(format!(
        "{} operations in {:.1} s; converged {:.1} s after the load; {:.1} s in all",
        stats.issued,
        stats.elapsed.as_secs_f64(),
        converged.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    lines.push(report.to_string());
    figures("crash_intake", &lines);
}
