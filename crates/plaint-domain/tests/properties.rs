//! Properties that hold for every input, checked on generated ones.
//!
//! - routing is deterministic;
//! - a router that feeds its own CEO decisions back as the budget, segment and
//!   cooldown counters never exceeds the budget, a segment's share or a
//!   customer's cooldown;
//! - whatever commands arrive, the events `decide` accepts always apply, and
//!   replaying them from scratch gives the same complaint;
//! - goodwill figures stay in range and tallies merge associatively.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{Scenario, a_complaint, customer, decision, label, now, satisfaction, text};
use plaint_domain::event::ItemOutcome;
use plaint_domain::facts::{Category, Channel, ComplaintFacts, Customer, CustomerTier, Visibility};
use plaint_domain::goodwill::{GoodwillTally, ResolvedComplaint, goodwill};
use plaint_domain::lifecycle::FulfilmentStep;
use plaint_domain::routing::{Climate, FulfilmentKind, Route, RoutingPolicy, StanceAlignment};
use plaint_domain::time::{DAY_MS, HOUR_MS, Timestamp};
use plaint_domain::values::{
    ChurnRisk, ExternalTicketId, MAX_MONEY_CENTS, MAX_REACH, Money, Reach, Segment,
};
use plaint_domain::{Command, Complaint, ComplaintEvent, Status, apply, decide};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------
// strategies

/// A count, often near a default tier boundary, sometimes anywhere up to the limit.
fn a_reach() -> impl Strategy<Value = Reach> {
    prop_oneof![
        3 => select(vec![0_u64, 99, 100, 999, 1_000, 9_999, 10_000, 99_999, 100_000, 999_999, 1_000_000]),
        1 => 0..=MAX_REACH,
    ]
    .prop_map(|n| Reach::parse(n).unwrap())
}

fn a_visibility() -> impl Strategy<Value = Visibility> {
    (a_reach(), a_reach(), any::<bool>()).prop_map(|(audience_reach, shares, media_attention)| {
        Visibility {
            audience_reach,
            shares,
            media_attention,
        }
    })
}

fn a_tier() -> impl Strategy<Value = CustomerTier> {
    select(vec![
        CustomerTier::Standard,
        CustomerTier::Silver,
        CustomerTier::Gold,
        CustomerTier::Platinum,
    ])
}

/// A customer from a small pool, so that cooldowns and segment shares bite.
fn a_customer() -> impl Strategy<Value = Customer> {
    (
        0..6_u32,
        select(vec!["retail", "business", "vip"]),
        a_tier(),
        prop_oneof![
            select(vec![0_i64, 999_999, 1_000_000, 10_000_000]),
            0..=MAX_MONEY_CENTS
        ],
        0..=100_u32,
    )
        .prop_map(|(n, segment, tier, cents, churn)| Customer {
            tier,
            lifetime_value: Money::parse(cents).unwrap(),
            churn_risk: ChurnRisk::parse(churn).unwrap(),
            ..customer(&format!("cust-{n}"), segment)
        })
}

fn a_channel() -> impl Strategy<Value = Channel> {
    select(Channel::ALL.to_vec())
}

fn a_category() -> impl Strategy<Value = Category> {
    select(Category::ALL.to_vec())
}

fn complaint_facts() -> impl Strategy<Value = ComplaintFacts> {
    (
        "[A-Za-z0-9-]{1,12}",
        a_customer(),
        a_channel(),
        a_category(),
        a_visibility(),
        any::<bool>(),
    )
        .prop_map(
            |(ticket, customer, channel, category, visibility, idea)| ComplaintFacts {
                external_ticket_id: ExternalTicketId::parse(&ticket).unwrap(),
                customer,
                channel,
                category,
                visibility,
                product_idea: idea,
                ..a_complaint().facts
            },
        )
}

fn a_climate() -> impl Strategy<Value = Climate> {
    select(vec![Climate::Good, Climate::Neutral, Climate::Bad])
}

fn a_stance() -> impl Strategy<Value = StanceAlignment> {
    select(vec![
        StanceAlignment::Aligned,
        StanceAlignment::Misaligned,
        StanceAlignment::Unknown,
    ])
}

/// A valid policy: the default with its budget, fairness and thresholds varied.
fn a_policy() -> impl Strategy<Value = RoutingPolicy> {
    (
        1..=u32::MAX,
        0..=12_u32,
        1..=100_u32,
        0..=120_u32,
        prop::option::weighted(0.9, 0..=150_i64),
    )
        .prop_map(|(version, per_window, share, cooldown_days, good)| {
            let mut policy = RoutingPolicy::default().with_version(version);
            policy.budget.per_window = per_window;
            policy.max_segment_share_pct = share;
            policy.cooldown_days = cooldown_days;
            policy.ceo_threshold.good = good;
            policy
        })
}

/// A complaint and any company situation it might be routed in.
fn a_scenario() -> impl Strategy<Value = Scenario> {
    (
        complaint_facts(),
        a_policy(),
        a_climate(),
        a_stance(),
        0..=15_u32,
        0..=15_u32,
        prop::option::of(0..=400 * DAY_MS),
        0..=30 * DAY_MS,
    )
        .prop_map(
            |(facts, policy, climate, stance, budget_used, segment_used, ago, later)| {
                let at = now().plus_millis(later);
                Scenario {
                    facts,
                    policy,
                    climate,
                    stance,
                    budget_used,
                    segment_used,
                    customer_last_ceo: ago.map(|ms| at.plus_millis(-ms)),
                    now: at,
                }
            },
        )
}

// ---------------------------------------------------------------------------
// (a) routing is deterministic

proptest! {
    #[test]
    fn the_same_inputs_always_give_the_same_decision(scenario in a_scenario()) {
        let first = scenario.decide();
        let second = scenario.clone().decide();
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&second).unwrap()
        );
    }

    #[test]
    fn every_decision_explains_itself_consistently(scenario in a_scenario()) {
        let decision = scenario.decide();
        let sum: i64 = decision.contributions.iter().map(|c| c.points).sum();
        prop_assert_eq!(sum, decision.score);
        prop_assert_eq!(decision.gates.len(), 5);
        prop_assert_eq!(decision.why_not.len(), 2);
        prop_assert!(decision.why_not.iter().all(|w| w.route != decision.route));
        prop_assert_eq!(decision.route == Route::Ceo, decision.first_failed_gate().is_none());
        prop_assert_eq!(decision.policy_version, scenario.policy.version);
        prop_assert_eq!(decision.decided_at, scenario.now);
        prop_assert!(decision.budget_window_start <= decision.decided_at);
    }

    #[test]
    fn a_decision_survives_a_json_round_trip(scenario in a_scenario()) {
        let decision = scenario.decide();
        let json = serde_json::to_string(&decision).unwrap();
        prop_assert_eq!(serde_json::from_str::<plaint_domain::Decision>(&json).unwrap(), decision);
    }
}

// ---------------------------------------------------------------------------
// (b) budget, segment share and cooldown hold when the router feeds back its own decisions

/// A stream of complaints arriving within one budget window, possibly from
/// customers engaged by the CEO before the window began.
#[derive(Debug, Clone)]
struct Window {
    policy: RoutingPolicy,
    climate: Climate,
    stance: StanceAlignment,
    /// Complaints and their arrival, in ms after the window's start, in order.
    arrivals: Vec<(ComplaintFacts, i64)>,
    /// Customers engaged before the window, and how long before its start.
    earlier: BTreeMap<String, i64>,
}

fn a_window_of_complaints() -> impl Strategy<Value = Window> {
    (
        a_policy(),
        a_climate(),
        a_stance(),
        prop::collection::vec((complaint_facts(), 0..24 * HOUR_MS), 0..60),
        prop::collection::btree_map(
            (0..6_u32).prop_map(|n| format!("cust-{n}")),
            1..=200 * DAY_MS,
            0..4,
        ),
    )
        .prop_map(|(policy, climate, stance, mut arrivals, earlier)| {
            arrivals.sort_by_key(|(_, offset)| *offset);
            Window {
                policy,
                climate,
                stance,
                arrivals,
                earlier,
            }
        })
}

/// The start of a UTC day, so that the default 24-hour window holds it all.
fn window_start() -> Timestamp {
    now().window_start(DAY_MS)
}

proptest! {
    #[test]
    fn a_router_counting_its_own_ceo_decisions_keeps_every_limit(
        window in a_window_of_complaints(),
    ) {
        let Window { policy, climate, stance, arrivals, earlier } = window;
        prop_assert_eq!(policy.window_ms(), DAY_MS);
        let start = window_start();
        // What the router reads from the log before each decision.
        let mut used = 0_u32;
        let mut by_segment: BTreeMap<Segment, u32> = BTreeMap::new();
        let mut last_ceo: BTreeMap<String, Timestamp> = earlier
            .iter()
            .map(|(id, ago)| (id.clone(), start.plus_millis(-ago)))
            .collect();
        // Every CEO engagement, for the checks.
        let mut engagements: Vec<(String, Timestamp)> = last_ceo
            .iter()
            .map(|(id, at)| (id.clone(), *at))
            .collect();

        for (facts, offset) in arrivals {
            let at = start.plus_millis(offset);
            let customer_id = facts.customer.id.as_str().to_owned();
            let segment = facts.customer.segment.clone();
            let scenario = Scenario {
                policy: policy.clone(),
                climate,
                stance,
                budget_used: used,
                segment_used: by_segment.get(&segment).copied().unwrap_or(0),
                customer_last_ceo: last_ceo.get(&customer_id).copied(),
                now: at,
                facts,
            };
            let decision = scenario.decide();
            prop_assert_eq!(decision.budget_window_start, start);
            if decision.route == Route::Ceo {
                used += 1;
                *by_segment.entry(segment).or_default() += 1;
                last_ceo.insert(customer_id.clone(), at);
                engagements.push((customer_id, at));
            }
        }

        prop_assert!(used <= policy.budget.per_window, "{} engagements, budget {}", used, policy.budget.per_window);
        for (segment, count) in &by_segment {
            prop_assert!(*count <= policy.segment_cap(), "segment {} took {}, cap {}", segment, count, policy.segment_cap());
        }
        let cooldown_ms = i64::from(policy.cooldown_days) * DAY_MS;
        engagements.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for pair in engagements.windows(2) {
            if pair[0].0 == pair[1].0 {
                let gap = pair[1].1.as_millis() - pair[0].1.as_millis();
                prop_assert!(gap >= cooldown_ms, "customer {} engaged twice {} ms apart", pair[0].0, gap);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (c) decide and apply agree, whatever commands arrive

fn a_decision() -> impl Strategy<Value = plaint_domain::Decision> {
    select(vec![
        (Route::Frontline, None),
        (Route::Ceo, None),
        (Route::Ceo, Some(FulfilmentKind::Repair)),
        (Route::ReverseLogistics, Some(FulfilmentKind::Repair)),
        (Route::ReverseLogistics, Some(FulfilmentKind::Replace)),
        (Route::ReverseLogistics, Some(FulfilmentKind::Refund)),
    ])
    .prop_map(|(route, fulfilment)| decision(route, fulfilment))
}

fn an_outcome() -> impl Strategy<Value = ItemOutcome> {
    select(vec![
        ItemOutcome::Repaired,
        ItemOutcome::Replaced,
        ItemOutcome::Refunded,
    ])
}

/// Any command, legal or not; withdrawal is rare so that histories grow long.
fn a_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => complaint_facts().prop_map(|f| Command::Submit(Box::new(f))),
        6 => a_decision().prop_map(|d| Command::RecordDecision(Box::new(d))),
        2 => a_visibility().prop_map(Command::ChangeVisibility),
        4 => Just(Command::Acknowledge { by: label("alice") }),
        4 => select(vec!["bob", "carol"]).prop_map(|who| Command::Assign { assignee: label(who) }),
        2 => Just(Command::RecordFollowUp { text: text("any news?") }),
        6 => Just(Command::AuthorizeReturn { rma: label("RMA-1") }),
        6 => Just(Command::ReceiveItem),
        6 => an_outcome().prop_map(|outcome| Command::ProcessItem { outcome }),
        6 => Just(Command::ShipBack { tracking: label("1Z999") }),
        6 => (1..=10_u32).prop_map(|s| Command::Resolve { satisfaction: satisfaction(s), note: text("done") }),
        4 => Just(Command::Reopen { reason: text("again") }),
        1 => Just(Command::Withdraw { reason: text("bye") }),
    ]
}

/// A few commands that may come before the complaint exists, its submission,
/// then anything.
fn a_command_sequence() -> impl Strategy<Value = Vec<Command>> {
    (
        prop::collection::vec(a_command(), 0..3),
        complaint_facts(),
        prop::collection::vec(a_command(), 0..40),
    )
        .prop_map(|(before, facts, after)| {
            let mut commands = before;
            commands.push(Command::Submit(Box::new(facts)));
            commands.extend(after);
            commands
        })
}

/// Replays events from scratch, one minute apart as they were first applied.
fn replay_all(events: &[ComplaintEvent]) -> Option<Complaint> {
    let id = a_complaint().id();
    let mut state = None;
    for (i, event) in (0_i64..).zip(events) {
        state = Some(apply(state, id, event, now().plus_millis(i * 60_000)).unwrap());
    }
    state
}

proptest! {
    #[test]
    fn the_events_decide_accepts_always_apply_and_replay_to_the_same_complaint(
        commands in a_command_sequence(),
    ) {
        let id = a_complaint().id();
        let mut state: Option<Complaint> = None;
        let mut log: Vec<ComplaintEvent> = Vec::new();

        for command in &commands {
            let before = state.clone();
            let answer = decide(state.as_ref(), command);
            prop_assert_eq!(&answer, &decide(state.as_ref(), command), "decide is pure");
            let Ok(events) = answer else {
                continue;
            };
            if let Some(b) = &before {
                prop_assert_ne!(b.status, Status::Withdrawn, "nothing follows a withdrawal");
            }
            for event in events {
                let at = now().plus_millis(i64::try_from(log.len()).unwrap() * 60_000);
                let next = apply(state.take(), id, &event, at);
                prop_assert!(next.is_ok(), "{:?} did not apply: {:?}", event, next);
                state = next.ok();
                log.push(event);
            }
            let (Some(b), Some(after)) = (&before, &state) else {
                continue;
            };
            // Item handling only moves forward.
            if let (Some(f0), Some(f1)) = (b.fulfilment, after.fulfilment) {
                prop_assert!(f0.step <= f1.step, "{:?} went back to {:?}", f0.step, f1.step);
            }
        }

        prop_assert_eq!(replay_all(&log), state.clone());
        if let Some(complaint) = &state {
            prop_assert_eq!(complaint.version, u64::try_from(log.len()).unwrap());
            prop_assert!(matches!(log.first(), Some(ComplaintEvent::Received(_))));
            prop_assert_eq!(log.iter().filter(|e| matches!(e, ComplaintEvent::Received(_))).count(), 1);
            if complaint.status == Status::Resolved {
                prop_assert!(complaint.fulfilment.is_none_or(|f| f.is_complete()));
                prop_assert!(complaint.satisfaction.is_some());
            }
            if let Some(f) = complaint.fulfilment {
                prop_assert!(complaint.decision.is_some());
                if f.step == FulfilmentStep::Refunded {
                    prop_assert_eq!(f.outcome, Some(ItemOutcome::Refunded));
                }
            }
        } else {
            prop_assert!(log.is_empty());
        }
    }

    #[test]
    fn every_event_survives_the_log_as_json(
        commands in a_command_sequence(),
    ) {
        let id = a_complaint().id();
        let mut state = None;
        let mut log = Vec::new();
        for command in &commands {
            if let Ok(events) = decide(state.as_ref(), command) {
                for event in events {
                    state = Some(apply(state.take(), id, &event, now()).unwrap());
                    log.push(event);
                }
            }
        }
        let json = serde_json::to_string(&log).unwrap();
        prop_assert_eq!(serde_json::from_str::<Vec<ComplaintEvent>>(&json).unwrap(), log);
    }
}

// ---------------------------------------------------------------------------
// (d) goodwill

fn resolved_complaints() -> impl Strategy<Value = Vec<ResolvedComplaint>> {
    prop::collection::vec(
        (
            select(Route::ALL.to_vec()),
            a_channel(),
            0..60 * DAY_MS,
            1..=10_u32,
        )
            .prop_map(|(route, channel, later, score)| ResolvedComplaint {
                route,
                channel,
                resolved_at: now().plus_millis(later),
                satisfaction: satisfaction(score),
            }),
        0..100,
    )
}

fn tally(items: &[ResolvedComplaint]) -> GoodwillTally {
    let mut t = GoodwillTally::default();
    for item in items {
        t.add(item.satisfaction);
    }
    t
}

proptest! {
    #[test]
    fn goodwill_figures_stay_in_range(items in resolved_complaints()) {
        let figures = goodwill(&items);
        prop_assert_eq!(figures.resolved, u64::try_from(items.len()).unwrap());
        prop_assert!((0.0..=1.0).contains(&figures.recovered_share));
        if figures.resolved > 0 {
            prop_assert!((1.0..=10.0).contains(&figures.mean_satisfaction));
        } else {
            prop_assert_eq!(figures.mean_satisfaction, 0.0);
        }
    }

    #[test]
    fn goodwill_tallies_merge_to_the_tally_of_the_whole(
        items in resolved_complaints(),
        cut in any::<prop::sample::Index>(),
        cut2 in any::<prop::sample::Index>(),
    ) {
        let (a, rest) = items.split_at(cut.index(items.len() + 1));
        let (b, c) = rest.split_at(cut2.index(rest.len() + 1));
        let (ta, tb, tc) = (tally(a), tally(b), tally(c));

        let mut left = ta;
        left.merge(tb);
        left.merge(tc);
        let mut bc = tb;
        bc.merge(tc);
        let mut right = ta;
        right.merge(bc);

        prop_assert_eq!(left, right, "merging is associative");
        prop_assert_eq!(left, tally(&items), "merging the parts gives the whole");
        let mut with_empty = ta;
        with_empty.merge(GoodwillTally::default());
        prop_assert_eq!(with_empty, ta, "the empty tally changes nothing");
    }
}
