//! Replaying past complaints under a candidate policy: a pure fold over
//! complaints and their actual first decisions, no I/O.
//!
//! Each complaint is decided again with the candidate, at the time and under
//! the climate and stance its actual decision recorded. The budget, segment
//! and cooldown counters start from the actual CEO engagements before the
//! replayed span (see [`Simulation::engaged_before`]) and then count the
//! candidate's own, over the replay in received order, so the replay shows how
//! the candidate's budget would hold from where the history stood.

use std::collections::{BTreeMap, HashMap};

use super::{Decision, Route, RoutingContext, RoutingFacts, RoutingPolicy, decide_route};
use crate::lifecycle::Complaint;
use crate::time::{DAY_MS, Timestamp};

/// Changes listed when the caller asks for none in particular.
pub const DEFAULT_MAX_CHANGES: u32 = 100;
/// Most changes one answer lists.
pub const MAX_CHANGES: u32 = 1_000;

/// A complaint whose route would change.
#[derive(Debug, Clone)]
pub struct SimulatedChange {
    /// The complaint as it was received.
    pub complaint: Complaint,
    /// What was decided.
    pub actual: Decision,
    /// What the candidate decides.
    pub simulated: Decision,
}

/// A simulation in progress and its result.
#[derive(Debug)]
pub struct Simulation {
    policy: RoutingPolicy,
    max_changes: usize,
    /// CEO engagements per window start, in total and per segment.
    windows: HashMap<i64, (u32, HashMap<String, u32>)>,
    /// Each customer's latest simulated CEO engagement.
    last_ceo: HashMap<String, Timestamp>,
    /// Complaints replayed.
    pub complaints: u64,
    /// Per route: (actual, simulated).
    pub distribution: BTreeMap<Route, (u64, u64)>,
    /// The first changes, in replay order.
    pub changes: Vec<SimulatedChange>,
    /// How many complaints change route.
    pub changed_total: u64,
    /// Most CEO engagements the candidate takes in one window.
    pub peak_window_ceo: u32,
    /// Actual CEO engagements before the span the counters started from.
    pub engagements_before: u64,
    /// Complaints that missed the acknowledgement target: (under their
    /// actual decision's targets, under the candidate's).
    pub missed_acknowledge: (u64, u64),
    /// Likewise the resolution target.
    pub missed_resolve: (u64, u64),
    /// Complaints that missed either: (actual, candidate).
    pub missed_any: (u64, u64),
    /// Until when a target not yet met counts as missed once past due.
    as_of: Timestamp,
}

impl Simulation {
    /// A simulation of `policy`, listing at most `max_changes` changes (0 → default, capped).
    pub fn new(policy: RoutingPolicy, max_changes: u32) -> Self {
        let max_changes = match max_changes {
            0 => DEFAULT_MAX_CHANGES,
            n => n.min(MAX_CHANGES),
        };
        Simulation {
            policy,
            max_changes: max_changes as usize,
            windows: HashMap::new(),
            last_ceo: HashMap::new(),
            complaints: 0,
            distribution: Route::ALL.iter().map(|r| (*r, (0, 0))).collect(),
            changes: Vec::new(),
            changed_total: 0,
            peak_window_ceo: 0,
            engagements_before: 0,
            missed_acknowledge: (0, 0),
            missed_resolve: (0, 0),
            missed_any: (0, 0),
            as_of: Timestamp::from_millis(i64::MAX),
        }
    }

    /// Targets not met by `now` count as missed once past due (by default
    /// only targets met late count).
    pub fn as_of(mut self, now: Timestamp) -> Self {
        self.as_of = now;
        self
    }

    /// From when the history before a span starting at `from` weighs on its
    /// first decisions: the start of `from`'s budget window, or the start of
    /// a cooldown ending at `from`, whichever is earlier.
    pub fn history_from(&self, from: Timestamp) -> Timestamp {
        let window = from.window_start(self.policy.window_ms());
        let cooldown_ms = i64::from(self.policy.cooldown_days).saturating_mul(DAY_MS);
        let cooldown = Timestamp::from_millis(from.as_millis().saturating_sub(cooldown_ms));
        window.min(cooldown)
    }

    /// Counts an actual CEO engagement made before the span (at or after
    /// [`Self::history_from`]) into the budget, share and cooldown counters,
    /// so the span's first decisions see what the history had used. Call
    /// for every such engagement, in any order, before the first [`Self::add`].
    pub fn engaged_before(&mut self, at: Timestamp, segment: &str, customer_ref: &str) {
        let window = at.window_start(self.policy.window_ms()).as_millis();
        let (n, per_segment) = self.windows.entry(window).or_default();
        *n += 1;
        *per_segment.entry(segment.to_owned()).or_default() += 1;
        let last = self.last_ceo.entry(customer_ref.to_owned()).or_insert(at);
        *last = (*last).max(at);
        self.engagements_before += 1;
    }

    /// The candidate's budget per window.
    pub fn budget(&self) -> u32 {
        self.policy.budget.per_window
    }

    /// Counts the service-level targets the complaint missed under its
    /// actual targets (the default policy's for decisions recorded before
    /// targets existed) and would have under the candidate's, its life
    /// going as it did.
    fn count_missed(&mut self, complaint: &Complaint, actual: &Decision, simulated: &Decision) {
        let as_of = if self.as_of.as_millis() == i64::MAX {
            // A target not met yet is not counted: only those met late.
            Timestamp::from_millis(i64::MIN)
        } else {
            self.as_of
        };
        let missed_under = |targets| {
            crate::sla::missed(
                targets,
                actual.decided_at,
                complaint.acknowledged_at,
                complaint.closed_at,
                as_of,
            )
        };
        let was = missed_under(actual.sla.unwrap_or_else(|| {
            crate::sla::SlaPolicy::default().targets(actual.route, actual.priority)
        }));
        let would = missed_under(self.policy.sla.targets(simulated.route, simulated.priority));
        for (count, (a, s)) in [
            (
                &mut self.missed_acknowledge,
                (was.acknowledge, would.acknowledge),
            ),
            (&mut self.missed_resolve, (was.resolve, would.resolve)),
            (&mut self.missed_any, (was.any(), would.any())),
        ] {
            count.0 += u64::from(a);
            count.1 += u64::from(s);
        }
    }

    /// Replays one complaint against its actual first decision.
    pub fn add(&mut self, complaint: Complaint, actual: Decision) {
        let now = actual.decided_at;
        let window = now.window_start(self.policy.window_ms()).as_millis();
        let customer = &complaint.facts.customer;
        let segment = customer.segment.as_str();
        let (budget_used, segment_used) = self
            .windows
            .get(&window)
            .map_or((0, 0), |(n, s)| (*n, s.get(segment).copied().unwrap_or(0)));
        let ctx = RoutingContext {
            policy: &self.policy,
            climate: actual.climate,
            stance: actual.stance,
            budget_used,
            segment_used,
            customer_last_ceo: self.last_ceo.get(customer.reference.as_str()).copied(),
            now,
        };
        // The first decision saw the complaint as it was received.
        let facts = RoutingFacts::of(&complaint.facts, complaint.facts.visibility);
        let simulated = decide_route(&facts, &ctx);

        if simulated.route == Route::Ceo {
            let (n, per_segment) = self.windows.entry(window).or_default();
            *n += 1;
            *per_segment.entry(segment.to_owned()).or_default() += 1;
            self.peak_window_ceo = self.peak_window_ceo.max(*n);
            self.last_ceo
                .insert(customer.reference.as_str().to_owned(), now);
        }
        self.count_missed(&complaint, &actual, &simulated);
        self.complaints += 1;
        self.distribution.entry(actual.route).or_default().0 += 1;
        self.distribution.entry(simulated.route).or_default().1 += 1;
        if simulated.route != actual.route {
            self.changed_total += 1;
            if self.changes.len() < self.max_changes {
                self.changes.push(SimulatedChange {
                    complaint,
                    actual,
                    simulated,
                });
            }
        }
    }
}
