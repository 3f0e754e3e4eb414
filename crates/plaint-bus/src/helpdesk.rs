//! The helpdesk door on NATS: a stream that captures what integrations
//! publish (so nothing is lost while intake is down), and a dead-letter stream
//! for what intake cannot accept, with the original bytes and the reason.

use async_nats::HeaderMap;
use async_nats::jetstream::stream::{
    Config, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType, Stream,
};
use bytes::Bytes;
use plaint_domain::values::CustomerRef;

use crate::consumer::{self, ConsumerSettings, Deliveries, Delivery};
use crate::error::{AppendError, BusError, while_doing};
use crate::letter_page::{DeadLetterPage, read_page};
use crate::log::{Appended, EventLog, Expect, StreamSettings, ensure_stream, header_pairs};

/// Dead-letter header: why the message was refused.
pub const DEAD_LETTER_REASON: &str = "Plaint-Dead-Reason";
/// Dead-letter header: the subject the message was first published to.
pub const DEAD_LETTER_SUBJECT: &str = "Plaint-Original-Subject";
/// Prefix of dead-letter headers that carry the original headers.
const ORIGINAL_HEADER_PREFIX: &str = "Plaint-Original-Header-";
/// Largest reason stored with a dead letter, in bytes.
const MAX_REASON_BYTES: usize = 1024;

/// The inbound and dead-letter streams.
#[derive(Debug, Clone)]
pub struct Helpdesk {
    log: EventLog,
    inbound: Stream,
    dead: Stream,
}

impl Helpdesk {
    /// Opens both streams, creating them when needed. The inbound stream
    /// takes the per-integration limit of `settings`, also when it exists
    /// with another: whoever opens it should pass intake's.
    pub async fn open(log: EventLog, settings: &StreamSettings) -> Result<Self, BusError> {
        let names = log.names().clone();
        let js = log.context();
        let limit = settings.inbound_pending_per_integration;
        let mut inbound = ensure_stream(
            js,
            Config {
                name: names.inbound_stream(),
                subjects: vec![names.inbound_subjects()],
                storage: StorageType::File,
                num_replicas: settings.replicas,
                duplicate_window: settings.duplicate_window,
                max_message_size: settings.max_message_bytes,
                // Acked messages are gone: the log holds what they became.
                retention: RetentionPolicy::WorkQueue,
                // One integration per subject: one that floods its own is
                // refused at its limit, the others keep publishing.
                max_messages_per_subject: limit,
                discard: DiscardPolicy::New,
                discard_new_per_subject: true,
                ..Default::default()
            },
        )
        .await?;
        let current = &inbound.cached_info().config;
        if current.max_messages_per_subject != limit
            || !current.discard_new_per_subject
            || current.discard != DiscardPolicy::New
        {
            let mut config = current.clone();
            config.max_messages_per_subject = limit;
            config.discard = DiscardPolicy::New;
            config.discard_new_per_subject = true;
            js.update_stream(config).await.map_err(|e| {
                BusError::JetStream(while_doing("cannot update the inbound stream", e))
            })?;
            inbound = js
                .get_stream(names.inbound_stream())
                .await
                .map_err(|e| BusError::Unavailable(e.into()))?;
        }
        let dead = ensure_dead_letter_stream(&log, settings).await?;
        Ok(Self { log, inbound, dead })
    }

    /// A durable consumer over everything integrations publish.
    pub async fn consume(&self, settings: &ConsumerSettings) -> Result<Deliveries, BusError> {
        consumer::open(self.log.context().client(), &self.inbound, settings).await
    }

    /// Stores a refused message with its original bytes, subject, headers and
    /// the reason. Idempotent per inbound message (its stream sequence is the
    /// message id), so a redelivered refusal is stored once.
    ///
    /// When the message names a customer (`owner`), its bytes are sealed
    /// with that customer's data key, as their events are: erasing the
    /// customer makes the letter unreadable too.
    pub async fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        owner: Option<&CustomerRef>,
    ) -> Result<Appended, BusError> {
        let sealed = match owner {
            Some(customer) => Some(self.seal_letter(delivery, customer).await?),
            None => None,
        };
        store_dead_letter(
            &self.log,
            &self.inbound.cached_info().config.name,
            delivery,
            reason,
            sealed,
        )
        .await
    }

    async fn seal_letter(
        &self,
        delivery: &Delivery,
        customer: &CustomerRef,
    ) -> Result<SealedLetter, BusError> {
        let key = self
            .log
            .data_keys()
            .current_or_new(customer)
            .await
            .map_err(crate::KeyStoreError::into_bus)?;
        let payload = plaint_vault::seal::seal_bytes(
            &key,
            &letter_context(delivery.subject()),
            delivery.payload(),
        )
        .map_err(|e| BusError::Sealing(e.to_string()))?;
        Ok(SealedLetter {
            customer: customer.clone(),
            key_id: key.id().to_string(),
            payload: Bytes::from(payload),
        })
    }

    /// A letter's original bytes: in clear as stored, opened with its
    /// customer's key, or `None` when that key is gone (the customer was
    /// erased).
    pub async fn letter_bytes(
        &self,
        headers: &[(String, String)],
        payload: Bytes,
    ) -> Result<Option<Bytes>, BusError> {
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(customer) = find(LETTER_SEALED_FOR) else {
            return Ok(Some(payload));
        };
        let customer = CustomerRef::parse(customer).map_err(|_| BusError::Corrupt {
            sequence: 0,
            reason: "a dead letter sealed for no valid customer".to_owned(),
        })?;
        let key = self
            .log
            .data_keys()
            .current(&customer)
            .await
            .map_err(crate::KeyStoreError::into_bus)?;
        let Some(key) = key.filter(|k| Some(k.id().to_string().as_str()) == find(LETTER_KEY_ID))
        else {
            return Ok(None);
        };
        let subject = find(DEAD_LETTER_SUBJECT).unwrap_or_default();
        plaint_vault::seal::open_bytes(&key, &letter_context(subject), &payload)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| BusError::Corrupt {
                sequence: 0,
                reason: format!("a sealed dead letter: {e}"),
            })
    }

    /// Dead letters with a sequence above `after`, oldest first: at most
    /// `limit`, and at most `max_bytes` of them (as [`letter_bytes`](crate::letter_bytes) counts)
    /// unless the first alone is larger. No payload is read that does not fit.
    pub async fn dead_letter_page(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<DeadLetterPage, BusError> {
        read_page(&self.dead, after, limit, max_bytes).await
    }

    /// Publishes a dead letter's original bytes and headers to its original
    /// subject again. Only letters from the helpdesk door can be requeued: one
    /// that came from the event log (a poison event the router gave up on)
    /// would be appended to the log a second time.
    pub async fn requeue(&self, sequence: u64) -> Result<Requeue, BusError> {
        let letter = match self.dead.get_raw_message(sequence).await {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                return Ok(Requeue::NoSuchLetter);
            }
            Err(e) => return Err(BusError::Unavailable(e.into())),
        };
        let mut subject = None;
        let mut headers = HeaderMap::new();
        for (name, value) in &header_pairs(&letter.headers) {
            if name == DEAD_LETTER_SUBJECT {
                subject = Some(value.clone());
            } else if let Some(original) = name
                .strip_prefix(ORIGINAL_HEADER_PREFIX)
                .filter(|h| *h != "Nats-Msg-Id")
            {
                headers.append(original, value.as_str());
            }
        }
        let subject = subject.ok_or_else(|| BusError::Corrupt {
            sequence,
            reason: "dead letter without its original subject".to_owned(),
        })?;
        let door = self.log.names().inbound_subjects();
        if !subject.starts_with(door.trim_end_matches('>')) {
            return Ok(Requeue::NotFromHelpdesk(subject));
        }
        let pairs = header_pairs(&letter.headers);
        let Some(payload) = self
            .letter_bytes(&pairs, Bytes::clone(&letter.payload))
            .await?
        else {
            return Ok(Requeue::Erased);
        };
        let appended = self
            .log
            .publish(
                &subject,
                headers,
                payload,
                &format!("requeue-{sequence}"),
                Expect::Any,
            )
            .await
            .map_err(into_bus)?;
        Ok(Requeue::Published(appended.sequence))
    }

    /// Messages waiting in the inbound stream.
    pub async fn inbound_pending(&self) -> Result<u64, BusError> {
        let info = self
            .inbound
            .get_info()
            .await
            .map_err(|e| BusError::Unavailable(e.into()))?;
        Ok(info.state.messages)
    }
}

/// What [`Helpdesk::requeue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Published again; the inbound stream's sequence.
    Published(u64),
    /// No dead letter at that sequence.
    NoSuchLetter,
    /// The letter came from this subject of the event log, not from the
    /// helpdesk door; it is kept, not requeued.
    NotFromHelpdesk(String),
    /// The letter's customer was erased: its bytes cannot be read.
    Erased,
}

/// Header naming the customer (pseudonym) whose key sealed a dead letter.
pub const LETTER_SEALED_FOR: &str = "Plaint-Sealed-For";
/// Header naming which of that customer's keys.
pub const LETTER_KEY_ID: &str = "Plaint-Key-Id";

/// A dead letter's bytes sealed for its customer.
#[derive(Debug)]
struct SealedLetter {
    customer: CustomerRef,
    key_id: String,
    payload: Bytes,
}

/// Binds a sealed letter to the subject it came from.
fn letter_context(subject: &str) -> Vec<u8> {
    format!("plaint dead letter\0{subject}").into_bytes()
}

/// The dead-letter stream for consumers of the event log (the router): an
/// event that can never be handled is stored there, with its bytes, subject,
/// headers and the reason, before it is terminated.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    log: EventLog,
}

impl DeadLetters {
    /// Opens the dead-letter stream, creating it when needed.
    pub async fn open(log: EventLog, settings: &StreamSettings) -> Result<Self, BusError> {
        ensure_dead_letter_stream(&log, settings).await?;
        Ok(Self { log })
    }

    /// Stores a delivery of the event log that can never be handled.
    /// Idempotent per log message (its stream sequence is in the message id).
    pub async fn store(&self, delivery: &Delivery, reason: &str) -> Result<Appended, BusError> {
        store_dead_letter(&self.log, self.log.names().stream(), delivery, reason, None).await
    }
}

async fn ensure_dead_letter_stream(
    log: &EventLog,
    settings: &StreamSettings,
) -> Result<Stream, BusError> {
    let names = log.names();
    let config = Config {
        name: names.dead_letter_stream(),
        subjects: vec![names.dead_letter()],
        storage: StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        // Room for the original message plus its headers and reason.
        max_message_size: settings.max_message_bytes.saturating_mul(2),
        // Letters are read whole by sequence (see `letter_page`).
        allow_direct: true,
        // A letter's original bytes may hold personal data in clear: kept
        // for a bounded time only.
        max_age: settings.dead_letter_max_age,
        ..Default::default()
    };
    let mut stream = ensure_stream(log.context(), config.clone()).await?;
    // A stream made before (or under another retention) takes this one.
    let current = stream
        .info()
        .await
        .map_err(|e| {
            BusError::Unavailable(while_doing("cannot read the dead letters' settings", e))
        })?
        .config
        .max_age;
    if current != config.max_age {
        log.context().update_stream(config).await.map_err(|e| {
            BusError::JetStream(while_doing("cannot set the dead letters' retention", e))
        })?;
    }
    Ok(stream)
}

/// Stores `delivery` (from the stream `source_stream`) as a dead letter.
async fn store_dead_letter(
    log: &EventLog,
    source_stream: &str,
    delivery: &Delivery,
    reason: &str,
    sealed: Option<SealedLetter>,
) -> Result<Appended, BusError> {
    let mut headers = HeaderMap::new();
    headers.insert(DEAD_LETTER_SUBJECT, delivery.subject());
    headers.insert(
        DEAD_LETTER_REASON,
        truncate(reason, MAX_REASON_BYTES).as_str(),
    );
    for (name, value) in delivery.headers() {
        headers.append(
            format!("{ORIGINAL_HEADER_PREFIX}{name}").as_str(),
            value.as_str(),
        );
    }
    let payload = match sealed {
        Some(letter) => {
            headers.insert(LETTER_SEALED_FOR, letter.customer.as_str());
            headers.insert(LETTER_KEY_ID, letter.key_id.as_str());
            letter.payload
        }
        None => delivery.payload().clone(),
    };
    let id = format!("dead-{source_stream}-{}", delivery.stream_sequence);
    log.publish(
        &log.names().dead_letter(),
        headers,
        payload,
        &id,
        Expect::Any,
    )
    .await
    .map_err(into_bus)
}

fn into_bus(e: AppendError) -> BusError {
    match e {
        AppendError::WrongLastSequence => {
            BusError::JetStream("unexpected sequence condition".into())
        }
        AppendError::Bus(b) => b,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
