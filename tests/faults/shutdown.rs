//! Graceful shutdown under load: SIGTERM to the router, then to intake. Each
//! reports NOT_SERVING on its health service first, exits by itself within
//! 10 s, and is restarted; nothing is lost, and the durable consumers see no
//! redelivery at all: what a stopping process had pulled it finished and
//! acknowledged before exiting (counted as deliveries − distinct messages on
//! the router's and the helpdesk's consumers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{
    INTAKE_SERVICE, Load, LoadSpec, Options, QUERY_SERVICE, Service, System, reports_not_serving,
    watch_serving,
};

/// The exit bound after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Sends SIGTERM while watching the health service; returns how long until
/// NOT_SERVING was reported and until the process exited.
async fn graceful_stop(service: &mut Service, health_service: &str) -> (Duration, Duration) {
    let mut watch = watch_serving(service, health_service).await;
    service.terminate();
    let signalled = Instant::now();
    assert!(
        reports_not_serving(&mut watch, Duration::from_secs(5)).await,
        "NOT_SERVING is reported after SIGTERM"
    );
    let not_serving = signalled.elapsed();
    // A watcher must not hold the shutdown up.
    drop(watch);
    let (status, _) = service
        .wait_exit(EXIT_WITHIN)
        .await
        .unwrap_or_else(|| panic!("still running {EXIT_WITHIN:?} after SIGTERM"));
    let exited = signalled.elapsed();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    (not_serving, exited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_reports_not_serving_exits_in_time_and_nothing_is_redelivered() {
    let mut sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 1_500,
        helpdesk: 400,
        rate_per_sec: 100,
        workers: 6,
        tag: "S".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());

    tokio::time::sleep(Duration::from_secs(4)).await;
    let router = graceful_stop(&mut sys.router, QUERY_SERVICE).await;
    let router_back = sys.router.start().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let intake = graceful_stop(&mut sys.intake, INTAKE_SERVICE).await;
    let intake_back = sys.intake.start().await;

    let stats = load.finish(Duration::from_secs(150)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0);
    assert_eq!(
        report.router.redeliveries(),
        0,
        "the router finished what it had pulled before exiting: {report}"
    );
    assert_eq!(
        report.helpdesk.redeliveries(),
        0,
        "intake finished the helpdesk messages it had pulled before exiting: {report}"
    );
    sys.intake.assert_no_panic();
    sys.router.assert_no_panic();

    figures(
        "shutdown",
        &[
            format!(
                "router: NOT_SERVING {:.3} s after SIGTERM, exited after {:.2} s, serving again \
                 {:.2} s after restart",
                router.0.as_secs_f64(),
                router.1.as_secs_f64(),
                router_back.as_secs_f64()
            ),
            format!(
                "intake: NOT_SERVING {:.3} s after SIGTERM, exited after {:.2} s, serving again \
                 {:.2} s after restart",
                intake.0.as_secs_f64(),
                intake.1.as_secs_f64(),
                intake_back.as_secs_f64()
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
