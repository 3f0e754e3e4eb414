//! Who handles a complaint, and why.
//!
//! [`decide_route`] is a pure function of the complaint's facts, the company's
//! context (climate, stance, budget and fairness counters, the decision time)
//! and a versioned [`RoutingPolicy`]. Its [`Decision`] carries the whole
//! explanation: the score, each factor's contribution, each gate's value and
//! verdict, and why every other route was not taken.

mod brief;
mod decide;
mod policy;
pub mod simulate;

use serde::{Deserialize, Serialize};

pub use decide::{RoutingContext, RoutingFacts, decide_route};
pub use policy::{
    BudgetPolicy, CeoThresholds, MAX_CEO_BUDGET_PER_WINDOW, MAX_COOLDOWN_DAYS, MAX_POINTS,
    MAX_TIERS, MAX_WINDOW_HOURS, PolicyError, PriorityThresholds, RoutingPolicy, Tier, Weights,
};

use crate::sla::Targets;
use crate::time::Timestamp;

/// Who handles a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Route {
    /// The chief executive engages personally.
    Ceo,
    /// Trained customer-service staff; the default.
    Frontline,
    /// The repair / return / replacement / refund pipeline.
    ReverseLogistics,
}

impl Route {
    /// Every route, in a fixed order.
    pub const ALL: [Route; 3] = [Route::Ceo, Route::Frontline, Route::ReverseLogistics];

    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            Route::Ceo => "CEO",
            Route::Frontline => "FRONTLINE",
            Route::ReverseLogistics => "REVERSE_LOGISTICS",
        }
    }
}

/// What reverse logistics does with the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfilmentKind {
    /// Repair and ship back.
    Repair,
    /// Send another item.
    Replace,
    /// Take it back and refund.
    Refund,
}

/// Frontline queue order; `P1` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// Handle first.
    P1,
    /// Handle soon.
    P2,
    /// Normal.
    P3,
    /// When time allows.
    P4,
}

/// The operator's reading of the economic times.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Climate {
    /// Good times: complaint handling matters most, the CEO should engage more.
    Good,
    /// Neither.
    #[default]
    Neutral,
    /// Bad times: complaints go mainly to the frontline.
    Bad,
}

/// Whether the company's stance on social issues matches its customer base.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StanceAlignment {
    /// Aligned: a CEO stance raises satisfaction.
    Aligned,
    /// Misaligned: a CEO stance hurts.
    Misaligned,
    /// Not known; treated as not aligned.
    #[default]
    Unknown,
}

/// One factor's contribution to the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Stable factor name.
    pub factor: String,
    /// What was observed, human readable.
    pub observed: String,
    /// Points added (may be negative).
    pub points: i64,
}

/// The checks a CEO engagement must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GateKind {
    /// The score reaches the threshold of the climate in force.
    Climate,
    /// A social-issue complaint needs an aligned stance.
    Stance,
    /// The customer had no CEO engagement within the cooldown.
    Cooldown,
    /// The customer's segment is under its share of the window's budget.
    SegmentShare,
    /// The window's CEO budget is not used up.
    Budget,
}

/// One gate's value and verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "GateRecord")]
pub struct Gate {
    /// Which gate.
    pub kind: GateKind,
    /// Whether the gate concerns this complaint at all (the stance gate a
    /// social-issue complaint, the cooldown a customer the CEO engaged
    /// before). One that does not passes, and its `observed` means nothing.
    pub applies: bool,
    /// What was measured; 0 when the gate does not apply.
    pub observed: i64,
    /// What it was compared with.
    pub limit: i64,
    /// The verdict.
    pub passed: bool,
    /// One sentence for humans.
    pub note: String,
}

impl Gate {
    /// Whether a gate recorded before gates said so applies: such records
    /// marked a stance gate that does not apply with limit 0, and a cooldown
    /// without an earlier engagement with observed -1.
    pub fn applies_by_old_markers(kind: GateKind, observed: i64, limit: i64) -> bool {
        match kind {
            GateKind::Stance => limit != 0,
            GateKind::Cooldown => observed >= 0,
            GateKind::Climate | GateKind::SegmentShare | GateKind::Budget => true,
        }
    }
}

/// A gate as stored, where `applies` may be missing (written before it existed).
#[derive(Deserialize)]
struct GateRecord {
    kind: GateKind,
    #[serde(default)]
    applies: Option<bool>,
    observed: i64,
    limit: i64,
    passed: bool,
    note: String,
}

impl From<GateRecord> for Gate {
    fn from(r: GateRecord) -> Self {
        let applies = r
            .applies
            .unwrap_or_else(|| Gate::applies_by_old_markers(r.kind, r.observed, r.limit));
        Gate {
            kind: r.kind,
            applies,
            observed: if applies { r.observed } else { 0 },
            limit: r.limit,
            passed: r.passed,
            note: r.note,
        }
    }
}

/// Why a route was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyNot {
    /// The route not taken.
    pub route: Route,
    /// Why.
    pub reason: String,
}

/// A routing decision with its full explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Who handles it.
    pub route: Route,
    /// Item handling, also alongside a CEO engagement.
    pub fulfilment: Option<FulfilmentKind>,
    /// Queue order.
    pub priority: Priority,
    /// Sum of the contributions.
    pub score: i64,
    /// The CEO threshold under the climate in force; `None` when the climate closes the CEO route.
    pub ceo_threshold: Option<i64>,
    /// Every factor, in a fixed order.
    pub contributions: Vec<Contribution>,
    /// Every gate, in a fixed order, each evaluated whatever the others said.
    pub gates: Vec<Gate>,
    /// One entry per route not chosen.
    pub why_not: Vec<WhyNot>,
    /// The policy version in force.
    pub policy_version: u32,
    /// The climate in force.
    pub climate: Climate,
    /// The stance alignment in force.
    pub stance: StanceAlignment,
    /// When the decision was made.
    pub decided_at: Timestamp,
    /// Start of the CEO budget window it counts against.
    pub budget_window_start: Timestamp,
    /// The handler's service-level targets under the policy in force; `None`
    /// in decisions recorded before policies had them.
    #[serde(default)]
    pub sla: Option<Targets>,
}

impl Decision {
    /// The gate of this kind, if it was evaluated.
    pub fn gate(&self, kind: GateKind) -> Option<&Gate> {
        self.gates.iter().find(|g| g.kind == kind)
    }

    /// The first gate that failed, if any.
    pub fn first_failed_gate(&self) -> Option<&Gate> {
        self.gates.iter().find(|g| !g.passed)
    }
}
