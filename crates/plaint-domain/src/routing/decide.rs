//! `decide_route`: score the complaint, check every gate, pick the route.

use super::policy::tier_points;
use super::{
    Climate, Contribution, Decision, FulfilmentKind, Gate, GateKind, Priority, Route,
    RoutingPolicy, StanceAlignment, WhyNot,
};
use crate::facts::{Category, Channel, ComplaintFacts, Customer, Visibility};
use crate::time::{DAY_MS, Timestamp};

/// The complaint-side inputs of a decision.
#[derive(Debug, Clone, Copy)]
pub struct RoutingFacts<'a> {
    /// Where the customer complained.
    pub channel: Channel,
    /// What about.
    pub category: Category,
    /// The customer flagged a product idea.
    pub product_idea: bool,
    /// How visible the complaint is now.
    pub visibility: Visibility,
    /// Who complained.
    pub customer: &'a Customer,
}

impl<'a> RoutingFacts<'a> {
    /// The inputs of a complaint whose visibility is now `visibility`.
    pub fn of(facts: &'a ComplaintFacts, visibility: Visibility) -> Self {
        Self {
            channel: facts.channel,
            category: facts.category,
            product_idea: facts.product_idea,
            visibility,
            customer: &facts.customer,
        }
    }
}

/// The company-side inputs of a decision, all read from the log by the caller.
#[derive(Debug, Clone, Copy)]
pub struct RoutingContext<'a> {
    /// The policy in force.
    pub policy: &'a RoutingPolicy,
    /// The climate in force.
    pub climate: Climate,
    /// The stance alignment in force.
    pub stance: StanceAlignment,
    /// CEO engagements already taken in the window that contains `now`.
    pub budget_used: u32,
    /// Of those, how many went to this customer's segment.
    pub segment_used: u32,
    /// This customer's last CEO engagement, if any.
    pub customer_last_ceo: Option<Timestamp>,
    /// When the decision is made.
    pub now: Timestamp,
}

/// Decides who handles a complaint, and explains why.
///
/// Deterministic: the same facts and context give the same decision, bit for bit.
pub fn decide_route(facts: &RoutingFacts<'_>, ctx: &RoutingContext<'_>) -> Decision {
    let policy = ctx.policy;
    let contributions = contributions(facts, ctx);
    let score: i64 = contributions.iter().map(|c| c.points).sum();
    let ceo_threshold = match ctx.climate {
        Climate::Good => policy.ceo_threshold.good,
        Climate::Neutral => policy.ceo_threshold.neutral,
        Climate::Bad => policy.ceo_threshold.bad,
    };
    let gates = gates(facts, ctx, score, ceo_threshold);
    let fulfilment = fulfilment_for(facts.category);
    let ceo = gates.iter().all(|g| g.passed);
    let route = match (ceo, fulfilment) {
        (true, _) => Route::Ceo,
        (false, Some(_)) => Route::ReverseLogistics,
        (false, None) => Route::Frontline,
    };
    let priority = if route == Route::Ceo {
        Priority::P1
    } else {
        priority_for(policy, score)
    };
    let why_not = why_not(route, fulfilment, &gates);
    Decision {
        route,
        fulfilment,
        priority,
        score,
        ceo_threshold,
        contributions,
        gates,
        why_not,
        policy_version: policy.version,
        climate: ctx.climate,
        stance: ctx.stance,
        decided_at: ctx.now,
        budget_window_start: ctx.now.window_start(policy.window_ms()),
        sla: Some(policy.sla.targets(route, priority)),
    }
}

fn contribution(factor: &str, observed: impl ToString, points: i64) -> Contribution {
    Contribution {
        factor: factor.to_owned(),
        observed: observed.to_string(),
        points,
    }
}

fn contributions(facts: &RoutingFacts<'_>, ctx: &RoutingContext<'_>) -> Vec<Contribution> {
    let w = &ctx.policy.weights;
    let v = facts.visibility;
    let c = facts.customer;
    let idea = facts.product_idea || facts.category == Category::ProductIdea;
    let social_points = match (facts.category, ctx.stance) {
        (Category::SocialIssue, StanceAlignment::Aligned) => w.social_issue_aligned,
        (Category::SocialIssue, StanceAlignment::Misaligned) => w.social_issue_misaligned,
        _ => 0,
    };
    let social_observed = if facts.category == Category::SocialIssue {
        format!("SOCIAL_ISSUE, stance {:?}", ctx.stance).to_uppercase()
    } else {
        "not a social issue".to_owned()
    };
    vec![
        contribution(
            "channel",
            facts.channel.name(),
            w.channel.get(&facts.channel).copied().unwrap_or(0),
        ),
        contribution(
            "audience_reach",
            v.audience_reach.get(),
            tier_points(&w.audience_reach, v.audience_reach.get()),
        ),
        contribution(
            "shares",
            v.shares.get(),
            tier_points(&w.shares, v.shares.get()),
        ),
        contribution(
            "media_attention",
            v.media_attention,
            if v.media_attention {
                w.media_attention
            } else {
                0
            },
        ),
        contribution("product_idea", idea, if idea { w.product_idea } else { 0 }),
        contribution("social_issue", social_observed, social_points),
        contribution(
            "lifetime_value_cents",
            c.lifetime_value.cents(),
            tier_points(
                &w.lifetime_value_cents,
                u64::try_from(c.lifetime_value.cents()).unwrap_or(0),
            ),
        ),
        contribution(
            "customer_tier",
            format!("{:?}", c.tier).to_uppercase(),
            w.customer_tier.get(&c.tier).copied().unwrap_or(0),
        ),
        contribution(
            "churn_risk_pct",
            c.churn_risk.pct(),
            tier_points(&w.churn_risk_pct, c.churn_risk.pct().into()),
        ),
    ]
}

fn gates(
    facts: &RoutingFacts<'_>,
    ctx: &RoutingContext<'_>,
    score: i64,
    ceo_threshold: Option<i64>,
) -> Vec<Gate> {
    let policy = ctx.policy;
    let climate_name = format!("{:?}", ctx.climate).to_uppercase();
    let climate = match ceo_threshold {
        Some(limit) => Gate {
            kind: GateKind::Climate,
            applies: true,
            observed: score,
            limit,
            passed: score >= limit,
            note: format!("score {score} against the {climate_name} climate threshold {limit}"),
        },
        None => Gate {
            kind: GateKind::Climate,
            applies: true,
            observed: score,
            limit: i64::MAX,
            passed: false,
            note: format!("the policy closes the CEO route in a {climate_name} climate"),
        },
    };

    let stance = if facts.category == Category::SocialIssue {
        let aligned = ctx.stance == StanceAlignment::Aligned;
        Gate {
            kind: GateKind::Stance,
            applies: true,
            observed: i64::from(aligned),
            limit: 1,
            passed: aligned,
            note: format!(
                "social-issue complaint; the company's stance is {:?}",
                ctx.stance
            )
            .to_lowercase(),
        }
    } else {
        Gate {
            kind: GateKind::Stance,
            applies: false,
            observed: 0,
            limit: 1,
            passed: true,
            note: "does not apply: not a social-issue complaint".to_owned(),
        }
    };

    let cooldown_ms = i64::from(policy.cooldown_days) * DAY_MS;
    let limit_days = i64::from(policy.cooldown_days);
    let cooldown = match ctx.customer_last_ceo {
        Some(last) => {
            let since = ctx.now.as_millis().saturating_sub(last.as_millis());
            let passed = since >= cooldown_ms;
            Gate {
                kind: GateKind::Cooldown,
                applies: true,
                observed: since.div_euclid(DAY_MS),
                limit: limit_days,
                passed,
                note: if passed {
                    format!("last CEO engagement {} days ago", since.div_euclid(DAY_MS))
                } else {
                    format!(
                        "customer had a CEO engagement {} days ago, inside the {limit_days}-day cooldown",
                        since.div_euclid(DAY_MS)
                    )
                },
            }
        }
        None => Gate {
            kind: GateKind::Cooldown,
            applies: false,
            observed: 0,
            limit: limit_days,
            passed: true,
            note: "does not apply: no earlier CEO engagement".to_owned(),
        },
    };

    let cap = policy.segment_cap();
    let segment = Gate {
        kind: GateKind::SegmentShare,
        applies: true,
        observed: ctx.segment_used.into(),
        limit: cap.into(),
        passed: ctx.segment_used < cap,
        note: format!(
            "segment {} has {} of its {cap} CEO engagements this window ({}% of the budget)",
            facts.customer.segment, ctx.segment_used, policy.max_segment_share_pct
        ),
    };

    let per_window = policy.budget.per_window;
    let budget = Gate {
        kind: GateKind::Budget,
        applies: true,
        observed: ctx.budget_used.into(),
        limit: per_window.into(),
        passed: ctx.budget_used < per_window,
        note: if ctx.budget_used < per_window {
            format!(
                "{} of {per_window} CEO engagements used this window",
                ctx.budget_used
            )
        } else {
            format!(
                "CEO budget used up: {} of {per_window} this window",
                ctx.budget_used
            )
        },
    };

    vec![climate, stance, cooldown, segment, budget]
}

/// The item handling a category needs, if any.
pub(crate) fn fulfilment_for(category: Category) -> Option<FulfilmentKind> {
    match category {
        Category::ProductDefect | Category::RepairRequest => Some(FulfilmentKind::Repair),
        Category::Exchange => Some(FulfilmentKind::Replace),
        Category::Return => Some(FulfilmentKind::Refund),
        _ => None,
    }
}

fn priority_for(policy: &RoutingPolicy, score: i64) -> Priority {
    let p = &policy.priority;
    if score >= p.p1 {
        Priority::P1
    } else if score >= p.p2 {
        Priority::P2
    } else if score >= p.p3 {
        Priority::P3
    } else {
        Priority::P4
    }
}

fn why_not(route: Route, fulfilment: Option<FulfilmentKind>, gates: &[Gate]) -> Vec<WhyNot> {
    let failed: Vec<String> = gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{:?} gate failed: {}", g.kind, g.note))
        .collect();
    Route::ALL
        .iter()
        .filter(|r| **r != route)
        .map(|&r| WhyNot {
            route: r,
            reason: match r {
                Route::Ceo => failed.join("; "),
                Route::ReverseLogistics if route == Route::Ceo && fulfilment.is_some() => {
                    "the CEO engages; reverse logistics handles the item as fulfilment".to_owned()
                }
                Route::ReverseLogistics => "no physical item needs handling".to_owned(),
                Route::Frontline if route == Route::Ceo => "the CEO engages personally".to_owned(),
                Route::Frontline => "the item itself must be handled".to_owned(),
            },
        })
        .collect()
}
