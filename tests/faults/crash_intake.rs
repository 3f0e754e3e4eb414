//! Intake killed with SIGKILL three times under load while clients retry with
//! the same ids (the ticket for a submit, the request id for a follow-up):
//! every acknowledged complaint and follow-up is stored exactly once; the
//! helpdesk messages intake had in hand are redelivered to the new process,
//! and a follow-up published there without a request id still makes exactly
//! one event per inbound message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{Load, LoadSpec, Options, System};

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
    for k in 0..3 {
        tokio::time::sleep(Duration::from_millis(3_000)).await;
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
    assert_eq!(report.helpdesk_commands_acknowledged, 200);
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
