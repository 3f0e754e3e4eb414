//! Dead letters a page at a time within a byte budget. A letter's size is
//! learned from its headers alone (a headers-only consumer), so its payload
//! is copied only once it is known to fit: what one page costs in memory is
//! bounded by the budget, whatever the letters' sizes.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy, pull};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind, Stream};
use futures::StreamExt;

use crate::error::{BusError, while_doing};
use crate::log::{RawMessage, header_pairs};

/// Header a headers-only consumer puts in place of the payload: its length.
const MESSAGE_SIZE: &str = "Nats-Msg-Size";
/// Bytes counted for a letter besides its payload and headers (sequence,
/// field tags, lengths).
const LETTER_FRAMING: usize = 64;
/// How long the server may take to hand over the headers of one page.
const FETCH_EXPIRES: Duration = Duration::from_secs(5);

/// One page of dead letters.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterPage {
    /// The letters, oldest first.
    pub letters: Vec<RawMessage>,
    /// Where the next page starts (pass it as `after`), or 0 when this page
    /// holds the last letter.
    pub next_after: u64,
}

/// The bytes a letter counts for against a page's budget: its payload, and
/// its headers twice (the admin API shows them as stored, and the original
/// subject and the reason once more on their own).
pub fn letter_bytes(payload: usize, headers: &[(String, String)]) -> usize {
    let headers: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    payload
        .saturating_add(headers.saturating_mul(2))
        .saturating_add(LETTER_FRAMING)
}

/// Letters of `stream` with a sequence above `after`, oldest first: at most
/// `limit`, and no more than `max_bytes` of them (by [`letter_bytes`]) unless
/// the first alone is larger.
pub(crate) async fn read_page(
    stream: &Stream,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<DeadLetterPage, BusError> {
    let limit = limit.max(1);
    let deliver_policy = match after {
        0 => DeliverPolicy::All,
        n => DeliverPolicy::ByStartSequence {
            start_sequence: n.saturating_add(1),
        },
    };
    let consumer = stream
        .create_consumer(pull::Config {
            headers_only: true,
            ack_policy: AckPolicy::None,
            deliver_policy,
            memory_storage: true,
            num_replicas: 1,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Unavailable(while_doing("cannot read dead letters", e)))?;
    let name = consumer.cached_info().name.clone();
    let page = fill(stream, &consumer, limit, max_bytes).await;
    // Left alone it would go after the inactive threshold anyway.
    if let Err(e) = stream.delete_consumer(&name).await {
        tracing::debug!(error = %e, "dead-letter reader not deleted; it expires by itself");
    }
    page
}

async fn fill(
    stream: &Stream,
    consumer: &Consumer<pull::Config>,
    limit: usize,
    max_bytes: usize,
) -> Result<DeadLetterPage, BusError> {
    let unavailable = |e: String| BusError::Unavailable(while_doing("cannot read dead letters", e));
    // One head more than the page holds tells whether another letter follows.
    let mut heads = consumer
        .fetch()
        .max_messages(limit.saturating_add(1))
        .expires(FETCH_EXPIRES)
        .messages()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut page = DeadLetterPage::default();
    let mut used: usize = 0;
    let mut last_seen = 0;
    while let Some(head) = heads.next().await {
        let head = head.map_err(|e| unavailable(e.to_string()))?;
        let sequence = head
            .info()
            .map_err(|e| unavailable(format!("a letter without metadata: {e}")))?
            .stream_sequence;
        let headers = head.headers.as_ref().map(header_pairs).unwrap_or_default();
        let payload = headers
            .iter()
            .find(|(n, _)| n == MESSAGE_SIZE)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(n, _)| n != MESSAGE_SIZE)
            .collect();
        let bytes = letter_bytes(payload, &headers);
        let fits = page.letters.is_empty() || used.saturating_add(bytes) <= max_bytes;
        if page.letters.len() >= limit || !fits {
            page.next_after = last_seen;
            return Ok(page);
        }
        last_seen = sequence;
        // None: deleted since its head was read, nothing to show.
        if let Some(m) = read_letter(stream, sequence).await? {
            let headers = header_pairs(&m.headers);
            used = used.saturating_add(letter_bytes(m.payload.len(), &headers));
            page.letters.push(RawMessage {
                sequence: m.sequence,
                subject: m.subject.to_string(),
                headers,
                payload: m.payload,
            });
        }
    }
    Ok(page)
}

/// One letter, whole. A direct get hands over its bytes as stored, where the
/// leader's answer carries them in JSON, in base64: a third more, and copied
/// twice. A replica may not have it yet; the leader has.
async fn read_letter(stream: &Stream, sequence: u64) -> Result<Option<StreamMessage>, BusError> {
    let unavailable =
        |e: String| BusError::Unavailable(while_doing("cannot read a dead letter", e));
    if stream.cached_info().config.allow_direct {
        match stream.direct_get(sequence).await {
            Ok(m) => return Ok(Some(m)),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {}
            Err(e) => return Err(unavailable(e.to_string())),
        }
    }
    match stream.get_raw_message(sequence).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(unavailable(e.to_string())),
    }
}
