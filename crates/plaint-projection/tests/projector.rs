//! The projector against a real NATS and PostgreSQL: it follows the log into
//! the projections, broadcasts updates, stops on request and resumes from its
//! checkpoint without applying anything twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use plaint_bus::{EventLog, Expect, Names, RetryPolicy, StreamSettings};
use plaint_domain::event::ComplaintEvent;
use plaint_domain::lifecycle::Status;
use plaint_domain::{Category, Channel, RoutingPolicy};
use plaint_projection::projector;
use plaint_projection::store::Store;
use plaint_testkit::{NatsServer, PgServer};
use support::{Log, T0, facts, finish, fresh_store, id_of};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

async fn open_log(nats: &NatsServer) -> EventLog {
    let client = plaint_bus::connect(&nats.url(), "projector-test")
        .await
        .unwrap();
    let names = Names::new(&plaint_testkit::unique_prefix(), "PROJ_TEST").unwrap();
    let personal = plaint_bus::PersonalDataSettings::for_tests(names.prefix()).unwrap();
    EventLog::open(client, names, &StreamSettings::default(), &personal)
        .await
        .unwrap()
        .reading(plaint_bus::Reading::Opened)
}

fn start(
    log: &EventLog,
    store: &Store,
    updates: &broadcast::Sender<plaint_projection::store::ComplaintChange>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    start_holding(log, store, updates, plaint_projection::pairing::HOLD)
}

fn start_holding(
    log: &EventLog,
    store: &Store,
    updates: &broadcast::Sender<plaint_projection::store::ComplaintChange>,
    hold: Duration,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(projector::run(
        log.clone(),
        store.clone(),
        2,
        hold,
        RetryPolicy::default(),
        updates.clone(),
        stop.clone(),
    ));
    (stop, task)
}

async fn stop_projector(
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the projector stops when asked")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_projector_follows_the_log_and_resumes_from_its_checkpoint() {
    let nats = NatsServer::start();
    let log = open_log(&nats).await;
    let (db, store) = fresh_store().await;
    let (updates, mut watcher) = broadcast::channel(64);

    let f = facts("N-1", "cust-n", Channel::Email, Category::ProductDefect);
    let id = id_of(&f);
    let (items, _) = Log::default().lifecycle(&f, &RoutingPolicy::default(), T0, Some(9));
    let mut last = 0;
    for (i, item) in items.iter().enumerate() {
        let envelope = &item.event.as_ref().unwrap().envelope;
        let appended = log
            .append_for(
                &log.names().subject_of(envelope).unwrap(),
                envelope,
                Some(&f.customer.reference),
                Expect::LastSubjectSequence(last),
                None,
            )
            .await
            .unwrap();
        assert!(!appended.duplicate, "event {i}");
        last = appended.sequence;
    }

    let (stop, task) = start(&log, &store, &updates);
    assert!(
        store
            .wait_for_sequence(last, Duration::from_secs(10))
            .await
            .unwrap()
    );
    let detail = store.get_complaint(id).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Resolved);
    assert_eq!(detail.timeline.len(), 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let update = tokio::time::timeout(Duration::from_secs(5), watcher.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(update.event_type);
    }
    assert_eq!(seen, ["complaint_received", "complaint_routed", "resolved"]);

    stop_projector(stop, task).await;

    // Appended while no projector runs: the next one starts at the checkpoint.
    let mut later = Log { next: 3 };
    let reopened = later.complaint(
        id,
        T0 + 5_000,
        ComplaintEvent::Reopened {
            reason: plaint_domain::values::FreeText::parse("again").unwrap(),
        },
    );
    let envelope = &reopened.event.as_ref().unwrap().envelope;
    let appended = log
        .append_for(
            &log.names().subject_of(envelope).unwrap(),
            envelope,
            Some(&f.customer.reference),
            Expect::LastSubjectSequence(last),
            None,
        )
        .await
        .unwrap();
    let (stop, task) = start(&log, &store, &updates);
    assert!(
        store
            .wait_for_sequence(appended.sequence, Duration::from_secs(10))
            .await
            .unwrap()
    );
    let detail = store.get_complaint(id).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Reopened);
    assert_eq!(detail.timeline.len(), 4);
    stop_projector(stop, task).await;

    finish(db, store).await;
}

#[tokio::test]
async fn projections_made_from_another_log_stop_the_projector_with_the_cause() {
    let nats = NatsServer::start();
    let first = open_log(&nats).await;
    let (db, store) = fresh_store().await;
    let (updates, _watcher) = broadcast::channel(64);
    let f = facts("A-1", "cust-a", Channel::Email, Category::ProductDefect);
    let (items, _) = Log::default().lifecycle(&f, &RoutingPolicy::default(), T0, Some(9));
    let mut last = 0;
    for item in &items {
        let envelope = &item.event.as_ref().unwrap().envelope;
        last = first
            .append_for(
                &first.names().subject_of(envelope).unwrap(),
                envelope,
                Some(&f.customer.reference),
                Expect::LastSubjectSequence(last),
                None,
            )
            .await
            .unwrap()
            .sequence;
    }
    let (stop, task) = start(&first, &store, &updates);
    assert!(
        store
            .wait_for_sequence(last, Duration::from_secs(10))
            .await
            .unwrap()
    );
    stop_projector(stop, task).await;

    // The same database, a new and shorter log.
    let client = plaint_bus::connect(&nats.url(), "projector-test")
        .await
        .unwrap();
    let names = Names::new(&plaint_testkit::unique_prefix(), "PROJ_TEST_OTHER").unwrap();
    let personal = plaint_bus::PersonalDataSettings::for_tests(names.prefix()).unwrap();
    let second = EventLog::open(client, names, &StreamSettings::default(), &personal)
        .await
        .unwrap();
    let envelope = &items[0].event.as_ref().unwrap().envelope;
    second
        .append(
            &second.names().subject_of(envelope).unwrap(),
            envelope,
            Expect::Any,
            None,
        )
        .await
        .unwrap();
    let (_stop, task) = start(&second, &store, &updates);
    let ended = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the projector stops by itself")
        .unwrap();
    let error = format!("{:#}", ended.expect_err("it refuses to go on"));
    assert!(
        error.contains(&format!("at log sequence {last} but the log ends at 1")),
        "{error}"
    );
    // Nothing of the new log was applied over the old projections.
    assert_eq!(store.projected_sequence().await.unwrap(), last);
    finish(db, store).await;
}

#[tokio::test]
async fn a_held_complaint_is_released_to_a_query_that_waits_for_it() {
    let nats = NatsServer::start();
    let log = open_log(&nats).await;
    let (db, store) = fresh_store().await;
    let (updates, _watcher) = broadcast::channel(64);
    // Far longer than the test: only the query can release the event.
    let (stop, task) = start_holding(&log, &store, &updates, Duration::from_secs(60));

    let f = facts("N-2", "cust-h", Channel::Email, Category::ProductDefect);
    let id = id_of(&f);
    let now = plaint_domain::Timestamp::from_system_time(std::time::SystemTime::now()).as_millis();
    let received = Log::default().complaint(id, now, ComplaintEvent::Received(Box::new(f)));
    let envelope = &received.event.as_ref().unwrap().envelope;
    let appended = log
        .append(
            &log.names().subject_of(envelope).unwrap(),
            envelope,
            Expect::Empty,
            None,
        )
        .await
        .unwrap();

    // Fresh and alone, it waits for its decision...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.get_complaint(id).await.unwrap().is_none(), "held");
    // ...unless someone waits to read it.
    assert!(
        store
            .wait_for_sequence(appended.sequence, Duration::from_secs(10))
            .await
            .unwrap(),
        "released to the query"
    );
    let detail = store.get_complaint(id).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Received);

    stop_projector(stop, task).await;
    finish(db, store).await;
}

/// A projector whose database stays unreachable past its retry budget gives
/// up with the cause, instead of retrying in silence for ever.
#[tokio::test]
async fn the_projector_gives_up_when_the_database_stays_away_past_the_budget() {
    let nats = NatsServer::start();
    let log = open_log(&nats).await;
    let mut pg = PgServer::start();
    let store = Store::connect(&pg.url(), 2).await.unwrap();
    let (updates, _) = broadcast::channel(16);
    let stop = CancellationToken::new();
    let retry = RetryPolicy {
        pause: Duration::from_millis(50),
        max_pause: Duration::from_millis(200),
        budget: Duration::from_secs(1),
    };
    let task = tokio::spawn(projector::run(
        log.clone(),
        store.clone(),
        2,
        Duration::ZERO,
        retry,
        updates,
        stop.clone(),
    ));
    // Following the log, then the database goes for good.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the projector runs while all is well");
    pg.stop();
    // The budget, plus one attempt that may wait out the pool's acquire
    // timeout (5 s), plus slack.
    let ended = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the projector gives up within its budget and one attempt")
        .unwrap();
    let e = ended.expect_err("giving up is an error");
    let text = format!("{e:#}");
    assert!(text.contains("gave up"), "{text}");
    assert!(text.contains("retry budget of 1s"), "{text}");
    assert!(!stop.is_cancelled());
}
