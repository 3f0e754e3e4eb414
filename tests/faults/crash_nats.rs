//! nats-server killed with SIGKILL under load and restarted on its port with
//! its store: no acknowledged publish (gRPC OK, helpdesk PubAck) is lost;
//! while it is down intake answers a retryable UNAVAILABLE, never OK without
//! storing; and afterwards the router's and intake's consumers resume by
//! themselves within 30 s (a new complaint is routed and projected, a new
//! helpdesk message is stored) — liveness, not only safety.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{Load, LoadSpec, Options, System, complaint, ticket_id};

/// How long the server stays down.
const OUTAGE: Duration = Duration::from_secs(8);
/// The liveness bound after the restart.
const RESUME_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_under_load_loses_no_acknowledged_publish_and_consumers_resume() {
    let mut sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 1_200,
        helpdesk: 300,
        rate_per_sec: 100,
        workers: 8,
        tag: "N".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;

    let acked_before = history.acked_count();
    let pid = sys.nats.pid();
    sys.nats.kill();
    let down = Instant::now();

    // While the log is down, a write is answered, and the answer is a
    // retryable UNAVAILABLE (never OK: nothing can be stored).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut client = sys.intake_client();
    let asked = Instant::now();
    let during = client.submit_complaint(complaint("outage", "O-1", 1)).await;
    let answered_in = asked.elapsed();
    let during_code = during.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
    assert!(
        down.elapsed() < OUTAGE,
        "the answer came after the outage ({answered_in:?}); it proves nothing"
    );
    assert_eq!(
        during_code,
        Code::Unavailable,
        "a write while NATS is down is refused as UNAVAILABLE: {during:?}"
    );
    let wait = OUTAGE.saturating_sub(down.elapsed());
    tokio::time::sleep(wait).await;

    sys.nats.restart();
    let restarted = Instant::now();
    let routed = sys
        .probe(&history, "after-nats-restart", RESUME_WITHIN)
        .await;
    let stored = sys
        .probe_helpdesk(&history, "after-nats-restart", RESUME_WITHIN)
        .await;
    let resumed = restarted.elapsed();
    assert!(resumed < RESUME_WITHIN * 2);

    let stats = load.finish(Duration::from_secs(180)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    // The complaint refused during the outage must not be in the log.
    let refused = sys
        .log
        .first_on_subject(&sys.names.complaint(&ticket_id("outage", "O-1")))
        .await
        .expect("read");
    assert!(
        refused.is_none(),
        "a write answered UNAVAILABLE was not stored"
    );
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0);
    let errors = history.errors();
    let unexpected: Vec<&String> = errors
        .keys()
        .filter(|c| !["Unavailable", "PublishFailed"].contains(&c.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "while NATS is down intake answers UNAVAILABLE only: {errors:?}"
    );
    sys.intake.assert_no_panic();
    sys.router.assert_no_panic();
    sys.intake
        .assert_log_lacks(crate::harness::LOAD_PERSONAL_TEXTS);
    sys.router
        .assert_log_lacks(crate::harness::LOAD_PERSONAL_TEXTS);
    // Every new customer's key was stored before the first event sealed
    // with it, so nothing the crash interrupted left unreadable events.
    let (received, unreadable) = crate::harness::unreadable_events(&sys.log).await;
    assert!(
        received as u64 >= report.acknowledged as u64,
        "{received} complaints read"
    );
    assert!(
        unreadable.is_empty(),
        "events whose keys are missing: {unreadable:?}"
    );

    figures(
        "crash_nats",
        &[
            format!(
                "nats-server pid {pid:?} killed after {acked_before} acknowledged writes, down {:.1} s",
                OUTAGE.as_secs_f64()
            ),
            format!(
                "a write during the outage: {during_code:?} after {:.2} s",
                answered_in.as_secs_f64()
            ),
            format!(
                "after the restart: a new complaint routed and projected in {:.2} s, a new \
                 helpdesk message stored {:.2} s later ({:.2} s in all)",
                routed.as_secs_f64(),
                stored.as_secs_f64(),
                resumed.as_secs_f64()
            ),
            format!(
                "{} operations in {:.1} s; converged {:.1} s after the load; {:.1} s in all",
                stats.issued,
                stats.elapsed.as_secs_f64(),
                converged.as_secs_f64(),
                started.elapsed().as_secs_f64()
            ),
            report.to_string(),
        ],
    );
}
