//! Service levels, clock-free: when each target's clock starts, what meets
//! it, and the one breach a clock that runs past its due time records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{a_complaint, decision, label, now, satisfaction, text};
use plaint_domain::routing::{FulfilmentKind, Priority, Route, RoutingPolicy};
use plaint_domain::sla::{SlaPolicy, SlaTarget, Targets, Timer};
use plaint_domain::{Command, Complaint, ComplaintEvent, DomainError, Timestamp, apply, decide};

const HOUR_MS: i64 = 3_600_000;

fn hours_later(hours: i64) -> Timestamp {
    now().plus_millis(hours * HOUR_MS)
}

/// The complaint these events, each at its own time, make.
fn history(events: &[(i64, ComplaintEvent)]) -> Complaint {
    let id = a_complaint().id();
    let mut state = None;
    for (at_ms, event) in events {
        state = Some(apply(state, id, event, Timestamp::from_millis(*at_ms)).unwrap());
    }
    state.expect("a history")
}

fn received_at(hours: i64) -> (i64, ComplaintEvent) {
    (
        hours_later(hours).as_millis(),
        ComplaintEvent::Received(Box::new(a_complaint().facts)),
    )
}

fn routed_at(hours: i64, route: Route, priority: Priority) -> (i64, ComplaintEvent) {
    let mut d = decision(
        route,
        (route == Route::ReverseLogistics).then_some(FulfilmentKind::Repair),
    );
    d.priority = priority;
    d.sla = Some(SlaPolicy::default().targets(route, priority));
    (
        hours_later(hours).as_millis(),
        ComplaintEvent::Routed(Box::new(d)),
    )
}

fn at(hours: i64, event: ComplaintEvent) -> (i64, ComplaintEvent) {
    (hours_later(hours).as_millis(), event)
}

fn timer(c: &Complaint, target: SlaTarget) -> Timer {
    *c.sla
        .timers()
        .iter()
        .find(|t| t.target == target)
        .expect("a running clock")
}

fn breach(c: &Complaint, timer: Timer, hours: i64) -> Result<Vec<ComplaintEvent>, DomainError> {
    decide(
        Some(c),
        &Command::RecordSlaBreach {
            timer,
            at: hours_later(hours),
            raise_priority: true,
        },
    )
}

fn frontline_p3() -> Complaint {
    history(&[received_at(0), routed_at(0, Route::Frontline, Priority::P3)])
}

#[test]
fn the_default_targets_are_the_documented_ones() {
    let sla = SlaPolicy::default();
    let hours = |t: Targets| (t.acknowledge_secs / 3600, t.resolve_secs / 3600);
    assert_eq!(hours(sla.targets(Route::Ceo, Priority::P1)), (4, 72));
    assert_eq!(hours(sla.targets(Route::Frontline, Priority::P1)), (1, 24));
    assert_eq!(hours(sla.targets(Route::Frontline, Priority::P2)), (4, 48));
    assert_eq!(hours(sla.targets(Route::Frontline, Priority::P3)), (8, 120));
    assert_eq!(
        hours(sla.targets(Route::Frontline, Priority::P4)),
        (24, 240)
    );
    assert_eq!(
        hours(sla.targets(Route::ReverseLogistics, Priority::P4)),
        (24, 336)
    );
    assert!(sla.raise_priority_on_breach);
}

#[test]
fn routing_starts_both_clocks_with_the_handlers_targets() {
    let c = frontline_p3();
    let timers = c.sla.timers();
    assert_eq!(timers.len(), 2);
    let ack = timer(&c, SlaTarget::Acknowledge);
    assert_eq!(ack.since, hours_later(0));
    assert_eq!(ack.due_at, hours_later(8));
    assert_eq!(timer(&c, SlaTarget::Resolve).due_at, hours_later(120));
}

#[test]
fn a_target_passed_unmet_breaches_once_and_raises_the_priority() {
    let c = frontline_p3();
    let ack = timer(&c, SlaTarget::Acknowledge);
    let events = breach(&c, ack, 9).unwrap();
    assert_eq!(
        events,
        vec![ComplaintEvent::SlaBreached {
            target: SlaTarget::Acknowledge,
            since: hours_later(0),
            due_at: hours_later(8),
            late_by_ms: HOUR_MS,
            raised_priority: Some(Priority::P2),
        }]
    );
    let after = apply(Some(c), after_id(), &events[0], hours_later(9)).unwrap();
    assert_eq!(after.priority(), Some(Priority::P2));
    // The decision keeps what it decided; the breach is on record.
    assert_eq!(after.decision.as_ref().unwrap().priority, Priority::P3);
    assert!(after.missed.acknowledge && !after.missed.resolve);
    assert!(after.sla.acknowledge.unwrap().breached);
    // The same timer again (a redelivery, a second replica): nothing more.
    assert_eq!(
        breach(&after, ack, 10),
        Err(DomainError::SlaAlreadyBreached {
            target: SlaTarget::Acknowledge
        })
    );
    // The breached clock needs no timer; the other one still runs.
    assert_eq!(
        after
            .sla
            .timers()
            .iter()
            .map(|t| t.target)
            .collect::<Vec<_>>(),
        vec![SlaTarget::Resolve]
    );
}

fn after_id() -> plaint_domain::ComplaintId {
    a_complaint().id()
}

#[test]
fn a_timer_that_fires_early_records_nothing() {
    let c = frontline_p3();
    let ack = timer(&c, SlaTarget::Acknowledge);
    assert_eq!(
        breach(&c, ack, 7),
        Err(DomainError::SlaNotDue {
            target: SlaTarget::Acknowledge,
            due_at: hours_later(8)
        })
    );
}

#[test]
fn acknowledging_or_assigning_in_time_meets_the_first_target() {
    for met_by in [
        ComplaintEvent::Acknowledged { by: label("ana") },
        ComplaintEvent::Assigned {
            assignee: label("team-a"),
        },
    ] {
        let c = frontline_p3();
        let ack = timer(&c, SlaTarget::Acknowledge);
        let resolve = timer(&c, SlaTarget::Resolve);
        let met = apply(Some(c), after_id(), &met_by, hours_later(2)).unwrap();
        assert_eq!(
            breach(&met, ack, 9),
            Err(DomainError::SlaMet {
                target: SlaTarget::Acknowledge
            })
        );
        // Resolution is still owed.
        assert!(breach(&met, resolve, 121).is_ok());
    }
}

#[test]
fn a_complaint_resolved_or_withdrawn_in_time_never_breaches() {
    let resolved = history(&[
        received_at(0),
        routed_at(0, Route::Frontline, Priority::P3),
        at(1, ComplaintEvent::Acknowledged { by: label("ana") }),
        at(
            5,
            ComplaintEvent::Resolved {
                satisfaction: satisfaction(8),
                note: text("done"),
            },
        ),
    ]);
    let c = frontline_p3();
    for target in [SlaTarget::Acknowledge, SlaTarget::Resolve] {
        let t = timer(&c, target);
        assert_eq!(
            breach(&resolved, t, 500),
            Err(DomainError::SlaMet { target })
        );
    }
    assert!(resolved.sla.timers().is_empty());

    let withdrawn = apply(
        Some(c.clone()),
        after_id(),
        &ComplaintEvent::Withdrawn {
            reason: text("sorted"),
        },
        hours_later(1),
    )
    .unwrap();
    let t = timer(&c, SlaTarget::Resolve);
    assert!(matches!(
        breach(&withdrawn, t, 500),
        Err(DomainError::Withdrawn { .. })
    ));
    assert!(withdrawn.sla.timers().is_empty());
}

#[test]
fn a_rerouting_gives_the_new_handler_their_own_time() {
    let c = frontline_p3();
    let old = timer(&c, SlaTarget::Acknowledge);
    let (_, rerouted) = routed_at(3, Route::Ceo, Priority::P1);
    let ComplaintEvent::Routed(d) = rerouted else {
        unreachable!()
    };
    let c = apply(
        Some(c),
        after_id(),
        &ComplaintEvent::Rerouted {
            decision: d,
            previous: Route::Frontline,
        },
        hours_later(3),
    )
    .unwrap();
    // The old clock is gone: its timer finds the target met.
    assert_eq!(
        breach(&c, old, 9),
        Err(DomainError::SlaMet {
            target: SlaTarget::Acknowledge
        })
    );
    let new = timer(&c, SlaTarget::Acknowledge);
    assert_eq!((new.since, new.due_at), (hours_later(3), hours_later(7)));
    // The CEO is P1 already: a breach raises nothing.
    let events = breach(&c, new, 8).unwrap();
    assert!(matches!(
        events[0],
        ComplaintEvent::SlaBreached {
            raised_priority: None,
            ..
        }
    ));
}

#[test]
fn a_rerouting_after_acknowledgement_restarts_only_resolution() {
    let (_, rerouted) = routed_at(3, Route::Ceo, Priority::P1);
    let ComplaintEvent::Routed(d) = rerouted else {
        unreachable!()
    };
    let c = history(&[
        received_at(0),
        routed_at(0, Route::Frontline, Priority::P3),
        at(1, ComplaintEvent::Acknowledged { by: label("ana") }),
        at(
            3,
            ComplaintEvent::Rerouted {
                decision: d,
                previous: Route::Frontline,
            },
        ),
    ]);
    assert_eq!(c.sla.acknowledge, None);
    let resolve = timer(&c, SlaTarget::Resolve);
    assert_eq!(
        (resolve.since, resolve.due_at),
        (hours_later(3), hours_later(75))
    );
}

#[test]
fn reopening_restarts_the_resolution_clock() {
    let c = history(&[
        received_at(0),
        routed_at(0, Route::Frontline, Priority::P1),
        at(1, ComplaintEvent::Acknowledged { by: label("ana") }),
        at(
            2,
            ComplaintEvent::Resolved {
                satisfaction: satisfaction(3),
                note: text("done"),
            },
        ),
        at(
            10,
            ComplaintEvent::Reopened {
                reason: text("broken again"),
            },
        ),
    ]);
    assert_eq!(c.sla.acknowledge, None);
    let resolve = timer(&c, SlaTarget::Resolve);
    assert_eq!(
        (resolve.since, resolve.due_at),
        (hours_later(10), hours_later(34))
    );
}

#[test]
fn a_policy_that_does_not_raise_leaves_the_priority() {
    let c = frontline_p3();
    let ack = timer(&c, SlaTarget::Acknowledge);
    let events = decide(
        Some(&c),
        &Command::RecordSlaBreach {
            timer: ack,
            at: hours_later(8),
            raise_priority: false,
        },
    )
    .unwrap();
    assert!(matches!(
        events[0],
        ComplaintEvent::SlaBreached {
            raised_priority: None,
            late_by_ms: 0,
            ..
        }
    ));
}

#[test]
fn a_decision_recorded_before_targets_existed_starts_no_clock() {
    let (at_ms, routed) = routed_at(0, Route::Frontline, Priority::P3);
    let ComplaintEvent::Routed(mut d) = routed else {
        unreachable!()
    };
    d.sla = None;
    let c = history(&[received_at(0), (at_ms, ComplaintEvent::Routed(d))]);
    assert!(c.sla.timers().is_empty());
}

#[test]
fn policies_without_targets_get_the_defaults_and_bad_targets_are_named() {
    let mut json: serde_json::Value =
        serde_json::from_str(&RoutingPolicy::default().to_json()).unwrap();
    json.as_object_mut().unwrap().remove("sla");
    let policy = RoutingPolicy::from_json(&json.to_string()).unwrap();
    assert_eq!(policy.sla, SlaPolicy::default());

    let mut bad = RoutingPolicy::default();
    bad.sla.frontline.p2.acknowledge_secs = 0;
    let err = RoutingPolicy::from_json(&bad.to_json()).unwrap_err();
    assert!(
        err.to_string()
            .contains("sla.frontline.p2.acknowledge_secs"),
        "{err}"
    );
}

#[test]
fn a_replay_reads_what_was_missed_from_when_targets_were_met() {
    use plaint_domain::sla::{Missed, missed};
    let targets = SlaPolicy::default().targets(Route::Frontline, Priority::P2); // 4 h / 48 h
    let routed = hours_later(0);
    let both = |ack: Option<i64>, closed: Option<i64>, now: i64| {
        missed(
            targets,
            routed,
            ack.map(hours_later),
            closed.map(hours_later),
            hours_later(now),
        )
    };
    assert_eq!(both(Some(3), Some(40), 100), Missed::default());
    assert_eq!(
        both(Some(5), Some(40), 100),
        Missed {
            acknowledge: true,
            resolve: false
        }
    );
    // Resolved in time without an acknowledgement: resolving met both.
    assert_eq!(both(None, Some(2), 100), Missed::default());
    // Still open: missed once past due, not before.
    assert_eq!(both(None, None, 3), Missed::default());
    assert_eq!(
        both(Some(1), None, 49),
        Missed {
            acknowledge: false,
            resolve: true
        }
    );
}

#[test]
fn a_first_decision_alone_tells_the_clocks_it_starts() {
    for (route, priority) in [
        (Route::Frontline, Priority::P3),
        (Route::Ceo, Priority::P1),
        (Route::ReverseLogistics, Priority::P4),
    ] {
        let routed = routed_at(2, route, priority);
        let c = history(&[received_at(0), routed.clone()]);
        let ComplaintEvent::Routed(decision) = &routed.1 else {
            unreachable!("routed_at makes a routing")
        };
        let alone =
            plaint_domain::lifecycle::first_clocks(decision, Timestamp::from_millis(routed.0));
        assert_eq!(alone, c.sla, "{route:?} {priority:?}");
        assert_eq!(alone.timers().len(), 2);
    }
}
