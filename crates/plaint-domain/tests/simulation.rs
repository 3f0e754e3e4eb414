//! Replaying past complaints under a candidate policy: the candidate's own
//! budget and cooldown counters, over the replay in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Scenario, a_complaint, customer, minutes_later};
use plaint_domain::facts::Channel;
use plaint_domain::lifecycle::{Complaint, apply};
use plaint_domain::routing::simulate::Simulation;
use plaint_domain::routing::{Climate, Route, RoutingPolicy};
use plaint_domain::{ComplaintEvent, Decision};

/// A complaint the default policy sends to the CEO in good times, from
/// `customer_id` in `segment`, decided `minute` minutes after the start.
fn viral(ticket: &str, customer_id: &str, segment: &str, minute: i64) -> Scenario {
    let mut s = a_complaint()
        .ticket(ticket)
        .on(Channel::PublicSocial)
        .reaching(1_000_000)
        .in_climate(Climate::Good)
        .decided_at(minutes_later(minute));
    s.facts.customer = customer(customer_id, segment);
    s
}

/// The complaint as received, and what was actually decided: frontline,
/// since the day's CEO budget was used up when it came.
fn actual(s: Scenario) -> (Complaint, Decision) {
    let complaint = apply(
        None,
        s.id(),
        &ComplaintEvent::Received(Box::new(s.facts.clone())),
        s.now,
    )
    .unwrap();
    let decision = s
        .budget_used(RoutingPolicy::default().budget.per_window)
        .decide();
    assert_eq!(decision.route, Route::Frontline);
    (complaint, decision)
}

#[test]
fn the_candidates_budget_holds_over_the_replay() {
    let mut candidate = RoutingPolicy::default();
    candidate.budget.per_window = 2;
    let mut sim = Simulation::new(candidate, 0);
    for (i, segment) in ["retail", "pro", "wholesale"].iter().enumerate() {
        let (complaint, decision) = actual(viral(
            &format!("T-{i}"),
            &format!("c-{i}"),
            segment,
            i as i64,
        ));
        sim.add(complaint, decision);
    }
    assert_eq!(sim.complaints, 3);
    assert_eq!(sim.peak_window_ceo, 2, "two slots, then the budget holds");
    assert_eq!(sim.changed_total, 2);
    assert_eq!(sim.distribution[&Route::Ceo], (0, 2));
    assert_eq!(sim.distribution[&Route::Frontline], (3, 1));
    assert_eq!(sim.changes.len(), 2);
    assert!(sim.changes.iter().all(|c| c.simulated.route == Route::Ceo));
}

#[test]
fn a_customer_engaged_in_the_replay_is_in_cooldown_for_the_rest_of_it() {
    let mut sim = Simulation::new(RoutingPolicy::default(), 0);
    for (i, ticket) in ["T-1", "T-2"].iter().enumerate() {
        let (complaint, decision) = actual(viral(ticket, "same-customer", "retail", i as i64));
        sim.add(complaint, decision);
    }
    assert_eq!(sim.changed_total, 1);
    assert_eq!(sim.distribution[&Route::Ceo], (0, 1));
}

#[test]
fn the_listed_changes_are_capped_but_all_are_counted() {
    let mut candidate = RoutingPolicy::default();
    candidate.budget.per_window = 3;
    let mut sim = Simulation::new(candidate, 1);
    for i in 0..3 {
        let (complaint, decision) = actual(viral(
            &format!("T-{i}"),
            &format!("c-{i}"),
            &format!("seg-{i}"),
            i,
        ));
        sim.add(complaint, decision);
    }
    assert_eq!(sim.changed_total, 3);
    assert_eq!(sim.changes.len(), 1);
}

#[test]
fn the_replay_counts_the_service_levels_the_candidate_would_miss() {
    // A frontline P1 (1 h / 24 h) acknowledged 45 minutes after its
    // decision, still open 25 hours after it.
    let (mut complaint, decision) = actual(viral("S-1", "c-s", "retail", 0));
    assert_eq!(decision.sla.map(|t| t.acknowledge_secs), Some(3_600));
    complaint.acknowledged_at = Some(decision.decided_at.plus_millis(45 * 60_000));
    let now = decision.decided_at.plus_millis(25 * 3_600_000);
    // The candidate sends it to the CEO (the replay's budget is free),
    // with 30 minutes to acknowledge and the default 72 h to resolve.
    let mut candidate = RoutingPolicy::default();
    candidate.sla.ceo.acknowledge_secs = 1_800;
    let mut sim = Simulation::new(candidate, 0).as_of(now);
    sim.add(complaint, decision);
    assert_eq!(sim.changes[0].simulated.route, Route::Ceo);
    assert_eq!(sim.missed_acknowledge, (0, 1));
    assert_eq!(sim.missed_resolve, (1, 0));
    assert_eq!(sim.missed_any, (1, 1));
}
