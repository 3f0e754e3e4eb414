//! Durable timers, kept by NATS itself: a timer is a scheduled message
//! (`Nats-Schedule: @at …`) on `<prefix>.timer.sched.<key>` that the server
//! publishes, when due, to `<prefix>.timer.fire.<key>`, where a durable
//! consumer shared by every replica reads it. So a timer outlives every
//! process (the server fires what fell due while it was down as soon as it
//! is back), and each firing is delivered to one replica at a time.
//!
//! Arming a key again replaces its timer (the server keeps one schedule per
//! subject). A timer is never cancelled: its handler checks, when it fires,
//! whether it still matters. Fired messages expire after `fired_kept`.
//!
//! The timers live in a stream of their own, `<STREAM>_TIMERS`: schedules
//! need roll-ups and purges, which the log itself forbids.
//!
//! Arms made at the same time (the clocks of complaints routed together) go
//! as one atomic batch, whether or not the log batches its appends: with an
//! fsync per write each schedule alone would cost a flush, and arms carry no
//! condition that a batch could mix up (see [`crate::group_commit`]).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType, Stream};
use bytes::Bytes;
use plaint_domain::Timestamp;

use crate::consumer::{ConsumerSettings, Deliveries};
use crate::error::{AppendError, BusError, while_doing};
use crate::group_commit::{GroupCommit, Request};
use crate::log::{EventLog, Expect, allows_batches, ensure_stream};

/// How long a fired timer waits to be handled by default: far longer than
/// any outage the routers should have, short enough not to pile up.
pub const DEFAULT_FIRED_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The stream of timers; cheap to clone.
#[derive(Debug, Clone)]
pub struct Timers {
    log: EventLog,
    stream: Stream,
    fired_kept: Duration,
    /// Batches concurrent arms; `None` when they go one by one.
    group: Option<GroupCommit>,
}

impl Timers {
    /// Opens the timers' stream, creating it when needed, next to `log`.
    pub async fn open(log: EventLog, fired_kept: Duration) -> Result<Self, BusError> {
        let names = log.names();
        let replicas = log.stream_handle().cached_info().config.num_replicas;
        let config = Config {
            name: names.timer_stream(),
            subjects: vec![names.timer_subjects()],
            storage: StorageType::File,
            num_replicas: replicas,
            discard: DiscardPolicy::Old,
            allow_direct: true,
            allow_message_schedules: true,
            allow_message_ttl: true,
            // Schedules are replaced by roll-ups and purged once fired.
            allow_rollup: true,
            deny_purge: false,
            // Arms made at the same time go as one batch.
            allow_atomic_publish: true,
            ..Default::default()
        };
        let mut stream = ensure_stream(log.context(), config).await?;
        let group = allows_batches(log.context(), &mut stream)
            .await
            .then(|| GroupCommit::start(log.clone()));
        Ok(Self {
            log,
            stream,
            fired_kept,
            group,
        })
    }

    /// Arms (or re-arms) the timer `key` to fire at `due_at` with `body`.
    /// `key` is one or more subject tokens, unique per timer.
    pub async fn arm(&self, key: &str, due_at: Timestamp, body: Bytes) -> Result<(), BusError> {
        let names = self.log.names();
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Schedule",
            format!("@at {}", rfc3339(due_at)?).as_str(),
        );
        headers.insert("Nats-Schedule-Target", names.timer_fire(key).as_str());
        headers.insert(
            "Nats-Schedule-TTL",
            self.fired_kept.as_secs().max(1).to_string().as_str(),
        );
        let subject = names.timer_schedule(key);
        // An id of its own per arm, kept across retries: re-arming the same
        // key must replace the schedule, not be taken for a duplicate of it.
        // (The server strips the id from the message it fires.)
        let message_id = uuid::Uuid::new_v4().simple().to_string();
        let armed = match &self.group {
            Some(group) => {
                group
                    .append(Request {
                        subject,
                        aggregate: None,
                        headers,
                        payload: body,
                        message_id,
                        expect: Expect::Any,
                    })
                    .await
            }
            None => {
                self.log
                    .publish_one(&subject, headers, body, &message_id, Expect::Any)
                    .await
            }
        };
        match armed {
            Ok(_) => Ok(()),
            Err(AppendError::Bus(e)) => Err(e),
            Err(AppendError::WrongLastSequence) => Err(BusError::JetStream(
                "cannot arm a timer: the server applied a condition the timer did not set".into(),
            )),
        }
    }

    /// The durable consumer `durable` of every fired timer.
    pub fn fired_consumer(&self, durable: String) -> ConsumerSettings {
        ConsumerSettings::new(durable, self.log.names().timer_fired())
    }

    /// Opens (creating when needed) a durable consumer of fired timers.
    pub async fn consume(&self, settings: &ConsumerSettings) -> Result<Deliveries, BusError> {
        crate::consumer::open(self.log.context().client(), &self.stream, settings).await
    }

    /// Timers armed and not yet fired: what a consumer of the schedules
    /// that never reads counts as pending (made when first asked).
    pub async fn pending(&self) -> Result<u64, BusError> {
        let names = self.log.names();
        let durable = names.consumer("timers_pending");
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            description: Some("counts the timers not fired yet; never reads".to_owned()),
            filter_subject: names.timer_schedules(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        };
        let mut counter: async_nats::jetstream::consumer::Consumer<pull::Config> = self
            .stream
            .get_or_create_consumer(&durable, config)
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot count the timers", e)))?;
        let info = counter
            .info()
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot count the timers", e)))?;
        Ok(info.num_pending)
    }
}

/// `t` as the server's `@at` pattern reads it: RFC 3339 in UTC.
fn rfc3339(t: Timestamp) -> Result<String, BusError> {
    let nanos = i128::from(t.as_millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| BusError::Corrupt {
            sequence: 0,
            reason: format!(
                "a timer due at {} ms cannot be written as a date",
                t.as_millis()
            ),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_written_in_utc_to_the_millisecond() {
        assert_eq!(
            rfc3339(Timestamp::from_millis(0)).unwrap(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_millis(1_717_243_200_123)).unwrap(),
            "2024-06-01T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_millis(951_782_400_000)).unwrap(),
            "2000-02-29T00:00:00Z"
        );
    }
}
