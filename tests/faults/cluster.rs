//! Scale-out: a three-node NATS cluster on loopback, the streams replicated
//! three times (R3), one intake and two router replicas that know all three
//! nodes. Under load, the node leading the event log's stream is killed
//! (SIGKILL): nothing acknowledged is lost, nothing is stored twice, every
//! complaint is decided exactly once, routing and projections carry on on the
//! two remaining nodes, and the killed node catches up once restarted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use plaint_domain::ComplaintId;
use plaint_proto::router as rpb;
use plaint_testkit::NatsCluster;
use tonic::Code;

use crate::harness::eventually;
use crate::racing::{
    Decisions, consumer_backlog, open_log, quiet, spawn_intake, spawn_router, viral,
};

/// Complaints submitted in all.
const TOTAL: usize = 240;
/// Submissions in flight at once.
const WORKERS: usize = 8;
/// The node is killed once this many submissions were acknowledged.
const KILL_AFTER: usize = TOTAL / 3;
/// How long one submission may keep failing before the test gives up.
const SUBMIT_LIMIT: Duration = Duration::from_secs(30);

/// What the load saw.
#[derive(Debug, Default)]
struct Seen {
    /// Acknowledged submissions: the complaint id and when.
    acked: Vec<(ComplaintId, Instant)>,
    /// Failed attempts by status code (each was retried).
    errors: BTreeMap<String, u64>,
    /// The slowest submission, retries included.
    slowest: Duration,
}

/// The server name of the node leading `stream`'s RAFT group.
async fn stream_leader(js: &jetstream::Context, stream: &str) -> Option<String> {
    let mut s = js.get_stream(stream).await.ok()?;
    s.info().await.ok()?.cluster.as_ref()?.leader.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_r3_cluster_loses_a_node_under_load_and_loses_nothing() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let version = cluster.version().to_owned();
    let prefix = plaint_testkit::unique_prefix();
    let db = plaint_testkit::TestDb::create().await;
    // The meta group has a leader, but a replicated stream may take a moment more.
    let build = Duration::from_secs(30);

    let mut intake_config = plaint_intake::Config::for_tests(&urls, &prefix);
    intake_config.log.stream_replicas = 3;
    let mut intake = spawn_intake(intake_config.clone(), build).await;
    let mut router_config = plaint_router::Config::for_tests(&urls, &prefix, db.url());
    router_config.log.stream_replicas = 3;
    let mut first = spawn_router(router_config.clone(), build).await;
    let mut second = spawn_router(router_config.clone(), build).await;
    let ready = started.elapsed();

    let log = open_log(&urls, &prefix, &intake_config.log.stream).await;
    let names = log.names().clone();
    let js = jetstream::new(
        plaint_bus::connect(&urls, "plaint-faults")
            .await
            .expect("connect"),
    );
    let info = js
        .get_stream(names.stream())
        .await
        .expect("the log's stream")
        .info()
        .await
        .expect("stream info")
        .clone();
    assert_eq!(
        info.config.num_replicas, 3,
        "the log is replicated three times"
    );

    // The load: WORKERS clients submitting TOTAL complaints, each retried
    // (with the same ticket, so a retry is answered as a duplicate) until it
    // is acknowledged.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let load_started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let mut client = intake.intake();
        let seen = seen.clone();
        let next = next.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= TOTAL {
                    return;
                }
                let (ticket, customer) = (format!("C-{i}"), format!("cluster-{i}"));
                let request = if i.is_multiple_of(10) {
                    viral("cluster", &ticket, &customer)
                } else {
                    quiet("cluster", &ticket, &customer)
                };
                let began = Instant::now();
                loop {
                    match client.submit_complaint(request.clone()).await {
                        Ok(w) => {
                            let id =
                                ComplaintId::parse(&w.into_inner().complaint_id).expect("an id");
                            let mut seen = seen.lock().expect("lock");
                            seen.acked.push((id, Instant::now()));
                            seen.slowest = seen.slowest.max(began.elapsed());
                            break;
                        }
                        Err(status) => {
                            assert!(
                                !matches!(status.code(), Code::InvalidArgument | Code::NotFound),
                                "submission {i} refused: {status:?}"
                            );
                            assert!(
                                began.elapsed() < SUBMIT_LIMIT,
                                "submission {i} kept failing for {SUBMIT_LIMIT:?}: {status:?}"
                            );
                            *seen
                                .lock()
                                .expect("lock")
                                .errors
                                .entry(format!("{:?}", status.code()))
                                .or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        });
    }

    // Kill the node that leads the event log's stream, once a third is in.
    eventually(
        "a third of the load acknowledged",
        Duration::from_secs(30),
        async || (seen.lock().expect("lock").acked.len() >= KILL_AFTER).then_some(()),
    )
    .await;
    let leader = eventually("the stream's leader", Duration::from_secs(10), async || {
        stream_leader(&js, names.stream()).await
    })
    .await;
    let victim = (0..cluster.size())
        .find(|&i| cluster.node_name(i) == leader)
        .unwrap_or_else(|| panic!("no node named {leader}"));
    let killed_at = Instant::now();
    cluster.kill(victim);
    let acked_at_kill = seen.lock().expect("lock").acked.len();

    while let Some(done) = tokio::time::timeout(Duration::from_secs(90), workers.join_next())
        .await
        .expect("the load finished within 90 s")
    {
        done.expect("a load worker");
    }
    let load_took = load_started.elapsed();
    let new_leader = eventually("a new stream leader", Duration::from_secs(20), async || {
        stream_leader(&js, names.stream())
            .await
            .filter(|l| *l != leader)
    })
    .await;

    // Nothing lost, nothing twice, one decision each; routing carried on.
    let (ids, first_ack_after_kill) = {
        let seen = seen.lock().expect("lock");
        let first_after = seen
            .acked
            .iter()
            .map(|(_, at)| *at)
            .filter(|at| *at > killed_at)
            .min();
        (
            seen.acked.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            first_after,
        )
    };
    assert_eq!(ids.len(), TOTAL, "every submission was acknowledged");
    let log_ref = &log;
    let ids_ref = &ids;
    let decisions = eventually(
        "every complaint decided",
        Duration::from_secs(60),
        async || {
            let d = Decisions::read(log_ref, ids_ref).await;
            d.all_routed(ids_ref).then_some(d)
        },
    )
    .await;
    let routed_all = load_started.elapsed();
    for id in &ids {
        assert_eq!(
            decisions.count(id, "complaint_received"),
            1,
            "{id} stored once"
        );
        assert_eq!(
            decisions.count(id, "complaint_routed"),
            1,
            "{id} decided once"
        );
    }
    assert_eq!(decisions.duplicate_event_ids, 0, "no event id stored twice");
    let durable = names.consumer("router");
    eventually(
        "the routing consumer drained",
        Duration::from_secs(30),
        async || {
            let (pending, unacked) = consumer_backlog(&urls, names.stream(), &durable).await;
            (pending == 0 && unacked == 0).then_some(())
        },
    )
    .await;
    // The projection caught up on the surviving nodes. Like routing, it may
    // sit out a few of the client's 5 s request timeouts while the stream's
    // leadership moves (its tail is reopened, its stall check asks the log's
    // end): the server's own wait is at most 10 s, so ask again.
    let last = log.last_sequence().await.expect("last sequence");
    let mut query = first.query();
    let query_ref = &mut query;
    let last_id = ids[TOTAL - 1].to_string();
    let projected = eventually(
        "the projection reached the end of the log",
        Duration::from_secs(30),
        async || {
            let asked = query_ref
                .get_complaint(rpb::GetComplaintRequest {
                    complaint_id: last_id.clone(),
                    consistency: Some(rpb::Consistency {
                        min_sequence: last,
                        timeout_ms: 5_000,
                    }),
                    ..Default::default()
                })
                .await;
            match asked {
                Ok(answer) => Some(answer.into_inner()),
                Err(status) if status.code() == Code::DeadlineExceeded => None,
                Err(status) => panic!("the projection query failed: {status:?}"),
            }
        },
    )
    .await;
    assert_eq!(projected.decisions.len(), 1);

    // The killed node comes back and catches up: every replica current.
    cluster.restart(victim);
    let restarted_at = Instant::now();
    let js_ref = &js;
    let stream = names.stream().to_owned();
    eventually(
        "the restarted node current again",
        Duration::from_secs(30),
        async || {
            let mut s = js_ref.get_stream(&stream).await.ok()?;
            let info = s.info().await.ok()?;
            let replicas = &info.cluster.as_ref()?.replicas;
            (replicas.len() == 2 && replicas.iter().all(|p| p.current && !p.offline)).then_some(())
        },
    )
    .await;
    let caught_up = restarted_at.elapsed();

    {
        let seen = seen.lock().expect("lock");
        let errors: u64 = seen.errors.values().sum();
        println!(
            "cluster (nats-server {version}, R3): {TOTAL} complaints by {WORKERS} clients; \
             ready after {ready:.1?}; stream leader {leader} killed after {acked_at_kill} acks, \
             new leader {new_leader}; first ack after the kill {:.1?} later; {errors} failed \
             attempts retried {:?}; slowest submission {:.1?}; load done in {load_took:.1?}; \
             all decided after {routed_all:.1?}, longest pause between two decisions {:.1?}; projection at {} of {last}; restarted node \
             current after {caught_up:.1?}; test took {:.1?}",
            first_ack_after_kill.map(|at| at - killed_at),
            seen.errors,
            seen.slowest,
            decisions.longest_pause(),
            projected.projected_sequence,
            started.elapsed()
        );
    }
    second.stop().await;
    first.stop().await;
    intake.stop().await;
    db.drop_db().await;
}
