//! Racing routers: two replicas share the routing consumer and a third runs on
//! a durable consumer of its own, so every complaint is decided by two routers
//! at once, while viral complaints from distinct customers compete for a small
//! CEO budget. Exactly one decision per complaint; the budget holds.
//!
//! The services run in-process (nothing is killed here). The helpers at the
//! top are shared with [`crate::poison`] and [`crate::cluster`].

use plaint_access::settings::KeyText;
use plaint_runtime::binary::Service as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use plaint_bus::{EventLog, Names, StreamSettings};
use plaint_client::Authed;
use plaint_domain::event::{CompanyEvent, ComplaintEvent, EventPayload};
use plaint_domain::{ComplaintId, Route, Timestamp};
use plaint_proto::events as epb;
use plaint_proto::intake::{self as ipb, intake_client::IntakeClient};
use plaint_proto::router::{self as rpb, admin_client::AdminClient, query_client::QueryClient};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::harness::{eventually, within};

// ---------------------------------------------------------------------------
// In-process services (shared by the modules of this binary that need no
// process killed); bounded waits are the harness's.
// ---------------------------------------------------------------------------

/// A service running in-process until [`stop`](Self::stop).
pub(crate) struct Running {
    pub(crate) channel: Authed,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    async fn start(
        addr: SocketAddr,
        run: impl FnOnce(oneshot::Receiver<()>) -> JoinHandle<anyhow::Result<()>>,
    ) -> Self {
        let (shutdown, stopped) = oneshot::channel();
        let task = run(stopped);
        let channel = within(
            "connecting to a service",
            Duration::from_secs(10),
            Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .connect(),
        )
        .await
        .expect("connect");
        Self {
            channel: plaint_testkit::authed(channel),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits (at most 15 s) for a clean stop.
    pub(crate) async fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            within("a service to stop", Duration::from_secs(15), t)
                .await
                .expect("join")
                .expect("the service ran and stopped cleanly");
        }
    }

    /// An intake client.
    pub(crate) fn intake(&self) -> IntakeClient<Authed> {
        IntakeClient::new(self.channel.clone())
    }

    /// A router query client.
    pub(crate) fn query(&self) -> QueryClient<Authed> {
        QueryClient::new(self.channel.clone())
    }

    /// A router admin client.
    pub(crate) fn admin(&self) -> AdminClient<Authed> {
        AdminClient::new(self.channel.clone())
    }
}

/// Starts the intake with `config` (port 0), retrying the build for up to
/// `build_limit` (a cluster may not accept streams yet).
pub(crate) async fn spawn_intake(
    mut config: plaint_intake::Config,
    build_limit: Duration,
) -> Running {
    plaint_testkit::init_test_tracing();
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    let app = eventually("the intake to build", build_limit, async || {
        match plaint_intake::Application::build(config.clone()).await {
            Ok(app) => Some(app),
            Err(e) => {
                eprintln!("intake build failed, retrying: {e:#}");
                None
            }
        }
    })
    .await;
    let addr = app.local_addr();
    Running::start(addr, |stopped| {
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }))
    })
    .await
}

/// Starts a router with `config` (port 0), retrying the build for up to `build_limit`.
pub(crate) async fn spawn_router(
    mut config: plaint_router::Config,
    build_limit: Duration,
) -> Running {
    plaint_testkit::init_test_tracing();
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    let app = eventually("the router to build", build_limit, async || {
        match plaint_router::Application::build(config.clone()).await {
            Ok(app) => Some(app),
            Err(e) => {
                eprintln!("router build failed, retrying: {e:#}");
                None
            }
        }
    })
    .await;
    let addr = app.local_addr();
    Running::start(addr, |stopped| {
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }))
    })
    .await
}

/// The event log of a deployment, opened by the test itself.
pub(crate) async fn open_log(nats_url: &str, prefix: &str, stream: &str) -> EventLog {
    let names = Names::new(prefix, stream).expect("names");
    let client = plaint_bus::connect(nats_url, "plaint-faults")
        .await
        .expect("connect to NATS");
    let personal = plaint_bus::PersonalDataSettings::for_tests(prefix).expect("test secrets");
    EventLog::open(client, names, &StreamSettings::default(), &personal)
        .await
        .expect("open the log")
        .reading(plaint_bus::Reading::Opened)
}

/// Deletes a deployment's streams from a shared server.
pub(crate) async fn delete_streams(nats_url: &str, names: &Names) {
    let js = jetstream::new(
        plaint_bus::connect(nats_url, "plaint-faults")
            .await
            .expect("connect"),
    );
    for stream in [
        names.stream().to_owned(),
        names.inbound_stream(),
        names.dead_letter_stream(),
    ] {
        let _ = js.delete_stream(&stream).await;
    }
}

/// (messages not yet delivered, deliveries not yet acked) of a durable consumer on `stream`.
pub(crate) async fn consumer_backlog(nats_url: &str, stream: &str, durable: &str) -> (u64, usize) {
    let js = jetstream::new(
        plaint_bus::connect(nats_url, "plaint-faults")
            .await
            .expect("connect"),
    );
    let s = js.get_stream(stream).await.expect("stream");
    let info = s.consumer_info(durable).await.expect("consumer info");
    (info.num_pending, info.num_ack_pending)
}

/// A viral complaint (public post, millions reached, press) from `customer`:
/// over the CEO threshold of every climate but the bad one.
pub(crate) fn viral(source: &str, ticket: &str, customer: &str) -> ipb::SubmitComplaintRequest {
    ipb::SubmitComplaintRequest {
        source_system: source.to_owned(),
        external_ticket_id: ticket.to_owned(),
        customer: Some(epb::Customer {
            customer_id: customer.to_owned(),
            segment: "consumer".to_owned(),
            tier: epb::CustomerTier::Gold as i32,
            lifetime_value_cents: 120_000,
            churn_risk_pct: 20,
            customer_ref: String::new(),
        }),
        channel: epb::Channel::PublicSocial as i32,
        category: epb::Category::Service as i32,
        visibility: Some(viral_visibility()),
        product_idea: false,
        item_sku: String::new(),
        summary: "Nobody answers and the whole internet watches.".to_owned(),
        occurred_at_ms: 0,
    }
}

/// The visibility of a complaint that went viral.
pub(crate) fn viral_visibility() -> epb::Visibility {
    epb::Visibility {
        audience_reach: 2_000_000,
        shares: 50_000,
        media_attention: true,
    }
}

/// A quiet complaint (a web form nobody sees) from `customer`: frontline.
pub(crate) fn quiet(source: &str, ticket: &str, customer: &str) -> ipb::SubmitComplaintRequest {
    let mut r = viral(source, ticket, customer);
    r.channel = epb::Channel::WebForm as i32;
    r.visibility = None;
    r.summary = "The invoice address is wrong.".to_owned();
    r
}

/// What the log says about the decisions of some complaints.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    /// Complaint events of each type, per complaint.
    pub(crate) counts: HashMap<ComplaintId, BTreeMap<&'static str, usize>>,
    /// The route in force (the last decision), per complaint.
    pub(crate) route: HashMap<ComplaintId, Route>,
    /// The budget window of each CEO decision, per complaint.
    pub(crate) ceo_window: HashMap<ComplaintId, Timestamp>,
    /// Events whose id another event of the same complaint already had.
    pub(crate) duplicate_event_ids: usize,
    /// When each decision was made (the router's clock), unordered.
    pub(crate) decided_at: Vec<Timestamp>,
}

impl Decisions {
    /// Reads every complaint's subject.
    pub(crate) async fn read(log: &EventLog, ids: &[ComplaintId]) -> Self {
        let mut out = Self::default();
        for id in ids {
            let events = log
                .read_subject(&log.names().complaint(id))
                .await
                .expect("read a complaint");
            let counts = out.counts.entry(*id).or_default();
            let mut event_ids = BTreeSet::new();
            for e in &events {
                if !event_ids.insert(e.envelope.event_id) {
                    out.duplicate_event_ids += 1;
                }
                let EventPayload::Complaint(c) = &e.envelope.payload else {
                    panic!("a company event on {id}'s subject");
                };
                *counts.entry(c.type_name()).or_default() += 1;
                let decision = match c {
                    ComplaintEvent::Routed(d) => d,
                    ComplaintEvent::Rerouted { decision, .. } => decision,
                    _ => continue,
                };
                out.route.insert(*id, decision.route);
                out.decided_at.push(decision.decided_at);
                if decision.route == Route::Ceo {
                    out.ceo_window.insert(*id, decision.budget_window_start);
                }
            }
        }
        out
    }

    /// How many events of `type_name` complaint `id` holds.
    pub(crate) fn count(&self, id: &ComplaintId, type_name: &str) -> usize {
        self.counts
            .get(id)
            .and_then(|c| c.get(type_name))
            .copied()
            .unwrap_or(0)
    }

    /// The longest time between two consecutive decisions.
    pub(crate) fn longest_pause(&self) -> Duration {
        let mut at: Vec<i64> = self.decided_at.iter().map(|t| t.as_millis()).collect();
        at.sort_unstable();
        let ms = at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// Whether every complaint has a decision.
    pub(crate) fn all_routed(&self, ids: &[ComplaintId]) -> bool {
        ids.iter().all(|id| self.count(id, "complaint_routed") > 0)
    }
}

/// The CEO slots reserved in one budget window, in order.
pub(crate) async fn budget_slots(log: &EventLog, window: Timestamp) -> Vec<ComplaintId> {
    log.read_subject(&log.names().budget(window))
        .await
        .expect("read the budget subject")
        .into_iter()
        .filter_map(|e| match e.envelope.payload {
            EventPayload::Company(CompanyEvent::CeoSlotReserved(slot)) => Some(slot.complaint_id),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The scenario.
// ---------------------------------------------------------------------------

/// CEO engagements per window in the test's policy.
const BUDGET: u32 = 5;
/// Complaints that are viral from the start.
const VIRAL: usize = 48;
/// Complaints that start quiet and go viral once routed (escalations race
/// too); one in four of the racing requests is an escalation.
const ESCALATED: usize = 16;
/// Submissions in flight at once.
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_routers_decide_each_complaint_once_and_never_exceed_the_ceo_budget() {
    let started = Instant::now();
    let nats = plaint_testkit::shared_nats_url();
    let prefix = plaint_testkit::unique_prefix();
    let db = plaint_testkit::TestDb::create().await;
    let build = Duration::from_secs(10);

    let mut intake = spawn_intake(plaint_intake::Config::for_tests(&nats, &prefix), build).await;
    let replica = plaint_router::Config::for_tests(&nats, &prefix, db.url());
    // Two replicas of one deployment, sharing the `router` consumer and the database...
    let mut first = spawn_router(replica.clone(), build).await;
    let mut second = spawn_router(replica.clone(), build).await;
    // ...and a router on a consumer of its own, which sees every event too.
    let mut solo_config = replica.clone();
    solo_config.routing_consumer = "solo".to_owned();
    solo_config.projections = false;
    let mut solo = spawn_router(solo_config, build).await;
    let log = open_log(&nats, &prefix, &replica.log.stream).await;
    let names = log.names().clone();

    crate::ceo_route::open_the_ceo_route(&mut first.admin(), BUDGET).await;

    // First the complaints that will escalate: quiet, so the frontline gets them.
    let load_started = Instant::now();
    let mut client = intake.intake();
    let mut quiet_ids = Vec::new();
    for i in 0..ESCALATED {
        let w = client
            .submit_complaint(quiet("race", &format!("Q-{i}"), &format!("quiet-{i}")))
            .await
            .expect("submitted")
            .into_inner();
        quiet_ids.push(ComplaintId::parse(&w.complaint_id).expect("an id"));
    }
    let log_ref = &log;
    let quiet_ref = &quiet_ids;
    eventually(
        "the quiet complaints decided",
        Duration::from_secs(30),
        async || {
            Decisions::read(log_ref, quiet_ref)
                .await
                .all_routed(quiet_ref)
                .then_some(())
        },
    )
    .await;

    // Then, all at once (CONCURRENCY in flight), viral complaints arrive and
    // the quiet ones go viral: first decisions and escalations race for the
    // same few CEO slots, on three routers. The order: a few escalations first (a visibility change takes intake a
    // little longer than a submission), then one after every three viral ones.
    let mut escalations = quiet_ids.iter().copied();
    let mut plan: Vec<Option<ComplaintId>> = escalations.by_ref().take(3).map(Some).collect();
    for v in 1..=VIRAL {
        plan.push(None);
        if v.is_multiple_of(3) {
            plan.extend(escalations.next().map(Some));
        }
    }
    plan.extend(escalations.map(Some));
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, escalate) in plan.into_iter().enumerate() {
        let mut client = intake.intake();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            if let Some(id) = escalate {
                client
                    .change_visibility(ipb::ChangeVisibilityRequest {
                        header: Some(ipb::CommandHeader {
                            complaint_id: id.to_string(),
                            request_id: String::new(),
                        }),
                        visibility: Some(viral_visibility()),
                    })
                    .await
                    .expect("visibility changed");
                return id;
            }
            let w = client
                .submit_complaint(viral("race", &format!("V-{i}"), &format!("viral-{i}")))
                .await
                .expect("submitted")
                .into_inner();
            ComplaintId::parse(&w.complaint_id).expect("an id")
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = within(
        "the submissions",
        Duration::from_secs(60),
        tasks.join_next(),
    )
    .await
    {
        ids.push(id.expect("a submission task"));
    }
    let submitted = load_started.elapsed();

    // Wait until every complaint is decided and both consumers are drained
    // (nothing pending, nothing waiting for an ack): no replica stalled.
    let ids_ref = &ids;
    eventually(
        "every complaint decided",
        Duration::from_secs(30),
        async || {
            Decisions::read(log_ref, ids_ref)
                .await
                .all_routed(ids_ref)
                .then_some(())
        },
    )
    .await;
    for role in ["router", "solo"] {
        let durable = names.consumer(role);
        eventually(
            &format!("consumer {durable} drained"),
            Duration::from_secs(30),
            async || {
                let (pending, unacked) = consumer_backlog(&nats, names.stream(), &durable).await;
                (pending == 0 && unacked == 0).then_some(())
            },
        )
        .await;
    }
    let routed_all = load_started.elapsed();

    // The invariants, on the log (the truth).
    let decisions = Decisions::read(&log, &ids).await;
    let mut ceo_by_window: BTreeMap<Timestamp, BTreeSet<ComplaintId>> = BTreeMap::new();
    let mut reroutes = 0;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            decisions.count(id, "complaint_routed"),
            1,
            "complaint #{i} {id}: exactly one decision, got {:?}",
            decisions.counts[id]
        );
        let rerouted = decisions.count(id, "complaint_rerouted");
        assert!(rerouted <= 1, "{id}: at most one escalation: {rerouted}");
        reroutes += rerouted;
        if rerouted == 1 {
            assert_eq!(decisions.route[id], Route::Ceo, "{id}: escalations go up");
        }
        if let Some(window) = decisions.ceo_window.get(id) {
            ceo_by_window.entry(*window).or_default().insert(*id);
        }
    }
    let ceo: usize = ceo_by_window.values().map(BTreeSet::len).sum();
    for (window, engaged) in &ceo_by_window {
        let slots = budget_slots(&log, *window).await;
        let distinct: BTreeSet<ComplaintId> = slots.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            slots.len(),
            "one slot per complaint: {slots:?}"
        );
        assert!(
            slots.len() <= BUDGET as usize,
            "window {window:?}: {} slots for a budget of {BUDGET}",
            slots.len()
        );
        assert_eq!(
            &distinct, engaged,
            "window {window:?}: the slots are exactly the CEO decisions (none leaked)"
        );
    }
    if ceo_by_window.len() == 1 {
        assert_eq!(
            ceo, BUDGET as usize,
            "with more viral complaints than budget, the whole budget is used"
        );
    }

    // The projection agrees: one decision (plus the escalation) per complaint.
    let mut query = first.query();
    let last = log.last_sequence().await.expect("last sequence");
    for id in &ids {
        let r = query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: id.to_string(),
                consistency: Some(rpb::Consistency {
                    min_sequence: last,
                    timeout_ms: 10_000,
                }),
                ..Default::default()
            })
            .await
            .expect("projected")
            .into_inner();
        assert_eq!(
            r.decisions.len(),
            1 + decisions.count(id, "complaint_rerouted"),
            "{id}: the projection shows the log's decisions"
        );
    }
    let budget = query
        .get_ceo_budget(rpb::GetCeoBudgetRequest::default())
        .await
        .expect("budget")
        .into_inner();
    assert_eq!(budget.budget, BUDGET, "{budget:?}");
    if ceo_by_window.len() == 1 {
        assert_eq!(
            budget.used as usize, ceo,
            "the projected budget: {budget:?}"
        );
    }

    println!(
        "racing routers: {} complaints ({VIRAL} viral, {ESCALATED} escalated), budget {BUDGET}: \
         {ceo} CEO engagements in {} window(s), {reroutes} escalations; submitted in {:.1?}, \
         all decided and both consumers drained after {:.1?}; test took {:.1?}",
        ids.len(),
        ceo_by_window.len(),
        submitted,
        routed_all,
        started.elapsed()
    );

    solo.stop().await;
    second.stop().await;
    first.stop().await;
    intake.stop().await;
    delete_streams(&nats, &names).await;
    db.drop_db().await;
}
