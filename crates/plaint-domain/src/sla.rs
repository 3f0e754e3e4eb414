//! Service levels: how long each route and priority may take to acknowledge
//! and to resolve a complaint, and when a target counts as missed.
//!
//! A target's clock starts when the decision in force is made (a re-routing
//! restarts it for the new handler) and, for resolution, again when a
//! complaint is reopened. Acknowledging (or assigning) meets the first
//! target, resolving or withdrawing meets both. A clock that runs past its
//! due time breaches once; the breach is a fact in the log like any other.

use serde::{Deserialize, Serialize};

use crate::routing::{Priority, Route};
use crate::time::Timestamp;
use crate::values::{Problem, ValidationError};

/// The longest target, in seconds (one year).
pub const MAX_TARGET_SECS: u32 = 366 * 24 * 3600;

const HOUR: u32 = 3600;

/// Which service-level target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaTarget {
    /// The handler confirms receipt (acknowledges or assigns it).
    Acknowledge,
    /// The complaint is resolved (or withdrawn).
    Resolve,
}

impl SlaTarget {
    /// Both targets, in a fixed order.
    pub const ALL: [SlaTarget; 2] = [SlaTarget::Acknowledge, SlaTarget::Resolve];

    /// The stable name used on the wire and in projections.
    pub const fn name(self) -> &'static str {
        match self {
            SlaTarget::Acknowledge => "ACKNOWLEDGE",
            SlaTarget::Resolve => "RESOLVE",
        }
    }

    /// The lower-case token used in subjects and timer keys.
    pub const fn token(self) -> &'static str {
        match self {
            SlaTarget::Acknowledge => "acknowledge",
            SlaTarget::Resolve => "resolve",
        }
    }
}

/// The time one handler has, in seconds, from the start of each clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Time to acknowledge.
    pub acknowledge_secs: u32,
    /// Time to resolve.
    pub resolve_secs: u32,
}

impl Targets {
    const fn hours(acknowledge: u32, resolve: u32) -> Self {
        Self {
            acknowledge_secs: acknowledge * HOUR,
            resolve_secs: resolve * HOUR,
        }
    }

    /// The time allowed for `target`, in seconds.
    pub const fn secs(&self, target: SlaTarget) -> u32 {
        match target {
            SlaTarget::Acknowledge => self.acknowledge_secs,
            SlaTarget::Resolve => self.resolve_secs,
        }
    }
}

/// The frontline's targets per priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontlineTargets {
    /// P1.
    pub p1: Targets,
    /// P2.
    pub p2: Targets,
    /// P3.
    pub p3: Targets,
    /// P4.
    pub p4: Targets,
}

/// Service-level targets per route (and, on the frontline, per priority).
///
/// The defaults: the CEO's office acknowledges within 4 h and resolves within
/// 72 h; the frontline 1 h / 24 h at P1, 4 h / 48 h at P2, 8 h / 120 h at P3
/// and 24 h / 240 h at P4; reverse logistics 24 h / 14 days. A breach raises
/// a complaint's priority one step (P4 to P3 … P2 to P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    /// When the CEO engages.
    pub ceo: Targets,
    /// The frontline, per priority.
    pub frontline: FrontlineTargets,
    /// Reverse logistics.
    pub reverse_logistics: Targets,
    /// Whether a breach raises the complaint's priority one step.
    pub raise_priority_on_breach: bool,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            ceo: Targets::hours(4, 72),
            frontline: FrontlineTargets {
                p1: Targets::hours(1, 24),
                p2: Targets::hours(4, 48),
                p3: Targets::hours(8, 120),
                p4: Targets::hours(24, 240),
            },
            reverse_logistics: Targets::hours(24, 14 * 24),
            raise_priority_on_breach: true,
        }
    }
}

impl SlaPolicy {
    /// The targets of a handler: the route's, on the frontline its priority's.
    pub const fn targets(&self, route: Route, priority: Priority) -> Targets {
        match (route, priority) {
            (Route::Ceo, _) => self.ceo,
            (Route::ReverseLogistics, _) => self.reverse_logistics,
            (Route::Frontline, Priority::P1) => self.frontline.p1,
            (Route::Frontline, Priority::P2) => self.frontline.p2,
            (Route::Frontline, Priority::P3) => self.frontline.p3,
            (Route::Frontline, Priority::P4) => self.frontline.p4,
        }
    }

    /// Checks every target; the error names the field and the limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let f = &self.frontline;
        for (field, targets) in [
            ("sla.ceo", self.ceo),
            ("sla.frontline.p1", f.p1),
            ("sla.frontline.p2", f.p2),
            ("sla.frontline.p3", f.p3),
            ("sla.frontline.p4", f.p4),
            ("sla.reverse_logistics", self.reverse_logistics),
        ] {
            for target in SlaTarget::ALL {
                let secs = targets.secs(target);
                if secs == 0 || secs > MAX_TARGET_SECS {
                    return Err(ValidationError::new(
                        format!("{field}.{}_secs", target.token()),
                        Problem::OutOfRange {
                            min: 1,
                            max: MAX_TARGET_SECS.into(),
                            actual: secs.into(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One running target clock of a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// When it started.
    pub since: Timestamp,
    /// The time allowed, fixed when it started (the handler's target then).
    pub allowed_secs: u32,
    /// Whether it already ran past its due time (a clock breaches once).
    pub breached: bool,
}

impl Clock {
    /// When the target is due.
    pub fn due_at(&self) -> Timestamp {
        self.since.plus_millis(i64::from(self.allowed_secs) * 1000)
    }
}

/// A complaint's running clocks; `None` where a target is met or not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClocks {
    /// Until someone acknowledges or takes it.
    pub acknowledge: Option<Clock>,
    /// Until it is resolved.
    pub resolve: Option<Clock>,
}

impl SlaClocks {
    /// The clock of `target`.
    pub fn get(&self, target: SlaTarget) -> Option<Clock> {
        match target {
            SlaTarget::Acknowledge => self.acknowledge,
            SlaTarget::Resolve => self.resolve,
        }
    }

    pub(crate) fn slot(&mut self, target: SlaTarget) -> &mut Option<Clock> {
        match target {
            SlaTarget::Acknowledge => &mut self.acknowledge,
            SlaTarget::Resolve => &mut self.resolve,
        }
    }

    /// The timers the clocks need: one per running clock not yet breached.
    pub fn timers(&self) -> Vec<Timer> {
        SlaTarget::ALL
            .into_iter()
            .filter_map(|target| {
                let clock = self.get(target).filter(|c| !c.breached)?;
                Some(Timer {
                    target,
                    since: clock.since,
                    due_at: clock.due_at(),
                })
            })
            .collect()
    }
}

/// What a timer remembers of the clock it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The target.
    pub target: SlaTarget,
    /// When the clock started: a restarted clock is another clock.
    pub since: Timestamp,
    /// When it is due.
    pub due_at: Timestamp,
}

/// The priority one step up; P1 stays P1.
pub const fn raised(priority: Priority) -> Priority {
    match priority {
        Priority::P1 | Priority::P2 => Priority::P1,
        Priority::P3 => Priority::P2,
        Priority::P4 => Priority::P3,
    }
}

/// Which targets a complaint missed, or would have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// Not acknowledged in time.
    pub acknowledge: bool,
    /// Not resolved in time.
    pub resolve: bool,
}

impl Missed {
    /// Either target.
    pub const fn any(self) -> bool {
        self.acknowledge || self.resolve
    }
}

/// The targets `targets` a complaint first decided at `decided_at` missed,
/// as its life went: first acknowledged (or assigned) at `acknowledged_at`,
/// first resolved or withdrawn at `closed_at` (which also meets the first
/// target). A target still unmet at `as_of` counts as missed once past due.
///
/// A replay's reading, from the first decision only: re-routings and
/// reopenings, which restart clocks, are left out.
pub fn missed(
    targets: Targets,
    decided_at: Timestamp,
    acknowledged_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    as_of: Timestamp,
) -> Missed {
    let late = |secs: u32, met: Option<Timestamp>| {
        let due = decided_at.plus_millis(i64::from(secs) * 1000);
        met.unwrap_or(as_of) > due
    };
    let acknowledged = match (acknowledged_at, closed_at) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    };
    Missed {
        acknowledge: late(targets.acknowledge_secs, acknowledged),
        resolve: late(targets.resolve_secs, closed_at),
    }
}
