//! A checker in the style of Jepsen's queue checker.
//!
//! A [`History`] records what clients *attempted* (every submit and command,
//! by the ids it will have in the log) and what was *acknowledged* (a gRPC OK,
//! a helpdesk PubAck). After the run, [`observe`] reads what is *observed*:
//! the whole event log from sequence 1, the PostgreSQL projections, and the
//! durable consumers' delivery counters. [`Report`] then computes:
//!
//! - **lost** = acknowledged − observed in the log (must be empty), and
//!   acknowledged − observed in the projections (must be empty);
//! - **unexpected** = observed − attempted (must be empty);
//! - **duplicates**: complaints received twice, event ids stored twice in the
//!   log, timeline rows applied twice (all must be 0);
//! - **decisions per complaint**, in the log and in the projections (exactly 1);
//! - **projection = log**: the timeline holds exactly the log's complaint
//!   events (same sequences, same event ids), each complaint row is at its
//!   subject's last sequence, the checkpoint is the log's last sequence;
//! - **redeliveries** of the router's and the helpdesk's durable consumers
//!   (deliveries − distinct messages), reported, asserted where a test says.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use plaint_bus::EventLog;
use plaint_domain::{ComplaintEvent, ComplaintId, EventId, EventPayload};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::harness::System;

/// The door a complaint came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// `SubmitComplaint` over gRPC.
    Grpc,
    /// A message on the helpdesk door (acknowledged by the inbound stream's PubAck).
    Helpdesk,
}

#[derive(Debug, Clone)]
struct Submitted {
    door: Door,
    acked: bool,
}

#[derive(Debug, Clone)]
struct Commanded {
    complaint: ComplaintId,
    acked: bool,
}

/// A command published on the helpdesk door without a `request_id`: only
/// the inbound message identifies it, so the checker knows it by its text.
#[derive(Debug, Clone)]
struct Published {
    complaint: ComplaintId,
    /// It carried a `Nats-Msg-Id`, so republishing it stores no second message.
    named: bool,
    /// Times it was published (each unnamed one may be a message of its own).
    publishes: u32,
    acked: bool,
}

#[derive(Debug, Default)]
struct Inner {
    submits: HashMap<ComplaintId, Submitted>,
    commands: HashMap<EventId, Commanded>,
    helpdesk_commands: HashMap<String, Published>,
    errors: BTreeMap<String, u64>,
    retries: u64,
    refused: Vec<String>,
}

/// What clients attempted and what was acknowledged. Shared by the load's
/// workers; every method is cheap.
#[derive(Debug, Default)]
pub(crate) struct History {
    inner: Mutex<Inner>,
}

impl History {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("history lock"))
    }

    /// A complaint is about to be sent (first attempt).
    pub(crate) fn attempt_submit(&self, id: ComplaintId, door: Door) {
        self.with(|h| {
            h.submits
                .entry(id)
                .or_insert(Submitted { door, acked: false });
        });
    }

    /// A complaint was acknowledged (gRPC OK, or the inbound stream's PubAck).
    pub(crate) fn ack_submit(&self, id: ComplaintId, _sequence: u64) {
        self.with(|h| {
            if let Some(s) = h.submits.get_mut(&id) {
                s.acked = true;
            }
        });
    }

    /// Whether a complaint was acknowledged.
    pub(crate) fn is_acked(&self, id: &ComplaintId) -> bool {
        self.with(|h| h.submits.get(id).is_some_and(|s| s.acked))
    }

    /// A command whose first event will have `event_id` is about to be sent.
    pub(crate) fn attempt_command(&self, event_id: EventId, complaint: ComplaintId) {
        self.with(|h| {
            h.commands.entry(event_id).or_insert(Commanded {
                complaint,
                acked: false,
            });
        });
    }

    /// A command was acknowledged.
    pub(crate) fn ack_command(&self, event_id: EventId) {
        self.with(|h| {
            if let Some(c) = h.commands.get_mut(&event_id) {
                c.acked = true;
            }
        });
    }

    /// A follow-up without `request_id`, known by its `text`, is about to be
    /// published on the helpdesk door (every attempt).
    pub(crate) fn publish_helpdesk_command(&self, text: &str, complaint: ComplaintId, named: bool) {
        self.with(|h| {
            h.helpdesk_commands
                .entry(text.to_owned())
                .or_insert(Published {
                    complaint,
                    named,
                    publishes: 0,
                    acked: false,
                })
                .publishes += 1;
        });
    }

    /// The inbound stream acknowledged that follow-up.
    pub(crate) fn ack_helpdesk_command(&self, text: &str) {
        self.with(|h| {
            if let Some(c) = h.helpdesk_commands.get_mut(text) {
                c.acked = true;
            }
        });
    }

    /// A call ended with an error (a status code name).
    pub(crate) fn error(&self, code: &str) {
        self.with(|h| *h.errors.entry(code.to_owned()).or_insert(0) += 1);
    }

    /// A call was retried with the same ids.
    pub(crate) fn retry(&self) {
        self.with(|h| h.retries += 1);
    }

    /// A call was refused for good (not retryable).
    pub(crate) fn refused(&self, what: &str) {
        self.with(|h| h.refused.push(what.to_owned()));
    }

    /// Errors seen so far, by code.
    pub(crate) fn errors(&self) -> BTreeMap<String, u64> {
        self.with(|h| h.errors.clone())
    }

    /// Complaints acknowledged so far.
    pub(crate) fn acked_count(&self) -> usize {
        self.with(|h| h.submits.values().filter(|s| s.acked).count())
    }
}

// ---------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------

/// One complaint event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEvent {
    pub(crate) complaint: Uuid,
    pub(crate) event_id: Uuid,
    pub(crate) kind: &'static str,
}

/// The event log as read from sequence 1.
#[derive(Debug, Default)]
pub(crate) struct LogView {
    /// The stream's last sequence.
    pub(crate) last_sequence: u64,
    /// Complaint events by sequence.
    pub(crate) events: BTreeMap<u64, LogEvent>,
    /// Sequences of `complaint_received` per complaint.
    pub(crate) received: HashMap<Uuid, Vec<u64>>,
    /// Sequences of decisions (routed, rerouted) per complaint.
    pub(crate) decisions: HashMap<Uuid, Vec<u64>>,
    /// Sequences per event id.
    pub(crate) event_ids: HashMap<Uuid, Vec<u64>>,
    /// Sequences of follow-ups per text.
    pub(crate) follow_ups: HashMap<String, Vec<u64>>,
    /// Messages on complaint subjects that do not decode.
    pub(crate) undecodable: Vec<u64>,
    /// Messages on the other subjects (company, budget, CEO engagements).
    pub(crate) other: u64,
    /// Messages on the subjects the routing consumer filters (the kinds
    /// that lead to a decision), decodable or not.
    pub(crate) decision_triggers: u64,
    /// When each complaint was received and first decided (ms, as the
    /// events say).
    pub(crate) received_at: HashMap<Uuid, i64>,
    pub(crate) decided_at: HashMap<Uuid, i64>,
}

impl LogView {
    /// The longest wait from a complaint's receipt to its first decision,
    /// over the complaints decided; what a crashed router's work waits for
    /// another to take it over.
    pub(crate) fn longest_wait_for_a_decision(&self) -> Duration {
        let longest = self
            .decided_at
            .iter()
            .filter_map(|(id, decided)| Some(decided - self.received_at.get(id)?))
            .max()
            .unwrap_or(0);
        Duration::from_millis(u64::try_from(longest).unwrap_or(0))
    }

    /// The last sequence of each complaint's subject.
    fn last_per_complaint(&self) -> HashMap<Uuid, u64> {
        let mut out = HashMap::new();
        for (seq, e) in &self.events {
            out.insert(e.complaint, *seq);
        }
        out
    }
}

/// Reads the whole log in order (an ordered consumer from sequence 1).
pub(crate) async fn read_log(log: &EventLog) -> LogView {
    let last_sequence = log.last_sequence().await.expect("the log's last sequence");
    let mut view = LogView {
        last_sequence,
        ..LogView::default()
    };
    if last_sequence == 0 {
        return view;
    }
    let complaint_prefix = format!("{}.complaint.", log.names().prefix());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tail = log.tail(1).await.expect("open a tail");
    let mut seen = 0;
    while seen < last_sequence {
        assert!(Instant::now() < deadline, "reading the log took over 120 s");
        let batch = match tokio::time::timeout(
            Duration::from_secs(10),
            tail.next_batch(2000, Duration::from_millis(20)),
        )
        .await
        {
            Ok(Some(Ok(b))) => b,
            Ok(Some(Err(e))) => {
                // A broken tail: reopen where it stopped.
                eprintln!("log tail broke at {seen}: {e}; reopening");
                tail = log.tail(seen + 1).await.expect("reopen the tail");
                continue;
            }
            Ok(None) => panic!("the log tail ended at {seen} of {last_sequence}"),
            Err(_) => panic!("the log tail stalled at {seen} of {last_sequence}"),
        };
        for item in batch {
            if item.sequence <= seen {
                continue;
            }
            seen = item.sequence;
            if item.sequence > last_sequence {
                break;
            }
            if !item.subject.starts_with(&complaint_prefix) {
                view.other += 1;
                continue;
            }
            if item.subject.ends_with(".received") || item.subject.ends_with(".visibility_changed")
            {
                view.decision_triggers += 1;
            }
            let stored = match item.event {
                Ok(s) => s,
                Err(_) => {
                    view.undecodable.push(item.sequence);
                    continue;
                }
            };
            let env = stored.envelope;
            let (Some(id), EventPayload::Complaint(event)) = (env.complaint_id, &env.payload)
            else {
                view.undecodable.push(item.sequence);
                continue;
            };
            let complaint = id.as_uuid();
            let at = env.occurred_at.as_millis();
            match event {
                ComplaintEvent::Received(_) => {
                    view.received_at.entry(complaint).or_insert(at);
                    view.received
                        .entry(complaint)
                        .or_default()
                        .push(item.sequence)
                }
                ComplaintEvent::Routed(_) | ComplaintEvent::Rerouted { .. } => {
                    view.decided_at.entry(complaint).or_insert(at);
                    view.decisions
                        .entry(complaint)
                        .or_default()
                        .push(item.sequence)
                }
                ComplaintEvent::CustomerFollowedUp { text } => view
                    .follow_ups
                    .entry(text.as_str().to_owned())
                    .or_default()
                    .push(item.sequence),
                _ => {}
            }
            view.event_ids
                .entry(env.event_id.as_uuid())
                .or_default()
                .push(item.sequence);
            view.events.insert(
                item.sequence,
                LogEvent {
                    complaint,
                    event_id: env.event_id.as_uuid(),
                    kind: event.type_name(),
                },
            );
        }
    }
    view
}

/// The projections as PostgreSQL holds them.
#[derive(Debug, Default)]
pub(crate) struct ProjectionView {
    /// The checkpoint row.
    pub(crate) checkpoint: u64,
    /// Complaint rows: last sequence applied, route.
    pub(crate) complaints: HashMap<Uuid, (u64, Option<String>)>,
    /// Timeline rows by sequence: complaint, event id.
    pub(crate) timeline: BTreeMap<u64, (Uuid, Uuid)>,
    /// Decision rows per complaint (sequences).
    pub(crate) decisions: HashMap<Uuid, Vec<u64>>,
}

/// Connects to the projections database.
pub(crate) async fn connect_db(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// Reads the projections.
pub(crate) async fn read_projection(url: &str) -> ProjectionView {
    let mut db = connect_db(url).await;
    let checkpoint: Option<i64> =
        sqlx::query_scalar("SELECT last_sequence FROM checkpoint WHERE name = 'projections'")
            .fetch_optional(&mut db)
            .await
            .expect("checkpoint");
    let rows: Vec<(Uuid, i64, Option<String>)> =
        sqlx::query_as("SELECT complaint_id, last_sequence, route FROM complaints")
            .fetch_all(&mut db)
            .await
            .expect("complaints");
    let timeline: Vec<(i64, Uuid, Uuid)> =
        sqlx::query_as("SELECT sequence, complaint_id, event_id FROM timeline")
            .fetch_all(&mut db)
            .await
            .expect("timeline");
    let decisions: Vec<(i64, Uuid)> = sqlx::query_as(
        "SELECT sequence, complaint_id FROM timeline \
             WHERE event_type IN ('complaint_routed', 'complaint_rerouted')",
    )
    .fetch_all(&mut db)
    .await
    .expect("decisions");
    let _ = db.close().await;
    let seq = |s: i64| u64::try_from(s).unwrap_or(0);
    let mut view = ProjectionView {
        checkpoint: checkpoint.map_or(0, seq),
        ..ProjectionView::default()
    };
    for (id, last, route) in rows {
        view.complaints.insert(id, (seq(last), route));
    }
    for (s, c, e) in timeline {
        view.timeline.insert(seq(s), (c, e));
    }
    for (s, c) in decisions {
        view.decisions.entry(c).or_default().push(seq(s));
    }
    view
}

/// Every projection table as text, ordered, for before/after comparisons
/// (the checkpoint row apart).
pub(crate) async fn projection_dump(url: &str) -> Vec<String> {
    let mut db = connect_db(url).await;
    let mut out = Vec::new();
    for (table, order) in [
        ("complaints", "complaint_id"),
        ("timeline", "sequence"),
        ("ceo_slots", "window_start, complaint_id"),
        ("policies", "version"),
        ("company", "key"),
        ("queue_counts", "route, status, priority"),
        ("complaint_durations", "kind"),
        ("goodwill_days", "day, route, channel"),
    ] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut db)
            .await
            .unwrap_or_else(|e| panic!("dump {table}: {e}"));
        out.extend(rows.into_iter().map(|r| format!("{table} {r}")));
    }
    let _ = db.close().await;
    out
}

/// A durable consumer's delivery counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConsumerStats {
    /// Deliveries made (the consumer sequence), redeliveries included.
    pub(crate) deliveries: u64,
    /// Distinct messages it had to deliver.
    pub(crate) messages: u64,
    /// Delivered and not acknowledged.
    pub(crate) ack_pending: u64,
    /// Not delivered yet.
    pub(crate) pending: u64,
}

impl ConsumerStats {
    /// Deliveries beyond the first of each message.
    pub(crate) fn redeliveries(&self) -> u64 {
        self.deliveries.saturating_sub(self.messages)
    }
}

/// The counters of `durable` on `stream`; `messages` is how many distinct
/// messages its filter matches.
pub(crate) async fn consumer_stats(
    js: &async_nats::jetstream::Context,
    stream: &str,
    durable: &str,
    messages: u64,
) -> Option<ConsumerStats> {
    let s = js.get_stream(stream).await.ok()?;
    let info = s.consumer_info(durable).await.ok()?;
    Some(ConsumerStats {
        deliveries: info.delivered.consumer_sequence,
        messages,
        ack_pending: info.num_ack_pending as u64,
        pending: info.num_pending,
    })
}

/// Messages ever stored in `stream` (its last sequence).
pub(crate) async fn stream_last_sequence(js: &async_nats::jetstream::Context, stream: &str) -> u64 {
    let mut s = js.get_stream(stream).await.expect("stream");
    s.info().await.expect("stream info").state.last_sequence
}

/// Messages currently in `stream`.
pub(crate) async fn stream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Option<u64> {
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.messages)
}

/// Waits (at most `limit`) until the system is quiet: the helpdesk inbound
/// stream drained, the router's consumer with nothing pending or unacked,
/// every acknowledged complaint routed in the projections, and the
/// projections' checkpoint at the log's last sequence. Returns how long
/// that took.
pub(crate) async fn wait_converged(sys: &System, history: &History, limit: Duration) -> Duration {
    let started = Instant::now();
    let js = sys.js();
    let inbound = sys.names.inbound_stream();
    let stream = sys.names.stream().to_owned();
    let durable = sys.router_consumer();
    let acked = history.acked_count() as i64;
    let url = sys.pg.url();
    let mut last_state = String::new();
    let mut quiet_orphans: Option<Instant> = None;
    let outcome = tokio::time::timeout(limit, async {
        loop {
            let state = async {
                let inbound_left = stream_messages(&js, &inbound).await?;
                let helpdesk = consumer_stats(&js, &inbound, &sys.helpdesk_consumer(), 0).await;
                // Messages left in the inbound work queue that its consumer
                // will never deliver (nothing pending, nothing unacked): seen
                // once after a nats-server SIGKILL. `observe` checks that
                // each was stored already.
                let orphans_only = helpdesk.is_some_and(|h| h.pending == 0 && h.ack_pending == 0);
                if inbound_left == 0 || !orphans_only {
                    quiet_orphans = None;
                } else if quiet_orphans.is_none() {
                    quiet_orphans = Some(Instant::now());
                }
                let inbound_done = inbound_left == 0
                    || quiet_orphans.is_some_and(|t| t.elapsed() > Duration::from_secs(5));
                let router = consumer_stats(&js, &stream, &durable, 0).await?;
                let last = sys.log.last_sequence().await.ok()?;
                let mut db = PgConnection::connect(&url).await.ok()?;
                let row: (Option<i64>, i64, i64) = sqlx::query_as(
                    "SELECT (SELECT last_sequence FROM checkpoint WHERE name = 'projections'), \
                     (SELECT count(*) FROM complaints), \
                     (SELECT count(*) FROM complaints WHERE route IS NULL)",
                )
                .fetch_one(&mut db)
                .await
                .ok()?;
                let _ = db.close().await;
                let checkpoint = row.0.unwrap_or(0);
                let done = inbound_done
                    && router.pending == 0
                    && router.ack_pending == 0
                    && u64::try_from(checkpoint).ok() == Some(last)
                    && row.1 >= acked
                    && row.2 == 0;
                Some((
                    done,
                    format!(
                        "inbound left {inbound_left}, router pending {} unacked {}, \
                         checkpoint {checkpoint} of {last}, {} complaints projected \
                         ({acked} acknowledged), {} unrouted",
                        router.pending, router.ack_pending, row.1, row.2
                    ),
                ))
            }
            .await;
            if let Some((done, text)) = state {
                last_state = text;
                if done {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    if outcome.is_err() {
        let diagnosis = diagnose(&js, sys).await;
        panic!("the system did not converge within {limit:?}: {last_state}\n{diagnosis}");
    }
    started.elapsed()
}

/// The streams' and consumers' state, for a failure message.
async fn diagnose(js: &async_nats::jetstream::Context, sys: &System) -> String {
    let mut out = String::new();
    for (stream, durable) in [
        (sys.names.inbound_stream(), sys.helpdesk_consumer()),
        (sys.names.stream().to_owned(), sys.router_consumer()),
    ] {
        if let Ok(mut s) = js.get_stream(&stream).await {
            if let Ok(info) = s.info().await {
                out.push_str(&format!("stream {stream}: {:?}\n", info.state));
            }
            if let Ok(c) = s.consumer_info(&durable).await {
                out.push_str(&format!(
                    "consumer {durable}: delivered {:?}, ack floor {:?}, pending {}, ack pending \
                     {}, redelivered {}, waiting {}\n",
                    c.delivered,
                    c.ack_floor,
                    c.num_pending,
                    c.num_ack_pending,
                    c.num_redelivered,
                    c.num_waiting
                ));
            }
            let first = s
                .info()
                .await
                .map(|i| (i.state.messages, i.state.first_sequence));
            if stream == sys.names.inbound_stream()
                && let Ok((messages, first)) = first
                && messages > 0
                && let Ok(m) = s.get_raw_message(first).await
            {
                out.push_str(&format!(
                    "first inbound message {}: {:?} {}\n",
                    m.sequence,
                    m.headers,
                    String::from_utf8_lossy(&m.payload)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// What the checker found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) attempted: usize,
    pub(crate) acknowledged: usize,
    pub(crate) acknowledged_grpc: usize,
    pub(crate) acknowledged_helpdesk: usize,
    pub(crate) observed_log: usize,
    pub(crate) observed_projection: usize,
    pub(crate) log_last_sequence: u64,
    /// The longest a complaint waited from its receipt to its decision.
    pub(crate) longest_wait_for_a_decision: Duration,
    /// Acknowledged, not in the log.
    pub(crate) lost: Vec<Uuid>,
    /// Acknowledged, not in the projections.
    pub(crate) lost_in_projection: Vec<Uuid>,
    /// In the log, never attempted.
    pub(crate) unexpected: Vec<Uuid>,
    /// Complaints received more than once.
    pub(crate) duplicate_received: usize,
    /// Event ids stored at more than one sequence.
    pub(crate) duplicate_events_log: usize,
    /// Event ids in more than one timeline row.
    pub(crate) duplicate_events_projection: usize,
    /// Log complaint events missing from the timeline.
    pub(crate) projection_missing: usize,
    /// Timeline rows that are not the log's event at that sequence.
    pub(crate) projection_extra: usize,
    /// Complaint rows not at their subject's last sequence (or missing, or extra).
    pub(crate) projection_stale_rows: usize,
    /// The projections' checkpoint and the log's last sequence differ.
    pub(crate) checkpoint_behind: u64,
    /// Summary rows (queue counts, durations, goodwill days) that differ
    /// from the same figures counted over the complaints.
    pub(crate) summaries_off: i64,
    /// Complaints whose decisions in the log are not exactly one: (id, count).
    pub(crate) decisions_not_one_log: Vec<(Uuid, usize)>,
    /// Complaints whose decision rows are not exactly one.
    pub(crate) decisions_not_one_projection: Vec<(Uuid, usize)>,
    pub(crate) commands_attempted: usize,
    pub(crate) commands_acknowledged: usize,
    /// Acknowledged commands not in the log.
    pub(crate) commands_lost: usize,
    /// Commands stored more than once.
    pub(crate) commands_duplicated: usize,
    /// Helpdesk commands without `request_id` published, and acknowledged.
    pub(crate) helpdesk_commands_published: usize,
    pub(crate) helpdesk_commands_acknowledged: usize,
    /// Of those, acknowledged ones not in the log.
    pub(crate) helpdesk_commands_lost: Vec<String>,
    /// Stored more often than inbound messages were made of them (once when
    /// named, once per publish otherwise), or on another complaint.
    pub(crate) helpdesk_commands_duplicated: Vec<String>,
    pub(crate) undecodable: usize,
    /// Messages left in the inbound work queue that its consumer will not
    /// deliver again.
    pub(crate) inbound_orphans: usize,
    /// Of those, the ones whose complaint is not in the log (lost).
    pub(crate) inbound_orphans_unstored: Vec<String>,
    pub(crate) router: ConsumerStats,
    pub(crate) helpdesk: ConsumerStats,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) retries: u64,
    pub(crate) refused: Vec<String>,
}

/// Reads the log, the projections and the consumers, and checks them against `history`.
pub(crate) async fn observe(sys: &System, history: &History) -> Report {
    let log = read_log(&sys.log).await;
    let projection = read_projection(&sys.pg.url()).await;
    let js = sys.js();
    let router = consumer_stats(
        &js,
        sys.names.stream(),
        &sys.router_consumer(),
        log.decision_triggers,
    )
    .await
    .unwrap_or_default();
    let inbound_messages = stream_last_sequence(&js, &sys.names.inbound_stream()).await;
    let helpdesk = consumer_stats(
        &js,
        &sys.names.inbound_stream(),
        &sys.helpdesk_consumer(),
        inbound_messages,
    )
    .await
    .unwrap_or_default();
    let orphans = inbound_orphans(&js, sys, &log).await;
    let summaries = summaries_off(&sys.pg.url()).await;
    let h = history.inner.lock().expect("history lock");
    let mut report = check(&h, &log, &projection, router, helpdesk);
    report.inbound_orphans = orphans.0;
    report.inbound_orphans_unstored = orphans.1;
    report.summaries_off = summaries;
    report
}

/// The figures the projector keeps as it goes against the same figures
/// counted over every complaint: rows in one and not the other, both ways.
pub(crate) async fn summaries_off(url: &str) -> i64 {
    const COUNTED: [(&str, &str); 3] = [
        (
            "SELECT coalesce(route, ''), status, coalesce(priority, ''), count(*) \
             FROM complaints GROUP BY 1, 2, 3",
            "SELECT route, status, priority, complaints FROM queue_counts",
        ),
        (
            "SELECT 'route', coalesce(sum(routed_at - received_at), 0)::bigint, count(routed_at) \
             FROM complaints HAVING count(routed_at) > 0 \
             UNION ALL SELECT 'resolve', coalesce(sum(resolved_at - received_at), 0)::bigint, \
             count(resolved_at) FROM complaints HAVING count(resolved_at) > 0",
            "SELECT kind, total_ms, complaints FROM complaint_durations WHERE complaints > 0",
        ),
        (
            "SELECT floor(resolved_at / 86400000.0)::bigint, coalesce(route, 'UNROUTED'), \
             channel, count(*), sum(satisfaction)::bigint, \
             count(*) FILTER (WHERE satisfaction >= 9) \
             FROM complaints WHERE status = 'RESOLVED' AND satisfaction IS NOT NULL \
             GROUP BY 1, 2, 3",
            "SELECT day, route, channel, resolved, satisfaction_sum, recovered FROM goodwill_days",
        ),
    ];
    let mut db = connect_db(url).await;
    let mut off = 0;
    for (counted, kept) in COUNTED {
        let sql = format!(
            "SELECT (SELECT count(*) FROM (({counted}) EXCEPT ({kept})) a) \
                  + (SELECT count(*) FROM (({kept}) EXCEPT ({counted})) b)"
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut db)
            .await
            .unwrap_or_else(|e| panic!("compare the summaries: {e}"));
        off += n;
    }
    let _ = db.close().await;
    off
}

/// Messages still in the inbound work queue: how many, and the ones that are
/// not a submit whose complaint is in the log.
async fn inbound_orphans(
    js: &async_nats::jetstream::Context,
    sys: &System,
    log: &LogView,
) -> (usize, Vec<String>) {
    let Ok(mut stream) = js.get_stream(sys.names.inbound_stream()).await else {
        return (0, Vec::new());
    };
    let Ok(info) = stream.info().await else {
        return (0, Vec::new());
    };
    let (count, first, last) = (
        usize::try_from(info.state.messages).unwrap_or(0),
        info.state.first_sequence,
        info.state.last_sequence,
    );
    let mut unstored = Vec::new();
    if count == 0 {
        return (0, unstored);
    }
    for seq in first..=last.min(first + 1000) {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let content_type = m.headers.get("Content-Type").map(|v| v.as_str().to_owned());
        let parsed =
            plaint_intake::helpdesk::parse_payload(&m.payload, content_type.as_deref(), usize::MAX);
        let stored = match parsed {
            Ok(plaint_intake::Parsed::Submit { facts, .. }) => {
                let id = ComplaintId::for_ticket(&facts.source_system, &facts.external_ticket_id);
                log.received.contains_key(&id.as_uuid())
            }
            Ok(plaint_intake::Parsed::Command {
                command: plaint_domain::Command::RecordFollowUp { text },
                ..
            }) => log.follow_ups.contains_key(text.as_str()),
            _ => false,
        };
        if !stored {
            unstored.push(format!("inbound sequence {seq}"));
        }
    }
    (count, unstored)
}

fn check(
    h: &Inner,
    log: &LogView,
    projection: &ProjectionView,
    router: ConsumerStats,
    helpdesk: ConsumerStats,
) -> Report {
    let mut r = Report {
        attempted: h.submits.len(),
        acknowledged: h.submits.values().filter(|s| s.acked).count(),
        acknowledged_grpc: h
            .submits
            .values()
            .filter(|s| s.acked && s.door == Door::Grpc)
            .count(),
        acknowledged_helpdesk: h
            .submits
            .values()
            .filter(|s| s.acked && s.door == Door::Helpdesk)
            .count(),
        observed_log: log.received.len(),
        observed_projection: projection.complaints.len(),
        log_last_sequence: log.last_sequence,
        longest_wait_for_a_decision: log.longest_wait_for_a_decision(),
        undecodable: log.undecodable.len(),
        router,
        helpdesk,
        errors: h.errors.clone(),
        retries: h.retries,
        refused: h.refused.clone(),
        ..Report::default()
    };
    let attempted: HashSet<Uuid> = h.submits.keys().map(ComplaintId::as_uuid).collect();
    for (id, s) in &h.submits {
        let id = id.as_uuid();
        if s.acked && !log.received.contains_key(&id) {
            r.lost.push(id);
        }
        if s.acked && !projection.complaints.contains_key(&id) {
            r.lost_in_projection.push(id);
        }
    }
    for (id, seqs) in &log.received {
        if !attempted.contains(id) {
            r.unexpected.push(*id);
        }
        if seqs.len() > 1 {
            r.duplicate_received += 1;
        }
        let decisions = log.decisions.get(id).map_or(0, Vec::len);
        if decisions != 1 {
            r.decisions_not_one_log.push((*id, decisions));
        }
        let rows = projection.decisions.get(id).map_or(0, Vec::len);
        if rows != 1 {
            r.decisions_not_one_projection.push((*id, rows));
        }
    }
    r.duplicate_events_log = log.event_ids.values().filter(|s| s.len() > 1).count();

    // The projections against the log.
    let mut timeline_ids: HashMap<Uuid, usize> = HashMap::new();
    for (seq, (complaint, event_id)) in &projection.timeline {
        *timeline_ids.entry(*event_id).or_insert(0) += 1;
        match log.events.get(seq) {
            Some(e) if e.event_id == *event_id && e.complaint == *complaint => {}
            _ => r.projection_extra += 1,
        }
    }
    r.duplicate_events_projection = timeline_ids.values().filter(|n| **n > 1).count();
    r.projection_missing = log
        .events
        .keys()
        .filter(|s| !projection.timeline.contains_key(s))
        .count();
    let last = log.last_per_complaint();
    let ids: BTreeSet<&Uuid> = last.keys().chain(projection.complaints.keys()).collect();
    r.projection_stale_rows = ids
        .into_iter()
        .filter(|id| last.get(id) != projection.complaints.get(id).map(|(s, _)| s))
        .count();
    r.checkpoint_behind = log.last_sequence.abs_diff(projection.checkpoint);

    // Commands.
    r.commands_attempted = h.commands.len();
    for (event_id, c) in &h.commands {
        let stored = log.event_ids.get(&event_id.as_uuid()).map_or(0, Vec::len);
        if c.acked {
            r.commands_acknowledged += 1;
            if stored == 0 {
                r.commands_lost += 1;
            }
        }
        if stored > 1 {
            r.commands_duplicated += 1;
        }
        if stored > 0 {
            // Stored on the complaint it was meant for.
            let seq = log.event_ids[&event_id.as_uuid()][0];
            if log.events[&seq].complaint != c.complaint.as_uuid() {
                r.unexpected.push(c.complaint.as_uuid());
            }
        }
    }

    // Helpdesk commands without request_id: one event per inbound message.
    r.helpdesk_commands_published = h.helpdesk_commands.len();
    for (text, c) in &h.helpdesk_commands {
        let seqs = log.follow_ups.get(text).map_or(&[][..], Vec::as_slice);
        if c.acked {
            r.helpdesk_commands_acknowledged += 1;
            if seqs.is_empty() {
                r.helpdesk_commands_lost.push(text.clone());
            }
        }
        let messages = if c.named { 1 } else { c.publishes as usize };
        let elsewhere = seqs
            .iter()
            .any(|s| log.events[s].complaint != c.complaint.as_uuid());
        if seqs.len() > messages || elsewhere {
            r.helpdesk_commands_duplicated
                .push(format!("{text:?} stored {} times", seqs.len()));
        }
    }
    r
}

impl Report {
    /// Asserts every safety invariant: nothing lost, nothing unexpected, no
    /// duplicates, one decision per complaint, the projections equal the log.
    pub(crate) fn assert_safe(&self) {
        let mut broken = Vec::new();
        let mut need = |ok: bool, what: String| {
            if !ok {
                broken.push(what);
            }
        };
        need(
            self.lost.is_empty(),
            format!(
                "lost (acknowledged, not in the log): {:?}",
                first(&self.lost)
            ),
        );
        need(
            self.lost_in_projection.is_empty(),
            format!(
                "lost in the projections: {:?}",
                first(&self.lost_in_projection)
            ),
        );
        need(
            self.unexpected.is_empty(),
            format!(
                "unexpected (never attempted): {:?}",
                first(&self.unexpected)
            ),
        );
        need(
            self.duplicate_received == 0,
            format!("{} complaints received twice", self.duplicate_received),
        );
        need(
            self.duplicate_events_log == 0,
            format!("{} event ids stored twice", self.duplicate_events_log),
        );
        need(
            self.duplicate_events_projection == 0,
            format!("{} events applied twice", self.duplicate_events_projection),
        );
        need(
            self.projection_missing == 0,
            format!(
                "{} log events missing from the timeline",
                self.projection_missing
            ),
        );
        need(
            self.projection_extra == 0,
            format!("{} timeline rows not in the log", self.projection_extra),
        );
        need(
            self.projection_stale_rows == 0,
            format!(
                "{} complaint rows not at their last sequence",
                self.projection_stale_rows
            ),
        );
        need(
            self.checkpoint_behind == 0,
            format!("checkpoint off by {}", self.checkpoint_behind),
        );
        need(
            self.summaries_off == 0,
            format!(
                "{} summary rows differ from the complaints counted",
                self.summaries_off
            ),
        );
        need(
            self.decisions_not_one_log.is_empty(),
            format!(
                "decisions != 1 in the log: {:?}",
                first(&self.decisions_not_one_log)
            ),
        );
        need(
            self.decisions_not_one_projection.is_empty(),
            format!(
                "decision rows != 1: {:?}",
                first(&self.decisions_not_one_projection)
            ),
        );
        need(
            self.commands_lost == 0,
            format!("{} acknowledged commands lost", self.commands_lost),
        );
        need(
            self.commands_duplicated == 0,
            format!("{} commands stored twice", self.commands_duplicated),
        );
        need(
            self.helpdesk_commands_lost.is_empty(),
            format!(
                "acknowledged helpdesk commands lost: {}",
                first(&self.helpdesk_commands_lost)
            ),
        );
        need(
            self.helpdesk_commands_duplicated.is_empty(),
            format!(
                "helpdesk commands stored more than once per message: {}",
                first(&self.helpdesk_commands_duplicated)
            ),
        );
        need(
            self.undecodable == 0,
            format!("{} undecodable events", self.undecodable),
        );
        need(
            self.refused.is_empty(),
            format!("refused: {:?}", first(&self.refused)),
        );
        need(
            self.inbound_orphans_unstored.is_empty(),
            format!(
                "inbound messages left that were never stored: {:?}",
                first(&self.inbound_orphans_unstored)
            ),
        );
        assert!(broken.is_empty(), "checker: {}\n{self}", broken.join("; "));
    }
}

fn first<T: fmt::Debug>(v: &[T]) -> String {
    let shown: Vec<String> = v.iter().take(5).map(|x| format!("{x:?}")).collect();
    format!("{} in all, e.g. {}", v.len(), shown.join(", "))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempted {} (acked {}: {} gRPC + {} helpdesk), in log {}, projected {}, \
             log events {}, longest wait for a decision {:.2} s; lost {} (projection {}), unexpected {}, duplicates: received {} \
             log {} projection {}; projection vs log: missing {} extra {} stale rows {} \
             checkpoint off {}; summary rows off {}; decisions != 1: log {} projection {}; commands {} (acked {}, \
             lost {}, duplicated {}); helpdesk commands without request id {} (acked {}, \
             lost {}, duplicated {}); redeliveries: router {} ({} deliveries / {} messages), \
             helpdesk {} ({} / {}); inbound orphans {}; retries {}; errors {:?}",
            self.attempted,
            self.acknowledged,
            self.acknowledged_grpc,
            self.acknowledged_helpdesk,
            self.observed_log,
            self.observed_projection,
            self.log_last_sequence,
            self.longest_wait_for_a_decision.as_secs_f64(),
            self.lost.len(),
            self.lost_in_projection.len(),
            self.unexpected.len(),
            self.duplicate_received,
            self.duplicate_events_log,
            self.duplicate_events_projection,
            self.projection_missing,
            self.projection_extra,
            self.projection_stale_rows,
            self.checkpoint_behind,
            self.summaries_off,
            self.decisions_not_one_log.len(),
            self.decisions_not_one_projection.len(),
            self.commands_attempted,
            self.commands_acknowledged,
            self.commands_lost,
            self.commands_duplicated,
            self.helpdesk_commands_published,
            self.helpdesk_commands_acknowledged,
            self.helpdesk_commands_lost.len(),
            self.helpdesk_commands_duplicated.len(),
            self.router.redeliveries(),
            self.router.deliveries,
            self.router.messages,
            self.helpdesk.redeliveries(),
            self.helpdesk.deliveries,
            self.helpdesk.messages,
            self.inbound_orphans,
            self.retries,
            self.errors,
        )
    }
}

/// Prints the figures of a run for RELIABILITY.md (visible with
/// `--no-capture`, and in the output nextest shows for a failing test).
/// The lines are also written to `<target>/tmp/faults-figures/<test>.txt`.
pub(crate) fn figures(test: &str, lines: &[String]) {
    let mut text = format!("FIGURES {test}:\n");
    for l in lines {
        text.push_str(&format!("  {l}\n"));
    }
    eprint!("{text}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-figures");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{test}.txt")), text);
}

/// Everything the query API answers about every complaint (the list, each
/// complaint's detail) plus the queue statistics, the CEO budget and the
/// goodwill figures, as text, with the fields that say how far the
/// projection has come blanked: for before/after comparisons.
pub(crate) async fn query_snapshot(sys: &System) -> Vec<String> {
    use plaint_proto::router as rpb;
    let mut query = sys.query_client();
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = query
            .list_complaints(rpb::ListComplaintsRequest {
                page_size: 500,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListComplaints")
            .into_inner();
        for c in page.complaints {
            ids.push(c.complaint_id.clone());
            out.push(format!("list {c:?}"));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    for id in ids {
        let mut r = query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: id,
                consistency: None,
                ..Default::default()
            })
            .await
            .expect("GetComplaint")
            .into_inner();
        r.projected_sequence = 0;
        out.push(format!("get {r:?}"));
    }
    let mut stats = query
        .get_queue_stats(rpb::GetQueueStatsRequest { consistency: None })
        .await
        .expect("GetQueueStats")
        .into_inner();
    stats.projected_sequence = 0;
    out.push(format!("stats {stats:?}"));
    let mut budget = query
        .get_ceo_budget(rpb::GetCeoBudgetRequest::default())
        .await
        .expect("GetCeoBudget")
        .into_inner();
    // A map: compare it in a stable order.
    let by_segment: BTreeMap<String, u32> = budget.used_by_segment.drain().collect();
    out.push(format!("budget {budget:?} {by_segment:?}"));
    for group_by in [rpb::GoodwillGrouping::Route, rpb::GoodwillGrouping::Channel] {
        let goodwill = query
            .get_goodwill(rpb::GetGoodwillRequest {
                group_by: group_by as i32,
                ..Default::default()
            })
            .await
            .expect("GetGoodwill")
            .into_inner();
        out.push(format!("goodwill {goodwill:?}"));
    }
    out
}

/// The first difference between two snapshots, for a failure message.
pub(crate) fn first_difference(before: &[String], after: &[String]) -> String {
    if before.len() != after.len() {
        let only = |a: &[String], b: &[String]| {
            let b: BTreeSet<&String> = b.iter().collect();
            a.iter()
                .filter(|l| !b.contains(l))
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
        };
        return format!(
            "{} lines before, {} after; only before: {:?}; only after: {:?}",
            before.len(),
            after.len(),
            only(before, after),
            only(after, before)
        );
    }
    before
        .iter()
        .zip(after)
        .find(|(a, b)| a != b)
        .map_or_else(String::new, |(a, b)| format!("before: {a}\nafter:  {b}"))
}
