//! The helpdesk JSON format: one flat object per message, `type` naming the
//! command. Commands name their complaint by `complaint_id`, or by the
//! `source_system` and `external_ticket_id` it was submitted with. Enum values
//! are the short upper-case names (`PUBLIC_SOCIAL`, `PRODUCT_DEFECT`, `GOLD`).
//! The README has an example of every type.

use plaint_domain::event::ItemOutcome;
use plaint_domain::values::{AtField, ExternalTicketId, Problem, SourceSystem, ValidationError};
use plaint_domain::{Category, Channel, ComplaintId, CustomerTier};
use plaint_proto::convert::{WireNames, not_one_of};
use plaint_proto::{events as epb, intake as pb};
use serde::Deserialize;

use crate::commands::{self, Parsed};

/// Every message type, as `type` names it.
const MESSAGE_TYPES: [&str; 12] = [
    "submit",
    "follow_up",
    "change_visibility",
    "acknowledge",
    "assign",
    "authorize_return",
    "receive_item",
    "process_item",
    "ship_back",
    "resolve",
    "reopen",
    "withdraw",
];

/// A customer block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a customer object")]
struct JsonCustomer {
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    lifetime_value_cents: i64,
    #[serde(default)]
    churn_risk_pct: u32,
}

/// A visibility block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a visibility object")]
struct JsonVisibility {
    #[serde(default)]
    audience_reach: u64,
    #[serde(default)]
    shares: u64,
    #[serde(default)]
    media_attention: bool,
}

/// Every field any message type uses; each type reads the ones it needs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a helpdesk message object")]
struct JsonMessage {
    r#type: String,
    #[serde(default)]
    complaint_id: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    source_system: String,
    #[serde(default)]
    external_ticket_id: String,
    customer: Option<JsonCustomer>,
    channel: Option<String>,
    category: Option<String>,
    visibility: Option<JsonVisibility>,
    #[serde(default)]
    product_idea: bool,
    #[serde(default)]
    item_sku: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    occurred_at_ms: i64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    rma: String,
    outcome: Option<String>,
    #[serde(default)]
    tracking: String,
    #[serde(default)]
    satisfaction: u32,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

/// Parses a JSON helpdesk message. Errors name the field.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ValidationError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ValidationError::new("payload", Problem::Malformed { expected: "UTF-8" })
            .with_detail(e.valid_up_to())
    })?;
    let de = &mut serde_json::Deserializer::from_str(text);
    let m: JsonMessage = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "payload".to_owned()
        } else {
            path
        };
        ValidationError::new(
            field,
            Problem::Malformed {
                expected: "valid JSON of the helpdesk schema",
            },
        )
        .with_message(e.inner().to_string())
    })?;
    to_parsed(m)
}

/// Extra context for a validation error, without losing its field.
trait WithDetail {
    fn with_detail(self, at: usize) -> ValidationError;
    fn with_message(self, message: String) -> ValidationError;
}

impl WithDetail for ValidationError {
    fn with_detail(self, at: usize) -> ValidationError {
        ValidationError::new(format!("{} (byte {at})", self.field), self.problem)
    }
    fn with_message(self, message: String) -> ValidationError {
        ValidationError::new(format!("{}: {message}", self.field), self.problem)
    }
}

/// The number of a short enum name (`PUBLIC_SOCIAL`; the full wire name
/// `CHANNEL_PUBLIC_SOCIAL` is taken too); absent is 0, "none". An unknown name
/// is refused with every accepted short name.
fn enum_value<T: WireNames>(
    field: &str,
    value: Option<&str>,
    prefix: &str,
) -> Result<i32, ValidationError> {
    let Some(v) = value else { return Ok(0) };
    let upper = v.trim().to_ascii_uppercase();
    let short = upper.strip_prefix(prefix).unwrap_or(&upper);
    let names = T::wire_names();
    names
        .iter()
        .find(|(name, _)| name.strip_prefix(prefix) == Some(short))
        .map(|&(_, number)| number)
        .ok_or_else(|| {
            not_one_of(
                field,
                names
                    .iter()
                    .map(|(name, _)| name.strip_prefix(prefix).unwrap_or(name).to_owned()),
            )
        })
}

fn header(m: &JsonMessage) -> Result<Option<pb::CommandHeader>, ValidationError> {
    let complaint_id = if m.complaint_id.is_empty() && !m.source_system.is_empty() {
        let source = SourceSystem::parse(&m.source_system).at("source_system")?;
        let ticket = ExternalTicketId::parse(&m.external_ticket_id).at("external_ticket_id")?;
        ComplaintId::for_ticket(&source, &ticket).to_string()
    } else {
        m.complaint_id.clone()
    };
    Ok(Some(pb::CommandHeader {
        complaint_id,
        request_id: m.request_id.clone(),
    }))
}

fn visibility(v: Option<&JsonVisibility>) -> Option<epb::Visibility> {
    v.map(|v| epb::Visibility {
        audience_reach: v.audience_reach,
        shares: v.shares,
        media_attention: v.media_attention,
    })
}

fn to_parsed(m: JsonMessage) -> Result<Parsed, ValidationError> {
    let h = header(&m)?;
    match m.r#type.as_str() {
        "submit" => {
            let c = m.customer.unwrap_or_default();
            commands::submit(pb::SubmitComplaintRequest {
                source_system: m.source_system,
                external_ticket_id: m.external_ticket_id,
                customer: Some(epb::Customer {
                    customer_id: c.customer_id,
                    customer_ref: String::new(),
                    segment: c.segment,
                    tier: enum_value::<CustomerTier>(
                        "customer.tier",
                        c.tier.as_deref(),
                        "CUSTOMER_TIER_",
                    )?,
                    lifetime_value_cents: c.lifetime_value_cents,
                    churn_risk_pct: c.churn_risk_pct,
                }),
                channel: enum_value::<Channel>("channel", m.channel.as_deref(), "CHANNEL_")?,
                category: enum_value::<Category>("category", m.category.as_deref(), "CATEGORY_")?,
                visibility: visibility(m.visibility.as_ref()),
                product_idea: m.product_idea,
                item_sku: m.item_sku,
                summary: m.summary,
                occurred_at_ms: m.occurred_at_ms,
            })
        }
        "follow_up" => commands::follow_up(pb::RecordFollowUpRequest {
            header: h,
            text: m.text,
        }),
        "change_visibility" => commands::change_visibility(pb::ChangeVisibilityRequest {
            header: h,
            visibility: visibility(m.visibility.as_ref()),
        }),
        "acknowledge" => commands::acknowledge(pb::AcknowledgeRequest {
            header: h,
            by: m.by,
        }),
        "assign" => commands::assign(pb::AssignRequest {
            header: h,
            assignee: m.assignee,
        }),
        "authorize_return" => commands::authorize_return(pb::AuthorizeReturnRequest {
            header: h,
            rma: m.rma,
        }),
        "receive_item" => commands::receive_item(pb::ReceiveItemRequest { header: h }),
        "process_item" => commands::process_item(pb::ProcessItemRequest {
            header: h,
            outcome: enum_value::<ItemOutcome>("outcome", m.outcome.as_deref(), "ITEM_OUTCOME_")?,
        }),
        "ship_back" => commands::ship_back(pb::ShipBackRequest {
            header: h,
            tracking: m.tracking,
        }),
        "resolve" => commands::resolve(pb::ResolveRequest {
            header: h,
            satisfaction: m.satisfaction,
            note: m.note,
        }),
        "reopen" => commands::reopen(pb::ReopenRequest {
            header: h,
            reason: m.reason,
        }),
        "withdraw" => commands::withdraw(pb::WithdrawRequest {
            header: h,
            reason: m.reason,
        }),
        _ => Err(not_one_of(
            "type",
            MESSAGE_TYPES.iter().map(|t| (*t).to_owned()),
        )),
    }
}
