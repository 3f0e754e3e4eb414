//! Complaint commands: submit, get / explain, list, watch.

use clap::Args;
use plaint_proto::events::{
    self as epb, Category, Channel, Customer, CustomerTier, Route, Visibility,
};
use plaint_proto::intake::SubmitComplaintRequest;
use plaint_proto::router::{
    Consistency, GetComplaintRequest, ListComplaintsRequest, Status, WatchComplaintsRequest,
};
use serde_json::json;

use super::{Target, intake, query, rpc};
use crate::render::{
    decision_json, print_complaint, print_decision, print_summary_header, print_summary_line,
    summary_json,
};

/// Most complaints `list` prints, whatever `--limit` says.
const MAX_LIST: usize = 10_000;

/// A protobuf enum value from its short name (`PUBLIC_SOCIAL`), or an error naming the flag.
fn named<T>(flag: &str, prefix: &str, raw: &str, from: fn(&str) -> Option<T>) -> anyhow::Result<T> {
    let full = format!("{prefix}{}", raw.trim().to_ascii_uppercase());
    from(&full).ok_or_else(|| anyhow::anyhow!("--{flag}: unknown value {raw:?}"))
}

/// Settings of `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The source system.
    #[arg(long, default_value = "plaint-ctl")]
    pub source: String,
    /// The source system's ticket id.
    #[arg(long)]
    pub ticket: String,
    /// The customer id.
    #[arg(long)]
    pub customer: String,
    /// The customer's segment.
    #[arg(long, default_value = "consumer")]
    pub segment: String,
    /// STANDARD, SILVER, GOLD or PLATINUM.
    #[arg(long, default_value = "STANDARD")]
    pub tier: String,
    /// PUBLIC_SOCIAL, PRIVATE_SOCIAL, EMAIL, PHONE, CHAT, WEB_FORM, STORE or LETTER_TO_CEO.
    #[arg(long, default_value = "EMAIL")]
    pub channel: String,
    /// PRODUCT_DEFECT, REPAIR_REQUEST, RETURN, EXCHANGE, BILLING, DELIVERY, SERVICE,
    /// PRODUCT_IDEA, SOCIAL_ISSUE or OTHER.
    #[arg(long, default_value = "SERVICE")]
    pub category: String,
    /// Audience reach (followers).
    #[arg(long, default_value_t = 0)]
    pub reach: u64,
    /// Shares so far.
    #[arg(long, default_value_t = 0)]
    pub shares: u64,
    /// Media picked it up.
    #[arg(long)]
    pub media: bool,
    /// What the customer said.
    #[arg(long, default_value = "")]
    pub summary: String,
}

pub(super) async fn submit(t: &Target, a: SubmitArgs) -> anyhow::Result<()> {
    let request = SubmitComplaintRequest {
        source_system: a.source,
        external_ticket_id: a.ticket,
        customer: Some(Customer {
            customer_id: a.customer,
            segment: a.segment,
            tier: named(
                "tier",
                "CUSTOMER_TIER_",
                &a.tier,
                CustomerTier::from_str_name,
            )? as i32,
            lifetime_value_cents: 0,
            customer_ref: String::new(),
            churn_risk_pct: 0,
        }),
        channel: named("channel", "CHANNEL_", &a.channel, Channel::from_str_name)? as i32,
        category: named(
            "category",
            "CATEGORY_",
            &a.category,
            Category::from_str_name,
        )? as i32,
        visibility: Some(Visibility {
            audience_reach: a.reach,
            shares: a.shares,
            media_attention: a.media,
        }),
        summary: a.summary,
        ..Default::default()
    };
    let w = intake(t)
        .await?
        .submit_complaint(request)
        .await
        .map_err(|s| rpc("SubmitComplaint", s))?
        .into_inner();
    if t.json {
        println!(
            "{}",
            json!({"complaint_id": w.complaint_id, "sequence": w.sequence, "duplicate": w.duplicate})
        );
    } else {
        println!(
            "complaint {}  sequence {}{}",
            w.complaint_id,
            w.sequence,
            if w.duplicate {
                "  (duplicate: already submitted)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A past point: a log sequence, or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AsOf {
    /// Just after this log sequence.
    Sequence(u64),
    /// At this time, ms since the epoch.
    Millis(i64),
}

/// Reads `--as-of`: digits are a log sequence, anything else an RFC 3339 time.
pub(super) fn parse_as_of(raw: &str) -> anyhow::Result<AsOf> {
    if let Ok(sequence) = raw.parse::<u64>() {
        anyhow::ensure!(sequence > 0, "--as-of: a log sequence starts at 1");
        return Ok(AsOf::Sequence(sequence));
    }
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            anyhow::anyhow!(
                "--as-of: {raw:?} is neither a log sequence nor an RFC 3339 time \
                 (2026-12-01T09:30:00Z): {e}"
            )
        })?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    anyhow::ensure!(ms > 0, "--as-of: the time must be after 1970");
    Ok(AsOf::Millis(i64::try_from(ms)?))
}

pub(super) async fn get(
    t: &Target,
    id: &str,
    min_sequence: u64,
    as_of: Option<AsOf>,
    explain_only: bool,
) -> anyhow::Result<()> {
    let (as_of_sequence, as_of_ms) = match as_of {
        None => (0, 0),
        Some(AsOf::Sequence(s)) => (s, 0),
        Some(AsOf::Millis(ms)) => (0, ms),
    };
    let r = query(t)
        .await?
        .get_complaint(GetComplaintRequest {
            complaint_id: id.to_owned(),
            consistency: (min_sequence > 0).then_some(Consistency {
                min_sequence,
                timeout_ms: 10_000,
            }),
            as_of_sequence,
            as_of_ms,
        })
        .await
        .map_err(|s| rpc("GetComplaint", s))?
        .into_inner();
    let complaint = r.complaint.unwrap_or_default();
    if t.json {
        let timeline: Vec<_> = r
            .timeline
            .iter()
            .map(|e| json!({"sequence": e.sequence, "type": e.event_type, "at_ms": e.occurred_at_ms,
                            "detail": serde_json::from_str::<serde_json::Value>(&e.detail_json).unwrap_or_default()}))
            .collect();
        let decisions: Vec<_> = r.decisions.iter().map(decision_json).collect();
        println!(
            "{}",
            json!({"complaint": summary_json(&complaint), "timeline": timeline, "decisions": decisions})
        );
        return Ok(());
    }
    print_complaint(&complaint);
    if !explain_only {
        println!("timeline:");
        for e in &r.timeline {
            println!(
                "  {:>8}  {:<22} at {} ms",
                e.sequence, e.event_type, e.occurred_at_ms
            );
        }
    }
    match r.decisions.last() {
        Some(d) => print_decision(d),
        None => println!("not routed yet"),
    }
    Ok(())
}

/// Settings of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this route (CEO, FRONTLINE, REVERSE_LOGISTICS).
    #[arg(long)]
    pub route: Option<String>,
    /// Only this status (RECEIVED, ROUTED, ACKNOWLEDGED, ASSIGNED, RESOLVED, REOPENED, WITHDRAWN).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this customer.
    #[arg(long)]
    pub customer: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub(super) async fn list(t: &Target, a: ListArgs) -> anyhow::Result<()> {
    let route = match &a.route {
        Some(r) => named("route", "ROUTE_", r, Route::from_str_name)? as i32,
        None => 0,
    };
    let status = match &a.status {
        Some(s) => named("status", "STATUS_", s, Status::from_str_name)? as i32,
        None => 0,
    };
    let mut client = query(t).await?;
    let limit = a.limit.min(MAX_LIST);
    let mut token = String::new();
    let mut out = Vec::new();
    while out.len() < limit {
        let page = client
            .list_complaints(ListComplaintsRequest {
                route,
                status,
                customer_id: a.customer.clone().unwrap_or_default(),
                page_size: u32::try_from((limit - out.len()).min(500)).unwrap_or(500),
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .map_err(|s| rpc("ListComplaints", s))?
            .into_inner();
        out.extend(page.complaints);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    out.truncate(limit);
    if t.json {
        println!(
            "{}",
            serde_json::Value::Array(out.iter().map(summary_json).collect())
        );
    } else {
        print_summary_header();
        out.iter().for_each(print_summary_line);
    }
    Ok(())
}

/// Settings of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Only this customer.
    #[arg(long)]
    pub customer: Option<String>,
    /// Only this complaint.
    #[arg(long)]
    pub complaint: Option<String>,
}

pub(super) async fn watch(t: &Target, a: WatchArgs) -> anyhow::Result<()> {
    let route = match &a.route {
        Some(r) => named("route", "ROUTE_", r, epb::Route::from_str_name)? as i32,
        None => 0,
    };
    let mut updates = query(t)
        .await?
        .watch_complaints(WatchComplaintsRequest {
            route,
            customer_id: a.customer.unwrap_or_default(),
            complaint_id: a.complaint.unwrap_or_default(),
        })
        .await
        .map_err(|s| rpc("WatchComplaints", s))?
        .into_inner();
    while let Some(u) = updates
        .message()
        .await
        .map_err(|s| rpc("WatchComplaints", s))?
    {
        let c = u.complaint.unwrap_or_default();
        if t.json {
            println!(
                "{}",
                json!({"sequence": u.sequence, "event_type": u.event_type, "missed": u.missed, "complaint": summary_json(&c)})
            );
        } else {
            if u.missed > 0 {
                println!(
                    "({} updates missed: this terminal read too slowly)",
                    u.missed
                );
            }
            print!("{:>8} {:<22} ", u.sequence, u.event_type);
            print_summary_line(&c);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn as_of_reads_a_sequence_or_a_time_and_says_what_it_takes() {
        assert_eq!(parse_as_of("80412").unwrap(), AsOf::Sequence(80412));
        assert_eq!(
            parse_as_of("2024-06-01T12:00:00Z").unwrap(),
            AsOf::Millis(1_717_243_200_000)
        );
        let e = parse_as_of("yesterday").unwrap_err().to_string();
        assert!(e.contains("--as-of") && e.contains("RFC 3339"), "{e}");
        assert!(parse_as_of("0").is_err());
    }
}
