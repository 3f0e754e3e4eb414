//! The projections against a real PostgreSQL: a fresh database per test,
//! batches of hand-built log events, and what the read side then shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use plaint_domain::event::{CeoSlot, CompanyEvent, ComplaintEvent};
use plaint_domain::lifecycle::Status;
use plaint_domain::values::Label;
use plaint_domain::{
    Category, Channel, Climate, ComplaintId, Route, RoutingPolicy, StanceAlignment, Timestamp,
};
use plaint_projection::store::{Changes, GoodwillGroup, ListFilter, Span, StoreError};
use support::{Log, T0, ceo_everything, copy, decide, facts, finish, fresh_store, id_of};
use uuid::Uuid;

#[tokio::test]
async fn a_resolved_complaint_shows_its_status_route_timeline_and_decision() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-1", "cust-1", Channel::Email, Category::ProductDefect);
    let (batch, decision) = log.lifecycle(&f, &RoutingPolicy::default(), T0, Some(10));

    let applied = store.apply_batch(&batch).await.unwrap();
    assert_eq!(applied.checkpoint, 3);
    assert_eq!(applied.applied, 3);
    assert_eq!(applied.changes.len(), 3);
    assert_eq!(applied.changes[2].complaint.status, Status::Resolved);

    let detail = store
        .get_complaint(id_of(&f))
        .await
        .unwrap()
        .expect("projected");
    let c = &detail.complaint;
    assert_eq!(c.status, Status::Resolved);
    assert_eq!(c.route, Some(Route::ReverseLogistics));
    assert_eq!(c.route, Some(decision.route));
    assert_eq!(c.satisfaction, Some(10));
    assert_eq!(c.received_at, Timestamp::from_millis(T0));
    assert_eq!(c.routed_at, Some(Timestamp::from_millis(T0 + 10)));
    assert_eq!(c.resolved_at, Some(Timestamp::from_millis(T0 + 1_000)));
    assert_eq!(c.last_sequence, 3);
    assert_eq!(c.customer_id, "cust-1");
    let types: Vec<&str> = detail
        .timeline
        .iter()
        .map(|t| t.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["complaint_received", "complaint_routed", "resolved"]
    );
    assert_eq!(detail.decisions.len(), 1);
    assert_eq!(detail.decisions[0].decision, decision);
    assert_eq!(detail.decisions[0].sequence, 2);
    assert_eq!(detail.projected_sequence, 3);
    assert_eq!(store.projected_sequence().await.unwrap(), 3);
    assert!(
        store
            .get_complaint(ComplaintId::from_uuid(Uuid::new_v4()))
            .await
            .unwrap()
            .is_none()
    );

    finish(db, store).await;
}

#[tokio::test]
async fn applying_the_same_batch_twice_changes_nothing() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-2", "cust-2", Channel::Phone, Category::Billing);
    let (batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, Some(7));

    store.apply_batch(&batch).await.unwrap();
    let before = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    let again = store.apply_batch(&copy(&batch)).await.unwrap();
    assert_eq!(again.applied, 0);
    assert_eq!(again.skipped, 3);
    assert!(again.changes.is_empty());
    assert_eq!(again.checkpoint, 3);

    let after = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    assert_eq!(after.complaint, before.complaint);
    assert_eq!(after.timeline, before.timeline);
    assert_eq!(after.decisions, before.decisions);

    finish(db, store).await;
}

#[tokio::test]
async fn an_overlapping_batch_applies_only_the_new_events() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-3", "cust-3", Channel::Chat, Category::Service);
    let (batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, Some(9));

    store.apply_batch(&batch[..2]).await.unwrap();
    let routed = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    assert_eq!(routed.complaint.status, Status::Routed);

    let overlap = store.apply_batch(&copy(&batch)).await.unwrap();
    assert_eq!(overlap.skipped, 2);
    assert_eq!(overlap.applied, 1);
    assert_eq!(overlap.changes.len(), 1);
    assert_eq!(overlap.changes[0].sequence, 3);

    let detail = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Resolved);
    assert_eq!(detail.timeline.len(), 3);
    assert_eq!(detail.decisions.len(), 1);
    assert_eq!(store.projected_sequence().await.unwrap(), 3);

    finish(db, store).await;
}

#[tokio::test]
async fn events_taken_ahead_of_the_checkpoint_are_applied_once() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let policy = RoutingPolicy::default();
    let a = facts("T-AH-A", "cust-a", Channel::Email, Category::ProductDefect);
    let b = facts("T-AH-B", "cust-b", Channel::Chat, Category::Service);
    let received = |log: &mut Log, f: &plaint_domain::ComplaintFacts| {
        log.complaint(id_of(f), T0, ComplaintEvent::Received(Box::new(f.clone())))
    };
    let routed = |log: &mut Log, f: &plaint_domain::ComplaintFacts| {
        let d = decide(f, &policy, T0 + 5);
        log.complaint(id_of(f), T0 + 5, ComplaintEvent::Routed(Box::new(d)))
    };
    // 1 A received, 2 B received, 3 A routed, 4 B routed.
    let log_items = [
        received(&mut log, &a),
        received(&mut log, &b),
        routed(&mut log, &a),
        routed(&mut log, &b),
    ];

    // The stretch is 1 alone; A's decision (3) comes along, ahead of 2.
    let ahead: Vec<_> = copy(&log_items[0..1])
        .into_iter()
        .chain(copy(&log_items[2..3]))
        .collect();
    let span = Span {
        items: &ahead,
        stretch: Some((1, 1)),
    };
    let applied = store
        .apply_span(span, false, Changes::Collect)
        .await
        .unwrap();
    assert_eq!(applied.checkpoint, 1, "2 is not applied yet");
    assert_eq!(applied.applied, 2);
    let seqs: Vec<u64> = applied.changes.iter().map(|c| c.sequence).collect();
    assert_eq!(seqs, [1, 3]);
    let detail = store.get_complaint(id_of(&a)).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Routed);
    assert_eq!(detail.complaint.last_sequence, 3);
    assert_eq!(store.projected_sequence().await.unwrap(), 1);

    // Read again from the checkpoint (a restart): 3 is there already.
    let again = copy(&log_items[1..]);
    let applied = store.apply_batch(&again).await.unwrap();
    assert_eq!(applied.checkpoint, 4);
    assert_eq!((applied.applied, applied.skipped), (2, 1));
    let seqs: Vec<u64> = applied.changes.iter().map(|c| c.sequence).collect();
    // 3 is not applied again, but told again: the run that took it ahead
    // told its own watchers, which may have been on another replica or gone
    // with a crash (watchers hear each event at least once).
    assert_eq!(seqs, [2, 3, 4]);
    let detail = store.get_complaint(id_of(&a)).await.unwrap().unwrap();
    assert_eq!(detail.timeline.len(), 2, "one timeline entry per event");
    assert_eq!(detail.decisions.len(), 1);
    let detail = store.get_complaint(id_of(&b)).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Routed);

    // A stretch that starts after the checkpoint's next sequence is a gap.
    let later = [routed(&mut log, &a), routed(&mut log, &b)];
    let span = Span {
        items: &later[1..],
        stretch: Some((6, 6)),
    };
    let err = store
        .apply_span(span, false, Changes::Skip)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Gap {
                checkpoint: 4,
                got: 6
            }
        ),
        "{err:?}"
    );

    finish(db, store).await;
}

#[tokio::test]
async fn the_first_batch_after_the_tables_were_swapped_is_refused() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-SW", "cust-sw", Channel::Email, Category::Billing);
    let (batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, None);
    store.apply_batch(&batch[..1]).await.unwrap();

    // What a rebuild's swap does to the name, in short.
    sqlx::raw_sql(
        "ALTER TABLE complaints RENAME TO complaints_retired; \
         CREATE TABLE complaints (LIKE complaints_retired INCLUDING ALL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.apply_batch(&copy(&batch[1..])).await.unwrap_err();
    assert!(matches!(err, StoreError::Swapped), "{err:?}");
    // The projector reopens at the checkpoint; from then on it goes on.
    let applied = store.apply_batch(&copy(&batch[1..])).await.unwrap();
    assert_eq!(applied.checkpoint, 2);

    finish(db, store).await;
}

#[tokio::test]
async fn an_event_that_does_not_fit_is_taken_once() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-NF", "cust-nf", Channel::Email, Category::Billing);
    let (mut batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, None);
    // A second first event: the complaint exists already.
    batch.push(log.complaint(
        id_of(&f),
        T0 + 50,
        ComplaintEvent::Received(Box::new(f.clone())),
    ));
    let applied = store.apply_batch(&batch).await.unwrap();
    assert_eq!(applied.checkpoint, 3);
    let row = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    assert_eq!(
        row.complaint.last_sequence, 3,
        "taken, though it changed nothing"
    );
    assert_eq!(row.complaint.status, Status::Routed);

    // Carried ahead once, it is skipped when its stretch comes round.
    let again = copy(&batch[2..]);
    let span = Span {
        items: &again,
        stretch: Some((3, 3)),
    };
    let err = store.apply_span(span, false, Changes::Collect).await;
    let applied = err.unwrap();
    assert_eq!((applied.applied, applied.skipped), (0, 1));
    assert!(applied.changes.is_empty());

    finish(db, store).await;
}

#[tokio::test]
async fn an_undecodable_event_is_skipped_but_advances_the_checkpoint() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("T-4", "cust-4", Channel::Email, Category::Billing);
    let (mut batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, None);
    batch.push(log.corrupt());

    let applied = store.apply_batch(&batch).await.unwrap();
    assert_eq!(applied.undecodable, 1);
    assert_eq!(applied.checkpoint, 3);
    assert_eq!(store.projected_sequence().await.unwrap(), 3);
    let detail = store.get_complaint(id_of(&f)).await.unwrap().unwrap();
    assert_eq!(detail.complaint.status, Status::Routed);

    finish(db, store).await;
}

#[tokio::test]
async fn goodwill_by_route_counts_resolved_complaints_only() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let default = RoutingPolicy::default();
    let ceo = ceo_everything();
    let cases = [
        ("G-1", Category::Billing, &default, Some(10)),
        ("G-2", Category::Billing, &default, Some(6)),
        ("G-3", Category::Billing, &default, None),
        ("G-4", Category::ProductDefect, &default, Some(9)),
        ("G-5", Category::Service, &ceo, Some(10)),
        ("G-6", Category::Service, &ceo, Some(3)),
    ];
    let mut batch = Vec::new();
    for (i, (ticket, category, policy, satisfaction)) in cases.into_iter().enumerate() {
        let f = facts(ticket, &format!("cust-{ticket}"), Channel::Email, category);
        let (items, _) = log.lifecycle(&f, policy, T0 + i as i64 * 60_000, satisfaction);
        batch.extend(items);
    }
    store.apply_batch(&batch).await.unwrap();

    let rows = store
        .goodwill(GoodwillGroup::Route, None, None)
        .await
        .unwrap();
    let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["CEO", "FRONTLINE", "REVERSE_LOGISTICS"]);
    let figures: Vec<_> = rows.iter().map(|(_, t)| t.figures()).collect();
    assert_eq!(figures[0].resolved, 2);
    assert!((figures[0].mean_satisfaction - 6.5).abs() < 1e-9);
    assert!((figures[0].recovered_share - 0.5).abs() < 1e-9);
    assert_eq!(figures[1].resolved, 2);
    assert!((figures[1].mean_satisfaction - 8.0).abs() < 1e-9);
    assert!((figures[1].recovered_share - 0.5).abs() < 1e-9);
    assert_eq!(figures[2].resolved, 1);
    assert!((figures[2].recovered_share - 1.0).abs() < 1e-9);

    let by_day = store
        .goodwill(GoodwillGroup::Day, None, None)
        .await
        .unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(by_day[0].0, Timestamp::from_millis(T0).day());
    assert_eq!(by_day[0].1.resolved, 5);

    let none = store
        .goodwill(
            GoodwillGroup::Channel,
            Some(Timestamp::from_millis(T0 + 86_400_000)),
            None,
        )
        .await
        .unwrap();
    assert!(none.is_empty());

    let history = store
        .customer_history(
            &support::pseudonyms()
                .of(&plaint_domain::values::CustomerId::parse("cust-G-5").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(history.complaints.len(), 1);
    assert_eq!(history.ceo_engagements, 1);
    assert_eq!(
        history.last_ceo_engagement,
        Some(Timestamp::from_millis(T0 + 4 * 60_000 + 10))
    );

    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.groups.iter().map(|g| g.count).sum::<u64>(), 6);
    assert!((stats.mean_time_to_route_ms - 10.0).abs() < 1e-9);
    assert!((stats.mean_time_to_resolve_ms - 1_000.0).abs() < 1e-9);

    finish(db, store).await;
}

#[tokio::test]
async fn list_pages_return_every_complaint_exactly_once_newest_first() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let mut batch = Vec::new();
    let mut ids = HashSet::new();
    for i in 0..23 {
        let f = facts(
            &format!("L-{i}"),
            "cust-list",
            Channel::Email,
            Category::Billing,
        );
        ids.insert(id_of(&f));
        // Pairs share a received time, so the id must break ties.
        let at = T0 + (i / 2) * 1_000;
        batch.push(log.complaint(id_of(&f), at, ComplaintEvent::Received(Box::new(f))));
    }
    store.apply_batch(&batch).await.unwrap();

    let mut seen = Vec::new();
    let mut filter = ListFilter {
        page_size: 5,
        ..ListFilter::default()
    };
    for _ in 0..10 {
        let page = store.list_complaints(&filter).await.unwrap();
        assert!(page.complaints.len() <= 5);
        seen.extend(
            page.complaints
                .iter()
                .map(|c| (c.received_at, c.complaint_id)),
        );
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert_eq!(seen.iter().map(|(_, id)| *id).collect::<HashSet<_>>(), ids);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    let received = store
        .list_complaints(&ListFilter {
            status: Some(Status::Received),
            received_from: Some(Timestamp::from_millis(T0 + 10_000)),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(received.complaints.len(), 3);
    assert!(received.next.is_none());
    let routed = store
        .list_complaints(&ListFilter {
            route: Some(Route::Frontline),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(routed.complaints.is_empty());

    finish(db, store).await;
}

#[tokio::test]
async fn company_events_project_policies_settings_and_ceo_slots() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let policy = ceo_everything();
    let f = facts("C-1", "cust-c", Channel::PublicSocial, Category::Service);
    let slot = CeoSlot {
        window_start: Timestamp::from_millis(T0).window_start(policy.window_ms()),
        complaint_id: id_of(&f),
        customer: f.customer.reference.clone(),
        segment: f.customer.segment.clone(),
        used: 1,
        segment_used: [("retail".to_owned(), 1)].into_iter().collect(),
    };
    let by = Label::parse("ops").unwrap();
    let batch = vec![
        log.company(
            T0,
            CompanyEvent::PolicyPublished {
                policy: Box::new(policy.clone()),
                published_by: by.clone(),
            },
        ),
        log.company(
            T0,
            CompanyEvent::ClimateSet {
                climate: Climate::Good,
                set_by: by.clone(),
            },
        ),
        log.company(
            T0,
            CompanyEvent::StanceAlignmentSet {
                alignment: StanceAlignment::Aligned,
                set_by: by.clone(),
            },
        ),
        log.company(T0, CompanyEvent::CeoSlotReserved(slot.clone())),
        log.company(T0, CompanyEvent::CeoSlotReserved(slot.clone())),
    ];
    let applied = store.apply_batch(&batch).await.unwrap();
    assert_eq!(applied.applied, 5);
    assert!(applied.changes.is_empty());

    let latest = store.latest_policy().await.unwrap().expect("published");
    assert_eq!(latest.policy, policy);
    assert_eq!(latest.published_by, "ops");
    assert_eq!(store.policies().await.unwrap().len(), 1);
    assert_eq!(store.policy(2).await.unwrap().map(|p| p.sequence), Some(1));
    assert!(store.policy(3).await.unwrap().is_none());

    let settings = store.company_settings().await.unwrap();
    assert_eq!(settings.climate, Climate::Good);
    assert_eq!(settings.stance, StanceAlignment::Aligned);

    let start = slot.window_start;
    let used = store
        .ceo_budget(start, start.plus_millis(policy.window_ms()))
        .await
        .unwrap();
    assert_eq!(used.used, 1);
    assert_eq!(used.by_segment.get("retail"), Some(&1));
    assert_eq!(used.complaint_ids, [id_of(&f)]);

    finish(db, store).await;
}

#[tokio::test]
async fn waiting_for_a_sequence_returns_once_it_is_projected_or_times_out() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let f = facts("W-1", "cust-w", Channel::Email, Category::Billing);
    let (batch, _) = log.lifecycle(&f, &RoutingPolicy::default(), T0, None);

    assert!(store.wait_for_sequence(0, Duration::ZERO).await.unwrap());
    assert!(
        !store
            .wait_for_sequence(2, Duration::from_millis(30))
            .await
            .unwrap()
    );
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_for_sequence(2, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.apply_batch(&batch).await.unwrap();
    assert!(waiter.await.unwrap().unwrap());

    finish(db, store).await;
}

#[tokio::test]
async fn complaints_in_range_yield_state_and_first_decision_in_received_order() {
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let mut batch = Vec::new();
    let mut decisions = Vec::new();
    for i in 0..4 {
        let f = facts(
            &format!("S-{i}"),
            "cust-s",
            Channel::Email,
            Category::ProductDefect,
        );
        let (items, d) = log.lifecycle(&f, &RoutingPolicy::default(), T0 + i * 1_000, None);
        batch.extend(items);
        decisions.push(d);
    }
    // One complaint received but not routed yet: not part of a simulation.
    let f = facts("S-unrouted", "cust-s", Channel::Email, Category::Billing);
    batch.push(log.complaint(id_of(&f), T0 + 500, ComplaintEvent::Received(Box::new(f))));
    store.apply_batch(&batch).await.unwrap();

    let rows: Vec<_> = store
        .complaints_in_range(
            Timestamp::from_millis(T0 + 1_000),
            Timestamp::from_millis(T0 + 3_000),
            10,
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (i, (complaint, decision)) in rows.iter().enumerate() {
        assert_eq!(
            complaint.received_at,
            Timestamp::from_millis(T0 + (i as i64 + 1) * 1_000)
        );
        assert_eq!(decision, &decisions[i + 1]);
    }
    let limited: Vec<_> = store
        .complaints_in_range(
            Timestamp::from_millis(0),
            Timestamp::from_millis(i64::MAX),
            2,
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);

    finish(db, store).await;
}

#[tokio::test]
async fn two_projectors_applying_the_same_batch_apply_it_once() {
    let (db, store) = fresh_store().await;
    let other = plaint_projection::store::Store::connect(db.url(), 2)
        .await
        .unwrap();
    let mut log = Log::default();
    let mut batch = Vec::new();
    for i in 0..50 {
        let f = facts(
            &format!("R-{i}"),
            "cust-r",
            Channel::Email,
            Category::Billing,
        );
        batch.extend(
            log.lifecycle(&f, &RoutingPolicy::default(), T0 + i, Some(8))
                .0,
        );
    }
    let twin = copy(&batch);
    let (a, b) = tokio::join!(store.apply_batch(&batch), other.apply_batch(&twin));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.applied + b.applied, 150);
    assert_eq!(a.skipped + b.skipped, 150);
    assert_eq!(a.checkpoint, 150);
    assert_eq!(b.checkpoint, 150);

    let rows = store
        .goodwill(GoodwillGroup::Route, None, None)
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|(_, t)| t.resolved).sum::<u64>(), 50);
    other.pool().close().await;
    finish(db, store).await;
}

#[tokio::test]
async fn goodwill_of_any_period_counts_the_complaints_resolved_in_it_from_summaries_and_days_ends()
{
    const DAY: i64 = 86_400_000;
    let (db, store) = fresh_store().await;
    let mut log = Log::default();
    let policy = RoutingPolicy::default();
    let day0 = T0 - T0.rem_euclid(DAY);
    // Resolutions (1 s after receipt) at these times: several per day over
    // four days, some near midnight. Applied in batches of two, so the
    // summaries are added up across transactions.
    let received: Vec<i64> = [0, 3, 23, 24, 30, 47, 48, 71, 95]
        .iter()
        .map(|h| day0 + h * 3_600_000 + 1_000)
        .collect();
    let mut resolved_at = Vec::new();
    let mut items = Vec::new();
    for (i, at) in received.iter().enumerate() {
        let f = facts(
            &format!("P-{i}"),
            &format!("cust-p{i}"),
            Channel::Email,
            Category::Billing,
        );
        let score = if i % 2 == 0 { 10 } else { 4 };
        items.extend(log.lifecycle(&f, &policy, *at, Some(score)).0);
        resolved_at.push((at + 1_000, score));
    }
    for chunk in items.chunks(2) {
        store.apply_batch(chunk).await.unwrap();
    }
    let periods = [
        (None, None),
        (Some(day0), Some(day0 + 2 * DAY - 1)),
        (Some(day0 + 5 * 3_600_000), Some(day0 + 3 * DAY + 5)),
        (
            Some(day0 + 24 * 3_600_000),
            Some(day0 + 24 * 3_600_000 + 2 * 3_600_000),
        ),
        (Some(day0 + DAY / 2), None),
        (None, Some(day0 + DAY + 7 * 3_600_000)),
    ];
    for (from, to) in periods {
        let expected: Vec<&(i64, u32)> = resolved_at
            .iter()
            .filter(|(at, _)| from.is_none_or(|f| *at >= f) && to.is_none_or(|t| *at <= t))
            .collect();
        let rows = store
            .goodwill(
                GoodwillGroup::Route,
                from.map(Timestamp::from_millis),
                to.map(Timestamp::from_millis),
            )
            .await
            .unwrap();
        let resolved: u64 = rows.iter().map(|(_, t)| t.resolved).sum();
        let sum: u64 = rows.iter().map(|(_, t)| t.satisfaction_sum).sum();
        let recovered: u64 = rows.iter().map(|(_, t)| t.recovered).sum();
        assert_eq!(resolved, expected.len() as u64, "{from:?}..{to:?}");
        assert_eq!(
            sum,
            expected.iter().map(|(_, s)| u64::from(*s)).sum::<u64>(),
            "{from:?}..{to:?}"
        );
        assert_eq!(
            recovered,
            expected.iter().filter(|(_, s)| *s >= 9).count() as u64,
            "{from:?}..{to:?}"
        );
        let by_day = store
            .goodwill(
                GoodwillGroup::Day,
                from.map(Timestamp::from_millis),
                to.map(Timestamp::from_millis),
            )
            .await
            .unwrap();
        assert_eq!(
            by_day.iter().map(|(_, t)| t.resolved).sum::<u64>(),
            expected.len() as u64,
            "{from:?}..{to:?} by day"
        );
    }
    finish(db, store).await;
}
