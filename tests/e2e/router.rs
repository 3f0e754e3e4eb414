//! The router end to end: decisions appended once and explained, the CEO
//! budget holding across replicas, read-your-writes through the projections.

use plaint_domain::RoutingPolicy;
use plaint_proto::events as epb;
use plaint_proto::router::{self as rpb, admin_client::AdminClient, query_client::QueryClient};
use plaint_router::{Application, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::helpers::{TestIntake, eventually, spawn_intake, submit_request, within, written_id};

/// A running router and its clients.
struct TestRouter {
    query: QueryClient<Channel>,
    admin: AdminClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

async fn spawn_router(intake: &TestIntake, database_url: &str) -> TestRouter {
    let config = Config::for_tests(
        &plaint_testkit::shared_nats_url(),
        &intake.prefix,
        database_url,
    );
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
    TestRouter {
        query: QueryClient::new(channel.clone()),
        admin: AdminClient::new(channel),
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

impl TestRouter {
    async fn stop(mut self) {
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

async fn decided(query: &mut QueryClient<Channel>, id: &str) -> rpb::GetComplaintResponse {
    let id = id.to_owned();
    eventually("the complaint is routed and projected", async || {
        let r = query
            .get_complaint(rpb::GetComplaintRequest {
                complaint_id: id.clone(),
                consistency: None,
            })
            .await
            .ok()?
            .into_inner();
        (!r.decisions.is_empty()).then_some(r)
    })
    .await
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

    let mut policy = RoutingPolicy::default();
    policy.budget.per_window = BUDGET;
    policy.max_segment_share_pct = 100;
    first
        .admin
        .publish_policy(rpb::PublishPolicyRequest {
            policy_json: policy.to_json(),
            published_by: "test".to_owned(),
        })
        .await
        .expect("policy published");
    first
        .admin
        .set_climate(rpb::SetClimateRequest {
            climate: epb::Climate::Good as i32,
            set_by: "test".to_owned(),
        })
        .await
        .expect("climate set");

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
