//! PostgreSQL crashed (`pg_ctl -m immediate stop`) twice under load and
//! restarted: the projector never moves its checkpoint past a transaction
//! that did not commit (it holds no acks: the checkpoint commits with the
//! batch), so afterwards the projection holds exactly the log's events, and
//! it answers every query exactly as a rebuild from sequence 1 does
//! (`Admin.RebuildProjections`, compared before and after).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plaint_proto::router as rpb;
use tokio_util::sync::CancellationToken;

use crate::checker::{
    History, figures, first_difference, observe, projection_dump, query_snapshot, wait_converged,
};
use crate::harness::{Load, LoadSpec, Options, System, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashed_under_load_the_projection_equals_a_rebuild_from_sequence_one() {
    let mut sys = System::start(Options::default()).await;
    let history = Arc::new(History::default());
    let started = Instant::now();
    let spec = LoadSpec {
        grpc: 1_000,
        helpdesk: 200,
        rate_per_sec: 100,
        workers: 6,
        tag: "P".to_owned(),
        ..LoadSpec::default()
    };
    let load = Load::start(&sys, spec, history.clone());

    // Queries keep coming during the crashes: what do they answer?
    let stop = CancellationToken::new();
    let poller = {
        let mut query = sys.query_client();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            while !stop.is_cancelled() {
                let r = query
                    .list_complaints(rpb::ListComplaintsRequest {
                        page_size: 5,
                        ..Default::default()
                    })
                    .await;
                let code = r.map_or_else(|s| format!("{:?}", s.code()), |_| "Ok".to_owned());
                *codes.entry(code).or_insert(0) += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            codes
        })
    };

    let mut lines = Vec::new();
    // The second outage outlasts the router's pool acquire timeout (5 s).
    for (k, down) in [3, 7].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = sys.pg.pid();
        let mut pg = sys.pg;
        let (back, pg) = tokio::task::spawn_blocking(move || {
            pg.crash();
            std::thread::sleep(Duration::from_secs(down));
            pg.restart();
            (Instant::now(), pg)
        })
        .await
        .expect("crash and restart");
        sys.pg = pg;
        sys.probe(&history, &format!("pg-crash-{k}"), Duration::from_secs(60))
            .await;
        lines.push(format!(
            "crash {} (postmaster pid {pid:?}), down {down} s: a new complaint routed and \
             projected {:.2} s after the restart",
            k + 1,
            back.elapsed().as_secs_f64()
        ));
    }

    let stats = load.finish(Duration::from_secs(120)).await;
    let converged = wait_converged(&sys, &history, Duration::from_secs(120)).await;
    stop.cancel();
    let codes = poller.await.expect("poller");
    let report = observe(&sys, &history).await;
    report.assert_safe();
    assert_eq!(stats.given_up, 0);
    assert!(
        report.errors.is_empty(),
        "intake does not use PostgreSQL: {:?}",
        report.errors
    );
    let bad: Vec<&String> = codes
        .keys()
        .filter(|c| !["Ok", "Unavailable"].contains(&c.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "queries during the outage answer OK or UNAVAILABLE: {codes:?}"
    );

    // The live projection, crashed twice, against a rebuild from sequence 1.
    let rebuild_started = Instant::now();
    let before = query_snapshot(&sys).await;
    let tables_before = projection_dump(&sys.pg.url()).await;
    let mut progress = sys
        .admin_client()
        .rebuild_projections(rpb::RebuildProjectionsRequest {})
        .await
        .expect("rebuild starts")
        .into_inner();
    let mut done = None;
    while let Some(p) = within(
        "rebuild progress",
        Duration::from_secs(120),
        progress.message(),
    )
    .await
    .expect("progress")
    {
        if p.done {
            done = Some(p);
        }
    }
    let done = done.expect("the rebuild finished");
    assert!(done.swapped_at_sequence >= report.log_last_sequence);
    let after = query_snapshot(&sys).await;
    let tables_after = projection_dump(&sys.pg.url()).await;
    assert!(
        before == after,
        "the query API answers alike before and after the rebuild; {}",
        first_difference(&before, &after)
    );
    assert!(
        tables_before == tables_after,
        "the tables are identical before and after the rebuild; {}",
        first_difference(&tables_before, &tables_after)
    );
    let rebuilt = observe(&sys, &history).await;
    rebuilt.assert_safe();
    sys.router.assert_no_panic();

    lines.push(format!(
        "queries during the crashes: {codes:?}; {} operations in {:.1} s; converged {:.1} s \
         after the load",
        stats.issued,
        stats.elapsed.as_secs_f64(),
        converged.as_secs_f64()
    ));
    lines.push(format!(
        "rebuild from sequence 1 to {}: {} query answers and {} table rows identical before \
         and after ({:.1} s for snapshots and rebuild); {:.1} s in all",
        done.swapped_at_sequence,
        before.len(),
        tables_before.len(),
        rebuild_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    lines.push(report.to_string());
    figures("crash_postgres", &lines);
}
