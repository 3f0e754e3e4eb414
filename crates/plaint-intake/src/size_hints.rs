//! What to tell a caller whose request is over the transport's size limit:
//! the limits of the request's own fields, which are far smaller, so the
//! caller knows which field to cut.

use plaint_domain::values::{
    MAX_CUSTOMER_ID_LEN, MAX_EXTERNAL_TICKET_ID_LEN, MAX_LABEL_LEN, MAX_SEGMENT_LEN,
    MAX_SOURCE_SYSTEM_LEN, MAX_TEXT_BYTES,
};
use plaint_proto::intake::intake_server::SERVICE_NAME;
use plaint_runtime::wire_errors::WireErrorsLayer;

/// The text fields of each `Intake` method's request, with their limits in bytes.
const FIELD_LIMITS: [(&str, &[(&str, usize)]); 9] = [
    (
        "SubmitComplaint",
        &[
            ("source_system", MAX_SOURCE_SYSTEM_LEN),
            ("external_ticket_id", MAX_EXTERNAL_TICKET_ID_LEN),
            ("customer.customer_id", MAX_CUSTOMER_ID_LEN),
            ("customer.segment", MAX_SEGMENT_LEN),
            ("item_sku", MAX_LABEL_LEN),
            ("summary", MAX_TEXT_BYTES),
        ],
    ),
    ("RecordFollowUp", &[("text", MAX_TEXT_BYTES)]),
    ("Acknowledge", &[("by", MAX_LABEL_LEN)]),
    ("Assign", &[("assignee", MAX_LABEL_LEN)]),
    ("AuthorizeReturn", &[("rma", MAX_LABEL_LEN)]),
    ("ShipBack", &[("tracking", MAX_LABEL_LEN)]),
    ("Resolve", &[("note", MAX_TEXT_BYTES)]),
    ("Reopen", &[("reason", MAX_TEXT_BYTES)]),
    ("Withdraw", &[("reason", MAX_TEXT_BYTES)]),
];

/// The field limits of the request of the method at `path`
/// (`/plaint.intake.v1.Intake/SubmitComplaint`), as one sentence.
pub(crate) fn hint(path: &str) -> Option<String> {
    let method = path
        .strip_prefix('/')?
        .strip_prefix(SERVICE_NAME)?
        .strip_prefix('/')?;
    let (_, fields) = FIELD_LIMITS.iter().find(|(m, _)| *m == method)?;
    let limits: Vec<String> = fields
        .iter()
        .map(|(field, max)| format!("{field} {max} bytes"))
        .collect();
    Some(format!(
        "the limits of a {method} request's fields: {}",
        limits.join(", ")
    ))
}

/// The transport-error layer of the intake's gRPC server, for requests
/// capped at `limit_bytes`.
pub(crate) fn wire_errors_layer(limit_bytes: usize) -> WireErrorsLayer {
    WireErrorsLayer::new(limit_bytes, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_hint_names_every_text_field_limit() {
        let h = hint("/plaint.intake.v1.Intake/SubmitComplaint").unwrap_or_default();
        assert!(
            h.contains(&format!("summary {MAX_TEXT_BYTES} bytes")),
            "{h}"
        );
        assert!(
            h.contains(&format!("source_system {MAX_SOURCE_SYSTEM_LEN} bytes")),
            "{h}"
        );
        assert_eq!(hint("/plaint.intake.v1.IntakeAdmin/ListDeadLetters"), None);
        assert_eq!(hint("/other.Intake/SubmitComplaint"), None);
    }
}
