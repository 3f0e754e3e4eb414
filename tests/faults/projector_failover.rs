//! Two router replicas share the routing and one projects (it holds the
//! projector's lease). The projecting replica is killed with SIGKILL under
//! load: the other takes the lease over within the lease's time to live and
//! projects on from the checkpoint; nothing applied twice, nothing skipped,
//! and both replicas answer queries from the same projections.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checker::{History, figures, observe, wait_converged};
use crate::harness::{Load, LoadSpec, Options, System, within};
use plaint_proto::router as rpb;

/// The lease's time to live (3 s) and a takeover's poll, with room for a
/// loaded machine; the figure is reported.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_projecting_replica_hands_the_projection_to_another_within_seconds() {
    let mut sys = System::start(Options {
        env: vec![("ROUTER_REPLICA_NAME".to_owned(), "router-a".to_owned())],
        ..Options::default()
    })
    .await;
    let mut second = sys
        .router
        .replica("router-b", &[("ROUTER_REPLICA_NAME", "router-b")]);
    second.start().await;
    let lease = plaint_router::PROJECTOR_LEASE;
    assert_eq!(
        sys.lease_holder(lease).await.as_deref(),
        Some("router-a"),
        "the first replica to start projects"
    );

    // A watcher on the replica that does not project hears the other's work
    // (read back from the tables), and its own once it projects.
    let mut watch = System::query_client_of(&second)
        .watch_complaints(rpb::WatchComplaintsRequest::default())
        .await
        .expect("watch the second replica")
        .into_inner();
    let watched = tokio::spawn(async move {
        let (mut routed, mut missed) = (HashSet::new(), 0);
        while let Ok(Some(update)) = watch.message().await {
            missed += update.missed;
            if update.event_type == "complaint_routed"
                && let Some(c) = update.complaint
            {
                routed.insert(c.complaint_id);
            }
        }
        (routed, missed)
    });

    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 900,
        helpdesk: 100,
        rate_per_sec: 100,
        workers: 4,
        tag: "P".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());

    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let killed = Instant::now();
    sys.router.kill();
    let mut takeover = None;
    while killed.elapsed() < Duration::from_secs(30) {
        if sys.lease_holder(lease).await.as_deref() == Some("router-b") {
            takeover = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = takeover.expect("the second replica took the projector's lease");
    // A complaint sent after the kill is routed and made visible by the
    // replica still running.
    let probe = sys
        .probe_via(
            System::query_client_of(&second),
            &history,
            "after-projector-kill",
            Duration::from_secs(60),
        )
        .await;
    let visible = killed.elapsed();

    // The killed replica comes back and stands by: it answers queries from
    // the projections the other keeps (the checker reads through it).
    sys.router.start().await;
    let stats = load.finish(Duration::from_secs(120)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0);
    assert_eq!(
        sys.lease_holder(lease).await.as_deref(),
        Some("router-b"),
        "the replica that took over keeps projecting"
    );
    assert!(
        takeover < TAKEOVER_LIMIT,
        "the projection was taken over {takeover:?} after the kill"
    );
    // A replica stopping gracefully releases the lease: the other takes it
    // at its next poll, without waiting for it to expire.
    let stopping = Instant::now();
    second.terminate();
    let exit = second.wait_exit(Duration::from_secs(30)).await;
    assert!(
        exit.is_some_and(|(status, _)| status.success()),
        "the second replica stops cleanly: {exit:?}"
    );
    let mut handover = None;
    while stopping.elapsed() < Duration::from_secs(30) {
        if sys.lease_holder(lease).await.as_deref() == Some("router-a") {
            handover = Some(stopping.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handover = handover.expect("the restarted replica took the lease back");
    second.assert_no_panic();
    // Its watch stream ended with it.
    let (routed_seen, missed) = within("the watcher ends", Duration::from_secs(30), watched)
        .await
        .expect("the watcher's task");
    assert_eq!(missed, 0, "the watcher missed updates");
    if routed_seen.len() != report.observed_log {
        let log = crate::checker::read_log(&sys.log).await;
        let unheard: Vec<u64> = log
            .decisions
            .iter()
            .filter(|(id, _)| !routed_seen.contains(&id.to_string()))
            .flat_map(|(_, seqs)| seqs.iter().copied())
            .collect();
        panic!(
            "the watcher on the second replica heard {} complaints routed of {}; not the \
             decisions at sequences {unheard:?} (the log ends at {}; the kill came {:.2} s \
             into the load)",
            routed_seen.len(),
            report.observed_log,
            log.last_sequence,
            killed.duration_since(started).as_secs_f64()
        );
    }

    figures(
        "projector_failover",
        &[
            format!(
                "projecting replica killed: lease taken over after {:.2} s; a complaint sent \
                 then was routed and visible through the other replica {:.2} s after the kill \
                 (probe {:.2} s)",
                takeover.as_secs_f64(),
                visible.as_secs_f64(),
                probe.as_secs_f64()
            ),
            format!(
                "the other replica stopped gracefully (SIGTERM): lease handed over {:.2} s \
                 after the signal; its watcher heard {} complaints routed (of {}), before and \
                 after it took the projection over, missing none",
                handover.as_secs_f64(),
                routed_seen.len(),
                report.observed_log
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
