//! A background task that fails for good is not hidden: the router's
//! projection database goes away past the retry budget, and the router says
//! so on its health service (NOT_SERVING), logs the cause, counts it in
//! `plaint_task_failures_total`, and exits non-zero for its orchestrator to
//! restart it. Intake, which needs no database, keeps serving.

use std::time::{Duration, Instant};

use crate::harness::{
    Options, QUERY_SERVICE, System, free_port, reports_not_serving, watch_serving,
};
use crate::scrape::scrape;

/// The retry budget the test gives both services.
const BUDGET_SECS: u64 = 1;
/// How long the failed router keeps answering NOT_SERVING before it drains.
const GRACE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_router_whose_database_stays_away_reports_not_serving_counts_it_and_exits_non_zero() {
    let metrics_port = free_port();
    let mut system = System::start(Options {
        env: vec![
            (
                "PLAINT_RETRY_BUDGET_SECS".to_owned(),
                BUDGET_SECS.to_string(),
            ),
            (
                "PLAINT_FAILURE_GRACE_MS".to_owned(),
                GRACE.as_millis().to_string(),
            ),
            (
                "ROUTER_METRICS_ADDR".to_owned(),
                format!("127.0.0.1:{metrics_port}"),
            ),
        ],
        ..Options::default()
    })
    .await;
    let mut watch = watch_serving(&system.router, QUERY_SERVICE).await;
    system.pg.stop();
    let gone = Instant::now();

    // The budget, one attempt that may wait out the pool's acquire timeout
    // (5 s), and slack.
    assert!(
        reports_not_serving(&mut watch, Duration::from_secs(30)).await,
        "the router reports NOT_SERVING once its projector gave up"
    );
    let not_serving = gone.elapsed();
    drop(watch);

    // Within the grace period the process still answers, and counts the failure.
    let metrics = scrape(std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port))).await;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("plaint_task_failures_total") && l.contains("task=\"projector\""))
        .unwrap_or_else(|| panic!("no projector failure counted in:\n{metrics}"));
    assert!(counted.trim_end().ends_with(" 1"), "{counted}");

    let (status, _) = system
        .router
        .wait_exit(GRACE + Duration::from_secs(15))
        .await
        .expect("the router exits after its grace period");
    let exited = gone.elapsed();
    assert!(
        !status.success(),
        "a failed router exits non-zero: {status}"
    );
    assert!(
        exited >= not_serving + GRACE - Duration::from_millis(100),
        "NOT_SERVING for the grace period first: not serving at {not_serving:?}, exited at {exited:?}"
    );
    let log = system.router.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("a background task failed") && l.contains("projector")),
        "the cause is logged:\n{}",
        system.router.log_tail()
    );
    system.router.assert_no_panic();

    // Intake needs no database: it keeps serving.
    assert!(
        system
            .intake
            .wait_serving(Duration::from_secs(2))
            .await
            .is_ok()
    );
    eprintln!(
        "database gone → NOT_SERVING after {not_serving:?}, exit (non-zero) after {exited:?}"
    );
}
