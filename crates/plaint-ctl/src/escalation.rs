//! The demo's service-level escalation: one complaint routed under a policy
//! whose P4 acknowledgement target is a few seconds, nobody acknowledging
//! it, and the breach the router then records (its priority raised) read
//! back from the complaint's timeline.
//!
//! The policy in force is published again right after the complaint is
//! routed: the complaint keeps the targets its decision was made under, so
//! only it runs on the short target. Both versions stay in the policy
//! history, as every publication does.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plaint_proto::events::{Category, Channel, Customer, CustomerTier, Priority, Route};
use plaint_proto::intake::SubmitComplaintRequest;
use plaint_proto::router::{GetComplaintRequest, GetPolicyRequest, PublishPolicyRequest};
use serde_json::{Value, json};

use crate::demo::Clients;

/// How long after its due time the demo waits for the breach.
const GRACE: Duration = Duration::from_secs(30);

/// One breach, as the demo saw it.
#[derive(Debug, Clone)]
pub(crate) struct Escalation {
    complaint_id: String,
    target_secs: u32,
    short_version: u32,
    restored_version: u32,
    priority_before: String,
    priority_after: String,
    late_by_ms: i64,
    seen_after: Duration,
}

impl Escalation {
    pub(crate) fn print(&self) {
        println!();
        println!(
            "service levels (one complaint, P4 acknowledgement target {} s):",
            self.target_secs
        );
        println!(
            "  {} routed FRONTLINE {} under policy v{} (v{} restored the targets in force at once)",
            self.complaint_id, self.priority_before, self.short_version, self.restored_version
        );
        println!(
            "  nobody acknowledged it: sla_breached recorded {:.2} s after its due time, priority \
             raised to {} (seen {:.1} s after routing)",
            self.late_by_ms as f64 / 1000.0,
            self.priority_after,
            self.seen_after.as_secs_f64()
        );
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "complaint_id": self.complaint_id,
            "acknowledge_within_secs": self.target_secs,
            "policy_version": self.short_version,
            "restored_policy_version": self.restored_version,
            "priority_before": self.priority_before,
            "priority_after": self.priority_after,
            "late_by_ms": self.late_by_ms,
        })
    }
}

/// Routes one complaint under a P4 acknowledgement target of `secs` and
/// waits for its breach.
pub(crate) async fn show(clients: &mut Clients, secs: u32) -> anyhow::Result<Escalation> {
    let in_force = clients
        .admin
        .get_policy(GetPolicyRequest { version: 0 })
        .await
        .context("router Admin.GetPolicy failed")?
        .into_inner();
    let mut policy: Value =
        serde_json::from_str(&in_force.policy_json).context("the policy in force is not JSON")?;
    let Some(p4) = policy.pointer_mut("/sla/frontline/p4") else {
        bail!("the policy in force has no service-level targets (sla.frontline.p4)");
    };
    p4["acknowledge_secs"] = json!(secs);
    let short = publish(clients, policy.to_string()).await?;

    let ticket = format!("SLA-{}", uuid::Uuid::new_v4().simple());
    let written = clients
        .intake
        .submit_complaint(quiet_complaint(&ticket))
        .await
        .context("intake SubmitComplaint (the escalation's complaint) failed")?
        .into_inner();
    let routed_at = Instant::now();
    let id = written.complaint_id;
    let deadline = routed_at + Duration::from_secs(secs.into()) + GRACE;
    let mut restored = None;
    let mut priority_before = None;
    loop {
        let answer = clients
            .query
            .get_complaint(GetComplaintRequest {
                complaint_id: id.clone(),
                consistency: None,
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner);
        if let Ok(r) = &answer
            && let Some(d) = r.decisions.first()
        {
            if d.route != Route::Frontline as i32 {
                bail!("the escalation's complaint was not routed to the frontline");
            }
            if restored.is_none() {
                priority_before = Some(priority_name(d.priority));
                restored = Some(publish(clients, in_force.policy_json.clone()).await?);
            }
            if let Some(breach) = r.timeline.iter().find(|t| t.event_type == "sla_breached") {
                let detail: Value = serde_json::from_str(&breach.detail_json).unwrap_or_default();
                let priority_after = r
                    .complaint
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), |c| priority_name(c.priority));
                return Ok(Escalation {
                    complaint_id: id,
                    target_secs: secs,
                    short_version: short,
                    restored_version: restored.unwrap_or(0),
                    priority_before: priority_before.unwrap_or_default(),
                    priority_after,
                    late_by_ms: detail["late_by_ms"].as_i64().unwrap_or(-1),
                    seen_after: routed_at.elapsed(),
                });
            }
        }
        if Instant::now() > deadline {
            if restored.is_none() {
                let _ = publish(clients, in_force.policy_json.clone()).await;
            }
            bail!(
                "complaint {id} showed no sla_breached within {} s of routing: are the router's \
                 service-level timers on (ROUTER_SLA_TIMERS)?",
                deadline.duration_since(routed_at).as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn publish(clients: &mut Clients, policy_json: String) -> anyhow::Result<u32> {
    Ok(clients
        .admin
        .publish_policy(PublishPolicyRequest {
            policy_json,
            ..Default::default()
        })
        .await
        .context("router Admin.PublishPolicy failed")?
        .into_inner()
        .version)
}

/// A complaint nothing raises: a web form about billing from a standard
/// customer, so the frontline at P4.
fn quiet_complaint(ticket: &str) -> SubmitComplaintRequest {
    SubmitComplaintRequest {
        source_system: "demo-sla".to_owned(),
        external_ticket_id: ticket.to_owned(),
        customer: Some(Customer {
            customer_id: "demo-sla-customer".to_owned(),
            segment: "consumer".to_owned(),
            tier: CustomerTier::Standard as i32,
            lifetime_value_cents: 0,
            churn_risk_pct: 0,
            customer_ref: String::new(),
        }),
        channel: Channel::WebForm as i32,
        category: Category::Billing as i32,
        visibility: None,
        product_idea: false,
        item_sku: String::new(),
        summary: "Charged twice for one order.".to_owned(),
        occurred_at_ms: 0,
    }
}

fn priority_name(raw: i32) -> String {
    Priority::try_from(raw)
        .map(|p| p.as_str_name().trim_start_matches("PRIORITY_").to_owned())
        .unwrap_or_else(|_| raw.to_string())
}
