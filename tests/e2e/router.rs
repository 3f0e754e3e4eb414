//! The router end to end: decisions appended once and explained, the CEO
//! budget holding across replicas, read-your-writes through the projections.

use plaint_access::settings::KeyText;
use plaint_client::Authed;
use plaint_domain::RoutingPolicy;
use plaint_proto::events as epb;
use plaint_proto::router::{self as rpb, admin_client::AdminClient, query_client::QueryClient};
use plaint_router::{Application, Config};
use plaint_runtime::binary::Service as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::helpers::{
    TestIntake, assert_health, eventually, expected_listing, list_services, spawn_intake,
    submit_request, within, written_id,
};

/// A running router and its clients.
pub(crate) struct TestRouter {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) channel: Authed,
    pub(crate) query: QueryClient<Authed>,
    pub(crate) admin: AdminClient<Authed>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub(crate) async fn spawn_router(intake: &TestIntake, database_url: &str) -> TestRouter {
    spawn_router_with(intake, database_url, |_| ()).await
}

/// Starts a router for `intake`'s log with its test config changed by `tweak`.
pub(crate) async fn spawn_router_with(
    intake: &TestIntake,
    database_url: &str,
    tweak: impl FnOnce(&mut Config),
) -> TestRouter {
    let mut config = Config::for_tests(
        &plaint_testkit::shared_nats_url(),
        &intake.prefix,
        database_url,
    );
    config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    tweak(&mut config);
    let app = within("router builds", Application::build(config))
        .await
        .expect("router builds");
    let addr = app.local_addr();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let channel = within(
        "connecting to the router",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect(),
    )
    .await
    .expect("connect to the router");
    let channel = plaint_testkit::authed(channel);
    TestRouter {
        addr,
        channel: channel.clone(),
        query: QueryClient::new(channel.clone()),
        admin: AdminClient::new(channel),
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

impl TestRouter {
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            within("router stops", t)
                .await
                .expect("join")
                .expect("router ran");
        }
    }
}

fn viral(
    source: &str,
    ticket: &str,
    customer: &str,
) -> plaint_proto::intake::SubmitComplaintRequest {
    let mut r = submit_request(source, ticket);
    r.channel = epb::Channel::PublicSocial as i32;
    r.category = epb::Category::Service as i32;
    r.visibility = Some(epb::Visibility {
        audience_reach: 2_000_000,
        shares: 50_000,
        media_attention: true,
    });
    if let Some(c) = r.customer.as_mut() {
        c.customer_id = customer.to_owned();
    }
    r
}

/// Rebuilds the projections and returns the last progress report, the one
/// that says the tables were swapped in.
pub(crate) async fn rebuilt(admin: &mut AdminClient<Authed>) -> rpb::RebuildProgress {
    let mut progress = admin
        .rebuild_projections(rpb::RebuildProjectionsRequest {})
        .await
        .expect("rebuild starts")
        .into_inner();
    let mut done = None;
    while let Some(p) = within("rebuild progress", progress.message())
        .await
        .expect("progress")
    {
        if p.done {
            done = Some(p);
        }
    }
    done.expect("the rebuild finished")
}

/// The complaint as projected, once `ready` holds of it.
pub(crate) async fn projected_when(
    query: &mut QueryClient<Authed>,
    id: &str,
    what: &str,
    ready: impl Fn(&rpb::GetComplaintResponse) -> bool,
) -> rpb::GetComplaintResponse {
    let id = id.to_owned();
    eventually(what, async || {
        let r = query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: id.clone(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        ready(&r).then_some(r)
    })
    .await
}

pub(crate) async fn decided(
    query: &mut QueryClient<Authed>,
    id: &str,
) -> rpb::GetComplaintResponse {
    projected_when(query, id, "the complaint is routed and projected", |r| {
        !r.decisions.is_empty()
    })
    .await
}

/// The complaint once its projected timeline holds an event of `event_type`.
pub(crate) async fn with_timeline_entry(
    query: &mut QueryClient<Authed>,
    id: &str,
    event_type: &str,
) -> rpb::GetComplaintResponse {
    projected_when(query, id, &format!("{event_type} projected"), |r| {
        r.timeline.iter().any(|t| t.event_type == event_type)
    })
    .await
}

#[tokio::test]
async fn health_and_reflection_tell_only_what_the_router_serves() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let router = spawn_router(&intake, db.url()).await;
    let served = [
        "plaint.router.v1.Query",
        "plaint.router.v1.Admin",
        "plaint.access.v1.Access",
    ];
    let elsewhere = ["plaint.intake.v1.Intake", "plaint.intake.v1.IntakeAdmin"];
    assert_health(router.channel.clone(), &served, &elsewhere).await;
    assert_eq!(
        list_services(router.channel.clone()).await,
        expected_listing(&served)
    );
    router.stop().await;
    intake.finish().await;
}

#[tokio::test]
async fn a_submitted_complaint_is_routed_explained_and_readable_with_its_own_sequence() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let written = intake
        .client
        .clone()
        .submit_complaint(submit_request("zendesk", "R-1"))
        .await
        .expect("submitted")
        .into_inner();

    // Read-your-writes: the projection has at least the received event.
    let seen = router
        .query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: written.complaint_id.clone(),
            consistency: Some(rpb::Consistency {
                min_sequence: written.sequence,
                timeout_ms: 5_000,
            }),
            ..Default::default()
        })
        .await
        .expect("read with min_sequence")
        .into_inner();
    assert!(seen.projected_sequence >= written.sequence);
    assert_eq!(
        seen.complaint.expect("row").complaint_id,
        written.complaint_id
    );

    let r = decided(&mut router.query, &written.complaint_id).await;
    let decision = &r.decisions[0];
    assert_eq!(r.decisions.len(), 1, "exactly one decision");
    // A quiet email about a defect: reverse logistics repairs it.
    assert_eq!(decision.route, epb::Route::ReverseLogistics as i32);
    assert_eq!(decision.fulfilment, epb::FulfilmentKind::Repair as i32);
    assert_eq!(decision.gates.len(), 5);
    assert_eq!(decision.why_not.len(), 2);
    let sum: i64 = decision.contributions.iter().map(|c| c.points).sum();
    assert_eq!(sum, decision.score);
    assert!(
        r.timeline
            .iter()
            .any(|t| t.event_type == "complaint_routed")
    );

    // The log holds one decision too.
    let events = intake.events(&written_id(&written)).await;
    assert_eq!(crate::helpers::count(&events, "complaint_routed"), 1);

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

#[tokio::test]
async fn two_router_replicas_never_exceed_the_ceo_budget() {
    const BUDGET: u32 = 3;
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut first = spawn_router(&intake, db.url()).await;
    let second = spawn_router(&intake, db.url()).await;

    crate::ceo_route::open_the_ceo_route(&mut first.admin, BUDGET).await;

    let mut ids = Vec::new();
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..(BUDGET + 5) {
        let mut client = intake.client.clone();
        submits.spawn(async move {
            client
                .submit_complaint(viral("x", &format!("V-{i}"), &format!("cust-{i}")))
                .await
                .expect("submitted")
                .into_inner()
                .complaint_id
        });
    }
    while let Some(id) = submits.join_next().await {
        ids.push(id.expect("task"));
    }

    let mut ceo = 0;
    for id in &ids {
        let r = decided(&mut first.query, id).await;
        let d = r.decisions.last().expect("a decision");
        if d.route == epb::Route::Ceo as i32 {
            ceo += 1;
        } else {
            let budget = d
                .gates
                .iter()
                .find(|g| g.kind == epb::GateKind::Budget as i32)
                .expect("budget gate");
            assert!(
                !budget.passed,
                "a viral complaint left out names the budget: {d:?}"
            );
        }
        assert_eq!(r.decisions.len(), 1, "exactly one decision for {id}");
    }
    assert_eq!(ceo, BUDGET, "exactly the budget went to the CEO");

    first.stop().await;
    second.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

/// The cooldown gate of a complaint's decision.
fn cooldown_gate(r: &rpb::GetComplaintResponse) -> (i32, epb::Gate) {
    let d = r.decisions.last().expect("a decision");
    let gate = d
        .gates
        .iter()
        .find(|g| g.kind == epb::GateKind::Cooldown as i32)
        .expect("cooldown gate")
        .clone();
    (d.route, gate)
}

#[tokio::test]
async fn a_customer_the_ceo_engaged_stays_in_cooldown_for_this_router_and_the_next() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    crate::ceo_route::open_the_ceo_route(&mut router.admin, 20).await;
    let submit = async |ticket: &str, customer: &str| {
        intake
            .client
            .clone()
            .submit_complaint(viral("x", ticket, customer))
            .await
            .expect("submitted")
            .into_inner()
            .complaint_id
    };

    let first = submit("C-1", "loyal").await;
    let (route, gate) = cooldown_gate(&decided(&mut router.query, &first).await);
    assert_eq!(
        route,
        epb::Route::Ceo as i32,
        "a first viral complaint reaches the CEO"
    );
    assert!(gate.passed, "no earlier engagement: {gate:?}");

    // The same router: the engagement it just recorded holds the next one back.
    let second = submit("C-2", "loyal").await;
    let (route, gate) = cooldown_gate(&decided(&mut router.query, &second).await);
    assert_ne!(route, epb::Route::Ceo as i32);
    assert!(!gate.passed, "inside the cooldown: {gate:?}");
    assert_eq!((gate.observed, gate.limit), (0, 90));

    // A router started afterwards learns the engagement from the log.
    router.stop().await;
    let mut router = spawn_router(&intake, db.url()).await;
    let third = submit("C-3", "loyal").await;
    let other = submit("C-4", "newcomer").await;
    let (route, gate) = cooldown_gate(&decided(&mut router.query, &third).await);
    assert_ne!(route, epb::Route::Ceo as i32);
    assert!(!gate.passed, "still inside the cooldown: {gate:?}");
    let (route, gate) = cooldown_gate(&decided(&mut router.query, &other).await);
    assert_eq!(
        route,
        epb::Route::Ceo as i32,
        "the CEO route itself is open"
    );
    assert!(gate.passed, "{gate:?}");

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

async fn all_complaints(query: &mut QueryClient<Authed>) -> Vec<rpb::ComplaintSummary> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = query
            .list_complaints(rpb::ListComplaintsRequest {
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        out.extend(page.complaints);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Everything the query API says about every complaint, for comparison.
async fn snapshot(query: &mut QueryClient<Authed>) -> Vec<String> {
    let mut out = Vec::new();
    for c in all_complaints(query).await {
        let mut r = query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: c.complaint_id.clone(),
                consistency: None,
                ..Default::default()
            })
            .await
            .expect("get")
            .into_inner();
        r.projected_sequence = 0;
        out.push(format!("{c:?} {r:?}"));
    }
    let goodwill = query
        .get_goodwill(rpb::GetGoodwillRequest {
            group_by: rpb::GoodwillGrouping::Route as i32,
            ..Default::default()
        })
        .await
        .expect("goodwill")
        .into_inner();
    out.push(format!("{goodwill:?}"));
    out
}

#[tokio::test]
async fn a_rebuild_from_sequence_one_gives_the_same_answers_as_the_live_projection() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let mut client = intake.client.clone();
    let mut last = 0;
    for i in 0..12 {
        let w = client
            .submit_complaint(viral("rb", &format!("RB-{i}"), &format!("c-{i}")))
            .await
            .expect("submitted")
            .into_inner();
        let r = decided(&mut router.query, &w.complaint_id).await;
        if i % 3 == 0 {
            let id = written_id(&w);
            let resolved = client
                .resolve(plaint_proto::intake::ResolveRequest {
                    header: crate::helpers::header(&id),
                    satisfaction: 9,
                    note: "done".to_owned(),
                })
                .await
                .expect("resolved")
                .into_inner();
            last = resolved.sequence;
        }
        assert!(!r.decisions.is_empty());
    }
    let any = all_complaints(&mut router.query).await[0]
        .complaint_id
        .clone();
    router
        .query
        .get_complaint(rpb::GetComplaintRequest {
            complaint_id: any,
            consistency: Some(rpb::Consistency {
                min_sequence: last,
                timeout_ms: 5_000,
            }),
            ..Default::default()
        })
        .await
        .expect("caught up");
    let before = snapshot(&mut router.query).await;
    assert_eq!(before.len(), 13);
    let indexes_before = index_shapes(db.url()).await;
    assert!(
        indexes_before.len() >= 10,
        "the projection tables have their indexes: {indexes_before:?}"
    );

    let done = rebuilt(&mut router.admin).await;
    assert!(done.swapped_at_sequence >= last);

    let after = snapshot(&mut router.query).await;
    assert_eq!(
        before, after,
        "the rebuilt projection answers like the live one"
    );
    // The copy is filled without its secondary indexes, which are built
    // before the swap: the swapped-in tables must have them all.
    assert_eq!(indexes_before, index_shapes(db.url()).await);

    // The live projector carries on into the swapped-in tables.
    let w = client
        .submit_complaint(viral("rb", "RB-after", "c-after"))
        .await
        .expect("submitted")
        .into_inner();
    decided(&mut router.query, &w.complaint_id).await;

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

/// Every index of the live projection tables, as its definition without its
/// name and schema (a rebuilt copy's indexes get generated names), sorted.
async fn index_shapes(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("database");
    let defs: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relname::text, pg_get_indexdef(x.indexrelid) FROM pg_index x \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .expect("index definitions");
    pool.close().await;
    let mut shapes: Vec<String> = defs
        .into_iter()
        .map(|(table, def)| {
            let unique = def.starts_with("CREATE UNIQUE");
            let using = def.split_once(" USING ").map_or("", |(_, u)| u).to_owned();
            format!("{table} unique={unique} {using}")
        })
        .collect();
    shapes.sort();
    shapes
}

#[tokio::test]
async fn a_new_policy_changes_later_decisions_only_and_a_simulation_appends_nothing() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let mut client = intake.client.clone();
    // Public post to a large audience: 70 points, under the neutral climate's 80.
    let moderate = |ticket: &str, customer: &str| {
        let mut r = viral("pol", ticket, customer);
        r.visibility = Some(epb::Visibility {
            audience_reach: 2_000_000,
            shares: 0,
            media_attention: false,
        });
        r
    };
    let before = client
        .submit_complaint(moderate("P-1", "c-1"))
        .await
        .expect("submitted")
        .into_inner();
    let first = decided(&mut router.query, &before.complaint_id).await;
    assert_eq!(first.decisions[0].route, epb::Route::Frontline as i32);
    assert_eq!(first.decisions[0].policy_version, 1);

    let mut lenient = RoutingPolicy::default();
    lenient.ceo_threshold.neutral = Some(50);
    let published = router
        .admin
        .publish_policy(rpb::PublishPolicyRequest {
            policy_json: lenient.to_json(),
            ..Default::default()
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(published.version, 2);

    let after = client
        .submit_complaint(moderate("P-2", "c-2"))
        .await
        .expect("submitted")
        .into_inner();
    let second = decided(&mut router.query, &after.complaint_id).await;
    assert_eq!(second.decisions[0].route, epb::Route::Ceo as i32);
    assert_eq!(second.decisions[0].policy_version, 2);
    // The earlier complaint keeps its decision.
    let first_again = decided(&mut router.query, &before.complaint_id).await;
    assert_eq!(first_again.decisions.len(), 1);
    assert_eq!(first_again.decisions[0].route, epb::Route::Frontline as i32);

    let log_before = intake.log.last_sequence().await.expect("log");
    let sim = router
        .query
        .simulate_policy(rpb::SimulatePolicyRequest {
            policy_json: lenient.to_json(),
            from_ms: 0,
            to_ms: i64::MAX,
            max_changes: 10,
        })
        .await
        .expect("simulated")
        .into_inner();
    assert_eq!(sim.complaints, 2);
    assert_eq!(sim.changed_total, 1, "{sim:?}");
    let change = &sim.changes[0];
    assert_eq!(change.complaint_id, before.complaint_id);
    assert_eq!(
        change.actual.as_ref().expect("actual").route,
        epb::Route::Frontline as i32
    );
    assert_eq!(
        change.simulated.as_ref().expect("simulated").route,
        epb::Route::Ceo as i32
    );
    assert_eq!(
        intake.log.last_sequence().await.expect("log"),
        log_before,
        "nothing appended"
    );

    let refused = router
        .query
        .simulate_policy(rpb::SimulatePolicyRequest {
            policy_json: r#"{"version": 0}"#.to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("an invalid policy is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_redelivered_event_after_a_crash_between_append_and_ack_decides_nothing_twice() {
    use plaint_routing::{Outcome, Router};
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let w = intake
        .client
        .clone()
        .submit_complaint(submit_request("redeliver", "D-1"))
        .await
        .expect("submitted")
        .into_inner();
    let id = written_id(&w);
    let received = intake.events(&id).await.remove(0);

    // Two routers (a crash and its restart, or two replicas) handle the same delivery.
    let mut first = Router::new(intake.log.clone());
    let mut second = Router::new(intake.log.clone());
    let a = first
        .handle(&received.envelope, received.sequence, None)
        .await
        .expect("routed");
    let b = second
        .handle(&received.envelope, received.sequence, None)
        .await
        .expect("handled");
    let c = first
        .handle(&received.envelope, received.sequence, None)
        .await
        .expect("handled");
    assert_eq!(a, Outcome::Routed(plaint_domain::Route::ReverseLogistics));
    assert_eq!(b, Outcome::Skipped);
    assert_eq!(c, Outcome::Skipped);
    let events = intake.events(&id).await;
    assert_eq!(crate::helpers::count(&events, "complaint_routed"), 1);
    intake.finish().await;
}

#[tokio::test]
async fn an_unknown_climate_is_refused_with_the_accepted_names() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let status = router
        .admin
        .set_climate(rpb::SetClimateRequest {
            climate: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    crate::helpers::assert_invalid_field(&status, "climate");
    assert!(
        status
            .message()
            .contains("CLIMATE_GOOD (1), CLIMATE_NEUTRAL (2), CLIMATE_BAD (3)"),
        "{status:?}"
    );
    assert!(!status.message().contains("::"), "{status:?}");
    router.stop().await;
    intake.finish().await;
    db.drop_db().await;
}

#[tokio::test]
async fn neither_service_starts_on_a_log_in_the_first_layout() {
    let prefix = plaint_testkit::unique_prefix();
    let nats = plaint_testkit::shared_nats_url();
    let mut intake_config = plaint_intake::Config::for_tests(&nats, &prefix);
    intake_config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    // The stream as the first layout made it: one subject per complaint.
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.expect("connect"));
    js.create_stream(async_nats::jetstream::stream::Config {
        name: intake_config.log.stream.clone(),
        subjects: vec![
            format!("{prefix}.complaint.*"),
            format!("{prefix}.company.*"),
            format!("{prefix}.budget.*"),
            format!("{prefix}.ceo.*"),
        ],
        ..Default::default()
    })
    .await
    .expect("an old stream");

    let db = plaint_testkit::TestDb::create().await;
    let mut router_config = Config::for_tests(&nats, &prefix, db.url());
    router_config.access.admin_key = Some(KeyText::new(plaint_testkit::admin_key()));
    let refusals = [
        match Application::build(router_config).await {
            Ok(_) => panic!("the router started on a log in the first layout"),
            Err(e) => format!("{e:#}"),
        },
        match plaint_intake::Application::build(intake_config.clone()).await {
            Ok(_) => panic!("intake started on a log in the first layout"),
            Err(e) => format!("{e:#}"),
        },
    ];
    for refusal in refusals {
        assert!(
            refusal.contains(&format!(
                "stream {} holds the event log in its first layout",
                intake_config.log.stream
            )) && refusal.contains("second layout"),
            "{refusal}"
        );
    }
    js.delete_stream(&intake_config.log.stream)
        .await
        .expect("cleanup");
    db.drop_db().await;
}
