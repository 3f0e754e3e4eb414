//! Baseline: no fault. Complaints over gRPC and helpdesk messages at a
//! steady rate; every one is routed once and projected, with no redelivery.
//!
//! 5,000 complaints over gRPC and 1,000 helpdesk messages (JSON), offered at
//! 280 a second, interleaved; about 25 s on two cores in a debug build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{Load, LoadSpec, Options, System};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_every_complaint_is_routed_once_and_projected() {
    let sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let (grpc, helpdesk) = (5_000, 1_000);
    let spec = LoadSpec {
        grpc,
        helpdesk,
        rate_per_sec: 280,
        workers: 8,
        tag: "B".to_owned(),
        ..LoadSpec::default()
    };
    let stats = Load::start(&sys, spec, history.clone())
        .finish(Duration::from_secs(120))
        .await;
    let load_secs = stats.elapsed.as_secs_f64();
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    let report = observe(&sys, &history).await;

    report.assert_safe();
    assert_eq!(stats.given_up, 0, "nothing given up without a fault");
    assert!(
        report.errors.is_empty(),
        "no errors without a fault: {:?}",
        report.errors
    );
    assert_eq!(report.acknowledged as u64, grpc + helpdesk);
    assert_eq!(report.observed_log as u64, grpc + helpdesk);
    // Its own decisions are not among them (the log's second layout).
    assert_eq!(
        report.router.deliveries, report.router.messages,
        "the routing consumer is delivered each event it decides on once, and nothing else"
    );
    assert_eq!(
        report.helpdesk.redeliveries(),
        0,
        "no redelivery without a fault"
    );
    sys.intake.assert_no_panic();
    sys.router.assert_no_panic();
    // Customers' ids and words never reach a log.
    sys.intake
        .assert_log_lacks(crate::harness::LOAD_PERSONAL_TEXTS);
    sys.router
        .assert_log_lacks(crate::harness::LOAD_PERSONAL_TEXTS);
    figures(
        "baseline",
        &[
            format!(
                "{} operations issued in {load_secs:.1} s ({:.0}/s offered), converged {:.1} s later, \
                 {:.1} s in all",
                stats.issued,
                stats.issued as f64 / load_secs,
                converged.as_secs_f64(),
                started.elapsed().as_secs_f64()
            ),
            report.to_string(),
        ],
    );
}
