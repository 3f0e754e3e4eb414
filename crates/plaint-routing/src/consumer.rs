//! The routing consumer: complaint events in, decisions out, every delivery
//! ending routed, skipped, dead-lettered with its reason, or redelivered.

use std::time::Duration;

use plaint_bus::{
    BusError, Consume, ConsumerSettings, DeadLetters, Deliveries, Delivery, EventLog, GaveUp,
    Names, RetryPolicy, consume_until_stopped,
};
use plaint_domain::event::subject_kind_of;
use tokio_util::sync::CancellationToken;

use crate::decide::{Outcome, Router};

/// Pause before the redelivery of an event whose routing failed, times the
/// deliveries so far...
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// ...up to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Complaints routed at once by one routing consumer. Deliveries of one
/// complaint go to the same worker, in order; others proceed side by side,
/// so many reads and appends are in flight while each complaint's events
/// are still handled one after the other.
pub const ROUTING_WORKERS: usize = 32;
/// Deliveries queued per worker before the consumer waits.
const WORKER_QUEUE: usize = 16;

/// Consumes the complaint subjects until `stop` is cancelled; finishes the
/// deliveries in hand first. Reopens the consumer by itself when it breaks;
/// `Err` when NATS stays unreachable past the retry budget.
///
/// A poison event never stalls the consumer: one that cannot be decoded, or
/// whose decision the lifecycle refuses, is dead-lettered and terminated at
/// once; one whose handling keeps failing is retried, and dead-lettered and
/// terminated at its `max_deliver`-th delivery.
pub async fn run(
    log: EventLog,
    dead_letters: DeadLetters,
    settings: ConsumerSettings,
    retry: RetryPolicy,
    stop: CancellationToken,
) -> Result<(), GaveUp> {
    let router = Router::new(log.clone());
    let mut queues = Vec::with_capacity(ROUTING_WORKERS);
    let mut workers = Vec::with_capacity(ROUTING_WORKERS);
    for _ in 0..ROUTING_WORKERS {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Delivery>(WORKER_QUEUE);
        let mut router = router.sibling();
        let dead_letters = dead_letters.clone();
        let settings = settings.clone();
        queues.push(tx);
        workers.push(tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                process(&mut router, &dead_letters, &settings, &d).await;
            }
        }));
    }
    let mut door = Door {
        log,
        dead_letters,
        settings,
        router,
        queues,
    };
    let consumed = consume_until_stopped("routing consumer", &mut door, retry, &stop).await;
    // The deliveries in hand are finished; the rest will be redelivered.
    drop(door);
    for w in workers {
        let _ = w.await;
    }
    consumed
}

/// The routing consumer's side of the consumer loop: deliveries go to the
/// worker of their complaint.
struct Door {
    log: EventLog,
    dead_letters: DeadLetters,
    settings: ConsumerSettings,
    router: Router,
    queues: Vec<tokio::sync::mpsc::Sender<Delivery>>,
}

impl Consume for Door {
    async fn open(&mut self) -> Result<Deliveries, BusError> {
        self.log.consume(&self.settings).await
    }

    async fn handle(&mut self, d: Delivery) {
        let queue = &self.queues[worker_of(self.log.names(), d.subject())];
        if let Err(tokio::sync::mpsc::error::SendError(d)) = queue.send(d).await {
            tracing::error!("a routing worker is gone; routing in the consumer");
            process(
                &mut self.router.sibling(),
                &self.dead_letters,
                &self.settings,
                &d,
            )
            .await;
        }
    }
}

/// How often a consumer's backlog is measured.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(2);

/// Publishes as `gauge` the events the log's consumer `durable` has still
/// to handle (undelivered or unacknowledged), until `stop` is cancelled
/// (`plaint_routing_pending` for the routing consumer). Read from the
/// consumer itself, so it returns to 0 when the work is done whichever
/// replica did it.
pub async fn measure_backlog(
    log: EventLog,
    durable: String,
    gauge: &'static str,
    stop: CancellationToken,
) {
    loop {
        if let Ok(backlog) = log.consumer_backlog(&durable).await {
            metrics::gauge!(gauge).set(backlog as f64);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(BACKLOG_INTERVAL) => {}
        }
    }
}

/// The event types that can lead to a decision (see [`Router::handle`]).
const TRIGGERS: [&str; 2] = ["complaint_received", "visibility_changed"];

/// The routing consumer named `durable`: it is delivered the kinds of
/// complaint events that lead to a decision, and nothing else, so no router
/// is handed its own decisions back.
pub fn consumer_settings(names: &Names, durable: String) -> ConsumerSettings {
    let filters = TRIGGERS
        .iter()
        .map(|t| names.complaints_of_kind(subject_kind_of(t)))
        .collect();
    ConsumerSettings::filtered(durable, filters)
}

/// The worker of a complaint: always the same one, whichever of its
/// subjects the event came on.
fn worker_of(names: &Names, subject: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    names.aggregate_of(subject).hash(&mut h);
    usize::try_from(h.finish() % ROUTING_WORKERS as u64).unwrap_or(0)
}

async fn process(
    router: &mut Router,
    dead_letters: &DeadLetters,
    settings: &ConsumerSettings,
    d: &Delivery,
) {
    let started = std::time::Instant::now();
    if d.event_type().is_some_and(|t| !TRIGGERS.contains(&t)) {
        // The consumer's filters let only triggers through; a consumer made
        // with wider filters by hand is served all the same.
        if let Err(e) = d.ack().await {
            tracing::debug!(error = %e, "ack of a skipped event failed; it comes again");
        }
        return;
    }
    let envelope = match router.log().decode_masked(d.payload()) {
        Ok(e) => e,
        Err(e) => {
            // It can never be decoded; delivering it again cannot help.
            let reason = format!("undecodable event: {e}");
            return give_up(dead_letters, d, &reason).await;
        }
    };
    match router
        .handle(&envelope, d.stream_sequence, d.traceparent().as_deref())
        .await
    {
        Ok(outcome) => {
            if let Outcome::Routed(route) = outcome {
                metrics::counter!("plaint_decisions_total", "route" => route.name()).increment(1);
                metrics::histogram!("plaint_routing_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            if let Err(e) = d.ack().await {
                tracing::warn!(error = %e, "ack failed; the redelivery will find the decision made");
            }
        }
        Err(e) if !e.is_retryable() => {
            give_up(dead_letters, d, &format!("routing failed for good: {e}")).await;
        }
        Err(e) if d.delivered >= settings.max_deliver => {
            let reason = format!("routing gave up after {} deliveries: {e}", d.delivered);
            give_up(dead_letters, d, &reason).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, sequence = d.stream_sequence, "routing failed; will retry");
            // Growing pauses, so that the deliveries before giving up span a
            // failover of the log (~20 s with the default max_deliver of 10).
            let attempt = u32::try_from(d.delivered.max(1)).unwrap_or(u32::MAX);
            let delay = RETRY_PAUSE.saturating_mul(attempt).min(MAX_RETRY_PAUSE);
            let _ = d.nak(delay).await;
        }
    }
}

/// Dead-letters a delivery that can never be handled, then terminates it; if
/// the dead letter cannot be stored, it is left to be redelivered.
async fn give_up(dead_letters: &DeadLetters, d: &Delivery, reason: &str) {
    tracing::error!(
        sequence = d.stream_sequence,
        subject = d.subject(),
        reason,
        "event dead-lettered"
    );
    metrics::counter!("plaint_routing_dead_letters_total").increment(1);
    match dead_letters.store(d, reason).await {
        Ok(_) => {
            if let Err(e) = d.term().await {
                tracing::warn!(error = %e, "term of a dead-lettered event failed");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store dead letter; will retry");
            let _ = d.nak(Duration::from_secs(1)).await;
        }
    }
}
