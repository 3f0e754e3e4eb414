//! The receipt intake sends an integration for each inbound message: stored,
//! a duplicate of an earlier submission, or refused and why.

use plaint_bus::Delivery;
use plaint_bus::outbound::{OutboundMessage, Receipt, ReceiptOutcome};
use plaint_domain::values::Problem;
use uuid::Uuid;

use crate::error::Error;
use crate::service::Written;

/// The receipt of a stored message. A submission first stored by another
/// message is a duplicate, naming the original; a message stored before by
/// an earlier delivery of itself is stored.
pub(super) fn stored(d: &Delivery, request_id: Uuid, w: &Written) -> OutboundMessage {
    let outcome = if w.duplicate_of_another(Some(request_id)) {
        ReceiptOutcome::Duplicate {
            complaint_id: w.complaint_id.to_string(),
            original_sequence: w.sequence,
            original_request_id: w.original_request_id.map(|r| r.to_string()),
        }
    } else {
        ReceiptOutcome::Stored {
            complaint_id: w.complaint_id.to_string(),
            sequence: w.sequence,
            event_id: w.event_id.to_string(),
        }
    };
    receipt(d, request_id, outcome)
}

/// The receipt of a refused message: the reason the dead letter keeps, and
/// the field and limit when a field broke one.
pub(super) fn refused(
    d: &Delivery,
    request_id: Uuid,
    reason: &str,
    cause: Option<&Error>,
) -> OutboundMessage {
    let (field, limit) = match cause {
        Some(Error::Validation(v)) => (Some(v.field.clone()), limit_of(&v.problem)),
        _ => (None, None),
    };
    receipt(
        d,
        request_id,
        ReceiptOutcome::Refused {
            reason: reason.to_owned(),
            field,
            limit,
        },
    )
}

fn receipt(d: &Delivery, request_id: Uuid, outcome: ReceiptOutcome) -> OutboundMessage {
    OutboundMessage::Receipt(Receipt {
        request_id: request_id.to_string(),
        inbound_sequence: d.stream_sequence,
        message_id: d.message_id().map(str::to_owned),
        outcome,
    })
}

/// The limit a problem names, in words.
fn limit_of(problem: &Problem) -> Option<String> {
    match problem {
        Problem::TooLong { max, .. } => Some(format!("{max} bytes")),
        Problem::OutOfRange { min, max, .. } => Some(format!("{min} to {max}")),
        Problem::Missing
        | Problem::BadCharacters { .. }
        | Problem::Malformed { .. }
        | Problem::NotOneOf { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_limit_is_named_as_one() {
        assert_eq!(
            limit_of(&Problem::TooLong {
                max: 2048,
                actual: 5000
            }),
            Some("2048 bytes".to_owned())
        );
        assert_eq!(
            limit_of(&Problem::OutOfRange {
                min: 0,
                max: 100,
                actual: 101
            }),
            Some("0 to 100".to_owned())
        );
        assert_eq!(limit_of(&Problem::Missing), None);
    }
}
