//! Routing decisions and their explanations.

use plaint_domain::routing::{Contribution, Gate, GateKind, WhyNot};
use plaint_domain::sla::Targets;
use plaint_domain::values::ValidationError;
use plaint_domain::{
    Climate, Decision, FulfilmentKind, Priority, Route, StanceAlignment, Timestamp,
};

use super::{FromWire, ToWire, not_one_of, optional_enum};
use crate::events as pb;

/// The wire form of a decision.
pub fn decision_to_wire(d: &Decision) -> pb::Decision {
    pb::Decision {
        route: d.route.to_wire(),
        fulfilment: d.fulfilment.map_or(0, |f| f.to_wire()),
        priority: d.priority.to_wire(),
        score: d.score,
        // The wire has no "absent" for an int64; i64::MAX marks a closed route.
        ceo_threshold: d.ceo_threshold.unwrap_or(i64::MAX),
        contributions: d
            .contributions
            .iter()
            .map(|c| pb::Contribution {
                factor: c.factor.clone(),
                observed: c.observed.clone(),
                points: c.points,
            })
            .collect(),
        gates: d
            .gates
            .iter()
            .map(|g| pb::Gate {
                kind: g.kind.to_wire(),
                observed: g.observed,
                limit: g.limit,
                passed: g.passed,
                note: g.note.clone(),
                applicability: if g.applies {
                    pb::GateApplicability::Applies
                } else {
                    pb::GateApplicability::NotApplicable
                } as i32,
            })
            .collect(),
        why_not: d
            .why_not
            .iter()
            .map(|w| pb::WhyNot {
                route: w.route.to_wire(),
                reason: w.reason.clone(),
            })
            .collect(),
        policy_version: d.policy_version,
        climate: d.climate.to_wire(),
        stance: d.stance.to_wire(),
        decided_at_ms: d.decided_at.as_millis(),
        budget_window_start_ms: d.budget_window_start.as_millis(),
        sla: d.sla.map(|t| pb::SlaTargets {
            acknowledge_secs: t.acknowledge_secs,
            resolve_secs: t.resolve_secs,
        }),
    }
}

/// Parses a decision read from the log.
pub fn decision_from_wire(
    wire: Option<pb::Decision>,
    field: &str,
) -> Result<Decision, ValidationError> {
    let d =
        wire.ok_or_else(|| ValidationError::new(field, plaint_domain::values::Problem::Missing))?;
    let contributions = d
        .contributions
        .into_iter()
        .map(|c| Contribution {
            factor: c.factor,
            observed: c.observed,
            points: c.points,
        })
        .collect();
    let gates = d
        .gates
        .into_iter()
        .map(|g| {
            let kind = GateKind::from_wire(g.kind, "gates.kind").map_err(|e| e.within(field))?;
            let applies = match pb::GateApplicability::try_from(g.applicability) {
                Ok(pb::GateApplicability::Applies) => true,
                Ok(pb::GateApplicability::NotApplicable) => false,
                Ok(pb::GateApplicability::Unspecified) => {
                    Gate::applies_by_old_markers(kind, g.observed, g.limit)
                }
                Err(_) => {
                    let accepted = [
                        pb::GateApplicability::Applies,
                        pb::GateApplicability::NotApplicable,
                    ]
                    .map(|a| format!("{} ({})", a.as_str_name(), a as i32));
                    return Err(not_one_of("gates.applicability", accepted).within(field));
                }
            };
            Ok(Gate {
                kind,
                applies,
                observed: if applies { g.observed } else { 0 },
                limit: g.limit,
                passed: g.passed,
                note: g.note,
            })
        })
        .collect::<Result<_, ValidationError>>()?;
    let why_not = d
        .why_not
        .into_iter()
        .map(|w| {
            Ok(WhyNot {
                route: Route::from_wire(w.route, "why_not.route").map_err(|e| e.within(field))?,
                reason: w.reason,
            })
        })
        .collect::<Result<_, ValidationError>>()?;
    Ok(Decision {
        route: Route::from_wire(d.route, "route").map_err(|e| e.within(field))?,
        fulfilment: optional_enum::<FulfilmentKind>(d.fulfilment, "fulfilment")
            .map_err(|e| e.within(field))?,
        priority: Priority::from_wire(d.priority, "priority").map_err(|e| e.within(field))?,
        score: d.score,
        ceo_threshold: (d.ceo_threshold != i64::MAX).then_some(d.ceo_threshold),
        contributions,
        gates,
        why_not,
        policy_version: d.policy_version,
        climate: Climate::from_wire(d.climate, "climate").map_err(|e| e.within(field))?,
        stance: StanceAlignment::from_wire(d.stance, "stance").map_err(|e| e.within(field))?,
        decided_at: Timestamp::from_millis(d.decided_at_ms),
        budget_window_start: Timestamp::from_millis(d.budget_window_start_ms),
        sla: d.sla.map(|t| Targets {
            acknowledge_secs: t.acknowledge_secs,
            resolve_secs: t.resolve_secs,
        }),
    })
}
