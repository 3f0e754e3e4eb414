//! The router killed with SIGKILL three times under load, and restarted:
//! nothing lost, nothing applied twice, exactly one decision per complaint.
//! Liveness: after each restart a fresh complaint is routed and projected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{Load, LoadSpec, Options, System};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_killed_three_times_under_load_loses_nothing_and_decides_once() {
    let mut sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 1_500,
        helpdesk: 300,
        rate_per_sec: 100,
        workers: 6,
        tag: "R".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());

    let mut resumes = Vec::new();
    for k in 0..3 {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let pid = sys.router.pid();
        sys.router.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let serving = sys.router.start().await;
        // Liveness: a complaint sent now is routed and projected by the new process.
        let routed = sys
            .probe(
                &history,
                &format!("router-kill-{k}"),
                Duration::from_secs(60),
            )
            .await;
        resumes.push(format!(
            "kill {} (pid {pid:?}): serving again {:.2} s after restart, a new complaint routed \
             and projected {:.2} s after restart",
            k + 1,
            serving.as_secs_f64(),
            (serving + routed).as_secs_f64()
        ));
    }

    let stats = load.finish(Duration::from_secs(120)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0);
    assert!(
        report.errors.is_empty(),
        "intake is not affected by router crashes: {:?}",
        report.errors
    );
    assert_eq!(sys.router.kills, 3);
    // What a killed router held waits out the ack wait (3 s) and is then
    // decided by its successor; 30 s was the wait before progress acks. The
    // bound leaves room for a loaded machine, the figure is reported.
    assert!(
        report.longest_wait_for_a_decision < Duration::from_secs(10),
        "a complaint waited {:?} for its decision",
        report.longest_wait_for_a_decision
    );
    sys.intake.assert_no_panic();

    let mut lines = resumes;
    lines.push(format!(
        "{} operations in {:.1} s; converged {:.1} s after the load; {:.1} s in all",
        stats.issued,
        stats.elapsed.as_secs_f64(),
        converged.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    lines.push(report.to_string());
    figures("crash_router", &lines);
}
