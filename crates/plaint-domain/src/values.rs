//! Parsed newtypes. Raw strings and numbers are checked once, at the edge, and
//! nothing deeper in the system sees them unchecked. Every limit is a named
//! constant so that error messages, documentation and tests agree.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use crate::time::{EARLIEST_MS, MAX_FUTURE_SKEW_MS, Timestamp};

/// Longest source-system name, in bytes.
pub const MAX_SOURCE_SYSTEM_LEN: usize = 64;
/// Longest external ticket id, in bytes.
pub const MAX_EXTERNAL_TICKET_ID_LEN: usize = 128;
/// Longest customer id, in bytes.
pub const MAX_CUSTOMER_ID_LEN: usize = 128;
/// Longest segment name, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;
/// Hexadecimal digits of a customer's pseudonym (128 bits).
pub const CUSTOMER_REF_LEN: usize = 32;
/// Longest short label (assignee, RMA, tracking number, SKU, operator name), in bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// Longest free text (summary, follow-up), in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;
/// Largest audience reach or share count accepted (beyond any real audience).
pub const MAX_REACH: u64 = 10_000_000_000;
/// Largest money amount, in minor units (one trillion in major units).
pub const MAX_MONEY_CENTS: i64 = 100_000_000_000_000;
/// Lowest satisfaction score.
pub const MIN_SATISFACTION: u32 = 1;
/// Highest satisfaction score.
pub const MAX_SATISFACTION: u32 = 10;
/// Highest churn risk, in percent.
pub const MAX_CHURN_RISK_PCT: u32 = 100;

/// What is wrong with one input value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A required value is missing or empty.
    #[error("is required")]
    Missing,
    /// Longer than the limit.
    #[error("is {actual} bytes, the limit is {max}")]
    TooLong {
        /// The limit, in bytes.
        max: usize,
        /// The length given.
        actual: usize,
    },
    /// A number outside its range.
    #[error("is {actual}, it must be between {min} and {max}")]
    OutOfRange {
        /// Smallest allowed.
        min: i128,
        /// Largest allowed.
        max: i128,
        /// The value given.
        actual: i128,
    },
    /// Characters outside the allowed set.
    #[error("contains characters outside {allowed}")]
    BadCharacters {
        /// The allowed set, described.
        allowed: &'static str,
    },
    /// Not of the expected form.
    #[error("is not {expected}")]
    Malformed {
        /// The expected form, described.
        expected: &'static str,
    },
    /// A name (or enum number) outside the accepted set. What was given is
    /// not repeated: it may be anything, of any length.
    #[error("is not one of {}", .accepted.join(", "))]
    NotOneOf {
        /// Every accepted value, as the caller writes them.
        accepted: Vec<String>,
    },
}

/// A bad input value, with the path of the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ValidationError {
    /// Field path as the caller sees it, e.g. `customer.customer_id`.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl ValidationError {
    /// A problem with the named field.
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }

    /// The same problem with its field put under `prefix` (`prefix.field`).
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = if self.field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", self.field)
            };
        }
        self
    }
}

/// Attaches a field path to a [`Problem`].
pub trait AtField<T> {
    /// Names the field the problem belongs to.
    fn at(self, field: &str) -> Result<T, ValidationError>;

    /// Names a field under `prefix`. The path is built only for an error:
    /// decoding runs for every event the services read.
    fn at_in(self, prefix: &str, field: &str) -> Result<T, ValidationError>;
}

impl<T> AtField<T> for Result<T, Problem> {
    fn at(self, field: &str) -> Result<T, ValidationError> {
        self.map_err(|problem| ValidationError::new(field, problem))
    }

    fn at_in(self, prefix: &str, field: &str) -> Result<T, ValidationError> {
        self.map_err(|problem| ValidationError::new(field, problem).within(prefix))
    }
}

fn check_len(raw: &str, max: usize) -> Result<(), Problem> {
    if raw.is_empty() {
        return Err(Problem::Missing);
    }
    if raw.len() > max {
        return Err(Problem::TooLong {
            max,
            actual: raw.len(),
        });
    }
    Ok(())
}

fn check_range(actual: i128, min: i128, max: i128) -> Result<(), Problem> {
    if actual < min || actual > max {
        return Err(Problem::OutOfRange { min, max, actual });
    }
    Ok(())
}

/// Defines a bounded, non-empty, trimmed text newtype.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a raw value: trimmed, non-empty, at most the limit, allowed characters only.
            pub fn parse(raw: &str) -> Result<Self, Problem> {
                let trimmed = Self::check(raw)?;
                Ok(Self(trimmed.to_owned()))
            }

            fn check(raw: &str) -> Result<&str, Problem> {
                let trimmed = raw.trim();
                check_len(trimmed, $max)?;
                let ok: fn(char) -> bool = $ok;
                if !trimmed.chars().all(ok) {
                    return Err(Problem::BadCharacters { allowed: $allowed });
                }
                Ok(trimmed)
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The marker that stands where an erased value was.
            #[allow(dead_code)]
            pub(crate) fn erased() -> Self {
                Self(crate::personal::ERASED.to_owned())
            }
        }

        impl TryFrom<String> for $name {
            type Error = Problem;
            fn try_from(raw: String) -> Result<Self, Problem> {
                // Keeps the string it was given when it needs no trimming
                // (every value read back from the log or a projection).
                let trimmed = Self::check(&raw)?;
                if trimmed.len() == raw.len() {
                    Ok(Self(raw))
                } else {
                    Ok(Self(trimmed.to_owned()))
                }
            }
        }

        // By hand rather than `into = "String"`, which would copy the text
        // every time it is serialized.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn is_slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn is_lower_hex(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

fn is_visible_char(c: char) -> bool {
    !c.is_control()
}

label!(
    /// The system a complaint came from, e.g. `zendesk-eu`.
    SourceSystem,
    MAX_SOURCE_SYSTEM_LEN,
    "ASCII letters, digits, '-', '_' and '.'",
    is_slug_char
);
label!(
    /// The source system's own ticket id.
    ExternalTicketId,
    MAX_EXTERNAL_TICKET_ID_LEN,
    "printable characters",
    is_visible_char
);
label!(
    /// A customer, as the source systems know them.
    CustomerId,
    MAX_CUSTOMER_ID_LEN,
    "printable characters",
    is_visible_char
);
label!(
    /// A customer's keyed pseudonym: what routing knows them by. The same
    /// customer id always gives the same pseudonym under one secret, and the
    /// id cannot be read back from it.
    CustomerRef,
    CUSTOMER_REF_LEN,
    "lowercase hexadecimal digits",
    is_lower_hex
);
label!(
    /// A customer segment, for the fairness share of CEO engagements.
    Segment,
    MAX_SEGMENT_LEN,
    "ASCII letters, digits, '-', '_' and '.'",
    is_slug_char
);
label!(
    /// A short label: an assignee, an RMA, a tracking number, a SKU, an operator name.
    Label,
    MAX_LABEL_LEN,
    "printable characters",
    is_visible_char
);

/// Free text written by a person: UTF-8, at most [`MAX_TEXT_BYTES`]. May be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct FreeText(String);

impl FreeText {
    /// Parses text: at most [`MAX_TEXT_BYTES`] bytes, no NUL characters.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), Problem> {
        if raw.len() > MAX_TEXT_BYTES {
            return Err(Problem::TooLong {
                max: MAX_TEXT_BYTES,
                actual: raw.len(),
            });
        }
        if raw.contains('\0') {
            return Err(Problem::BadCharacters {
                allowed: "text without NUL",
            });
        }
        Ok(())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The marker that stands where an erased text was.
    pub(crate) fn erased() -> Self {
        Self(crate::personal::ERASED.to_owned())
    }
}

impl TryFrom<String> for FreeText {
    type Error = Problem;
    fn try_from(raw: String) -> Result<Self, Problem> {
        Self::check(&raw)?;
        Ok(Self(raw))
    }
}

impl Serialize for FreeText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl From<FreeText> for String {
    fn from(v: FreeText) -> String {
        v.0
    }
}

/// Deserializes a number newtype through its `parse`, so that a value read
/// back (from the log, from a command) is checked like one parsed at the edge.
macro_rules! deserialize_via_parse {
    ($name:ident, $raw:ty) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(<$raw>::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

deserialize_via_parse!(Reach, u64);
deserialize_via_parse!(Satisfaction, u32);
deserialize_via_parse!(Money, i64);
deserialize_via_parse!(ChurnRisk, u32);

/// An audience size or a share count, at most [`MAX_REACH`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Reach(u64);

impl Reach {
    /// Parses a count.
    pub fn parse(raw: u64) -> Result<Self, Problem> {
        check_range(raw.into(), 0, MAX_REACH.into())?;
        Ok(Self(raw))
    }

    /// The count.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A satisfaction score on the 1..=10 scale of the ACSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Satisfaction(u8);

impl Satisfaction {
    /// Parses a score in `MIN_SATISFACTION..=MAX_SATISFACTION`.
    pub fn parse(raw: u32) -> Result<Self, Problem> {
        check_range(raw.into(), MIN_SATISFACTION.into(), MAX_SATISFACTION.into())?;
        Ok(Self(raw as u8))
    }

    /// The score.
    pub const fn get(self) -> u32 {
        self.0 as u32
    }

    /// A 9 or a 10: the customer is about as loyal as before complaining.
    pub const fn is_recovered(self) -> bool {
        self.0 >= 9
    }
}

/// A non-negative money amount in minor units (cents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Money(i64);

impl Money {
    /// Parses an amount in `0..=MAX_MONEY_CENTS`.
    pub fn parse(cents: i64) -> Result<Self, Problem> {
        check_range(cents.into(), 0, MAX_MONEY_CENTS.into())?;
        Ok(Self(cents))
    }

    /// The amount in cents.
    pub const fn cents(self) -> i64 {
        self.0
    }
}

/// Churn risk in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ChurnRisk(u8);

impl ChurnRisk {
    /// Parses a percentage in `0..=MAX_CHURN_RISK_PCT`.
    pub fn parse(pct: u32) -> Result<Self, Problem> {
        check_range(pct.into(), 0, MAX_CHURN_RISK_PCT.into())?;
        Ok(Self(pct as u8))
    }

    /// The percentage.
    pub const fn pct(self) -> u32 {
        self.0 as u32
    }
}

/// Checks an instant a caller reported against the receiving clock `now`:
/// not before 2000, not more than the skew allowance ahead of `now`.
pub fn parse_occurred_at(ms: i64, now: Timestamp) -> Result<Timestamp, Problem> {
    let latest = now.as_millis().saturating_add(MAX_FUTURE_SKEW_MS);
    check_range(ms.into(), EARLIEST_MS.into(), latest.into())?;
    Ok(Timestamp::from_millis(ms))
}

/// Namespace for complaint ids derived from (source system, external ticket id).
const COMPLAINT_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_0e5e_9a57_4b0c_8d6e_2f1b_7c3a_9e41);
/// Namespace for event ids derived from a request id and what it did.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x0b6f_3c5a_1d2e_4f70_9a8b_c4d3_e2f1_a0b9);

/// A complaint's identity. Derived from (source system, external ticket id), so a
/// resubmission maps to the same complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ComplaintId(Uuid);

impl ComplaintId {
    /// The id of the complaint a source system knows by this ticket id.
    pub fn for_ticket(source: &SourceSystem, ticket: &ExternalTicketId) -> Self {
        // A separator that cannot occur in a source-system name keeps
        // ("a", "b:c") and ("a:b", "c") apart.
        let key = format!("{}\u{1f}{}", source.as_str(), ticket.as_str());
        Self(Uuid::new_v5(&COMPLAINT_NAMESPACE, key.as_bytes()))
    }

    /// Parses the canonical hyphenated UUID form.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        parse_uuid(raw).map(Self)
    }

    /// Wraps a UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// A short token safe in a NATS subject (the simple hex form).
    pub fn subject_token(&self) -> String {
        self.0.simple().to_string()
    }
}

impl fmt::Display for ComplaintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An event's identity; also the log's deduplication key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(Uuid);

impl EventId {
    /// Parses the canonical hyphenated UUID form.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        parse_uuid(raw).map(Self)
    }

    /// Wraps a UUID (the caller chooses how it was made).
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// A deterministic id for the `index`-th event that `origin` produced under
    /// `purpose`, so that a retried request yields the same event ids.
    pub fn derived(origin: Uuid, purpose: &str, index: u32) -> Self {
        let mut key = Vec::with_capacity(16 + purpose.len() + 4);
        key.extend_from_slice(origin.as_bytes());
        key.extend_from_slice(purpose.as_bytes());
        key.extend_from_slice(&index.to_be_bytes());
        Self(Uuid::new_v5(&EVENT_NAMESPACE, &key))
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, Problem> {
    if raw.is_empty() {
        return Err(Problem::Missing);
    }
    Uuid::try_parse(raw).map_err(|_| Problem::Malformed { expected: "a UUID" })
}

impl CustomerRef {
    /// The pseudonym spelled by a 128-bit digest.
    pub fn from_digest(digest: &[u8; CUSTOMER_REF_LEN / 2]) -> Self {
        use std::fmt::Write;
        let mut hex = String::with_capacity(CUSTOMER_REF_LEN);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        Self(hex)
    }
}
