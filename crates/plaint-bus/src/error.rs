//! The bus's errors, classified by what the caller should do about them.

/// Infrastructure failures.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect.
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// The server did not answer or the connection is down; retrying may help.
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
    /// The server refused a request.
    #[error("JetStream refused the request: {0}")]
    JetStream(String),
    /// A stored message is not a valid envelope.
    #[error("stored message at sequence {sequence} cannot be decoded: {reason}")]
    Corrupt {
        /// Where.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// A subject holds more events than any complaint may.
    #[error("subject {subject} holds more than {limit} events")]
    TooManyEvents {
        /// Which.
        subject: String,
        /// The limit.
        limit: usize,
    },
}

/// Why an append was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The subject moved on since the caller read it (optimistic concurrency).
    #[error("the subject changed since it was read")]
    WrongLastSequence,
    /// Anything else.
    #[error(transparent)]
    Bus(#[from] BusError),
}
