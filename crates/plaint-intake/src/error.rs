//! The intake's errors and their one mapping to gRPC status codes.

use plaint_bus::{AppendError, BusError};
use plaint_domain::{DomainError, ValidationError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why a command was not stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field breaks a rule: `INVALID_ARGUMENT` with a field violation.
    #[error("{0}")]
    Validation(#[from] ValidationError),
    /// No such complaint: `NOT_FOUND`.
    #[error("complaint {0} not found")]
    NotFound(String),
    /// The command does not fit the complaint's state: `FAILED_PRECONDITION`.
    #[error("{0}")]
    Rejected(DomainError),
    /// A helpdesk integration spoke for a complaint of another source
    /// system: `PERMISSION_DENIED` (the helpdesk dead-letters it).
    #[error(
        "integration {integration} speaks only for complaints of source system {integration}; this one is {source_system}'s"
    )]
    NotItsOwn {
        /// Who sent it (its inbound subject).
        integration: String,
        /// Whose complaint it named.
        source_system: String,
    },
    /// Other writers kept changing the complaint: `ABORTED`, safe to retry.
    #[error("the complaint kept changing under {attempts} attempts; retry")]
    Conflict {
        /// Attempts made.
        attempts: u32,
    },
    /// The event log is unreachable: `UNAVAILABLE`, safe to retry with the same ids.
    #[error("the event log is unavailable")]
    Unavailable(#[source] BusError),
    /// Anything else: `INTERNAL`; the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] BusError),
}

impl From<BusError> for Error {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Unavailable(_) | BusError::Connect(_) => Error::Unavailable(e),
            BusError::JetStream(_)
            | BusError::Corrupt { .. }
            | BusError::TooManyEvents { .. }
            | BusError::Sealing(_) => Error::Internal(e),
        }
    }
}

impl From<AppendError> for Error {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::WrongLastSequence => Error::Conflict { attempts: 1 },
            AppendError::Bus(b) => b.into(),
        }
    }
}

impl From<DomainError> for Error {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => Error::NotFound(String::new()),
            other => Error::Rejected(other),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(v) => Status::with_error_details(
                Code::InvalidArgument,
                v.to_string(),
                ErrorDetails::with_bad_request_violation(v.field.clone(), v.problem.to_string()),
            ),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::Rejected(d) => Status::failed_precondition(d.to_string()),
            Error::NotItsOwn { .. } => Status::permission_denied(e.to_string()),
            Error::Conflict { .. } => Status::aborted(e.to_string()),
            Error::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "event log unavailable");
                Status::unavailable(e.to_string())
            }
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Results of this crate.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
