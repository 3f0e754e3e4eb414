//! Durable pull consumers and the deliveries they yield.
//!
//! At-least-once: a delivery is acked only after its effect is stored, so a
//! crash before the ack means a redelivery, and handlers are idempotent.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::Stream;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};

use tokio_util::sync::CancellationToken;

use crate::error::{BusError, while_doing};
use crate::held::{Held, Ticket};
use crate::log::{EventLog, header_pairs};
use crate::retry::{Backoff, BudgetSpent, RetryPolicy};
use crate::trace::TRACEPARENT;

/// How a durable consumer is set up.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Durable name; replicas that share it share the work.
    pub durable: String,
    /// Only subjects matching one of these filters are delivered.
    pub filter_subjects: Vec<String>,
    /// Most deliveries outstanding without an ack.
    pub max_ack_pending: i64,
    /// Deliveries of one message before the server gives up on it.
    pub max_deliver: i64,
    /// Redelivery delays after ack timeouts, one per attempt (the last
    /// repeats). When not empty, the server takes its first entry as the ack
    /// wait of every first delivery, overriding `ack_wait`; handlers that nak
    /// give their own delay, so the default is empty.
    pub backoff: Vec<Duration>,
    /// How long the server waits for an ack, or a progress ack, before
    /// redelivering: how long what a crashed process held waits for another.
    /// Deliveries still held in a live process are kept by progress acks
    /// (see `held`), so slow work is not redelivered.
    pub ack_wait: Duration,
    /// Most messages one pull asks for: what a stopping consumer finishes
    /// before it exits.
    pub batch: usize,
    /// Idle heartbeat of a pull. Pulls expire after [`PULL_EXPIRES`], which
    /// notices a dead connection sooner, so pulls ask for none.
    pub heartbeat: Duration,
}

impl ConsumerSettings {
    /// Defaults for a consumer of `filter_subject` named `durable`.
    pub fn new(durable: impl Into<String>, filter_subject: impl Into<String>) -> Self {
        Self::filtered(durable, vec![filter_subject.into()])
    }

    /// Defaults for a consumer named `durable` of the subjects matching any
    /// of `filters`.
    pub fn filtered(durable: impl Into<String>, filters: Vec<String>) -> Self {
        Self {
            durable: durable.into(),
            filter_subjects: filters,
            max_ack_pending: 4096,
            max_deliver: 10,
            // Not [1s, 5s, 30s]: the server would make 1 s the ack wait, and
            // a consumer with a batch in hand longer than that would see it
            // redelivered while it is still working through it.
            backoff: Vec::new(),
            ack_wait: DEFAULT_ACK_WAIT,
            batch: 64,
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// The ack wait of a consumer: what a process killed in the middle of its
/// work held is redelivered to another this long after it was last heard of.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(3);

/// How long one pull request waits on the server for messages. A consumer
/// that stops finishes the pull in hand, so this also bounds how long a
/// graceful stop waits for messages that are already on their way.
pub const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// A flow of deliveries from a durable consumer.
///
/// Messages come in pulls of at most `batch`, one pull at a time: the next
/// pull is asked for only when the previous one has ended. So at any moment
/// the server has delivered at most one pull's worth that this process has
/// not handled yet, and a consumer that stops can finish exactly those (see
/// [`next_in_pull`](Self::next_in_pull)) instead of leaving them to be
/// redelivered to its successor after the ack wait.
pub struct Deliveries {
    consumer: PullConsumer,
    held: Held,
    batch: usize,
    current: Option<pull::Batch>,
    /// Messages of the pull in hand that had already reached this process
    /// when one was asked for, each held from then on. Left in the client's
    /// buffer behind slow work they would get no progress ack, and the
    /// client ends a pull 5 s after its expiry whatever its buffer still
    /// holds: those were lost to this process and redelivered after the ack
    /// wait.
    arrived: VecDeque<Result<Delivery, BusError>>,
    /// How the pull in hand ended, seen while taking what had arrived:
    /// `Some(None)` it ended, `Some(Some(e))` it broke with `e`.
    ended: Option<Option<crate::error::Cause>>,
    broken: bool,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries").finish_non_exhaustive()
    }
}

impl Deliveries {
    /// The next delivery, pulling again when the pull in hand has ended;
    /// `None` when the flow ended for good (after an error: open the consumer
    /// again).
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            if self.broken {
                return None;
            }
            if self.current.is_none() {
                match self
                    .consumer
                    .batch()
                    .max_messages(self.batch)
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await
                {
                    Ok(pull) => self.current = Some(pull),
                    Err(e) => return Some(Err(self.interrupted(e.into()))),
                }
            }
            if let Some(next) = self.next_in_pull().await {
                return Some(next);
            }
        }
    }

    /// The next delivery of the pull in hand, without asking for more;
    /// `None` once it has ended (all its messages came, or it expired). A
    /// stopping consumer handles these before it exits.
    pub async fn next_in_pull(&mut self) -> Option<Result<Delivery, BusError>> {
        self.take_arrived();
        if let Some(d) = self.arrived.pop_front() {
            return Some(d);
        }
        if let Some(end) = self.ended.take() {
            return self.end_of_pull(end);
        }
        let pull = self.current.as_mut()?;
        let delivery = match pull.next().await {
            Some(Ok(m)) => Delivery::from_message(m, &self.held),
            Some(Err(e)) => return self.end_of_pull(Some(e)),
            None => return self.end_of_pull(None),
        };
        self.take_arrived();
        Some(delivery)
    }

    /// Takes, and holds, what of the pull in hand already arrived; at most
    /// a pull's worth.
    fn take_arrived(&mut self) {
        let Some(pull) = self.current.as_mut() else {
            return;
        };
        while self.arrived.len() < self.batch {
            match pull.next().now_or_never() {
                Some(Some(Ok(m))) => self
                    .arrived
                    .push_back(Delivery::from_message(m, &self.held)),
                Some(Some(Err(e))) => {
                    self.ended = Some(Some(e));
                    return;
                }
                Some(None) => {
                    self.ended = Some(None);
                    return;
                }
                None => return,
            }
        }
    }

    fn end_of_pull(
        &mut self,
        end: Option<crate::error::Cause>,
    ) -> Option<Result<Delivery, BusError>> {
        match end {
            Some(e) => Some(Err(self.interrupted(e))),
            None => {
                self.current = None;
                None
            }
        }
    }

    fn interrupted(&mut self, error: crate::error::Cause) -> BusError {
        // The consumer may be gone (deleted, or the server lost it): the
        // caller opens it again, which recreates it when needed.
        tracing::warn!(error = %error, "consumer pull interrupted");
        self.current = None;
        self.broken = true;
        BusError::Unavailable(error)
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
            match tokio::time::timeout_at(deadline, self.next_in_pull()).await {
                Ok(Some(Ok(d))) => batch.push(d),
                Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
            }
        }
        Some(Ok(batch))
    }
}

/// One delivered message, with its stream position and ack handles.
#[derive(Debug)]
pub struct Delivery {
    message: async_nats::jetstream::Message,
    /// Keeps it from redelivery while this process holds it.
    _held: Option<Ticket>,
    stream: String,
    /// The message's stream sequence.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
    /// Messages still waiting for this consumer after this one.
    pub pending: u64,
}

impl Delivery {
    fn from_message(
        message: async_nats::jetstream::Message,
        held: &Held,
    ) -> Result<Self, BusError> {
        let (stream, stream_sequence, delivered, pending) = {
            let info = message
                .info()
                .map_err(|e| BusError::JetStream(while_doing("delivery without metadata", e)))?;
            (
                info.stream.to_owned(),
                info.stream_sequence,
                info.delivered,
                info.pending,
            )
        };
        let held = message.reply.clone().map(|reply| held.hold(reply));
        Ok(Self {
            message,
            _held: held,
            stream,
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

    /// The stream it was stored in.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The id its publisher gave it (`Nats-Msg-Id`), if any.
    pub fn message_id(&self) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str())
            .filter(|id| !id.is_empty())
    }

    /// Its headers as plain pairs.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.message
            .headers
            .as_ref()
            .map(header_pairs)
            .unwrap_or_default()
    }

    /// The event type its appender declared in the `Plaint-Event-Type`
    /// header, if any: lets a consumer pass over events it has no use for
    /// without decoding them.
    pub fn event_type(&self) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(crate::log::EVENT_TYPE_HEADER))
            .map(|v| v.as_str())
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
        self.message.ack().await.map_err(BusError::Unavailable)
    }

    /// Done, and wait until the server confirmed it (used at shutdown, so a
    /// restart sees no redelivery).
    pub async fn ack_confirmed(&self) -> Result<(), BusError> {
        self.message
            .double_ack()
            .await
            .map_err(BusError::Unavailable)
    }

    /// It can never be handled: stop delivering it.
    pub async fn term(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(BusError::Unavailable)
    }

    /// Not now: deliver it again after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(BusError::Unavailable)
    }
}

/// Opens (creating when needed) a durable pull consumer on `stream`.
pub(crate) async fn open(
    client: async_nats::Client,
    stream: &Stream,
    settings: &ConsumerSettings,
) -> Result<Deliveries, BusError> {
    // One filter goes in `filter_subject`, as a consumer with one filter is
    // listed by tools; several in `filter_subjects`.
    let (filter_subject, filter_subjects) = match settings.filter_subjects.as_slice() {
        [one] => (one.clone(), Vec::new()),
        many => (String::new(), many.to_vec()),
    };
    let config = pull::Config {
        durable_name: Some(settings.durable.clone()),
        filter_subject,
        filter_subjects,
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: settings.ack_wait,
        max_deliver: settings.max_deliver,
        backoff: settings.backoff.clone(),
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    let mut consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(&settings.durable, config.clone())
        .await
        .map_err(|e| BusError::JetStream(while_doing("cannot open consumer", e)))?;
    // A consumer made by an earlier release keeps its settings until told:
    // what it filters and how long it waits for acks follow this release.
    let found = &consumer.cached_info().config;
    if found.filter_subject != config.filter_subject
        || found.filter_subjects != config.filter_subjects
        || found.ack_wait != config.ack_wait
    {
        tracing::info!(
            consumer = settings.durable,
            "updating the consumer's filters and ack wait"
        );
        consumer = stream
            .update_consumer(config)
            .await
            .map_err(|e| BusError::JetStream(while_doing("cannot update consumer", e)))?;
    }
    Ok(Deliveries {
        consumer,
        held: Held::keep(client, settings.ack_wait),
        batch: settings.batch.max(1),
        current: None,
        arrived: VecDeque::new(),
        ended: None,
        broken: false,
    })
}

impl EventLog {
    /// A durable consumer over the event log.
    pub async fn consume(&self, settings: &ConsumerSettings) -> Result<Deliveries, BusError> {
        let stream = self
            .context()
            .get_stream(self.names().stream())
            .await
            .map_err(|e| BusError::JetStream(e.into()))?;
        open(self.context().client(), &stream, settings).await
    }

    /// Events durable consumer `durable` has still to finish: not yet
    /// delivered, or delivered and not yet acknowledged.
    pub async fn consumer_backlog(&self, durable: &str) -> Result<u64, BusError> {
        let info = self
            .stream_handle()
            .clone()
            .consumer_info(durable)
            .await
            .map_err(|e| {
                BusError::Unavailable(crate::error::while_doing("cannot read a consumer", e))
            })?;
        Ok(info
            .num_pending
            .saturating_add(u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX)))
    }
}

/// A consumer gave up: the log stayed unreachable past its retry budget.
#[derive(Debug, thiserror::Error)]
#[error("the {what} gave up: {spent}")]
pub struct GaveUp {
    /// Which consumer.
    pub what: &'static str,
    /// How long it kept failing.
    pub spent: BudgetSpent,
    /// The last failure.
    #[source]
    pub last: BusError,
}

/// What a service consumes with [`consume_until_stopped`].
pub trait Consume: Send {
    /// Opens the flow of deliveries, again after it broke.
    fn open(&mut self) -> impl Future<Output = Result<Deliveries, BusError>> + Send;
    /// Handles one delivery: acks, naks or terminates it.
    fn handle(&mut self, delivery: Delivery) -> impl Future<Output = ()> + Send;
}

/// The loop every consumer of the services runs until `stop` is cancelled:
/// opens the flow, hands each delivery to the consumer in order, reopens a
/// flow that broke, and pauses between failures by `policy`. A stopping
/// consumer finishes the pull in hand, so nothing this process was given
/// waits out the ack wait before its successor gets it. `Err` once the log
/// has been unreachable for longer than the policy's budget.
pub async fn consume_until_stopped(
    what: &'static str,
    consumer: &mut impl Consume,
    policy: RetryPolicy,
    stop: &CancellationToken,
) -> Result<(), GaveUp> {
    let mut backoff = Backoff::new(policy);
    while !stop.is_cancelled() {
        let mut deliveries = match consumer.open().await {
            Ok(d) => d,
            Err(e) => {
                pause_after(what, &mut backoff, e, stop).await?;
                continue;
            }
        };
        backoff.succeeded();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                n = deliveries.next() => n,
            };
            match next {
                Some(Ok(d)) => consumer.handle(d).await,
                // The flow is broken now; the next turn reopens it.
                Some(Err(e)) => pause_after(what, &mut backoff, e, stop).await?,
                None => break,
            }
        }
        if stop.is_cancelled() {
            while let Some(Ok(d)) = deliveries.next_in_pull().await {
                consumer.handle(d).await;
            }
        }
    }
    tracing::info!(consumer = what, "consumer stopped");
    Ok(())
}

async fn pause_after(
    what: &'static str,
    backoff: &mut Backoff,
    e: BusError,
    stop: &CancellationToken,
) -> Result<(), GaveUp> {
    let pause = match backoff.failed() {
        Ok(pause) => pause,
        Err(spent) => {
            return Err(GaveUp {
                what,
                spent,
                last: e,
            });
        }
    };
    tracing::warn!(consumer = what, error = %e, ?pause, "consumer interrupted; retrying");
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(pause) => {}
    }
    Ok(())
}
