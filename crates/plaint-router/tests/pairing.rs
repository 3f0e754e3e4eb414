//! The projector's hold on a new complaint's first event: held while it is
//! fresh and alone, released by its decision, by age, or when the batch is full.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use plaint_domain::event::ComplaintEvent;
use plaint_domain::{Category, Channel, RoutingPolicy, Timestamp};
use plaint_router::pairing::{HOLD, Pending};
use support::{Log, T0, decide, facts, id_of};

fn sequences(items: &[plaint_bus::TailItem]) -> Vec<u64> {
    items.iter().map(|i| i.sequence).collect()
}

/// A received event and, separately, its decision.
fn complaint(log: &mut Log, ticket: &str, at: i64) -> (plaint_bus::TailItem, plaint_bus::TailItem) {
    let f = facts(ticket, "c-1", Channel::Email, Category::ProductDefect);
    let id = id_of(&f);
    let decision = decide(&f, &RoutingPolicy::default(), at + 3);
    (
        log.complaint(id, at, ComplaintEvent::Received(Box::new(f))),
        log.complaint(id, at + 3, ComplaintEvent::Routed(Box::new(decision))),
    )
}

#[test]
fn a_fresh_first_event_waits_for_its_decision_and_goes_with_it() {
    let mut log = Log::default();
    let (received, routed) = complaint(&mut log, "P-1", T0);
    let wall = Timestamp::from_millis(T0 + 2);
    let t = Instant::now();
    let mut pending = Pending::default();

    pending.push(vec![received], t);
    assert!(pending.take_ready(t, wall, false).is_empty(), "held");
    let left = pending.hold_left(t, wall).expect("something waits");
    assert!(left > Duration::ZERO && left <= HOLD, "{left:?}");

    pending.push(vec![routed], t + Duration::from_millis(3));
    let ready = pending.take_ready(t + Duration::from_millis(3), wall, false);
    assert_eq!(sequences(&ready), vec![1, 2]);
    assert!(pending.is_empty());
}

#[test]
fn events_after_a_held_one_wait_with_it_and_those_before_do_not() {
    let mut log = Log::default();
    let (first, first_routed) = complaint(&mut log, "P-1", T0);
    let (second, second_routed) = complaint(&mut log, "P-2", T0);
    let (third, _) = complaint(&mut log, "P-3", T0);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();

    // 1 received, 2 its decision, 3 received (alone), 5 received (alone), 4 its decision.
    pending.push(vec![first, first_routed, second, third, second_routed], t);
    let ready = pending.take_ready(t, wall, false);
    assert_eq!(
        sequences(&ready),
        vec![1, 2, 3],
        "3 has its decision in hand"
    );
    assert_eq!(pending.len(), 2, "5 is held, and 4 after it waits");
}

#[test]
fn an_old_first_event_is_not_held() {
    let mut log = Log::default();
    let (received, _) = complaint(&mut log, "P-1", T0);
    let wall = Timestamp::from_millis(T0 + 60_000);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![received], t);
    assert_eq!(sequences(&pending.take_ready(t, wall, false)), vec![1]);
}

#[test]
fn the_hold_ends_after_hold_and_a_full_batch_is_never_held() {
    let mut log = Log::default();
    let (received, _) = complaint(&mut log, "P-1", T0);
    let (other, _) = complaint(&mut log, "P-2", T0);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();

    pending.push(vec![received], t);
    assert!(pending.take_ready(t + HOLD / 2, wall, false).is_empty());
    assert_eq!(pending.hold_left(t + HOLD, wall), Some(Duration::ZERO));
    assert_eq!(
        sequences(&pending.take_ready(t + HOLD, wall, false)),
        vec![1]
    );

    pending.push(vec![other], t);
    assert_eq!(sequences(&pending.take_ready(t, wall, true)), vec![3]);
}

#[test]
fn an_event_dated_ahead_of_this_clock_is_held_no_longer_than_hold() {
    let mut log = Log::default();
    let (received, _) = complaint(&mut log, "P-1", T0 + 60_000);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![received], t);
    assert!(pending.take_ready(t, wall, false).is_empty());
    assert_eq!(
        sequences(&pending.take_ready(t + HOLD, wall, false)),
        vec![1]
    );
}
