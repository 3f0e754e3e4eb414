//! The integration's side: reading its outbound messages through its own
//! durable consumer, as a helpdesk connector would (the demo reads this way).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use bytes::Bytes;
use futures::StreamExt;

use crate::error::{BusError, while_doing};

/// One message an integration read.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    /// Its subject: `<prefix>.helpdesk.outbound.<integration>.<kind>`.
    pub subject: String,
    /// Its `Content-Type` header.
    pub content_type: String,
    /// Its bytes.
    pub payload: Bytes,
}

/// Reads one integration's outbound messages.
#[derive(Debug)]
pub struct IntegrationReader {
    consumer: PullConsumer,
}

impl IntegrationReader {
    /// The reader of `integration` on the outbound stream `stream`; an error
    /// when its consumer does not exist yet (it is made when the
    /// integration's first inbound message comes in).
    pub async fn open(
        client: async_nats::Client,
        stream: &str,
        integration: &str,
    ) -> Result<Self, BusError> {
        let consumer = jetstream::new(client)
            .get_consumer_from_stream(integration, stream)
            .await
            .map_err(|e| {
                BusError::JetStream(while_doing("cannot open the integration's consumer", e))
            })?;
        Ok(Self { consumer })
    }

    /// Up to `max` messages, each acknowledged once read, waiting at most
    /// `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<ReadMessage>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot fetch outbound messages", e)))?;
        let mut read = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| {
                BusError::Unavailable(while_doing("cannot fetch outbound messages", e))
            })?;
            let content_type = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Content-Type"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            m.ack().await.map_err(|e| {
                BusError::Unavailable(while_doing(
                    "cannot acknowledge an outbound message",
                    e.to_string(),
                ))
            })?;
            read.push(ReadMessage {
                subject: m.subject.to_string(),
                content_type,
                payload: m.payload.clone(),
            });
        }
        Ok(read)
    }
}
