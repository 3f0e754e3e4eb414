//! The bus's errors, classified by what the caller should do about them.

/// What went wrong underneath: the client's own error, kept for callers
/// that walk the chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A cause with what the bus was doing when it came.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct While {
    doing: &'static str,
    #[source]
    source: Cause,
}

/// `e`, met while `doing` something.
pub(crate) fn while_doing(doing: &'static str, e: impl Into<Cause>) -> Cause {
    Box::new(While {
        doing,
        source: e.into(),
    })
}

/// Infrastructure failures. Each keeps its cause as its source, and says it
/// too, so that a log line of the error alone is enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[source] Cause),
    /// The server did not answer or the connection is down; retrying may help.
    #[error("NATS unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The server refused a request.
    #[error("JetStream refused the request: {0}")]
    JetStream(#[source] Cause),
    /// A stored message is not a valid envelope.
    #[error("stored message at sequence {sequence} cannot be decoded: {reason}")]
    Corrupt {
        /// Where.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// Personal data could not be sealed, so nothing was stored.
    #[error("cannot seal personal data: {0}")]
    Sealing(String),
    /// A subject holds more events than any complaint may.
    #[error("subject {subject} holds more than {limit} events")]
    TooManyEvents {
        /// Which.
        subject: String,
        /// The most events a complaint's subject may hold.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_bus_error_keeps_its_cause_as_its_source() {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let e = BusError::Unavailable(while_doing("cannot open tail", timed_out));
        assert_eq!(
            e.to_string(),
            "NATS unavailable: cannot open tail: timed out"
        );
        let context = e.source().unwrap();
        assert_eq!(context.to_string(), "cannot open tail: timed out");
        let root = context.source().unwrap();
        assert_eq!(
            root.downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind),
            Some(std::io::ErrorKind::TimedOut)
        );
    }
}
