//! The audit trail: every administrative change, who made it and the value
//! before and after, appended to the log's audit subject.

use plaint_bus::{AppendError, EventLog, Expect};
use plaint_domain::access::{AccessEvent, AuditEntry};
use plaint_domain::event::{Envelope, EventPayload};
use plaint_domain::values::{FreeText, Label, MAX_LABEL_LEN, MAX_TEXT_BYTES};
use plaint_domain::{EventId, SCHEMA_VERSION, Timestamp};
use plaint_runtime::gate::Caller;

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The gRPC method, e.g. `SetClimate`.
    pub action: &'static str,
    /// What it was done to; empty when the action names it.
    pub target: &'a str,
    /// The value before, as JSON; empty when there was none.
    pub before: &'a str,
    /// The value after, as JSON; empty when there is none.
    pub after: &'a str,
}

/// The change was made but its audit entry could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the audit entry of {action} could not be written: {cause}")]
pub struct NotAudited {
    /// The action.
    pub action: &'static str,
    /// Why.
    pub cause: String,
}

impl From<NotAudited> for tonic::Status {
    /// UNAVAILABLE: the change stands (the caller must not repeat it
    /// blindly), but the trail misses it; the log has the cause.
    fn from(e: NotAudited) -> Self {
        tonic::Status::unavailable(format!(
            "the change was made, but its audit entry could not be written ({})",
            e.action
        ))
    }
}

/// Appends the audit entry of `change`, made by `caller` at `at`.
pub async fn record(
    log: &EventLog,
    caller: &Caller,
    at: Timestamp,
    change: Change<'_>,
) -> Result<u64, NotAudited> {
    let not_audited = |cause: String| NotAudited {
        action: change.action,
        cause,
    };
    let entry = AuditEntry {
        actor: label(caller.id()),
        action: label(change.action),
        target: text(change.target),
        before: text(change.before),
        after: text(change.after),
    };
    let envelope = Envelope {
        event_id: EventId::from_uuid(uuid::Uuid::new_v4()),
        complaint_id: None,
        occurred_at: at,
        schema_version: SCHEMA_VERSION,
        causation_id: None,
        correlation_id: None,
        payload: EventPayload::Access(AccessEvent::Audited(Box::new(entry))),
    };
    let appended = log
        .append(&log.names().audit(), &envelope, Expect::Any, None)
        .await
        .map_err(|e| match e {
            AppendError::Bus(e) => not_audited(e.to_string()),
            AppendError::WrongLastSequence => not_audited("unexpected sequence".into()),
        });
    match appended {
        Ok(a) => Ok(a.sequence),
        Err(e) => {
            metrics::counter!("plaint_audit_failures_total").increment(1);
            tracing::error!(action = change.action, caller = %caller, error = %e, "an administrative change is not audited");
            Err(e)
        }
    }
}

/// A label of at most its limit, cut at a character boundary: an audit entry
/// is never refused for the length of what it reports.
fn label(raw: &str) -> Label {
    Label::parse(cut(raw, MAX_LABEL_LEN))
        .or_else(|_| Label::parse("unnamed"))
        .unwrap_or_else(|_| unreachable_label())
}

fn text(raw: &str) -> FreeText {
    FreeText::parse(&cut(raw, MAX_TEXT_BYTES).replace('\0', "")).unwrap_or_default()
}

fn cut(raw: &str, max: usize) -> &str {
    if raw.len() <= max {
        return raw;
    }
    let mut end = max;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    &raw[..end]
}

#[allow(clippy::expect_used)]
fn unreachable_label() -> Label {
    // "unnamed" is a valid label; a failure here is a bug in this file.
    Label::parse("unnamed").expect("a constant label")
}
