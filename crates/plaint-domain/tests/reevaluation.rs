//! A decision made again that keeps the route is recorded, not put in force.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{a_complaint, decision, replay, text};
use plaint_domain::routing::{GateKind, Route};
use plaint_domain::{Command, ComplaintEvent, DomainError, decide};

#[test]
fn a_reevaluation_names_the_gate_that_held_and_leaves_the_decision_in_force() {
    let routed = decision(Route::Frontline, None);
    let c = replay(
        a_complaint().id(),
        &[
            ComplaintEvent::Received(Box::new(a_complaint().facts)),
            ComplaintEvent::Routed(Box::new(routed.clone())),
        ],
    )
    .unwrap()
    .unwrap();
    let again = decision(Route::Frontline, None);
    let events = decide(
        Some(&c),
        &Command::RecordReevaluation(Box::new(again.clone())),
    )
    .unwrap();
    let [ComplaintEvent::Reevaluated { held_by, .. }] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(*held_by, again.first_failed_gate().map(|g| g.kind));
    assert_eq!(*held_by, Some(GateKind::Climate));
    let after = plaint_domain::apply(Some(c.clone()), c.id, &events[0], again.decided_at).unwrap();
    assert_eq!(after.decision, Some(routed));

    // A decision that changes the route is a re-routing, not this.
    let ceo = decision(Route::Ceo, None);
    assert!(matches!(
        decide(Some(&c), &Command::RecordReevaluation(Box::new(ceo))),
        Err(DomainError::RouteChanges { .. })
    ));
    // Nothing to reconsider once withdrawn.
    let withdrawn = plaint_domain::apply(
        Some(c),
        a_complaint().id(),
        &ComplaintEvent::Withdrawn {
            reason: text("done"),
        },
        again.decided_at,
    )
    .unwrap();
    assert!(
        decide(
            Some(&withdrawn),
            &Command::RecordReevaluation(Box::new(again))
        )
        .is_err()
    );
}
