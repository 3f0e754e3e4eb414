//! The log's group commit, against a real NATS: appends made at the same
//! time go as atomic batches, and each caller still gets the answer it would
//! have had alone — its own sequence, "duplicate" for an event id already
//! stored, and a refusal when its complaint moved on, even when another
//! append to the same complaint was made at the same moment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;

use futures::future::join_all;
use plaint_bus::{AppendError, EventLog, Expect, Names, StreamSettings};
use plaint_domain::event::ComplaintEvent;
use plaint_domain::values::FreeText;
use plaint_domain::{Category, Channel};
use plaint_testkit::NatsServer;
use support::{Log, T0, facts, id_of};

/// The facts of the `i`th complaint of a series.
fn ticket(series: &str, i: usize) -> plaint_domain::ComplaintFacts {
    let customer = format!("cust-{}{i}", series.to_lowercase());
    facts(
        &format!("{series}-{i}"),
        &customer,
        Channel::Email,
        Category::Billing,
    )
}

async fn open_log(nats: &NatsServer, group_commit: bool) -> EventLog {
    let client = plaint_bus::connect(&nats.url(), "group-commit-test")
        .await
        .unwrap();
    let names = Names::new(&plaint_testkit::unique_prefix(), "GC_TEST").unwrap();
    let personal = plaint_bus::PersonalDataSettings::for_tests(names.prefix()).unwrap();
    let settings = StreamSettings {
        group_commit,
        ..StreamSettings::default()
    };
    EventLog::open(client, names, &settings, &personal)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_made_together_each_get_the_answer_they_would_have_had_alone() {
    let nats = NatsServer::start();
    let log = open_log(&nats, true).await;
    let mut made = Log::default();
    let received: Vec<_> = (0..300)
        .map(|i| {
            let f = ticket("G", i);
            let item = made.complaint(id_of(&f), T0, ComplaintEvent::Received(Box::new(f)));
            item.event.unwrap().envelope
        })
        .collect();
    let subject = |e: &plaint_domain::event::Envelope| log.names().subject_of(e).unwrap();
    let append = |e: &plaint_domain::event::Envelope, expect: Expect| {
        let (log, e, subject) = (log.clone(), e.clone(), subject(e));
        async move { log.append(&subject, &e, expect, None).await }
    };
    // A follow-up's text is sealed for its customer.
    let owner = |i: usize| ticket("G", i).customer.reference;
    let append_for = |i: usize, e: &plaint_domain::event::Envelope, expect: Expect| {
        let (log, e, subject, owner) = (log.clone(), e.clone(), subject(e), owner(i));
        async move {
            log.append_for(&subject, &e, Some(&owner), expect, None)
                .await
        }
    };

    // 300 new complaints at once: all stored, each at a sequence of its own.
    let first = join_all(received.iter().map(|e| append(e, Expect::Empty))).await;
    let sequences: Vec<u64> = first.iter().map(|a| a.as_ref().unwrap().sequence).collect();
    assert!(first.iter().all(|a| !a.as_ref().unwrap().duplicate));
    assert_eq!(sequences.iter().collect::<HashSet<_>>().len(), 300);
    let batched = log.batched_appends();
    assert!(batched > 0, "appends made together went in batches");
    for (e, seq) in received.iter().zip(&sequences) {
        let stored = log.last_on_subject(&subject(e)).await.unwrap().unwrap();
        assert_eq!(
            stored.sequence, *seq,
            "each caller was told where its event is"
        );
        assert_eq!(stored.envelope.event_id, e.event_id);
    }

    // The same events again, mixed with 50 new ones: the 300 are answered
    // "duplicate" (nothing stored twice) and the 50 stored.
    let more: Vec<_> = (300..350)
        .map(|i| {
            let f = ticket("G", i);
            made.complaint(id_of(&f), T0, ComplaintEvent::Received(Box::new(f)))
                .event
                .unwrap()
                .envelope
        })
        .collect();
    let again = join_all(received.iter().chain(&more).map(|e| append(e, Expect::Any))).await;
    let (dups, fresh): (Vec<&plaint_bus::Appended>, Vec<_>) = again
        .iter()
        .map(|a| a.as_ref().unwrap())
        .partition(|a| a.duplicate);
    assert_eq!((dups.len(), fresh.len()), (300, 50));
    assert_eq!(log.last_sequence().await.unwrap(), 350);

    // Two follow-ups to each of 50 complaints at the same moment, both made
    // against the complaint as it was: one of each pair is stored, the other
    // refused, as it would be alone.
    let follow_up = |made: &mut Log, i: usize| {
        let f = ticket("G", i);
        made.complaint(
            id_of(&f),
            T0 + 1,
            ComplaintEvent::CustomerFollowedUp {
                text: FreeText::parse("any news?").unwrap(),
            },
        )
        .event
        .unwrap()
        .envelope
    };
    let pairs: Vec<_> = (0..50)
        .flat_map(|i| [(i, follow_up(&mut made, i)), (i, follow_up(&mut made, i))])
        .collect();
    let raced = join_all(
        pairs
            .iter()
            .map(|(i, e)| append_for(*i, e, Expect::LastSubjectSequence(sequences[*i]))),
    )
    .await;
    for pair in raced.chunks(2) {
        let stored = pair.iter().filter(|a| a.is_ok()).count();
        let refused = pair
            .iter()
            .filter(|a| matches!(a, Err(AppendError::WrongLastSequence)))
            .count();
        assert_eq!((stored, refused), (1, 1), "{pair:?}");
    }
    assert_eq!(log.last_sequence().await.unwrap(), 400);
    eprintln!(
        "{} of 400 events stored in batches of more than one",
        log.batched_appends()
    );
}

#[tokio::test]
async fn without_group_commit_every_append_goes_alone() {
    let nats = NatsServer::start();
    let log = open_log(&nats, false).await;
    let mut made = Log::default();
    let events: Vec<_> = (0..20)
        .map(|i| {
            let f = ticket("A", i);
            made.complaint(id_of(&f), T0, ComplaintEvent::Received(Box::new(f)))
                .event
                .unwrap()
                .envelope
        })
        .collect();
    let stored = join_all(events.iter().map(|e| {
        let (log, e) = (log.clone(), e.clone());
        async move {
            let subject = log.names().subject_of(&e).unwrap();
            log.append(&subject, &e, Expect::Empty, None).await
        }
    }))
    .await;
    assert!(stored.iter().all(Result::is_ok));
    assert_eq!(log.batched_appends(), 0);
}
