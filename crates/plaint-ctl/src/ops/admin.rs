//! Operator controls: dead letters, policies, climate, stance, rebuilds.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use plaint_proto::events::{Climate, StanceAlignment};
use plaint_proto::intake::{ListDeadLettersRequest, RequeueDeadLetterRequest};
use plaint_proto::router::{
    GetPolicyRequest, ListPoliciesRequest, PublishPolicyRequest, RebuildProjectionsRequest,
    SetClimateRequest, SetStanceRequest, SimulatePolicyRequest, SlaMissed,
};
use serde_json::json;

use super::{Target, admin, intake_admin, query, rpc};
use crate::render::{decision_json, print_decision, route_name};

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, oldest first.
    List {
        /// Only letters after this sequence.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many (capped by the server at 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Publish a dead letter's original message again.
    Requeue {
        /// The dead letter's sequence.
        sequence: u64,
    },
}

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show a policy version (the one in force by default).
    Show {
        /// The version; 0 is the one in force.
        #[arg(long, default_value_t = 0)]
        version: u32,
    },
    /// List every version.
    List,
    /// Validate and publish a policy from a JSON file; it applies to later decisions.
    Publish {
        /// The policy file (JSON, as `policy show` prints it).
        file: std::path::PathBuf,
    },
    /// Run a candidate policy over past complaints; appends nothing.
    Simulate {
        /// The candidate policy file (JSON).
        file: std::path::PathBuf,
        /// From this instant (ms since the epoch).
        #[arg(long, default_value_t = 0)]
        from_ms: i64,
        /// Until this instant (ms since the epoch); 0 means now.
        #[arg(long, default_value_t = 0)]
        to_ms: i64,
        /// List at most this many changed complaints.
        #[arg(long, default_value_t = 20)]
        max_changes: u32,
    },
}

/// Settings of `climate`.
#[derive(Debug, Args)]
pub struct ClimateArgs {
    /// GOOD, NEUTRAL or BAD.
    pub climate: String,
}

/// Settings of `stance`.
#[derive(Debug, Args)]
pub struct StanceArgs {
    /// ALIGNED, MISALIGNED or UNKNOWN.
    pub alignment: String,
}

pub(super) async fn dead_letters(t: &Target, c: DeadLetterCommand) -> anyhow::Result<()> {
    let mut client = intake_admin(t).await?;
    match c {
        DeadLetterCommand::List { after, limit } => {
            let r = client
                .list_dead_letters(ListDeadLettersRequest {
                    after_sequence: after,
                    limit,
                })
                .await
                .map_err(|s| rpc("ListDeadLetters", s))?
                .into_inner();
            if t.json {
                let letters: Vec<_> = r
                    .letters
                    .iter()
                    .map(|l| json!({"sequence": l.sequence, "subject": l.original_subject, "reason": l.reason,
                                    "payload": String::from_utf8_lossy(&l.payload)}))
                    .collect();
                println!(
                    "{}",
                    json!({"letters": letters, "next_after_sequence": r.next_after_sequence})
                );
            } else {
                println!("{:>8}  {:<40} reason", "sequence", "subject");
                for l in &r.letters {
                    println!("{:>8}  {:<40} {}", l.sequence, l.original_subject, l.reason);
                }
                if r.next_after_sequence > 0 {
                    println!("more: --after {}", r.next_after_sequence);
                }
            }
        }
        DeadLetterCommand::Requeue { sequence } => {
            let r = client
                .requeue_dead_letter(RequeueDeadLetterRequest { sequence })
                .await
                .map_err(|s| rpc("RequeueDeadLetter", s))?
                .into_inner();
            println!(
                "requeued dead letter {sequence} as inbound message {}",
                r.inbound_sequence
            );
        }
    }
    Ok(())
}

fn read_policy(file: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

pub(super) async fn policy(t: &Target, c: PolicyCommand) -> anyhow::Result<()> {
    match c {
        PolicyCommand::Show { version } => {
            let p = admin(t)
                .await?
                .get_policy(GetPolicyRequest { version })
                .await
                .map_err(|s| rpc("GetPolicy", s))?
                .into_inner();
            let policy: serde_json::Value = serde_json::from_str(&p.policy_json)?;
            if t.json {
                println!("{policy}");
            } else {
                println!(
                    "version {} published by {} at {} ms",
                    p.version, p.published_by, p.published_at_ms
                );
                println!("{}", serde_json::to_string_pretty(&policy)?);
            }
        }
        PolicyCommand::List => {
            let r = admin(t)
                .await?
                .list_policies(ListPoliciesRequest {})
                .await
                .map_err(|s| rpc("ListPolicies", s))?
                .into_inner();
            for p in r.versions {
                if t.json {
                    println!(
                        "{}",
                        json!({"version": p.version, "published_by": p.published_by, "published_at_ms": p.published_at_ms})
                    );
                } else {
                    println!(
                        "v{:<4} {:<20} {} ms",
                        p.version, p.published_by, p.published_at_ms
                    );
                }
            }
        }
        PolicyCommand::Publish { file } => {
            let r = admin(t)
                .await?
                .publish_policy(PublishPolicyRequest {
                    policy_json: read_policy(&file)?,
                    ..Default::default()
                })
                .await
                .map_err(|s| rpc("PublishPolicy", s))?
                .into_inner();
            println!(
                "published policy version {} at sequence {}",
                r.version, r.sequence
            );
        }
        PolicyCommand::Simulate {
            file,
            from_ms,
            to_ms,
            max_changes,
        } => {
            let to_ms = if to_ms == 0 { i64::MAX } else { to_ms };
            let r = query(t)
                .await?
                .simulate_policy(SimulatePolicyRequest {
                    policy_json: read_policy(&file)?,
                    from_ms,
                    to_ms,
                    max_changes,
                })
                .await
                .map_err(|s| rpc("SimulatePolicy", s))?
                .into_inner();
            if t.json {
                let distribution: Vec<_> = r.distribution.iter()
                    .map(|d| json!({"route": route_name(d.route), "actual": d.actual, "simulated": d.simulated}))
                    .collect();
                let changes: Vec<_> = r
                    .changes
                    .iter()
                    .map(|c| {
                        json!({
                            "complaint_id": c.complaint_id, "customer_id": c.customer_id,
                            "actual": c.actual.as_ref().map(decision_json),
                            "simulated": c.simulated.as_ref().map(decision_json),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"complaints": r.complaints, "changed_total": r.changed_total,
                    "peak_window_ceo": r.peak_window_ceo, "budget": r.budget,
                    "engagements_before": r.engagements_before,
                    "sla_missed": {
                        "acknowledge": missed_json(r.missed_acknowledge.as_ref()),
                        "resolve": missed_json(r.missed_resolve.as_ref()),
                        "any": missed_json(r.missed_any.as_ref()),
                    },
                    "distribution": distribution, "changes": changes})
                );
                return Ok(());
            }
            println!(
                "{} complaints simulated, {} would change route",
                r.complaints, r.changed_total
            );
            println!(
                "peak CEO engagements in one window: {} (budget {}; counters started from {} \
                 engagements before the span)",
                r.peak_window_ceo, r.budget, r.engagements_before
            );
            let m = |x: Option<&SlaMissed>| x.map_or((0, 0), |x| (x.actual, x.simulated));
            let (ack, res, any) = (
                m(r.missed_acknowledge.as_ref()),
                m(r.missed_resolve.as_ref()),
                m(r.missed_any.as_ref()),
            );
            println!(
                "service levels missed (actual targets → candidate's): acknowledge {} → {}, \
                 resolve {} → {}, either {} → {}",
                ack.0, ack.1, res.0, res.1, any.0, any.1
            );
            println!("{:<20} {:>8} {:>10}", "route", "actual", "simulated");
            for d in &r.distribution {
                println!(
                    "{:<20} {:>8} {:>10}",
                    route_name(d.route),
                    d.actual,
                    d.simulated
                );
            }
            for c in &r.changes {
                println!();
                println!("-- {} (customer {}) --", c.complaint_id, c.customer_id);
                if let Some(d) = &c.actual {
                    println!("actual:");
                    print_decision(d);
                }
                if let Some(d) = &c.simulated {
                    println!("simulated:");
                    print_decision(d);
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn climate(t: &Target, a: ClimateArgs) -> anyhow::Result<()> {
    let full = format!("CLIMATE_{}", a.climate.trim().to_ascii_uppercase());
    let climate = Climate::from_str_name(&full)
        .with_context(|| format!("unknown climate {:?}: GOOD, NEUTRAL or BAD", a.climate))?;
    let r = admin(t)
        .await?
        .set_climate(SetClimateRequest {
            climate: climate as i32,
            ..Default::default()
        })
        .await
        .map_err(|s| rpc("SetClimate", s))?
        .into_inner();
    println!(
        "climate set to {} at sequence {}",
        a.climate.to_ascii_uppercase(),
        r.sequence
    );
    Ok(())
}

pub(super) async fn stance(t: &Target, a: StanceArgs) -> anyhow::Result<()> {
    let full = format!(
        "STANCE_ALIGNMENT_{}",
        a.alignment.trim().to_ascii_uppercase()
    );
    let alignment = StanceAlignment::from_str_name(&full).with_context(|| {
        format!(
            "unknown alignment {:?}: ALIGNED, MISALIGNED or UNKNOWN",
            a.alignment
        )
    })?;
    let r = admin(t)
        .await?
        .set_stance(SetStanceRequest {
            alignment: alignment as i32,
            ..Default::default()
        })
        .await
        .map_err(|s| rpc("SetStance", s))?
        .into_inner();
    println!(
        "stance set to {} at sequence {}",
        a.alignment.to_ascii_uppercase(),
        r.sequence
    );
    Ok(())
}

pub(super) async fn rebuild(t: &Target) -> anyhow::Result<()> {
    let mut progress = admin(t)
        .await?
        .rebuild_projections(RebuildProjectionsRequest {})
        .await
        .map_err(|s| rpc("RebuildProjections", s))?
        .into_inner();
    let bar = if t.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut last = None;
    while let Some(p) = progress
        .message()
        .await
        .map_err(|s| rpc("RebuildProjections", s))?
    {
        bar.set_length(p.target_sequence.max(p.applied_sequence));
        bar.set_position(p.applied_sequence);
        bar.set_message(format!("{:.0} events/s", p.events_per_second));
        last = Some(p);
    }
    bar.finish_and_clear();
    let last = last.context("the router sent no progress")?;
    if t.json {
        println!(
            "{}",
            json!({"done": last.done, "swapped_at_sequence": last.swapped_at_sequence,
            "events_per_second": last.events_per_second})
        );
    } else {
        println!(
            "projections rebuilt up to sequence {} at {:.0} events/s and swapped in",
            last.swapped_at_sequence, last.events_per_second
        );
    }
    Ok(())
}

fn missed_json(m: Option<&SlaMissed>) -> serde_json::Value {
    m.map_or(
        serde_json::Value::Null,
        |m| json!({"actual": m.actual, "simulated": m.simulated}),
    )
}
