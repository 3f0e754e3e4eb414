//! The event log: one stream; a complaint's events on one subject per kind
//! under the complaint, company facts on a subject each.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::connection::State;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use plaint_domain::event::Envelope;
use plaint_domain::values::CustomerRef;

use crate::codec::{Codec, Reading};
use crate::data_keys::{DataKeys, PersonalDataSettings};
use crate::group_commit::{GroupCommit, Request};

use crate::error::{AppendError, BusError, while_doing};
use crate::names::Names;
use crate::tail::TailItem;
use crate::trace::TRACEPARENT;

/// Most events one subject may hold: a complaint's history is short; a subject
/// past this is treated as corrupt rather than read without bound.
pub const MAX_EVENTS_PER_SUBJECT: usize = 10_000;
/// Header naming the event type, for tools that do not decode payloads.
pub const EVENT_TYPE_HEADER: &str = "Plaint-Event-Type";
/// Header carrying the payload schema version.
pub const SCHEMA_HEADER: &str = "Plaint-Schema-Version";
/// The subject whose last sequence a conditional append is checked
/// against, when it is not the subject appended to (wildcards allowed).
const EXPECTED_SUBJECT_HEADER: &str = "Nats-Expected-Last-Subject-Sequence-Subject";
/// Attempts for an append interrupted by a disconnect or a timeout.
const APPEND_ATTEMPTS: u32 = 6;
/// How long dead letters are kept by default: 30 days.
pub const DEFAULT_DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Messages one helpdesk integration may have waiting for intake by default.
pub const DEFAULT_INBOUND_PENDING_PER_INTEGRATION: i64 = 10_000;

/// How the event log's stream is provisioned.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Replicas (1 for one server, 3 for a cluster).
    pub replicas: usize,
    /// How long events are kept; zero keeps them forever.
    pub max_age: Duration,
    /// How long the server remembers message ids for deduplication.
    pub duplicate_window: Duration,
    /// Largest message the stream accepts, in bytes.
    pub max_message_bytes: i32,
    /// Messages one helpdesk integration (one inbound subject) may have
    /// waiting for intake; past it the inbound stream refuses its publishes,
    /// and only its own.
    pub inbound_pending_per_integration: i64,
    /// How long dead letters are kept: their original bytes may hold
    /// personal data in clear. Zero keeps them forever.
    pub dead_letter_max_age: Duration,
    /// Appends made at the same time go as one atomic batch (see
    /// [`crate::group_commit`]).
    pub group_commit: bool,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            max_message_bytes: 1024 * 1024,
            inbound_pending_per_integration: DEFAULT_INBOUND_PENDING_PER_INTEGRATION,
            dead_letter_max_age: DEFAULT_DEAD_LETTER_RETENTION,
            group_commit: false,
        }
    }
}

/// The condition an append must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Append whatever the subject holds.
    Any,
    /// The subject must be empty: the aggregate is being created.
    Empty,
    /// The subject's last message must be at this stream sequence.
    LastSubjectSequence(u64),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream sequence of the stored event.
    pub sequence: u64,
    /// The server had this event id already; nothing new was stored.
    pub duplicate: bool,
}

/// An event read back from the log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its stream sequence.
    pub sequence: u64,
    /// The event.
    pub envelope: Envelope,
    /// Its trace context, if it carried one.
    pub traceparent: Option<String>,
}

/// A message as stored, undecoded (dead letters, inbound messages).
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// Its stream sequence.
    pub sequence: u64,
    /// The subject it was published to.
    pub subject: String,
    /// The message's NATS headers, in order.
    pub headers: Vec<(String, String)>,
    /// Its bytes.
    pub payload: Bytes,
}

/// The event log: a handle on the stream, cheap to clone.
#[derive(Debug, Clone)]
pub struct EventLog {
    js: Context,
    names: Names,
    stream: Stream,
    codec: Codec,
    /// Where appends go when they are batched.
    group: Option<GroupCommit>,
}

impl EventLog {
    /// Opens the log, creating its stream and the bucket of data keys when
    /// they do not exist. Events read back have their personal fields
    /// masked; see [`EventLog::reading`].
    pub async fn open(
        client: async_nats::Client,
        names: Names,
        settings: &StreamSettings,
        personal: &PersonalDataSettings,
    ) -> Result<Self, crate::settings::OpenError> {
        use crate::settings::OpenError;
        let js = jetstream::new(client);
        let config = Config {
            name: names.stream().to_owned(),
            subjects: names.log_subjects(),
            storage: StorageType::File,
            num_replicas: settings.replicas,
            max_age: settings.max_age,
            duplicate_window: settings.duplicate_window,
            max_message_size: settings.max_message_bytes,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            discard: DiscardPolicy::Old,
            allow_atomic_publish: true,
            ..Default::default()
        };
        let stream = ensure_stream(&js, config)
            .await
            .map_err(OpenError::Provision)?;
        let first_layout = names.first_layout_complaints();
        if stream.cached_info().config.subjects.contains(&first_layout) {
            return Err(OpenError::FirstLayout {
                stream: names.stream().to_owned(),
                subject: first_layout,
            });
        }
        let mut stream = stream;
        let batches = settings.group_commit && allows_batches(&js, &mut stream).await;
        let keys = DataKeys::open(&js, &names, settings.replicas, personal)
            .await
            .map_err(OpenError::Keys)?;
        let mut log = Self {
            js,
            names,
            stream,
            codec: Codec {
                keys,
                reading: Reading::Masked,
            },
            group: None,
        };
        if batches {
            log.group = Some(GroupCommit::start(log.clone()));
        }
        Ok(log)
    }

    /// The log's stream.
    pub(crate) fn stream_handle(&self) -> &Stream {
        &self.stream
    }

    /// The leases next to the log (see [`crate::lease`]), with the log's
    /// replicas, provisioned with `ttl` when missing.
    pub async fn leases(&self, ttl: Duration) -> Result<crate::lease::Leases, BusError> {
        let replicas = self.stream.cached_info().config.num_replicas;
        crate::lease::Leases::open(&self.js, &self.names, replicas, ttl).await
    }

    /// The same log, read as `reading` says.
    #[must_use]
    pub fn reading(mut self, reading: Reading) -> Self {
        self.codec.reading = reading;
        self
    }

    /// The customers' data keys.
    pub fn data_keys(&self) -> &DataKeys {
        &self.codec.keys
    }

    /// Decodes a delivered message with its personal fields left sealed:
    /// what deciding a route sees.
    pub fn decode_masked(&self, payload: &[u8]) -> Result<Envelope, plaint_proto::DecodeError> {
        self.codec.decode_masked(payload)
    }

    pub(crate) fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The names this log uses.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The JetStream context, for the consumer and helpdesk modules.
    pub(crate) fn context(&self) -> &Context {
        &self.js
    }

    /// Appends one event under a condition. The event id is the message id, so
    /// a retry after a lost acknowledgement is answered as a duplicate; success
    /// is reported only after the server's acknowledgement.
    pub async fn append(
        &self,
        subject: &str,
        envelope: &Envelope,
        expect: Expect,
        traceparent: Option<&str>,
    ) -> Result<Appended, AppendError> {
        self.append_for(subject, envelope, None, expect, traceparent)
            .await
    }

    /// Appends one event whose personal fields belong to `owner`: they are
    /// sealed with that customer's data key (a new complaint's own customer
    /// is found in it).
    pub async fn append_for(
        &self,
        subject: &str,
        envelope: &Envelope,
        owner: Option<&CustomerRef>,
        expect: Expect,
        traceparent: Option<&str>,
    ) -> Result<Appended, AppendError> {
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, envelope.payload.type_name());
        headers.insert(SCHEMA_HEADER, envelope.schema_version.to_string().as_str());
        if let Some(tp) = traceparent {
            headers.insert(TRACEPARENT, tp);
        }
        let payload = self.codec.encode(envelope, owner).await?;
        self.publish(
            subject,
            headers,
            payload,
            &envelope.event_id.to_string(),
            expect,
        )
        .await
    }

    /// Publishes raw bytes with a message id, under a condition: in a batch
    /// with the appends made at the same time when the log batches them,
    /// else on its own.
    pub(crate) async fn publish(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        message_id: &str,
        expect: Expect,
    ) -> Result<Appended, AppendError> {
        // A batch is stored by one stream: what goes to another (dead
        // letters, requeued inbound messages) is published on its own.
        let Some(group) = self.group.as_ref().filter(|_| self.names.in_log(subject)) else {
            return self
                .publish_one(subject, headers, payload, message_id, expect)
                .await;
        };
        group
            .append(Request {
                subject: subject.to_owned(),
                aggregate: (expect != Expect::Any)
                    .then(|| self.names.aggregate_of(subject))
                    .flatten(),
                headers,
                payload,
                message_id: message_id.to_owned(),
                expect,
            })
            .await
    }

    /// The headers of an append made in a batch: the caller's, the message
    /// id, and the condition on the whole `aggregate`.
    pub(crate) fn append_headers(
        &self,
        mut headers: HeaderMap,
        message_id: &str,
        expect: Expect,
        aggregate: Option<&str>,
    ) -> HeaderMap {
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        let last = match expect {
            Expect::Any => return headers,
            Expect::Empty => 0,
            Expect::LastSubjectSequence(seq) => seq,
        };
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            last.to_string().as_str(),
        );
        if let Some(aggregate) = aggregate {
            headers.insert(EXPECTED_SUBJECT_HEADER, aggregate);
        }
        headers
    }

    /// Events this process stored as part of an atomic batch of more than
    /// one, since the log was opened (0 when appends go one by one).
    pub fn batched_appends(&self) -> u64 {
        self.group.as_ref().map_or(0, GroupCommit::batched)
    }

    /// Whether the connection to NATS is up now.
    pub(crate) fn connected(&self) -> bool {
        self.js.client().connection_state() == State::Connected
    }

    /// Publishes raw bytes with a message id, under a condition, on its
    /// own, with retries.
    pub(crate) async fn publish_one(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        message_id: &str,
        expect: Expect,
    ) -> Result<Appended, AppendError> {
        // An event's condition holds on its whole aggregate (all of a
        // complaint's kinds), not only on the subject of its own kind.
        let aggregate = self.names.aggregate_of(subject);
        let mut last_error: Option<crate::error::Cause> = None;
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt > 0 {
                let backoff = Duration::from_millis(50u64 << attempt.min(5));
                tokio::time::sleep(backoff.min(Duration::from_secs(1))).await;
            }
            // While the connection is down a publish would only be queued and
            // time out unanswered (5 s an attempt): fail this attempt at once,
            // so the caller hears UNAVAILABLE within the backoff (about 2.5 s)
            // instead of half a minute later.
            if self.js.client().connection_state() != State::Connected {
                last_error = Some("not connected to NATS".into());
                continue;
            }
            let mut publish = PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(message_id);
            publish = match expect {
                Expect::Any => publish,
                Expect::Empty => publish.expected_last_subject_sequence(0),
                Expect::LastSubjectSequence(seq) => publish.expected_last_subject_sequence(seq),
            };
            if expect != Expect::Any
                && let Some(aggregate) = &aggregate
            {
                publish = publish.header(EXPECTED_SUBJECT_HEADER, aggregate.as_str());
            }
            let sent = match self.js.send_publish(subject.to_owned(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(ack) => {
                    return Ok(Appended {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(e) => match e.kind() {
                    PublishErrorKind::WrongLastSequence => {
                        return Err(AppendError::WrongLastSequence);
                    }
                    PublishErrorKind::MaxPayloadExceeded => {
                        return Err(BusError::JetStream(e.into()).into());
                    }
                    // "No responders": nothing serves the stream right now. In
                    // a cluster that is a leader election after a node was
                    // lost, over in seconds, so it is retried like a timeout
                    // (and reported as unavailable if it outlasts the attempts).
                    _ => {
                        tracing::debug!(error = %e, attempt, subject, "append failed, retrying");
                        last_error = Some(e.into());
                    }
                },
            }
        }
        Err(
            BusError::Unavailable(last_error.unwrap_or_else(|| "no attempt was made".into()))
                .into(),
        )
    }

    /// Every event on a subject, oldest first.
    pub async fn read_subject(&self, subject: &str) -> Result<Vec<StoredEvent>, BusError> {
        self.read_subject_from(subject, 1).await
    }

    /// The events on a subject after stream sequence `after`, oldest first.
    pub async fn read_subject_after(
        &self,
        subject: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>, BusError> {
        self.read_subject_from(subject, after + 1).await
    }

    /// Up to `limit` events on the subjects matching `filter` (wildcards
    /// allowed) after stream sequence `after`, oldest first, each with its
    /// subject; one that cannot be decoded comes as its error.
    pub async fn read_matching_after(
        &self,
        filter: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TailItem>, BusError> {
        let mut items = Vec::new();
        let mut seq = after + 1;
        while items.len() < limit {
            let Some(m) = next_by_subject(&self.stream, filter, seq).await? else {
                break;
            };
            seq = m.sequence + 1;
            let (sequence, subject) = (m.sequence, m.subject.to_string());
            let event = self.decode_stored(m).await;
            items.push(TailItem::of(sequence, subject, event)?);
        }
        Ok(items)
    }

    /// The first event on a subject, if any.
    pub async fn first_on_subject(&self, subject: &str) -> Result<Option<StoredEvent>, BusError> {
        match next_by_subject(&self.stream, subject, 1).await? {
            Some(m) => self.decode_stored(m).await.map(Some),
            None => Ok(None),
        }
    }

    /// The last event on a subject, if any.
    pub async fn last_on_subject(&self, subject: &str) -> Result<Option<StoredEvent>, BusError> {
        match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => self.decode_stored(m).await.map(Some),
            Err(e) if no_message(e.kind()) => Ok(None),
            Err(e) => Err(BusError::Unavailable(e.into())),
        }
    }

    async fn read_subject_from(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<Vec<StoredEvent>, BusError> {
        let mut events = Vec::new();
        let mut seq = from;
        while let Some(m) = next_by_subject(&self.stream, subject, seq).await? {
            if events.len() == MAX_EVENTS_PER_SUBJECT {
                return Err(BusError::TooManyEvents {
                    subject: subject.to_owned(),
                    limit: MAX_EVENTS_PER_SUBJECT,
                });
            }
            seq = m.sequence + 1;
            events.push(self.decode_stored(m).await?);
        }
        Ok(events)
    }

    async fn decode_stored(
        &self,
        m: async_nats::jetstream::message::StreamMessage,
    ) -> Result<StoredEvent, BusError> {
        let envelope = self.codec.decode(m.sequence, &m.payload).await?;
        Ok(StoredEvent {
            sequence: m.sequence,
            envelope,
            traceparent: m.headers.get(TRACEPARENT).map(|v| v.as_str().to_owned()),
        })
    }

    /// The stream's last sequence: how far the log has come.
    pub async fn last_sequence(&self) -> Result<u64, BusError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| BusError::Unavailable(e.into()))?;
        Ok(info.state.last_sequence)
    }
}

/// Creates the stream, or returns the existing one unchanged.
/// Whether the stream takes atomic batches, turning them on for a stream
/// made before they were used (a change the server makes in place). A
/// process not allowed to change the stream appends one by one.
pub(crate) async fn allows_batches(js: &Context, stream: &mut Stream) -> bool {
    let config = &stream.cached_info().config;
    if config.allow_atomic_publish {
        return true;
    }
    let config = Config {
        allow_atomic_publish: true,
        ..config.clone()
    };
    match js.update_stream(config).await {
        Ok(_) => {
            let _ = stream.info().await;
            true
        }
        Err(e) => {
            tracing::warn!(
                stream = %stream.cached_info().config.name,
                error = %e,
                "the stream does not take atomic batches and cannot be changed: appends go one by one"
            );
            false
        }
    }
}

pub(crate) async fn ensure_stream(js: &Context, config: Config) -> Result<Stream, BusError> {
    js.get_or_create_stream(config)
        .await
        .map_err(|e| BusError::JetStream(while_doing("cannot provision stream", e)))
}

fn no_message(kind: async_nats::jetstream::stream::LastRawMessageErrorKind) -> bool {
    matches!(
        kind,
        async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
    )
}

/// The next message on `subject` at or after `from`, if any.
pub(crate) async fn next_by_subject(
    stream: &Stream,
    subject: &str,
    from: u64,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, BusError> {
    match stream
        .raw_message_builder()
        .sequence(from)
        .next_by_subject(subject)
        .send()
        .await
    {
        Ok(m) => Ok(Some(m)),
        Err(e) if no_message(e.kind()) => Ok(None),
        Err(e) => Err(BusError::Unavailable(e.into())),
    }
}

/// Headers as plain pairs.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_owned()))
        })
        .collect();
    pairs.sort();
    pairs
}
