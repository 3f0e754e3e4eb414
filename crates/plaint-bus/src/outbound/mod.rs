//! The helpdesk door's way back: a stream of what plaint tells each
//! integration (a receipt for every inbound message; the decisions and later
//! changes of its complaints), read through a durable consumer named after
//! the integration, so an integration that was down catches up.
//!
//! An integration that never reads cannot hold anything else up: each of its
//! subjects keeps at most `kept_per_subject` unread messages; past that the
//! oldest unread one is deleted to make room, counted in
//! `plaint_outbound_discarded_total{integration}` and logged. Messages read
//! and acknowledged leave the stream (interest retention), and none outlives
//! `max_age`.

mod message;
mod reader;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::{ConsumerInfoErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use bytes::Bytes;

use crate::error::{BusError, while_doing};
use crate::log::{EventLog, ensure_stream};

pub use message::{
    BreachInBrief, DecisionInBrief, Format, OutboundMessage, Receipt, ReceiptOutcome, Update,
};
pub use reader::{IntegrationReader, ReadMessage};

/// Header naming the message's kind: `receipt` or `update`.
pub const OUTBOUND_KIND_HEADER: &str = "Plaint-Outbound-Type";
/// Unread messages each outbound subject of an integration keeps by default.
pub const DEFAULT_KEPT_PER_SUBJECT: i64 = 100_000;
/// How long an outbound message is kept by default.
pub const DEFAULT_OUTBOUND_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// How long an integration's outbound consumer waits for an ack by default.
pub const DEFAULT_READER_ACK_WAIT: Duration = Duration::from_secs(30);
/// Most messages an integration may hold unacknowledged.
const READER_MAX_ACK_PENDING: i64 = 1_000;
/// How long "this integration has no consumer" is believed.
const ABSENT_FOR: Duration = Duration::from_secs(10);
/// Room made for one message, at most: more means someone else keeps filling it.
const MAX_ROOM_ATTEMPTS: u32 = 5;

/// How the outbound stream is provisioned and who reads protobuf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Unread messages kept per integration and kind.
    pub kept_per_subject: i64,
    /// How long a message is kept, read or not.
    pub max_age: Duration,
    /// Integrations that read protobuf; the others read JSON.
    pub protobuf: HashSet<String>,
    /// How long a message an integration fetched and did not acknowledge
    /// waits before it is delivered again (set when its consumer is made).
    pub reader_ack_wait: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            kept_per_subject: DEFAULT_KEPT_PER_SUBJECT,
            max_age: DEFAULT_OUTBOUND_MAX_AGE,
            protobuf: HashSet::new(),
            reader_ack_wait: DEFAULT_READER_ACK_WAIT,
        }
    }
}

/// Sends to integrations; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: EventLog,
    stream: Stream,
    settings: OutboundSettings,
    /// Integrations whose consumer exists (`None`), or was missing when
    /// last asked (`Some(when)`).
    known: Mutex<HashMap<String, Option<Instant>>>,
}

/// Where a message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its sequence in the outbound stream.
    pub sequence: u64,
    /// The same key had been sent within the duplicate window: not stored again.
    pub duplicate: bool,
}

impl Outbound {
    /// Opens the outbound stream, creating it when needed, and brings its
    /// limits to `settings`.
    pub async fn open(log: EventLog, settings: OutboundSettings) -> Result<Self, BusError> {
        let names = log.names().clone();
        let js = log.context();
        let log_config = &log.stream_handle().cached_info().config;
        let wanted = Config {
            name: names.outbound_stream(),
            subjects: vec![names.outbound_subjects()],
            storage: StorageType::File,
            num_replicas: log_config.num_replicas,
            duplicate_window: log_config.duplicate_window,
            allow_direct: true,
            // Read and acknowledged by its integration: gone.
            retention: RetentionPolicy::Interest,
            max_messages_per_subject: settings.kept_per_subject,
            // Refused rather than silently dropped, so that the sender
            // makes room itself and counts what it deleted.
            discard: DiscardPolicy::New,
            discard_new_per_subject: true,
            max_age: settings.max_age,
            ..Default::default()
        };
        let mut stream = ensure_stream(js, wanted.clone()).await?;
        let current = &stream.cached_info().config;
        if current.max_messages_per_subject != wanted.max_messages_per_subject
            || current.max_age != wanted.max_age
        {
            let mut config = current.clone();
            config.max_messages_per_subject = wanted.max_messages_per_subject;
            config.max_age = wanted.max_age;
            js.update_stream(config).await.map_err(|e| {
                BusError::JetStream(while_doing("cannot update the outbound stream", e))
            })?;
            stream = js
                .get_stream(names.outbound_stream())
                .await
                .map_err(|e| BusError::Unavailable(e.into()))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                stream,
                settings,
                known: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Makes sure integration `name` has its durable consumer (named after
    /// it), so what is sent to it from now on waits for it.
    pub async fn provision(&self, name: &str) -> Result<(), BusError> {
        if self.known_state(name) == Some(None) {
            return Ok(());
        }
        let names = self.inner.log.names();
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            description: Some(format!("what plaint tells integration {name}")),
            filter_subject: names.outbound_of(name),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: self.inner.settings.reader_ack_wait,
            max_ack_pending: READER_MAX_ACK_PENDING,
            ..Default::default()
        };
        self.inner
            .stream
            .get_or_create_consumer(name, config)
            .await
            .map_err(|e| {
                BusError::JetStream(while_doing("cannot provision an integration's consumer", e))
            })?;
        self.remember(name, None);
        Ok(())
    }

    /// Whether integration `name` reads outbound messages: its consumer
    /// exists (made when it first published).
    pub async fn serves(&self, name: &str) -> Result<bool, BusError> {
        match self.known_state(name) {
            Some(None) => return Ok(true),
            Some(Some(when)) if when.elapsed() < ABSENT_FOR => return Ok(false),
            _ => {}
        }
        let found = match self.inner.stream.consumer_info(name).await {
            Ok(_) => true,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => false,
            Err(e) => {
                return Err(BusError::Unavailable(while_doing(
                    "cannot read an integration's consumer",
                    e,
                )));
            }
        };
        self.remember(name, (!found).then(Instant::now));
        Ok(found)
    }

    /// The format integration `name` reads.
    pub fn format_of(&self, name: &str) -> Format {
        if self.inner.settings.protobuf.contains(name) {
            Format::Protobuf
        } else {
            Format::Json
        }
    }

    /// Stores `message` for integration `name`, making room when its subject
    /// is full by deleting the oldest unread message there (counted).
    pub async fn send(&self, name: &str, message: &OutboundMessage) -> Result<Sent, BusError> {
        let subject = self.inner.log.names().outbound(name, message.kind());
        let format = self.format_of(name);
        let payload = Bytes::from(message.encode(format));
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", format.content_type());
        headers.insert(OUTBOUND_KIND_HEADER, message.kind());
        let key = message.key();
        let mut last = None;
        for _ in 0..MAX_ROOM_ATTEMPTS {
            let publish = PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(key.as_str());
            let sent = match self
                .inner
                .log
                .context()
                .send_publish(subject.clone(), publish)
                .await
            {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(ack) => {
                    metrics::counter!("plaint_outbound_messages_total", "kind" => message.kind())
                        .increment(1);
                    return Ok(Sent {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(e) if subject_full(&e) => {
                    self.make_room(name, &subject).await?;
                    last = Some(e);
                }
                Err(e) => {
                    return Err(BusError::Unavailable(while_doing(
                        "cannot send to an integration",
                        e,
                    )));
                }
            }
        }
        Err(BusError::JetStream(while_doing(
            "an integration's outbound subject stayed full",
            last.map_or_else(
                || crate::error::Cause::from("no attempt was made"),
                |e| crate::error::Cause::from(Box::new(e)),
            ),
        )))
    }

    /// Deletes the oldest message on `subject`: one its integration has not
    /// acknowledged (acknowledged ones are gone already).
    async fn make_room(&self, name: &str, subject: &str) -> Result<(), BusError> {
        let oldest = match self
            .inner
            .stream
            .direct_get_first_for_subject(subject)
            .await
        {
            Ok(m) => m.sequence,
            // Emptied meanwhile: room enough.
            Err(_) => return Ok(()),
        };
        match self.inner.stream.delete_message(oldest).await {
            Ok(true) => {
                metrics::counter!("plaint_outbound_discarded_total", "integration" => name.to_owned())
                    .increment(1);
                tracing::warn!(
                    integration = name,
                    sequence = oldest,
                    "integration reads too slowly: its oldest unread outbound message was discarded"
                );
                Ok(())
            }
            // Someone else made room, or it was acknowledged meanwhile.
            Ok(false) => Ok(()),
            Err(e) => {
                if e.to_string().contains("no message found") {
                    Ok(())
                } else {
                    Err(BusError::Unavailable(while_doing(
                        "cannot make room in an integration's outbound subject",
                        e,
                    )))
                }
            }
        }
    }

    /// Messages each integration has still to read or acknowledge, by name.
    pub async fn backlogs(&self) -> Result<Vec<(String, u64)>, BusError> {
        use futures::TryStreamExt;
        let stream = self.inner.stream.clone();
        let infos: Vec<_> =
            stream.consumers().try_collect().await.map_err(|e| {
                BusError::Unavailable(while_doing("cannot list outbound consumers", e))
            })?;
        Ok(infos
            .into_iter()
            .map(|i| {
                let pending = i
                    .num_pending
                    .saturating_add(u64::try_from(i.num_ack_pending).unwrap_or(u64::MAX));
                (i.name, pending)
            })
            .collect())
    }

    fn known_state(&self, name: &str) -> Option<Option<Instant>> {
        self.inner
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(name).copied())
    }

    fn remember(&self, name: &str, state: Option<Instant>) {
        if let Ok(mut k) = self.inner.known.lock() {
            // Bounded: source systems that never read are forgotten together.
            if k.len() >= 10_000 {
                k.clear();
            }
            k.insert(name.to_owned(), state);
        }
    }
}

/// The server refused a message because its subject holds its limit.
fn subject_full(e: &async_nats::jetstream::context::PublishError) -> bool {
    if e.kind() != PublishErrorKind::Other {
        return false;
    }
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|api| {
            api.error_code() == async_nats::jetstream::ErrorCode::STREAM_STORE_FAILED
                && api.to_string().contains("maximum messages per subject")
        })
}
