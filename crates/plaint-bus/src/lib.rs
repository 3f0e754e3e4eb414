//! The event log on NATS JetStream. This is the only crate of the services
//! that knows async-nats: they see subjects, envelopes, sequences and
//! deliveries.
//!
//! - [`Names`]: every stream, subject and consumer name, under one prefix;
//! - [`EventLog`]: provisioning, appends with `Nats-Msg-Id` and
//!   `Nats-Expected-Last-Subject-Sequence`, and reads by subject;
//! - [`consumer`]: durable pull consumers, the deliveries they yield, and the
//!   one loop every service consumes with ([`retry`]: its retry policy);
//! - [`trace`]: W3C `traceparent` in message headers.

mod codec;
mod connection;
pub mod consumer;
pub mod data_keys;
mod error;
mod group_commit;
mod held;
mod helpdesk;
mod history;
pub mod lease;
mod letter_page;
mod log;
mod names;
pub mod outbound;
mod publish;
pub mod retry;
mod settings;
pub mod tail;
pub mod timers;
pub mod trace;

pub use async_nats::HeaderMap;
pub use codec::Reading;
pub use connection::{DEFAULT_INBOX_PREFIX, NatsAccess};
pub use consumer::{
    Consume, ConsumerSettings, Deliveries, Delivery, GaveUp, consume_until_stopped,
};
pub use data_keys::{DataKeys, Erasure, KeyStoreError, PersonalDataSettings, Rewrapped};
pub use error::{AppendError, BusError, Cause, While};
pub use helpdesk::{
    DEAD_LETTER_REASON, DEAD_LETTER_SUBJECT, DeadLetters, Helpdesk, LETTER_KEY_ID,
    LETTER_SEALED_FOR, Requeue,
};
pub use history::History;
pub use lease::{Held, Leases, Renewal, run_while_held};
pub use letter_page::{DeadLetterPage, letter_bytes};
pub use log::{
    Appended, DEFAULT_DEAD_LETTER_RETENTION, DEFAULT_INBOUND_PENDING_PER_INTEGRATION,
    EVENT_TYPE_HEADER, EventLog, Expect, MAX_EVENTS_PER_SUBJECT, RawMessage, SCHEMA_HEADER,
    StoredEvent, StreamSettings,
};
pub use names::Names;
pub use outbound::{Outbound, OutboundMessage, OutboundSettings};
pub use publish::RawPublisher;
pub use retry::{Backoff, RetryPolicy};
pub use settings::{LogSettings, OpenError, open};
pub use tail::{Tail, TailItem};
pub use timers::Timers;

/// Connects to NATS without credentials, as [`connect_with`] does with
/// [`NatsAccess::default`].
pub async fn connect(url: &str, client_name: &str) -> Result<async_nats::Client, BusError> {
    connect_with(url, &NatsAccess::default(), client_name).await
}

/// Connects to NATS as `access` says (credentials, TLS, inbox prefix), with
/// the options every process uses: a client name, retries on the initial
/// connect, and endless reconnects.
///
/// `url` may list several servers separated by commas (the nodes of a
/// cluster, e.g. `nats://a:4222,nats://b:4222`); the client connects to one
/// of them and moves to another when it is lost.
pub async fn connect_with(
    url: &str,
    access: &NatsAccess,
    client_name: &str,
) -> Result<async_nats::Client, BusError> {
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    access
        .options(client_name)
        .await?
        .connect(urls)
        .await
        .map_err(|e| BusError::Connect(e.into()))
}

/// A NATS client; re-exported so services need not depend on async-nats.
pub type Client = async_nats::Client;
