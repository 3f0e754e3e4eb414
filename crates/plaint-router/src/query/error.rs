//! The query service's errors and their one mapping to gRPC status codes.

use plaint_domain::ValidationError;
use plaint_domain::routing::PolicyError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use plaint_projection::store::StoreError;

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A request field is invalid: `INVALID_ARGUMENT` with a field violation.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The candidate policy is not valid: `INVALID_ARGUMENT` naming its field.
    #[error("{field}: {message}")]
    BadPolicy {
        /// Field path, `policy_json` or `policy_json.<path>`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such complaint: `NOT_FOUND`.
    #[error("complaint {0} not found")]
    NotFound(String),
    /// The projection did not reach the sequence asked for in time: `DEADLINE_EXCEEDED`.
    #[error(
        "the projection has applied sequence {projected}, not yet min_sequence {min_sequence}; retry later"
    )]
    NotYet {
        /// The sequence asked for.
        min_sequence: u64,
        /// The sequence reached.
        projected: u64,
    },
    /// A simulation's span holds more complaints than one replays:
    /// `INVALID_ARGUMENT` naming the span's fields and the limit.
    #[error(
        "from_ms..to_ms: the span holds {complaints} complaints; one simulation replays at most \
         {limit}, all of them or none: ask for a shorter span"
    )]
    SpanTooLarge {
        /// Complaints received in the span.
        complaints: u64,
        /// The most one simulation replays.
        limit: u64,
    },
    /// The log could not be read for a past answer: `UNAVAILABLE` (the cause is logged).
    #[error("the event log cannot be read now")]
    Log(#[from] plaint_bus::BusError),
    /// This replica was built without the log: `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed: `UNAVAILABLE` or `INTERNAL`; the cause is logged, not returned.
    #[error("projection store failed")]
    Store(#[from] StoreError),
}

impl From<PolicyError> for QueryError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Syntax { .. } => QueryError::BadPolicy {
                field: "policy_json".to_owned(),
                message: e.to_string(),
            },
            PolicyError::Invalid(v) => QueryError::BadPolicy {
                field: format!("policy_json.{}", v.field),
                message: v.problem.to_string(),
            },
        }
    }
}

impl From<QueryError> for Status {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(v) => Status::with_error_details(
                Code::InvalidArgument,
                v.to_string(),
                ErrorDetails::with_bad_request_violation(v.field.clone(), v.problem.to_string()),
            ),
            QueryError::BadPolicy { field, message } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {message}"),
                ErrorDetails::with_bad_request_violation(field, message),
            ),
            QueryError::NotFound(_) => Status::not_found(e.to_string()),
            QueryError::SpanTooLarge { limit, .. } => Status::with_error_details(
                Code::InvalidArgument,
                e.to_string(),
                ErrorDetails::with_bad_request_violation(
                    "from_ms",
                    format!("the span holds more than {limit} complaints"),
                ),
            ),
            QueryError::NotYet { .. } => Status::deadline_exceeded(e.to_string()),
            QueryError::Log(cause) => {
                tracing::warn!(error = %cause, "cannot read the log for a past answer");
                Status::unavailable("the event log cannot be read now")
            }
            QueryError::Unavailable(_) => Status::unavailable(e.to_string()),
            QueryError::Store(StoreError::Database(
                cause @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)),
            )) => {
                tracing::warn!(error = %cause, "projection database unavailable");
                Status::unavailable("projection database unavailable")
            }
            QueryError::Store(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
