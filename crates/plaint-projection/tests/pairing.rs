//! The projector's hold on a new complaint's first event: held while it is
//! fresh and alone, released by its decision, by age, or when the batch is full.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use plaint_domain::event::{CeoSlot, CompanyEvent, ComplaintEvent, EventPayload};
use plaint_domain::{Category, Channel, ComplaintFacts, RoutingPolicy, Timestamp};
use plaint_projection::pairing::{HOLD, Pending, Ready};
use support::{Log, T0, decide, facts, id_of};

/// No limit on what one call takes.
const MAX: usize = usize::MAX;

fn sequences(ready: &Option<Ready>) -> Vec<u64> {
    ready
        .as_ref()
        .map(|r| r.items.iter().map(|i| i.sequence).collect())
        .unwrap_or_default()
}

fn received(log: &mut Log, ticket: &str, at: i64) -> (plaint_bus::TailItem, ComplaintFacts) {
    let f = facts(ticket, "c-1", Channel::Email, Category::ProductDefect);
    (
        log.complaint(id_of(&f), at, ComplaintEvent::Received(Box::new(f.clone()))),
        f,
    )
}

fn routed(log: &mut Log, f: &ComplaintFacts, at: i64) -> plaint_bus::TailItem {
    let decision = decide(f, &RoutingPolicy::default(), at);
    log.complaint(id_of(f), at, ComplaintEvent::Routed(Box::new(decision)))
}

fn stretch(ready: &Option<Ready>) -> Option<(u64, u64)> {
    ready.as_ref().and_then(|r| r.stretch)
}

/// A received event and, separately, its decision.
fn complaint(log: &mut Log, ticket: &str, at: i64) -> (plaint_bus::TailItem, plaint_bus::TailItem) {
    let (received, f) = received(log, ticket, at);
    (received, routed(log, &f, at + 3))
}

#[test]
fn a_fresh_first_event_waits_for_its_decision_and_goes_with_it() {
    let mut log = Log::default();
    let (received, routed) = complaint(&mut log, "P-1", T0);
    let wall = Timestamp::from_millis(T0 + 2);
    let t = Instant::now();
    let mut pending = Pending::default();

    pending.push(vec![received], t);
    assert!(pending.take_ready(t, wall, false, MAX).is_none(), "held");
    let left = pending.hold_left(t, wall).expect("something waits");
    assert!(left > Duration::ZERO && left <= HOLD, "{left:?}");

    pending.push(vec![routed], t + Duration::from_millis(3));
    let ready = pending.take_ready(t + Duration::from_millis(3), wall, false, MAX);
    assert_eq!(sequences(&ready), vec![1, 2]);
    assert!(pending.is_empty());
}

#[test]
fn a_stretch_ends_at_the_first_held_event_and_takes_its_complaints_later_events_along() {
    let mut log = Log::default();
    let (r1, f1) = received(&mut log, "P-1", T0);
    let d1 = routed(&mut log, &f1, T0 + 3);
    let (r2, f2) = received(&mut log, "P-2", T0);
    let (r3, f3) = received(&mut log, "P-3", T0);
    let d2 = routed(&mut log, &f2, T0 + 3);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();

    // 1 and 3 received with their decisions 2 and 5; 4 received alone.
    pending.push(vec![r1, d1, r2, r3, d2], t);
    let ready = pending.take_ready(t, wall, false, MAX);
    assert_eq!(
        sequences(&ready),
        vec![1, 2, 3, 5],
        "3 goes with its decision, taken ahead of 4"
    );
    assert_eq!(stretch(&ready), Some((1, 3)), "the stretch ends before 4");
    assert_eq!(pending.len(), 2, "4 is held; 5's position waits behind it");
    assert!(pending.take_ready(t, wall, false, MAX).is_none());

    // 6: the decision of 4. The stretch covers 5's empty position.
    pending.push(vec![routed(&mut log, &f3, T0 + 3)], t);
    let ready = pending.take_ready(t, wall, false, MAX);
    assert_eq!(sequences(&ready), vec![4, 6]);
    assert_eq!(stretch(&ready), Some((4, 6)));
    assert!(pending.is_empty());
}

#[test]
fn a_stretch_is_at_most_max_positions_long_and_its_complaints_events_still_follow() {
    let mut log = Log::default();
    let (r1, f1) = received(&mut log, "P-1", T0);
    let (r2, f2) = received(&mut log, "P-2", T0);
    let d1 = routed(&mut log, &f1, T0 + 3);
    let d2 = routed(&mut log, &f2, T0 + 3);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();

    pending.push(vec![r1, r2, d1, d2], t);
    let ready = pending.take_ready(t, wall, false, 1);
    assert_eq!(sequences(&ready), vec![1, 3]);
    assert_eq!(stretch(&ready), Some((1, 1)));
    let ready = pending.take_ready(t, wall, false, 2);
    assert_eq!(
        sequences(&ready),
        vec![2, 4],
        "3's position holds nothing now"
    );
    assert_eq!(stretch(&ready), Some((2, 3)));
    let ready = pending.take_ready(t, wall, false, 2);
    assert_eq!(
        sequences(&ready),
        Vec::<u64>::new(),
        "only 4's position is left"
    );
    assert_eq!(stretch(&ready), Some((4, 4)));
    assert!(pending.is_empty());
}

#[test]
fn an_old_first_event_is_not_held() {
    let mut log = Log::default();
    let (received, _) = complaint(&mut log, "P-1", T0);
    let wall = Timestamp::from_millis(T0 + 60_000);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![received], t);
    assert_eq!(sequences(&pending.take_ready(t, wall, false, MAX)), vec![1]);
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
    assert!(pending.take_ready(t + HOLD / 2, wall, false, MAX).is_none());
    assert_eq!(pending.hold_left(t + HOLD, wall), Some(Duration::ZERO));
    assert_eq!(
        sequences(&pending.take_ready(t + HOLD, wall, false, MAX)),
        vec![1]
    );

    pending.push(vec![other], t);
    assert_eq!(sequences(&pending.take_ready(t, wall, true, MAX)), vec![3]);
}

#[test]
fn an_event_dated_ahead_of_this_clock_is_held_no_longer_than_hold() {
    let mut log = Log::default();
    let (received, _) = complaint(&mut log, "P-1", T0 + 60_000);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![received], t);
    assert!(pending.take_ready(t, wall, false, MAX).is_none());
    assert_eq!(
        sequences(&pending.take_ready(t + HOLD, wall, false, MAX)),
        vec![1]
    );
}

#[test]
fn an_event_a_query_waits_for_is_not_held() {
    let mut log = Log::default();
    let (first, _) = received(&mut log, "P-1", T0);
    let (second, _) = received(&mut log, "P-2", T0);
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![first, second], t);
    assert!(pending.take_ready(t, wall, false, MAX).is_none());

    pending.release_through(1);
    assert_eq!(sequences(&pending.take_ready(t, wall, false, MAX)), vec![1]);
    assert!(
        pending.take_ready(t, wall, false, MAX).is_none(),
        "2 is still held"
    );
    assert!(
        pending
            .hold_left(t, wall)
            .is_some_and(|left| left > Duration::ZERO)
    );
}

#[test]
fn a_company_event_naming_a_complaint_keeps_its_place() {
    let mut log = Log::default();
    let (r1, f1) = received(&mut log, "P-1", T0);
    let (r2, _) = received(&mut log, "P-2", T0);
    let d1 = routed(&mut log, &f1, T0 + 3);
    // A CEO engagement carries its complaint's id but is a company event.
    let slot = CeoSlot {
        window_start: Timestamp::from_millis(T0),
        complaint_id: id_of(&f1),
        customer: f1.customer.reference.clone(),
        segment: f1.customer.segment.clone(),
        used: 0,
        segment_used: Default::default(),
    };
    let engagement = log.item(
        Some(id_of(&f1)),
        T0,
        EventPayload::Company(CompanyEvent::CeoSlotReserved(slot)),
    );
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();
    pending.push(vec![r1, r2, d1, engagement], t);

    let ready = pending.take_ready(t, wall, false, MAX);
    assert_eq!(
        sequences(&ready),
        vec![1, 3],
        "only the decision goes ahead of 2"
    );
    assert_eq!(stretch(&ready), Some((1, 1)));
    assert_eq!(pending.len(), 3);
}

#[test]
fn a_complaint_behind_a_held_one_goes_without_waiting_for_it() {
    let mut log = Log::default();
    let (r1, f1) = received(&mut log, "P-1", T0);
    let (r2, f2) = received(&mut log, "P-2", T0);
    let d2 = routed(&mut log, &f2, T0 + 3);
    let climate = log.company(
        T0,
        CompanyEvent::ClimateSet {
            climate: plaint_domain::Climate::Good,
            set_by: plaint_domain::values::Label::parse("ops").unwrap(),
        },
    );
    let wall = Timestamp::from_millis(T0);
    let t = Instant::now();
    let mut pending = Pending::default();

    // 1 held (its decision is slow); 2 and its decision 3 need not wait. The
    // company event 4 keeps its place behind 1.
    pending.push(vec![r1, r2, d2, climate], t);
    let ready = pending.take_ready(t, wall, false, MAX);
    assert_eq!(sequences(&ready), vec![2, 3]);
    assert_eq!(stretch(&ready), None, "the checkpoint stays before 1");
    assert_eq!(pending.len(), 4, "every position still bounds it");
    assert!(pending.take_ready(t, wall, false, MAX).is_none());

    pending.push(vec![routed(&mut log, &f1, T0 + 3)], t);
    let ready = pending.take_ready(t, wall, false, MAX);
    assert_eq!(sequences(&ready), vec![1, 4, 5]);
    assert_eq!(stretch(&ready), Some((1, 5)));
    assert!(pending.is_empty());
}
