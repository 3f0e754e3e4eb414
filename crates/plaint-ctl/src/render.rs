//! How complaints and decisions look on a terminal and in JSON; shared by
//! every command.

use plaint_proto::events::{
    Category, Channel, Climate, Decision, FulfilmentKind, Gate, GateApplicability, GateKind,
    Priority, Route, StanceAlignment,
};
use plaint_proto::router::{ComplaintSummary, Status};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// An enum's short name: `CHANNEL_PUBLIC_SOCIAL` -> `PUBLIC_SOCIAL`.
pub(crate) fn short<'a>(full: &'a str, prefix: &str) -> &'a str {
    full.strip_prefix(prefix).unwrap_or(full)
}

/// The short name of a route (`CEO`), or `UNSPECIFIED`.
pub(crate) fn route_name(raw: i32) -> &'static str {
    short(
        Route::try_from(raw).unwrap_or_default().as_str_name(),
        "ROUTE_",
    )
}

/// The short name of a status.
pub(crate) fn status_name(raw: i32) -> &'static str {
    short(
        Status::try_from(raw).unwrap_or_default().as_str_name(),
        "STATUS_",
    )
}

fn gate_name(raw: i32) -> &'static str {
    short(
        GateKind::try_from(raw).unwrap_or_default().as_str_name(),
        "GATE_KIND_",
    )
}

fn channel_name(raw: i32) -> &'static str {
    short(
        Channel::try_from(raw).unwrap_or_default().as_str_name(),
        "CHANNEL_",
    )
}

fn category_name(raw: i32) -> &'static str {
    short(
        Category::try_from(raw).unwrap_or_default().as_str_name(),
        "CATEGORY_",
    )
}

/// The item handling of a decision: `REPAIR`, ..., or `none`.
pub(crate) fn fulfilment_name(raw: i32) -> &'static str {
    match FulfilmentKind::try_from(raw).unwrap_or_default() {
        FulfilmentKind::None => "none",
        kind => short(kind.as_str_name(), "FULFILMENT_KIND_"),
    }
}

/// Whether a gate concerns the complaint; a gate recorded before gates said
/// so is taken to apply.
fn gate_applies(g: &Gate) -> bool {
    g.applicability != GateApplicability::NotApplicable as i32
}

/// A decision with its whole explanation, as JSON.
pub(crate) fn decision_json(d: &Decision) -> Value {
    json!({
        "route": route_name(d.route),
        "fulfilment": fulfilment_name(d.fulfilment),
        "priority": short(Priority::try_from(d.priority).unwrap_or_default().as_str_name(), "PRIORITY_"),
        "score": d.score,
        "ceo_threshold": d.ceo_threshold,
        "policy_version": d.policy_version,
        "climate": short(Climate::try_from(d.climate).unwrap_or_default().as_str_name(), "CLIMATE_"),
        "stance": short(StanceAlignment::try_from(d.stance).unwrap_or_default().as_str_name(), "STANCE_ALIGNMENT_"),
        "decided_at_ms": d.decided_at_ms,
        "contributions": d.contributions.iter().map(|c| json!({
            "factor": c.factor, "observed": c.observed, "points": c.points,
        })).collect::<Vec<_>>(),
        "gates": d.gates.iter().map(|g| json!({
            "gate": gate_name(g.kind), "applies": gate_applies(g),
            "observed": gate_applies(g).then_some(g.observed), "limit": g.limit,
            "passed": g.passed, "note": g.note,
        })).collect::<Vec<_>>(),
        "why_not": d.why_not.iter().map(|w| json!({
            "route": route_name(w.route), "reason": w.reason,
        })).collect::<Vec<_>>(),
    })
}

/// A complaint's row, as JSON.
pub(crate) fn summary_json(c: &ComplaintSummary) -> Value {
    json!({
        "complaint_id": c.complaint_id,
        "source_system": c.source_system,
        "external_ticket_id": c.external_ticket_id,
        "customer_id": c.customer_id,
        "segment": c.segment,
        "channel": channel_name(c.channel),
        "category": category_name(c.category),
        "status": status_name(c.status),
        "route": route_name(c.route),
        "fulfilment_step": c.fulfilment_step,
        "assignee": c.assignee,
        "satisfaction": c.satisfaction,
        "received_at_ms": c.received_at_ms,
        "last_sequence": c.last_sequence,
    })
}

/// The header line of a complaint table.
pub(crate) fn print_summary_header() {
    println!(
        "{:<36}  {:<18} {:<14} {:<15} {:<17} {:<12} {:>4}",
        "complaint", "ticket", "customer", "channel", "route", "status", "sat"
    );
}

/// One line per complaint.
pub(crate) fn print_summary_line(c: &ComplaintSummary) {
    println!(
        "{:<36}  {:<18} {:<14} {:<15} {:<17} {:<12} {:>4}",
        c.complaint_id,
        c.external_ticket_id,
        c.customer_id,
        channel_name(c.channel),
        route_name(c.route),
        status_name(c.status),
        if c.satisfaction > 0 {
            c.satisfaction.to_string()
        } else {
            "-".to_owned()
        }
    );
}

/// A complaint's identity and state, on one line.
pub(crate) fn print_complaint(c: &ComplaintSummary) {
    println!(
        "complaint {}  ticket {}/{}  customer {} ({})  {} / {}  status {}{}",
        c.complaint_id,
        c.source_system,
        c.external_ticket_id,
        c.customer_id,
        c.segment,
        channel_name(c.channel),
        category_name(c.category),
        status_name(c.status),
        if c.satisfaction > 0 {
            format!(" (satisfaction {})", c.satisfaction)
        } else {
            String::new()
        }
    );
}

/// A decision with its whole explanation: score, factors, gates, why not.
pub(crate) fn print_decision(d: &Decision) {
    print!("{}", decision_text(d));
}

/// The text [`print_decision`] prints.
pub(crate) fn decision_text(d: &Decision) -> String {
    let mut out = String::new();
    let v = decision_json(d);
    let _ = writeln!(
        out,
        "route {}  fulfilment {}  priority {}  score {} vs CEO threshold {}  (policy v{}, climate {}, stance {})",
        v["route"].as_str().unwrap_or(""),
        v["fulfilment"].as_str().unwrap_or(""),
        v["priority"].as_str().unwrap_or(""),
        d.score,
        if d.ceo_threshold == i64::MAX {
            "closed".to_owned()
        } else {
            d.ceo_threshold.to_string()
        },
        d.policy_version,
        v["climate"].as_str().unwrap_or(""),
        v["stance"].as_str().unwrap_or(""),
    );
    let _ = writeln!(out, "  {:<22} {:<22} {:>6}", "factor", "observed", "points");
    for c in &d.contributions {
        let _ = writeln!(
            out,
            "  {:<22} {:<22} {:>+6}",
            c.factor, c.observed, c.points
        );
    }
    let _ = writeln!(
        out,
        "  {:<14} {:>9} {:>9}  {:<4}  note",
        "gate", "observed", "limit", ""
    );
    for g in &d.gates {
        let applies = gate_applies(g);
        let _ = writeln!(
            out,
            "  {:<14} {:>9} {:>9}  {:<4}  {}",
            gate_name(g.kind),
            if applies {
                g.observed.to_string()
            } else {
                "-".to_owned()
            },
            if g.limit == i64::MAX {
                "-".to_owned()
            } else {
                g.limit.to_string()
            },
            match (applies, g.passed) {
                (false, _) => "n/a",
                (true, true) => "pass",
                (true, false) => "FAIL",
            },
            g.note
        );
    }
    for w in &d.why_not {
        let _ = writeln!(out, "  why not {}: {}", route_name(w.route), w.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(fulfilment: FulfilmentKind) -> Decision {
        Decision {
            route: Route::Frontline as i32,
            fulfilment: fulfilment as i32,
            priority: Priority::P3 as i32,
            score: 12,
            ceo_threshold: 80,
            policy_version: 1,
            climate: Climate::Neutral as i32,
            stance: StanceAlignment::Unknown as i32,
            gates: vec![Gate {
                kind: GateKind::Cooldown as i32,
                observed: 0,
                limit: 90,
                passed: true,
                note: "does not apply: no earlier CEO engagement".to_owned(),
                applicability: GateApplicability::NotApplicable as i32,
            }],
            ..Decision::default()
        }
    }

    #[test]
    fn an_absent_fulfilment_reads_as_none() {
        let d = decision(FulfilmentKind::None);
        assert_eq!(decision_json(&d)["fulfilment"], "none");
        let text = decision_text(&d);
        assert!(text.contains("fulfilment none "), "{text}");
        assert!(!text.contains("UNSPECIFIED"), "{text}");
        assert_eq!(
            decision_json(&decision(FulfilmentKind::Repair))["fulfilment"],
            "REPAIR"
        );
    }

    #[test]
    fn a_gate_that_does_not_apply_shows_no_measurement() {
        let d = decision(FulfilmentKind::None);
        let gate = &decision_json(&d)["gates"][0];
        assert_eq!(gate["applies"], false);
        assert!(gate["observed"].is_null(), "{gate}");
        let text = decision_text(&d);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("COOLDOWN"))
            .unwrap_or_default();
        assert!(line.contains(" n/a "), "{line}");
        assert!(!line.contains("pass"), "{line}");
    }
}
