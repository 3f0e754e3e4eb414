//! Who handles a complaint under the default policy, as a table of named cases.
//!
//! Each case is one sentence of DOMAIN.md: a complaint and the company's
//! situation, and the route, fulfilment, priority and failed gates expected.
//! Every case also obeys the shape of a decision (see the tests after the
//! table), and the policy itself is validated and round-trips as JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Scenario, a_complaint, now};
use plaint_domain::facts::{Category, Channel, CustomerTier};
use plaint_domain::routing::{
    Climate, Decision, FulfilmentKind, GateKind, MAX_CEO_BUDGET_PER_WINDOW, MAX_POINTS,
    MAX_WINDOW_HOURS, PolicyError, Priority, Route, RoutingPolicy, StanceAlignment, Tier,
};
use plaint_domain::time::{DAY_MS, HOUR_MS, Timestamp};
use plaint_domain::values::{Problem, ValidationError};

// ---------------------------------------------------------------------------
// expectations

/// What a case expects of its decision.
#[derive(Debug, Clone)]
struct Expect {
    route: Route,
    fulfilment: Option<FulfilmentKind>,
    priority: Option<Priority>,
    failed: Vec<GateKind>,
}

/// The decision names this route; no fulfilment and no failed gate unless stated.
fn goes_to(route: Route) -> Expect {
    Expect {
        route,
        fulfilment: None,
        priority: None,
        failed: Vec::new(),
    }
}

impl Expect {
    /// Reverse logistics handles the item this way.
    fn with(mut self, kind: FulfilmentKind) -> Self {
        self.fulfilment = Some(kind);
        self
    }

    /// At this queue priority.
    fn at(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Because this gate failed (gates listed in their fixed order).
    fn because(mut self, gate: GateKind) -> Self {
        self.failed.push(gate);
        self
    }
}

#[track_caller]
fn check(case: &str, scenario: &Scenario, expect: &Expect) {
    let decision = scenario.decide();
    assert_eq!(decision.route, expect.route, "{case}: route");
    assert_eq!(decision.fulfilment, expect.fulfilment, "{case}: fulfilment");
    if let Some(priority) = expect.priority {
        assert_eq!(decision.priority, priority, "{case}: priority");
    }
    let failed: Vec<GateKind> = decision
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| g.kind)
        .collect();
    assert_eq!(failed, expect.failed, "{case}: failed gates");
    if decision.route != Route::Ceo {
        let why_not_ceo = why_not(&decision, Route::Ceo);
        for gate in &expect.failed {
            let mention = format!("{gate:?} gate failed");
            assert!(
                why_not_ceo.contains(&mention),
                "{case}: why not CEO should mention {mention:?}: {why_not_ceo}"
            );
        }
    }
}

fn why_not(decision: &Decision, route: Route) -> &str {
    decision
        .why_not
        .iter()
        .find(|w| w.route == route)
        .map(|w| w.reason.as_str())
        .unwrap_or_else(|| panic!("no why_not for {route:?} in {:?}", decision.why_not))
}

/// Declares the table: one test per named case, plus `every_case()` for the
/// properties every decision shares.
macro_rules! routing_table {
    ($($name:ident: $scenario:expr => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), &$scenario, &$expect);
            }
        )*

        fn every_case() -> Vec<(&'static str, Scenario)> {
            vec![$((stringify!($name), $scenario)),*]
        }
    };
}

// ---------------------------------------------------------------------------
// scenarios used by several cases

/// A public post seen by a million people: 30 + 40 = 70 points.
fn a_public_post_with_a_large_audience() -> Scenario {
    a_complaint().on(Channel::PublicSocial).reaching(1_000_000)
}

/// The article's shoe: a defect posted publicly, shared widely, in the news:
/// 30 + 40 + 20 + 25 = 115 points.
fn a_viral_defect() -> Scenario {
    a_complaint()
        .about(Category::ProductDefect)
        .on(Channel::PublicSocial)
        .reaching(1_000_000)
        .shared(10_000)
        .in_the_media()
}

/// A social-issue post with 30 + 40 + 25 = 95 points before the stance counts
/// (+30 aligned, -30 misaligned), so the score clears the good-times threshold
/// either way and only the stance decides.
fn a_loud_social_issue_post() -> Scenario {
    a_complaint()
        .about(Category::SocialIssue)
        .on(Channel::PublicSocial)
        .reaching(1_000_000)
        .in_the_media()
        .in_climate(Climate::Good)
}

/// A policy under which the CEO never engages in bad times.
fn ceo_closed_in_bad_times() -> RoutingPolicy {
    let mut policy = RoutingPolicy::default();
    policy.ceo_threshold.bad = None;
    policy
}

// ---------------------------------------------------------------------------
// the table

routing_table! {
    // Visibility and climate.
    a_public_complaint_with_a_large_audience_in_good_times_goes_to_the_ceo:
        a_public_post_with_a_large_audience().in_climate(Climate::Good)
        => goes_to(Route::Ceo).at(Priority::P1);
    the_same_complaint_in_bad_times_goes_to_the_frontline:
        a_public_post_with_a_large_audience().in_climate(Climate::Bad)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Climate);
    the_same_complaint_in_neutral_times_goes_to_the_frontline:
        a_public_post_with_a_large_audience().in_climate(Climate::Neutral)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Climate);
    in_bad_times_only_an_extraordinary_complaint_reaches_the_ceo:
        a_viral_defect().with_idea_flag().in_climate(Climate::Bad)
        => goes_to(Route::Ceo).with(FulfilmentKind::Repair).at(Priority::P1);
    a_policy_can_close_the_ceo_route_in_bad_times_entirely:
        a_viral_defect().with_idea_flag().in_climate(Climate::Bad).under(ceo_closed_in_bad_times())
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Repair).because(GateKind::Climate);
    a_quiet_email_goes_to_the_frontline_even_in_good_times:
        a_complaint().in_climate(Climate::Good)
        => goes_to(Route::Frontline).at(Priority::P4).because(GateKind::Climate);
    a_letter_to_the_ceo_alone_does_not_reach_the_ceo:
        a_complaint().on(Channel::LetterToCeo).in_climate(Climate::Good)
        => goes_to(Route::Frontline).at(Priority::P3).because(GateKind::Climate);

    // Reverse logistics.
    a_defective_item_goes_to_reverse_logistics_for_repair:
        a_complaint().about(Category::ProductDefect).on(Channel::Email).reaching(200)
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Repair).at(Priority::P4).because(GateKind::Climate);
    a_repair_request_goes_to_reverse_logistics_for_repair:
        a_complaint().about(Category::RepairRequest)
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Repair).because(GateKind::Climate);
    an_exchange_goes_to_reverse_logistics_for_a_replacement:
        a_complaint().about(Category::Exchange)
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Replace).because(GateKind::Climate);
    a_return_goes_to_reverse_logistics_for_a_refund:
        a_complaint().about(Category::Return)
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Refund).because(GateKind::Climate);
    a_billing_complaint_needs_no_item_handled:
        a_complaint().about(Category::Billing)
        => goes_to(Route::Frontline).because(GateKind::Climate);
    a_viral_defect_in_good_times_goes_to_the_ceo_with_a_repair:
        a_viral_defect().in_climate(Climate::Good)
        => goes_to(Route::Ceo).with(FulfilmentKind::Repair).at(Priority::P1);
    a_viral_defect_in_bad_times_is_repaired_without_the_ceo:
        a_viral_defect().in_climate(Climate::Bad)
        => goes_to(Route::ReverseLogistics).with(FulfilmentKind::Repair).at(Priority::P1).because(GateKind::Climate);

    // Strategic value.
    a_product_idea_in_good_times_reaches_the_ceo:
        a_complaint().about(Category::ProductIdea).in_climate(Climate::Good)
        => goes_to(Route::Ceo).at(Priority::P1);
    an_idea_flag_on_any_complaint_counts_as_a_product_idea:
        a_complaint().with_idea_flag().in_climate(Climate::Good)
        => goes_to(Route::Ceo);
    a_product_idea_in_neutral_times_stays_with_the_frontline:
        a_complaint().about(Category::ProductIdea).in_climate(Climate::Neutral)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Climate);

    // Social stance.
    a_social_issue_with_an_aligned_stance_reaches_the_ceo:
        a_loud_social_issue_post().with_stance(StanceAlignment::Aligned)
        => goes_to(Route::Ceo);
    a_social_issue_with_a_misaligned_stance_does_not_reach_the_ceo:
        a_loud_social_issue_post().with_stance(StanceAlignment::Misaligned)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Stance);
    a_social_issue_with_an_unknown_stance_does_not_reach_the_ceo:
        a_loud_social_issue_post().with_stance(StanceAlignment::Unknown)
        => goes_to(Route::Frontline).because(GateKind::Stance);
    the_stance_does_not_matter_for_other_categories:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).with_stance(StanceAlignment::Misaligned)
        => goes_to(Route::Ceo);

    // Customer value.
    a_valuable_customer_at_risk_weighs_in_the_score:
        a_public_post_with_a_large_audience()
            .tier(CustomerTier::Platinum)
            .lifetime_value_cents(10_000_000)
            .churn_risk_pct(75)
            .in_climate(Climate::Neutral)
        => goes_to(Route::Ceo);

    // Capacity.
    the_last_engagement_of_the_window_budget_is_still_granted:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).budget_used(4)
        => goes_to(Route::Ceo);
    when_the_window_budget_is_used_up_the_ceo_is_not_engaged:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).budget_used(5)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Budget);
    a_policy_with_no_budget_never_engages_the_ceo:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).under(zero_budget())
        => goes_to(Route::Frontline).because(GateKind::Budget);

    // Fairness: cooldown.
    a_customer_engaged_inside_the_cooldown_is_not_upgraded_again:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).last_ceo_days_ago(89)
        => goes_to(Route::Frontline).because(GateKind::Cooldown);
    a_customer_engaged_one_millisecond_short_of_the_cooldown_is_not_upgraded:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).last_ceo_ms_ago(90 * DAY_MS - 1)
        => goes_to(Route::Frontline).because(GateKind::Cooldown);
    a_customer_engaged_exactly_one_cooldown_ago_may_be_upgraded:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).last_ceo_days_ago(90)
        => goes_to(Route::Ceo);
    a_customer_engaged_long_ago_may_be_upgraded:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).last_ceo_days_ago(400)
        => goes_to(Route::Ceo);

    // Fairness: segment share (60% of 5 = 3 a window).
    a_segment_under_its_share_may_take_another_engagement:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).budget_used(2).segment_used(2)
        => goes_to(Route::Ceo);
    a_segment_at_its_share_takes_no_more_engagements:
        a_public_post_with_a_large_audience().in_climate(Climate::Good).budget_used(3).segment_used(3)
        => goes_to(Route::Frontline).because(GateKind::SegmentShare);

    // Every failed gate is reported, not only the first.
    every_failed_gate_is_reported:
        a_loud_social_issue_post()
            .with_stance(StanceAlignment::Misaligned)
            .in_climate(Climate::Bad)
            .last_ceo_days_ago(1)
            .budget_used(5)
            .segment_used(3)
        => goes_to(Route::Frontline)
            .because(GateKind::Climate)
            .because(GateKind::Stance)
            .because(GateKind::Cooldown)
            .because(GateKind::SegmentShare)
            .because(GateKind::Budget);

    // Frontline priorities: P1 from 50, P2 from 30, P3 from 15.
    a_frontline_complaint_scoring_50_is_p1:
        a_complaint().on(Channel::PublicSocial).reaching(10_000)
        => goes_to(Route::Frontline).at(Priority::P1).because(GateKind::Climate);
    a_frontline_complaint_scoring_47_is_p2:
        a_complaint().on(Channel::PublicSocial).reaching(1_000).shared(100).tier(CustomerTier::Silver)
        => goes_to(Route::Frontline).at(Priority::P2).because(GateKind::Climate);
    a_frontline_complaint_scoring_30_is_p2:
        a_complaint().on(Channel::PublicSocial)
        => goes_to(Route::Frontline).at(Priority::P2).because(GateKind::Climate);
    a_frontline_complaint_scoring_27_is_p3:
        a_complaint().on(Channel::LetterToCeo).shared(100).tier(CustomerTier::Silver)
        => goes_to(Route::Frontline).at(Priority::P3).because(GateKind::Climate);
    a_frontline_complaint_scoring_15_is_p3:
        a_complaint().on(Channel::Email).reaching(1_000)
        => goes_to(Route::Frontline).at(Priority::P3).because(GateKind::Climate);
    a_frontline_complaint_scoring_12_is_p4:
        a_complaint().on(Channel::PrivateSocial).tier(CustomerTier::Silver)
        => goes_to(Route::Frontline).at(Priority::P4).because(GateKind::Climate);
    a_frontline_complaint_scoring_0_is_p4:
        a_complaint().on(Channel::WebForm)
        => goes_to(Route::Frontline).at(Priority::P4).because(GateKind::Climate);
}

fn zero_budget() -> RoutingPolicy {
    let mut policy = RoutingPolicy::default();
    policy.budget.per_window = 0;
    policy
}

// ---------------------------------------------------------------------------
// what every decision carries

#[test]
fn the_priority_cases_score_what_their_names_say() {
    for (name, scenario) in every_case() {
        let Some(rest) = name.strip_prefix("a_frontline_complaint_scoring_") else {
            continue;
        };
        let expected: i64 = rest.split('_').next().unwrap().parse().unwrap();
        assert_eq!(scenario.decide().score, expected, "{name}");
    }
}

#[test]
fn every_decisions_contributions_sum_to_its_score() {
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        let sum: i64 = decision.contributions.iter().map(|c| c.points).sum();
        assert_eq!(sum, decision.score, "{name}");
    }
}

#[test]
fn every_decision_lists_the_same_factors_in_a_fixed_order() {
    let factors = [
        "channel",
        "audience_reach",
        "shares",
        "media_attention",
        "product_idea",
        "social_issue",
        "lifetime_value_cents",
        "customer_tier",
        "churn_risk_pct",
    ];
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        let listed: Vec<&str> = decision
            .contributions
            .iter()
            .map(|c| c.factor.as_str())
            .collect();
        assert_eq!(listed, factors, "{name}");
    }
}

#[test]
fn every_decision_evaluates_all_five_gates_in_a_fixed_order() {
    let order = [
        GateKind::Climate,
        GateKind::Stance,
        GateKind::Cooldown,
        GateKind::SegmentShare,
        GateKind::Budget,
    ];
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        let kinds: Vec<GateKind> = decision.gates.iter().map(|g| g.kind).collect();
        assert_eq!(kinds, order, "{name}");
    }
}

#[test]
fn every_decision_explains_exactly_the_two_routes_not_chosen() {
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        let mut explained: Vec<Route> = decision.why_not.iter().map(|w| w.route).collect();
        let mut not_chosen: Vec<Route> = Route::ALL
            .into_iter()
            .filter(|r| *r != decision.route)
            .collect();
        explained.sort();
        not_chosen.sort();
        assert_eq!(explained, not_chosen, "{name}");
        assert_eq!(decision.why_not.len(), 2, "{name}");
        for w in &decision.why_not {
            assert!(
                !w.reason.is_empty(),
                "{name}: why not {:?} is empty",
                w.route
            );
        }
    }
}

#[test]
fn the_ceo_is_chosen_exactly_when_every_gate_passes() {
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        assert_eq!(
            decision.route == Route::Ceo,
            decision.first_failed_gate().is_none(),
            "{name}"
        );
    }
}

#[test]
fn a_ceo_engagement_is_always_first_in_the_queue() {
    for (name, scenario) in every_case() {
        let decision = scenario.decide();
        if decision.route == Route::Ceo {
            assert_eq!(decision.priority, Priority::P1, "{name}");
        }
    }
}

#[test]
fn a_decision_records_the_policy_version_climate_stance_and_time_it_ran_under() {
    let decided_at = Timestamp::from_millis(now().as_millis() + 5 * HOUR_MS + 17);
    let decision = a_public_post_with_a_large_audience()
        .under(RoutingPolicy::default().with_version(7))
        .in_climate(Climate::Good)
        .with_stance(StanceAlignment::Aligned)
        .decided_at(decided_at)
        .decide();
    assert_eq!(decision.policy_version, 7);
    assert_eq!(decision.climate, Climate::Good);
    assert_eq!(decision.stance, StanceAlignment::Aligned);
    assert_eq!(decision.decided_at, decided_at);
    assert_eq!(
        decision.budget_window_start,
        Timestamp::from_millis(decided_at.as_millis().div_euclid(DAY_MS) * DAY_MS),
        "the default window is the UTC day"
    );
}

#[test]
fn a_gate_that_does_not_apply_says_so_in_its_own_field() {
    let plain = a_complaint().about(Category::Billing).decide();
    for kind in [GateKind::Stance, GateKind::Cooldown] {
        let gate = plain.gate(kind).unwrap();
        assert!(!gate.applies, "{gate:?}");
        assert!(gate.passed, "a gate that does not apply holds nothing back");
        assert_eq!(gate.observed, 0, "no sentinel: {gate:?}");
        assert!(gate.note.starts_with("does not apply"), "{gate:?}");
    }
    for kind in [GateKind::Climate, GateKind::SegmentShare, GateKind::Budget] {
        assert!(plain.gate(kind).unwrap().applies, "{kind:?}");
    }

    let social = a_loud_social_issue_post()
        .with_stance(StanceAlignment::Misaligned)
        .last_ceo_days_ago(120)
        .decide();
    let stance = social.gate(GateKind::Stance).unwrap();
    assert!(stance.applies && !stance.passed, "{stance:?}");
    assert_eq!((stance.observed, stance.limit), (0, 1));
    let cooldown = social.gate(GateKind::Cooldown).unwrap();
    assert!(cooldown.applies && cooldown.passed, "{cooldown:?}");
    assert_eq!(cooldown.observed, 120);
}

#[test]
fn gates_stored_before_they_said_so_read_their_old_markers() {
    let old = |kind: &str, observed: i64, limit: i64| {
        let json = format!(
            r#"{{"kind":"{kind}","observed":{observed},"limit":{limit},"passed":true,"note":""}}"#
        );
        serde_json::from_str::<plaint_domain::routing::Gate>(&json).unwrap()
    };
    let cooldown = old("COOLDOWN", -1, 90);
    assert!(!cooldown.applies);
    assert_eq!(cooldown.observed, 0);
    assert!(!old("STANCE", 0, 0).applies);
    assert!(old("STANCE", 1, 1).applies);
    assert!(old("COOLDOWN", 12, 90).applies);
    assert!(old("BUDGET", 0, 5).applies);
}

#[test]
fn a_decision_records_the_threshold_of_the_climate_in_force() {
    let good = a_complaint().in_climate(Climate::Good).decide();
    let neutral = a_complaint().in_climate(Climate::Neutral).decide();
    let bad = a_complaint().in_climate(Climate::Bad).decide();
    assert_eq!(
        (good.ceo_threshold, neutral.ceo_threshold, bad.ceo_threshold),
        (Some(60), Some(80), Some(130))
    );
    let closed = a_complaint()
        .in_climate(Climate::Bad)
        .under(ceo_closed_in_bad_times())
        .decide();
    assert_eq!(closed.ceo_threshold, None);
}

#[test]
fn the_gates_report_what_they_measured_against_what_limit() {
    let decision = a_public_post_with_a_large_audience()
        .in_climate(Climate::Good)
        .budget_used(5)
        .segment_used(1)
        .last_ceo_days_ago(30)
        .decide();
    let observed_and_limit = |kind| {
        let gate = decision.gate(kind).unwrap();
        (gate.observed, gate.limit)
    };
    assert_eq!(observed_and_limit(GateKind::Climate), (70, 60));
    assert_eq!(observed_and_limit(GateKind::Cooldown), (30, 90));
    assert_eq!(observed_and_limit(GateKind::SegmentShare), (1, 3));
    assert_eq!(observed_and_limit(GateKind::Budget), (5, 5));
    assert_eq!(
        decision.first_failed_gate().unwrap().kind,
        GateKind::Cooldown
    );
}

#[test]
fn why_not_ceo_names_every_failed_gate_and_no_passed_one() {
    let decision = a_public_post_with_a_large_audience()
        .in_climate(Climate::Good)
        .budget_used(5)
        .last_ceo_days_ago(10)
        .decide();
    let reason = why_not(&decision, Route::Ceo);
    assert!(reason.contains("Budget gate failed"), "{reason}");
    assert!(reason.contains("Cooldown gate failed"), "{reason}");
    assert!(!reason.contains("Climate gate failed"), "{reason}");
}

#[test]
fn when_the_ceo_engages_with_a_fulfilment_reverse_logistics_is_explained_as_its_helper() {
    let decision = a_viral_defect().in_climate(Climate::Good).decide();
    assert!(
        why_not(&decision, Route::ReverseLogistics).contains("fulfilment"),
        "{:?}",
        decision.why_not
    );
}

// ---------------------------------------------------------------------------
// the policy

#[test]
fn the_default_policy_is_valid() {
    assert_eq!(RoutingPolicy::default().validate(), Ok(()));
    assert_eq!(RoutingPolicy::default().version, 1);
}

#[test]
fn the_default_policy_gives_each_segment_three_of_five_daily_engagements() {
    let policy = RoutingPolicy::default();
    assert_eq!(policy.budget.per_window, 5);
    assert_eq!(policy.segment_cap(), 3);
    assert_eq!(policy.window_ms(), DAY_MS);
}

#[test]
fn a_segment_may_always_take_at_least_one_engagement() {
    let mut policy = RoutingPolicy {
        max_segment_share_pct: 1,
        ..RoutingPolicy::default()
    };
    assert_eq!(policy.segment_cap(), 1);
    policy.max_segment_share_pct = 100;
    assert_eq!(policy.segment_cap(), policy.budget.per_window);
}

#[test]
fn a_policy_round_trips_through_json() {
    let policy = RoutingPolicy::default().with_version(3);
    let parsed = RoutingPolicy::from_json(&policy.to_json()).unwrap();
    assert_eq!(parsed, policy);
}

#[test]
fn a_policy_that_is_not_json_is_a_syntax_error() {
    let error = RoutingPolicy::from_json("{ version: 1").unwrap_err();
    assert!(
        matches!(error, PolicyError::Syntax { format: "JSON", .. }),
        "{error:?}"
    );
}

#[test]
fn a_json_policy_missing_a_field_is_a_syntax_error() {
    let error = RoutingPolicy::from_json(r#"{"version": 1}"#).unwrap_err();
    assert!(matches!(error, PolicyError::Syntax { .. }), "{error:?}");
}

#[test]
fn a_well_formed_json_policy_is_still_validated() {
    let json = RoutingPolicy::default().with_version(0).to_json();
    let error = RoutingPolicy::from_json(&json).unwrap_err();
    assert!(
        matches!(&error, PolicyError::Invalid(ValidationError { field, .. }) if field == "version"),
        "{error:?}"
    );
}

/// The field a broken policy is refused for.
#[track_caller]
fn refused_field(change: impl FnOnce(&mut RoutingPolicy)) -> (String, Problem) {
    let mut policy = RoutingPolicy::default();
    change(&mut policy);
    let error = policy.validate().expect_err("the policy is refused");
    (error.field, error.problem)
}

#[test]
fn a_policy_with_version_0_is_refused() {
    let (field, problem) = refused_field(|p| p.version = 0);
    assert_eq!(field, "version");
    assert!(matches!(problem, Problem::OutOfRange { actual: 0, .. }));
}

#[test]
fn a_policy_with_unsorted_tiers_is_refused() {
    let (field, problem) = refused_field(|p| p.weights.audience_reach.swap(0, 1));
    assert_eq!(field, "weights.audience_reach");
    assert!(matches!(problem, Problem::Malformed { .. }));
}

#[test]
fn a_policy_with_two_tiers_at_the_same_value_is_refused() {
    let (field, _) = refused_field(|p| {
        p.weights.shares = vec![
            Tier {
                at_least: 100,
                points: 5,
            },
            Tier {
                at_least: 100,
                points: 10,
            },
        ];
    });
    assert_eq!(field, "weights.shares");
}

#[test]
fn a_policy_with_points_over_the_maximum_is_refused() {
    let (field, problem) = refused_field(|p| p.weights.media_attention = MAX_POINTS + 1);
    assert_eq!(field, "weights.media_attention");
    assert!(matches!(problem, Problem::OutOfRange { .. }));
    let (field, _) = refused_field(|p| {
        p.weights
            .channel
            .insert(Channel::PublicSocial, MAX_POINTS + 1);
    });
    assert_eq!(field, "weights.channel.PUBLIC_SOCIAL");
    let (field, _) = refused_field(|p| p.weights.churn_risk_pct[1].points = MAX_POINTS + 1);
    assert_eq!(field, "weights.churn_risk_pct[1].points");
}

#[test]
fn a_policy_with_a_budget_over_the_maximum_is_refused() {
    let (field, problem) = refused_field(|p| p.budget.per_window = MAX_CEO_BUDGET_PER_WINDOW + 1);
    assert_eq!(field, "budget.per_window");
    assert!(matches!(problem, Problem::OutOfRange { .. }));
}

#[test]
fn a_policy_with_an_empty_or_overlong_window_is_refused() {
    for hours in [0, MAX_WINDOW_HOURS + 1] {
        let (field, _) = refused_field(|p| p.budget.window_hours = hours);
        assert_eq!(field, "budget.window_hours", "{hours} hours");
    }
}

#[test]
fn a_policy_with_a_segment_share_of_0_or_over_100_percent_is_refused() {
    for pct in [0, 101] {
        let (field, _) = refused_field(|p| p.max_segment_share_pct = pct);
        assert_eq!(field, "max_segment_share_pct", "{pct}%");
    }
}

#[test]
fn a_policy_whose_p2_is_not_below_p1_is_refused() {
    for p2 in [50, 51] {
        let (field, _) = refused_field(|p| p.priority.p2 = p2);
        assert_eq!(field, "priority.p2", "p2 = {p2}");
    }
    let (field, _) = refused_field(|p| p.priority.p3 = p.priority.p2);
    assert_eq!(field, "priority.p3");
}

#[test]
fn a_policy_with_a_negative_ceo_threshold_is_refused() {
    let (field, _) = refused_field(|p| p.ceo_threshold.good = Some(-1));
    assert_eq!(field, "ceo_threshold.good");
}

// ---------------------------------------------------------------------------
// the decision in brief, as a helpdesk ticket shows it

#[test]
fn a_ceo_decision_in_brief_says_the_ceo_engages_and_its_policy() {
    let d = common::decision(Route::Ceo, None);
    let brief = d.in_brief();
    assert!(brief.starts_with("CEO P"), "{brief}");
    assert!(brief.contains("the CEO engages personally"), "{brief}");
    assert!(
        brief.ends_with(&format!("(policy v{})", d.policy_version)),
        "{brief}"
    );
}

#[test]
fn a_frontline_decision_in_brief_names_the_gates_that_held_the_ceo() {
    let scenario = a_complaint()
        .on(Channel::PublicSocial)
        .reaching(1_000_000)
        .in_climate(Climate::Good)
        .budget_used(MAX_CEO_BUDGET_PER_WINDOW);
    let d = scenario.decide();
    assert_eq!(d.route, Route::Frontline);
    let brief = d.in_brief();
    assert!(brief.starts_with("FRONTLINE P"), "{brief}");
    let budget = d.gate(GateKind::Budget).unwrap();
    assert!(!budget.passed);
    assert!(brief.contains(&budget.note), "{brief}");
}

#[test]
fn a_reverse_logistics_decision_in_brief_says_what_happens_to_the_item() {
    let d = common::decision(Route::ReverseLogistics, Some(FulfilmentKind::Replace));
    let brief = d.in_brief();
    assert!(
        brief.starts_with("REVERSE_LOGISTICS P") && brief.contains("replace the item"),
        "{brief}"
    );
}
