//! Reading the log in stream order from a given sequence, without acks: for
//! projections, whose checkpoint lives with their data, so the position to
//! resume from is theirs and not the server's.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;

use crate::codec::Codec;
use crate::error::{BusError, while_doing};
use crate::log::{EventLog, StoredEvent};
use crate::trace::TRACEPARENT;

/// One message of the log, decoded when it could be.
#[derive(Debug)]
pub struct TailItem {
    /// Its stream sequence.
    pub sequence: u64,
    /// The subject it was stored under.
    pub subject: String,
    /// The event, or why it could not be decoded.
    pub event: Result<StoredEvent, BusError>,
}

/// The log in stream order from a start sequence.
pub struct Tail {
    messages: pull::Ordered,
    codec: Codec,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").finish_non_exhaustive()
    }
}

impl EventLog {
    /// Every message from stream sequence `from` on (1 = the beginning).
    pub async fn tail(&self, from: u64) -> Result<Tail, BusError> {
        let stream = self
            .context()
            .get_stream(self.names().stream())
            .await
            .map_err(|e| BusError::Unavailable(e.into()))?;
        let deliver_policy = if from <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot open tail", e)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot start tail", e)))?;
        Ok(Tail {
            messages,
            codec: self.codec().clone(),
        })
    }
}

impl Tail {
    /// Up to `max` messages: waits for the first, then takes what arrives
    /// within `linger`. `None` when the tail ended; an error when it broke
    /// (open a new tail from the last sequence applied).
    pub async fn next_batch(
        &mut self,
        max: usize,
        linger: Duration,
    ) -> Option<Result<Vec<TailItem>, BusError>> {
        let first = self.messages.next().await?;
        Some(self.fill(first, max, linger).await)
    }

    /// Like [`next_batch`](Self::next_batch), but an empty batch when no
    /// message came within `first_within`. Unlike a timeout around
    /// `next_batch`, giving up loses nothing: it happens only before the
    /// first message is taken.
    pub async fn next_batch_within(
        &mut self,
        max: usize,
        linger: Duration,
        first_within: Duration,
    ) -> Option<Result<Vec<TailItem>, BusError>> {
        match tokio::time::timeout(first_within, self.messages.next()).await {
            Err(_) => Some(Ok(Vec::new())),
            Ok(first) => Some(self.fill(first?, max, linger).await),
        }
    }

    async fn fill(
        &mut self,
        first: Result<async_nats::jetstream::Message, pull::OrderedError>,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<TailItem>, BusError> {
        let first = first.map_err(|e| BusError::Unavailable(e.into()))?;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(item(&self.codec, first).await?);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.messages.next()).await {
                Ok(Some(Ok(m))) => batch.push(item(&self.codec, m).await?),
                Ok(Some(Err(e))) => return Err(BusError::Unavailable(e.into())),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(batch)
    }
}

/// The message decoded, or why it cannot be.
async fn item(codec: &Codec, m: async_nats::jetstream::Message) -> Result<TailItem, BusError> {
    let sequence = m.info().map(|i| i.stream_sequence).unwrap_or(0);
    let event = codec
        .decode(sequence, &m.payload)
        .await
        .map(|envelope| StoredEvent {
            sequence,
            envelope,
            traceparent: m
                .headers
                .as_ref()
                .and_then(|h| h.get(TRACEPARENT))
                .map(|v| v.as_str().to_owned()),
        });
    TailItem::of(sequence, m.subject.to_string(), event)
}

impl TailItem {
    /// An item for a message at `sequence`: the event, or why it cannot be
    /// decoded (an item the reader skips). An error instead when decoding
    /// failed for a passing reason (a data key out of reach): the read
    /// breaks and is done again from there, so no event is ever skipped for
    /// want of a connection.
    pub(crate) fn of(
        sequence: u64,
        subject: String,
        event: Result<StoredEvent, BusError>,
    ) -> Result<Self, BusError> {
        if let Err(e @ (BusError::Unavailable(_) | BusError::Connect(_))) = event {
            return Err(e);
        }
        Ok(TailItem {
            sequence,
            subject,
            event,
        })
    }
}
