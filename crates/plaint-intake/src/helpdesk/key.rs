//! The idempotency key of a helpdesk message that names no `request_id`.
//!
//! A message is acked only after what it says is stored, so a crash between
//! the two hands it to the next process again. The key derives from the
//! inbound message itself, the same on every delivery, and makes the core
//! recognise a command it already stored.

use uuid::Uuid;

/// Namespace of the keys derived here (a random UUID, fixed forever: keys of
/// messages still waiting must stay the same across versions).
const NAMESPACE: Uuid = Uuid::from_u128(0x6c2d_4f0e_9b31_4a57_8e1c_52b7_0d93_a4f6);

/// What identifies one inbound message across its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// The integration named its message (`Nats-Msg-Id`): the name holds even
    /// when it publishes the same message again. Integrations pick names on
    /// their own, so the subject they publish to keeps theirs apart.
    Named {
        /// The inbound subject.
        subject: &'a str,
        /// The integration's message id.
        message_id: &'a str,
    },
    /// Otherwise its place in the inbound stream, which every redelivery keeps.
    Stored {
        /// The inbound stream's name.
        stream: &'a str,
        /// Its sequence in that stream.
        sequence: u64,
    },
}

impl Inbound<'_> {
    /// The request id the message's commands are stored under.
    pub fn request_id(&self) -> Uuid {
        // Length-prefixed parts: no two different inputs give the same bytes.
        let mut key = Vec::new();
        let mut part = |bytes: &[u8]| {
            key.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            key.extend_from_slice(bytes);
        };
        match self {
            Inbound::Named {
                subject,
                message_id,
            } => {
                part(b"named");
                part(subject.as_bytes());
                part(message_id.as_bytes());
            }
            Inbound::Stored { stream, sequence } => {
                part(b"stored");
                part(stream.as_bytes());
                part(&sequence.to_be_bytes());
            }
        }
        Uuid::new_v5(&NAMESPACE, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(subject: &str, message_id: &str) -> Uuid {
        Inbound::Named {
            subject,
            message_id,
        }
        .request_id()
    }

    fn stored(stream: &str, sequence: u64) -> Uuid {
        Inbound::Stored { stream, sequence }.request_id()
    }

    #[test]
    fn every_delivery_of_a_message_gets_the_same_key() {
        assert_eq!(
            named("p.helpdesk.inbound.zendesk", "m-1"),
            named("p.helpdesk.inbound.zendesk", "m-1")
        );
        assert_eq!(stored("P_INBOUND", 7), stored("P_INBOUND", 7));
    }

    #[test]
    fn different_messages_get_different_keys() {
        assert_ne!(
            named("p.helpdesk.inbound.zendesk", "m-1"),
            named("p.helpdesk.inbound.zendesk", "m-2")
        );
        // Two integrations that happen to pick the same message id.
        assert_ne!(
            named("p.helpdesk.inbound.zendesk", "m-1"),
            named("p.helpdesk.inbound.freshdesk", "m-1")
        );
        assert_ne!(stored("P_INBOUND", 7), stored("P_INBOUND", 8));
        assert_ne!(stored("P_INBOUND", 7), stored("Q_INBOUND", 7));
        // Parts cannot run into each other.
        assert_ne!(named("a.b", "c"), named("a", "b.c"));
        assert_ne!(named("P_INBOUND", "7"), stored("P_INBOUND", 7));
    }
}
