//! Durable pull consumers and the deliveries they yield.
//!
//! At-least-once: a delivery is acked only after its effect is stored, so a
//! crash before the ack means a redelivery, and handlers are idempotent.

use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures::StreamExt;

use crate::error::BusError;
use crate::log::{EventLog, header_pairs};
use crate::trace::TRACEPARENT;

/// How a durable consumer is set up.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Durable name; replicas that share it share the work.
    pub durable: String,
    /// Only subjects matching this filter are delivered.
    pub filter_subject: String,
    /// Most deliveries outstanding without an ack.
    pub max_ack_pending: i64,
    /// Deliveries of one message before the server gives up on it.
    pub max_deliver: i64,
    /// Redelivery delays, one per attempt (the last repeats).
    pub backoff: Vec<Duration>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Most messages one pull asks for.
    pub batch: usize,
    /// Idle heartbeat of a pull, so a dead connection is noticed.
    pub heartbeat: Duration,
}

impl ConsumerSettings {
    /// Defaults for a consumer of `filter_subject` named `durable`.
    pub fn new(durable: impl Into<String>, filter_subject: impl Into<String>) -> Self {
        Self {
            durable: durable.into(),
            filter_subject: filter_subject.into(),
            max_ack_pending: 4096,
            max_deliver: 10,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            ack_wait: Duration::from_secs(30),
            batch: 256,
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// A flow of deliveries from a durable consumer.
pub struct Deliveries {
    messages: pull::Stream,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries").finish_non_exhaustive()
    }
}

impl Deliveries {
    /// The next delivery; `None` when the flow ended for good.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        match self.messages.next().await? {
            Ok(m) => Some(Delivery::from_message(m)),
            // Missing heartbeats and the like: the client re-issues pulls, so
            // the flow resumes by itself after a reconnect.
            Err(e) => {
                tracing::warn!(error = %e, "consumer pull interrupted");
                Some(Err(BusError::Unavailable(e.to_string())))
            }
        }
    }

    /// Up to `max` deliveries: waits for the first, then takes whatever else
    /// arrives within `linger`, so batches grow under load and a lone message
    /// is not held back.
    pub async fn next_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Option<Result<Vec<Delivery>, BusError>> {
        let first = match self.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.messages.next()).await {
                Ok(Some(Ok(m))) => match Delivery::from_message(m) {
                    Ok(d) => batch.push(d),
                    Err(e) => tracing::warn!(error = %e, "delivery without metadata skipped"),
                },
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "consumer pull interrupted");
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        Some(Ok(batch))
    }
}

/// One delivered message, with its stream position and ack handles.
#[derive(Debug)]
pub struct Delivery {
    message: async_nats::jetstream::Message,
    /// The message's stream sequence.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
    /// Messages still waiting for this consumer after this one.
    pub pending: u64,
}

impl Delivery {
    fn from_message(message: async_nats::jetstream::Message) -> Result<Self, BusError> {
        let (stream_sequence, delivered, pending) = {
            let info = message
                .info()
                .map_err(|e| BusError::JetStream(format!("delivery without metadata: {e}")))?;
            (info.stream_sequence, info.delivered, info.pending)
        };
        Ok(Self {
            message,
            stream_sequence,
            delivered,
            pending,
        })
    }

    /// The bytes.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// Its headers as plain pairs.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.message
            .headers
            .as_ref()
            .map(header_pairs)
            .unwrap_or_default()
    }

    /// Its trace context, if any.
    pub fn traceparent(&self) -> Option<String> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(TRACEPARENT))
            .map(|v| v.as_str().to_owned())
    }

    /// Done: never deliver it again.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message
            .ack()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    /// Done, and wait until the server confirmed it (used at shutdown, so a
    /// restart sees no redelivery).
    pub async fn ack_confirmed(&self) -> Result<(), BusError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    /// It can never be handled: stop delivering it.
    pub async fn term(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    /// Not now: deliver it again after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }
}

/// Opens (creating when needed) a durable pull consumer on `stream`.
pub(crate) async fn open(
    stream: &Stream,
    settings: &ConsumerSettings,
) -> Result<Deliveries, BusError> {
    let config = pull::Config {
        durable_name: Some(settings.durable.clone()),
        filter_subject: settings.filter_subject.clone(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: settings.ack_wait,
        max_deliver: settings.max_deliver,
        backoff: settings.backoff.clone(),
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(&settings.durable, config)
        .await
        .map_err(|e| BusError::JetStream(format!("cannot open consumer: {e}")))?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(settings.batch)
        .heartbeat(settings.heartbeat)
        .messages()
        .await
        .map_err(|e| BusError::Unavailable(format!("cannot start consumer: {e}")))?;
    Ok(Deliveries { messages })
}

impl EventLog {
    /// A durable consumer over the event log.
    pub async fn consume(&self, settings: &ConsumerSettings) -> Result<Deliveries, BusError> {
        let stream = self
            .context()
            .get_stream(self.names().stream())
            .await
            .map_err(|e| BusError::JetStream(e.to_string()))?;
        open(&stream, settings).await
    }
}
