//! The versioned routing policy: weights, thresholds and limits, serialisable as
//! JSON or TOML and validated before it can be published.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::{Channel, CustomerTier};
use crate::sla::SlaPolicy;
use crate::values::{Problem, ValidationError};

/// Largest absolute number of points any single weight or tier may give.
pub const MAX_POINTS: i64 = 1_000;
/// Most tiers in one tiered factor.
pub const MAX_TIERS: usize = 16;
/// Largest CEO budget per window.
pub const MAX_CEO_BUDGET_PER_WINDOW: u32 = 10_000;
/// Longest budget window, in hours (31 days).
pub const MAX_WINDOW_HOURS: u32 = 744;
/// Longest cooldown, in days (10 years).
pub const MAX_COOLDOWN_DAYS: u32 = 3_650;
/// Largest CEO threshold.
const MAX_THRESHOLD: i64 = 10 * MAX_POINTS;

/// A step of a tiered factor: values at or above `at_least` score `points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// Lowest value of the tier.
    pub at_least: u64,
    /// Points for the tier.
    pub points: i64,
}

/// Points per factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// Points per channel; a channel not listed scores 0.
    pub channel: BTreeMap<Channel, i64>,
    /// Audience reach tiers (followers), ascending.
    pub audience_reach: Vec<Tier>,
    /// Share-count tiers, ascending.
    pub shares: Vec<Tier>,
    /// Points when media picked the complaint up.
    pub media_attention: i64,
    /// Points for a product idea (category or flag).
    pub product_idea: i64,
    /// Points for a social-issue complaint when the stance is aligned.
    pub social_issue_aligned: i64,
    /// Points for a social-issue complaint when the stance is misaligned.
    pub social_issue_misaligned: i64,
    /// Lifetime value tiers, in cents, ascending.
    pub lifetime_value_cents: Vec<Tier>,
    /// Points per customer tier; a tier not listed scores 0.
    pub customer_tier: BTreeMap<CustomerTier, i64>,
    /// Churn risk tiers, in percent, ascending.
    pub churn_risk_pct: Vec<Tier>,
}

/// The score a complaint needs to reach the CEO, per climate. `None` closes the
/// CEO route in that climate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeoThresholds {
    /// In good times.
    pub good: Option<i64>,
    /// In neutral times.
    pub neutral: Option<i64>,
    /// In bad times.
    pub bad: Option<i64>,
}

/// The hard budget of CEO engagements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetPolicy {
    /// Engagements per window, never exceeded.
    pub per_window: u32,
    /// Window length in hours; windows are aligned to the Unix epoch (UTC).
    pub window_hours: u32,
}

/// Minimum scores for frontline priorities; below `p3` is P4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityThresholds {
    /// Score for P1.
    pub p1: i64,
    /// Score for P2.
    pub p2: i64,
    /// Score for P3.
    pub p3: i64,
}

/// The rules and weights that make a routing decision.
///
/// The default (version 1), in short: public posts, large audiences, shares and
/// media attention raise the score, as do product ideas, an aligned social
/// stance and valuable or at-risk customers. The CEO engages when the score
/// reaches 60 in good times or 80 in neutral times (130 in bad times, which
/// almost nothing reaches), at most 5 times a day, never twice within 90 days
/// for one customer, and no segment takes more than 60% of a day's budget.
/// Defects, repairs, returns and exchanges need the item handled by reverse
/// logistics, alongside the CEO when the CEO engages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPolicy {
    /// Version number; the admin service assigns it on publication.
    pub version: u32,
    /// Points per factor.
    pub weights: Weights,
    /// CEO score thresholds per climate.
    pub ceo_threshold: CeoThresholds,
    /// The CEO budget.
    pub budget: BudgetPolicy,
    /// Days after a CEO engagement during which the same customer is not upgraded again.
    pub cooldown_days: u32,
    /// Largest share of a window's budget one segment may take, in percent.
    pub max_segment_share_pct: u32,
    /// Frontline priority thresholds.
    pub priority: PriorityThresholds,
    /// Service-level targets per route and priority; the defaults where a
    /// policy document leaves them out.
    #[serde(default)]
    pub sla: SlaPolicy,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        let tiers = |t: &[(u64, i64)]| {
            t.iter()
                .map(|&(at_least, points)| Tier { at_least, points })
                .collect()
        };
        Self {
            version: 1,
            weights: Weights {
                channel: BTreeMap::from([
                    (Channel::PublicSocial, 30),
                    (Channel::LetterToCeo, 20),
                    (Channel::PrivateSocial, 10),
                    (Channel::Phone, 5),
                    (Channel::Email, 5),
                    (Channel::Chat, 5),
                    (Channel::Store, 5),
                    (Channel::WebForm, 0),
                ]),
                audience_reach: tiers(&[(1_000, 10), (10_000, 20), (100_000, 30), (1_000_000, 40)]),
                shares: tiers(&[(100, 5), (1_000, 10), (10_000, 20)]),
                media_attention: 25,
                product_idea: 60,
                social_issue_aligned: 30,
                social_issue_misaligned: -30,
                lifetime_value_cents: tiers(&[(1_000_000, 10), (10_000_000, 20)]),
                customer_tier: BTreeMap::from([
                    (CustomerTier::Silver, 2),
                    (CustomerTier::Gold, 5),
                    (CustomerTier::Platinum, 10),
                ]),
                churn_risk_pct: tiers(&[(50, 5), (75, 10)]),
            },
            ceo_threshold: CeoThresholds {
                good: Some(60),
                neutral: Some(80),
                bad: Some(130),
            },
            budget: BudgetPolicy {
                per_window: 5,
                window_hours: 24,
            },
            cooldown_days: 90,
            max_segment_share_pct: 60,
            priority: PriorityThresholds {
                p1: 50,
                p2: 30,
                p3: 15,
            },
            sla: SlaPolicy::default(),
        }
    }
}

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not a policy document.
    #[error("policy is not valid {format}: {message}")]
    Syntax {
        /// JSON or TOML.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A value breaks a limit.
    #[error("policy {0}")]
    Invalid(#[from] ValidationError),
}

impl RoutingPolicy {
    /// Parses and validates a JSON policy.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let policy: Self = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            format: "JSON",
            message: e.to_string(),
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as compact JSON (the form stored in the log).
    pub fn to_json(&self) -> String {
        // Serialising plain structs with string map keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The window length in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::from(self.budget.window_hours) * crate::time::HOUR_MS
    }

    /// The same policy under another version number.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Checks every limit; the error names the field and the limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        range("version", self.version.into(), 1, u32::MAX.into())?;
        let w = &self.weights;
        for (channel, points) in &w.channel {
            points_in_range(&format!("weights.channel.{}", channel.name()), *points)?;
        }
        for (tier, points) in &w.customer_tier {
            points_in_range(&format!("weights.customer_tier.{tier:?}"), *points)?;
        }
        for (field, points) in [
            ("weights.media_attention", w.media_attention),
            ("weights.product_idea", w.product_idea),
            ("weights.social_issue_aligned", w.social_issue_aligned),
            ("weights.social_issue_misaligned", w.social_issue_misaligned),
        ] {
            points_in_range(field, points)?;
        }
        for (field, tiers) in [
            ("weights.audience_reach", &w.audience_reach),
            ("weights.shares", &w.shares),
            ("weights.lifetime_value_cents", &w.lifetime_value_cents),
            ("weights.churn_risk_pct", &w.churn_risk_pct),
        ] {
            validate_tiers(field, tiers)?;
        }
        for (field, threshold) in [
            ("ceo_threshold.good", self.ceo_threshold.good),
            ("ceo_threshold.neutral", self.ceo_threshold.neutral),
            ("ceo_threshold.bad", self.ceo_threshold.bad),
        ] {
            if let Some(t) = threshold {
                range(field, t.into(), 0, MAX_THRESHOLD.into())?;
            }
        }
        range(
            "budget.per_window",
            self.budget.per_window.into(),
            0,
            MAX_CEO_BUDGET_PER_WINDOW.into(),
        )?;
        range(
            "budget.window_hours",
            self.budget.window_hours.into(),
            1,
            MAX_WINDOW_HOURS.into(),
        )?;
        range(
            "cooldown_days",
            self.cooldown_days.into(),
            0,
            MAX_COOLDOWN_DAYS.into(),
        )?;
        range(
            "max_segment_share_pct",
            self.max_segment_share_pct.into(),
            1,
            100,
        )?;
        let p = &self.priority;
        let lowest = i128::from(-MAX_THRESHOLD);
        range("priority.p1", p.p1.into(), lowest, MAX_THRESHOLD.into())?;
        range("priority.p2", p.p2.into(), lowest, i128::from(p.p1) - 1)?;
        range("priority.p3", p.p3.into(), lowest, i128::from(p.p2) - 1)?;
        self.sla.validate()
    }

    /// Slots one segment may take in a window: the share of the budget, at least one.
    pub fn segment_cap(&self) -> u32 {
        let share = u64::from(self.budget.per_window) * u64::from(self.max_segment_share_pct) / 100;
        u32::try_from(share).unwrap_or(u32::MAX).max(1)
    }
}

fn range(field: &str, actual: i128, min: i128, max: i128) -> Result<(), ValidationError> {
    if actual < min || actual > max {
        return Err(ValidationError::new(
            field,
            Problem::OutOfRange { min, max, actual },
        ));
    }
    Ok(())
}

fn points_in_range(field: &str, points: i64) -> Result<(), ValidationError> {
    range(
        field,
        points.into(),
        (-MAX_POINTS).into(),
        MAX_POINTS.into(),
    )
}

fn validate_tiers(field: &str, tiers: &[Tier]) -> Result<(), ValidationError> {
    if tiers.len() > MAX_TIERS {
        return Err(ValidationError::new(
            field,
            Problem::TooLong {
                max: MAX_TIERS,
                actual: tiers.len(),
            },
        ));
    }
    for (i, tier) in tiers.iter().enumerate() {
        points_in_range(&format!("{field}[{i}].points"), tier.points)?;
    }
    if tiers.windows(2).any(|w| w[0].at_least >= w[1].at_least) {
        return Err(ValidationError::new(
            field,
            Problem::Malformed {
                expected: "tiers in strictly ascending order of at_least",
            },
        ));
    }
    Ok(())
}

/// Points of the highest tier at or below `value`, or 0.
pub(crate) fn tier_points(tiers: &[Tier], value: u64) -> i64 {
    tiers
        .iter()
        .rev()
        .find(|t| value >= t.at_least)
        .map_or(0, |t| t.points)
}
