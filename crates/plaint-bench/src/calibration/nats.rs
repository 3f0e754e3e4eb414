//! The raw limits of the NATS server the event log runs on, measured with
//! the same client, the same stream settings and the same consumer path as
//! the services, so that the system's figures can be read as ratios to them.
//!
//! Every measurement runs on a stream of its own (`<prefix>_CALIB_<n>`,
//! subjects `<prefix>.calib.<n>.>`), deleted afterwards; nothing touches the
//! event log.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use async_nats::HeaderMap;
use async_nats::header;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use plaint_bus::{BusError, ConsumerSettings, EventLog, Names, StreamSettings};
// The stream adaptor through tonic's re-export: a direct `futures` dependency
// would change the lock file, which other work in this checkout owns.
use tonic::codegen::tokio_stream::StreamExt;
use uuid::Uuid;

/// How long one pull waits on the server, as the bus's pulls do.
const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// How many operations completed in how long.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Throughput {
    /// Operations completed (messages stored, fetched and acked).
    pub(crate) count: u64,
    /// Wall time they took, first send to last acknowledgement.
    pub(crate) elapsed: Duration,
}

impl Throughput {
    /// Operations per second.
    pub(crate) fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The calibration client: a JetStream context and a name prefix.
#[derive(Debug)]
pub(crate) struct Calibrator {
    client: async_nats::Client,
    js: Context,
    prefix: String,
    runs: AtomicU32,
}

/// A stream that exists for one measurement and is deleted afterwards.
struct Scratch<'a> {
    js: &'a Context,
    name: String,
    subject_root: String,
}

impl Scratch<'_> {
    async fn delete(self) {
        if let Err(e) = self.js.delete_stream(&self.name).await {
            tracing::warn!(stream = %self.name, error = %e, "cannot delete a calibration stream");
        }
    }
}

fn unavailable(e: impl Into<plaint_bus::Cause>) -> BusError {
    BusError::Unavailable(e.into())
}

/// A payload of `bytes` bytes (printable, incompressible enough for NATS).
fn payload(bytes: usize) -> Bytes {
    let seed = Uuid::new_v4().simple().to_string().into_bytes();
    Bytes::from(
        (0..bytes)
            .map(|i| seed[i % seed.len()])
            .collect::<Vec<u8>>(),
    )
}

impl Calibrator {
    /// A calibrator over `client`; `prefix` must be subject- and stream-safe
    /// (ASCII letters, digits, `-`, `_`).
    pub(crate) fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            js: jetstream::new(client.clone()),
            client,
            prefix: prefix.to_owned(),
            runs: AtomicU32::new(0),
        }
    }

    /// A fresh file-backed stream with the event log's settings.
    async fn scratch(&self) -> anyhow::Result<Scratch<'_>> {
        self.scratch_with(false).await
    }

    /// A fresh file-backed stream with the event log's settings, accepting
    /// atomic batch publishes if `atomic`.
    async fn scratch_with(&self, atomic: bool) -> anyhow::Result<Scratch<'_>> {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}_CALIB_{n}", self.prefix);
        let subject_root = format!("{}.calib.{n}", self.prefix);
        self.js
            .create_stream(Config {
                name: name.clone(),
                subjects: vec![format!("{subject_root}.>")],
                storage: StorageType::File,
                num_replicas: 1,
                duplicate_window: Duration::from_secs(120),
                max_message_size: 1024 * 1024,
                allow_direct: true,
                discard: DiscardPolicy::Old,
                allow_atomic_publish: atomic,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                BusError::JetStream(format!("cannot create calibration stream: {e}").into())
            })?;
        Ok(Scratch {
            js: &self.js,
            name,
            subject_root,
        })
    }

    /// Pipelined publishes of `bytes`-byte messages to one subject, at most
    /// `window` unacknowledged, until `duration` has passed or `max` were
    /// sent; the time includes waiting for the last acknowledgements.
    pub(crate) async fn publish_pipelined(
        &self,
        bytes: usize,
        window: usize,
        duration: Duration,
        max: u64,
    ) -> anyhow::Result<Throughput> {
        let scratch = self.scratch().await?;
        let subject = format!("{}.one", scratch.subject_root);
        let body = payload(bytes);
        let result = async {
            let window = window.max(1);
            let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < max && started.elapsed() < duration {
                if pending.len() >= window
                    && let Some(ack) = pending.pop_front()
                {
                    ack.await.map_err(unavailable)?;
                }
                let ack = self
                    .js
                    .publish(subject.clone(), body.clone())
                    .await
                    .map_err(unavailable)?;
                pending.push_back(ack);
                sent += 1;
            }
            for ack in pending {
                ack.await.map_err(unavailable)?;
            }
            Ok(Throughput {
                count: sent,
                elapsed: started.elapsed(),
            })
        }
        .await;
        scratch.delete().await;
        result
    }

    /// Publishes one `bytes`-byte message at a time, each awaited before the
    /// next, until `duration` has passed or `max` were sent. Returns every
    /// round trip, in order.
    pub(crate) async fn publish_round_trips(
        &self,
        bytes: usize,
        duration: Duration,
        max: u64,
    ) -> anyhow::Result<Vec<Duration>> {
        let scratch = self.scratch().await?;
        let subject = format!("{}.one", scratch.subject_root);
        let body = payload(bytes);
        let result = async {
            let mut out = Vec::new();
            let started = Instant::now();
            while (out.len() as u64) < max && started.elapsed() < duration {
                let t = Instant::now();
                self.js
                    .publish(subject.clone(), body.clone())
                    .await
                    .map_err(unavailable)?
                    .await
                    .map_err(unavailable)?;
                out.push(t.elapsed());
            }
            Ok(out)
        }
        .await;
        scratch.delete().await;
        result
    }

    /// Pipelined publishes as the event log appends them: a message id for
    /// deduplication and the subject's expected last sequence, round-robin
    /// over `subjects` subjects, at most `window` unacknowledged.
    pub(crate) async fn publish_expected(
        &self,
        bytes: usize,
        window: usize,
        subjects: usize,
        duration: Duration,
        max: u64,
    ) -> anyhow::Result<Throughput> {
        let scratch = self.scratch().await?;
        let names: Vec<String> = (0..subjects.max(1))
            .map(|i| format!("{}.s{i}", scratch.subject_root))
            .collect();
        let body = payload(bytes);
        let result = async {
            let window = window.max(1);
            // Last known sequence per subject; an unacknowledged publish to
            // the same subject is awaited first, so the expectation holds.
            let mut last: Vec<u64> = vec![0; names.len()];
            let mut pending: VecDeque<(usize, PublishAckFuture)> = VecDeque::with_capacity(window);
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < max && started.elapsed() < duration {
                let i = usize::try_from(sent % names.len() as u64).unwrap_or(0);
                while pending.len() >= window || pending.iter().any(|(j, _)| *j == i) {
                    let Some(p) = pending.pop_front() else { break };
                    settle(p, &mut last).await?;
                }
                let message = PublishMessage::build()
                    .payload(body.clone())
                    .message_id(Uuid::new_v4().to_string())
                    .expected_last_subject_sequence(last[i]);
                let ack = self
                    .js
                    .send_publish(names[i].clone(), message)
                    .await
                    .map_err(unavailable)?;
                pending.push_back((i, ack));
                sent += 1;
            }
            while let Some(p) = pending.pop_front() {
                settle(p, &mut last).await?;
            }
            Ok(Throughput {
                count: sent,
                elapsed: started.elapsed(),
            })
        }
        .await;
        scratch.delete().await;
        result
    }

    /// Publishes `backlog` messages of `bytes` bytes to the scratch stream,
    /// window 256: the backlog a fetch calibration drains.
    async fn fill(&self, scratch: &Scratch<'_>, bytes: usize, backlog: u64) -> anyhow::Result<()> {
        let body = payload(bytes);
        let subject = format!("{}.one", scratch.subject_root);
        let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(256);
        for _ in 0..backlog {
            if pending.len() >= 256
                && let Some(ack) = pending.pop_front()
            {
                ack.await.map_err(unavailable)?;
            }
            pending.push_back(
                self.js
                    .publish(subject.clone(), body.clone())
                    .await
                    .map_err(unavailable)?,
            );
        }
        for ack in pending {
            ack.await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// Fills a stream with `backlog` messages of `bytes` bytes, then drains
    /// it through a durable pull consumer set up as the router's (explicit
    /// acks, same batch and ack-pending limits), acking every message. Only
    /// the drain is timed.
    pub(crate) async fn fetch_backlog(
        &self,
        bytes: usize,
        backlog: u64,
    ) -> anyhow::Result<Throughput> {
        let scratch = self.scratch().await?;
        let result = async {
            self.fill(&scratch, bytes, backlog).await?;
            let settings = ConsumerSettings::new(
                format!("{}_fetch", scratch.name),
                format!("{}.>", scratch.subject_root),
            );
            // The scratch stream opened as an event log (opening takes the
            // stream as it is) and read through the bus's durable consumer:
            // the path the router reads the log by.
            let names = Names::new(&self.prefix, &scratch.name).map_err(anyhow::Error::msg)?;
            let personal = plaint_bus::PersonalDataSettings::for_tests(&self.prefix)?;
            let log = EventLog::open(
                self.client.clone(),
                names,
                &StreamSettings::default(),
                &personal,
            )
            .await?;
            let started = Instant::now();
            let mut deliveries = log.consume(&settings).await?;
            let mut count = 0u64;
            while count < backlog {
                let next = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
                    .await
                    .map_err(|_| unavailable("the calibration consumer stalled"))?;
                match next {
                    Some(Ok(d)) => {
                        d.ack().await?;
                        count += 1;
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(unavailable("the calibration consumer ended").into()),
                }
            }
            Ok::<_, anyhow::Error>(Throughput {
                count,
                elapsed: started.elapsed(),
            })
        }
        .await;
        scratch.delete().await;
        result
    }
}

impl Calibrator {
    /// The same backlog as [`fetch_backlog`](Self::fetch_backlog), drained
    /// the same way (a durable pull consumer, pulls of the router's batch
    /// one at a time, each message's metadata read) but with
    /// `AckPolicy::None`: nothing is acknowledged, so beside R_fetch it shows
    /// the most per-message acks can cost. The bus opens only explicit-ack
    /// consumers, so this one is made with the NATS client directly.
    pub(crate) async fn fetch_backlog_no_ack(
        &self,
        bytes: usize,
        backlog: u64,
    ) -> anyhow::Result<Throughput> {
        let scratch = self.scratch().await?;
        let result = async {
            self.fill(&scratch, bytes, backlog).await?;
            let router = ConsumerSettings::new("unused", "unused");
            let durable = format!("{}_fetch_no_ack", scratch.name);
            let stream = self
                .js
                .get_stream(&scratch.name)
                .await
                .map_err(|e| anyhow!("cannot open the calibration stream: {e}"))?;
            let consumer: PullConsumer = stream
                .get_or_create_consumer(
                    &durable,
                    pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: format!("{}.>", scratch.subject_root),
                        ack_policy: AckPolicy::None,
                        deliver_policy: DeliverPolicy::All,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| anyhow!("cannot create the no-ack consumer: {e}"))?;
            let started = Instant::now();
            let mut count = 0u64;
            // Each pull is bounded by its expiry and the loop by the backlog;
            // an empty pull ends it (the backlog was stored before).
            while count < backlog {
                let mut pull = consumer
                    .batch()
                    .max_messages(router.batch.max(1))
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await
                    .map_err(|e| anyhow!("no-ack pull: {e}"))?;
                let before = count;
                // Stops at the backlog's last message, as the acked drain
                // does: the last pull asks for more than are left and would
                // otherwise wait out its expiry.
                while count < backlog
                    && let Some(m) = pull.next().await
                {
                    let m = m.map_err(|e| anyhow!("no-ack pull: {e}"))?;
                    // The bus reads every delivery's metadata; so does this.
                    m.info()
                        .map_err(|e| anyhow!("delivery without metadata: {e}"))?;
                    count += 1;
                }
                if count == before {
                    bail!("the no-ack consumer stalled after {count} of {backlog} messages");
                }
            }
            Ok::<_, anyhow::Error>(Throughput {
                count,
                elapsed: started.elapsed(),
            })
        }
        .await;
        scratch.delete().await;
        result
    }

    /// Atomic batches of `batch` messages of `bytes` bytes to one subject,
    /// one batch in flight, on a stream of its own that allows them, until
    /// `duration` has passed or `max` messages were committed. Only the
    /// commit's acknowledgement is awaited: it is the only one a batch needs,
    /// and it comes once the whole batch is stored. Counts messages.
    pub(crate) async fn publish_atomic_batches(
        &self,
        bytes: usize,
        batch: u64,
        duration: Duration,
        max: u64,
    ) -> anyhow::Result<Throughput> {
        let scratch = self.scratch_with(true).await?;
        let subject = format!("{}.one", scratch.subject_root);
        let body = payload(bytes);
        let result = async {
            let batch = batch.max(1);
            let started = Instant::now();
            let mut count = 0u64;
            while count < max && started.elapsed() < duration {
                self.atomic_batch(&subject, &body, batch).await?;
                count += batch;
            }
            Ok(Throughput {
                count,
                elapsed: started.elapsed(),
            })
        }
        .await;
        scratch.delete().await;
        result
    }

    /// One atomic batch: `n - 1` plain publishes carrying the batch id and
    /// their sequence in it (without a reply subject the server answers none
    /// of them), then the commit, whose acknowledgement must count all `n`.
    /// All go over one connection, so the server sees them in order.
    async fn atomic_batch(&self, subject: &str, body: &Bytes, n: u64) -> anyhow::Result<()> {
        let id = Uuid::new_v4().simple().to_string();
        for seq in 1..n {
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_BATCH_ID, id.as_str());
            headers.insert(header::NATS_BATCH_SEQUENCE, seq.to_string().as_str());
            self.client
                .publish_with_headers(subject.to_owned(), headers, body.clone())
                .await
                .map_err(|e| anyhow!("atomic batch publish: {e}"))?;
        }
        let commit = PublishMessage::build()
            .payload(body.clone())
            .header(header::NATS_BATCH_ID, id.as_str())
            .header(header::NATS_BATCH_SEQUENCE, n.to_string().as_str())
            .header(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
        let ack = self
            .js
            .send_publish(subject.to_owned(), commit)
            .await
            .map_err(|e| anyhow!("atomic batch commit: {e}"))?
            .await
            .map_err(|e| anyhow!("atomic batch commit: {e}"))?;
        if ack.batch_size != Some(n) {
            bail!(
                "the server acknowledged an atomic batch of {n} as {:?} messages (batch id {:?})",
                ack.batch_size,
                ack.batch_id
            );
        }
        Ok(())
    }
}

/// Waits for one expected-sequence publish and records where it landed.
async fn settle((i, ack): (usize, PublishAckFuture), last: &mut [u64]) -> anyhow::Result<()> {
    let a = ack.await.map_err(unavailable)?;
    last[i] = a.sequence;
    Ok(())
}
