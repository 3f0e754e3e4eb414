//! The demo's summary: routes, CEO budget, goodwill, and decisions explained.

use std::collections::BTreeMap;

use anyhow::Context;
use plaint_proto::events::{Category, Channel, Decision, Route};
use plaint_proto::router::{
    ComplaintSummary, Consistency, GetCeoBudgetRequest, GetCeoBudgetResponse, GetComplaintRequest,
    GetGoodwillRequest, GetGoodwillResponse, GoodwillGrouping, GoodwillRow, ListComplaintsRequest,
    Status,
};
use serde_json::{Value, json};

use crate::DemoArgs;
use crate::demo::{Clients, RunStats};
use crate::render::short;
use crate::render::{decision_json, print_complaint, print_decision, route_name, status_name};

/// Everything the summary shows.
#[derive(Debug)]
pub(crate) struct Summary {
    /// Complaints received since the demo started, by route name.
    routes: BTreeMap<String, u64>,
    /// The same, by status name.
    statuses: BTreeMap<String, u64>,
    listed: u64,
    budget: GetCeoBudgetResponse,
    goodwill: GetGoodwillResponse,
    /// One complaint per route with the decision in force.
    examples: Vec<(ComplaintSummary, Option<Decision>)>,
}

fn consistency(min_sequence: u64) -> Option<Consistency> {
    Some(Consistency {
        min_sequence,
        timeout_ms: 5_000,
    })
}

/// Queries the router for the summary.
pub(crate) async fn collect(clients: &mut Clients, stats: &RunStats) -> anyhow::Result<Summary> {
    let query = &mut clients.query;
    let mut routes = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let mut listed = 0;
    let mut example_ids: BTreeMap<i32, ComplaintSummary> = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = query
            .list_complaints(ListComplaintsRequest {
                received_from_ms: stats.started_at_ms,
                page_size: 500,
                page_token: page_token.clone(),
                consistency: consistency(stats.max_sequence),
                ..ListComplaintsRequest::default()
            })
            .await
            .context("router Query.ListComplaints failed")?
            .into_inner();
        for c in page.complaints {
            listed += 1;
            *routes.entry(route_name(c.route).to_owned()).or_insert(0) += 1;
            *statuses
                .entry(status_name(c.status).to_owned())
                .or_insert(0) += 1;
            // Prefer a resolved example: its timeline tells the whole story.
            let better = match example_ids.get(&c.route) {
                None => true,
                Some(old) => {
                    old.status != Status::Resolved as i32 && c.status == Status::Resolved as i32
                }
            };
            if c.route != Route::Unspecified as i32 && better {
                example_ids.insert(c.route, c);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    let budget = query
        .get_ceo_budget(GetCeoBudgetRequest {
            at_ms: 0,
            consistency: None,
        })
        .await
        .context("router Query.GetCeoBudget failed")?
        .into_inner();
    let goodwill = query
        .get_goodwill(GetGoodwillRequest {
            group_by: GoodwillGrouping::Route as i32,
            from_ms: 0,
            to_ms: 0,
            consistency: consistency(stats.max_sequence),
        })
        .await
        .context("router Query.GetGoodwill failed")?
        .into_inner();

    let mut examples = Vec::new();
    for route in [Route::Ceo, Route::Frontline, Route::ReverseLogistics] {
        let Some(summary) = example_ids.remove(&(route as i32)) else {
            continue;
        };
        let response = query
            .get_complaint(GetComplaintRequest {
                complaint_id: summary.complaint_id.clone(),
                consistency: None,
                ..Default::default()
            })
            .await
            .with_context(|| format!("router Query.GetComplaint({}) failed", summary.complaint_id))?
            .into_inner();
        let decision = response.decisions.last().cloned();
        examples.push((response.complaint.unwrap_or(summary), decision));
    }
    Ok(Summary {
        routes,
        statuses,
        listed,
        budget,
        goodwill,
        examples,
    })
}

/// One line of the goodwill table: counts beside the figures they give.
fn goodwill_line(key: &str, row: &GoodwillRow) -> String {
    format!(
        "{key:<20} {:>9} {:>10.2} {:>10} {:>9.1}%",
        row.resolved,
        row.mean_satisfaction,
        row.recovered,
        row.recovered_share * 100.0
    )
}

fn goodwill_json(row: &GoodwillRow) -> Value {
    json!({
        "key": row.key,
        "resolved": row.resolved,
        "recovered": row.recovered,
        "mean_satisfaction": row.mean_satisfaction,
        "recovered_share": row.recovered_share,
    })
}

/// The summary as one JSON object.
pub(crate) fn to_json(summary: &Summary, stats: &RunStats, args: &DemoArgs) -> Value {
    json!({
        "seed": args.seed,
        "count": args.count,
        "submitted": {
            "grpc": stats.grpc_submitted,
            "grpc_duplicates": stats.grpc_duplicates,
            "helpdesk": stats.helpdesk_published,
            "seconds": stats.elapsed_submit.as_secs_f64(),
        },
        "lifecycle": {
            "planned": stats.lifecycle_planned,
            "resolved": stats.lifecycle_resolved,
            "skipped": stats.lifecycle_skipped,
            "errors": stats.lifecycle_errors,
            "first_error": stats.first_lifecycle_error,
        },
        "this_run": {
            "complaints": summary.listed,
            "routes": summary.routes,
            "statuses": summary.statuses,
        },
        "ceo_budget": {
            "window_start_ms": summary.budget.window_start_ms,
            "window_end_ms": summary.budget.window_end_ms,
            "budget": summary.budget.budget,
            "used": summary.budget.used,
            "used_by_segment": summary.budget.used_by_segment,
            "complaint_ids": summary.budget.complaint_ids,
        },
        "goodwill_by_route": {
            "rows": summary.goodwill.rows.iter().map(goodwill_json).collect::<Vec<_>>(),
            "total": summary.goodwill.total.as_ref().map(goodwill_json),
            "sla": summary.goodwill.sla.iter().map(|a| json!({
                "route": a.route, "priority": a.priority, "target": a.target,
                "met": a.met, "missed": a.missed, "met_pct": a.met_pct,
            })).collect::<Vec<_>>(),
        },
        "decisions": summary.examples.iter().map(|(c, d)| json!({
            "complaint_id": c.complaint_id,
            "external_ticket_id": c.external_ticket_id,
            "customer_id": c.customer_id,
            "segment": c.segment,
            "channel": short(Channel::try_from(c.channel).unwrap_or_default().as_str_name(), "CHANNEL_"),
            "category": short(Category::try_from(c.category).unwrap_or_default().as_str_name(), "CATEGORY_"),
            "status": status_name(c.status),
            "satisfaction": c.satisfaction,
            "decision": d.as_ref().map(decision_json),
        })).collect::<Vec<_>>(),
    })
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Prints the summary as tables.
pub(crate) fn print(summary: &Summary, stats: &RunStats, args: &DemoArgs) {
    println!();
    println!(
        "== plaint demo (seed {}, {} complaints) ==",
        args.seed, args.count
    );
    println!(
        "submitted: {} over gRPC ({} duplicates), {} over the helpdesk, in {:.1} s",
        stats.grpc_submitted,
        stats.grpc_duplicates,
        stats.helpdesk_published,
        stats.elapsed_submit.as_secs_f64()
    );
    println!(
        "lifecycle: {} planned, {} resolved, {} skipped (not routed within 5 s), {} errors",
        stats.lifecycle_planned,
        stats.lifecycle_resolved,
        stats.lifecycle_skipped,
        stats.lifecycle_errors
    );
    if let Some(err) = &stats.first_lifecycle_error {
        println!("  first lifecycle error: {err}");
    }

    println!();
    println!(
        "-- routes (complaints received during this run: {}) --",
        summary.listed
    );
    println!("{:<20} {:>7} {:>7}", "route", "count", "share");
    for (route, count) in &summary.routes {
        println!(
            "{route:<20} {count:>7} {:>6.1}%",
            pct(*count, summary.listed)
        );
    }
    println!("{:<20} {:>7}", "status", "count");
    for (status, count) in &summary.statuses {
        println!("{status:<20} {count:>7}");
    }

    println!();
    println!("-- CEO budget (current window) --");
    let b = &summary.budget;
    println!(
        "used {} of {} (window {} .. {} ms)",
        b.used, b.budget, b.window_start_ms, b.window_end_ms
    );
    let segments: BTreeMap<_, _> = b.used_by_segment.iter().collect();
    for (segment, used) in segments {
        println!("  {segment:<18} {used:>4}");
    }

    println!();
    println!("-- goodwill by route (all time) --");
    println!(
        "{:<20} {:>9} {:>10} {:>10} {:>10}",
        "route", "resolved", "mean sat.", "recovered", "share"
    );
    let total = summary.goodwill.total.iter().map(|t| ("TOTAL", t));
    let rows = summary.goodwill.rows.iter().map(|r| (r.key.as_str(), r));
    for (key, row) in rows.chain(total) {
        println!("{}", goodwill_line(key, row));
    }
    if !summary.goodwill.sla.is_empty() {
        println!();
        println!("-- service levels attained (all time; targets still running not counted) --");
        println!(
            "{:<20} {:<8} {:<12} {:>6} {:>7} {:>7}",
            "route", "priority", "target", "met", "missed", "met %"
        );
        for a in &summary.goodwill.sla {
            println!(
                "{:<20} {:<8} {:<12} {:>6} {:>7} {:>6.1}%",
                a.route, a.priority, a.target, a.met, a.missed, a.met_pct
            );
        }
    }

    for (c, d) in &summary.examples {
        println!();
        println!(
            "-- why {} went to {} --",
            c.external_ticket_id,
            route_name(c.route)
        );
        print_complaint(c);
        match d {
            Some(d) => print_decision(d),
            None => println!("  (no decision recorded)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodwill_shows_the_counts_beside_the_share() {
        let row = GoodwillRow {
            key: "CEO".to_owned(),
            resolved: 8,
            mean_satisfaction: 8.5,
            recovered_share: 0.75,
            recovered: 6,
        };
        let line = goodwill_line("CEO", &row);
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, ["CEO", "8", "8.50", "6", "75.0%"]);
        assert_eq!(goodwill_json(&row)["recovered"], 6);
    }
}
