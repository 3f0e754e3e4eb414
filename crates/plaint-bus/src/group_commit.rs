//! Appends made at the same time by one process go to the log together, as
//! one atomic batch (NATS 2.12+): with `sync_interval: always` the server
//! flushes a batch to disk in a few writes instead of one per event, which is
//! what a durable append costs.
//!
//! Nothing waits to form a batch: an append finds the appends that queued
//! while earlier batches were in flight, so a lone append goes alone (as a
//! plain publish) and batches grow only under load. Each event keeps its own
//! `Nats-Msg-Id` and expected-sequence check; the server stores all of a
//! batch or none of it, and when it refuses one (a duplicate, a complaint
//! that moved on) every append of the batch is made again on its own, so
//! each caller gets the answer it would have had alone.
//!
//! Two appends to the same complaint never share a batch: the server checks
//! each against the complaint's last sequence before the batch, so both
//! would pass the check that should refuse the second.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use async_nats::header::{
    NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE,
};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::AppendError;
use crate::log::{Appended, EventLog, Expect};

/// Most events in one batch (the server's own limit is 1,000).
pub(crate) const MAX_BATCH: usize = 100;
/// Batches in flight at once; appends queue behind them and form the next.
const IN_FLIGHT: usize = 4;
/// Appends waiting for a batch before callers wait to hand theirs over.
const QUEUE: usize = 4 * MAX_BATCH;

/// One append, as a caller asked for it.
pub(crate) struct Request {
    pub(crate) subject: String,
    /// The complaint (or other aggregate) the condition holds on.
    pub(crate) aggregate: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
    pub(crate) message_id: String,
    pub(crate) expect: Expect,
}

/// An append waiting for its batch, and where its answer goes.
struct Pending {
    req: Request,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// The handle appends are given to.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    /// Events stored as part of a batch of more than one, since the start.
    batched: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the batcher; `log` makes the appends (alone, or in batches).
    pub(crate) fn start(log: EventLog) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let batched = Arc::new(AtomicU64::new(0));
        tokio::spawn(batcher(log, rx, batched.clone()));
        Self { queue, batched }
    }

    /// Events stored as part of a batch of more than one, since the start.
    pub(crate) fn batched(&self) -> u64 {
        self.batched.load(Ordering::Relaxed)
    }

    /// Appends as part of whatever batch it falls into.
    pub(crate) async fn append(&self, req: Request) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { req, reply };
        if self.queue.send(pending).await.is_err() {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }
}

fn gone() -> AppendError {
    crate::error::BusError::Unavailable("the log's batcher stopped".into()).into()
}

/// Forms batches from what queued, one batch per free slot in flight.
async fn batcher(log: EventLog, mut rx: mpsc::Receiver<Pending>, batched: Arc<AtomicU64>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried: VecDeque<Pending> = VecDeque::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.pop_front() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut aggregates: HashSet<Option<String>> = HashSet::new();
        aggregates.insert(batch[0].req.aggregate.clone());
        let mut later = VecDeque::new();
        while batch.len() < MAX_BATCH {
            let next = match carried.pop_front() {
                Some(p) => p,
                None => match rx.try_recv() {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            // Appends without a condition may share a batch freely.
            if next.req.aggregate.is_some() && !aggregates.insert(next.req.aggregate.clone()) {
                later.push_back(next);
            } else {
                batch.push(next);
            }
        }
        later.extend(carried.drain(..));
        carried = later;
        let (log, batched) = (log.clone(), batched.clone());
        tokio::spawn(async move {
            commit(&log, batch, &batched).await;
            drop(slot);
        });
    }
}

/// Appends `batch` atomically, or each on its own when it is one or the
/// server refuses the batch; answers every caller.
async fn commit(log: &EventLog, batch: Vec<Pending>, batched: &AtomicU64) {
    // Disconnected, a batch would only time out: the appends alone fail
    // fast and retry as they always do.
    if batch.len() > 1 && log.connected() {
        match publish_batch(log, &batch).await {
            Ok(last) => {
                let n = batch.len() as u64;
                batched.fetch_add(n, Ordering::Relaxed);
                for (i, p) in batch.into_iter().enumerate() {
                    let sequence = last + 1 + i as u64 - n;
                    let _ = p.reply.send(Ok(Appended {
                        sequence,
                        duplicate: false,
                    }));
                }
                metrics::histogram!("plaint_append_batch_size").record(n as f64);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, events = batch.len(), "batch refused; appending one by one");
                metrics::counter!("plaint_append_batches_refused_total").increment(1);
            }
        }
    }
    let alone = batch.into_iter().map(|p| async move {
        let answer = log
            .publish_one(
                &p.req.subject,
                p.req.headers,
                p.req.payload,
                &p.req.message_id,
                p.req.expect,
            )
            .await;
        let _ = p.reply.send(answer);
    });
    futures::future::join_all(alone).await;
}

/// Publishes the batch; the stream sequence of its last event once stored.
async fn publish_batch(log: &EventLog, batch: &[Pending]) -> Result<u64, String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let n = batch.len();
    let (last, rest) = batch.split_last().ok_or("an empty batch")?;
    for (i, p) in rest.iter().enumerate() {
        let mut headers = log.append_headers(
            p.req.headers.clone(),
            &p.req.message_id,
            p.req.expect,
            p.req.aggregate.as_deref(),
        );
        headers.insert(NATS_BATCH_ID, id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, (i + 1).to_string().as_str());
        log.context()
            .client()
            .publish_with_headers(p.req.subject.clone(), headers, p.req.payload.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut headers = log.append_headers(
        last.req.headers.clone(),
        &last.req.message_id,
        last.req.expect,
        last.req.aggregate.as_deref(),
    );
    headers.insert(NATS_BATCH_ID, id.as_str());
    headers.insert(NATS_BATCH_SEQUENCE, n.to_string().as_str());
    headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
    let commit = PublishMessage::build()
        .payload(last.req.payload.clone())
        .headers(headers);
    let ack = log
        .context()
        .send_publish(last.req.subject.clone(), commit)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    match ack.batch_size {
        Some(stored) if stored == n as u64 => Ok(ack.sequence),
        other => Err(format!("the server stored {other:?} of a batch of {n}")),
    }
}
