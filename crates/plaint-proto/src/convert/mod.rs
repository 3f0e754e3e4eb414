//! Conversions between wire and domain types. Wire → domain parses and names
//! the offending field on failure; domain → wire cannot fail.

mod access;
mod decision;
mod facts;

pub use access::{access_event_from_wire, access_event_to_wire};
pub use decision::{decision_from_wire, decision_to_wire};
pub use facts::{
    customer_from_wire, facts_from_wire, facts_to_wire, visibility_from_wire, visibility_to_wire,
};

use plaint_domain::event::ItemOutcome;
use plaint_domain::lifecycle::Status;
use plaint_domain::routing::GateKind;
use plaint_domain::sla::SlaTarget;
use plaint_domain::values::{AtField, FreeText, Label, Problem, ValidationError};
use plaint_domain::{
    Category, Channel, Climate, CustomerTier, FulfilmentKind, Priority, Route, StanceAlignment,
};

use crate::{events as pb, router as rpb};

/// Parses a wire value into a domain value; errors name `field`.
pub trait FromWire<W>: Sized {
    /// Parses `wire`, naming `field` in the error.
    fn from_wire(wire: W, field: &str) -> Result<Self, ValidationError>;
}

/// Writes a domain value in its wire form.
pub trait ToWire<W> {
    /// The wire form.
    fn to_wire(&self) -> W;
}

/// The values a wire enum accepts: every name the schema gives, but the
/// `UNSPECIFIED` zero.
pub trait WireNames {
    /// Each accepted name (`CHANNEL_PUBLIC_SOCIAL`) with its number.
    fn wire_names() -> Vec<(&'static str, i32)>;
}

/// The error for a number the schema of `T` does not know: it lists what is
/// accepted, name and number, so the caller can put it right.
pub fn unknown_number<T: WireNames>(field: &str) -> ValidationError {
    not_one_of(
        field,
        T::wire_names()
            .into_iter()
            .map(|(name, number)| format!("{name} ({number})")),
    )
}

/// The error for a value of `field` outside `accepted`.
pub fn not_one_of(field: &str, accepted: impl IntoIterator<Item = String>) -> ValidationError {
    ValidationError::new(
        field,
        Problem::NotOneOf {
            accepted: accepted.into_iter().collect(),
        },
    )
}

/// Maps a protobuf enum to a domain enum both ways. `UNSPECIFIED` (0) is a
/// missing value; a number the schema does not know is malformed.
macro_rules! enum_map {
    ($pb:ty, $dom:ty, { $($p:ident => $d:ident),* $(,)? }) => {
        impl ToWire<i32> for $dom {
            fn to_wire(&self) -> i32 {
                match self { $(<$dom>::$d => <$pb>::$p as i32),* }
            }
        }

        impl WireNames for $dom {
            fn wire_names() -> Vec<(&'static str, i32)> {
                vec![$((<$pb>::$p.as_str_name(), <$pb>::$p as i32)),*]
            }
        }

        impl FromWire<i32> for $dom {
            fn from_wire(raw: i32, field: &str) -> Result<Self, ValidationError> {
                match <$pb>::try_from(raw) {
                    $(Ok(<$pb>::$p) => Ok(<$dom>::$d),)*
                    Ok(_) => Err(ValidationError::new(field, Problem::Missing)),
                    Err(_) => Err(unknown_number::<$dom>(field)),
                }
            }
        }
    };
}

enum_map!(pb::Channel, Channel, {
    PublicSocial => PublicSocial, PrivateSocial => PrivateSocial, Email => Email, Phone => Phone,
    Chat => Chat, WebForm => WebForm, Store => Store, LetterToCeo => LetterToCeo,
});
enum_map!(pb::Category, Category, {
    ProductDefect => ProductDefect, RepairRequest => RepairRequest, Return => Return,
    Exchange => Exchange, Billing => Billing, Delivery => Delivery, Service => Service,
    ProductIdea => ProductIdea, SocialIssue => SocialIssue, Other => Other,
});
enum_map!(pb::CustomerTier, CustomerTier, {
    Standard => Standard, Silver => Silver, Gold => Gold, Platinum => Platinum,
});
enum_map!(pb::Route, Route, {
    Ceo => Ceo, Frontline => Frontline, ReverseLogistics => ReverseLogistics,
});
enum_map!(pb::FulfilmentKind, FulfilmentKind, { Repair => Repair, Replace => Replace, Refund => Refund });
enum_map!(pb::Priority, Priority, { P1 => P1, P2 => P2, P3 => P3, P4 => P4 });
enum_map!(pb::Climate, Climate, { Good => Good, Neutral => Neutral, Bad => Bad });
enum_map!(pb::StanceAlignment, StanceAlignment, {
    Aligned => Aligned, Misaligned => Misaligned, Unknown => Unknown,
});
enum_map!(pb::ItemOutcome, ItemOutcome, { Repaired => Repaired, Replaced => Replaced, Refunded => Refunded });
enum_map!(pb::SlaTarget, SlaTarget, { Acknowledge => Acknowledge, Resolve => Resolve });
enum_map!(pb::GateKind, GateKind, {
    Climate => Climate, Stance => Stance, Cooldown => Cooldown, SegmentShare => SegmentShare,
    Budget => Budget,
});
enum_map!(rpb::Status, Status, {
    Received => Received, Routed => Routed, Acknowledged => Acknowledged, Assigned => Assigned,
    Resolved => Resolved, Reopened => Reopened, Withdrawn => Withdrawn,
});

/// An optional enum: `UNSPECIFIED` means "none".
pub fn optional_enum<T: FromWire<i32>>(
    raw: i32,
    field: &str,
) -> Result<Option<T>, ValidationError> {
    if raw == 0 {
        return Ok(None);
    }
    T::from_wire(raw, field).map(Some)
}

/// A required short label.
pub fn label(raw: &str, field: &str) -> Result<Label, ValidationError> {
    Label::parse(raw).at(field)
}

/// An optional short label: empty means "none".
pub fn optional_label(raw: &str, field: &str) -> Result<Option<Label>, ValidationError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    label(raw, field).map(Some)
}

/// Free text (may be empty).
pub fn text(raw: &str, field: &str) -> Result<FreeText, ValidationError> {
    FreeText::parse(raw).at(field)
}
