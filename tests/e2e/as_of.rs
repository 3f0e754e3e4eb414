//! `GetComplaint` as of a past point: at every sequence of a complaint's
//! history the answer is the state a replay of the log gives there, and at
//! its last sequence it equals what the projections answer now.

use plaint_domain::lifecycle;
use plaint_proto::ToWire;
use plaint_proto::events as epb;
use plaint_proto::intake as ipb;
use plaint_proto::router as rpb;
use tonic::Code;

use crate::helpers::TestIntake;
use crate::helpers::{complaint_event, header, spawn_intake, submit_request};
use crate::router::{decided, projected_when, spawn_router, with_timeline_entry};

fn as_of(id: &str, sequence: u64, ms: i64) -> rpb::GetComplaintRequest {
    rpb::GetComplaintRequest {
        complaint_id: id.to_owned(),
        as_of_sequence: sequence,
        as_of_ms: ms,
        ..Default::default()
    }
}

/// Submits a service complaint; its id as the wire and the domain write it.
async fn submit_service_complaint(
    intake: &TestIntake,
    source: &str,
    ticket: &str,
) -> (String, plaint_domain::ComplaintId) {
    let mut request = submit_request(source, ticket);
    request.category = epb::Category::Service as i32;
    let written = intake
        .client
        .clone()
        .submit_complaint(request)
        .await
        .expect("submitted")
        .into_inner();
    let complaint_id = plaint_domain::ComplaintId::parse(&written.complaint_id).expect("an id");
    (written.complaint_id, complaint_id)
}

#[tokio::test]
async fn the_answer_at_each_sequence_is_what_a_replay_gives_there() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let (id, complaint_id) = submit_service_complaint(&intake, "asof", "H-1").await;
    decided(&mut router.query, &id).await;
    let mut client = intake.client.clone();
    client
        .acknowledge(ipb::AcknowledgeRequest {
            header: header(&complaint_id),
            by: "agent-1".to_owned(),
        })
        .await
        .expect("acknowledged");
    client
        .resolve(ipb::ResolveRequest {
            header: header(&complaint_id),
            satisfaction: 9,
            note: "sorted".to_owned(),
        })
        .await
        .expect("resolved");
    let events = intake.events(&complaint_id).await;
    assert_eq!(events.len(), 4, "received, routed, acknowledged, resolved");

    for (i, stored) in events.iter().enumerate() {
        let past = router
            .query
            .get_complaint(as_of(&id, stored.sequence, 0))
            .await
            .expect("answered as of the sequence")
            .into_inner();
        let replayed = lifecycle::replay(
            complaint_id,
            events[..=i]
                .iter()
                .map(|e| (complaint_event(e), e.envelope.occurred_at)),
        )
        .expect("a valid history")
        .expect("a complaint");
        let summary = past.complaint.expect("a summary");
        assert_eq!(
            summary.status,
            ToWire::<i32>::to_wire(&replayed.status),
            "at {i}"
        );
        assert_eq!(
            summary.priority,
            replayed.priority().map_or(0, |p| p.to_wire()),
            "at {i}"
        );
        assert_eq!(past.timeline.len(), i + 1, "at {i}");
        assert_eq!(past.projected_sequence, stored.sequence);
        assert_eq!(
            past.decisions.len(),
            usize::from(replayed.decision.is_some())
        );
        // As of the time it occurred gives the same answer.
        let by_time = router
            .query
            .get_complaint(as_of(&id, 0, stored.envelope.occurred_at.as_millis()))
            .await
            .expect("answered as of the time")
            .into_inner();
        assert!(by_time.timeline.len() > i, "at {i}");
    }

    // At its last sequence: what the projections answer now.
    let last = events.last().expect("events").sequence;
    let now = projected_when(&mut router.query, &id, "the resolution projected", |r| {
        r.timeline.len() == 4
    })
    .await;
    let past = router
        .query
        .get_complaint(as_of(&id, last, 0))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(past.complaint, now.complaint);
    assert_eq!(past.decisions, now.decisions);
    let sequences = |r: &rpb::GetComplaintResponse| {
        r.timeline
            .iter()
            .map(|t| (t.sequence, t.event_type.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sequences(&past), sequences(&now));

    // Before it was received, and a request asking for both points.
    let first = events[0].envelope.occurred_at.as_millis();
    let before = router.query.get_complaint(as_of(&id, 0, first - 1)).await;
    assert_eq!(before.map(|_| ()).unwrap_err().code(), Code::NotFound);
    let both = router.query.get_complaint(as_of(&id, last, first)).await;
    let status = both.map(|_| ()).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("as_of"), "{}", status.message());
    router.stop().await;
}

#[tokio::test]
async fn a_visibility_change_that_keeps_the_route_leaves_a_reevaluation_with_the_gate_that_held() {
    let db = plaint_testkit::TestDb::create().await;
    let intake = spawn_intake(&plaint_testkit::shared_nats_url()).await;
    let mut router = spawn_router(&intake, db.url()).await;
    let (id, complaint_id) = submit_service_complaint(&intake, "reeval", "V-1").await;
    let first = decided(&mut router.query, &id).await;
    assert_eq!(first.decisions[0].route, epb::Route::Frontline as i32);
    // A little more visible: not nearly enough for the CEO.
    intake
        .client
        .clone()
        .change_visibility(ipb::ChangeVisibilityRequest {
            header: header(&complaint_id),
            visibility: Some(epb::Visibility {
                audience_reach: 1_500,
                shares: 0,
                media_attention: false,
            }),
        })
        .await
        .expect("visibility changed");
    let now = with_timeline_entry(&mut router.query, &id, "complaint_reevaluated").await;
    let entry = now
        .timeline
        .iter()
        .find(|t| t.event_type == "complaint_reevaluated")
        .expect("the entry");
    let detail: serde_json::Value = serde_json::from_str(&entry.detail_json).expect("JSON");
    assert_eq!(detail["held_by"], "CLIMATE", "{detail}");
    assert_eq!(detail["decision"]["route"], "FRONTLINE", "{detail}");
    // The decision in force is still the first one.
    assert_eq!(now.decisions.len(), 1);
    assert_eq!(
        now.complaint.expect("a summary").route,
        epb::Route::Frontline as i32
    );
    // One entry for the one change, however often it is delivered.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let events = intake.events(&complaint_id).await;
    assert_eq!(crate::helpers::count(&events, "complaint_reevaluated"), 1);
    router.stop().await;
}
