//! Writers racing on one complaint: optimistic concurrency keeps the history
//! one that the lifecycle rules could have produced.

use plaint_domain::{ComplaintEvent, apply};
use plaint_proto::intake as pb;
use plaint_testkit::shared_nats_url;
use tonic::Code;

use crate::helpers::{
    WAIT, complaint_event, count, follow_up, header, spawn_intake, submit_request, written_id,
};

const FOLLOW_UPS: usize = 20;

#[tokio::test]
async fn racing_writers_never_store_an_illegal_history() {
    let intake = spawn_intake(&shared_nats_url()).await;
    let mut client = intake.client.clone();
    let submitted = client
        .submit_complaint(submit_request("crm", "R-1"))
        .await
        .unwrap()
        .into_inner();
    let id = written_id(&submitted);

    let mut follow_ups = Vec::new();
    for i in 0..FOLLOW_UPS {
        let mut c = intake.client.clone();
        follow_ups.push(tokio::spawn(async move {
            c.record_follow_up(follow_up(&id, &format!("follow-up {i}")))
                .await
        }));
        if i == FOLLOW_UPS / 2 {
            let mut c = intake.client.clone();
            follow_ups.push(tokio::spawn(async move {
                c.withdraw(pb::WithdrawRequest {
                    header: header(&id),
                    reason: "Sorted it out myself.".to_owned(),
                })
                .await
            }));
        }
    }
    let withdraw_at = FOLLOW_UPS / 2 + 1;

    let mut stored = Vec::new();
    let mut withdrawn = None;
    let mut refused = Vec::new();
    for (i, task) in follow_ups.into_iter().enumerate() {
        let answer = tokio::time::timeout(WAIT, task)
            .await
            .expect("answered in time")
            .expect("task did not panic");
        match answer {
            Ok(w) => {
                let w = w.into_inner();
                assert!(!w.duplicate);
                if i == withdraw_at {
                    withdrawn = Some(w.sequence);
                } else {
                    stored.push(w.sequence);
                }
            }
            Err(s) => {
                assert!(
                    matches!(s.code(), Code::Aborted | Code::FailedPrecondition),
                    "call {i}: unexpected {s:?}"
                );
                refused.push(s.code());
            }
        }
    }
    eprintln!(
        "{} follow-ups stored, withdrawal stored: {}, refused: {refused:?}",
        stored.len(),
        withdrawn.is_some()
    );
    // The withdrawal may have lost every race; then it goes through now.
    let withdrawn = match withdrawn {
        Some(seq) => seq,
        None => {
            client
                .withdraw(pb::WithdrawRequest {
                    header: header(&id),
                    reason: "Sorted it out myself.".to_owned(),
                })
                .await
                .unwrap()
                .into_inner()
                .sequence
        }
    };

    let events = intake.events(&id).await;
    // The stored history re-applies without a single illegal step.
    let mut state = None;
    for e in &events {
        state = Some(
            apply(state, id, complaint_event(e), e.envelope.occurred_at)
                .unwrap_or_else(|err| panic!("illegal history at {}: {err}", e.sequence)),
        );
    }
    assert_eq!(count(&events, "complaint_received"), 1);
    assert_eq!(count(&events, "withdrawn"), 1);
    let last = events.last().unwrap();
    assert_eq!(last.sequence, withdrawn);
    assert!(matches!(
        complaint_event(last),
        ComplaintEvent::Withdrawn { .. }
    ));
    // Every follow-up answered OK is stored exactly once, all before the withdrawal.
    let mut logged: Vec<u64> = events
        .iter()
        .filter(|e| complaint_event(e).type_name() == "customer_followed_up")
        .map(|e| e.sequence)
        .collect();
    logged.sort_unstable();
    stored.sort_unstable();
    assert_eq!(logged, stored);
    assert!(stored.iter().all(|&s| s < withdrawn));
    // And nothing follows a withdrawal, however often it is tried.
    let late = client
        .record_follow_up(follow_up(&id, "One more thing."))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert_eq!(intake.events(&id).await.len(), events.len());
    intake.finish().await;
}
