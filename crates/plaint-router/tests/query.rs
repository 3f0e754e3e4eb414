//! The `Query` service over a real PostgreSQL, called in process: consistency
//! waits, error codes, pagination tokens, policy simulation and watching.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../plaint-projection/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use plaint_domain::event::ComplaintEvent;
use plaint_domain::lifecycle::Status;
use plaint_domain::{Category, Channel, RoutingPolicy};
use plaint_domain::{ComplaintId, Route, Timestamp};
use plaint_projection::store::{ComplaintChange, ComplaintRow, Store};
use plaint_proto::router::{self as pb, query_server::Query};
use plaint_router::QueryService;
use support::{Log, T0, ceo_everything, facts, finish, fresh_store, id_of};
use tokio::sync::broadcast;
use tonic::{Code, Request};

fn service(store: &Store) -> (QueryService, broadcast::Sender<ComplaintChange>) {
    let (updates, _) = broadcast::channel(4);
    let svc = QueryService::new(
        store.clone(),
        updates.clone(),
        Duration::from_millis(300),
        std::sync::Arc::new(support::pseudonyms()),
    );
    (svc, updates)
}

fn wait_for(min_sequence: u64, timeout_ms: u32) -> Option<pb::Consistency> {
    Some(pb::Consistency {
        min_sequence,
        timeout_ms,
    })
}

#[tokio::test]
async fn get_complaint_waits_for_the_sequence_asked_for_and_says_when_it_is_not_reached() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let mut log = Log::default();
    let f = facts("Q-1", "cust-q", Channel::Email, Category::ProductDefect);
    let (batch, decision) = log.lifecycle(&f, &RoutingPolicy::default(), T0, Some(9));
    let id = id_of(&f).to_string();

    let late = svc
        .get_complaint(Request::new(pb::GetComplaintRequest {
            complaint_id: id.clone(),
            consistency: wait_for(3, 20),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded);
    assert!(
        late.message().contains("min_sequence 3"),
        "{}",
        late.message()
    );

    let pending = {
        let svc = svc.clone();
        let id = id.clone();
        tokio::spawn(async move {
            svc.get_complaint(Request::new(pb::GetComplaintRequest {
                complaint_id: id,
                consistency: wait_for(3, 0),
                ..Default::default()
            }))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.apply_batch(&batch).await.unwrap();
    let got = pending.await.unwrap().unwrap().into_inner();
    let summary = got.complaint.unwrap();
    assert_eq!(summary.status, pb::Status::Resolved as i32);
    assert_eq!(summary.satisfaction, 9);
    assert_eq!(summary.fulfilment_step, "PENDING");
    assert_eq!(got.timeline.len(), 3);
    assert_eq!(
        got.decisions,
        [plaint_proto::convert::decision_to_wire(&decision)]
    );
    assert_eq!(got.projected_sequence, 3);

    let bad = svc
        .get_complaint(Request::new(pb::GetComplaintRequest {
            complaint_id: "not-a-uuid".to_owned(),
            consistency: None,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("complaint_id"), "{}", bad.message());

    let missing = svc
        .get_complaint(Request::new(pb::GetComplaintRequest {
            complaint_id: uuid::Uuid::new_v4().to_string(),
            consistency: None,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    finish(db, store).await;
}

#[tokio::test]
async fn list_tokens_walk_every_page_and_a_bad_token_is_refused() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let mut log = Log::default();
    let batch: Vec<_> = (0..7)
        .map(|i| {
            let f = facts(
                &format!("P-{i}"),
                "cust-p",
                Channel::Chat,
                Category::Billing,
            );
            log.complaint(id_of(&f), T0 + i, ComplaintEvent::Received(Box::new(f)))
        })
        .collect();
    store.apply_batch(&batch).await.unwrap();

    let mut token = String::new();
    let mut total = 0;
    for _ in 0..10 {
        let page = svc
            .list_complaints(Request::new(pb::ListComplaintsRequest {
                page_size: 3,
                page_token: token.clone(),
                customer_id: "cust-p".to_owned(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        total += page.complaints.len();
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(total, 7);

    let bad = svc
        .list_complaints(Request::new(pb::ListComplaintsRequest {
            page_token: "garbage".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("page_token"), "{}", bad.message());

    finish(db, store).await;
}

#[tokio::test]
async fn a_candidate_policy_is_simulated_within_its_own_budget() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let mut log = Log::default();
    let mut batch = Vec::new();
    for i in 0..5 {
        let f = facts(
            &format!("Z-{i}"),
            &format!("cust-z{i}"),
            Channel::Email,
            Category::Billing,
        );
        batch.extend(
            log.lifecycle(&f, &RoutingPolicy::default(), T0 + i * 1_000, None)
                .0,
        );
    }
    store.apply_batch(&batch).await.unwrap();

    let mut candidate = ceo_everything();
    candidate.budget.per_window = 2;
    let answer = svc
        .simulate_policy(Request::new(pb::SimulatePolicyRequest {
            policy_json: candidate.to_json(),
            max_changes: 1,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.complaints, 5);
    assert_eq!(answer.changed_total, 2);
    assert_eq!(answer.changes.len(), 1);
    assert_eq!(answer.peak_window_ceo, 2);
    assert_eq!(answer.budget, 2);
    let ceo = answer
        .distribution
        .iter()
        .find(|r| r.route == plaint_proto::events::Route::Ceo as i32)
        .unwrap();
    assert_eq!((ceo.actual, ceo.simulated), (0, 2));

    let mut invalid = candidate.clone();
    invalid.budget.window_hours = 0;
    let refused = svc
        .simulate_policy(Request::new(pb::SimulatePolicyRequest {
            policy_json: invalid.to_json(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("policy_json.budget.window_hours"),
        "{}",
        refused.message()
    );

    finish(db, store).await;
}

#[tokio::test]
async fn a_simulation_starts_from_the_engagements_before_its_span_and_never_cuts_it() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let mut log = Log::default();
    let mut batch = Vec::new();
    // Two complaints the CEO took, then three the frontline took, all in
    // one budget window.
    for i in 0..5 {
        let f = facts(
            &format!("S-{i}"),
            &format!("cust-s{i}"),
            Channel::Email,
            Category::Billing,
        );
        let actual = if i < 2 {
            ceo_everything()
        } else {
            RoutingPolicy::default()
        };
        batch.extend(log.lifecycle(&f, &actual, T0 + i * 1_000, None).0);
    }
    store.apply_batch(&batch).await.unwrap();

    let mut candidate = ceo_everything();
    candidate.budget.per_window = 3;
    let span = |max: u64| {
        let svc = service(&store).0.with_max_simulated(max);
        let candidate = candidate.to_json();
        async move {
            svc.simulate_policy(Request::new(pb::SimulatePolicyRequest {
                policy_json: candidate,
                from_ms: T0 + 2_000,
                ..Default::default()
            }))
            .await
        }
    };
    let answer = span(3).await.unwrap().into_inner();
    assert_eq!(answer.complaints, 3, "every complaint of the span, no more");
    assert_eq!(answer.engagements_before, 2);
    let ceo = answer
        .distribution
        .iter()
        .find(|r| r.route == plaint_proto::events::Route::Ceo as i32)
        .unwrap();
    // Budget 3, of which the window had used 2 before the span.
    assert_eq!((ceo.actual, ceo.simulated), (0, 1));
    assert_eq!(answer.peak_window_ceo, 3);

    // Without the history, the whole budget would have seemed free.
    let whole = svc
        .simulate_policy(Request::new(pb::SimulatePolicyRequest {
            policy_json: candidate.to_json(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((whole.complaints, whole.engagements_before), (5, 0));

    let refused = span(2).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("3 complaints") && refused.message().contains("at most 2"),
        "{}",
        refused.message()
    );

    finish(db, store).await;
}

/// What the projector broadcasts for an event of `event_type` at `sequence`
/// on the complaint `id`.
fn change(id: uuid::Uuid, event_type: &'static str, sequence: u64) -> ComplaintChange {
    let f = facts("W-1", "c-1", Channel::Email, Category::Service);
    ComplaintChange {
        sequence,
        event_type: event_type.into(),
        complaint: ComplaintRow {
            complaint_id: ComplaintId::from_uuid(id),
            source_system: f.source_system.to_string(),
            external_ticket_id: f.external_ticket_id.to_string(),
            customer_id: f.customer.id.to_string(),
            segment: f.customer.segment.to_string(),
            channel: f.channel,
            category: f.category,
            status: Status::Assigned,
            route: Some(Route::Frontline),
            fulfilment: None,
            fulfilment_step: None,
            priority: None,
            assignee: None,
            satisfaction: None,
            received_at: Timestamp::from_millis(T0),
            routed_at: None,
            resolved_at: None,
            ceo_engaged_at: None,
            last_sequence: sequence,
        },
    }
}

#[tokio::test]
async fn a_slow_watcher_is_told_how_many_updates_it_missed() {
    let (db, store) = fresh_store().await;
    let (svc, updates) = service(&store);
    let mut stream = svc
        .watch_complaints(Request::new(pb::WatchComplaintsRequest::default()))
        .await
        .unwrap()
        .into_inner();

    // The test runtime is single-threaded: all 100 are sent before the
    // watcher's task runs, and the broadcast keeps only the last 4.
    for sequence in 1..=100 {
        updates
            .send(change(uuid::Uuid::new_v4(), "resolved", sequence))
            .unwrap();
    }
    let mut delivered = Vec::new();
    while let Ok(Some(update)) =
        tokio::time::timeout(Duration::from_millis(100), stream.next()).await
    {
        delivered.push(update.unwrap());
    }
    assert_eq!(delivered.len(), 4);
    assert_eq!(delivered[0].missed, 96);
    assert!(delivered[1..].iter().all(|u| u.missed == 0));
    assert_eq!(delivered.last().unwrap().sequence, 100);

    finish(db, store).await;
}

#[tokio::test]
async fn a_watch_filtered_by_complaint_sees_only_that_complaint() {
    let (db, store) = fresh_store().await;
    let (svc, updates) = service(&store);
    let wanted = uuid::Uuid::new_v4();
    let mut stream = svc
        .watch_complaints(Request::new(pb::WatchComplaintsRequest {
            complaint_id: wanted.to_string(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    for (sequence, id) in [(1, uuid::Uuid::new_v4()), (2, wanted)] {
        updates.send(change(id, "assigned", sequence)).unwrap();
    }
    let first = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.sequence, 2);

    let bad = svc
        .watch_complaints(Request::new(pb::WatchComplaintsRequest {
            complaint_id: "nope".to_owned(),
            ..Default::default()
        }))
        .await
        .err()
        .unwrap();
    assert_eq!(bad.code(), Code::InvalidArgument);

    finish(db, store).await;
}

#[tokio::test]
async fn the_ceo_budget_uses_the_default_policy_until_one_is_published() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let answer = svc
        .get_ceo_budget(Request::new(pb::GetCeoBudgetRequest {
            at_ms: T0,
            consistency: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let default = RoutingPolicy::default();
    assert_eq!(answer.budget, default.budget.per_window);
    assert_eq!(
        answer.window_end_ms - answer.window_start_ms,
        default.window_ms()
    );
    assert!(answer.window_start_ms <= T0 && T0 < answer.window_end_ms);
    assert_eq!(answer.used, 0);

    finish(db, store).await;
}

#[tokio::test]
async fn a_past_budget_window_keeps_the_policy_in_force_then() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let policy = ceo_everything();
    let mut log = Log::default();
    let by = plaint_domain::values::Label::parse("ops").unwrap();
    let published = vec![log.company(
        T0,
        plaint_domain::event::CompanyEvent::PolicyPublished {
            policy: Box::new(policy.clone()),
            published_by: by,
        },
    )];
    store.apply_batch(&published).await.unwrap();
    let budget_at = |at_ms: i64| {
        let svc = &svc;
        async move {
            svc.get_ceo_budget(Request::new(pb::GetCeoBudgetRequest {
                at_ms,
                consistency: None,
            }))
            .await
            .unwrap()
            .into_inner()
        }
    };

    let before = budget_at(T0 - 30 * 86_400_000).await;
    assert_eq!(before.budget, RoutingPolicy::default().budget.per_window);
    let since = budget_at(T0).await;
    assert_eq!(since.budget, policy.budget.per_window);
    assert_ne!(before.budget, since.budget);
    let now = budget_at(0).await;
    assert_eq!(now.budget, policy.budget.per_window);

    finish(db, store).await;
}

#[tokio::test]
async fn goodwill_carries_the_counts_beside_the_shares() {
    let (db, store) = fresh_store().await;
    let (svc, _) = service(&store);
    let mut log = Log::default();
    let mut batch = Vec::new();
    for (i, (ticket, satisfaction)) in [("GW-1", 10), ("GW-2", 9), ("GW-3", 4)]
        .into_iter()
        .enumerate()
    {
        let f = facts(ticket, "cust-gw", Channel::Email, Category::Billing);
        let at = T0 + i as i64 * 60_000;
        let (items, _) = log.lifecycle(&f, &RoutingPolicy::default(), at, Some(satisfaction));
        batch.extend(items);
    }
    store.apply_batch(&batch).await.unwrap();

    let answer = svc
        .get_goodwill(Request::new(pb::GetGoodwillRequest {
            group_by: pb::GoodwillGrouping::Route as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let total = answer.total.unwrap();
    assert_eq!((total.resolved, total.recovered), (3, 2));
    assert!((total.recovered_share - 2.0 / 3.0).abs() < 1e-9);
    let frontline = &answer.rows[0];
    assert_eq!(frontline.key, "FRONTLINE");
    assert_eq!((frontline.resolved, frontline.recovered), (3, 2));

    let refused = svc
        .get_goodwill(Request::new(pb::GetGoodwillRequest {
            group_by: 42,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("GOODWILL_GROUPING_ROUTE (1), GOODWILL_GROUPING_CHANNEL (2)"),
        "{}",
        refused.message()
    );
    finish(db, store).await;
}
