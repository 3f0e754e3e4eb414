//! Raw JetStream publishing for tools: pipelined, with a bounded window of
//! unacknowledged publishes, for load generators (the demo's helpdesk half).

use std::collections::VecDeque;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, Context, context::PublishAckFuture};
use bytes::Bytes;

use crate::error::BusError;

/// Publishes onto streams without the event-log conventions (helpdesk
/// messages).
#[derive(Debug, Clone)]
pub struct RawPublisher {
    js: Context,
}

impl RawPublisher {
    /// A publisher over `client`.
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            js: jetstream::new(client),
        }
    }

    /// Publishes every payload to `subject`, keeping at most `window`
    /// publishes unacknowledged; `on_ack` runs once per stored message.
    /// Returns how many were stored.
    pub async fn publish_all(
        &self,
        subject: &str,
        headers: Option<HeaderMap>,
        payloads: impl IntoIterator<Item = Bytes>,
        window: usize,
        mut on_ack: impl FnMut(),
    ) -> Result<usize, BusError> {
        let window = window.max(1);
        let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
        let mut stored = 0;
        for payload in payloads {
            while pending.len() >= window {
                let Some(ack) = pending.pop_front() else {
                    break;
                };
                ack.await.map_err(|e| BusError::Unavailable(e.into()))?;
                stored += 1;
                on_ack();
            }
            let sent = match &headers {
                Some(h) => {
                    self.js
                        .publish_with_headers(subject.to_owned(), h.clone(), payload)
                        .await
                }
                None => self.js.publish(subject.to_owned(), payload).await,
            };
            pending.push_back(sent.map_err(|e| BusError::Unavailable(e.into()))?);
        }
        for ack in pending {
            ack.await.map_err(|e| BusError::Unavailable(e.into()))?;
            stored += 1;
            on_ack();
        }
        Ok(stored)
    }
}
